//! `wamp.2.ubjson`: UBJSON (draft 12, ubjson.org) as py-ubjson writes and reads it.
//!
//! Big-endian; markers `Z N T F i U I l L d D H C S [ {`, optimized containers with `$` type and
//! `#` count. Byte-for-byte what py-ubjson 0.16 (`dumpb` defaults) writes:
//! - integers in the smallest marker, `U` before `i` for 0..=255, `UInt` above `i64::MAX` as
//!   `H` with its decimal digits;
//! - floats as `D` (float64), except ±0.0 as `d` (float32) and NaN/±inf as `Z`; py-ubjson
//!   writes subnormals as a long exact `H` decimal, we write them as `D` (it reads that back
//!   to the same float);
//! - a one-byte string as `C`, others as `S` + length;
//! - `Bytes` as the strongly typed array `[$U#<count>` + raw bytes, lists as `[ ... ]` and
//!   dictionaries as `{ ... }` without counts.
//!
//! Decoding accepts all of the above plus counted and typed containers and `N` no-ops where
//! py-ubjson accepts them; `[$U#` reads as `Bytes`, `C` as a one-character `Str`, and `H` as a
//! number (`Int`/`UInt` when integral and in range, else `Float`). Typed containers of
//! payload-less elements (`[$Z#...`) draw from a budget proportional to the input size.

use std::io::Write as _;

use bytes::Bytes;

use super::reader::{enter, Reader};
use super::{DecodeError, Dict, Value};

/// Payload-less elements a message may produce beyond its own size (see `Decoder::budget`).
const ZERO_WIDTH_SLACK: usize = 1024;

/// Decodes one UBJSON payload.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder {
        r: Reader::new(buf),
        budget: buf.len().saturating_add(ZERO_WIDTH_SLACK),
    };
    let marker = d.r.byte()?;
    let v = d.value(marker, 0)?;
    d.r.finish()?;
    Ok(v)
}

struct Decoder<'a> {
    r: Reader<'a>,
    /// How many more elements typed containers of `Z`, `T` or `F` may produce. Such elements
    /// take no input bytes, so without this bound `[$Z#L<2^40>` would allocate terabytes.
    budget: usize,
}

