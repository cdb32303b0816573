//! A small WAMP client over WebSocket or RawSocket.
//!
//! Session setup messages go through junction's own serializers (`junction::wire`). The hot
//! messages (PUBLISH, CALL, YIELD out; EVENT, INVOCATION, RESULT in) are written and parsed
//! directly in the three wire formats, so the load generator spends little per message; a
//! message the fast parser does not understand is decoded fully and checked the slow way.

use std::borrow::Cow;
use std::time::Duration;

use junction::wire::{Dict, Serializer, Value};

use crate::net::{self, op, Conn, Framing, Result, Writer};

/// Message codes used here.
pub mod code {
    #![allow(missing_docs)]
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const PUBLISH: u64 = 16;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const INVOCATION: u64 = 68;
    pub const YIELD: u64 = 70;
}

/// A WAMP serializer the load generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ser {
    /// `wamp.2.json`
    Json,
    /// `wamp.2.msgpack`
    MsgPack,
    /// `wamp.2.cbor`
    Cbor,
}

impl Ser {
    /// From `json`, `msgpack` or `cbor`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Ser::Json),
            "msgpack" => Some(Ser::MsgPack),
            "cbor" => Some(Ser::Cbor),
            _ => None,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Ser::Json => "json",
            Ser::MsgPack => "msgpack",
            Ser::Cbor => "cbor",
        }
    }

    fn junction(self) -> Serializer {
        match self {
            Ser::Json => Serializer::Json,
            Ser::MsgPack => Serializer::MsgPack,
            Ser::Cbor => Serializer::Cbor,
        }
    }

    fn raw_id(self) -> u8 {
        match self {
            Ser::Json => 1,
            Ser::MsgPack => 2,
            Ser::Cbor => 3,
        }
    }
}

/// WebSocket or RawSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket at `/ws`.
    Ws,
    /// RawSocket.
    Raw,
}

