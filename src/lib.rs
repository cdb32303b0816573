//! junction: a multi-protocol message router (WAMP realms and MQTT on one routing core).

pub mod config;
pub mod wire;
