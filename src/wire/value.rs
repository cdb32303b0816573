//! The WAMP value tree shared by every serializer.
//!
//! WAMP payloads (`args`, `kwargs`, `details`, `options`) are dynamically typed. This module owns
//! the one in-memory representation all four wire formats decode into and encode from. Keys of a
//! dictionary are always strings (WAMP requires it); integers keep their full 64-bit range
//! (`UInt` is used only for values above `i64::MAX`); binary values are `Bytes`, which JSON
//! carries as `"\u0000" + base64` (WAMP binary convention) and the binary formats natively.

use std::collections::BTreeMap;

use bytes::Bytes;

/// A WAMP dictionary: string keys, sorted for deterministic encoding.
pub type Dict = BTreeMap<String, Value>;

/// One dynamically typed WAMP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null`, msgpack nil, CBOR null/undefined, UBJSON `Z`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64` (decoders always prefer this variant).
    Int(i64),
    /// A non-negative integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A binary value.
    Bytes(Bytes),
    /// A list.
    List(Vec<Value>),
    /// A dictionary with string keys.
    Dict(Dict),
}

impl Value {
    /// The value as a non-negative integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::UInt(u) => Some(u),
            // Some clients (JavaScript) send integral floats for IDs.
            Value::Float(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => {
                Some(f as u64)
            }
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as a dictionary, if it is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value as a list, if it is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Value::Dict(d)
    }
}
