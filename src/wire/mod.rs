//! Wire formats for WAMP payloads: the value tree and the four serializers.
//!
//! `Serializer` is a closed enum (json, msgpack, cbor, ubjson); dispatch is an exhaustive
//! `match`. Decoding never panics on peer input and returns `DecodeError`. The `.batched`
//! WebSocket variants are framing on top of a serializer (`split_batched` / `encode_batched`).
//!
//! Every decoder takes one whole message payload, checks each declared length against the
//! remaining input before allocating, bounds nesting at [`MAX_DEPTH`] and rejects trailing bytes.
//! Encoders append to a caller-owned buffer.

mod cbor;
mod json;
mod msgpack;
mod reader;
#[cfg(test)]
mod testutil;
mod ubjson;
pub mod value;

use bytes::Bytes;

pub use value::{Dict, Value};

/// One element of a list encoded from borrowed data (`Serializer::encode_parts`).
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// An unsigned integer (an ID, a message code), encoded as `Value::from(u64)` is.
    UInt(u64),
    /// A string.
    Str(&'a str),
    /// Binary.
    Bytes(&'a [u8]),
    /// A list of values.
    List(&'a [Value]),
    /// A dictionary.
    Dict(&'a Dict),
}

impl Part<'_> {
    /// The part as an owned value (for tests and the value form of messages).
    pub fn to_value(self) -> Value {
        match self {
            Part::UInt(u) => Value::from(u),
            Part::Str(s) => Value::Str(s.to_owned()),
            Part::Bytes(b) => Value::Bytes(Bytes::copy_from_slice(b)),
            Part::List(l) => Value::List(l.to_vec()),
            Part::Dict(d) => Value::Dict(d.clone()),
        }
    }
}

/// Maximum number of nested containers (lists and dictionaries) a decoder accepts.
///
/// WAMP messages are themselves a list, so payloads get `MAX_DEPTH - 2` levels. Kept below
/// serde_json's own recursion limit (128) so every format reports `TooDeep` alike.
pub const MAX_DEPTH: usize = 100;

/// Why a payload could not be decoded.
///
/// Small and `Copy` so the hot path never allocates for an error.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// Bytes follow the one value a payload must hold.
    #[error("trailing bytes after the value")]
    TrailingBytes,
    /// Containers nest deeper than [`MAX_DEPTH`].
    #[error("containers nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A declared length or element count exceeds what the remaining input can hold.
    #[error("declared length exceeds the remaining input")]
    LengthTooLarge,
    /// UBJSON typed containers of payload-less elements (`[$Z#...`) claim more elements than
    /// the message size allows (a zip-bomb guard).
    #[error("too many payload-less elements for the input size")]
    TooManyElements,
    /// A string is not valid UTF-8 (for JSON: the whole payload is not).
    #[error("invalid utf-8")]
    InvalidUtf8,
    /// JSON syntax error.
    #[error("invalid json at line {line} column {column}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A JSON string starting with U+0000 (WAMP binary convention) is not valid base64.
    #[error("invalid base64 in a binary string")]
    InvalidBase64,
    /// A type marker (msgpack, UBJSON) or initial byte (CBOR) that is invalid at this position.
    #[error("invalid type marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// A UBJSON length or count that is negative or not an integer.
    #[error("invalid length or count")]
    InvalidLength,
    /// A UBJSON high-precision number (`H`) that is not a finite decimal number.
    #[error("invalid high-precision number")]
    InvalidNumber,
    /// A dictionary key that is not a string.
    #[error("dictionary key is not a string")]
    NonStringKey,
    /// A well-formed item that has no WAMP value (msgpack ext, CBOR bignum, ...).
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A batched WebSocket message holds no message.
    #[error("batched message holds no message")]
    EmptyBatch,
    /// A batched WebSocket message ends inside a message or its length prefix.
    #[error("batched message ends inside a message")]
    TruncatedBatch,
}

/// A WAMP serializer (the payload format of one session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `wamp.2.json`, RawSocket id 1.
    Json,
    /// `wamp.2.msgpack`, RawSocket id 2.
    MsgPack,
    /// `wamp.2.cbor`, RawSocket id 3.
    Cbor,
    /// `wamp.2.ubjson` (spec UBJSON as py-ubjson writes it), RawSocket id 4.
    UbJson,
}

impl Serializer {
    /// Number of serializers (size of per-serializer caches).
    pub const COUNT: usize = 4;
    /// All serializers, in index order.
    pub const ALL: [Serializer; 4] = [Self::Json, Self::MsgPack, Self::Cbor, Self::UbJson];

