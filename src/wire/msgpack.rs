//! `wamp.2.msgpack`: MessagePack (spec v5) over the value tree.
//!
//! str ↔ `Str` (must be UTF-8), bin ↔ `Bytes`, map keys must be str, ext types are rejected.
//! Encoding uses the smallest integer representation, str8 and the bin family (rmp), and
//! float64 for every float so no precision is lost. The decoder classifies markers with
//! `rmp::Marker` and reads payloads straight from the input slice.

use bytes::Bytes;
use rmp::encode as enc;
use rmp::Marker;

use super::reader::{enter, Reader};
use super::{DecodeError, Dict, Value};

/// Decodes one msgpack payload.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(buf);
    let v = value(&mut r, 0)?;
    r.finish()?;
    Ok(v)
}

fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    let b = r.byte()?;
    Ok(match Marker::from_u8(b) {
        Marker::Null => Value::Null,
        Marker::True => Value::Bool(true),
        Marker::False => Value::Bool(false),
        Marker::FixPos(n) => Value::Int(n.into()),
        Marker::FixNeg(n) => Value::Int(n.into()),
        Marker::U8 => Value::Int(u8::from_be_bytes(r.array()?).into()),
        Marker::U16 => Value::Int(u16::from_be_bytes(r.array()?).into()),
        Marker::U32 => Value::Int(u32::from_be_bytes(r.array()?).into()),
        Marker::U64 => Value::from(u64::from_be_bytes(r.array()?)),
        Marker::I8 => Value::Int(i8::from_be_bytes(r.array()?).into()),
        Marker::I16 => Value::Int(i16::from_be_bytes(r.array()?).into()),
        Marker::I32 => Value::Int(i32::from_be_bytes(r.array()?).into()),
        Marker::I64 => Value::Int(i64::from_be_bytes(r.array()?)),
        Marker::F32 => Value::Float(f32::from_be_bytes(r.array()?).into()),
        Marker::F64 => Value::Float(f64::from_be_bytes(r.array()?)),
        m @ (Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
            Value::Str(string(r, m)?.to_owned())
        }
        Marker::Bin8 => {
            let len = len8(r)?;
            bin(r, len)?
        }
        Marker::Bin16 => {
            let len = len16(r)?;
            bin(r, len)?
        }
        Marker::Bin32 => {
            let len = len32(r)?;
            bin(r, len)?
        }
        Marker::FixArray(n) => array(r, n.into(), depth)?,
        Marker::Array16 => {
            let len = len16(r)?;
            array(r, len, depth)?
        }
        Marker::Array32 => {
            let len = len32(r)?;
            array(r, len, depth)?
        }
        Marker::FixMap(n) => map(r, n.into(), depth)?,
        Marker::Map16 => {
            let len = len16(r)?;
            map(r, len, depth)?
        }
        Marker::Map32 => {
            let len = len32(r)?;
            map(r, len, depth)?
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => return Err(DecodeError::Unsupported("msgpack extension type")),
        Marker::Reserved => return Err(DecodeError::InvalidMarker(b)),
    })
}

fn len8(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    Ok(r.byte()?.into())
}

fn len16(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    Ok(u16::from_be_bytes(r.array()?).into())
}

fn len32(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    usize::try_from(u32::from_be_bytes(r.array()?)).map_err(|_| DecodeError::LengthTooLarge)
}

/// The payload of a str whose marker `m` was read.
fn string<'a>(r: &mut Reader<'a>, m: Marker) -> Result<&'a str, DecodeError> {
    let len = match m {
        Marker::FixStr(n) => n.into(),
        Marker::Str8 => len8(r)?,
        Marker::Str16 => len16(r)?,
        _ => len32(r)?,
    };
    r.take_str(len)
}

fn bin(r: &mut Reader<'_>, len: usize) -> Result<Value, DecodeError> {
    Ok(Value::Bytes(Bytes::copy_from_slice(r.take(len)?)))
}

fn array(r: &mut Reader<'_>, len: usize, depth: usize) -> Result<Value, DecodeError> {
    let depth = enter(depth)?;
    r.check_count(len, 1)?;
    let mut list = Vec::with_capacity(len);
    for _ in 0..len {
        list.push(value(r, depth)?);
    }
    Ok(Value::List(list))
}

