//! Typed WAMP messages and their positional list form.
//!
//! Every serializer decodes into a `Value`; this module turns that list into a `Message` (or a
//! `ProtocolError` that becomes ABORT `wamp.error.protocol_violation`) and back. IDs are checked
//! to lie in 1..=2^53 as the spec requires.

use crate::wire::{Dict, Part, Serializer, Value};

/// The largest WAMP ID (2^53).
pub const MAX_ID: u64 = 1 << 53;

/// Message type codes.
pub mod code {
    #![allow(missing_docs)]
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// Application payload: positional and keyword arguments, or (payload passthru mode) one
/// opaque binary in their place.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload {
    /// `Arguments|list`.
    pub args: Option<Vec<Value>>,
    /// `ArgumentsKw|dict`.
    pub kwargs: Option<Dict>,
    /// `Payload|binary` of payload passthru mode (`ppt_scheme`, or Crossbar's `enc_algo`);
    /// `args` and `kwargs` are `None` then.
    pub raw: Option<bytes::Bytes>,
}

impl Payload {
    /// A payload with no arguments.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Appends args/kwargs to a message's parts, omitting what is empty as the spec allows.
    fn push_parts<'a>(&'a self, parts: &mut Parts<'a>) {
        if let Some(raw) = &self.raw {
            parts.push(Part::Bytes(raw));
            return;
        }
        match (&self.args, &self.kwargs) {
            (args, Some(kw)) => {
                parts.push(Part::List(args.as_deref().unwrap_or_default()));
                parts.push(Part::Dict(kw));
            }
            (Some(a), None) => parts.push(Part::List(a)),
            (None, None) => {}
        }
    }
}

/// A message's list elements, borrowed (at most 7: ERROR with args and kwargs).
struct Parts<'a> {
    items: [Part<'a>; 7],
    len: usize,
}

impl<'a> Parts<'a> {
    fn new(code: u64) -> Self {
        Self {
            items: [Part::UInt(code); 7],
            len: 1,
        }
    }

    fn push(&mut self, p: Part<'a>) {
        self.items[self.len] = p;
        self.len += 1;
    }

    fn extend<const N: usize>(&mut self, ps: [Part<'a>; N]) {
        for p in ps {
            self.push(p);
        }
    }

    fn as_slice(&self) -> &[Part<'a>] {
        &self.items[..self.len]
    }
}

/// One WAMP message.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Message {
    Hello {
        realm: String,
        details: Dict,
    },
    Welcome {
        session: u64,
        details: Dict,
    },
    Abort {
        details: Dict,
        reason: String,
    },
    Goodbye {
        details: Dict,
        reason: String,
    },
    Error {
        request_type: u64,
        request: u64,
        details: Dict,
        error: String,
        payload: Payload,
    },
    Publish {
        request: u64,
        options: Dict,
        topic: String,
        payload: Payload,
    },
    Published {
        request: u64,
        publication: u64,
    },
    Subscribe {
        request: u64,
        options: Dict,
        topic: String,
    },
    Subscribed {
        request: u64,
        subscription: u64,
    },
    Unsubscribe {
        request: u64,
        subscription: u64,
    },
    Unsubscribed {
        request: u64,
    },
    Event {
        subscription: u64,
        publication: u64,
        details: Dict,
        payload: Payload,
    },
    Call {
        request: u64,
        options: Dict,
        procedure: String,
        payload: Payload,
    },
    Cancel {
        request: u64,
        options: Dict,
    },
    Result {
        request: u64,
        details: Dict,
        payload: Payload,
    },
    Register {
        request: u64,
        options: Dict,
        procedure: String,
    },
    Registered {
        request: u64,
        registration: u64,
    },
    Unregister {
        request: u64,
        registration: u64,
    },
    Unregistered {
        request: u64,
    },
    Invocation {
        request: u64,
        registration: u64,
        details: Dict,
        payload: Payload,
    },
    Interrupt {
        request: u64,
        options: Dict,
    },
    Yield {
        request: u64,
        options: Dict,
        payload: Payload,
    },
    /// CHALLENGE (router → client) and AUTHENTICATE (client → router).
    Challenge {
        method: String,
        extra: Dict,
    },
    Authenticate {
        signature: String,
        extra: Dict,
    },
}

