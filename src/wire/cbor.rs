//! `wamp.2.cbor`: CBOR (RFC 8949) over the value tree.
//!
//! byte string ↔ `Bytes`, text ↔ `Str`, map keys must be text. Tags are skipped and their
//! content kept, except bignums (tags 2 and 3), which are rejected. `undefined` reads as `Null`.
//! Indefinite-length strings, arrays and maps are accepted.
//!
//! Encoding goes through ciborium's serializer: definite lengths, minimal integer heads, and
//! each float in the smallest width that holds it exactly (half, single or double). Decoding is
//! a direct walk over the input slice so that every declared length is checked against the
//! remaining input before anything is allocated.

use bytes::Bytes;

use super::json::SerValue;
use super::reader::{enter, Reader};
use super::{DecodeError, Dict, Value};

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
/// The "break" stop code that ends an indefinite-length item.
const BREAK: u8 = 0xff;
const TAG_POSITIVE_BIGNUM: u64 = 2;
const TAG_NEGATIVE_BIGNUM: u64 = 3;

/// Decodes one CBOR payload.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(buf);
    let v = value(&mut r, 0)?;
    r.finish()?;
    Ok(v)
}

/// The argument of an initial byte: `None` for indefinite length (additional info 31).
fn argument(r: &mut Reader<'_>, initial: u8) -> Result<Option<u64>, DecodeError> {
    Ok(Some(match initial & 0x1f {
        info @ 0..=23 => info.into(),
        24 => r.byte()?.into(),
        25 => u16::from_be_bytes(r.array()?).into(),
        26 => u32::from_be_bytes(r.array()?).into(),
        27 => u64::from_be_bytes(r.array()?),
        31 => return Ok(None),
        _ => return Err(DecodeError::InvalidMarker(initial)),
    }))
}

/// A definite argument (integers, tags); indefinite is invalid for these major types.
fn definite(r: &mut Reader<'_>, initial: u8) -> Result<u64, DecodeError> {
    argument(r, initial)?.ok_or(DecodeError::InvalidMarker(initial))
}

fn length(arg: u64) -> Result<usize, DecodeError> {
    usize::try_from(arg).map_err(|_| DecodeError::LengthTooLarge)
}

fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    // Tags loop here instead of recursing: a chain of tags costs no stack.
    loop {
        let initial = r.byte()?;
        return Ok(match initial >> 5 {
            MAJOR_UNSIGNED => Value::from(definite(r, initial)?),
            MAJOR_NEGATIVE => {
                let n = definite(r, initial)?;
                // The value is -1 - n; `!` computes it without overflow.
                let n = i64::try_from(n)
                    .map_err(|_| DecodeError::Unsupported("cbor integer below i64::MIN"))?;
                Value::Int(!n)
            }
            MAJOR_BYTES => Value::Bytes(match argument(r, initial)? {
                Some(len) => Bytes::copy_from_slice(r.take(length(len)?)?),
                None => Bytes::from(chunks(r, MAJOR_BYTES)?),
            }),
            MAJOR_TEXT => Value::Str(match argument(r, initial)? {
                Some(len) => r.take_str(length(len)?)?.to_owned(),
                None => String::from_utf8(chunks(r, MAJOR_TEXT)?)
                    .map_err(|_| DecodeError::InvalidUtf8)?,
            }),
            MAJOR_ARRAY => {
                let depth = enter(depth)?;
                match argument(r, initial)? {
                    Some(len) => {
                        let len = length(len)?;
                        r.check_count(len, 1)?;
                        let mut list = Vec::with_capacity(len);
                        for _ in 0..len {
                            list.push(value(r, depth)?);
                        }
                        Value::List(list)
                    }
                    None => {
                        let mut list = Vec::new();
                        while !at_break(r) {
                            list.push(value(r, depth)?);
                        }
                        Value::List(list)
                    }
                }
            }
            MAJOR_MAP => {
                let depth = enter(depth)?;
                let mut dict = Dict::new();
                match argument(r, initial)? {
                    Some(len) => {
                        let len = length(len)?;
                        r.check_count(len, 2)?;
                        for _ in 0..len {
                            entry(r, depth, &mut dict)?;
                        }
                    }
                    None => {
                        while !at_break(r) {
                            entry(r, depth, &mut dict)?;
                        }
                    }
                }
                Value::Dict(dict)
            }
            MAJOR_TAG => match definite(r, initial)? {
                TAG_POSITIVE_BIGNUM | TAG_NEGATIVE_BIGNUM => {
                    return Err(DecodeError::Unsupported("cbor bignum"))
                }
                _ => continue,
            },
            // Major type 7: simple values and floats.
            _ => match initial & 0x1f {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => Value::Float(f16_to_f64(u16::from_be_bytes(r.array()?))),
                26 => Value::Float(f32::from_be_bytes(r.array()?).into()),
                27 => Value::Float(f64::from_be_bytes(r.array()?)),
                24 => {
                    r.byte()?;
                    return Err(DecodeError::Unsupported("cbor simple value"));
                }
                0..=19 => return Err(DecodeError::Unsupported("cbor simple value")),
                // 28..=30 are reserved; 31 is a break outside an indefinite-length item.
                _ => return Err(DecodeError::InvalidMarker(initial)),
            },
        });
    }
}

