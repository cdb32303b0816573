//! The MQTT ↔ WAMP bridge inside the realm: topic mapping, payload mapping, and the retained
//! store shared by both protocols.
//!
//! A publication is routed once through the one topic index and converted at most once per
//! target format (per payload mapping) whatever the number of subscribers. MQTT `a/b/c` is WAMP
//! `a.b.c`; MQTT topics that are not valid WAMP URIs (a level with `.`, an empty level,
//! whitespace, or anything the realm's `uri_check` refuses) and `$` topics stay on the MQTT side
//! and are counted. WAMP publications count as QoS 1 sources for MQTT subscribers.

use std::sync::Arc;

use bytes::Bytes;
use tracing::debug;

use super::mqtt::Msg;
use super::{Filter, Outgoing, RealmCore, SessionId, SharedEvent, WampPublication};
use crate::config::{MatchPolicy, PayloadFormat, PayloadMapping};
use crate::mqtt::{filter_matches, QoS};
use crate::router::index::Pattern;
use crate::wamp::message::dict;
use crate::wamp::{uri, Payload};
use crate::wire::{Dict, Value};

/// One retained message, kept in the form it was published in.
#[derive(Debug, Clone)]
pub(super) enum Retained {
    /// Published by an MQTT client (or restored from the store).
    Mqtt {
        /// The message.
        msg: Arc<Msg>,
        /// The publisher's payload mapping (for WAMP subscribers asking `get_retained`).
        mapping: Arc<PayloadMapping>,
        /// Whether it is in the store.
        persisted: bool,
    },
    /// Published by a WAMP session with `retain: true` (kept in memory only).
    Wamp(WampPublication),
}

/// The WAMP URI of an MQTT topic, if it has one.
pub(super) fn mqtt_to_uri(topic: &str, check: crate::config::UriCheck) -> Option<String> {
    uri::from_mqtt_topic(topic, check)
}

/// Whether a WAMP URI has an MQTT topic form (loose URIs may hold `/`, `+` or `#`).
fn uri_is_mqtt_topic(uri: &str) -> bool {
    !uri.contains(['/', '+', '#', '\0'])
        && !uri.starts_with('$')
        && uri.len() <= crate::mqtt::MAX_STRING_LEN
}

/// The MQTT topic of a WAMP URI.
pub(super) fn uri_to_mqtt(uri: &str) -> String {
    uri.replace('.', "/")
}

/// WAMP → MQTT payload conversion; `None` when the publication cannot cross in this format.
fn encode_for_mqtt(fmt: &PayloadFormat, p: &WampPublication) -> Option<Bytes> {
    match fmt {
        PayloadFormat::Passthrough => p.payload.raw.clone(),
        PayloadFormat::Native(ser) => {
            if p.payload.raw.is_some() {
                return None;
            }
            let mut d = Dict::new();
            if let Some(a) = &p.payload.args {
                d.insert("args".into(), Value::List(a.clone()));
            }
            if let Some(k) = &p.payload.kwargs {
                d.insert("kwargs".into(), Value::Dict(k.clone()));
            }
            Some(ser.encode_to_bytes(&Value::Dict(d)))
        }
        PayloadFormat::Utf8 => match p.payload.args.as_deref() {
            Some([Value::Str(s), ..]) => Some(Bytes::copy_from_slice(s.as_bytes())),
            _ => None,
        },
        // Dynamic encoders are called through the dealer; see `dynamic`.
        PayloadFormat::Dynamic { .. } => None,
    }
}

/// What an MQTT payload becomes on the WAMP side.
pub(super) struct Decoded {
    pub(super) payload: Payload,
    pub(super) details: Dict,
    pub(super) exclude: Vec<u64>,
    pub(super) eligible: Option<Vec<u64>>,
}

