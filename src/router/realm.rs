//! One realm: its session table, broker (subscriptions, publish fan-out) and dealer
//! (registrations, pending calls), owned by a single task.
//!
//! Invariants: the realm never awaits on a connection (deliveries are `try_send`); an EVENT is
//! built once per subscription and shared by all its subscribers (`Arc<SharedEvent>`, encoded at
//! most once per serializer); a control reply that cannot be queued means the session's outbox is
//! hopelessly full, so the session is removed (its outbox sender dropped, which ends the
//! connection).

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace};

mod bridge;
mod mqtt;

pub use mqtt::{MqttAck, MqttConnect, MqttConnected, MqttCounters, MqttOut, ReadAcl};

use super::authz::Authorizer;
use super::index::{Pattern, TopicIndex};
use crate::config::{MatchPolicy, RealmConfig};
use crate::wamp::message::{code, dict, MAX_ID};
use crate::wamp::{Message, Payload};
use crate::wire::{Dict, Serializer, Value};

/// A session ID (global scope, random in 1..=2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A random global-scope ID in 1..=2^53.
pub fn random_id() -> u64 {
    rand::thread_rng().gen_range(1..=MAX_ID)
}

/// What the realm puts into a connection's outbox.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A message for this session only; the connection encodes it. Boxed: `Message` is large
    /// and every outbox slot is as big as the largest variant.
    Msg(Box<Message>),
    /// An event shared by all subscribers of one subscription.
    Event(Arc<SharedEvent>),
    /// A packet for an MQTT connection.
    Mqtt(MqttOut),
}

// Every queued item takes this much; `MqttOut::Publish` (topic, payload, flags) is the largest
// variant. Keep large data behind a pointer.
const _: () = assert!(std::mem::size_of::<Outgoing>() <= 56);

/// The sending side of a connection's bounded outbox (`super::outbox`). Only the realm holds it,
/// so dropping the session entry closes the outbox and ends the connection.
pub use super::outbox::Outbox;

/// One EVENT, shared by every subscriber of a subscription; encoded at most once per serializer.
#[derive(Debug)]
pub struct SharedEvent {
    /// Subscription ID.
    pub subscription: u64,
    /// Publication ID.
    pub publication: u64,
    /// EVENT details.
    pub details: Dict,
    /// Publication payload, shared across subscriptions.
    pub payload: Arc<Payload>,
    cache: [OnceLock<Bytes>; Serializer::COUNT],
    /// The JSON encoding as checked UTF-8, for WebSocket text frames (checked once, not per
    /// subscriber).
    json_text: OnceLock<Utf8Bytes>,
}

impl SharedEvent {
    /// Builds an event.
    pub fn new(subscription: u64, publication: u64, details: Dict, payload: Arc<Payload>) -> Self {
        Self {
            subscription,
            publication,
            details,
            payload,
            cache: Default::default(),
            json_text: OnceLock::new(),
        }
    }

    /// The EVENT message (allocates; use `encoded` on the hot path).
    pub fn to_message(&self) -> Message {
        Message::Event {
            subscription: self.subscription,
            publication: self.publication,
            details: self.details.clone(),
            payload: (*self.payload).clone(),
        }
    }

    /// The EVENT encoded with `ser`, computed once and then shared.
    pub fn encoded(&self, ser: Serializer) -> &Bytes {
        self.cache[ser.index()].get_or_init(|| {
            Message::encode_event(
                ser,
                self.subscription,
                self.publication,
                &self.details,
                &self.payload,
            )
        })
    }

    /// The JSON encoding as a WebSocket text payload, computed once and then shared.
    pub fn json_text(&self) -> &Utf8Bytes {
        self.json_text.get_or_init(|| {
            // The JSON encoder writes UTF-8 only; an empty text is never sent in practice.
            Utf8Bytes::try_from(self.encoded(Serializer::Json).clone()).unwrap_or_default()
        })
    }
}

/// Who a session is, as established by the handshake.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// `authid`.
    pub authid: String,
    /// `authrole`.
    pub authrole: String,
    /// Whether the callee announced `call_canceling` (gets INTERRUPT).
    pub callee_cancels: bool,
}

/// Shared-registration invocation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokePolicy {
    /// One callee only.
    Single,
    /// Rotate through callees.
    RoundRobin,
    /// A random callee.
    Random,
    /// The first registered callee.
    First,
    /// The last registered callee.
    Last,
}

impl InvokePolicy {
    /// Parses the `invoke` option.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "single" => Self::Single,
            "roundrobin" => Self::RoundRobin,
            "random" => Self::Random,
            "first" => Self::First,
            "last" => Self::Last,
            _ => return None,
        })
    }
}

/// A validated, authorized PUBLISH.
#[derive(Debug)]
pub struct PublishRequest {
    /// PUBLISH.Request.
    pub request: u64,
    /// Topic URI.
    pub topic: String,
    /// Payload.
    pub payload: Payload,
    /// `acknowledge`.
    pub acknowledge: bool,
    /// `exclude_me` (default true).
    pub exclude_me: bool,
    /// `exclude` session IDs.
    pub exclude: Vec<u64>,
    /// `eligible` session IDs (`None` = everyone).
    pub eligible: Option<Vec<u64>>,
    /// Disclose the publisher's session ID (and authid/authrole) to subscribers.
    pub disclose: bool,
    /// `retain`: keep as the topic's retained event (shared with MQTT retained messages).
    pub retain: bool,
    /// Payload passthru keys (`ppt_*`, `enc_*`) for the EVENT details; empty otherwise.
    pub ppt: Dict,
}

/// A validated, authorized CALL.
#[derive(Debug)]
pub struct CallRequest {
    /// CALL.Request.
    pub request: u64,
    /// Procedure URI.
    pub procedure: String,
    /// Payload.
    pub payload: Payload,
    /// Disclose the caller to the callee.
    pub disclose: bool,
}