/// Consumes a break if one is next. At the end of input it returns false so that the
/// following read reports `UnexpectedEof`.
fn at_break(r: &mut Reader<'_>) -> bool {
    if r.peek() == Some(BREAK) {
        let _ = r.byte();
        true
    } else {
        false
    }
}

/// One map entry; the key must be text (possibly tagged).
fn entry(r: &mut Reader<'_>, depth: usize, dict: &mut Dict) -> Result<(), DecodeError> {
    let key = match value(r, depth)? {
        Value::Str(k) => k,
        _ => return Err(DecodeError::NonStringKey),
    };
    let v = value(r, depth)?;
    dict.insert(key, v);
    Ok(())
}

/// The concatenated chunks of an indefinite-length byte or text string. Each chunk must be a
/// definite-length string of the same major type; text chunks must each be UTF-8.
fn chunks(r: &mut Reader<'_>, major: u8) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    loop {
        let initial = r.byte()?;
        if initial == BREAK {
            return Ok(out);
        }
        if initial >> 5 != major {
            return Err(DecodeError::InvalidMarker(initial));
        }
        let len = length(definite(r, initial)?)?;
        let chunk = r.take(len)?;
        if major == MAJOR_TEXT && std::str::from_utf8(chunk).is_err() {
            return Err(DecodeError::InvalidUtf8);
        }
        out.extend_from_slice(chunk);
    }
}

/// IEEE 754 half precision to double (RFC 8949 appendix D); exact for every input.
fn f16_to_f64(half: u16) -> f64 {
    let exp = (half >> 10) & 0x1f;
    let mant = f64::from(half & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(i32::from(exp) - 15),
    };
    if half & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Appends the CBOR encoding of `v` to `out`.
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    ciborium::into_writer(&SerValue::<false>(v), out)
        .expect("serializing a Value into a Vec<u8> cannot fail");
}

