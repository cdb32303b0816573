//! MQTT 3.1.1 and 3.1 control packets and their sans-IO codec.
//!
//! Every packet is a fixed header (type and flags in one octet, then the remaining length as a
//! variable-length integer of 1 to 4 octets) followed by `remaining length` octets of variable
//! header and payload.
//!
//! [`MqttCodec`] decodes incrementally: it checks the packet type and the fixed-header flags as
//! soon as the first octet is present, and the remaining length against the packet type and
//! the configured maximum as soon as the length is complete, before buffering any of the body;
//! it then reserves room for exactly that packet. A complete body is validated as a whole (see
//! [`MqttError`] for the classes of fault). Decoding never panics on any input.
//!
//! Both directions decode and encode every packet type, so the same codec serves the broker,
//! tests and a future bridge. The codec remembers the protocol of the last CONNECT it decoded
//! or encoded: MQTT 3.1 peers may set DUP on PUBREL, SUBSCRIBE and UNSUBSCRIBE and on QoS 0
//! PUBLISH, which MQTT 3.1.1 forbids.
//!
//! Encoding writes what it is given: it checks only what the wire format cannot express
//! (strings over 65535 octets, packets over [`MAX_REMAINING_LENGTH`]), so tests can build
//! packets the decoder rejects. For fan-out, [`write_publish_header`] writes a PUBLISH up to
//! its payload so one payload `Bytes` can follow it to many subscribers.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::topic::{valid_filter, valid_topic_name};

/// Largest remaining length the fixed header can express (4 length octets).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
/// Largest UTF-8 string or binary field (a 16-bit length prefix).
pub const MAX_STRING_LEN: usize = 65_535;

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const UNSUBSCRIBE: u8 = 10;
const UNSUBACK: u8 = 11;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

/// Fixed-header flags of PUBREL, SUBSCRIBE and UNSUBSCRIBE (MQTT-3.6.1-1, 3.8.1-1, 3.10.1-1).
const FLAGS_0010: u8 = 0b0010;
/// The DUP flag in a fixed header.
const DUP: u8 = 0b1000;

/// Why bytes could not be decoded as an MQTT packet, or a packet could not be encoded.
///
/// Every decode error means the peer broke the protocol and the connection must be closed
/// (MQTT 4.8); only [`MqttError::UnacceptableProtocolLevel`] is answered first, with CONNACK
/// 0x01 (see [`MqttError::connack_code`]). Small and `Copy`: the hot path never allocates for
/// an error.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttError {
    /// CONNECT with a known protocol name (`MQTT`, `MQIsdp`) but a level we do not speak
    /// (e.g. 5, or a mosquitto bridge's `0x84`). The server answers CONNACK 0x01 and closes
    /// (MQTT-3.1.2-2).
    #[error("unacceptable protocol level {0}")]
    UnacceptableProtocolLevel(u8),
    /// The remaining length exceeds the configured maximum (checked from the fixed header,
    /// before the body is buffered), or, when encoding, [`MAX_REMAINING_LENGTH`].
    #[error("packet with remaining length {size} exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Remaining length of the packet (fixed header excluded).
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The remaining length has a continuation bit in its fourth octet.
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// Packet type 0 or 15 (reserved).
    #[error("reserved packet type {0}")]
    InvalidPacketType(u8),
    /// Fixed-header flags that the packet type forbids (MQTT-2.2.2-2), including DUP on a QoS 0
    /// PUBLISH (MQTT-3.3.1-2).
    #[error("invalid flags 0x{flags:x} for packet type {packet_type}")]
    InvalidFlags {
        /// Packet type (1..=14).
        packet_type: u8,
        /// The low four bits of the first octet.
        flags: u8,
    },
    /// CONNECT flags that contradict each other or set the reserved bit (MQTT-3.1.2-3,
    /// 3.1.2-11, 3.1.2-13, 3.1.2-15, 3.1.2-22).
    #[error("invalid connect flags 0x{0:02x}")]
    InvalidConnectFlags(u8),
    /// A QoS of 3 (PUBLISH, will QoS, requested QoS in SUBSCRIBE).
    #[error("invalid qos {0}")]
    InvalidQoS(u8),
    /// A CONNACK return code above 5 or a SUBACK return code other than 0, 1, 2, 0x80.
    #[error("invalid return code 0x{0:02x}")]
    InvalidReturnCode(u8),
    /// A PUBLISH or will topic that is empty or contains `+` or `#` (MQTT-3.3.2-2, 4.7.3-1).
    #[error("invalid topic name")]
    InvalidTopic,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter that is empty or misplaces `+` or `#`
    /// (MQTT-4.7.1-2, 4.7.1-3, 4.7.3-1).
    #[error("invalid topic filter")]
    InvalidFilter,
    /// A string that is not valid UTF-8 or contains U+0000 (MQTT-1.5.3-1, 1.5.3-2).
    #[error("string is not valid utf-8 or contains U+0000")]
    InvalidUtf8,
    /// Packet identifier 0 (MQTT-2.3.1-1).
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter (MQTT-3.8.3-3, 3.10.3-2).
    #[error("subscribe or unsubscribe without topic filters")]
    EmptySubscribe,
    /// The remaining length ends inside a field the packet must contain.
    #[error("packet ends before its contents")]
    UnexpectedEof,
    /// Bytes left within the remaining length after the packet's contents.
    #[error("trailing bytes after the packet contents")]
    TrailingBytes,
    /// Any other malformed packet (unknown protocol name, reserved bits in CONNACK flags or a
    /// requested QoS, SUBACK without return codes).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Encoding a string or binary field over [`MAX_STRING_LEN`] octets.
    #[error("string of {0} octets exceeds 65535")]
    StringTooLong(usize),
    /// Socket error, or EOF inside a packet (`UnexpectedEof` kind).
    #[error("i/o error: {0}")]
    Io(io::ErrorKind),
}

impl MqttError {
    /// The CONNACK return code to send before closing, if this error (from a CONNECT) has
    /// one: only an unacceptable protocol level does (MQTT-3.1.2-2); every other fault closes
    /// the connection without CONNACK.
    pub fn connack_code(&self) -> Option<ConnectReturnCode> {
        match self {
            MqttError::UnacceptableProtocolLevel(_) => {
                Some(ConnectReturnCode::UnacceptableProtocol)
            }
            _ => None,
        }
    }
}

impl From<io::Error> for MqttError {
    fn from(e: io::Error) -> Self {
        MqttError::Io(e.kind())
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: fire and forget.
    AtMostOnce = 0,
    /// QoS 1: acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl TryFrom<u8> for QoS {
    type Error = MqttError;

    /// # Errors
    /// [`MqttError::InvalidQoS`] for values above 2.
    fn try_from(v: u8) -> Result<Self, MqttError> {
        match v {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(MqttError::InvalidQoS(v)),
        }
    }
}

/// CONNACK return code (MQTT 3.1.1 table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0x00: connection accepted.
    Accepted = 0,
    /// 0x01: unacceptable protocol version.
    UnacceptableProtocol = 1,
    /// 0x02: identifier rejected.
    IdentifierRejected = 2,
    /// 0x03: server unavailable.
    ServerUnavailable = 3,
    /// 0x04: bad user name or password.
    BadCredentials = 4,
    /// 0x05: not authorized.
    NotAuthorized = 5,
}

impl TryFrom<u8> for ConnectReturnCode {
    type Error = MqttError;

    /// # Errors
    /// [`MqttError::InvalidReturnCode`] for values above 5.
    fn try_from(v: u8) -> Result<Self, MqttError> {
        Ok(match v {
            0 => ConnectReturnCode::Accepted,
            1 => ConnectReturnCode::UnacceptableProtocol,
            2 => ConnectReturnCode::IdentifierRejected,
            3 => ConnectReturnCode::ServerUnavailable,
            4 => ConnectReturnCode::BadCredentials,
            5 => ConnectReturnCode::NotAuthorized,
            _ => return Err(MqttError::InvalidReturnCode(v)),
        })
    }
}

/// One SUBACK return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubAckCode {
    /// Subscribed with this maximum QoS (0x00, 0x01, 0x02).
    Success(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubAckCode {
    /// The octet on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            SubAckCode::Success(q) => q as u8,
            SubAckCode::Failure => 0x80,
        }
    }
}

impl TryFrom<u8> for SubAckCode {
    type Error = MqttError;