/// A command from a connection to its realm.
#[derive(Debug)]
pub enum RealmCmd {
    /// Call a dynamic authenticator (`procedure(args...)`) for a connection that is
    /// authenticating; the first result value, or the error URI, comes back on `reply`.
    AuthCall {
        /// Authenticator procedure.
        procedure: String,
        /// Arguments.
        args: Vec<Value>,
        /// Reply.
        reply: oneshot::Sender<Result<Value, String>>,
        /// How long the callee may take.
        timeout: std::time::Duration,
    },
    /// An MQTT client connects.
    MqttConnect(MqttConnect),
    /// An MQTT PUBLISH from a client.
    MqttPublish {
        /// Session.
        session: SessionId,
        /// Topic.
        topic: String,
        /// The topic's WAMP URI when it has one (`bridge::mqtt_to_uri`), worked out by the
        /// connection task so the realm does not.
        uri: Option<Arc<str>>,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: crate::mqtt::QoS,
        /// RETAIN.
        retain: bool,
        /// Packet id (QoS > 0).
        pkid: u16,
    },
    /// PUBACK/PUBREC/PUBCOMP/PUBREL from a client.
    MqttAck {
        /// Session.
        session: SessionId,
        /// Which.
        kind: MqttAck,
        /// Packet id.
        pkid: u16,
    },
    /// SUBSCRIBE.
    MqttSubscribe {
        /// Session.
        session: SessionId,
        /// Packet id.
        pkid: u16,
        /// Filters with requested QoS, `None` where the client's role may not subscribe.
        filters: Vec<(String, Option<crate::mqtt::QoS>)>,
    },
    /// UNSUBSCRIBE.
    MqttUnsubscribe {
        /// Session.
        session: SessionId,
        /// Packet id.
        pkid: u16,
        /// Filters.
        filters: Vec<String>,
    },
    /// The connection ended; `clean` when the client sent DISCONNECT.
    MqttDisconnect {
        /// Session.
        session: SessionId,
        /// DISCONNECT received.
        clean: bool,
    },
    /// A session joins; the realm answers with its ID.
    Join {
        /// Identity.
        info: SessionInfo,
        /// Its outbox.
        outbox: Outbox,
        /// Reply channel.
        reply: oneshot::Sender<SessionId>,
    },
    /// A session leaves (GOODBYE, close, or error).
    Leave(SessionId),
    /// PUBLISH.
    Publish(SessionId, PublishRequest),
    /// SUBSCRIBE.
    Subscribe {
        /// Session.
        session: SessionId,
        /// Request ID.
        request: u64,
        /// `get_retained`: send the retained events that match right after SUBSCRIBED.
        get_retained: bool,
        /// Topic or pattern.
        topic: String,
        /// Match policy.
        policy: MatchPolicy,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Session.
        session: SessionId,
        /// Request ID.
        request: u64,
        /// Subscription ID.
        subscription: u64,
    },
    /// REGISTER.
    Register {
        /// Session.
        session: SessionId,
        /// Request ID.
        request: u64,
        /// Procedure or pattern.
        procedure: String,
        /// Match policy.
        policy: MatchPolicy,
        /// Invocation policy.
        invoke: InvokePolicy,
    },
    /// UNREGISTER.
    Unregister {
        /// Session.
        session: SessionId,
        /// Request ID.
        request: u64,
        /// Registration ID.
        registration: u64,
    },
    /// CALL.
    Call(SessionId, CallRequest),
    /// CANCEL (any mode: the caller gets ERROR `wamp.error.canceled` at once).
    Cancel {
        /// Caller.
        session: SessionId,
        /// CALL.Request.
        request: u64,
        /// `mode` (`skip`, `kill`, `killnowait`).
        mode: String,
    },
    /// YIELD from a callee.
    Yield {
        /// Callee.
        session: SessionId,
        /// INVOCATION.Request.
        request: u64,
        /// Result payload.
        payload: Payload,
    },
    /// ERROR for an INVOCATION, from a callee.
    InvocationError {
        /// Callee.
        session: SessionId,
        /// INVOCATION.Request.
        request: u64,
        /// Error URI.
        error: String,
        /// Details.
        details: Dict,
        /// Error payload.
        payload: Payload,
    },
}

/// Which sessions a publication may reach (`exclude_me`, `exclude`, `eligible`).
#[derive(Debug, Default)]
pub(crate) struct Filter<'a> {
    /// The publisher, when `exclude_me`.
    pub(crate) exclude_me: Option<SessionId>,
    /// `exclude` session IDs.
    pub(crate) exclude: &'a [u64],
    /// `eligible` session IDs.
    pub(crate) eligible: Option<&'a [u64]>,
}

impl Filter<'_> {
    /// Whether `s` may receive the publication.
    pub(crate) fn admits(&self, s: SessionId) -> bool {
        self.exclude_me != Some(s)
            && !self.exclude.contains(&s.0)
            && self.eligible.is_none_or(|e| e.contains(&s.0))
    }
}

/// A WAMP publication as the bridge and the retained store see it.
#[derive(Debug, Clone)]
pub(crate) struct WampPublication {
    /// Topic URI.
    pub(crate) topic: String,
    /// Payload (args/kwargs, or passthru bytes).
    pub(crate) payload: Arc<Payload>,
    /// Passthru keys for EVENT details.
    pub(crate) ppt: Dict,
}

/// Counters a realm keeps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RealmStats {
    /// Publications routed.
    pub published: u64,
    /// Events queued to subscribers.
    pub events_sent: u64,
    /// Events dropped because a subscriber's outbox was full.
    pub events_dropped: u64,
    /// Sessions removed because their outbox overflowed on a control message.
    pub sessions_overflowed: u64,
}

#[derive(Debug)]
struct SessionEntry {
    info: SessionInfo,
    outbox: Outbox,
    subscriptions: Vec<u64>,
    registrations: Vec<u64>,
}

#[derive(Debug)]
struct Subscription {
    policy: MatchPolicy,
    pattern: Pattern,
    /// WAMP subscribers.
    subscribers: Vec<(SessionId, Outbox)>,
    /// MQTT subscribers: client key and granted QoS (clients may be offline).
    mqtt: Vec<(u64, crate::mqtt::QoS)>,
}

#[derive(Debug)]
struct Registration {
    uri: String,
    policy: MatchPolicy,
    invoke: InvokePolicy,
    callees: Vec<(SessionId, Outbox)>,
    next: usize,
}

#[derive(Debug)]
struct PendingCall {
    caller: SessionId,
    caller_request: u64,
    callee: SessionId,
}

/// The sans-IO state of one realm.
#[derive(Debug)]
pub struct RealmCore {
    name: String,
    sessions: super::IdMap<SessionId, SessionEntry>,
    subs: super::IdMap<u64, Subscription>,
    sub_index: TopicIndex<u64>,
    regs: super::IdMap<u64, Registration>,
    reg_exact: super::StrMap<String, u64>,
    /// Longest first.
    reg_prefix: Vec<(String, u64)>,
    /// (components, empty count, id), most specific first.
    reg_wildcard: Vec<(Vec<String>, usize, u64)>,
    reg_by_key: super::StrMap<(String, MatchPolicy), u64>,
    pending: super::IdMap<u64, PendingCall>,
    pending_by_caller: super::IdMap<(SessionId, u64), u64>,
    next_router_id: u64,
    stats: RealmStats,
    /// Sessions whose outbox overflowed during the current command; removed afterwards.
    overflowed: Vec<SessionId>,
    scratch: Vec<u64>,
    /// The MQTT side of the realm.
    mqtt: mqtt::MqttState,
    /// The realm's URI rule (for MQTT topics crossing to WAMP).
    uri_check: crate::config::UriCheck,
    /// What one session may hold (`options.max_*_per_session`).
    limits: crate::config::SessionLimits,
    /// `options.mqtt.max_retained`.
    max_retained: usize,
    /// Retained messages not kept because `max_retained` was reached.
    retained_refused: u64,
    /// MQTT ↔ WAMP crossing counters.
    bridge_stats: BridgeStats,
    /// Internal calls to dynamic payload codecs, by invocation ID.
    codec_calls: super::IdMap<u64, bridge::CodecCall>,
}

