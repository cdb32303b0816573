//! Transports: listeners and the per-connection tasks that turn bytes into WAMP messages.

pub mod wamp_conn;
pub mod websocket;