    /// # Errors
    /// [`MqttError::InvalidReturnCode`] for anything but 0, 1, 2 and 0x80.
    fn try_from(v: u8) -> Result<Self, MqttError> {
        match v {
            0x80 => Ok(SubAckCode::Failure),
            _ => QoS::try_from(v)
                .map(SubAckCode::Success)
                .map_err(|_| MqttError::InvalidReturnCode(v)),
        }
    }
}

/// Protocol of a CONNECT: the name and level pairs we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MQTT 3.1: name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: name `MQTT`, level 4.
    #[default]
    V311,
}

impl Protocol {
    /// Protocol name as sent in CONNECT.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V31 => "MQIsdp",
            Protocol::V311 => "MQTT",
        }
    }

    /// Protocol level as sent in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
        }
    }
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// A valid topic name.
    pub topic: String,
    /// Opaque payload (zero-copy slice of the CONNECT).
    pub payload: Bytes,
    /// QoS to publish it with.
    pub qos: QoS,
    /// Whether to publish it retained.
    pub retain: bool,
}

/// A CONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `MQTT`/4 or `MQIsdp`/3.
    pub protocol: Protocol,
    /// Clean session flag.
    pub clean_session: bool,
    /// Keep alive in seconds (0: none).
    pub keep_alive: u16,
    /// Client identifier; may be empty (the broker decides whether to accept it).
    pub client_id: String,
    /// The will, if the will flag is set.
    pub will: Option<Will>,
    /// User name, if the user name flag is set.
    pub username: Option<String>,
    /// Password (binary), if the password flag is set. In 3.1.1 only together with a user
    /// name; MQTT 3.1 peers may send it alone.
    pub password: Option<Bytes>,
}

/// A PUBLISH packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Redelivery flag (always false for QoS 0 in 3.1.1).
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// A valid topic name.
    pub topic: String,
    /// Packet identifier; 0 for QoS 0 (not on the wire; ignored when encoding).
    pub pkid: u16,
    /// Opaque payload: a zero-copy slice of the read buffer.
    pub payload: Bytes,
}

/// An MQTT 3.1.1 / 3.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client to server).
    Connect(Connect),
    /// CONNACK (server to client).
    ConnAck {
        /// Session present flag (3.1.1; always false from 3.1 servers).
        session_present: bool,
        /// Return code.
        code: ConnectReturnCode,
    },
    /// PUBLISH (both directions).
    Publish(Publish),
    /// PUBACK with its packet identifier.
    PubAck(u16),
    /// PUBREC with its packet identifier.
    PubRec(u16),
    /// PUBREL with its packet identifier.
    PubRel(u16),
    /// PUBCOMP with its packet identifier.
    PubComp(u16),
    /// SUBSCRIBE: one or more (valid filter, requested QoS).
    Subscribe {
        /// Packet identifier (non-zero).
        pkid: u16,
        /// Topic filters with their requested QoS, in packet order.
        filters: Vec<(String, QoS)>,
    },
    /// SUBACK: one return code per filter of the SUBSCRIBE.
    SubAck {
        /// Packet identifier of the SUBSCRIBE.
        pkid: u16,
        /// Return codes, in the SUBSCRIBE's filter order.
        codes: Vec<SubAckCode>,
    },
    /// UNSUBSCRIBE: one or more valid filters.
    Unsubscribe {
        /// Packet identifier (non-zero).
        pkid: u16,
        /// Topic filters, in packet order.
        filters: Vec<String>,
    },
    /// UNSUBACK with its packet identifier.
    UnsubAck(u16),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

impl Packet {
    /// Upper-case packet name for logs (`"PUBLISH"`).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck { .. } => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe { .. } => "SUBSCRIBE",
            Packet::SubAck { .. } => "SUBACK",
            Packet::Unsubscribe { .. } => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect => "DISCONNECT",
        }
    }

    /// Appends the encoded packet to `dst`. Nothing is written if it fails.
    ///
    /// # Errors
    /// [`MqttError::StringTooLong`] for a string or binary field over 65535 octets,
    /// [`MqttError::PacketTooLarge`] for a remaining length over [`MAX_REMAINING_LENGTH`].
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), MqttError> {
        if let Packet::Publish(p) = self {
            return write_publish(dst, &p.topic, p.qos, p.retain, p.dup, p.pkid, &p.payload);
        }
        let len = self.remaining_length()?;
        dst.reserve(1 + varint_len(len) + len);
        dst.put_u8(self.first_octet());
        put_remaining_length(dst, len);
        match self {
            Packet::Connect(c) => encode_connect(c, dst),
            Packet::ConnAck {
                session_present,
                code,
            } => {
                dst.put_u8(u8::from(*session_present));
                dst.put_u8(*code as u8);
            }
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => dst.put_u16(*id),
            Packet::Subscribe { pkid, filters } => {
                dst.put_u16(*pkid);
                for (f, q) in filters {
                    put_string(dst, f.as_bytes());
                    dst.put_u8(*q as u8);
                }
            }
            Packet::SubAck { pkid, codes } => {
                dst.put_u16(*pkid);
                for c in codes {
                    dst.put_u8(c.to_u8());
                }
            }
            Packet::Unsubscribe { pkid, filters } => {
                dst.put_u16(*pkid);
                for f in filters {
                    put_string(dst, f.as_bytes());
                }
            }
            Packet::Publish(_) | Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
        Ok(())
    }

    /// First octet of the fixed header.
    fn first_octet(&self) -> u8 {
        let (ty, flags) = match self {
            Packet::Connect(_) => (CONNECT, 0),
            Packet::ConnAck { .. } => (CONNACK, 0),
            Packet::Publish(p) => (PUBLISH, publish_flags(p.qos, p.retain, p.dup)),
            Packet::PubAck(_) => (PUBACK, 0),
            Packet::PubRec(_) => (PUBREC, 0),
            Packet::PubRel(_) => (PUBREL, FLAGS_0010),
            Packet::PubComp(_) => (PUBCOMP, 0),
            Packet::Subscribe { .. } => (SUBSCRIBE, FLAGS_0010),
            Packet::SubAck { .. } => (SUBACK, 0),
            Packet::Unsubscribe { .. } => (UNSUBSCRIBE, FLAGS_0010),
            Packet::UnsubAck(_) => (UNSUBACK, 0),
            Packet::PingReq => (PINGREQ, 0),
            Packet::PingResp => (PINGRESP, 0),
            Packet::Disconnect => (DISCONNECT, 0),
        };
        ty << 4 | flags
    }

    /// Remaining length of the encoded packet, checking every field fits the wire format.
    fn remaining_length(&self) -> Result<usize, MqttError> {
        let len = match self {
            Packet::Connect(c) => {
                let mut n = field_len(c.protocol.name().len())? + 4; // level, flags, keep alive
                n += field_len(c.client_id.len())?;
                if let Some(w) = &c.will {
                    n += field_len(w.topic.len())? + field_len(w.payload.len())?;
                }
                if let Some(u) = &c.username {
                    n += field_len(u.len())?;
                }
                if let Some(p) = &c.password {
                    n += field_len(p.len())?;
                }
                n
            }
            Packet::Publish(p) => publish_remaining_length(&p.topic, p.qos, p.payload.len())?,
            Packet::ConnAck { .. }
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::Subscribe { filters, .. } => filters.iter().try_fold(2usize, |n, (f, _)| {
                Ok::<_, MqttError>(n.saturating_add(field_len(f.len())? + 1))
            })?,
            Packet::SubAck { codes, .. } => codes.len().saturating_add(2),
            Packet::Unsubscribe { filters, .. } => filters.iter().try_fold(2usize, |n, f| {
                Ok::<_, MqttError>(n.saturating_add(field_len(f.len())?))
            })?,
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        };
        if len > MAX_REMAINING_LENGTH {
            return Err(MqttError::PacketTooLarge {
                size: len,
                max: MAX_REMAINING_LENGTH,
            });
        }
        Ok(len)
    }
}

/// Encoded size of a length-prefixed field of `len` octets.
fn field_len(len: usize) -> Result<usize, MqttError> {
    if len > MAX_STRING_LEN {
        return Err(MqttError::StringTooLong(len));
    }
    Ok(2 + len)
}