/// Appends the CBOR list of `parts` (see `Serializer::encode_parts`).
pub(crate) fn encode_parts(parts: &[super::Part<'_>], out: &mut Vec<u8>) {
    ciborium::into_writer(&super::json::SerParts::<false>(parts), out)
        .expect("serializing parts into a Vec<u8> cannot fail");
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
    fn rfc8949_vectors() {
        let cases: Vec<(Value, &[u8])> = vec![
            (Value::Int(0), &[0x00]),
            (Value::Int(23), &[0x17]),
            (Value::Int(24), &[0x18, 0x18]),
            (Value::Int(1000), &[0x19, 0x03, 0xe8]),
            (
                Value::Int(1_000_000_000_000),
                &[0x1b, 0, 0, 0, 0xe8, 0xd4, 0xa5, 0x10, 0],
            ),
            (
                Value::UInt(u64::MAX),
                &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (Value::Int(-1), &[0x20]),
            (Value::Int(-1000), &[0x39, 0x03, 0xe7]),
            (
                Value::Int(i64::MIN),
                &[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (Value::Float(0.0), &[0xf9, 0x00, 0x00]),
            (Value::Float(-0.0), &[0xf9, 0x80, 0x00]),
            (Value::Float(1.5), &[0xf9, 0x3e, 0x00]),
            (Value::Float(65504.0), &[0xf9, 0x7b, 0xff]),
            (Value::Float(5.960464477539063e-8), &[0xf9, 0x00, 0x01]),
            (Value::Float(100000.0), &[0xfa, 0x47, 0xc3, 0x50, 0x00]),
            (
                Value::Float(1.1),
                &[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
            ),
            (Value::Float(f64::INFINITY), &[0xf9, 0x7c, 0x00]),
            (Value::Float(f64::NEG_INFINITY), &[0xf9, 0xfc, 0x00]),
            (Value::Bool(false), &[0xf4]),
            (Value::Bool(true), &[0xf5]),
            (Value::Null, &[0xf6]),
            (
                Value::Bytes(Bytes::from_static(&[1, 2, 3, 4])),
                &[0x44, 1, 2, 3, 4],
            ),
            (Value::Str("IETF".into()), &[0x64, 0x49, 0x45, 0x54, 0x46]),
            (Value::Str("\u{6c34}".into()), &[0x63, 0xe6, 0xb0, 0xb4]),
            (Value::List(vec![]), &[0x80]),
            (Value::Dict(Dict::new()), &[0xa0]),
            (
                Value::Dict(dict([
                    ("a", Value::Int(1)),
                    ("b", Value::List(vec![Value::Int(2)])),
                ])),
                &[0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x81, 0x02],
            ),
        ];
        for (v, bytes) in cases {
            assert_eq!(enc(&v), bytes, "{v:?}");
            assert_eq!(decode(bytes), Ok(v));
        }
    }

    #[test]
    fn rfc8949_decode_only_vectors() {
        // Tagged values keep their content.
        assert_eq!(
            decode(&[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0]),
            Ok(Value::Int(1363896240))
        );
        assert_eq!(
            decode(&[0xd8, 0x20, 0x63, b'a', b'/', b'b']),
            Ok(Value::Str("a/b".into()))
        );
        // undefined
        assert_eq!(decode(&[0xf7]), Ok(Value::Null));
        // Wider encodings than needed.
        assert_eq!(
            decode(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            Ok(Value::Float(1.5))
        );
        assert_eq!(decode(&[0x1b, 0, 0, 0, 0, 0, 0, 0, 1]), Ok(Value::Int(1)));
        // Indefinite-length items.
        assert_eq!(
            decode(&[0x5f, 0x42, 1, 2, 0x43, 3, 4, 5, 0xff]),
            Ok(Value::Bytes(Bytes::from_static(&[1, 2, 3, 4, 5])))
        );
        assert_eq!(
            decode(&[0x7f, 0x65, b's', b't', b'r', b'e', b'a', 0x64, b'm', b'i', b'n', b'g', 0xff]),
            Ok(Value::Str("streaming".into()))
        );
        assert_eq!(
            decode(&[0x9f, 0x01, 0x82, 0x02, 0x03, 0x9f, 0x04, 0x05, 0xff, 0xff]),
            Ok(Value::List(vec![
                Value::Int(1),
                Value::List(vec![Value::Int(2), Value::Int(3)]),
                Value::List(vec![Value::Int(4), Value::Int(5)]),
            ]))
        );
        assert_eq!(
            decode(&[0xbf, 0x61, 0x61, 0x01, 0x61, 0x62, 0x9f, 0x02, 0x03, 0xff, 0xff]),
            Ok(Value::Dict(dict([
                ("a", Value::Int(1)),
                ("b", Value::List(vec![Value::Int(2), Value::Int(3)]))
            ])))
        );
        // Half-precision specials.
        assert_eq!(
            decode(&[0xf9, 0x04, 0x00]),
            Ok(Value::Float(0.00006103515625))
        );
        assert_eq!(decode(&[0xf9, 0xc4, 0x00]), Ok(Value::Float(-4.0)));
        assert!(matches!(decode(&[0xf9, 0x7e, 0x00]), Ok(Value::Float(f)) if f.is_nan()));
    }

    #[test]
    fn round_trip_every_type() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::Float(1e-310),
            Value::Float(f64::MAX),
            Value::Str("日本語 ✓ 😀".into()),
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
    fn error_unexpected_eof() {
        assert_eq!(decode(&[]), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(&[0x19, 0x01]), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(&[0x9f, 0x01]), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(&[0xc1]), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn error_trailing_bytes() {
        assert_eq!(decode(&[0xf6, 0x00]), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn error_length_too_large_fails_fast() {
        // 2^60 elements / bytes.
        let huge = [0x10, 0, 0, 0, 0, 0, 0, 0];
        for major in [0x5b, 0x7b, 0x9b, 0xbb] {
            let mut buf = vec![major];
            buf.extend_from_slice(&huge);
            assert_eq!(decode(&buf), Err(DecodeError::LengthTooLarge), "{major:#x}");
        }
        // u64::MAX does not overflow the count check.
        assert_eq!(
            decode(&[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthTooLarge)
        );
        assert_eq!(
            decode(&[0x5f, 0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::LengthTooLarge)
        );
    }

    #[test]
    fn error_invalid_utf8() {
        assert_eq!(decode(&[0x61, 0xff]), Err(DecodeError::InvalidUtf8));
        // Each chunk must be valid on its own, even if the concatenation would be.
        assert_eq!(
            decode(&[0x7f, 0x61, 0xc3, 0x61, 0xa9, 0xff]),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn error_invalid_marker() {
        // Reserved additional information.
        assert_eq!(decode(&[0x1c]), Err(DecodeError::InvalidMarker(0x1c)));
        assert_eq!(decode(&[0xfe]), Err(DecodeError::InvalidMarker(0xfe)));
        // Break outside an indefinite-length item.
        assert_eq!(decode(&[0xff]), Err(DecodeError::InvalidMarker(0xff)));
        // Indefinite-length integer.
        assert_eq!(decode(&[0x1f]), Err(DecodeError::InvalidMarker(0x1f)));
        // A text chunk inside an indefinite byte string.
        assert_eq!(
            decode(&[0x5f, 0x61, b'a', 0xff]),
            Err(DecodeError::InvalidMarker(0x61))
        );
        // Nested indefinite chunk.
        assert_eq!(
            decode(&[0x5f, 0x5f, 0xff, 0xff]),
            Err(DecodeError::InvalidMarker(0x5f))
        );
    }

    #[test]
    fn error_non_string_key() {
        assert_eq!(decode(&[0xa1, 0x01, 0x02]), Err(DecodeError::NonStringKey));
        assert_eq!(
            decode(&[0xa1, 0x41, b'a', 0x02]),
            Err(DecodeError::NonStringKey)
        );
    }

    #[test]
    fn error_unsupported() {
        assert_eq!(
            decode(&[0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Unsupported("cbor bignum"))
        );
        assert_eq!(
            decode(&[0xf0]),
            Err(DecodeError::Unsupported("cbor simple value"))
        );
        assert_eq!(
            decode(&[0xf8, 0xff]),
            Err(DecodeError::Unsupported("cbor simple value"))
        );
        assert_eq!(
            decode(&[0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Unsupported("cbor integer below i64::MIN"))
        );
    }

    #[test]
    fn error_too_deep() {
        let mut buf = vec![0x81; MAX_DEPTH];
        buf.push(0xf6);
        assert!(decode(&buf).is_ok());
        let mut buf = vec![0x9f; MAX_DEPTH + 1];
        buf.push(0xf6);
        assert_eq!(decode(&buf), Err(DecodeError::TooDeep));
        // Tags do not count as nesting and cannot exhaust the stack.
        let mut buf = vec![0xc6; 100_000];
        buf.push(0x01);
        assert_eq!(decode(&buf), Ok(Value::Int(1)));
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in arb_value()) {
            prop_assert_eq!(decode(&Serializer::Cbor.encode_to_bytes(&v)), Ok(v));
        }

        #[test]
        fn prop_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
        }

        #[test]
        fn prop_never_panics_on_mutated(buf in mutated(Serializer::Cbor)) {
            let _ = decode(&buf);
        }
    }
}
