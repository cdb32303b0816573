//! `wamp.2.json`: serde_json over the value tree, with the WAMP binary convention.
//!
//! A JSON string whose first character is U+0000 carries binary: the rest is standard base64
//! (padding optional on input, always written). Integers decode to `Int` where they fit in
//! `i64`, to `UInt` up to `u64::MAX`, and to `Float` beyond (as serde_json does). Non-finite
//! floats encode as `null`.
//!
//! Note: serde_json is built without its `float_roundtrip` feature, so decoding a float may be
//! off by one ulp from the value that was encoded.

use std::cell::Cell;
use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

use super::reader::enter;
use super::{DecodeError, Dict, Value};

/// Base64 for binary strings: standard alphabet, padding accepted or not.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes one JSON payload.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let text = std::str::from_utf8(buf).map_err(|_| DecodeError::InvalidUtf8)?;
    let failure = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = ValueSeed {
        failure: &failure,
        depth: 0,
    };
    match seed.deserialize(&mut de) {
        Ok(v) => {
            de.end().map_err(|_| DecodeError::TrailingBytes)?;
            Ok(v)
        }
        // Our own failures (depth, base64) travel through serde as a custom error; the cell
        // holds the real kind.
        Err(e) => Err(failure.get().unwrap_or_else(|| map_error(&e))),
    }
}

fn map_error(e: &serde_json::Error) -> DecodeError {
    match e.classify() {
        serde_json::error::Category::Eof => DecodeError::UnexpectedEof,
        _ => DecodeError::InvalidJson {
            line: e.line(),
            column: e.column(),
        },
    }
}

/// Builds a `Value`, counting nesting depth and recording our own failure kinds.
#[derive(Clone, Copy)]
struct ValueSeed<'c> {
    failure: &'c Cell<Option<DecodeError>>,
    depth: usize,
}

impl ValueSeed<'_> {
    fn fail<E: de::Error>(self, e: DecodeError) -> E {
        self.failure.set(Some(e));
        E::custom(e)
    }

    fn string<E: de::Error>(self, s: &str) -> Result<Value, E> {
        match s.strip_prefix('\0') {
            Some(b64) => BASE64_LENIENT
                .decode(b64)
                .map(|b| Value::Bytes(b.into()))
                .map_err(|_| self.fail(DecodeError::InvalidBase64)),
            None => Ok(Value::Str(s.to_owned())),
        }
    }

    fn nested<E: de::Error>(self) -> Result<Self, E> {
        match enter(self.depth) {
            Ok(depth) => Ok(Self { depth, ..self }),
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::from(u))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.string(s)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        if s.starts_with('\0') {
            self.string(&s)
        } else {
            Ok(Value::Str(s))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut list = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            list.push(v);
        }
        Ok(Value::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut dict = Dict::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(inner)?;
            dict.insert(k, v);
        }
        Ok(Value::Dict(dict))
    }
}

/// Appends the JSON text of `v` to `out`.
pub(crate) fn encode(v: &Value, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &SerValue::<true>(v))
        .expect("serializing a Value into a Vec<u8> cannot fail");
}

/// Appends the JSON text of the list of `parts` (see `Serializer::encode_parts`).
pub(crate) fn encode_parts(parts: &[super::Part<'_>], out: &mut Vec<u8>) {
    serde_json::to_writer(out, &SerParts::<true>(parts))
        .expect("serializing parts into a Vec<u8> cannot fail");
}

/// Serializes a list of borrowed parts through serde (JSON and CBOR).
pub(crate) struct SerParts<'a, 'p, const JSON: bool>(pub(crate) &'a [super::Part<'p>]);

impl<const JSON: bool> Serialize for SerParts<'_, '_, JSON> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| SerPart::<JSON>(*p)))
    }
}

struct SerPart<'a, const JSON: bool>(super::Part<'a>);

impl<const JSON: bool> Serialize for SerPart<'_, JSON> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use super::Part;
        match self.0 {
            Part::UInt(u) => SerValue::<JSON>(&Value::from(u)).serialize(s),
            Part::Str(st) => s.serialize_str(st),
            Part::Bytes(b) if JSON => s.collect_str(&Binary(b)),
            Part::Bytes(b) => s.serialize_bytes(b),
            Part::List(l) => s.collect_seq(l.iter().map(SerValue::<JSON>)),
            Part::Dict(d) => s.collect_map(d.iter().map(|(k, v)| (k, SerValue::<JSON>(v)))),
        }
    }
}

/// Serializes a `Value` through serde; `JSON` selects the WAMP JSON binary convention for
/// `Bytes`, otherwise they are serialized natively (CBOR byte strings).
pub(crate) struct SerValue<'a, const JSON: bool>(pub(crate) &'a Value);

impl<const JSON: bool> Serialize for SerValue<'_, JSON> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(st) => s.serialize_str(st),
            Value::Bytes(b) if JSON => s.collect_str(&Binary(b)),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::List(l) => s.collect_seq(l.iter().map(SerValue::<JSON>)),
            Value::Dict(d) => s.collect_map(d.iter().map(|(k, v)| (k, SerValue::<JSON>(v)))),
        }
    }
}

/// `"\0" + base64`, written straight into the serializer without a temporary string.
struct Binary<'a>(&'a [u8]);