/// MQTT → WAMP payload conversion; `Err` says why it cannot cross.
fn decode_from_mqtt(fmt: &PayloadFormat, bytes: &Bytes) -> Result<Decoded, &'static str> {
    let plain = |payload| Decoded {
        payload,
        details: Dict::new(),
        exclude: Vec::new(),
        eligible: None,
    };
    match fmt {
        PayloadFormat::Passthrough => Ok(Decoded {
            payload: Payload {
                args: None,
                kwargs: None,
                raw: Some(bytes.clone()),
            },
            details: dict([
                ("enc_algo", Value::from("mqtt")),
                ("ppt_scheme", Value::from("mqtt")),
            ]),
            exclude: Vec::new(),
            eligible: None,
        }),
        PayloadFormat::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(plain(Payload {
                args: Some(vec![Value::from(s)]),
                kwargs: None,
                raw: None,
            })),
            Err(_) => Err("payload is not UTF-8"),
        },
        PayloadFormat::Native(ser) => {
            let Value::Dict(d) = ser.decode(bytes).map_err(|_| "payload does not decode")? else {
                return Err("payload is not a dict");
            };
            let mut out = plain(Payload::default());
            for (k, v) in d {
                match (k.as_str(), v) {
                    ("args", Value::List(a)) => out.payload.args = Some(a),
                    ("kwargs", Value::Dict(kw)) => out.payload.kwargs = Some(kw),
                    ("args" | "kwargs", Value::Null) => {}
                    ("exclude", Value::List(l)) => {
                        out.exclude = l.iter().filter_map(Value::as_u64).collect()
                    }
                    ("eligible", Value::List(l)) => {
                        out.eligible = Some(l.iter().filter_map(Value::as_u64).collect());
                    }
                    _ => {
                        return Err("payload has a key other than args, kwargs, exclude, eligible")
                    }
                }
            }
            Ok(out)
        }
        PayloadFormat::Dynamic { .. } => Err("dynamic payload mapping"),
    }
}

impl RealmCore {
    /// WAMP → MQTT: every MQTT client whose filters match the topic gets the publication once,
    /// converted by its own payload mapping (cached per mapping), at min(granted, QoS 1).
    pub(super) fn bridge_wamp_to_mqtt(&mut self, p: &WampPublication, filter: &Filter<'_>) {
        if !uri_is_mqtt_topic(&p.topic) {
            return;
        }
        let targets = self.mqtt_targets(&p.topic.split('.').collect::<Vec<_>>());
        if targets.is_empty() {
            return;
        }
        let topic: Arc<str> = uri_to_mqtt(&p.topic).into();
        let mut cache: Vec<(*const PayloadMapping, Option<Arc<Msg>>)> = Vec::new();
        let mut dynamic: Vec<(String, Vec<(u64, QoS)>)> = Vec::new();
        for (key, granted) in targets {
            let Some((mapping, session)) = self.mqtt_client_mapping(key) else {
                continue;
            };
            if let Some(s) = session {
                if !filter.admits(s) {
                    continue;
                }
            } else if filter.eligible.is_some() {
                continue;
            }
            if let Some(PayloadFormat::Dynamic { encoder, .. }) = mapping.lookup(&p.topic) {
                match dynamic.iter_mut().find(|(e, _)| e == encoder) {
                    Some((_, t)) => t.push((key, granted)),
                    None => dynamic.push((encoder.clone(), vec![(key, granted)])),
                }
                continue;
            }
            let ptr = Arc::as_ptr(&mapping);
            let msg = match cache.iter().find(|(m, _)| *m == ptr) {
                Some((_, msg)) => msg.clone(),
                None => {
                    let msg = match mapping.lookup(&p.topic) {
                        Some(fmt) => match encode_for_mqtt(fmt, p) {
                            Some(bytes) => Some(Arc::new(Msg {
                                topic: topic.clone(),
                                payload: bytes,
                                qos: QoS::AtLeastOnce,
                            })),
                            None => {
                                self.bridge_dropped(
                                    &p.topic,
                                    "the publication does not fit the payload mapping",
                                );
                                None
                            }
                        },
                        None => {
                            self.bridge_dropped(&p.topic, "no payload_mapping key matches");
                            None
                        }
                    };
                    cache.push((ptr, msg.clone()));
                    msg
                }
            };
            if let Some(msg) = msg {
                self.mqtt_deliver_pub(key, &msg, granted.min(QoS::AtLeastOnce), false);
            }
        }
        for (encoder, targets) in dynamic {
            self.dynamic_encode(&encoder, p, topic.clone(), targets);
        }
    }