/// Counters of the MQTT ↔ WAMP bridge (published under `$SYS/broker/bridge/`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BridgeStats {
    /// MQTT publications delivered to WAMP subscribers.
    pub to_wamp: u64,
    /// Crossings dropped: no mapping key, or a payload the mapping cannot convert.
    pub dropped: u64,
    /// MQTT publications whose topic is not a WAMP URI (they stay on the MQTT side).
    pub unmappable: u64,
}

/// ERROR for a SUBSCRIBE or REGISTER beyond the session's limit (junction's own URI: WAMP has
/// none for this).
const LIMIT_EXCEEDED: &str = "junction.error.limit_exceeded";

/// The index pattern of a WAMP subscription.
fn pattern_of(topic: &str, policy: MatchPolicy) -> Pattern {
    match policy {
        MatchPolicy::Exact => Pattern::Exact(topic.to_owned()),
        MatchPolicy::Prefix => Pattern::Prefix(topic.to_owned()),
        MatchPolicy::Wildcard => Pattern::wamp_wildcard(topic),
    }
}

fn error_msg(request_type: u64, request: u64, error: &str) -> Message {
    Message::Error {
        request_type,
        request,
        details: Dict::new(),
        error: error.to_owned(),
        payload: Payload::empty(),
    }
}

fn error_with_text(request_type: u64, request: u64, error: &str, text: &str) -> Message {
    Message::Error {
        request_type,
        request,
        details: Dict::new(),
        error: error.to_owned(),
        payload: Payload {
            args: Some(vec![Value::from(text)]),
            kwargs: None,
            raw: None,
        },
    }
}

