//! MQTT 3.1.1 (and 3.1): control packets, their codec, and topic syntax.
//!
//! - [`codec`]: the typed packets ([`Packet`], [`Connect`], [`Publish`], ...) and
//!   [`MqttCodec`], the sans-IO framer (`tokio_util::codec::{Decoder, Encoder}`). Decoding
//!   validates every rule of the spec that a receiver can check on one packet (fixed-header
//!   flags, QoS values, packet identifiers, UTF-8 strings, topic and filter syntax, CONNECT
//!   flags) and reports a distinct [`MqttError`] for each class of fault. Publish payloads are
//!   zero-copy slices of the read buffer, and [`write_publish_header`] lets a broker send one
//!   payload `Bytes` to many subscribers without copying it.
//! - [`topic`]: topic name and filter syntax and the reference matcher [`filter_matches`].
//!
//! Session state (CONNECT handling, keepalive, packet identifiers, QoS flows) and the broker
//! live elsewhere; this module only turns bytes into validated packets and back.

pub mod codec;
pub mod conn;
pub mod store;
pub mod topic;

pub use codec::{
    write_publish, write_publish_header, Connect, ConnectReturnCode, MqttCodec, MqttError, Packet,
    Protocol, Publish, QoS, SubAckCode, Will, MAX_REMAINING_LENGTH, MAX_STRING_LEN,
};
pub use topic::{filter_matches, valid_filter, valid_topic_name};
