//! junction: a multi-protocol message router (WAMP realms and MQTT on one routing core).
//!
//! # Layout
//! - `config`: Crossbar version-2 `config.json` → validated `NodeConfig`.
//! - `wire`: the WAMP value tree and the four serializers (json, msgpack, cbor, ubjson).
//! - `wamp`: typed WAMP messages, URI rules, and the per-connection session state machine.
//! - `router`: one task per realm owning broker and dealer state (`RealmCore`), the topic
//!   index, and static authorization.
//! - `transport`: listeners and connection tasks (WebSocket via hyper + tungstenite).
//! - `node`: starts realms and listeners, runs the shutdown sequence.
//! - `cli`: the `junction` command line.

pub mod auth;
pub mod cli;
pub mod config;
pub mod mqtt;
pub mod node;
pub mod router;
pub mod tls;
pub mod transport;
pub mod wamp;
pub mod wire;