    /// Index into per-serializer caches.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The config name (`"json"`, `"msgpack"`, `"cbor"`, `"ubjson"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::MsgPack => "msgpack",
            Self::Cbor => "cbor",
            Self::UbJson => "ubjson",
        }
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether messages travel as WebSocket text frames (only JSON).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Json)
    }

    /// Decodes one whole message payload into a `Value`.
    ///
    /// # Errors
    ///
    /// `DecodeError` for any input that is not exactly one valid value of this format; never
    /// panics, whatever the input.
    pub fn decode(self, buf: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Self::Json => json::decode(buf),
            Self::MsgPack => msgpack::decode(buf),
            Self::Cbor => cbor::decode(buf),
            Self::UbJson => ubjson::decode(buf),
        }
    }

    /// Appends the encoding of `v` to `out`.
    ///
    /// Values that a format cannot carry are mapped, not rejected: non-finite floats become
    /// JSON `null` and UBJSON `Z` (as serde_json and py-ubjson do), and JSON strings that start
    /// with U+0000 read back as binary (WAMP convention).
    pub fn encode(self, v: &Value, out: &mut Vec<u8>) {
        match self {
            Self::Json => json::encode(v, out),
            Self::MsgPack => msgpack::encode(v, out),
            Self::Cbor => cbor::encode(v, out),
            Self::UbJson => ubjson::encode(v, out),
        }
    }

    /// Appends the encoding of a list of borrowed `parts` to `out`: the same bytes as encoding
    /// `Value::List` of them, without building (cloning into) that value first. This is how
    /// messages with payloads are written.
    pub fn encode_parts(self, parts: &[Part<'_>], out: &mut Vec<u8>) {
        match self {
            Self::Json => json::encode_parts(parts, out),
            Self::MsgPack => msgpack::encode_parts(parts, out),
            Self::Cbor => cbor::encode_parts(parts, out),
            Self::UbJson => ubjson::encode_parts(parts, out),
        }
    }

    /// Encodes `v` into a fresh `Bytes`.
    pub fn encode_to_bytes(self, v: &Value) -> Bytes {
        let mut out = Vec::new();
        self.encode(v, &mut out);
        Bytes::from(out)
    }
}

/// Separator after each message of a `wamp.2.json.batched` WebSocket message (what Autobahn
/// writes).
pub const JSON_BATCH_SEPARATOR: u8 = 0x18;
/// Separator the WAMP spec text names for `json.batched`; accepted when splitting.
const JSON_BATCH_SEPARATOR_SPEC: u8 = 0x1e;

/// Splits one WebSocket message of a `.batched` subprotocol into its messages.
///
/// JSON: each message is followed by a separator byte, 0x18 (Autobahn) or 0x1e (spec text);
/// neither can occur inside JSON text. Binary formats: each message is prefixed with its
/// 4-byte big-endian length. Messages are not decoded here.
///
/// # Errors
///
/// `EmptyBatch` if `buf` holds no message, `TruncatedBatch` if it ends inside a message (JSON
/// without a final separator) or a length prefix.
pub fn split_batched(ser: Serializer, buf: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::EmptyBatch);
    }
    let mut msgs = Vec::new();
    if ser.is_text() {
        let mut rest = buf;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == JSON_BATCH_SEPARATOR || b == JSON_BATCH_SEPARATOR_SPEC)
                .ok_or(DecodeError::TruncatedBatch)?;
            msgs.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
    } else {
        let mut rest = buf;
        while !rest.is_empty() {
            let (prefix, tail) = rest
                .split_first_chunk::<4>()
                .ok_or(DecodeError::TruncatedBatch)?;
            let len = u32::from_be_bytes(*prefix) as usize;
            if len > tail.len() {
                return Err(DecodeError::TruncatedBatch);
            }
            let (msg, tail) = tail.split_at(len);
            msgs.push(msg);
            rest = tail;
        }
    }
    Ok(msgs)
}

