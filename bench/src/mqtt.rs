//! A small MQTT 3.1.1 client: packets are encoded with junction's own codec
//! (`junction::mqtt`), incoming packets are parsed in place (no allocation per PUBLISH).

use std::time::Duration;

use bytes::BytesMut;
use junction::mqtt::{write_publish, Connect, Packet, Protocol, QoS};

use crate::net::{self, Conn, Framing, Result, Writer};

/// MQTT packet types (first octet >> 4).
pub mod ty {
    #![allow(missing_docs)]
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBACK: u8 = 9;
    pub const PINGRESP: u8 = 13;
}

/// QoS from its number.
pub fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn encode(p: &Packet) -> BytesMut {
    let mut b = BytesMut::new();
    p.encode(&mut b).expect("packet within limits");
    b
}

/// Connects, sends CONNECT (clean session, no keepalive) and waits for CONNACK 0.
pub async fn connect(host: &str, port: u16, client_id: &str) -> Result<Conn> {
    let stream = net::connect_tcp(host, port).await?;
    let mut c = Conn::new(stream, Framing::Mqtt, &[]);
    let p = encode(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive: 0,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
    }));
    c.w.frame(0, &p);
    c.flush().await?;
    let (tag, body) = c.recv_frame(Duration::from_secs(10)).await?;
    if tag >> 4 != ty::CONNACK || body.len() != 2 || body[1] != 0 {
        return Err(format!(
            "MQTT {client_id}: expected CONNACK 0, got {tag:#x} {body:?}"
        ));
    }
    Ok(c)
}

/// Subscribes to one filter and waits for the SUBACK granting `q`.
pub async fn subscribe(c: &mut Conn, filter: &str, q: u8) -> Result<()> {
    let p = encode(&Packet::Subscribe {
        pkid: 1,
        filters: vec![(filter.to_owned(), qos(q))],
    });
    c.w.frame(0, &p);
    c.flush().await?;
    loop {
        let (tag, body) = c.recv_frame(Duration::from_secs(10)).await?;
        match tag >> 4 {
            ty::SUBACK if body.len() == 3 && body[2] == q => return Ok(()),
            ty::SUBACK => return Err(format!("SUBACK {body:?} for {filter} at QoS {q}")),
            // retained messages of an earlier run: ignore
            ty::PUBLISH => continue,
            _ => return Err(format!("expected SUBACK, got packet {tag:#x}")),
        }
    }
}

/// Appends a PUBLISH.
pub fn publish(w: &mut Writer, topic: &str, q: u8, pkid: u16, payload: &[u8]) {
    write_publish(&mut w.wbuf, topic, qos(q), false, false, pkid, payload)
        .expect("publish within limits");
}

/// Appends a two-byte-identifier ack (PUBACK, PUBREC, PUBREL, PUBCOMP).
pub fn ack(w: &mut Writer, t: u8, pkid: u16) {
    let first = t << 4 | if t == ty::PUBREL { 0x02 } else { 0 };
    w.wbuf
        .extend_from_slice(&[first, 2, (pkid >> 8) as u8, pkid as u8]);
}

/// Appends DISCONNECT.
pub fn disconnect(w: &mut Writer) {
    w.wbuf.extend_from_slice(&[0xe0, 0]);
}

/// A PUBLISH parsed in place: (QoS, packet id, topic, payload).
pub fn parse_publish(tag: u8, body: &[u8]) -> Option<(u8, u16, &[u8], &[u8])> {
    let q = (tag >> 1) & 3;
    let tl = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = body.get(2..2 + tl)?;
    let mut at = 2 + tl;
    let mut pkid = 0;
    if q > 0 {
        pkid = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
        at += 2;
    }
    Some((q, pkid, topic, body.get(at..)?))
}

/// The packet id of a two-byte ack body.
pub fn ack_id(body: &[u8]) -> Option<u16> {
    (body.len() == 2).then(|| u16::from_be_bytes([body[0], body[1]]))
}
