//! WAMP protocol: messages, URIs, and the per-connection session state machine.

pub mod message;
pub mod session;
pub mod uri;

pub use message::{Message, Payload};