/// Frames already-encoded messages as one batched WebSocket message: for JSON each message is
/// followed by 0x18 (as Autobahn writes), for binary formats prefixed with its 4-byte
/// big-endian length.
///
/// # Panics
///
/// If a binary message is 4 GiB or larger (no transport carries such a message).
pub fn encode_batched(ser: Serializer, msgs: &[Bytes], out: &mut Vec<u8>) {
    let framing = if ser.is_text() { 1 } else { 4 };
    out.reserve(msgs.iter().map(|m| m.len() + framing).sum());
    for msg in msgs {
        if ser.is_text() {
            out.extend_from_slice(msg);
            out.push(JSON_BATCH_SEPARATOR);
        } else {
            let len = u32::try_from(msg.len()).expect("batched message is smaller than 4 GiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_json_both_separators() {
        let buf = b"[1]\x18[2,\"a\"]\x1e{}\x18";
        let msgs = split_batched(Serializer::Json, buf).unwrap();
        assert_eq!(msgs, vec![&b"[1]"[..], b"[2,\"a\"]", b"{}"]);
        assert_eq!(
            Serializer::Json.decode(msgs[1]).unwrap(),
            Value::List(vec![Value::Int(2), "a".into()])
        );
    }

    #[test]
    fn split_json_single_message() {
        assert_eq!(
            split_batched(Serializer::Json, b"[1]\x18").unwrap(),
            vec![&b"[1]"[..]]
        );
    }

    #[test]
    fn split_json_missing_final_separator_is_truncated() {
        assert_eq!(
            split_batched(Serializer::Json, b"[1]\x18[2]"),
            Err(DecodeError::TruncatedBatch)
        );
        assert_eq!(
            split_batched(Serializer::Json, b"[1]"),
            Err(DecodeError::TruncatedBatch)
        );
    }

    #[test]
    fn split_empty_is_error() {
        for ser in Serializer::ALL {
            assert_eq!(
                split_batched(ser, b""),
                Err(DecodeError::EmptyBatch),
                "{ser:?}"
            );
        }
    }

    #[test]
    fn split_binary_length_prefixed() {
        let buf = [0, 0, 0, 2, 0x91, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0];
        let msgs = split_batched(Serializer::MsgPack, &buf).unwrap();
        assert_eq!(msgs, vec![&[0x91, 0x01][..], &[][..], &[0xc0][..]]);
    }

    #[test]
    fn split_binary_truncated() {
        for buf in [
            &[0u8, 0, 0][..],
            &[0, 0, 0, 3, 1, 2],
            &[0, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff],
        ] {
            for ser in [Serializer::MsgPack, Serializer::Cbor, Serializer::UbJson] {
                assert_eq!(
                    split_batched(ser, buf),
                    Err(DecodeError::TruncatedBatch),
                    "{buf:?}"
                );
            }
        }
    }

    #[test]
    fn batched_round_trip() {
        let values = [
            Value::List(vec![Value::Int(1), Value::Dict(Dict::new())]),
            Value::Str("x".into()),
            Value::Bytes(Bytes::from_static(b"\x18\x1e")),
        ];
        for ser in Serializer::ALL {
            let msgs: Vec<Bytes> = values.iter().map(|v| ser.encode_to_bytes(v)).collect();
            let mut out = Vec::new();
            encode_batched(ser, &msgs, &mut out);
            let split = split_batched(ser, &out).unwrap();
            let decoded: Vec<Value> = split.iter().map(|m| ser.decode(m).unwrap()).collect();
            assert_eq!(decoded, values, "{ser:?}");
        }
    }

    #[test]
    fn json_batch_uses_autobahn_separator() {
        let mut out = Vec::new();
        encode_batched(
            Serializer::Json,
            &[Bytes::from_static(b"[1]"), Bytes::from_static(b"[2]")],
            &mut out,
        );
        assert_eq!(out, b"[1]\x18[2]\x18");
        let mut out = Vec::new();
        encode_batched(Serializer::Cbor, &[Bytes::from_static(b"\x01")], &mut out);
        assert_eq!(out, [0, 0, 0, 1, 1]);
    }

    #[test]
    fn errors_are_lower_case_without_period() {
        let all = [
            DecodeError::UnexpectedEof,
            DecodeError::TrailingBytes,
            DecodeError::TooDeep,
            DecodeError::LengthTooLarge,
            DecodeError::TooManyElements,
            DecodeError::InvalidUtf8,
            DecodeError::InvalidJson { line: 1, column: 2 },
            DecodeError::InvalidBase64,
            DecodeError::InvalidMarker(0xc1),
            DecodeError::InvalidLength,
            DecodeError::InvalidNumber,
            DecodeError::NonStringKey,
            DecodeError::Unsupported("msgpack extension type"),
            DecodeError::EmptyBatch,
            DecodeError::TruncatedBatch,
        ];
        for e in all {
            let msg = e.to_string();
            assert!(msg.chars().next().unwrap().is_lowercase(), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        assert_eq!(
            DecodeError::InvalidMarker(0xc1).to_string(),
            "invalid type marker 0xc1"
        );
    }

    #[test]
    fn too_deep_for_every_format() {
        // MAX_DEPTH nested lists decode, one more does not.
        for ser in Serializer::ALL {
            let mut v = Value::Null;
            for _ in 0..MAX_DEPTH {
                v = Value::List(vec![v]);
            }
            let ok = ser.encode_to_bytes(&v);
            assert_eq!(ser.decode(&ok).as_ref(), Ok(&v), "{ser:?}");
            let deeper = ser.encode_to_bytes(&Value::List(vec![v]));
            assert_eq!(ser.decode(&deeper), Err(DecodeError::TooDeep), "{ser:?}");
        }
    }

    #[test]
    fn very_deep_input_does_not_overflow_the_stack() {
        let cases: [(Serializer, u8); 4] = [
            (Serializer::Json, b'['),
            (Serializer::MsgPack, 0x91),
            (Serializer::Cbor, 0x81),
            (Serializer::UbJson, b'['),
        ];
        for (ser, open) in cases {
            let buf = vec![open; 1_000_000];
            assert_eq!(ser.decode(&buf), Err(DecodeError::TooDeep), "{ser:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for ser in Serializer::ALL {
            assert_eq!(Serializer::from_name(ser.name()), Some(ser));
        }
    }
}