impl fmt::Display for Binary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\0")?;
        fmt::Display::fmt(&base64::display::Base64Display::new(self.0, &STANDARD), f)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::wire::testutil::{arb_value, assert_eq_float_ulps, dict, mutated};
    use crate::wire::{Serializer, MAX_DEPTH};

    fn enc(v: &Value) -> String {
        let mut out = Vec::new();
        encode(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn wamp_spec_binary_vector() {
        let v = Value::Bytes(Bytes::from_static(&[
            0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        ]));
        assert_eq!(enc(&v), r#""\u0000EBESExQVFhcYGQ==""#);
        assert_eq!(decode(br#""\u0000EBESExQVFhcYGQ==""#), Ok(v.clone()));
        // Missing padding is tolerated.
        assert_eq!(decode(br#""\u0000EBESExQVFhcYGQ""#), Ok(v));
    }

    #[test]
    fn empty_binary() {
        let v = Value::Bytes(Bytes::new());
        assert_eq!(enc(&v), r#""\u0000""#);
        assert_eq!(decode(br#""\u0000""#), Ok(v));
    }

    #[test]
    fn binary_in_containers_and_keys_stay_strings() {
        let v = decode(br#"{"\u0000AA==": ["\u0000AQI=", "x"]}"#).unwrap();
        let expected = Value::Dict(dict([(
            "\0AA==",
            Value::List(vec![Value::Bytes(Bytes::from_static(&[1, 2])), "x".into()]),
        )]));
        assert_eq!(v, expected);
    }

    #[test]
    fn scalars() {
        assert_eq!(decode(b"null"), Ok(Value::Null));
        assert_eq!(decode(b" true "), Ok(Value::Bool(true)));
        assert_eq!(decode(b"-9223372036854775808"), Ok(Value::Int(i64::MIN)));
        assert_eq!(decode(b"9223372036854775807"), Ok(Value::Int(i64::MAX)));
        assert_eq!(decode(b"9223372036854775808"), Ok(Value::UInt(1 << 63)));
        assert_eq!(decode(b"18446744073709551615"), Ok(Value::UInt(u64::MAX)));
        assert_eq!(
            decode(b"18446744073709551616"),
            Ok(Value::Float(18446744073709551616.0))
        );
        assert_eq!(decode(b"1.0"), Ok(Value::Float(1.0)));
        assert_eq!(decode(b"1e2"), Ok(Value::Float(100.0)));
        assert_eq!(
            decode(br#""h\u00e9llo \ud83d\ude00""#),
            Ok("héllo 😀".into())
        );
        assert_eq!(enc(&Value::Float(1.0)), "1.0");
        assert_eq!(enc(&Value::Float(f64::NAN)), "null");
        assert_eq!(enc(&Value::Float(f64::INFINITY)), "null");
        assert_eq!(enc(&Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(enc(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(enc(&"a\"\n\u{1}".into()), r#""a\"\n\u0001""#);
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(
            decode(br#"{"a":1,"a":2}"#),
            Ok(Value::Dict(dict([("a", Value::Int(2))])))
        );
    }

    #[test]
    fn round_trip_every_type() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::Int(-1),
            Value::UInt(u64::MAX),
            Value::Float(-0.5),
            Value::Float(1e300),
            Value::Str(String::new()),
            Value::Str("日本語 ✓ 😀".into()),
            Value::Bytes(Bytes::from_static(b"\x00\xff")),
            Value::List(vec![]),
            Value::Dict(Dict::new()),
            Value::Dict(dict([(
                "k",
                Value::List(vec![Value::Dict(dict([("", 1u64.into())]))]),
            )])),
        ]);
        assert_eq!(decode(enc(&v).as_bytes()), Ok(v));
    }

    // One test per error kind JSON can produce.

    #[test]
    fn error_invalid_utf8() {
        assert_eq!(decode(b"\"\xff\""), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn error_unexpected_eof() {
        assert_eq!(decode(b""), Err(DecodeError::UnexpectedEof));
        assert_eq!(decode(b"[1,"), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn error_invalid_json() {
        assert_eq!(
            decode(b"[1,]"),
            Err(DecodeError::InvalidJson { line: 1, column: 4 })
        );
        assert!(matches!(
            decode(b"\n{1:2}"),
            Err(DecodeError::InvalidJson { line: 2, .. })
        ));
    }

    #[test]
    fn error_trailing_bytes() {
        assert_eq!(decode(b"[1] [2]"), Err(DecodeError::TrailingBytes));
        assert_eq!(decode(b"[1]\n"), Ok(Value::List(vec![Value::Int(1)])));
    }

    #[test]
    fn error_invalid_base64() {
        assert_eq!(decode(br#""\u0000!!!""#), Err(DecodeError::InvalidBase64));
        assert_eq!(
            decode(br#"[{"a":"\u0000A"}]"#),
            Err(DecodeError::InvalidBase64)
        );
    }

    #[test]
    fn error_too_deep() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(decode(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(decode(deep.as_bytes()), Err(DecodeError::TooDeep));
        let deep_dicts = "{\"a\":".repeat(MAX_DEPTH + 1);
        assert_eq!(decode(deep_dicts.as_bytes()), Err(DecodeError::TooDeep));
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in arb_value()) {
            let v = json_representable(v);
            let bytes = Serializer::Json.encode_to_bytes(&v);
            let back = decode(&bytes).unwrap();
            assert_eq_float_ulps(&back, &v, 2);
        }

        #[test]
        fn prop_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
        }

        #[test]
        fn prop_never_panics_on_mutated(buf in mutated(Serializer::Json)) {
            let _ = decode(&buf);
        }
    }

    /// JSON cannot carry a text string that starts with U+0000 (it reads back as binary).
    fn json_representable(v: Value) -> Value {
        match v {
            Value::Str(s) if s.starts_with('\0') => Value::Str(s.replacen('\0', "\u{1}", 1)),
            Value::List(l) => Value::List(l.into_iter().map(json_representable).collect()),
            Value::Dict(d) => Value::Dict(
                d.into_iter()
                    .map(|(k, v)| (k, json_representable(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}