/// One item of a hot message.
#[derive(Debug, Clone, Copy)]
pub enum It<'a> {
    /// An unsigned integer.
    U(u64),
    /// A string (ASCII without quotes or backslashes).
    S(&'a [u8]),
    /// `{}`.
    Map0,
    /// `[s]`: a list of one string.
    List1(&'a [u8]),
}

fn put_head(out: &mut Vec<u8>, ser: Ser, major: u8, n: u64) {
    match ser {
        Ser::Json => unreachable!("no heads in JSON"),
        Ser::Cbor => {
            let m = major << 5;
            if n < 24 {
                out.push(m | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[m | 24, n as u8]);
            } else if n <= 0xffff {
                out.push(m | 25);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else if n <= 0xffff_ffff {
                out.push(m | 26);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            } else {
                out.push(m | 27);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Ser::MsgPack => match major {
            0 => {
                if n < 128 {
                    out.push(n as u8);
                } else if n <= 0xff {
                    out.extend_from_slice(&[0xcc, n as u8]);
                } else if n <= 0xffff {
                    out.push(0xcd);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                } else if n <= 0xffff_ffff {
                    out.push(0xce);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                } else {
                    out.push(0xcf);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            3 => {
                if n < 32 {
                    out.push(0xa0 | n as u8);
                } else if n <= 0xff {
                    out.extend_from_slice(&[0xd9, n as u8]);
                } else if n <= 0xffff {
                    out.push(0xda);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    out.push(0xdb);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
            }
            4 => {
                if n < 16 {
                    out.push(0x90 | n as u8);
                } else {
                    out.push(0xdc);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            _ => out.push(0x80), // empty map
        },
    }
}

fn put_str(out: &mut Vec<u8>, ser: Ser, s: &[u8]) {
    if ser == Ser::Json {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    } else {
        put_head(out, ser, 3, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Encodes a list of items.
pub fn encode(ser: Ser, items: &[It<'_>], out: &mut Vec<u8>) {
    if ser == Ser::Json {
        out.push(b'[');
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match *it {
                It::U(u) => put_dec(out, u),
                It::S(s) => put_str(out, ser, s),
                It::Map0 => out.extend_from_slice(b"{}"),
                It::List1(s) => {
                    out.push(b'[');
                    put_str(out, ser, s);
                    out.push(b']');
                }
            }
        }
        out.push(b']');
        return;
    }
    put_head(out, ser, 4, items.len() as u64);
    for it in items {
        match *it {
            It::U(u) => put_head(out, ser, 0, u),
            It::S(s) => put_str(out, ser, s),
            It::Map0 => put_head(out, ser, 5, 0),
            It::List1(s) => {
                put_head(out, ser, 4, 1);
                put_str(out, ser, s);
            }
        }
    }
}

fn put_dec(out: &mut Vec<u8>, mut u: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A cursor over one message in the fast subset of the formats.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
    ser: Ser,
}

impl<'a> Cur<'a> {
    fn byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        let s = self.b.get(self.i..self.i + n)?;
        self.i += n;
        Some(s.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    }

    fn json_sep(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b',' || c == b' ' || c == b'\n' || c == b'\t' || c == b'\r' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// (major, argument) of a CBOR or msgpack head, normalised to CBOR majors.
    fn head(&mut self) -> Option<(u8, u64)> {
        let c = self.byte()?;
        match self.ser {
            Ser::Json => None,
            Ser::Cbor => {
                let (major, ai) = (c >> 5, c & 0x1f);
                let n = match ai {
                    0..=23 => u64::from(ai),
                    24 => self.be(1)?,
                    25 => self.be(2)?,
                    26 => self.be(4)?,
                    27 => self.be(8)?,
                    _ => return None,
                };
                Some((major, n))
            }
            Ser::MsgPack => match c {
                0x00..=0x7f => Some((0, u64::from(c))),
                0x80..=0x8f => Some((5, u64::from(c & 0x0f))),
                0x90..=0x9f => Some((4, u64::from(c & 0x0f))),
                0xa0..=0xbf => Some((3, u64::from(c & 0x1f))),
                0xcc => Some((0, self.be(1)?)),
                0xcd => Some((0, self.be(2)?)),
                0xce => Some((0, self.be(4)?)),
                0xcf => Some((0, self.be(8)?)),
                0xd9 => Some((3, self.be(1)?)),
                0xda => Some((3, self.be(2)?)),
                0xdb => Some((3, self.be(4)?)),
                0xdc => Some((4, self.be(2)?)),
                0xdd => Some((4, self.be(4)?)),
                _ => None,
            },
        }
    }

    fn arr(&mut self) -> Option<()> {
        if self.ser == Ser::Json {
            self.json_sep();
            return (self.byte()? == b'[').then_some(());
        }
        (self.head()?.0 == 4).then_some(())
    }

    fn uint(&mut self) -> Option<u64> {
        if self.ser == Ser::Json {
            self.json_sep();
            let start = self.i;
            let mut v = 0u64;
            while let Some(&c) = self.b.get(self.i) {
                if !c.is_ascii_digit() {
                    break;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                self.i += 1;
            }
            return (self.i > start).then_some(v);
        }
        let (m, n) = self.head()?;
        (m == 0).then_some(n)
    }

    fn map0(&mut self) -> Option<()> {
        if self.ser == Ser::Json {
            self.json_sep();
            return (self.b.get(self.i..self.i + 2)? == b"{}").then(|| self.i += 2);
        }
        (self.head()? == (5, 0)).then_some(())
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        if self.ser == Ser::Json {
            self.json_sep();
            if self.byte()? != b'"' {
                return None;
            }
            let start = self.i;
            let len = self.b[start..].iter().position(|&c| c == b'"')?;
            let s = &self.b[start..start + len];
            if s.contains(&b'\\') {
                return None;
            }
            self.i += len + 1;
            return Some(s);
        }
        let (m, n) = self.head()?;
        if m != 3 {
            return None;
        }
        let s = self.b.get(self.i..self.i + n as usize)?;
        self.i += n as usize;
        Some(s)
    }
}

/// `[code, id1, (id2,) {}, [payload]]`: the ids and the payload string.
fn fast(ser: Ser, b: &[u8], code: u64, ids: usize) -> Option<([u64; 2], &[u8])> {
    let mut c = Cur { b, i: 0, ser };
    c.arr()?;
    if c.uint()? != code {
        return None;
    }
    let mut out = [0u64; 2];
    for slot in out.iter_mut().take(ids) {
        *slot = c.uint()?;
    }
    c.map0()?;
    c.arr()?;
    Some((out, c.str()?))
}

/// Decodes a whole message into a list (the slow path).
pub fn decode_list(ser: Ser, b: &[u8]) -> Option<Vec<Value>> {
    match ser.junction().decode(b).ok()? {
        Value::List(l) => Some(l),
        _ => None,
    }
}

fn slow(ser: Ser, b: &[u8], code: u64, ids: usize) -> Option<([u64; 2], Vec<u8>)> {
    let l = decode_list(ser, b)?;
    if l.first()?.as_u64()? != code {
        return None;
    }
    let mut out = [0u64; 2];
    for (k, slot) in out.iter_mut().enumerate().take(ids) {
        *slot = l.get(1 + k)?.as_u64()?;
    }
    l.get(1 + ids)?.as_dict()?;
    let args = l.get(2 + ids)?.as_list()?;
    if args.len() != 1 {
        return None;
    }
    Some((out, args[0].as_str()?.as_bytes().to_vec()))
}

/// Parses `[code, id1, (id2,) details, [payload]]` (EVENT, INVOCATION, RESULT).
pub fn parse(ser: Ser, b: &[u8], code: u64, ids: usize) -> Option<([u64; 2], Cow<'_, [u8]>)> {
    if let Some((i, p)) = fast(ser, b, code, ids) {
        return Some((i, Cow::Borrowed(p)));
    }
    slow(ser, b, code, ids).map(|(i, p)| (i, Cow::Owned(p)))
}

/// A short description of a message that was not expected (for error reports).
pub fn describe(ser: Ser, b: &[u8]) -> String {
    match ser.junction().decode(b) {
        Ok(v) => {
            let s = format!("{v:?}");
            s.chars().take(300).collect()
        }
        Err(e) => format!("undecodable message ({e})"),
    }
}

/// A joined WAMP session.
#[derive(Debug)]
pub struct Wamp {
    /// The connection.
    pub conn: Conn,
    /// The serializer.
    pub ser: Ser,
    /// Next request id.
    pub next_req: u64,
    /// The session id from WELCOME.
    pub session: u64,
}

fn dict(entries: &[(&str, Value)]) -> Value {
    Value::Dict(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Dict>(),
    )
}

impl Wamp {
    /// Connects, does the transport handshake and joins `realm`.
    pub async fn connect(
        host: &str,
        port: u16,
        tr: Transport,
        ser: Ser,
        realm: &str,
    ) -> Result<Self> {
        let mut stream = net::connect_tcp(host, port).await?;
        let conn = match tr {
            Transport::Ws => {
                let proto = format!("wamp.2.{}", ser.name());
                let left = net::ws_handshake(&mut stream, host, port, "/ws", &proto).await?;
                Conn::new(stream, Framing::Ws, &left)
            }
            Transport::Raw => {
                net::raw_handshake(&mut stream, ser.raw_id()).await?;
                Conn::new(stream, Framing::Raw, &[])
            }
        };
        let mut w = Wamp {
            conn,
            ser,
            next_req: 1,
            session: 0,
        };
        let empty = dict(&[]);
        let roles = dict(&[
            ("publisher", empty.clone()),
            ("subscriber", empty.clone()),
            ("caller", empty.clone()),
            ("callee", empty),
        ]);
        w.send_value(&Value::List(vec![
            Value::from(code::HELLO),
            Value::from(realm),
            dict(&[("roles", roles)]),
        ]));
        w.conn.flush().await?;
        let l = w.recv_list().await?;
        if l.first().and_then(Value::as_u64) != Some(code::WELCOME) {
            return Err(format!("expected WELCOME, got {l:?}"));
        }
        w.session = l.get(1).and_then(Value::as_u64).unwrap_or(0);
        Ok(w)
    }

    /// Whether frames are text (JSON over WebSocket).
    pub fn text(&self) -> bool {
        self.ser == Ser::Json
    }

    /// Appends a message given as a value tree.
    pub fn send_value(&mut self, v: &Value) {
        let js = self.ser.junction();
        let text = self.text();
        self.conn.w.message(text, |out| js.encode(v, out));
    }

    /// Waits for the next message and decodes it (setup path).
    pub async fn recv_list(&mut self) -> Result<Vec<Value>> {
        let (tag, body) = self.conn.recv_frame(Duration::from_secs(10)).await?;
        check_tag(self.conn.framing, tag)?;
        decode_list(self.ser, &body).ok_or_else(|| "undecodable WAMP message".to_string())
    }

    /// Sends a request and waits for its reply of type `want`; returns the reply's second id.
    async fn request(&mut self, msg: Vec<Value>, want: u64) -> Result<u64> {
        self.send_value(&Value::List(msg));
        self.conn.flush().await?;
        loop {
            let l = self.recv_list().await?;
            match l.first().and_then(Value::as_u64) {
                Some(c) if c == want => {
                    return l
                        .get(2)
                        .and_then(Value::as_u64)
                        .ok_or_else(|| format!("bad reply {l:?}"))
                }
                // an event of an earlier subscription of this session
                Some(code::EVENT) => continue,
                _ => return Err(format!("expected message {want}, got {l:?}")),
            }
        }
    }

    fn req(&mut self) -> u64 {
        let r = self.next_req;
        self.next_req += 1;
        r
    }

    /// Subscribes (`match_` exact, prefix or wildcard); returns the subscription id.
    pub async fn subscribe(&mut self, topic: &str, match_: &str) -> Result<u64> {
        let req = self.req();
        let opts = if match_ == "exact" {
            dict(&[])
        } else {
            dict(&[("match", Value::from(match_))])
        };
        self.request(
            vec![
                Value::from(code::SUBSCRIBE),
                Value::from(req),
                opts,
                Value::from(topic),
            ],
            code::SUBSCRIBED,
        )
        .await
    }

    /// Registers a procedure; returns the registration id.
    pub async fn register(&mut self, procedure: &str) -> Result<u64> {
        let req = self.req();
        self.request(
            vec![
                Value::from(code::REGISTER),
                Value::from(req),
                dict(&[]),
                Value::from(procedure),
            ],
            code::REGISTERED,
        )
        .await
    }
}

/// Appends a hot message.
pub fn send_items(w: &mut Writer, ser: Ser, items: &[It<'_>]) {
    w.message(ser == Ser::Json, |out| encode(ser, items, out));
}

/// Checks that a frame carries a WAMP message.
pub fn check_tag(framing: Framing, tag: u8) -> Result<()> {
    match (framing, tag) {
        (Framing::Ws, op::TEXT | op::BINARY) | (Framing::Raw, 0) => Ok(()),
        (Framing::Ws, op::CLOSE) => Err("WebSocket closed by the server".into()),
        _ => Err(format!("unexpected frame type {tag}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_matches_junction() {
        for ser in [Ser::Json, Ser::MsgPack, Ser::Cbor] {
            for (sub, publ) in [(1u64, 2u64), (300, 70_000), (1 << 40, (1 << 53) - 1)] {
                let mut out = Vec::new();
                let payload = b"J0000000000000000000000000000000000000000abc";
                encode(
                    ser,
                    &[
                        It::U(code::EVENT),
                        It::U(sub),
                        It::U(publ),
                        It::Map0,
                        It::List1(payload),
                    ],
                    &mut out,
                );
                let l = decode_list(ser, &out).expect("junction decodes it");
                assert_eq!(l[1].as_u64(), Some(sub));
                assert_eq!(l[2].as_u64(), Some(publ));
                let (ids, p) = fast(ser, &out, code::EVENT, 2).expect("fast parse");
                assert_eq!(ids, [sub, publ]);
                assert_eq!(p, payload);
                // junction's own encoding parses too
                let mut j = Vec::new();
                ser.junction().encode(&Value::List(l), &mut j);
                let (ids, p) = parse(ser, &j, code::EVENT, 2).expect("parse");
                assert_eq!(ids, [sub, publ]);
                assert_eq!(&*p, payload);
            }
        }
    }
}