fn map(r: &mut Reader<'_>, len: usize, depth: usize) -> Result<Value, DecodeError> {
    let depth = enter(depth)?;
    r.check_count(len, 2)?;
    let mut dict = Dict::new();
    for _ in 0..len {
        let key = match Marker::from_u8(r.byte()?) {
            m @ (Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
                string(r, m)?.to_owned()
            }
            _ => return Err(DecodeError::NonStringKey),
        };
        let v = value(r, depth)?;
        dict.insert(key, v);
    }
    Ok(Value::Dict(dict))
}

/// Appends the msgpack encoding of `v` to `out`.
///
/// # Panics
///
/// If a string, binary, list or dictionary has 2^32 or more bytes or elements (msgpack cannot
/// express it).
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    const VEC_WRITE: &str = "writing msgpack into a Vec<u8> cannot fail";
    match v {
        Value::Null => enc::write_nil(out).expect(VEC_WRITE),
        Value::Bool(b) => enc::write_bool(out, *b).expect(VEC_WRITE),
        Value::Int(i) => {
            enc::write_sint(out, *i).expect(VEC_WRITE);
        }
        Value::UInt(u) => {
            enc::write_uint(out, *u).expect(VEC_WRITE);
        }
        Value::Float(f) => enc::write_f64(out, *f).expect(VEC_WRITE),
        Value::Str(s) => {
            enc::write_str_len(out, wire_len(s.len())).expect(VEC_WRITE);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            enc::write_bin_len(out, wire_len(b.len())).expect(VEC_WRITE);
            out.extend_from_slice(b);
        }
        Value::List(l) => {
            enc::write_array_len(out, wire_len(l.len())).expect(VEC_WRITE);
            for item in l {
                encode(item, out);
            }
        }
        Value::Dict(d) => {
            enc::write_map_len(out, wire_len(d.len())).expect(VEC_WRITE);
            for (k, item) in d {
                enc::write_str_len(out, wire_len(k.len())).expect(VEC_WRITE);
                out.extend_from_slice(k.as_bytes());
                encode(item, out);
            }
        }
    }
}