    /// MQTT → WAMP: WAMP subscriptions matching the mapped URI get one shared EVENT each.
    pub(super) fn bridge_mqtt_to_wamp(
        &mut self,
        mapping: &Arc<PayloadMapping>,
        topic: &str,
        uri: Option<&str>,
        payload: &Bytes,
        publisher: Option<SessionId>,
    ) {
        let Some(uri) = uri else {
            if !topic.starts_with('$') {
                self.bridge_stats.unmappable += 1;
            }
            return;
        };
        if !self.has_wamp_subscribers(uri) {
            return;
        }
        let uri = uri.to_owned();
        let decoded = match mapping.lookup(&uri) {
            None => return self.bridge_dropped(&uri, "no payload_mapping key matches"),
            Some(PayloadFormat::Dynamic { decoder, .. }) => {
                let decoder = decoder.clone();
                return self.dynamic_decode(&decoder, uri, topic, payload.clone());
            }
            Some(fmt) => match decode_from_mqtt(fmt, payload) {
                Ok(d) => d,
                Err(why) => return self.bridge_dropped(&uri, why),
            },
        };
        self.publish_decoded(&uri, decoded, publisher);
    }

    /// Fans a decoded MQTT publication out to WAMP subscribers.
    pub(super) fn publish_decoded(&mut self, uri: &str, d: Decoded, publisher: Option<SessionId>) {
        let filter = Filter {
            exclude_me: publisher,
            exclude: &d.exclude,
            eligible: d.eligible.as_deref(),
        };
        let payload = Arc::new(d.payload);
        self.wamp_fan_out(uri, super::random_id(), &d.details, &payload, &filter);
        self.bridge_stats.to_wamp += 1;
    }

    fn has_wamp_subscribers(&self, uri: &str) -> bool {
        let mut any = false;
        self.sub_index.matches(uri, |id| {
            any |= self
                .subs
                .get(&id)
                .is_some_and(|s| !s.subscribers.is_empty());
        });
        any
    }

    pub(super) fn bridge_dropped(&mut self, uri: &str, why: &str) {
        self.bridge_stats.dropped += 1;
        debug!(realm = %self.name, %uri, why, "publication does not cross between MQTT and WAMP");
    }

    /// Keeps a WAMP `retain: true` publication as the topic's retained message.
    pub(super) fn retain_wamp(&mut self, p: WampPublication) {
        if !uri_is_mqtt_topic(&p.topic) {
            debug!(realm = %self.name, uri = %p.topic, "not retained: the URI has no MQTT topic form");
            return;
        }
        let topic = uri_to_mqtt(&p.topic);
        self.mqtt_set_retained(topic, Some(Retained::Wamp(p)));
    }

    /// `get_retained`: retained messages whose WAMP URI matches the subscription, as EVENTs
    /// with `retained: true`.
    pub(super) fn send_retained_to_wamp(
        &mut self,
        session: SessionId,
        sub_id: u64,
        pattern: &Pattern,
        policy: MatchPolicy,
    ) {
        let Some(outbox) = self.sessions.get(&session).map(|s| s.outbox.clone()) else {
            return;
        };
        let check = self.uri_check;
        let mut events = Vec::new();
        // Only retained topics that start like the pattern can match it.
        let start = match pattern {
            Pattern::Exact(uri) | Pattern::Prefix(uri) => uri_to_mqtt(uri),
            Pattern::Levels(levels) => super::mqtt::literal_prefix(
                levels.iter().map(|l| match l {
                    crate::router::index::Level::Lit(s) => s.as_str(),
                    _ => "+",
                }),
                '/',
            ),
        };
        for (topic, r) in self.retained_under(&start) {
            let Some(uri) = mqtt_to_uri(topic, check) else {
                continue;
            };
            if !pattern_matches(pattern, &uri) {
                continue;
            }
            let (payload, mut details) = match r {
                Retained::Wamp(p) => ((*p.payload).clone(), p.ppt.clone()),
                Retained::Mqtt { msg, mapping, .. } => match mapping.lookup(&uri) {
                    Some(PayloadFormat::Dynamic { .. }) | None => continue,
                    Some(fmt) => match decode_from_mqtt(fmt, &msg.payload) {
                        Ok(d) => (d.payload, d.details),
                        Err(_) => continue,
                    },
                },
            };
            details.insert("retained".into(), Value::Bool(true));
            if policy != MatchPolicy::Exact {
                details.insert("topic".into(), Value::from(uri.as_str()));
            }
            events.push(SharedEvent::new(
                sub_id,
                super::random_id(),
                details,
                Arc::new(payload),
            ));
        }
        for ev in events {
            if outbox.try_send(Outgoing::Event(Arc::new(ev))).is_err() {
                self.stats.events_dropped += 1;
            }
        }
    }

