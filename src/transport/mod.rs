//! Transports: listeners and the per-connection tasks that turn bytes into WAMP messages.

pub mod rawsocket;
pub mod http;
pub mod listen;
pub mod wamp_conn;
pub mod web;
pub mod websocket;