/// Appends the msgpack list of `parts` (see `Serializer::encode_parts`).
pub(crate) fn encode_parts(parts: &[super::Part<'_>], out: &mut Vec<u8>) {
    use super::Part;
    const VEC_WRITE: &str = "writing msgpack into a Vec<u8> cannot fail";
    enc::write_array_len(out, wire_len(parts.len())).expect(VEC_WRITE);
    for part in parts {
        match *part {
            Part::UInt(u) => encode(&Value::from(u), out),
            Part::Str(s) => {
                enc::write_str_len(out, wire_len(s.len())).expect(VEC_WRITE);
                out.extend_from_slice(s.as_bytes());
            }
            Part::Bytes(b) => {
                enc::write_bin_len(out, wire_len(b.len())).expect(VEC_WRITE);
                out.extend_from_slice(b);
            }
            Part::List(l) => {
                enc::write_array_len(out, wire_len(l.len())).expect(VEC_WRITE);
                for item in l {
                    encode(item, out);
                }
            }
            Part::Dict(d) => {
                enc::write_map_len(out, wire_len(d.len())).expect(VEC_WRITE);
                for (k, item) in d {
                    enc::write_str_len(out, wire_len(k.len())).expect(VEC_WRITE);
                    out.extend_from_slice(k.as_bytes());
                    encode(item, out);
                }
            }
        }
    }
}

fn wire_len(len: usize) -> u32 {
    u32::try_from(len).expect("msgpack lengths are below 2^32")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::testutil::{arb_value, dict, mutated};
    use crate::wire::{Serializer, MAX_DEPTH};

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    #[test]
    fn smallest_integer_encoding() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (255, &[0xcc, 0xff]),
            (256, &[0xcd, 0x01, 0x00]),
            (65536, &[0xce, 0, 1, 0, 0]),
            (1 << 32, &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for &(i, bytes) in cases {
            assert_eq!(enc(&Value::Int(i)), bytes, "{i}");
            assert_eq!(decode(bytes), Ok(Value::Int(i)));
        }
        assert_eq!(
            enc(&Value::UInt(u64::MAX)),
            [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            decode(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(Value::UInt(u64::MAX))
        );
        // Unsigned encodings of small numbers still decode to Int.
        assert_eq!(decode(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 5]), Ok(Value::Int(5)));
    }

    #[test]
    fn v5_types() {
        // str8 for 32..=255 bytes, bin family for binary.
        let s = "x".repeat(32);
        assert_eq!(enc(&s.as_str().into())[..2], [0xd9, 32]);
        assert_eq!(enc(&"ab".into()), [0xa2, b'a', b'b']);
        assert_eq!(
            enc(&Value::Bytes(Bytes::from_static(b"ab"))),
            [0xc4, 2, b'a', b'b']
        );
        assert_eq!(
            enc(&Value::Float(1.5)),
            [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(decode(&[0xca, 0x3f, 0xc0, 0, 0]), Ok(Value::Float(1.5)));
        assert_eq!(enc(&Value::Null), [0xc0]);
        assert_eq!(enc(&Value::Bool(true)), [0xc3]);
        assert_eq!(
            enc(&Value::Dict(dict([("a", Value::List(vec![]))]))),
            [0x81, 0xa1, b'a', 0x90]
        );
    }

    #[test]
    fn round_trip_every_type() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::Float(f64::INFINITY),
            Value::Float(-0.0),
            Value::Float(1e-310),
            Value::Str("日本語 ✓ 😀".into()),
            Value::Str("y".repeat(70_000)),
            Value::Bytes(Bytes::from(vec![7u8; 300])),
            Value::List(vec![]),
            Value::Dict(Dict::new()),
            Value::Dict(dict([(
                "k",
                Value::List(vec![Value::Dict(dict([("", 1u64.into())]))]),
            )])),
        ]);
        assert_eq!(decode(&enc(&v)), Ok(v));
        let big = Value::List(vec![Value::Int(1); 70_000]);
        assert_eq!(decode(&enc(&big)), Ok(big));
    }

    #[test]
    fn error_unexpected_eof() {
        assert_eq!(decode(&[]), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(&[0xcd, 0x01]), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(&[0x92, 0xcd, 0x01]), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn error_trailing_bytes() {
        assert_eq!(decode(&[0xc0, 0xc0]), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn error_length_too_large_fails_fast() {
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthTooLarge)
        );
        assert_eq!(
            decode(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0]),
            Err(DecodeError::LengthTooLarge)
        );
        assert_eq!(
            decode(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthTooLarge)
        );
        assert_eq!(
            decode(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(DecodeError::LengthTooLarge)
        );
        // A map of n entries needs at least 2n bytes.
        assert_eq!(
            decode(&[0x82, 0xa0, 0xc0]),
            Err(DecodeError::LengthTooLarge)
        );
    }

    #[test]
    fn error_invalid_utf8() {
        assert_eq!(decode(&[0xa1, 0xff]), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            decode(&[0x81, 0xa1, 0xff, 0xc0]),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn error_invalid_marker() {
        assert_eq!(decode(&[0xc1]), Err(DecodeError::InvalidMarker(0xc1)));
    }

    #[test]
    fn error_unsupported_ext() {
        assert_eq!(
            decode(&[0xd4, 0x01, 0x00]),
            Err(DecodeError::Unsupported("msgpack extension type"))
        );
        assert_eq!(
            decode(&[0xc7, 0x00, 0x05]),
            Err(DecodeError::Unsupported("msgpack extension type"))
        );
    }

    #[test]
    fn error_non_string_key() {
        assert_eq!(decode(&[0x81, 0x01, 0xc0]), Err(DecodeError::NonStringKey));
        assert_eq!(
            decode(&[0x81, 0xc4, 0x00, 0xc0]),
            Err(DecodeError::NonStringKey)
        );
    }

    #[test]
    fn error_too_deep() {
        let mut buf = vec![0x91; MAX_DEPTH];
        buf.push(0xc0);
        assert!(decode(&buf).is_ok());
        let mut buf = vec![0x91; MAX_DEPTH + 1];
        buf.push(0xc0);
        assert_eq!(decode(&buf), Err(DecodeError::TooDeep));
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in arb_value()) {
            prop_assert_eq!(decode(&Serializer::MsgPack.encode_to_bytes(&v)), Ok(v));
        }

        #[test]
        fn prop_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
        }

        #[test]
        fn prop_never_panics_on_mutated(buf in mutated(Serializer::MsgPack)) {
            let _ = decode(&buf);
        }
    }
}