impl Decoder<'_> {
    /// The value whose marker was just read; `depth` counts the enclosing containers.
    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, DecodeError> {
        let r = &mut self.r;
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::Int(int(r, marker)?),
            b'd' => Value::Float(f32::from_be_bytes(r.array()?).into()),
            b'D' => Value::Float(f64::from_be_bytes(r.array()?)),
            b'H' => {
                let len = length(r)?;
                high_precision(r.take_str(len)?)?
            }
            b'C' => {
                let c = r.byte()?;
                if !c.is_ascii() {
                    return Err(DecodeError::InvalidUtf8);
                }
                Value::Str(char::from(c).into())
            }
            b'S' => {
                let len = length(r)?;
                Value::Str(r.take_str(len)?.to_owned())
            }
            b'[' => self.array(depth)?,
            b'{' => self.object(depth)?,
            other => return Err(DecodeError::InvalidMarker(other)),
        })
    }

    /// Reads optional `$type` and `#count` after `[` or `{`.
    fn container_header(&mut self) -> Result<(Option<u8>, Option<usize>), DecodeError> {
        let mut ty = None;
        if self.r.peek() == Some(b'$') {
            self.r.byte()?;
            let t = self.r.byte()?;
            if !matches!(
                t,
                b'Z' | b'T'
                    | b'F'
                    | b'i'
                    | b'U'
                    | b'I'
                    | b'l'
                    | b'L'
                    | b'd'
                    | b'D'
                    | b'H'
                    | b'C'
                    | b'S'
                    | b'['
                    | b'{'
            ) {
                return Err(DecodeError::InvalidMarker(t));
            }
            ty = Some(t);
            // A type must be followed by a count.
            match self.r.byte()? {
                b'#' => {}
                other => return Err(DecodeError::InvalidMarker(other)),
            }
            return Ok((ty, Some(length(&mut self.r)?)));
        }
        if self.r.peek() == Some(b'#') {
            self.r.byte()?;
            return Ok((ty, Some(length(&mut self.r)?)));
        }
        Ok((None, None))
    }

    fn array(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let depth = enter(depth)?;
        match self.container_header()? {
            // py-ubjson writes bytes as a strongly typed uint8 array.
            (Some(b'U'), Some(n)) => Ok(Value::Bytes(Bytes::copy_from_slice(self.r.take(n)?))),
            (Some(t @ (b'Z' | b'T' | b'F')), Some(n)) => {
                self.budget = self
                    .budget
                    .checked_sub(n)
                    .ok_or(DecodeError::TooManyElements)?;
                let v = self.value(t, depth)?;
                Ok(Value::List(vec![v; n]))
            }
            (Some(t), Some(n)) => {
                self.r.check_count(n, min_width(t))?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(self.value(t, depth)?);
                }
                Ok(Value::List(list))
            }
            (_, Some(n)) => {
                self.r.check_count(n, 1)?;
                let mut list = Vec::with_capacity(n);
                while list.len() < n {
                    match self.r.byte()? {
                        b'N' => {}
                        m => list.push(self.value(m, depth)?),
                    }
                }
                Ok(Value::List(list))
            }
            (_, None) => {
                let mut list = Vec::new();
                loop {
                    match self.r.byte()? {
                        b']' => return Ok(Value::List(list)),
                        b'N' => {}
                        m => list.push(self.value(m, depth)?),
                    }
                }
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let depth = enter(depth)?;
        let (ty, count) = self.container_header()?;
        let mut dict = Dict::new();
        match count {
            Some(n) => {
                // Each entry has at least a one-byte key length, plus a marker if untyped.
                self.r.check_count(n, if ty.is_some() { 1 } else { 2 })?;
                let mut entries = 0;
                while entries < n {
                    let m = self.r.byte()?;
                    if m == b'N' {
                        continue;
                    }
                    self.entry(m, ty, depth, &mut dict)?;
                    entries += 1;
                }
            }
            None => loop {
                match self.r.byte()? {
                    b'}' => break,
                    b'N' => {}
                    m => self.entry(m, None, depth, &mut dict)?,
                }
            },
        }
        Ok(Value::Dict(dict))
    }

    /// One object entry whose key-length marker `m` was read.
    fn entry(
        &mut self,
        m: u8,
        ty: Option<u8>,
        depth: usize,
        dict: &mut Dict,
    ) -> Result<(), DecodeError> {
        let len = length_of(&mut self.r, m)?;
        let key = self.r.take_str(len)?.to_owned();
        let marker = match ty {
            Some(t) => t,
            None => self.r.byte()?,
        };
        let v = self.value(marker, depth)?;
        dict.insert(key, v);
        Ok(())
    }
}

/// The minimum encoded size of an element of a typed container (the marker is implied).
fn min_width(ty: u8) -> usize {
    match ty {
        b'I' => 2,
        b'l' | b'd' => 4,
        b'L' | b'D' => 8,
        // i U C, and H S [ { which need at least one more byte.
        _ => 1,
    }
}

/// The integer payload of an integer marker.
fn int(r: &mut Reader<'_>, marker: u8) -> Result<i64, DecodeError> {
    Ok(match marker {
        b'i' => i8::from_be_bytes(r.array()?).into(),
        b'U' => u8::from_be_bytes(r.array()?).into(),
        b'I' => i16::from_be_bytes(r.array()?).into(),
        b'l' => i32::from_be_bytes(r.array()?).into(),
        b'L' => i64::from_be_bytes(r.array()?),
        _ => return Err(DecodeError::InvalidLength),
    })
}

/// A length or count: an integer (with its marker) that must not be negative.
fn length(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let m = r.byte()?;
    length_of(r, m)
}

fn length_of(r: &mut Reader<'_>, marker: u8) -> Result<usize, DecodeError> {
    let n = int(r, marker)?;
    let n = u64::try_from(n).map_err(|_| DecodeError::InvalidLength)?;
    usize::try_from(n).map_err(|_| DecodeError::LengthTooLarge)
}

/// Reads an `H` high-precision number: an integer when it is one and fits 64 bits, else a
/// finite float. Python's `Decimal` strings (`1E+3`, `-0.5`, long exact expansions) parse.
fn high_precision(s: &str) -> Result<Value, DecodeError> {
    // Guard against what `f64::from_str` would accept but is no number here ("inf", "nan").
    let valid = !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !valid {
        return Err(DecodeError::InvalidNumber);
    }
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Ok(Value::from(u));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        _ => Err(DecodeError::InvalidNumber),
    }
}