impl RealmCore {
    /// An empty realm.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sessions: Default::default(),
            subs: Default::default(),
            sub_index: TopicIndex::default(),
            regs: Default::default(),
            reg_exact: Default::default(),
            reg_prefix: Vec::new(),
            reg_wildcard: Vec::new(),
            reg_by_key: Default::default(),
            pending: Default::default(),
            pending_by_caller: Default::default(),
            next_router_id: 0,
            stats: RealmStats::default(),
            overflowed: Vec::new(),
            scratch: Vec::new(),
            mqtt: mqtt::MqttState::new(None),
            uri_check: crate::config::UriCheck::default(),
            limits: Default::default(),
            max_retained: crate::config::RealmMqtt::default().max_retained,
            retained_refused: 0,
            bridge_stats: BridgeStats::default(),
            codec_calls: Default::default(),
        }
    }

    /// The realm's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters.
    pub fn stats(&self) -> RealmStats {
        self.stats
    }

    /// Number of joined sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn router_id(&mut self) -> u64 {
        self.next_router_id = if self.next_router_id >= MAX_ID {
            1
        } else {
            self.next_router_id + 1
        };
        self.next_router_id
    }

    /// Queues a control message; an overflow marks the session for removal.
    fn send(&mut self, to: SessionId, msg: Message) {
        let Some(s) = self.sessions.get(&to) else {
            return;
        };
        if s.outbox.try_send(Outgoing::Msg(Box::new(msg))).is_err() {
            self.overflowed.push(to);
        }
    }

    /// Handles one command. Never blocks.
    pub fn handle(&mut self, cmd: RealmCmd) {
        match cmd {
            RealmCmd::AuthCall {
                procedure,
                args,
                reply,
                timeout,
            } => self.auth_call(&procedure, args, reply, timeout),
            RealmCmd::MqttConnect(c) => self.mqtt_connect(c),
            RealmCmd::MqttPublish {
                session,
                topic,
                uri,
                payload,
                qos,
                retain,
                pkid,
            } => self.mqtt_publish_in(
                session,
                (&topic, uri.as_deref()),
                payload,
                qos,
                retain,
                pkid,
            ),
            RealmCmd::MqttAck {
                session,
                kind,
                pkid,
            } => self.mqtt_ack(session, kind, pkid),
            RealmCmd::MqttSubscribe {
                session,
                pkid,
                filters,
            } => self.mqtt_subscribe(session, pkid, filters),
            RealmCmd::MqttUnsubscribe {
                session,
                pkid,
                filters,
            } => self.mqtt_unsubscribe(session, pkid, filters),
            RealmCmd::MqttDisconnect { session, clean } => self.mqtt_disconnect(session, clean),
            RealmCmd::Join {
                info,
                outbox,
                reply,
            } => {
                let id = loop {
                    let id = SessionId(random_id());
                    if !self.sessions.contains_key(&id) {
                        break id;
                    }
                };
                debug!(realm = %self.name, session = %id, authid = %info.authid, authrole = %info.authrole, "session joined");
                self.sessions.insert(
                    id,
                    SessionEntry {
                        info,
                        outbox,
                        subscriptions: Vec::new(),
                        registrations: Vec::new(),
                    },
                );
                if reply.send(id).is_err() {
                    // The connection went away while joining.
                    self.remove_session(id);
                }
            }
            RealmCmd::Leave(id) => self.remove_session(id),
            RealmCmd::Publish(id, req) => self.publish(id, req),
            RealmCmd::Subscribe {
                session,
                request,
                get_retained,
                topic,
                policy,
            } => self.subscribe(session, request, topic, policy, get_retained),
            RealmCmd::Unsubscribe {
                session,
                request,
                subscription,
            } => self.unsubscribe(session, request, subscription),
            RealmCmd::Register {
                session,
                request,
                procedure,
                policy,
                invoke,
            } => self.register(session, request, procedure, policy, invoke),
            RealmCmd::Unregister {
                session,
                request,
                registration,
            } => self.unregister(session, request, registration),
            RealmCmd::Call(id, req) => self.call(id, req),
            RealmCmd::Cancel {
                session,
                request,
                mode,
            } => self.cancel(session, request, &mode),
            RealmCmd::Yield {
                session,
                request,
                payload,
            } => {
                if let Some(call) = self.take_codec_call(session, request) {
                    self.codec_result(call, Ok(payload));
                } else if let Some(p) = self.take_pending(session, request) {
                    self.send(
                        p.caller,
                        Message::Result {
                            request: p.caller_request,
                            details: Dict::new(),
                            payload,
                        },
                    );
                }
            }
            RealmCmd::InvocationError {
                session,
                request,
                error,
                details,
                payload,
            } => {
                if let Some(call) = self.take_codec_call(session, request) {
                    self.codec_result(call, Err(error));
                } else if let Some(p) = self.take_pending(session, request) {
                    self.send(
                        p.caller,
                        Message::Error {
                            request_type: code::CALL,
                            request: p.caller_request,
                            details,
                            error,
                            payload,
                        },
                    );
                }
            }
        }
        while let Some(id) = self.overflowed.pop() {
            if self.sessions.contains_key(&id) {
                debug!(realm = %self.name, session = %id, "outbox full on a control message; dropping session");
                self.stats.sessions_overflowed += 1;
                self.remove_session(id);
            }
        }
    }

    /// Closes every session (used at shutdown after connections said GOODBYE).
    pub fn close_all(&mut self) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove_session(id);
        }
    }

    fn remove_session(&mut self, id: SessionId) {
        let Some(entry) = self.sessions.remove(&id) else {
            return;
        };
        for sub_id in entry.subscriptions {
            self.detach_subscriber(sub_id, id);
        }
        for reg_id in entry.registrations {
            self.detach_callee(reg_id, id);
        }
        // Calls this session made: forget them (and interrupt callees that support it).
        let made: Vec<(u64, u64)> = self
            .pending_by_caller
            .iter()
            .filter(|((caller, _), _)| *caller == id)
            .map(|((_, req), inv)| (*req, *inv))
            .collect();
        for (req, inv) in made {
            self.pending_by_caller.remove(&(id, req));
            if let Some(p) = self.pending.remove(&inv) {
                self.interrupt(p.callee, inv, "killnowait");
            }
        }
        // Calls this session was serving: fail them.
        let served: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.callee == id)
            .map(|(inv, _)| *inv)
            .collect();
        for inv in served {
            if let Some(p) = self.pending.remove(&inv) {
                self.pending_by_caller.remove(&(p.caller, p.caller_request));
                self.send(
                    p.caller,
                    error_with_text(
                        code::CALL,
                        p.caller_request,
                        "wamp.error.canceled",
                        "callee left the realm before answering",
                    ),
                );
            }
        }
        debug!(realm = %self.name, session = %id, "session left");
    }

    fn interrupt(&mut self, callee: SessionId, invocation: u64, mode: &str) {
        if self
            .sessions
            .get(&callee)
            .is_some_and(|s| s.info.callee_cancels)
        {
            self.send(
                callee,
                Message::Interrupt {
                    request: invocation,
                    options: dict([("mode", mode.into())]),
                },
            );
        }
    }

    // ---- broker ----

    /// The subscription of a pattern, created (empty) if there is none yet. WAMP and MQTT
    /// subscriptions with the same pattern share it.
    fn subscription_for(&mut self, pattern: Pattern, policy: MatchPolicy) -> u64 {
        if let Some(id) = self.sub_index.get(&pattern) {
            return id;
        }
        let id = self.router_id();
        self.sub_index.insert(&pattern, id);
        let sub = Subscription {
            policy,
            pattern,
            subscribers: Vec::new(),
            mqtt: Vec::new(),
        };
        self.subs.insert(id, sub);
        id
    }

    /// Whether `session` already holds `max` of what `count` counts.
    fn at_limit(
        &self,
        session: SessionId,
        count: impl Fn(&SessionEntry) -> usize,
        max: usize,
    ) -> bool {
        self.sessions.get(&session).is_some_and(|e| count(e) >= max)
    }

    fn subscribe(
        &mut self,
        session: SessionId,
        request: u64,
        topic: String,
        policy: MatchPolicy,
        get_retained: bool,
    ) {
        let Some(outbox) = self.sessions.get(&session).map(|s| s.outbox.clone()) else {
            return;
        };
        if self.at_limit(
            session,
            |e| e.subscriptions.len(),
            self.limits.max_subscriptions,
        ) {
            let already = self
                .sub_index
                .get(&pattern_of(&topic, policy))
                .is_some_and(|id| {
                    self.subs
                        .get(&id)
                        .is_some_and(|s| s.subscribers.iter().any(|(x, _)| *x == session))
                });
            if !already {
                let text = format!(
                    "at most {} subscriptions per session (options.max_subscriptions_per_session)",
                    self.limits.max_subscriptions
                );
                let msg = error_with_text(code::SUBSCRIBE, request, LIMIT_EXCEEDED, &text);
                self.send(session, msg);
                return;
            }
        }
        let pattern = pattern_of(&topic, policy);
        let sub_id = self.subscription_for(pattern.clone(), policy);
        let sub = self.subs.get_mut(&sub_id).expect("index and table agree");
        if !sub.subscribers.iter().any(|(s, _)| *s == session) {
            sub.subscribers.push((session, outbox));
            if let Some(e) = self.sessions.get_mut(&session) {
                e.subscriptions.push(sub_id);
            }
        }
        self.send(
            session,
            Message::Subscribed {
                request,
                subscription: sub_id,
            },
        );
        if get_retained {
            self.send_retained_to_wamp(session, sub_id, &pattern, policy);
        }
    }

    fn unsubscribe(&mut self, session: SessionId, request: u64, sub_id: u64) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(pos) = entry.subscriptions.iter().position(|s| *s == sub_id) else {
            self.send(
                session,
                error_msg(
                    code::UNSUBSCRIBE,
                    request,
                    "wamp.error.no_such_subscription",
                ),
            );
            return;
        };
        entry.subscriptions.swap_remove(pos);
        self.detach_subscriber(sub_id, session);
        self.send(session, Message::Unsubscribed { request });
    }

    fn detach_subscriber(&mut self, sub_id: u64, session: SessionId) {
        let Some(sub) = self.subs.get_mut(&sub_id) else {
            return;
        };
        sub.subscribers.retain(|(s, _)| *s != session);
        if sub.subscribers.is_empty() && sub.mqtt.is_empty() {
            let sub = self.subs.remove(&sub_id).expect("present");
            self.sub_index.remove(&sub.pattern);
        }
    }

    fn publish(&mut self, publisher: SessionId, req: PublishRequest) {
        let Some(pubinfo) = self.sessions.get(&publisher).map(|s| s.info.clone()) else {
            return;
        };
        let publication = random_id();
        self.stats.published += 1;
        let mut details = req.ppt.clone();
        if req.disclose {
            details.insert("publisher".into(), Value::from(publisher.0));
            details.insert(
                "publisher_authid".into(),
                Value::from(pubinfo.authid.as_str()),
            );
            details.insert(
                "publisher_authrole".into(),
                Value::from(pubinfo.authrole.as_str()),
            );
        }
        let payload = Arc::new(req.payload);
        let filter = Filter {
            exclude_me: req.exclude_me.then_some(publisher),
            exclude: &req.exclude,
            eligible: req.eligible.as_deref(),
        };
        self.wamp_fan_out(&req.topic, publication, &details, &payload, &filter);
        let wamp_pub = WampPublication {
            topic: req.topic.clone(),
            payload,
            ppt: req.ppt,
        };
        self.bridge_wamp_to_mqtt(&wamp_pub, &filter);
        if req.retain {
            self.retain_wamp(wamp_pub);
        }
        trace!(realm = %self.name, topic = %req.topic, "published");
        if req.acknowledge {
            let ack = Message::Published {
                request: req.request,
                publication,
            };
            if self.mqtt_has_pending_writes() {
                // The publication reached persistent MQTT sessions: acknowledge once stored.
                self.mqtt_defer_wamp_ack(publisher, ack);
            } else {
                self.send(publisher, ack);
            }
        }
    }

    /// Delivers one publication to every WAMP subscription matching `topic`: one shared EVENT
    /// per subscription (`details` plus the concrete topic for pattern subscriptions).
    fn wamp_fan_out(
        &mut self,
        topic: &str,
        publication: u64,
        details: &Dict,
        payload: &Arc<Payload>,
        filter: &Filter<'_>,
    ) {
        let mut matched = std::mem::take(&mut self.scratch);
        matched.clear();
        self.sub_index.matches(topic, |id| matched.push(id));
        for &sub_id in &matched {
            let Some(sub) = self.subs.get(&sub_id) else {
                continue;
            };
            if sub.subscribers.is_empty() {
                continue;
            }
            let mut details = details.clone();
            if sub.policy != MatchPolicy::Exact {
                details.insert("topic".into(), Value::from(topic));
            }
            let ev = Arc::new(SharedEvent::new(
                sub_id,
                publication,
                details,
                payload.clone(),
            ));
            for (sid, outbox) in &sub.subscribers {
                if !filter.admits(*sid) {
                    continue;
                }
                match outbox.try_send(Outgoing::Event(ev.clone())) {
                    Ok(()) => self.stats.events_sent += 1,
                    Err(_) => self.stats.events_dropped += 1,
                }
            }
        }
        self.scratch = matched;
    }

    // ---- dealer ----

    fn register(
        &mut self,
        session: SessionId,
        request: u64,
        procedure: String,
        policy: MatchPolicy,
        invoke: InvokePolicy,
    ) {
        let Some(outbox) = self.sessions.get(&session).map(|s| s.outbox.clone()) else {
            return;
        };
        if self.at_limit(
            session,
            |e| e.registrations.len(),
            self.limits.max_registrations,
        ) {
            let text = format!(
                "at most {} registrations per session (options.max_registrations_per_session)",
                self.limits.max_registrations
            );
            let msg = error_with_text(code::REGISTER, request, LIMIT_EXCEEDED, &text);
            self.send(session, msg);
            return;
        }
        let key = (procedure.clone(), policy);
        let reg_id = if let Some(&id) = self.reg_by_key.get(&key) {
            let reg = self.regs.get_mut(&id).expect("key and table agree");
            if reg.invoke == InvokePolicy::Single || invoke == InvokePolicy::Single {
                self.send(
                    session,
                    error_msg(
                        code::REGISTER,
                        request,
                        "wamp.error.procedure_already_exists",
                    ),
                );
                return;
            }
            if reg.invoke != invoke {
                self.send(
                    session,
                    error_msg(
                        code::REGISTER,
                        request,
                        "wamp.error.procedure_exists_with_different_invocation_policy",
                    ),
                );
                return;
            }
            if reg.callees.iter().any(|(s, _)| *s == session) {
                self.send(
                    session,
                    error_msg(
                        code::REGISTER,
                        request,
                        "wamp.error.procedure_already_exists",
                    ),
                );
                return;
            }
            reg.callees.push((session, outbox));
            id
        } else {
            let id = self.router_id();
            match policy {
                MatchPolicy::Exact => {
                    self.reg_exact.insert(procedure.clone(), id);
                }
                MatchPolicy::Prefix => {
                    self.reg_prefix.push((procedure.clone(), id));
                    self.reg_prefix
                        .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
                }
                MatchPolicy::Wildcard => {
                    let comps: Vec<String> = procedure.split('.').map(str::to_owned).collect();
                    let empties = comps.iter().filter(|c| c.is_empty()).count();
                    self.reg_wildcard.push((comps, empties, id));
                    self.reg_wildcard.sort_by_key(|(_, e, _)| *e);
                }
            }
            self.reg_by_key.insert(key, id);
            self.regs.insert(
                id,
                Registration {
                    uri: procedure,
                    policy,
                    invoke,
                    callees: vec![(session, outbox)],
                    next: 0,
                },
            );
            id
        };
        if let Some(e) = self.sessions.get_mut(&session) {
            e.registrations.push(reg_id);
        }
        self.send(
            session,
            Message::Registered {
                request,
                registration: reg_id,
            },
        );
    }

    fn unregister(&mut self, session: SessionId, request: u64, reg_id: u64) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(pos) = entry.registrations.iter().position(|r| *r == reg_id) else {
            self.send(
                session,
                error_msg(code::UNREGISTER, request, "wamp.error.no_such_registration"),
            );
            return;
        };
        entry.registrations.swap_remove(pos);
        self.detach_callee(reg_id, session);
        self.send(session, Message::Unregistered { request });
    }

    fn detach_callee(&mut self, reg_id: u64, session: SessionId) {
        let Some(reg) = self.regs.get_mut(&reg_id) else {
            return;
        };
        reg.callees.retain(|(s, _)| *s != session);
        if !reg.callees.is_empty() {
            return;
        }
        let reg = self.regs.remove(&reg_id).expect("present");
        self.reg_by_key.remove(&(reg.uri.clone(), reg.policy));
        match reg.policy {
            MatchPolicy::Exact => {
                self.reg_exact.remove(&reg.uri);
            }
            MatchPolicy::Prefix => self.reg_prefix.retain(|(_, id)| *id != reg_id),
            MatchPolicy::Wildcard => self.reg_wildcard.retain(|(_, _, id)| *id != reg_id),
        }
    }

    /// The registration serving `procedure`: exact, then longest prefix, then wildcard.
    fn lookup_registration(&self, procedure: &str) -> Option<u64> {
        if let Some(id) = self.reg_exact.get(procedure) {
            return Some(*id);
        }
        if let Some((_, id)) = self
            .reg_prefix
            .iter()
            .find(|(p, _)| procedure.starts_with(p.as_str()))
        {
            return Some(*id);
        }
        let n = procedure.split('.').count();
        self.reg_wildcard
            .iter()
            .find(|(comps, _, _)| {
                comps.len() == n
                    && comps
                        .iter()
                        .zip(procedure.split('.'))
                        .all(|(c, u)| c.is_empty() || c == u)
            })
            .map(|(_, _, id)| *id)
    }

    fn call(&mut self, caller: SessionId, req: CallRequest) {
        let Some(callinfo) = self.sessions.get(&caller).map(|s| s.info.clone()) else {
            return;
        };
        if self.pending_by_caller.contains_key(&(caller, req.request)) {
            // A request ID reused while the first call is pending: answer the new one only.
            self.send(
                caller,
                error_with_text(
                    code::CALL,
                    req.request,
                    "wamp.error.canceled",
                    "duplicate request id",
                ),
            );
            return;
        }
        let Some(reg_id) = self.lookup_registration(&req.procedure) else {
            self.send(
                caller,
                error_msg(code::CALL, req.request, "wamp.error.no_such_procedure"),
            );
            return;
        };
        let invocation = self.router_id();
        let (callee, outbox) = self.pick_callee(reg_id);
        let reg = self
            .regs
            .get(&reg_id)
            .expect("lookup returns live registrations");
        let mut details = Dict::new();
        if reg.policy != MatchPolicy::Exact {
            details.insert("procedure".into(), Value::from(req.procedure.as_str()));
        }
        if req.disclose {
            details.insert("caller".into(), Value::from(caller.0));
            details.insert(
                "caller_authid".into(),
                Value::from(callinfo.authid.as_str()),
            );
            details.insert(
                "caller_authrole".into(),
                Value::from(callinfo.authrole.as_str()),
            );
        }
        let msg = Message::Invocation {
            request: invocation,
            registration: reg_id,
            details,
            payload: req.payload,
        };
        if outbox.try_send(Outgoing::Msg(Box::new(msg))).is_err() {
            self.send(
                caller,
                error_with_text(
                    code::CALL,
                    req.request,
                    "wamp.error.unavailable",
                    "callee is overloaded (outbox full)",
                ),
            );
            return;
        }
        self.pending.insert(
            invocation,
            PendingCall {
                caller,
                caller_request: req.request,
                callee,
            },
        );
        self.pending_by_caller
            .insert((caller, req.request), invocation);
    }

    /// The callee that serves the next call of a registration, per its invocation policy.
    fn pick_callee(&mut self, reg_id: u64) -> (SessionId, Outbox) {
        let reg = self
            .regs
            .get_mut(&reg_id)
            .expect("lookup returns live registrations");
        let n = reg.callees.len();
        let pick = match reg.invoke {
            InvokePolicy::Single | InvokePolicy::First => 0,
            InvokePolicy::Last => n - 1,
            InvokePolicy::Random => rand::thread_rng().gen_range(0..n),
            InvokePolicy::RoundRobin => {
                let i = reg.next % n;
                reg.next = (i + 1) % n;
                i
            }
        };
        reg.callees[pick].clone()
    }

    /// Calls a procedure for the router itself (dynamic payload codecs): an INVOCATION whose
    /// answer comes back to `codec_result`. `None` when nobody serves the procedure or the
    /// callee's outbox is full.
    pub(super) fn invoke_internal(
        &mut self,
        procedure: &str,
        args: Vec<Value>,
    ) -> Option<(u64, SessionId)> {
        let reg_id = self.lookup_registration(procedure)?;
        let invocation = self.router_id();
        let (callee, outbox) = self.pick_callee(reg_id);
        let reg = self.regs.get(&reg_id).expect("live");
        let mut details = Dict::new();
        if reg.policy != MatchPolicy::Exact {
            details.insert("procedure".into(), Value::from(procedure));
        }
        let msg = Message::Invocation {
            request: invocation,
            registration: reg_id,
            details,
            payload: Payload {
                args: Some(args),
                kwargs: None,
                raw: None,
            },
        };
        outbox.try_send(Outgoing::Msg(Box::new(msg))).ok()?;
        Some((invocation, callee))
    }

    fn cancel(&mut self, caller: SessionId, request: u64, mode: &str) {
        let Some(inv) = self.pending_by_caller.remove(&(caller, request)) else {
            return;
        };
        let Some(p) = self.pending.remove(&inv) else {
            return;
        };
        if mode != "skip" {
            self.interrupt(p.callee, inv, mode);
        }
        self.send(
            caller,
            error_with_text(
                code::CALL,
                request,
                "wamp.error.canceled",
                "canceled by caller",
            ),
        );
    }

    /// The router's own call (dynamic codec or authenticator) that `callee` answers, if any.
    fn take_codec_call(&mut self, callee: SessionId, invocation: u64) -> Option<bridge::CodecCall> {
        if self.codec_calls.get(&invocation)?.callee != callee {
            return None;
        }
        self.codec_calls.remove(&invocation)
    }

    fn take_pending(&mut self, callee: SessionId, invocation: u64) -> Option<PendingCall> {
        match self.pending.get(&invocation) {
            Some(p) if p.callee == callee => {}
            _ => return None,
        }
        let p = self.pending.remove(&invocation)?;
        self.pending_by_caller.remove(&(p.caller, p.caller_request));
        Some(p)
    }
}

