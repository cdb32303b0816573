//! Transports: listeners and the per-connection tasks that turn bytes into WAMP messages.

pub mod http;
pub mod listen;
pub mod rawsocket;
pub mod read_ahead;
pub mod wamp_conn;
pub mod web;
pub mod websocket;