    /// A retained message as an MQTT message for a client with `mapping` (WAMP-origin ones are
    /// converted; `None` when they cannot cross).
    pub(super) fn retained_for_mqtt(
        r: &Retained,
        mapping: &PayloadMapping,
        topic: &str,
    ) -> Option<Arc<Msg>> {
        match r {
            Retained::Mqtt { msg, .. } => Some(msg.clone()),
            Retained::Wamp(p) => {
                let fmt = mapping.lookup(&p.topic)?;
                let bytes = encode_for_mqtt(fmt, p)?;
                Some(Arc::new(Msg {
                    topic: topic.into(),
                    payload: bytes,
                    qos: QoS::AtLeastOnce,
                }))
            }
        }
    }
}

/// Whether a WAMP subscription pattern matches a URI.
fn pattern_matches(p: &Pattern, uri: &str) -> bool {
    match p {
        Pattern::Exact(s) => s == uri,
        Pattern::Prefix(s) => uri.starts_with(s.as_str()),
        Pattern::Levels(levels) => {
            let filter: Vec<&str> = levels
                .iter()
                .map(|l| match l {
                    crate::router::index::Level::Lit(s) => s.as_str(),
                    crate::router::index::Level::Any => "+",
                    crate::router::index::Level::Rest => "#",
                })
                .collect();
            filter_matches(&filter.join("/"), &uri_to_mqtt(uri))
        }
    }
}

/// How long a dynamic payload codec may take before the message is dropped.
const CODEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pending call to a dynamic payload codec.
#[derive(Debug)]
pub(super) struct CodecCall {
    /// The session serving it (its answer is only accepted from there).
    pub(super) callee: SessionId,
    deadline: std::time::Instant,
    what: CodecWork,
}

#[derive(Debug)]
enum CodecWork {
    /// WAMP → MQTT: deliver the encoded bytes to these clients.
    Encode {
        topic: Arc<str>,
        uri: String,
        targets: Vec<(u64, QoS)>,
    },
    /// MQTT → WAMP: publish the decoded options to WAMP subscribers of `uri`.
    Decode { uri: String },
    /// A dynamic authenticator: the first result value (or the error URI) goes back.
    Auth {
        reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
    },
}

impl RealmCore {
    /// Calls `encoder(mqtt_topic, wamp_uri, args, kwargs)` for a WAMP publication; the bytes it
    /// returns go to `targets`.
    pub(super) fn dynamic_encode(
        &mut self,
        encoder: &str,
        p: &WampPublication,
        topic: Arc<str>,
        targets: Vec<(u64, QoS)>,
    ) {
        let args = vec![
            Value::from(&*topic),
            Value::from(p.topic.as_str()),
            p.payload.args.clone().map_or(Value::Null, Value::List),
            p.payload.kwargs.clone().map_or(Value::Null, Value::Dict),
        ];
        let what = CodecWork::Encode {
            topic,
            uri: p.topic.clone(),
            targets,
        };
        if self
            .start_internal_call(encoder, args, what, CODEC_TIMEOUT)
            .is_some()
        {
            self.bridge_dropped(&p.topic, "the dynamic encoder is not registered (or busy)");
        }
    }