/// Appends a length-prefixed field whose length `field_len` has accepted.
fn put_string(dst: &mut BytesMut, s: &[u8]) {
    debug_assert!(s.len() <= MAX_STRING_LEN);
    dst.put_u16(s.len() as u16);
    dst.put_slice(s);
}

/// Number of octets of the remaining-length encoding of `len` (≤ [`MAX_REMAINING_LENGTH`]).
fn varint_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends the remaining-length encoding of `len` (≤ [`MAX_REMAINING_LENGTH`]).
fn put_remaining_length(dst: &mut BytesMut, mut len: usize) {
    debug_assert!(len <= MAX_REMAINING_LENGTH);
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        if len == 0 {
            dst.put_u8(byte);
            return;
        }
        dst.put_u8(byte | 0x80);
    }
}

fn publish_flags(qos: QoS, retain: bool, dup: bool) -> u8 {
    (u8::from(dup) << 3) | ((qos as u8) << 1) | u8::from(retain)
}

fn publish_remaining_length(topic: &str, qos: QoS, payload_len: usize) -> Result<usize, MqttError> {
    let pkid = if qos == QoS::AtMostOnce { 0 } else { 2 };
    let len = (field_len(topic.len())? + pkid).saturating_add(payload_len);
    if len > MAX_REMAINING_LENGTH {
        return Err(MqttError::PacketTooLarge {
            size: len,
            max: MAX_REMAINING_LENGTH,
        });
    }
    Ok(len)
}

/// Appends a PUBLISH up to (not including) its payload of `payload_len` octets: fixed header,
/// topic, and the packet identifier for QoS 1 and 2 (`pkid` is ignored for QoS 0). The caller
/// sends the payload right after, e.g. the same `Bytes` for every subscriber. Nothing is
/// written if it fails.
///
/// # Errors
/// [`MqttError::StringTooLong`] for a topic over 65535 octets, [`MqttError::PacketTooLarge`]
/// for a remaining length over [`MAX_REMAINING_LENGTH`].
pub fn write_publish_header(
    dst: &mut BytesMut,
    topic: &str,
    qos: QoS,
    retain: bool,
    dup: bool,
    pkid: u16,
    payload_len: usize,
) -> Result<(), MqttError> {
    let len = publish_remaining_length(topic, qos, payload_len)?;
    let header_len = 1 + varint_len(len) + len - payload_len;
    dst.reserve(header_len);
    dst.put_u8(PUBLISH << 4 | publish_flags(qos, retain, dup));
    put_remaining_length(dst, len);
    put_string(dst, topic.as_bytes());
    if qos != QoS::AtMostOnce {
        dst.put_u16(pkid);
    }
    Ok(())
}

/// Appends a whole PUBLISH (see [`write_publish_header`]). Nothing is written if it fails.
///
/// # Errors
/// As [`write_publish_header`].
pub fn write_publish(
    dst: &mut BytesMut,
    topic: &str,
    qos: QoS,
    retain: bool,
    dup: bool,
    pkid: u16,
    payload: &[u8],
) -> Result<(), MqttError> {
    let len = publish_remaining_length(topic, qos, payload.len())?;
    dst.reserve(1 + varint_len(len) + len);
    write_publish_header(dst, topic, qos, retain, dup, pkid, payload.len())?;
    dst.put_slice(payload);
    Ok(())
}

fn encode_connect(c: &Connect, dst: &mut BytesMut) {
    put_string(dst, c.protocol.name().as_bytes());
    dst.put_u8(c.protocol.level());
    let mut flags = u8::from(c.clean_session) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3 | u8::from(w.retain) << 5;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    dst.put_u8(flags);
    dst.put_u16(c.keep_alive);
    put_string(dst, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        put_string(dst, w.topic.as_bytes());
        put_string(dst, &w.payload);
    }
    if let Some(u) = &c.username {
        put_string(dst, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_string(dst, p);
    }
}

/// The MQTT framer: [`Packet`]s from and to bytes.
///
/// Rejects any packet whose remaining length exceeds `max_packet_size` as soon as its fixed
/// header is complete, without buffering or reserving for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttCodec {
    max_packet_size: usize,
    /// Protocol of the last CONNECT decoded or encoded (3.1.1 until then).
    protocol: Protocol,
}

impl MqttCodec {
    /// A codec accepting packets whose remaining length (the size after the fixed header) is
    /// at most `max_packet_size`, capped at [`MAX_REMAINING_LENGTH`].
    pub fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size: max_packet_size.min(MAX_REMAINING_LENGTH),
            protocol: Protocol::V311,
        }
    }

    /// Largest remaining length accepted.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Protocol whose rules apply: that of the last CONNECT seen, 3.1.1 before any.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Applies the rules of `protocol` from now on (for a codec created after the CONNECT).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }
}

/// Checks the packet type and flags of a first octet.
fn check_first_octet(byte: u8, protocol: Protocol) -> Result<(), MqttError> {
    let (ty, flags) = (byte >> 4, byte & 0x0F);
    let ok = match ty {
        PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(MqttError::InvalidQoS(3));
            }
            // MQTT-3.3.1-2; MQTT 3.1 does not forbid it.
            !(qos == 0 && flags & DUP != 0 && protocol == Protocol::V311)
        }
        // MQTT 3.1 sends these as QoS 1 and may set DUP on a retransmission.
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => {
            flags == FLAGS_0010 || (protocol == Protocol::V31 && flags == DUP | FLAGS_0010)
        }
        CONNECT..=DISCONNECT => flags == 0,
        _ => return Err(MqttError::InvalidPacketType(ty)),
    };
    if ok {
        Ok(())
    } else {
        Err(MqttError::InvalidFlags {
            packet_type: ty,
            flags,
        })
    }
}

/// Parses a remaining length from the octets after the first: `Ok(None)` while incomplete,
/// else the number of length octets and the value.
fn parse_remaining_length(src: &[u8]) -> Result<Option<(usize, usize)>, MqttError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = src.get(i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
    }
    Err(MqttError::MalformedRemainingLength)
}

/// Packet types whose remaining length is fixed, checked before the body arrives.
fn check_fixed_length(ty: u8, len: usize) -> Result<(), MqttError> {
    let want = match ty {
        CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK => 2,
        PINGREQ | PINGRESP | DISCONNECT => 0,
        _ => return Ok(()),
    };
    match len.cmp(&want) {
        std::cmp::Ordering::Less => Err(MqttError::UnexpectedEof),
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(MqttError::TrailingBytes),
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = MqttError;

    /// # Errors
    /// Any [`MqttError`] but `StringTooLong` and `Io`; the connection must then be closed.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, MqttError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        check_first_octet(first, self.protocol)?;
        let Some((len_octets, len)) = parse_remaining_length(&src[1..])? else {
            return Ok(None);
        };
        if len > self.max_packet_size {
            return Err(MqttError::PacketTooLarge {
                size: len,
                max: self.max_packet_size,
            });
        }
        check_fixed_length(first >> 4, len)?;
        let total = 1 + len_octets + len;
        if src.len() < total {
            // The length is within our limit: make room for the rest of this packet only.
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(1 + len_octets);
        let body = if len == 0 {
            Bytes::new()
        } else {
            src.split_to(len).freeze()
        };
        let packet = parse_body(first, body)?;
        if let Packet::Connect(c) = &packet {
            self.protocol = c.protocol;
        }
        Ok(Some(packet))
    }

    /// Like `decode`; bytes left at EOF (a packet cut short) are `Io(UnexpectedEof)`.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, MqttError> {
        match self.decode(buf)? {
            Some(p) => Ok(Some(p)),
            None if buf.is_empty() => Ok(None),
            None => Err(MqttError::Io(io::ErrorKind::UnexpectedEof)),
        }
    }
}

/// Only `Encoder<Packet>`: a second impl for `&Packet` would make `SinkExt::flush` on a
/// `Framed` ambiguous. To encode a borrowed packet, use [`Packet::encode`] on the write buffer.
impl Encoder<Packet> for MqttCodec {
    type Error = MqttError;

    /// # Errors
    /// As [`Packet::encode`].
    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), MqttError> {
        packet.encode(dst)?;
        if let Packet::Connect(c) = &packet {
            self.protocol = c.protocol;
        }
        Ok(())
    }
}

