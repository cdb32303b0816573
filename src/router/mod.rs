//! The routing core: one task per realm owning plain maps (broker, dealer, sessions).
//!
//! Connection tasks send `RealmCmd`s (awaiting when the realm queue is full: that is the
//! backpressure on publishers) and receive deliveries through their bounded outbox, into which
//! the realm only ever `try_send`s. `RealmCore::handle` is synchronous and sans-IO.

pub mod authz;
pub mod index;
pub mod outbox;
pub mod realm;

/// A map keyed by ids the router chose (sessions, subscriptions, requests): foldhash, several
/// times cheaper than std's SipHash on the per-message lookups.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A map keyed by strings clients choose (topic levels, URIs, client ids): foldhash's quality
/// variant, seeded at random per map, so keys cannot be chosen to collide without the seed.
pub(crate) type StrMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;

pub use outbox::OutboxRx;
pub use realm::{
    send_cmd, CallRequest, InvokePolicy, MqttAck, MqttConnect, MqttConnected, MqttCounters,
    MqttOut, Outbox, Outgoing, PublishRequest, ReadAcl, RealmCmd, RealmCore, RealmGone,
    RealmHandle, RealmStats, SessionId, SessionInfo, SharedEvent,
};