/// Why a decoded value is not a valid WAMP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The top-level value is not a non-empty list.
    #[error("message is not a non-empty list")]
    NotAList,
    /// The first element is not a known message type.
    #[error("unknown message type {0}")]
    UnknownType(u64),
    /// The first element is not an integer.
    #[error("message type is not an integer")]
    BadType,
    /// Wrong number of elements.
    #[error("message type {code} has a wrong number of elements ({len})")]
    BadLength {
        /// Message type.
        code: u64,
        /// Elements found.
        len: usize,
    },
    /// An element has the wrong type.
    #[error("message type {code}: element {index} must be {expected}")]
    BadField {
        /// Message type.
        code: u64,
        /// Element index.
        index: usize,
        /// What was expected there.
        expected: &'static str,
    },
}

/// Reads fields from a message list with precise errors.
struct Fields {
    code: u64,
    items: std::vec::IntoIter<Value>,
    index: usize,
}

impl Fields {
    fn bad(&self, expected: &'static str) -> ProtocolError {
        ProtocolError::BadField {
            code: self.code,
            index: self.index,
            expected,
        }
    }

    fn next(&mut self) -> Option<Value> {
        self.index += 1;
        self.items.next()
    }

    fn id(&mut self) -> Result<u64, ProtocolError> {
        match self.next().and_then(|v| v.as_u64()) {
            Some(id) if (1..=MAX_ID).contains(&id) => Ok(id),
            _ => Err(self.bad("an id in 1..2^53")),
        }
    }

    fn int(&mut self) -> Result<u64, ProtocolError> {
        self.next()
            .and_then(|v| v.as_u64())
            .ok_or_else(|| self.bad("an integer"))
    }

    fn dict(&mut self) -> Result<Dict, ProtocolError> {
        match self.next() {
            Some(Value::Dict(d)) => Ok(d),
            _ => Err(self.bad("a dict")),
        }
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        match self.next() {
            Some(Value::Str(s)) => Ok(s),
            _ => Err(self.bad("a string")),
        }
    }

    fn payload(&mut self) -> Result<Payload, ProtocolError> {
        let args = match self.next() {
            None => return Ok(Payload::empty()),
            Some(Value::List(l)) => Some(l),
            // Payload passthru mode: one binary instead of args/kwargs.
            Some(Value::Bytes(b)) => {
                if self.next().is_some() {
                    return Err(self.bad("nothing after a passthru payload"));
                }
                return Ok(Payload {
                    args: None,
                    kwargs: None,
                    raw: Some(b),
                });
            }
            Some(_) => return Err(self.bad("a list")),
        };
        let kwargs = match self.next() {
            None => None,
            Some(Value::Dict(d)) => Some(d),
            Some(_) => return Err(self.bad("a dict")),
        };
        Ok(Payload {
            args,
            kwargs,
            raw: None,
        })
    }
}