/// A cursor over one packet body.
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, MqttError> {
        let b = *self.buf.get(self.pos).ok_or(MqttError::UnexpectedEof)?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, MqttError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    fn pkid(&mut self) -> Result<u16, MqttError> {
        match self.u16()? {
            0 => Err(MqttError::ZeroPacketId),
            id => Ok(id),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], MqttError> {
        if self.remaining() < n {
            return Err(MqttError::UnexpectedEof);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A length-prefixed binary field, zero-copy.
    fn binary(&mut self) -> Result<Bytes, MqttError> {
        let n = usize::from(self.u16()?);
        if self.remaining() < n {
            return Err(MqttError::UnexpectedEof);
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// A length-prefixed UTF-8 string without U+0000.
    fn string(&mut self) -> Result<&str, MqttError> {
        let n = usize::from(self.u16()?);
        let s = self.take(n)?;
        if s.contains(&0) {
            return Err(MqttError::InvalidUtf8);
        }
        std::str::from_utf8(s).map_err(|_| MqttError::InvalidUtf8)
    }

    fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn finish(&self) -> Result<(), MqttError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(MqttError::TrailingBytes)
        }
    }
}

/// Parses and validates a complete body; the first octet has been checked.
fn parse_body(first: u8, body: Bytes) -> Result<Packet, MqttError> {
    let mut r = Reader { buf: body, pos: 0 };
    let packet = match first >> 4 {
        CONNECT => Packet::Connect(parse_connect(&mut r)?),
        CONNACK => {
            let flags = r.u8()?;
            if flags & 0xFE != 0 {
                return Err(MqttError::Malformed("reserved connack flags set"));
            }
            Packet::ConnAck {
                session_present: flags == 1,
                code: ConnectReturnCode::try_from(r.u8()?)?,
            }
        }
        PUBLISH => {
            let qos = QoS::try_from((first >> 1) & 0b11)?;
            let topic = r.string()?;
            if !valid_topic_name(topic) {
                return Err(MqttError::InvalidTopic);
            }
            let topic = topic.to_owned();
            let pkid = if qos == QoS::AtMostOnce { 0 } else { r.pkid()? };
            Packet::Publish(Publish {
                dup: first & DUP != 0,
                qos,
                retain: first & 1 != 0,
                topic,
                pkid,
                payload: r.rest(),
            })
        }
        PUBACK => Packet::PubAck(r.pkid()?),
        PUBREC => Packet::PubRec(r.pkid()?),
        PUBREL => Packet::PubRel(r.pkid()?),
        PUBCOMP => Packet::PubComp(r.pkid()?),
        SUBSCRIBE => {
            let pkid = r.pkid()?;
            let mut filters = Vec::new();
            while !r.is_empty() {
                let f = r.string()?;
                if !valid_filter(f) {
                    return Err(MqttError::InvalidFilter);
                }
                let f = f.to_owned();
                let q = r.u8()?;
                if q & 0xFC != 0 {
                    return Err(MqttError::Malformed("reserved bits set in requested qos"));
                }
                filters.push((f, QoS::try_from(q)?));
            }
            if filters.is_empty() {
                return Err(MqttError::EmptySubscribe);
            }
            Packet::Subscribe { pkid, filters }
        }
        SUBACK => {
            let pkid = r.pkid()?;
            let mut codes = Vec::with_capacity(r.remaining());
            while !r.is_empty() {
                codes.push(SubAckCode::try_from(r.u8()?)?);
            }
            if codes.is_empty() {
                return Err(MqttError::Malformed("suback without return codes"));
            }
            Packet::SubAck { pkid, codes }
        }
        UNSUBSCRIBE => {
            let pkid = r.pkid()?;
            let mut filters = Vec::new();
            while !r.is_empty() {
                let f = r.string()?;
                if !valid_filter(f) {
                    return Err(MqttError::InvalidFilter);
                }
                filters.push(f.to_owned());
            }
            if filters.is_empty() {
                return Err(MqttError::EmptySubscribe);
            }
            Packet::Unsubscribe { pkid, filters }
        }
        UNSUBACK => Packet::UnsubAck(r.pkid()?),
        PINGREQ => Packet::PingReq,
        PINGRESP => Packet::PingResp,
        DISCONNECT => Packet::Disconnect,
        ty => return Err(MqttError::InvalidPacketType(ty)),
    };
    r.finish()?;
    Ok(packet)
}

fn parse_connect(r: &mut Reader) -> Result<Connect, MqttError> {
    let name_len = usize::from(r.u16()?);
    let named = match r.take(name_len)? {
        b"MQTT" => Protocol::V311,
        b"MQIsdp" => Protocol::V31,
        _ => return Err(MqttError::Malformed("unknown protocol name")),
    };
    let level = r.u8()?;
    if level != named.level() {
        return Err(MqttError::UnacceptableProtocolLevel(level));
    }
    let protocol = named;
    let flags = r.u8()?;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    // MQTT-3.1.2-3 (3.1 left the bit unused), 3.1.2-11/13/15, 3.1.2-22 (3.1 allowed it).
    if (protocol == Protocol::V311 && flags & 0x01 != 0)
        || (!will_flag && (will_qos != 0 || will_retain))
        || (protocol == Protocol::V311 && password_flag && !username_flag)
    {
        return Err(MqttError::InvalidConnectFlags(flags));
    }
    let will_qos = QoS::try_from(will_qos)?;
    let keep_alive = r.u16()?;
    let client_id = r.string()?.to_owned();
    let will = if will_flag {
        let topic = r.string()?;
        if !valid_topic_name(topic) {
            return Err(MqttError::InvalidTopic);
        }
        let topic = topic.to_owned();
        Some(Will {
            topic,
            payload: r.binary()?,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?.to_owned())
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_session: flags & 0x02 != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

/// Fuzzing entry point (shared by a cargo-fuzz target and the tests): decodes `data` as a
/// stream with a 1 MiB limit and checks the invariants: no panic, never more consumed than
/// given, and every decoded packet encodes to bytes that decode to the same packet.
///
/// # Panics
/// When an invariant is broken.
#[doc(hidden)]
pub fn fuzz_logic(data: &[u8]) {
    let mut codec = MqttCodec::new(1 << 20);
    let mut buf = BytesMut::from(data);
    loop {
        let before_codec = codec;
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "a packet consumed nothing");
                let mut out = BytesMut::new();
                packet.encode(&mut out).expect("a decoded packet encodes");
                let mut again = before_codec;
                let decoded = again.decode(&mut out).expect("re-encoded packet decodes");
                assert_eq!(decoded.as_ref(), Some(&packet));
                assert!(out.is_empty(), "re-encoded packet has trailing bytes");
            }
            Ok(None) | Err(_) => {
                assert!(buf.len() <= before);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> MqttCodec {
        MqttCodec::new(MAX_REMAINING_LENGTH)
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Packet>, MqttError> {
        let mut buf = BytesMut::from(bytes);
        codec().decode(&mut buf)
    }

    /// Decodes exactly one packet that uses all of `bytes`.
    fn decode_all(bytes: &[u8]) -> Packet {
        let mut buf = BytesMut::from(bytes);
        let p = codec().decode(&mut buf).unwrap().expect("a whole packet");
        assert!(buf.is_empty(), "bytes left: {buf:?}");
        p
    }

    fn encode(p: &Packet) -> Vec<u8> {
        let mut buf = BytesMut::new();
        p.encode(&mut buf).unwrap();
        buf.to_vec()
    }

    fn err(bytes: &[u8]) -> MqttError {
        decode_one(bytes).expect_err("must be rejected")
    }

    /// Builds a packet from a first octet and a body (remaining length computed).
    fn raw(first: u8, body: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_u8(first);
        put_remaining_length(&mut b, body.len());
        b.put_slice(body);
        b.to_vec()
    }

    fn s(x: &str) -> Vec<u8> {
        let mut v = (x.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(x.as_bytes());
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn connect_body(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
        cat(&[&s(name), &[level, flags, 0, 60], rest])
    }

    fn sample_connect() -> Connect {
        Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: "test".into(),
            will: None,
            username: None,
            password: None,
        }
    }

    fn publish(qos: QoS, pkid: u16, topic: &str, payload: &'static [u8]) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            pkid,
            payload: Bytes::from_static(payload),
        }
    }

    fn every_packet_type() -> Vec<Packet> {
        vec![
            Packet::Connect(sample_connect()),
            Packet::Connect(Connect {
                protocol: Protocol::V31,
                clean_session: false,
                keep_alive: 0,
                client_id: String::new(),
                will: Some(Will {
                    topic: "last/will".into(),
                    payload: Bytes::from_static(b"\x00gone\xff"),
                    qos: QoS::ExactlyOnce,
                    retain: true,
                }),
                username: Some("üser".into()),
                password: Some(Bytes::from_static(b"\x00\x01secret")),
            }),
            Packet::ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            },
            Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::NotAuthorized,
            },
            Packet::Publish(publish(QoS::AtMostOnce, 0, "a/b", b"hello")),
            Packet::Publish(Publish {
                dup: true,
                retain: true,
                ..publish(QoS::AtLeastOnce, 7, "a", b"")
            }),
            Packet::Publish(publish(QoS::ExactlyOnce, 65535, "$SYS/x", &[0u8; 300])),
            Packet::PubAck(1),
            Packet::PubRec(2),
            Packet::PubRel(3),
            Packet::PubComp(65535),
            Packet::Subscribe {
                pkid: 10,
                filters: vec![
                    ("a/+/c".into(), QoS::AtMostOnce),
                    ("#".into(), QoS::AtLeastOnce),
                    ("+/x/#".into(), QoS::ExactlyOnce),
                ],
            },
            Packet::SubAck {
                pkid: 10,
                codes: vec![
                    SubAckCode::Success(QoS::AtMostOnce),
                    SubAckCode::Failure,
                    SubAckCode::Success(QoS::ExactlyOnce),
                ],
            },
            Packet::Unsubscribe {
                pkid: 11,
                filters: vec!["a/+/c".into(), "#".into()],
            },
            Packet::UnsubAck(11),
            Packet::PingReq,
            Packet::PingResp,
            Packet::Disconnect,
        ]
    }

    #[test]
    fn round_trip_every_packet_type() {
        for p in every_packet_type() {
            assert_eq!(decode_all(&encode(&p)), p, "{}", p.name());
            // The codec and `Packet::encode` agree.
            let mut a = BytesMut::new();
            codec().encode(p.clone(), &mut a).unwrap();
            assert_eq!(a.to_vec(), encode(&p));
        }
    }

    #[test]
    fn golden_fixed_size_packets() {
        let table: &[(&[u8], Packet)] = &[
            (&[0xC0, 0x00], Packet::PingReq),
            (&[0xD0, 0x00], Packet::PingResp),
            (&[0xE0, 0x00], Packet::Disconnect),
            (
                &[0x20, 0x02, 0x00, 0x00],
                Packet::ConnAck {
                    session_present: false,
                    code: ConnectReturnCode::Accepted,
                },
            ),
            (
                &[0x20, 0x02, 0x01, 0x00],
                Packet::ConnAck {
                    session_present: true,
                    code: ConnectReturnCode::Accepted,
                },
            ),
            (
                &[0x20, 0x02, 0x00, 0x01],
                Packet::ConnAck {
                    session_present: false,
                    code: ConnectReturnCode::UnacceptableProtocol,
                },
            ),
            (&[0x40, 0x02, 0x00, 0x01], Packet::PubAck(1)),
            (&[0x50, 0x02, 0x12, 0x34], Packet::PubRec(0x1234)),
            (&[0x62, 0x02, 0x00, 0x01], Packet::PubRel(1)),
            (&[0x70, 0x02, 0xFF, 0xFF], Packet::PubComp(65535)),
            (&[0xB0, 0x02, 0x00, 0x05], Packet::UnsubAck(5)),
        ];
        for (bytes, p) in table {
            assert_eq!(&decode_all(bytes), p);
            assert_eq!(&encode(p), bytes);
        }
    }

    #[test]
    fn golden_connect() {
        // mosquitto_sub -i test -k 60: MQTT 3.1.1, clean session, no will, no credentials.
        let bytes = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test";
        assert_eq!(decode_all(bytes), Packet::Connect(sample_connect()));
        assert_eq!(encode(&Packet::Connect(sample_connect())), bytes);

        // The same client speaking MQTT 3.1.
        let v31 = b"\x10\x12\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x04test";
        let c = Connect {
            protocol: Protocol::V31,
            ..sample_connect()
        };
        assert_eq!(decode_all(v31), Packet::Connect(c.clone()));
        assert_eq!(encode(&Packet::Connect(c)), v31);

        // Will (QoS 1, retained), user name and password: flags 0xEE.
        let full = b"\x10\x24\x00\x04MQTT\x04\xee\x00\x0a\x00\x02id\
                     \x00\x03w/t\x00\x03bye\x00\x04user\x00\x04pass";
        let c = Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive: 10,
            client_id: "id".into(),
            will: Some(Will {
                topic: "w/t".into(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"pass")),
        };
        assert_eq!(decode_all(full), Packet::Connect(c.clone()));
        assert_eq!(encode(&Packet::Connect(c)), full);
    }

    #[test]
    fn golden_publish_subscribe() {
        // MQTT 3.1.1 section 3.3.2.3: topic "a/b", packet identifier 10.
        let qos1 = b"\x32\x0c\x00\x03a/b\x00\x0ahello";
        let p = Packet::Publish(publish(QoS::AtLeastOnce, 10, "a/b", b"hello"));
        assert_eq!(decode_all(qos1), p);
        assert_eq!(encode(&p), qos1);

        let qos0_retain = b"\x31\x0a\x00\x03a/bhello";
        let p = Packet::Publish(Publish {
            retain: true,
            ..publish(QoS::AtMostOnce, 0, "a/b", b"hello")
        });
        assert_eq!(decode_all(qos0_retain), p);
        assert_eq!(encode(&p), qos0_retain);

        // MQTT 3.1.1 section 3.8.3.1: "a/b" QoS 1 and "c/d" QoS 2, packet identifier 10.
        let sub = b"\x82\x0e\x00\x0a\x00\x03a/b\x01\x00\x03c/d\x02";
        let p = Packet::Subscribe {
            pkid: 10,
            filters: vec![
                ("a/b".into(), QoS::AtLeastOnce),
                ("c/d".into(), QoS::ExactlyOnce),
            ],
        };
        assert_eq!(decode_all(sub), p);
        assert_eq!(encode(&p), sub);

        // MQTT 3.1.1 section 3.9.3: return codes 0, 0x80, 2.
        let suback = b"\x90\x05\x00\x0a\x00\x80\x02";
        let p = Packet::SubAck {
            pkid: 10,
            codes: vec![
                SubAckCode::Success(QoS::AtMostOnce),
                SubAckCode::Failure,
                SubAckCode::Success(QoS::ExactlyOnce),
            ],
        };
        assert_eq!(decode_all(suback), p);
        assert_eq!(encode(&p), suback);

        let unsub = b"\xa2\x0c\x00\x0b\x00\x03a/b\x00\x03c/d";
        let p = Packet::Unsubscribe {
            pkid: 11,
            filters: vec!["a/b".into(), "c/d".into()],
        };
        assert_eq!(decode_all(unsub), p);
        assert_eq!(encode(&p), unsub);
    }

    #[test]
    fn publish_payload_is_a_slice_of_the_read_buffer() {
        let mut buf = BytesMut::from(&b"\x30\x0a\x00\x03a/bhello"[..]);
        let base = buf.as_ptr() as usize;
        let Some(Packet::Publish(p)) = codec().decode(&mut buf).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(p.payload.as_ptr() as usize, base + 7);
    }

    #[test]
    fn write_publish_header_then_payload_equals_whole_packet() {
        let payload = Bytes::from_static(b"shared payload");
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut head = BytesMut::new();
            write_publish_header(&mut head, "t/1", qos, true, false, 9, payload.len()).unwrap();
            head.extend_from_slice(&payload);
            let p = Packet::Publish(Publish {
                dup: false,
                qos,
                retain: true,
                topic: "t/1".into(),
                pkid: if qos == QoS::AtMostOnce { 0 } else { 9 },
                payload: payload.clone(),
            });
            assert_eq!(head.to_vec(), encode(&p));
            let mut whole = BytesMut::new();
            write_publish(&mut whole, "t/1", qos, true, false, 9, &payload).unwrap();
            assert_eq!(whole, head);
        }
    }

    // ---- remaining length ------------------------------------------------------------------

    #[test]
    fn remaining_length_boundaries() {
        let table: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(n, octets) in table {
            let mut b = BytesMut::new();
            put_remaining_length(&mut b, n);
            assert_eq!(&b[..], octets, "{n}");
            assert_eq!(varint_len(n), octets.len());
            assert_eq!(
                parse_remaining_length(octets),
                Ok(Some((octets.len(), n))),
                "{n}"
            );
            // Incomplete lengths ask for more.
            assert_eq!(
                parse_remaining_length(&octets[..octets.len() - 1]),
                Ok(None)
            );
        }
        // Whole packets up to 2 MiB through the codec.
        for &(n, octets) in &table[..7] {
            let mut bytes = vec![0x30];
            bytes.extend_from_slice(octets);
            if n > 0 {
                bytes.extend_from_slice(&s("t"));
                bytes.resize(1 + octets.len() + n, 0xAB);
                let p = decode_all(&bytes);
                assert_eq!(encode(&p), bytes, "{n}");
                let Packet::Publish(p) = p else { panic!() };
                assert_eq!(p.payload.len(), n - 3);
            } else {
                // An empty PUBLISH lacks its topic.
                assert_eq!(err(&bytes), MqttError::UnexpectedEof);
            }
        }
        // The largest packet: checked from the header without buffering it.
        let mut c = MqttCodec::new(MAX_REMAINING_LENGTH - 1);
        let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
        assert_eq!(
            c.decode(&mut buf),
            Err(MqttError::PacketTooLarge {
                size: MAX_REMAINING_LENGTH,
                max: MAX_REMAINING_LENGTH - 1,
            })
        );
        // Encoding the largest and one past it, without allocating the payload.
        let mut head = BytesMut::new();
        let payload_len = MAX_REMAINING_LENGTH - 3;
        write_publish_header(
            &mut head,
            "t",
            QoS::AtMostOnce,
            false,
            false,
            0,
            payload_len,
        )
        .unwrap();
        assert_eq!(&head[..], b"\x30\xff\xff\xff\x7f\x00\x01t");
        let mut head = BytesMut::new();
        assert_eq!(
            write_publish_header(
                &mut head,
                "t",
                QoS::AtMostOnce,
                false,
                false,
                0,
                payload_len + 1
            ),
            Err(MqttError::PacketTooLarge {
                size: MAX_REMAINING_LENGTH + 1,
                max: MAX_REMAINING_LENGTH,
            })
        );
        assert!(head.is_empty());
    }

    #[test]
    fn non_minimal_remaining_length_is_accepted() {
        assert_eq!(decode_all(&[0xC0, 0x80, 0x00]), Packet::PingReq);
    }

    #[test]
    fn oversize_packet_rejected_from_the_header_alone() {
        let mut c = MqttCodec::new(64 * 1024);
        // PUBLISH claiming 1 MiB (0x80 0x80 0x40), then one body octet.
        let mut buf = BytesMut::with_capacity(5);
        buf.extend_from_slice(&[0x30, 0x80, 0x80, 0x40, 0x00]);
        assert_eq!(
            c.decode(&mut buf),
            Err(MqttError::PacketTooLarge {
                size: 1 << 20,
                max: 64 * 1024,
            })
        );
        assert!(buf.capacity() < 1024, "reserved {}", buf.capacity());
        // Exactly at the limit: waits for the body and reserves only what is missing.
        let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x04][..]);
        assert_eq!(c.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 4 + 65536);
        assert!(buf.capacity() < 2 * (4 + 65536) + 64, "{}", buf.capacity());
    }

    #[test]
    fn byte_at_a_time() {
        let packets = every_packet_type();
        let stream: Vec<u8> = packets.iter().flat_map(encode).collect();
        let mut c = codec();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in &stream {
            buf.put_u8(b);
            while let Some(p) = c.decode(&mut buf).unwrap() {
                out.push(p);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(out, packets);
        assert_eq!(c.protocol(), Protocol::V31, "the last CONNECT was 3.1");
    }

    #[test]
    fn eof_inside_a_packet() {
        let mut c = codec();
        let mut buf = BytesMut::from(&[0xC0, 0x00, 0x40, 0x02, 0x00][..]);
        assert_eq!(c.decode_eof(&mut buf), Ok(Some(Packet::PingReq)));
        assert_eq!(
            c.decode_eof(&mut buf),
            Err(MqttError::Io(io::ErrorKind::UnexpectedEof))
        );
        assert_eq!(c.decode_eof(&mut BytesMut::new()), Ok(None));
    }

    // ---- one test per error variant --------------------------------------------------------

    #[test]
    fn err_unacceptable_protocol_level() {
        for (name, level) in [("MQTT", 5), ("MQTT", 3), ("MQIsdp", 4), ("MQTT", 0x84)] {
            // Only the name and level are read: the rest may be anything (MQTT 5 properties).
            let body = cat(&[&s(name), &[level, 0xFF]]);
            let e = err(&raw(0x10, &body));
            assert_eq!(e, MqttError::UnacceptableProtocolLevel(level));
            assert_eq!(
                e.connack_code(),
                Some(ConnectReturnCode::UnacceptableProtocol)
            );
        }
    }

    #[test]
    fn err_packet_too_large() {
        let mut c = MqttCodec::new(10);
        let ok = raw(0x30, &cat(&[&s("t"), b"1234567"]));
        assert!(c.decode(&mut BytesMut::from(&ok[..])).unwrap().is_some());
        let big = raw(0x30, &cat(&[&s("t"), b"12345678"]));
        assert_eq!(
            c.decode(&mut BytesMut::from(&big[..2])),
            Err(MqttError::PacketTooLarge { size: 11, max: 10 })
        );
        let e = c.decode(&mut BytesMut::from(&big[..])).unwrap_err();
        assert_eq!(e.connack_code(), None);
        // Encoding: past the wire format's limit (the payload is not allocated).
        let mut dst = BytesMut::new();
        let payload_len = MAX_REMAINING_LENGTH - 2;
        assert_eq!(
            write_publish_header(&mut dst, "t", QoS::AtMostOnce, false, false, 0, payload_len),
            Err(MqttError::PacketTooLarge {
                size: MAX_REMAINING_LENGTH + 1,
                max: MAX_REMAINING_LENGTH,
            })
        );
        assert!(dst.is_empty());
    }

    #[test]
    fn err_malformed_remaining_length() {
        // Five length octets: rejected at the fourth, before any more input.
        assert_eq!(
            err(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
            MqttError::MalformedRemainingLength
        );
        assert_eq!(
            err(&[0xC0, 0x80, 0x80, 0x80, 0x80, 0x00]),
            MqttError::MalformedRemainingLength
        );
        assert_eq!(decode_one(&[0x30, 0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn err_invalid_packet_type() {
        assert_eq!(err(&[0x00]), MqttError::InvalidPacketType(0));
        assert_eq!(err(&[0xF0, 0x00]), MqttError::InvalidPacketType(15));
    }

    #[test]
    fn err_invalid_flags() {
        let bad: &[(u8, u8)] = &[
            (0x11, 1),
            (0x28, 2),
            (0x41, 4),
            (0x52, 5),
            (0x60, 6),
            (0x6A, 6),
            (0x72, 7),
            (0x80, 8),
            (0x83, 8),
            (0x8A, 8),
            (0x91, 9),
            (0xA0, 10),
            (0xAA, 10),
            (0xB4, 11),
            (0xC1, 12),
            (0xD2, 13),
            (0xE8, 14),
            (0x38, 3), // DUP with QoS 0 (MQTT-3.3.1-2)
            (0x39, 3),
        ];
        for &(first, ty) in bad {
            assert_eq!(
                err(&[first]),
                MqttError::InvalidFlags {
                    packet_type: ty,
                    flags: first & 0x0F
                },
                "0x{first:02x}"
            );
        }
    }

    #[test]
    fn mqtt31_allows_dup_on_qos1_style_packets() {
        let mut c = codec();
        let mut buf = BytesMut::from(&raw(0x10, &connect_body("MQIsdp", 3, 0x02, &s("c")))[..]);
        assert!(matches!(c.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
        assert_eq!(c.protocol(), Protocol::V31);
        let sub = raw(0x8A, &cat(&[&[0, 1], &s("a"), &[1]]));
        let unsub = raw(0xAA, &cat(&[&[0, 1], &s("a")]));
        let stream = cat(&[&sub, &unsub, &[0x6A, 0x02, 0x00, 0x01], &raw(0x38, &s("a"))]);
        let mut buf = BytesMut::from(&stream[..]);
        let mut n = 0;
        while let Some(p) = c.decode(&mut buf).unwrap() {
            n += 1;
            if let Packet::Publish(p) = p {
                assert!(p.dup && p.qos == QoS::AtMostOnce);
            }
        }
        assert_eq!(n, 4);
        // Still no other flags.
        assert!(matches!(
            c.decode(&mut BytesMut::from(&[0x8B][..])),
            Err(MqttError::InvalidFlags { .. })
        ));
        // And a 3.1.1 CONNECT switches back.
        let mut c2 = c;
        c2.set_protocol(Protocol::V311);
        assert!(c2.decode(&mut BytesMut::from(&sub[..])).is_err());
    }

    #[test]
    fn encoding_a_connect_sets_the_protocol() {
        let mut c = codec();
        let mut buf = BytesMut::new();
        let connect = Connect {
            protocol: Protocol::V31,
            ..sample_connect()
        };
        c.encode(Packet::Connect(connect), &mut buf).unwrap();
        assert_eq!(c.protocol(), Protocol::V31);
        c.encode(Packet::Connect(sample_connect()), &mut buf)
            .unwrap();
        assert_eq!(c.protocol(), Protocol::V311);
    }

    #[test]
    fn err_invalid_connect_flags() {
        let rest = s("c");
        for flags in [
            0x03, // reserved bit (3.1.1)
            0x08, // will QoS without will flag
            0x10, // will QoS 2 without will flag
            0x20, // will retain without will flag
            0x40, // password without user name (3.1.1)
        ] {
            assert_eq!(
                err(&raw(0x10, &connect_body("MQTT", 4, flags, &rest))),
                MqttError::InvalidConnectFlags(flags),
                "0x{flags:02x}"
            );
        }
        // MQTT 3.1 tolerates the reserved bit and a password without a user name.
        let body = connect_body("MQIsdp", 3, 0x43, &cat(&[&rest, &s("pw")]));
        let Packet::Connect(c) = decode_all(&raw(0x10, &body)) else {
            panic!()
        };
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        assert!(c.clean_session);
        assert_eq!(
            err(&raw(0x10, &connect_body("MQIsdp", 3, 0x08, &rest))),
            MqttError::InvalidConnectFlags(0x08)
        );
    }

    #[test]
    fn err_invalid_qos() {
        assert_eq!(err(&[0x36]), MqttError::InvalidQoS(3));
        let will_qos3 = connect_body("MQTT", 4, 0x1C, &cat(&[&s("c"), &s("w"), &s("x")]));
        assert_eq!(err(&raw(0x10, &will_qos3)), MqttError::InvalidQoS(3));
        let sub = raw(0x82, &cat(&[&[0, 1], &s("a"), &[3]]));
        assert_eq!(err(&sub), MqttError::InvalidQoS(3));
        assert_eq!(QoS::try_from(3), Err(MqttError::InvalidQoS(3)));
    }

    #[test]
    fn err_invalid_return_code() {
        assert_eq!(
            err(&[0x20, 0x02, 0x00, 0x06]),
            MqttError::InvalidReturnCode(6)
        );
        assert_eq!(
            err(&[0x90, 0x03, 0x00, 0x01, 0x03]),
            MqttError::InvalidReturnCode(3)
        );
        assert_eq!(
            err(&[0x90, 0x03, 0x00, 0x01, 0x81]),
            MqttError::InvalidReturnCode(0x81)
        );
    }

    #[test]
    fn err_invalid_topic() {
        for t in ["", "a/+", "#", "a/#/b", "+"] {
            assert_eq!(
                err(&raw(0x30, &cat(&[&s(t), b"x"]))),
                MqttError::InvalidTopic,
                "{t:?}"
            );
        }
        let will = connect_body("MQTT", 4, 0x04, &cat(&[&s("c"), &s("w/#"), &s("x")]));
        assert_eq!(err(&raw(0x10, &will)), MqttError::InvalidTopic);
    }

    #[test]
    fn err_invalid_filter() {
        for f in ["", "a#", "a/#/b", "a+", "+a"] {
            let sub = raw(0x82, &cat(&[&[0, 1], &s(f), &[0]]));
            assert_eq!(err(&sub), MqttError::InvalidFilter, "{f:?}");
            let unsub = raw(0xA2, &cat(&[&[0, 1], &s(f)]));
            assert_eq!(err(&unsub), MqttError::InvalidFilter, "{f:?}");
        }
    }

    #[test]
    fn err_invalid_utf8() {
        let bad_strings: &[&[u8]] = &[
            b"\x00\x03a\x00b",       // U+0000
            b"\x00\x02\xc3\x28",     // invalid sequence
            b"\x00\x03\xed\xa0\x80", // surrogate U+D800
            b"\x00\x02\xc0\x80",     // overlong U+0000
        ];
        for bad in bad_strings {
            assert_eq!(err(&raw(0x30, bad)), MqttError::InvalidUtf8, "{bad:?}");
            let sub = raw(0x82, &cat(&[&[0, 1], bad, &[0]]));
            assert_eq!(err(&sub), MqttError::InvalidUtf8);
            let conn = connect_body("MQTT", 4, 0x02, bad);
            assert_eq!(err(&raw(0x10, &conn)), MqttError::InvalidUtf8);
            let user = connect_body("MQTT", 4, 0x82, &cat(&[&s("c"), bad]));
            assert_eq!(err(&raw(0x10, &user)), MqttError::InvalidUtf8);
        }
        // Binary fields may hold anything.
        let pw = connect_body(
            "MQTT",
            4,
            0xC2,
            &cat(&[&s("c"), &s("u"), b"\x00\x02\x00\xff"]),
        );
        assert!(matches!(decode_all(&raw(0x10, &pw)), Packet::Connect(_)));
    }

    #[test]
    fn err_zero_packet_id() {
        let cases: Vec<Vec<u8>> = vec![
            raw(0x32, &cat(&[&s("a"), &[0, 0]])),
            raw(0x34, &cat(&[&s("a"), &[0, 0]])),
            raw(0x82, &cat(&[&[0, 0], &s("a"), &[0]])),
            raw(0xA2, &cat(&[&[0, 0], &s("a")])),
            vec![0x40, 2, 0, 0],
            vec![0x50, 2, 0, 0],
            vec![0x62, 2, 0, 0],
            vec![0x70, 2, 0, 0],
            vec![0x90, 3, 0, 0, 0],
            vec![0xB0, 2, 0, 0],
        ];
        for c in cases {
            assert_eq!(err(&c), MqttError::ZeroPacketId, "{c:02x?}");
        }
        // QoS 0 has no packet identifier: these bytes are payload.
        let Packet::Publish(p) = decode_all(&raw(0x30, &cat(&[&s("a"), &[0, 0]]))) else {
            panic!()
        };
        assert_eq!((p.pkid, &p.payload[..]), (0, &[0u8, 0][..]));
    }

    #[test]
    fn err_empty_subscribe() {
        assert_eq!(err(&[0x82, 0x02, 0x00, 0x01]), MqttError::EmptySubscribe);
        assert_eq!(err(&[0xA2, 0x02, 0x00, 0x01]), MqttError::EmptySubscribe);
    }

    #[test]
    fn err_unexpected_eof() {
        let cases: Vec<Vec<u8>> = vec![
            vec![0x40, 0x01, 0x00],               // PUBACK too short (from the header)
            vec![0x20, 0x00],                     // CONNACK empty
            vec![0x30, 0x01, 0x00],               // topic length cut
            raw(0x30, &[0x00, 0x05, b'a']),       // topic cut
            raw(0x32, &s("a")),                   // QoS 1 without packet id
            raw(0x82, &cat(&[&[0, 1], &s("a")])), // filter without QoS
            raw(0x82, &[0, 1, 0]),                // filter length cut
            raw(0x90, &[0]),                      // SUBACK id cut
            raw(0x10, &s("MQTT")),                // CONNECT without level
            raw(0x10, &connect_body("MQTT", 4, 0x02, &[])), // no client id
            raw(0x10, &connect_body("MQTT", 4, 0x06, &s("c"))), // will missing
            raw(0x10, &connect_body("MQTT", 4, 0x82, &s("c"))), // user name missing
            raw(
                0x10,
                &connect_body("MQTT", 4, 0xC2, &cat(&[&s("c"), &s("u")])),
            ), // password missing
        ];
        for c in cases {
            assert_eq!(err(&c), MqttError::UnexpectedEof, "{c:02x?}");
        }
    }

    #[test]
    fn err_trailing_bytes() {
        let cases: Vec<Vec<u8>> = vec![
            vec![0xC0, 0x01],                   // PINGREQ with a body (from the header)
            vec![0xE0, 0x01],                   // DISCONNECT with a body
            vec![0x40, 0x03, 0x00, 0x01, 0x00], // PUBACK too long
            vec![0x20, 0x03],                   // CONNACK too long
            raw(0x10, &connect_body("MQTT", 4, 0x02, &cat(&[&s("c"), b"x"]))),
        ];
        for c in cases {
            assert_eq!(err(&c), MqttError::TrailingBytes, "{c:02x?}");
        }
    }

    #[test]
    fn err_malformed() {
        assert_eq!(
            err(&raw(0x10, &connect_body("MQTX", 4, 0x02, &s("c")))),
            MqttError::Malformed("unknown protocol name")
        );
        assert_eq!(
            err(&[0x20, 0x02, 0x02, 0x00]),
            MqttError::Malformed("reserved connack flags set")
        );
        assert_eq!(
            err(&raw(0x82, &cat(&[&[0, 1], &s("a"), &[0x41]]))),
            MqttError::Malformed("reserved bits set in requested qos")
        );
        assert_eq!(
            err(&[0x90, 0x02, 0x00, 0x01]),
            MqttError::Malformed("suback without return codes")
        );
    }

    #[test]
    fn err_string_too_long() {
        let long = "a".repeat(MAX_STRING_LEN + 1);
        let mut dst = BytesMut::new();
        let p = Packet::Publish(Publish {
            topic: long.clone(),
            ..publish(QoS::AtMostOnce, 0, "", b"")
        });
        assert_eq!(
            p.encode(&mut dst),
            Err(MqttError::StringTooLong(MAX_STRING_LEN + 1))
        );
        let c = Connect {
            password: Some(Bytes::from(vec![0; MAX_STRING_LEN + 1])),
            username: Some("u".into()),
            ..sample_connect()
        };
        assert_eq!(
            Packet::Connect(c).encode(&mut dst),
            Err(MqttError::StringTooLong(MAX_STRING_LEN + 1))
        );
        let u = Packet::Unsubscribe {
            pkid: 1,
            filters: vec!["a".into(), long],
        };
        assert_eq!(
            u.encode(&mut dst),
            Err(MqttError::StringTooLong(MAX_STRING_LEN + 1))
        );
        assert!(dst.is_empty());
        // The longest string fits.
        let p = Packet::Publish(publish(
            QoS::AtMostOnce,
            0,
            &"b".repeat(MAX_STRING_LEN),
            b"x",
        ));
        assert_eq!(decode_all(&encode(&p)), p);
    }

    #[test]
    fn err_io() {
        let e = MqttError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(e, MqttError::Io(io::ErrorKind::ConnectionReset));
        assert_eq!(e.to_string(), "i/o error: connection reset");
    }

    #[test]
    fn empty_client_id_and_empty_payloads_are_accepted() {
        let body = connect_body("MQTT", 4, 0x06, &cat(&[&s(""), &s("w"), &s("")]));
        let Packet::Connect(c) = decode_all(&raw(0x10, &body)) else {
            panic!()
        };
        assert_eq!(c.client_id, "");
        assert_eq!(c.will.unwrap().payload.len(), 0);
    }

    // ---- property tests --------------------------------------------------------------------

    fn arb_qos() -> impl Strategy<Value = QoS> {
        prop_oneof![
            Just(QoS::AtMostOnce),
            Just(QoS::AtLeastOnce),
            Just(QoS::ExactlyOnce)
        ]
    }

    fn arb_topic() -> impl Strategy<Value = String> {
        "[a-c$/ é]{1,12}".prop_filter("valid topic", |t| valid_topic_name(t))
    }

    /// Valid filters by construction: literal and `+` levels, optionally ending in `#`.
    fn arb_filter() -> impl Strategy<Value = String> {
        let level = prop_oneof!["[a-c$ é]{0,3}", Just("+".to_owned())];
        (proptest::collection::vec(level, 0..4), any::<bool>()).prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            let f = levels.join("/");
            if f.is_empty() {
                "+".to_owned()
            } else {
                f
            }
        })
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn arb_pkid() -> impl Strategy<Value = u16> {
        1..=u16::MAX
    }

    fn arb_connect() -> impl Strategy<Value = Connect> {
        let will = (arb_topic(), arb_bytes(20), arb_qos(), any::<bool>()).prop_map(
            |(topic, payload, qos, retain)| Will {
                topic,
                payload,
                qos,
                retain,
            },
        );
        (
            prop_oneof![Just(Protocol::V31), Just(Protocol::V311)],
            any::<bool>(),
            any::<u16>(),
            "[a-z0-9]{0,23}",
            proptest::option::of(will),
            proptest::option::of("\\PC{0,8}"),
            proptest::option::of(arb_bytes(10)),
        )
            .prop_map(
                |(protocol, clean_session, keep_alive, client_id, will, username, mut password)| {
                    if protocol == Protocol::V311 && username.is_none() {
                        password = None;
                    }
                    Connect {
                        protocol,
                        clean_session,
                        keep_alive,
                        client_id,
                        will,
                        username,
                        password,
                    }
                },
            )
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        let publish = (
            arb_qos(),
            any::<bool>(),
            any::<bool>(),
            arb_topic(),
            arb_pkid(),
            arb_bytes(200),
        )
            .prop_map(|(qos, dup, retain, topic, pkid, payload)| {
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    pkid: if qos0 { 0 } else { pkid },
                    payload,
                })
            });
        let code = prop_oneof![
            arb_qos().prop_map(SubAckCode::Success),
            Just(SubAckCode::Failure)
        ];
        let return_code = (0u8..=5).prop_map(|c| ConnectReturnCode::try_from(c).unwrap());
        prop_oneof![
            arb_connect().prop_map(Packet::Connect),
            (any::<bool>(), return_code).prop_map(|(session_present, code)| Packet::ConnAck {
                session_present,
                code
            }),
            publish,
            arb_pkid().prop_map(Packet::PubAck),
            arb_pkid().prop_map(Packet::PubRec),
            arb_pkid().prop_map(Packet::PubRel),
            arb_pkid().prop_map(Packet::PubComp),
            (
                arb_pkid(),
                proptest::collection::vec((arb_filter(), arb_qos()), 1..4)
            )
                .prop_map(|(pkid, filters)| Packet::Subscribe { pkid, filters }),
            (arb_pkid(), proptest::collection::vec(code, 1..4))
                .prop_map(|(pkid, codes)| Packet::SubAck { pkid, codes }),
            (arb_pkid(), proptest::collection::vec(arb_filter(), 1..4))
                .prop_map(|(pkid, filters)| Packet::Unsubscribe { pkid, filters }),
            arb_pkid().prop_map(Packet::UnsubAck),
            Just(Packet::PingReq),
            Just(Packet::PingResp),
            Just(Packet::Disconnect),
        ]
    }

    /// Feeds `stream` in chunks cut at `cuts` and collects every packet.
    fn decode_chunked(stream: &[u8], cuts: &[usize]) -> Result<Vec<Packet>, MqttError> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut c = codec();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&stream[w[0]..w[1]]);
            while let Some(p) = c.decode(&mut buf)? {
                out.push(p);
            }
        }
        assert!(buf.is_empty());
        Ok(out)
    }

    proptest! {
        #[test]
        fn prop_round_trip(p in arb_packet()) {
            prop_assert_eq!(decode_all(&encode(&p)), p);
        }

        #[test]
        fn prop_any_chunking_gives_the_same_packets(
            packets in proptest::collection::vec(arb_packet(), 1..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let stream: Vec<u8> = packets.iter().flat_map(encode).collect();
            prop_assert_eq!(decode_chunked(&stream, &cuts)?, packets);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            fuzz_logic(&data);
        }

        #[test]
        fn prop_mutated_packets_never_panic(
            packets in proptest::collection::vec(arb_packet(), 1..4),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut stream: Vec<u8> = packets.iter().flat_map(encode).collect();
            for (i, b) in flips {
                let i = i.index(stream.len());
                stream[i] = b;
            }
            fuzz_logic(&stream);
        }
    }
}