    /// Calls `decoder(wamp_uri, mqtt_topic, payload)` for an MQTT publication.
    pub(super) fn dynamic_decode(
        &mut self,
        decoder: &str,
        uri: String,
        topic: &str,
        payload: Bytes,
    ) {
        let args = vec![
            Value::from(uri.as_str()),
            Value::from(topic),
            Value::Bytes(payload),
        ];
        let what = CodecWork::Decode { uri };
        if let Some(CodecWork::Decode { uri }) =
            self.start_internal_call(decoder, args, what, CODEC_TIMEOUT)
        {
            self.bridge_dropped(&uri, "the dynamic decoder is not registered (or busy)");
        }
    }

    /// The answer of a dynamic codec (YIELD payload, or the ERROR URI).
    pub(super) fn codec_result(&mut self, call: CodecCall, result: Result<Payload, String>) {
        let call = match call.what {
            CodecWork::Auth { reply } => {
                let answer = result.map(|p| {
                    p.args
                        .and_then(|a| a.into_iter().next())
                        .unwrap_or(Value::Null)
                });
                let _ = reply.send(answer);
                return;
            }
            what => CodecCall { what, ..call },
        };
        let first = match result {
            Ok(p) => p.args.and_then(|a| a.into_iter().next()),
            Err(e) => {
                let uri = match &call.what {
                    CodecWork::Encode { uri, .. } | CodecWork::Decode { uri } => uri.clone(),
                    CodecWork::Auth { .. } => String::new(),
                };
                return self.bridge_dropped(&uri, &format!("the dynamic codec failed: {e}"));
            }
        };
        match call.what {
            CodecWork::Encode {
                topic,
                uri,
                targets,
            } => {
                let bytes = match first {
                    Some(Value::Bytes(b)) => b,
                    Some(Value::Str(s)) => Bytes::from(s),
                    _ => {
                        return self
                            .bridge_dropped(&uri, "the dynamic encoder did not return bytes")
                    }
                };
                let msg = Arc::new(Msg {
                    topic,
                    payload: bytes,
                    qos: QoS::AtLeastOnce,
                });
                for (key, granted) in targets {
                    self.mqtt_deliver_pub(key, &msg, granted.min(QoS::AtLeastOnce), false);
                }
            }
            CodecWork::Auth { .. } => {}
            CodecWork::Decode { uri } => {
                let Some(value @ Value::Dict(_)) = first else {
                    return self.bridge_dropped(&uri, "the dynamic decoder did not return a dict");
                };
                // The returned dict has the shape a native payload has.
                let json = crate::wire::Serializer::MsgPack.encode_to_bytes(&value);
                match decode_from_mqtt(
                    &PayloadFormat::Native(crate::wire::Serializer::MsgPack),
                    &json,
                ) {
                    Ok(d) => self.publish_decoded(&uri, d, None),
                    Err(why) => self.bridge_dropped(&uri, why),
                }
            }
        }
    }

    /// Calls a dynamic authenticator or authorizer for a connection; the answer (or why there
    /// is none, at the latest after `timeout`) goes to `reply`.
    pub(super) fn auth_call(
        &mut self,
        procedure: &str,
        args: Vec<Value>,
        reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
        timeout: std::time::Duration,
    ) {
        let what = CodecWork::Auth { reply };
        if let Some(CodecWork::Auth { reply }) =
            self.start_internal_call(procedure, args, what, timeout)
        {
            let _ = reply.send(Err(format!("no procedure registered as {procedure}")));
        }
    }

    /// Invokes `procedure(args...)` for the router itself and remembers what to do with the
    /// answer; hands `what` back when no callee can take the call.
    fn start_internal_call(
        &mut self,
        procedure: &str,
        args: Vec<Value>,
        what: CodecWork,
        timeout: std::time::Duration,
    ) -> Option<CodecWork> {
        let Some((inv, callee)) = self.invoke_internal(procedure, args) else {
            return Some(what);
        };
        let deadline = std::time::Instant::now() + timeout;
        self.codec_calls.insert(
            inv,
            CodecCall {
                callee,
                deadline,
                what,
            },
        );
        None
    }

    /// Drops codec calls that took too long.
    pub(super) fn codec_timeouts(&mut self) {
        let now = std::time::Instant::now();
        let late: Vec<u64> = self
            .codec_calls
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for inv in late {
            if let Some(call) = self.codec_calls.remove(&inv) {
                self.codec_result(call, Err("timeout".into()));
            }
        }
    }
}
