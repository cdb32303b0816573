//! Wire formats for WAMP payloads: the value tree and the four serializers.
//!
//! `Serializer` is a closed enum (json, msgpack, cbor, ubjson); dispatch is an exhaustive
//! `match`. Decoding never panics on peer input and returns `DecodeError`. The `.batched`
//! WebSocket variants are framing on top of a serializer (`split_batched` / `encode_batched`).

pub mod value;

pub use value::{Dict, Value};

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
}