/// The front of a realm task: its name, compiled permissions and command queue.
#[derive(Debug, Clone)]
pub struct RealmHandle {
    /// Realm name.
    pub name: Arc<str>,
    /// Realm config (URI check rule, roles).
    pub config: Arc<RealmConfig>,
    /// Compiled permissions.
    pub authz: Arc<Authorizer>,
    /// Command queue (bounded).
    pub tx: mpsc::Sender<RealmCmd>,
    /// Counters MQTT connections update.
    pub mqtt_counters: Arc<MqttCounters>,
}

/// The realm task is gone (router shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the realm has stopped")]
pub struct RealmGone;

/// What `send_cmd` returns: ready at once, or the boxed wait for room in the realm queue.
pub type SendCmd<'a> = futures_util::future::Either<
    std::future::Ready<Result<(), RealmGone>>,
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RealmGone>> + Send + 'a>>,
>;

/// Sends `cmd` to a realm: at once when its queue has room (the usual case), else waits for room
/// (the backpressure on publishers). The command is queued (or refused) when this is called; the
/// returned future is small (the waiting future, which holds the command, is boxed only when the
/// queue is full), so awaiting it does not make every connection's future larger.
pub fn send_cmd(tx: &mpsc::Sender<RealmCmd>, cmd: RealmCmd) -> SendCmd<'_> {
    use futures_util::future::Either;
    match tx.try_send(cmd) {
        Ok(()) => Either::Left(std::future::ready(Ok(()))),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            Either::Left(std::future::ready(Err(RealmGone)))
        }
        Err(mpsc::error::TrySendError::Full(cmd)) => Either::Right(Box::pin(async move {
            tx.send(cmd).await.map_err(|_| RealmGone)
        })),
    }
}