impl Message {
    /// Parses the positional list form.
    ///
    /// # Errors
    /// `ProtocolError` for anything that is not a well-formed message.
    pub fn from_value(v: Value) -> Result<Message, ProtocolError> {
        let Value::List(list) = v else {
            return Err(ProtocolError::NotAList);
        };
        let len = list.len();
        let mut items = list.into_iter();
        let code = items.next().ok_or(ProtocolError::NotAList)?;
        let code = code.as_u64().ok_or(ProtocolError::BadType)?;
        let (min, max) = arity(code).ok_or(ProtocolError::UnknownType(code))?;
        if len < min || len > max {
            return Err(ProtocolError::BadLength { code, len });
        }
        let mut f = Fields {
            code,
            items,
            index: 0,
        };
        use crate::wamp::message::code as c;
        let m = match code {
            c::HELLO => Message::Hello {
                realm: f.string()?,
                details: f.dict()?,
            },
            c::WELCOME => Message::Welcome {
                session: f.id()?,
                details: f.dict()?,
            },
            c::ABORT => Message::Abort {
                details: f.dict()?,
                reason: f.string()?,
            },
            c::GOODBYE => Message::Goodbye {
                details: f.dict()?,
                reason: f.string()?,
            },
            c::CHALLENGE => Message::Challenge {
                method: f.string()?,
                extra: f.dict()?,
            },
            c::AUTHENTICATE => Message::Authenticate {
                signature: f.string()?,
                extra: f.dict()?,
            },
            c::ERROR => Message::Error {
                request_type: f.int()?,
                request: f.id()?,
                details: f.dict()?,
                error: f.string()?,
                payload: f.payload()?,
            },
            c::PUBLISH => Message::Publish {
                request: f.id()?,
                options: f.dict()?,
                topic: f.string()?,
                payload: f.payload()?,
            },
            c::PUBLISHED => Message::Published {
                request: f.id()?,
                publication: f.id()?,
            },
            c::SUBSCRIBE => Message::Subscribe {
                request: f.id()?,
                options: f.dict()?,
                topic: f.string()?,
            },
            c::SUBSCRIBED => Message::Subscribed {
                request: f.id()?,
                subscription: f.id()?,
            },
            c::UNSUBSCRIBE => Message::Unsubscribe {
                request: f.id()?,
                subscription: f.id()?,
            },
            c::UNSUBSCRIBED => Message::Unsubscribed { request: f.id()? },
            c::EVENT => Message::Event {
                subscription: f.id()?,
                publication: f.id()?,
                details: f.dict()?,
                payload: f.payload()?,
            },
            c::CALL => Message::Call {
                request: f.id()?,
                options: f.dict()?,
                procedure: f.string()?,
                payload: f.payload()?,
            },
            c::CANCEL => Message::Cancel {
                request: f.id()?,
                options: f.dict()?,
            },
            c::RESULT => Message::Result {
                request: f.id()?,
                details: f.dict()?,
                payload: f.payload()?,
            },
            c::REGISTER => Message::Register {
                request: f.id()?,
                options: f.dict()?,
                procedure: f.string()?,
            },
            c::REGISTERED => Message::Registered {
                request: f.id()?,
                registration: f.id()?,
            },
            c::UNREGISTER => Message::Unregister {
                request: f.id()?,
                registration: f.id()?,
            },
            c::UNREGISTERED => Message::Unregistered { request: f.id()? },
            c::INVOCATION => Message::Invocation {
                request: f.id()?,
                registration: f.id()?,
                details: f.dict()?,
                payload: f.payload()?,
            },
            c::INTERRUPT => Message::Interrupt {
                request: f.id()?,
                options: f.dict()?,
            },
            c::YIELD => Message::Yield {
                request: f.id()?,
                options: f.dict()?,
                payload: f.payload()?,
            },
            other => return Err(ProtocolError::UnknownType(other)),
        };
        Ok(m)
    }