/// Appends the UBJSON list of `parts` (see `Serializer::encode_parts`).
pub(crate) fn encode_parts(parts: &[super::Part<'_>], out: &mut Vec<u8>) {
    use super::Part;
    out.push(b'[');
    for part in parts {
        match *part {
            Part::UInt(u) => encode(&Value::from(u), out),
            Part::Str(s) => str_value(s, out),
            Part::Bytes(b) => bytes_value(b, out),
            Part::List(l) => list_value(l, out),
            Part::Dict(d) => dict_value(d, out),
        }
    }
    out.push(b']');
}

/// A string (`C` for one byte, as py-ubjson writes a one-character string).
fn str_value(s: &str, out: &mut Vec<u8>) {
    if s.len() == 1 {
        out.push(b'C');
        out.push(s.as_bytes()[0]);
    } else {
        out.push(b'S');
        length_value(s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }
}

fn bytes_value(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"[$U#");
    length_value(b.len(), out);
    out.extend_from_slice(b);
}

fn list_value(l: &[Value], out: &mut Vec<u8>) {
    out.push(b'[');
    for item in l {
        encode(item, out);
    }
    out.push(b']');
}

fn dict_value(d: &super::Dict, out: &mut Vec<u8>) {
    out.push(b'{');
    for (k, item) in d {
        length_value(k.len(), out);
        out.extend_from_slice(k.as_bytes());
        encode(item, out);
    }
    out.push(b'}');
}

/// Appends the UBJSON encoding of `v` to `out`, as py-ubjson's `dumpb(v)` would.
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(b'Z'),
        Value::Bool(true) => out.push(b'T'),
        Value::Bool(false) => out.push(b'F'),
        Value::Int(i) => int_value(*i, out),
        Value::UInt(u) => {
            // Above i64::MAX there is no integer marker: a high-precision decimal string.
            let mut digits = [0u8; 20];
            let len = {
                let mut w = &mut digits[..];
                write!(w, "{u}").expect("u64 has at most 20 digits");
                20 - w.len()
            };
            out.push(b'H');
            length_value(len, out);
            out.extend_from_slice(&digits[..len]);
        }
        Value::Float(f) => {
            if !f.is_finite() {
                out.push(b'Z');
            } else if *f == 0.0 {
                out.push(b'd');
                out.extend_from_slice(&(*f as f32).to_be_bytes());
            } else {
                out.push(b'D');
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Str(s) => str_value(s, out),
        Value::Bytes(b) => bytes_value(b, out),
        Value::List(l) => list_value(l, out),
        Value::Dict(d) => {
            dict_value(d, out);
        }
    }
}

fn length_value(len: usize, out: &mut Vec<u8>) {
    int_value(i64::try_from(len).expect("lengths fit in i64"), out);
}

/// An integer in the smallest marker, preferring `U` for 0..=255 as py-ubjson does.
fn int_value(i: i64, out: &mut Vec<u8>) {
    if let Ok(u) = u8::try_from(i) {
        out.extend_from_slice(&[b'U', u]);
    } else if let Ok(i) = i8::try_from(i) {
        out.extend_from_slice(&[b'i', i as u8]);
    } else if let Ok(i) = i16::try_from(i) {
        out.push(b'I');
        out.extend_from_slice(&i.to_be_bytes());
    } else if let Ok(i) = i32::try_from(i) {
        out.push(b'l');
        out.extend_from_slice(&i.to_be_bytes());
    } else {
        out.push(b'L');
        out.extend_from_slice(&i.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::testutil::{arb_value, dict, mutated};
    use crate::wire::{Serializer, MAX_DEPTH};

    /// Vectors written by py-ubjson 0.16.1 (`tests/fixtures/ubjson/gen_vectors.py`):
    /// `VECTORS` are `dumpb(value)` and must match our encoding byte for byte;
    /// `DECODE_ONLY` are other py-ubjson outputs (counted containers, float32, subnormals as
    /// `H`, ...) with the value we must read.
    mod py {
        use bytes::Bytes;

        use crate::wire::{Dict, Value};

        fn d<const N: usize>(pairs: [(&str, Value); N]) -> Value {
            Value::Dict(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Dict>(),
            )
        }
        fn l(items: Vec<Value>) -> Value {
            Value::List(items)
        }
        fn s(s: &str) -> Value {
            Value::Str(s.to_owned())
        }
        fn b(b: &'static [u8]) -> Value {
            Value::Bytes(Bytes::from_static(b))
        }
        fn f(bits: u64) -> Value {
            Value::Float(f64::from_bits(bits))
        }
        fn i(i: i64) -> Value {
            Value::Int(i)
        }
        fn u(u: u64) -> Value {
            Value::UInt(u)
        }

        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ubjson/vectors.rs"
        ));
    }

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    #[test]
    fn py_ubjson_vectors_both_directions() {
        let vectors = py::vectors();
        assert!(vectors.len() > 100);
        for (name, bytes, value) in vectors {
            assert_eq!(decode(bytes).as_ref(), Ok(&value), "decode {name}");
            assert_eq!(enc(&value), bytes, "encode {name}");
        }
    }

    #[test]
    fn py_ubjson_decode_only_vectors() {
        for (name, bytes, value) in py::decode_only() {
            assert_eq!(decode(bytes).as_ref(), Ok(&value), "decode {name}");
        }
    }

    #[test]
    fn py_ubjson_flavour() {
        assert_eq!(enc(&Value::Int(0)), b"U\x00");
        assert_eq!(enc(&Value::Int(255)), b"U\xff");
        assert_eq!(enc(&Value::Int(-1)), b"i\xff");
        assert_eq!(enc(&Value::UInt(u64::MAX)), b"HU\x1418446744073709551615");
        assert_eq!(enc(&Value::Float(0.0)), b"d\x00\x00\x00\x00");
        assert_eq!(enc(&Value::Float(-0.0)), b"d\x80\x00\x00\x00");
        assert_eq!(
            enc(&Value::Float(1.5)),
            b"D\x3f\xf8\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(enc(&Value::Float(f64::NAN)), b"Z");
        assert_eq!(enc(&Value::Float(f64::NEG_INFINITY)), b"Z");
        // Deviation: py-ubjson writes subnormals as an exact `H` decimal.
        assert_eq!(
            enc(&Value::Float(5e-324)),
            b"D\x00\x00\x00\x00\x00\x00\x00\x01"
        );
        assert_eq!(enc(&"a".into()), b"Ca");
        assert_eq!(enc(&"é".into()), b"SU\x02\xc3\xa9");
        assert_eq!(
            enc(&Value::Bytes(Bytes::from_static(b"ab"))),
            b"[$U#U\x02ab"
        );
        assert_eq!(
            enc(&Value::Dict(dict([
                ("a", Value::List(vec![])),
                ("b", Value::Int(1))
            ]))),
            b"{U\x01a[]U\x01bU\x01}"
        );
    }

    #[test]
    fn round_trip_every_type() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::UInt(1 << 63),
            Value::Float(-0.0),
            Value::Float(1e-310),
            Value::Float(f64::MAX),
            Value::Str(String::new()),
            Value::Str("x".into()),
            Value::Str("日本語 ✓ 😀".into()),
            Value::Str("y".repeat(70_000)),
            Value::Bytes(Bytes::new()),
            Value::Bytes(Bytes::from(vec![7u8; 300])),
            Value::List(vec![]),
            Value::Dict(Dict::new()),
            Value::Dict(dict([(
                "k",
                Value::List(vec![Value::Dict(dict([("", 1u64.into())]))]),
            )])),
        ]);
        assert_eq!(decode(&enc(&v)), Ok(v));
    }

    #[test]
    fn typed_and_counted_containers() {
        assert_eq!(
            decode(b"[$i#U\x03\x01\x02\xff"),
            Ok(Value::List(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(-1)
            ]))
        );
        assert_eq!(
            decode(b"[#U\x02NTU\x05"),
            Ok(Value::List(vec![Value::Bool(true), Value::Int(5)]))
        );
        assert_eq!(decode(b"[$Z#U\x03"), Ok(Value::List(vec![Value::Null; 3])));
        assert_eq!(
            decode(b"{$T#U\x02U\x01aU\x01b"),
            Ok(Value::Dict(dict([
                ("a", Value::Bool(true)),
                ("b", Value::Bool(true))
            ])))
        );
        assert_eq!(
            decode(b"[$[#U\x02]#U\x01Z"),
            Ok(Value::List(vec![
                Value::List(vec![]),
                Value::List(vec![Value::Null])
            ]))
        );
        assert_eq!(
            decode(b"[$S#U\x02U\x01aU\x00"),
            Ok(Value::List(vec!["a".into(), "".into()]))
        );
        assert_eq!(
            decode(b"{NU\x01aNZ}"),
            Err(DecodeError::InvalidMarker(b'N'))
        );
        assert_eq!(
            decode(b"{NU\x01aZN}"),
            Ok(Value::Dict(dict([("a", Value::Null)])))
        );
        assert_eq!(decode(b"[#U\x00"), Ok(Value::List(vec![])));
        assert_eq!(decode(b"Hi\x021E"), Err(DecodeError::InvalidNumber));
        assert_eq!(decode(b"HU\x041E+3"), Ok(Value::Float(1000.0)));
        assert_eq!(decode(b"HU\x02-0"), Ok(Value::Int(0)));
        assert_eq!(decode(b"HU\x0399."), Ok(Value::Float(99.0)));
    }

    #[test]
    fn error_unexpected_eof() {
        assert_eq!(decode(b""), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(b"I\x01"), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(b"[U\x01"), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(b"[$"), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn error_trailing_bytes() {
        assert_eq!(decode(b"ZZ"), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn error_length_too_large_fails_fast() {
        // 2^60 as an int64 count or length.
        let huge = b"L\x10\x00\x00\x00\x00\x00\x00\x00";
        for prefix in [
            &b"S"[..],
            b"H",
            b"[#",
            b"{#",
            b"[$U#",
            b"[$D#",
            b"{$Z#",
            b"[$[#",
        ] {
            let buf = [prefix, huge].concat();
            assert_eq!(decode(&buf), Err(DecodeError::LengthTooLarge), "{prefix:?}");
        }
        // Typed elements are checked at their own width: 2 int64s need 16 bytes.
        assert_eq!(
            decode(b"[$L#U\x02\x00\x00\x00\x00\x00\x00\x00\x00"),
            Err(DecodeError::LengthTooLarge)
        );
    }

    #[test]
    fn error_too_many_elements() {
        let buf = b"[$Z#L\x10\x00\x00\x00\x00\x00\x00\x00";
        assert_eq!(decode(buf), Err(DecodeError::TooManyElements));
        // The budget is shared by the whole message.
        let mut buf = b"[#U\xc8".to_vec();
        for _ in 0..200 {
            buf.extend_from_slice(b"[$T#I\x03\xe8");
        }
        assert_eq!(decode(&buf), Err(DecodeError::TooManyElements));
    }

    #[test]
    fn error_invalid_utf8() {
        assert_eq!(decode(b"SU\x01\xff"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode(b"C\xc3"), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode(b"{U\x01\xffZ}"), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn error_invalid_marker() {
        assert_eq!(decode(b"X"), Err(DecodeError::InvalidMarker(b'X')));
        // No-op is only allowed inside containers (as in py-ubjson).
        assert_eq!(decode(b"NZ"), Err(DecodeError::InvalidMarker(b'N')));
        assert_eq!(decode(b"]"), Err(DecodeError::InvalidMarker(b']')));
        // A container type needs a count, and `N` is no type.
        assert_eq!(decode(b"[$UU\x01]"), Err(DecodeError::InvalidMarker(b'U')));
        assert_eq!(decode(b"[$N#U\x01"), Err(DecodeError::InvalidMarker(b'N')));
    }

    #[test]
    fn error_invalid_length() {
        assert_eq!(decode(b"Si\xff"), Err(DecodeError::InvalidLength));
        assert_eq!(decode(b"SD"), Err(DecodeError::InvalidLength));
        assert_eq!(decode(b"[#i\xffZ"), Err(DecodeError::InvalidLength));
        assert_eq!(decode(b"{Z}"), Err(DecodeError::InvalidLength));
    }

    #[test]
    fn error_invalid_number() {
        for h in [
            &b"HU\x03inf"[..],
            b"HU\x03nan",
            b"HU\x00",
            b"HU\x01-",
            b"HU\x051E999",
        ] {
            assert_eq!(decode(h), Err(DecodeError::InvalidNumber), "{h:?}");
        }
    }

    #[test]
    fn error_too_deep() {
        let ok = [vec![b'['; MAX_DEPTH], vec![b']'; MAX_DEPTH]].concat();
        assert!(decode(&ok).is_ok());
        let deep = [vec![b'['; MAX_DEPTH + 1], vec![b']'; MAX_DEPTH + 1]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        // Typed containers of containers nest without their own markers.
        let mut typed = b"[$[#U\x01".repeat(MAX_DEPTH + 1);
        typed.push(b']');
        assert_eq!(decode(&typed), Err(DecodeError::TooDeep));
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in arb_value()) {
            prop_assert_eq!(decode(&Serializer::UbJson.encode_to_bytes(&v)), Ok(v));
        }

        #[test]
        fn prop_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
        }

        #[test]
        fn prop_never_panics_on_mutated(buf in mutated(Serializer::UbJson)) {
            let _ = decode(&buf);
        }
    }
}