impl RealmHandle {
    /// Calls `procedure(args...)` through the realm's dealer on behalf of the router (dynamic
    /// authenticators and authorizers): the first result value, or why there is none.
    pub async fn internal_call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        timeout: std::time::Duration,
    ) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        let cmd = RealmCmd::AuthCall {
            procedure: procedure.to_owned(),
            args,
            reply: tx,
            timeout,
        };
        self.tx
            .send(cmd)
            .await
            .map_err(|_| "realm stopped".to_owned())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("realm stopped".into()),
            Err(_) => Err(format!("{procedure} did not answer within {timeout:?}")),
        }
    }

    /// Spawns the realm task on `tracker`; it runs until `stop` is cancelled and every handle is
    /// gone.
    pub fn spawn(
        config: RealmConfig,
        queue: usize,
        stop: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Result<Self, crate::mqtt::store::StoreError> {
        let (tx, rx) = mpsc::channel(queue);
        let mut core = RealmCore::new(config.name.clone());
        core.uri_check = config.uri_check;
        core.limits = config.limits;
        core.max_retained = config.mqtt.max_retained;
        if let (true, Some(path)) = (config.mqtt.persistence, &config.store_path) {
            core.mqtt = mqtt::MqttState::new(Some(crate::mqtt::store::Store::open(path)?));
            let defaults = crate::config::MqttSettings {
                realm: config.name.clone(),
                ..Default::default()
            };
            core.mqtt_restore(Arc::new(defaults));
        }
        let mqtt_counters = core.mqtt.counters.clone();
        tracker.spawn(run_realm(core, rx, stop, config.mqtt.sys_interval));
        Ok(Self {
            name: config.name.as_str().into(),
            authz: Arc::new(Authorizer::new(&config.roles)),
            config: Arc::new(config),
            tx,
            mqtt_counters,
        })
    }
}