    /// The message type code.
    pub fn code(&self) -> u64 {
        use crate::wamp::message::code as c;
        match self {
            Message::Hello { .. } => c::HELLO,
            Message::Welcome { .. } => c::WELCOME,
            Message::Abort { .. } => c::ABORT,
            Message::Goodbye { .. } => c::GOODBYE,
            Message::Error { .. } => c::ERROR,
            Message::Publish { .. } => c::PUBLISH,
            Message::Published { .. } => c::PUBLISHED,
            Message::Subscribe { .. } => c::SUBSCRIBE,
            Message::Subscribed { .. } => c::SUBSCRIBED,
            Message::Unsubscribe { .. } => c::UNSUBSCRIBE,
            Message::Unsubscribed { .. } => c::UNSUBSCRIBED,
            Message::Event { .. } => c::EVENT,
            Message::Call { .. } => c::CALL,
            Message::Cancel { .. } => c::CANCEL,
            Message::Result { .. } => c::RESULT,
            Message::Register { .. } => c::REGISTER,
            Message::Registered { .. } => c::REGISTERED,
            Message::Unregister { .. } => c::UNREGISTER,
            Message::Unregistered { .. } => c::UNREGISTERED,
            Message::Invocation { .. } => c::INVOCATION,
            Message::Interrupt { .. } => c::INTERRUPT,
            Message::Yield { .. } => c::YIELD,
            Message::Challenge { .. } => c::CHALLENGE,
            Message::Authenticate { .. } => c::AUTHENTICATE,
        }
    }

    /// The positional list form.
    pub fn to_value(&self) -> Value {
        Value::List(
            self.parts()
                .as_slice()
                .iter()
                .map(|p| p.to_value())
                .collect(),
        )
    }

    /// The encoding of the message in `ser`, written from borrowed fields (no value tree is
    /// built: this is the outgoing path).
    pub fn encode(&self, ser: Serializer) -> bytes::Bytes {
        let mut out = Vec::new();
        ser.encode_parts(self.parts().as_slice(), &mut out);
        bytes::Bytes::from(out)
    }

    /// An EVENT encoded in `ser` straight from its parts (the broker keeps them shared).
    pub fn encode_event(
        ser: Serializer,
        subscription: u64,
        publication: u64,
        details: &Dict,
        payload: &Payload,
    ) -> bytes::Bytes {
        let mut l = Parts::new(code::EVENT);
        l.extend([
            Part::UInt(subscription),
            Part::UInt(publication),
            Part::Dict(details),
        ]);
        payload.push_parts(&mut l);
        let mut out = Vec::new();
        ser.encode_parts(l.as_slice(), &mut out);
        bytes::Bytes::from(out)
    }

    /// The message's list elements, borrowed.
    fn parts<'a>(&'a self) -> Parts<'a> {
        let mut l = Parts::new(self.code());
        let id = Part::UInt;
        let d = Part::Dict;
        let s = |x: &'a str| Part::Str(x);
        match self {
            Message::Hello { realm, details } => l.extend([s(realm), d(details)]),
            Message::Welcome { session, details } => l.extend([id(*session), d(details)]),
            Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
                l.extend([d(details), s(reason)])
            }
            Message::Error {
                request_type,
                request,
                details,
                error,
                payload,
            } => {
                l.extend([id(*request_type), id(*request), d(details), s(error)]);
                payload.push_parts(&mut l);
            }
            Message::Publish {
                request,
                options,
                topic,
                payload,
            } => {
                l.extend([id(*request), d(options), s(topic)]);
                payload.push_parts(&mut l);
            }
            Message::Published {
                request,
                publication,
            } => l.extend([id(*request), id(*publication)]),
            Message::Subscribe {
                request,
                options,
                topic,
            } => l.extend([id(*request), d(options), s(topic)]),
            Message::Subscribed {
                request,
                subscription,
            } => l.extend([id(*request), id(*subscription)]),
            Message::Unsubscribe {
                request,
                subscription,
            } => l.extend([id(*request), id(*subscription)]),
            Message::Unsubscribed { request } | Message::Unregistered { request } => {
                l.push(id(*request))
            }
            Message::Event {
                subscription,
                publication,
                details,
                payload,
            } => {
                l.extend([id(*subscription), id(*publication), d(details)]);
                payload.push_parts(&mut l);
            }
            Message::Call {
                request,
                options,
                procedure,
                payload,
            } => {
                l.extend([id(*request), d(options), s(procedure)]);
                payload.push_parts(&mut l);
            }
            Message::Cancel { request, options } | Message::Interrupt { request, options } => {
                l.extend([id(*request), d(options)])
            }
            Message::Result {
                request,
                details,
                payload,
            } => {
                l.extend([id(*request), d(details)]);
                payload.push_parts(&mut l);
            }
            Message::Register {
                request,
                options,
                procedure,
            } => l.extend([id(*request), d(options), s(procedure)]),
            Message::Registered {
                request,
                registration,
            } => l.extend([id(*request), id(*registration)]),
            Message::Unregister {
                request,
                registration,
            } => l.extend([id(*request), id(*registration)]),
            Message::Invocation {
                request,
                registration,
                details,
                payload,
            } => {
                l.extend([id(*request), id(*registration), d(details)]);
                payload.push_parts(&mut l);
            }
            Message::Yield {
                request,
                options,
                payload,
            } => {
                l.extend([id(*request), d(options)]);
                payload.push_parts(&mut l);
            }
            Message::Challenge { method, extra } => l.extend([s(method), d(extra)]),
            Message::Authenticate { signature, extra } => l.extend([s(signature), d(extra)]),
        }
        l
    }
}

