//! Authentication and authorization sources.
//!
//! - `mosquitto`: mosquitto's `password_file` (as written by `mosquitto_passwd`) and
//!   `acl_file` formats, with mosquitto 2.0's semantics.

pub mod mosquitto;