/// The realm task body: handle commands until stopped.
pub async fn run_realm(
    mut core: RealmCore,
    mut rx: mpsc::Receiver<RealmCmd>,
    stop: CancellationToken,
    sys_interval: Option<std::time::Duration>,
) {
    let mut batch = Vec::with_capacity(64);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sys = sys_interval.map(|d| tokio::time::Instant::now() + d);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            // Before the queue, so that a realm under constant load still does its housekeeping.
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                let sys = next_sys.is_some_and(|t| now >= t);
                if sys {
                    next_sys = sys_interval.map(|d| now + d);
                }
                core.codec_timeouts();
                core.mqtt_tick(sys);
            }
            n = rx.recv_many(&mut batch, 64) => {
                if n == 0 { break; }
                for cmd in batch.drain(..) {
                    core.handle(cmd);
                }
                // One durable write for the batch, then the packets it produced.
                core.mqtt_flush();
            }
        }
    }
    core.mqtt_flush();
    let stats = core.stats();
    debug!(realm = %core.name(), ?stats, "realm stopped");
    core.close_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TestSession {
        id: SessionId,
        rx: crate::router::OutboxRx,
    }

    fn join(core: &mut RealmCore, cap: usize) -> TestSession {
        let (tx, rx) = crate::router::outbox::channel(cap);
        let (rtx, mut rrx) = oneshot::channel();
        core.handle(RealmCmd::Join {
            info: SessionInfo {
                authid: "a".into(),
                authrole: "r".into(),
                callee_cancels: true,
            },
            outbox: tx,
            reply: rtx,
        });
        TestSession {
            id: rrx.try_recv().unwrap(),
            rx,
        }
    }

    impl TestSession {
        fn next(&mut self) -> Option<Message> {
            match self.rx.try_recv().ok()? {
                Outgoing::Msg(m) => Some(*m),
                Outgoing::Event(e) => Some(e.to_message()),
                Outgoing::Mqtt(m) => panic!("unexpected MQTT packet {m:?}"),
            }
        }
    }

    fn publish(topic: &str, args: Vec<Value>) -> PublishRequest {
        PublishRequest {
            request: 1,
            topic: topic.into(),
            payload: Payload {
                args: Some(args),
                kwargs: None,
                raw: None,
            },
            acknowledge: true,
            exclude_me: true,
            exclude: vec![],
            eligible: None,
            disclose: false,
            retain: false,
            ppt: Dict::new(),
        }
    }

    #[test]
    fn pubsub_kinds_and_exclusion() {
        let mut core = RealmCore::new("r");
        let mut a = join(&mut core, 16);
        let mut b = join(&mut core, 16);
        core.handle(RealmCmd::Subscribe {
            get_retained: false,
            session: b.id,
            request: 1,
            topic: "com.x".into(),
            policy: MatchPolicy::Exact,
        });
        core.handle(RealmCmd::Subscribe {
            get_retained: false,
            session: b.id,
            request: 2,
            topic: "com.".into(),
            policy: MatchPolicy::Prefix,
        });
        core.handle(RealmCmd::Subscribe {
            get_retained: false,
            session: a.id,
            request: 3,
            topic: "com.x".into(),
            policy: MatchPolicy::Exact,
        });
        let Some(Message::Subscribed {
            subscription: s_exact,
            ..
        }) = b.next()
        else {
            panic!()
        };
        let Some(Message::Subscribed {
            subscription: s_prefix,
            ..
        }) = b.next()
        else {
            panic!()
        };
        let Some(Message::Subscribed {
            subscription: s_a, ..
        }) = a.next()
        else {
            panic!()
        };
        assert_eq!(s_exact, s_a, "same topic and policy share a subscription");
        core.handle(RealmCmd::Publish(
            a.id,
            publish("com.x", vec![Value::Int(7)]),
        ));
        let mut got = vec![b.next().unwrap(), b.next().unwrap()];
        got.sort_by_key(|m| match m {
            Message::Event { subscription, .. } => *subscription,
            _ => 0,
        });
        for m in &got {
            let Message::Event {
                subscription,
                details,
                payload,
                ..
            } = m
            else {
                panic!("{m:?}")
            };
            assert_eq!(payload.args, Some(vec![Value::Int(7)]));
            if *subscription == s_prefix {
                assert_eq!(details.get("topic"), Some(&Value::from("com.x")));
            } else {
                assert!(details.get("topic").is_none());
            }
        }
        // exclude_me: a gets only PUBLISHED.
        assert!(matches!(a.next(), Some(Message::Published { .. })));
        assert!(a.next().is_none());
        // eligible restricts.
        let mut p = publish("com.x", vec![]);
        p.exclude_me = false;
        p.eligible = Some(vec![a.id.0]);
        core.handle(RealmCmd::Publish(a.id, p));
        assert!(matches!(a.next(), Some(Message::Event { .. })));
        assert!(b.next().is_none());
    }

    #[test]
    fn slow_subscriber_drops_events_not_publisher() {
        let mut core = RealmCore::new("r");
        let mut a = join(&mut core, 64);
        let mut b = join(&mut core, 2);
        core.handle(RealmCmd::Subscribe {
            get_retained: false,
            session: b.id,
            request: 1,
            topic: "t".into(),
            policy: MatchPolicy::Exact,
        });
        b.next();
        for _ in 0..10 {
            let mut p = publish("t", vec![]);
            p.acknowledge = false;
            core.handle(RealmCmd::Publish(a.id, p));
        }
        assert_eq!(core.stats().events_dropped, 8);
        assert!(a.next().is_none());
        assert_eq!(core.session_count(), 2);
    }

    #[test]
    fn rpc_flow_and_callee_leaving() {
        let mut core = RealmCore::new("r");
        let mut caller = join(&mut core, 16);
        let mut callee = join(&mut core, 16);
        core.handle(RealmCmd::Register {
            session: callee.id,
            request: 1,
            procedure: "p".into(),
            policy: MatchPolicy::Exact,
            invoke: InvokePolicy::Single,
        });
        assert!(matches!(callee.next(), Some(Message::Registered { .. })));
        core.handle(RealmCmd::Register {
            session: caller.id,
            request: 9,
            procedure: "p".into(),
            policy: MatchPolicy::Exact,
            invoke: InvokePolicy::Single,
        });
        assert!(
            matches!(caller.next(), Some(Message::Error { error, .. }) if error == "wamp.error.procedure_already_exists")
        );
        core.handle(RealmCmd::Call(
            caller.id,
            CallRequest {
                request: 5,
                procedure: "p".into(),
                payload: Payload::empty(),
                disclose: false,
            },
        ));
        let Some(Message::Invocation { request: inv, .. }) = callee.next() else {
            panic!()
        };
        core.handle(RealmCmd::Yield {
            session: callee.id,
            request: inv,
            payload: Payload {
                args: Some(vec![Value::Int(3)]),
                kwargs: None,
                raw: None,
            },
        });
        assert!(matches!(
            caller.next(),
            Some(Message::Result { request: 5, .. })
        ));
        // Unknown procedure.
        core.handle(RealmCmd::Call(
            caller.id,
            CallRequest {
                request: 6,
                procedure: "q".into(),
                payload: Payload::empty(),
                disclose: false,
            },
        ));
        assert!(
            matches!(caller.next(), Some(Message::Error { error, .. }) if error == "wamp.error.no_such_procedure")
        );
        // Callee leaves with a call pending.
        core.handle(RealmCmd::Call(
            caller.id,
            CallRequest {
                request: 7,
                procedure: "p".into(),
                payload: Payload::empty(),
                disclose: false,
            },
        ));
        assert!(callee.next().is_some());
        core.handle(RealmCmd::Leave(callee.id));
        assert!(
            matches!(caller.next(), Some(Message::Error { request: 7, error, .. }) if error == "wamp.error.canceled")
        );
        core.handle(RealmCmd::Call(
            caller.id,
            CallRequest {
                request: 8,
                procedure: "p".into(),
                payload: Payload::empty(),
                disclose: false,
            },
        ));
        assert!(
            matches!(caller.next(), Some(Message::Error { request: 8, error, .. }) if error == "wamp.error.no_such_procedure")
        );
    }

    #[test]
    fn shared_registration_policies_and_caller_leaving() {
        let mut core = RealmCore::new("r");
        let caller = join(&mut core, 16);
        let mut c1 = join(&mut core, 16);
        let mut c2 = join(&mut core, 16);
        for c in [&mut c1, &mut c2] {
            core.handle(RealmCmd::Register {
                session: c.id,
                request: 1,
                procedure: "p".into(),
                policy: MatchPolicy::Exact,
                invoke: InvokePolicy::RoundRobin,
            });
            assert!(matches!(c.next(), Some(Message::Registered { .. })));
        }
        let mut order = Vec::new();
        for r in 1..=4 {
            core.handle(RealmCmd::Call(
                caller.id,
                CallRequest {
                    request: r,
                    procedure: "p".into(),
                    payload: Payload::empty(),
                    disclose: false,
                },
            ));
            if c1.next().is_some() {
                order.push(1)
            }
            if c2.next().is_some() {
                order.push(2)
            }
        }
        assert_eq!(order, vec![1, 2, 1, 2]);
        // Caller leaves: pending invocations are interrupted.
        core.handle(RealmCmd::Leave(caller.id));
        let interrupts = std::iter::from_fn(|| c1.next())
            .chain(std::iter::from_fn(|| c2.next()))
            .filter(|m| matches!(m, Message::Interrupt { .. }))
            .count();
        assert_eq!(interrupts, 4);
    }

    #[test]
    fn pattern_registration_precedence() {
        let mut core = RealmCore::new("r");
        let mut caller = join(&mut core, 16);
        let mut c = join(&mut core, 16);
        core.handle(RealmCmd::Register {
            session: c.id,
            request: 1,
            procedure: "a.".into(),
            policy: MatchPolicy::Prefix,
            invoke: InvokePolicy::Single,
        });
        core.handle(RealmCmd::Register {
            session: c.id,
            request: 2,
            procedure: "a..c".into(),
            policy: MatchPolicy::Wildcard,
            invoke: InvokePolicy::Single,
        });
        core.handle(RealmCmd::Register {
            session: c.id,
            request: 3,
            procedure: "a.b.c".into(),
            policy: MatchPolicy::Exact,
            invoke: InvokePolicy::Single,
        });
        let ids: Vec<u64> = (0..3)
            .map(|_| match c.next() {
                Some(Message::Registered { registration, .. }) => registration,
                m => panic!("{m:?}"),
            })
            .collect();
        for (proc_, want) in [("a.b.c", ids[2]), ("a.x.c", ids[0]), ("a.x", ids[0])] {
            core.handle(RealmCmd::Call(
                caller.id,
                CallRequest {
                    request: 1,
                    procedure: proc_.into(),
                    payload: Payload::empty(),
                    disclose: false,
                },
            ));
            let Some(Message::Invocation {
                registration,
                request,
                ..
            }) = c.next()
            else {
                panic!()
            };
            assert_eq!(registration, want, "{proc_}");
            core.handle(RealmCmd::Yield {
                session: c.id,
                request,
                payload: Payload::empty(),
            });
            caller.next();
        }
    }
}