/// (min, max) number of list elements per message type, code included.
fn arity(code: u64) -> Option<(usize, usize)> {
    use crate::wamp::message::code as c;
    Some(match code {
        c::HELLO | c::WELCOME | c::ABORT | c::GOODBYE => (3, 3),
        c::CHALLENGE | c::AUTHENTICATE => (3, 3),
        c::ERROR => (5, 7),
        c::PUBLISH | c::CALL => (4, 6),
        c::PUBLISHED | c::SUBSCRIBED | c::UNSUBSCRIBE | c::REGISTERED | c::UNREGISTER => (3, 3),
        c::SUBSCRIBE | c::REGISTER => (4, 4),
        c::UNSUBSCRIBED | c::UNREGISTERED => (2, 2),
        c::EVENT => (4, 6),
        c::CANCEL | c::INTERRUPT => (3, 3),
        c::RESULT | c::YIELD => (3, 5),
        c::INVOCATION => (4, 6),
        _ => return None,
    })
}

/// Shorthand for building a details/options dictionary.
pub fn dict<const N: usize>(entries: [(&str, Value); N]) -> Dict {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    #[test]
    fn round_trip_every_kind() {
        let p = Payload {
            args: Some(vec![Value::Int(1)]),
            kwargs: Some(dict([("a", Value::Null)])),
            raw: None,
        };
        let msgs = vec![
            Message::Hello {
                realm: "realm1".into(),
                details: Dict::new(),
            },
            Message::Welcome {
                session: 9,
                details: Dict::new(),
            },
            Message::Abort {
                details: Dict::new(),
                reason: "wamp.error.no_such_realm".into(),
            },
            Message::Goodbye {
                details: Dict::new(),
                reason: "wamp.close.normal".into(),
            },
            Message::Error {
                request_type: 48,
                request: 3,
                details: Dict::new(),
                error: "a.b".into(),
                payload: p.clone(),
            },
            Message::Publish {
                request: 1,
                options: Dict::new(),
                topic: "a".into(),
                payload: p.clone(),
            },
            Message::Published {
                request: 1,
                publication: 2,
            },
            Message::Subscribe {
                request: 1,
                options: Dict::new(),
                topic: "a".into(),
            },
            Message::Subscribed {
                request: 1,
                subscription: 2,
            },
            Message::Unsubscribe {
                request: 1,
                subscription: 2,
            },
            Message::Unsubscribed { request: 1 },
            Message::Event {
                subscription: 1,
                publication: 2,
                details: Dict::new(),
                payload: p.clone(),
            },
            Message::Call {
                request: 1,
                options: Dict::new(),
                procedure: "a".into(),
                payload: Payload::empty(),
            },
            Message::Cancel {
                request: 1,
                options: Dict::new(),
            },
            Message::Result {
                request: 1,
                details: Dict::new(),
                payload: Payload {
                    args: Some(vec![]),
                    kwargs: None,
                    raw: None,
                },
            },
            Message::Register {
                request: 1,
                options: Dict::new(),
                procedure: "a".into(),
            },
            Message::Registered {
                request: 1,
                registration: 2,
            },
            Message::Unregister {
                request: 1,
                registration: 2,
            },
            Message::Unregistered { request: 1 },
            Message::Invocation {
                request: 1,
                registration: 2,
                details: Dict::new(),
                payload: p.clone(),
            },
            Message::Interrupt {
                request: 1,
                options: Dict::new(),
            },
            Message::Yield {
                request: 1,
                options: Dict::new(),
                payload: p,
            },
        ];
        let payloads = [
            Payload::empty(),
            Payload {
                args: Some(vec![Value::from("x"), Value::Bytes(vec![0, 1].into())]),
                kwargs: None,
                raw: None,
            },
            Payload {
                args: None,
                kwargs: Some(dict([("k", Value::Float(1.5))])),
                raw: None,
            },
            Payload {
                args: None,
                kwargs: None,
                raw: Some(vec![9, 8, 7].into()),
            },
        ];
        for m in msgs {
            // The borrowed-parts encoding is byte for byte the value tree's.
            for ser in Serializer::ALL {
                assert_eq!(
                    m.encode(ser),
                    ser.encode_to_bytes(&m.to_value()),
                    "{m:?} {ser:?}"
                );
            }
            assert_eq!(Message::from_value(m.to_value()), Ok(m));
        }
        for payload in payloads {
            let details = dict([
                ("publisher", Value::from(7u64)),
                ("topic", Value::from("a.b")),
            ]);
            let event = Message::Event {
                subscription: 1,
                publication: u64::MAX,
                details: details.clone(),
                payload: payload.clone(),
            };
            for ser in Serializer::ALL {
                let direct = Message::encode_event(ser, 1, u64::MAX, &details, &payload);
                assert_eq!(direct, ser.encode_to_bytes(&event.to_value()), "{ser:?}");
            }
        }
    }

    #[test]
    fn kwargs_without_args_gets_empty_args() {
        let m = Message::Yield {
            request: 1,
            options: Dict::new(),
            payload: Payload {
                args: None,
                kwargs: Some(dict([("x", Value::Int(1))])),
                raw: None,
            },
        };
        let Value::List(l) = m.to_value() else {
            panic!()
        };
        assert_eq!(l[3], Value::List(vec![]));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            Message::from_value(Value::Int(1)),
            Err(ProtocolError::NotAList)
        );
        assert_eq!(
            Message::from_value(list(vec![])),
            Err(ProtocolError::NotAList)
        );
        assert_eq!(
            Message::from_value(list(vec!["x".into()])),
            Err(ProtocolError::BadType)
        );
        assert_eq!(
            Message::from_value(list(vec![Value::Int(99)])),
            Err(ProtocolError::UnknownType(99))
        );
        assert_eq!(
            Message::from_value(list(vec![Value::Int(1)])),
            Err(ProtocolError::BadLength { code: 1, len: 1 })
        );
        assert!(matches!(
            Message::from_value(list(vec![
                Value::Int(16),
                Value::Int(0),
                Value::Dict(Dict::new()),
                "a".into()
            ])),
            Err(ProtocolError::BadField { index: 1, .. })
        ));
        assert!(matches!(
            Message::from_value(list(vec![
                Value::Int(16),
                Value::Int((MAX_ID + 1) as i64),
                Value::Dict(Dict::new()),
                "a".into()
            ])),
            Err(ProtocolError::BadField { index: 1, .. })
        ));
        assert!(matches!(
            Message::from_value(list(vec![
                Value::Int(16),
                Value::Int(1),
                Value::Dict(Dict::new()),
                "a".into(),
                Value::Dict(Dict::new())
            ])),
            Err(ProtocolError::BadField { index: 4, .. })
        ));
    }
}
