//! MQTT inside the realm: client sessions (clean or persistent), QoS 1/2 state, the in-flight
//! window and offline queues, retained messages, wills, `$SYS` topics and persistence.
//!
//! MQTT filters live in the realm's one topic index as level patterns (`+` is `Any`, `#` is
//! `Rest`), next to WAMP subscriptions; a publication is routed once through it. State that
//! must survive a restart is written as `StoreOp`s that the realm task applies in one durable
//! transaction per command batch; every packet for MQTT clients produced during the batch
//! (acks included) is held back until that write succeeded, so nothing is acknowledged before
//! it is stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::router::{IdMap, StrMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{debug, error, info, trace};

use super::bridge::Retained;
use super::{random_id, Outbox, Outgoing, RealmCore, SessionId};
use crate::config::PayloadMapping;
use crate::config::{MatchPolicy, MqttSettings};
use crate::mqtt::store::{QueuedMessage, Store, StoreOp, StoredMessage, StoredSession};
use crate::mqtt::{filter_matches, QoS, SubAckCode, Will};
use crate::router::index::{Level, Pattern};

/// A packet the realm asks an MQTT connection to write.
#[derive(Debug, Clone)]
pub enum MqttOut {
    /// PUBLISH (the payload is shared between all receivers).
    Publish {
        /// Topic.
        topic: Arc<str>,
        /// Payload.
        payload: Bytes,
        /// QoS of this delivery.
        qos: QoS,
        /// RETAIN flag.
        retain: bool,
        /// DUP flag (redelivery).
        dup: bool,
        /// Packet id (0 for QoS 0).
        pkid: u16,
    },
    /// PUBACK.
    PubAck(u16),
    /// PUBREC.
    PubRec(u16),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBACK.
    SubAck {
        /// Packet id.
        pkid: u16,
        /// One code per filter.
        codes: Vec<SubAckCode>,
    },
    /// UNSUBACK.
    UnsubAck(u16),
}

/// Acknowledgement packets a client sends for our PUBLISHes (and PUBREL for its own QoS 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttAck {
    /// PUBACK (QoS 1 delivered).
    PubAck,
    /// PUBREC (QoS 2 received).
    PubRec,
    /// PUBCOMP (QoS 2 complete).
    PubComp,
    /// PUBREL (the client releases its QoS 2 publish).
    PubRel,
}

/// What a connecting MQTT client gets back.
#[derive(Debug)]
pub struct MqttConnected {
    /// Its realm session ID.
    pub session: SessionId,
    /// CONNACK session-present flag.
    pub session_present: bool,
}

/// A CONNECT, validated by the connection.
#[derive(Debug)]
pub struct MqttConnect {
    /// Client identifier (never empty here).
    pub client_id: String,
    /// clean_session flag.
    pub clean: bool,
    /// Last will.
    pub will: Option<Will>,
    /// authid.
    pub authid: String,
    /// Outbox of the connection.
    pub outbox: Outbox,
    /// Limits from the transport's settings.
    pub settings: Arc<MqttSettings>,
    /// Read permission per delivered topic (mosquitto `acl_file`), if any.
    pub read_acl: Option<ReadAcl>,
    /// Reply.
    pub reply: oneshot::Sender<MqttConnected>,
}

/// A mosquitto ACL bound to one client: may it read `topic`?
#[derive(Debug, Clone)]
pub struct ReadAcl {
    /// The ACL file.
    pub acl: Arc<crate::auth::mosquitto::AclFile>,
    /// Username (None for anonymous).
    pub username: Option<String>,
    /// Client id.
    pub client_id: String,
}

impl ReadAcl {
    fn allows(&self, topic: &str) -> bool {
        self.acl.check(
            self.username.as_deref(),
            &self.client_id,
            topic,
            crate::auth::mosquitto::Access::Read,
        )
    }
}

/// Byte and message counters the connections of a realm update (for `$SYS`).
#[derive(Debug, Default)]
pub struct MqttCounters {
    /// Bytes read from MQTT connections.
    pub bytes_received: AtomicU64,
    /// Bytes written to MQTT connections.
    pub bytes_sent: AtomicU64,
}

/// One MQTT message (shared by every receiver).
#[derive(Debug)]
pub(super) struct Msg {
    pub(super) topic: Arc<str>,
    pub(super) payload: Bytes,
    pub(super) qos: QoS,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    msg: Arc<Msg>,
    qos: QoS,
    retain: bool,
    /// Set once sent (in flight).
    pkid: Option<u16>,
    /// QoS 2: PUBREC received, PUBREL sent.
    pubrel: bool,
}

#[derive(Debug)]
struct Client {
    id: String,
    clean: bool,
    conn: Option<(SessionId, Outbox)>,
    will: Option<Will>,
    subs: BTreeMap<String, QoS>,
    /// Not yet sent, in order.
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    /// Sent and not yet acknowledged, by packet id.
    inflight: BTreeMap<u16, Pending>,
    next_pkid: u16,
    next_seq: u64,
    incoming_qos2: BTreeSet<u16>,
    last_seen: SystemTime,
    settings: Arc<MqttSettings>,
    read_acl: Option<ReadAcl>,
}

impl Client {
    fn new(id: String, clean: bool, settings: Arc<MqttSettings>) -> Self {
        Self {
            id,
            clean,
            conn: None,
            will: None,
            subs: BTreeMap::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            inflight: BTreeMap::new(),
            next_pkid: 0,
            next_seq: 1,
            incoming_qos2: BTreeSet::new(),
            last_seen: SystemTime::now(),
            settings,
            read_acl: None,
        }
    }

    fn persistent(&self) -> bool {
        !self.clean
    }

    fn alloc_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            if self.next_pkid != 0 && !self.inflight.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    fn stored_session(&self) -> StoredSession {
        StoredSession {
            client_id: self.id.clone(),
            subscriptions: self
                .subs
                .iter()
                .map(|(f, q)| (f.clone(), *q as u8))
                .collect(),
            last_seen_unix: self
                .last_seen
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            incoming_qos2: self.incoming_qos2.iter().copied().collect(),
        }
    }
}

fn stored(p: &Pending) -> QueuedMessage {
    QueuedMessage {
        seq: p.seq,
        msg: StoredMessage {
            topic: p.msg.topic.to_string(),
            payload: p.msg.payload.clone(),
            qos: p.qos as u8,
            retain: p.retain,
        },
        pkid: p.pkid,
        pubrel: p.pubrel,
    }
}

fn qos_of(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The level pattern of an MQTT filter.
fn filter_pattern(filter: &str) -> Pattern {
    Pattern::Levels(
        filter
            .split('/')
            .map(|l| match l {
                "+" => Level::Any,
                "#" => Level::Rest,
                s => Level::Lit(s.to_owned()),
            })
            .collect(),
    )
}

/// MQTT state of one realm.
#[derive(Debug)]
pub(super) struct MqttState {
    /// Scratch space for the targets of one publication (kept to save an allocation each).
    targets: Vec<(u64, QoS)>,
    clients: IdMap<u64, Client>,
    by_id: StrMap<String, u64>,
    by_session: IdMap<SessionId, u64>,
    next_key: u64,
    retained: BTreeMap<String, Retained>,
    store: Option<Store>,
    ops: Vec<StoreOp>,
    /// Packets held until the batch's store write is durable.
    out: Vec<(u64, SessionId, MqttOut)>,
    /// CONNECT answers held the same way.
    replies: Vec<(u64, oneshot::Sender<MqttConnected>, MqttConnected)>,
    /// WAMP PUBLISHED answers held the same way (publications that reached persistent MQTT
    /// sessions).
    pub(super) wamp_acks: Vec<(SessionId, crate::wamp::Message)>,
    started: Instant,
    pub(super) counters: Arc<MqttCounters>,
    received: u64,
    sent: u64,
    dropped: u64,
    connected: usize,
    store_failures: u64,
}

impl MqttState {
    pub(super) fn new(store: Option<Store>) -> Self {
        Self {
            targets: Vec::new(),
            clients: IdMap::default(),
            by_id: StrMap::default(),
            by_session: IdMap::default(),
            next_key: 1,
            retained: BTreeMap::new(),
            store,
            ops: Vec::new(),
            out: Vec::new(),
            replies: Vec::new(),
            wamp_acks: Vec::new(),
            started: Instant::now(),
            counters: Arc::new(MqttCounters::default()),
            received: 0,
            sent: 0,
            dropped: 0,
            connected: 0,
            store_failures: 0,
        }
    }
}

impl RealmCore {
    /// Restores retained messages and persistent sessions from the store.
    pub(super) fn mqtt_restore(&mut self, default_settings: Arc<MqttSettings>) {
        let Some(store) = &self.mqtt.store else {
            return;
        };
        let loaded = match store.load() {
            Ok(l) => l,
            Err(e) => {
                error!(realm = %self.name, error = %e, "cannot load the MQTT store; starting empty");
                return;
            }
        };
        let (nret, nsess) = (loaded.retained.len(), loaded.sessions.len());
        for m in loaded.retained {
            let msg = Arc::new(Msg {
                topic: m.topic.as_str().into(),
                payload: m.payload,
                qos: qos_of(m.qos),
            });
            let mapping = default_settings.payload_mapping.clone();
            let r = Retained::Mqtt {
                msg,
                mapping,
                persisted: true,
            };
            self.mqtt.retained.insert(m.topic, r);
        }
        for (s, queued) in loaded.sessions {
            let key = self.mqtt.next_key;
            self.mqtt.next_key += 1;
            let mut c = Client::new(s.client_id.clone(), false, default_settings.clone());
            c.last_seen = UNIX_EPOCH + Duration::from_secs(s.last_seen_unix);
            c.incoming_qos2 = s.incoming_qos2.into_iter().collect();
            for q in queued {
                c.next_seq = c.next_seq.max(q.seq + 1);
                let p = Pending {
                    seq: q.seq,
                    msg: Arc::new(Msg {
                        topic: q.msg.topic.as_str().into(),
                        payload: q.msg.payload,
                        qos: qos_of(q.msg.qos),
                    }),
                    qos: qos_of(q.msg.qos),
                    retain: q.msg.retain,
                    pkid: q.pkid,
                    pubrel: q.pubrel,
                };
                match p.pkid {
                    Some(id) => {
                        c.inflight.insert(id, p);
                    }
                    None => {
                        c.queued_bytes += p.msg.payload.len();
                        c.queue.push_back(p);
                    }
                }
            }
            self.mqtt.by_id.insert(c.id.clone(), key);
            self.mqtt.clients.insert(key, c);
            for (filter, q) in s.subscriptions {
                self.mqtt_attach_filter(key, &filter, qos_of(q));
            }
        }
        info!(realm = %self.name, retained = nret, sessions = nsess, "MQTT state restored");
    }

    fn mqtt_attach_filter(&mut self, key: u64, filter: &str, qos: QoS) {
        let sub_id = self.subscription_for(filter_pattern(filter), MatchPolicy::Wildcard);
        let sub = self.subs.get_mut(&sub_id).expect("index and table agree");
        match sub.mqtt.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = qos,
            None => sub.mqtt.push((key, qos)),
        }
        if let Some(c) = self.mqtt.clients.get_mut(&key) {
            c.subs.insert(filter.to_owned(), qos);
        }
    }

    fn mqtt_detach_filter(&mut self, key: u64, filter: &str) -> bool {
        let had = self
            .mqtt
            .clients
            .get_mut(&key)
            .is_some_and(|c| c.subs.remove(filter).is_some());
        let pattern = filter_pattern(filter);
        if let Some(sub_id) = self.sub_index.get(&pattern) {
            if let Some(sub) = self.subs.get_mut(&sub_id) {
                sub.mqtt.retain(|(k, _)| *k != key);
                if sub.mqtt.is_empty() && sub.subscribers.is_empty() {
                    self.subs.remove(&sub_id);
                    self.sub_index.remove(&pattern);
                }
            }
        }
        had
    }

    /// Removes a client and everything it owns (subscriptions, queues, stored state).
    fn mqtt_forget(&mut self, key: u64) {
        let Some(c) = self.mqtt.clients.get(&key) else {
            return;
        };
        let filters: Vec<String> = c.subs.keys().cloned().collect();
        let (id, persistent) = (c.id.clone(), c.persistent());
        for f in filters {
            self.mqtt_detach_filter(key, &f);
        }
        self.mqtt.clients.remove(&key);
        self.mqtt.by_id.remove(&id);
        if persistent && self.mqtt.store.is_some() {
            self.mqtt.ops.push(StoreOp::DeleteSession(id));
        }
    }

    fn mqtt_push(&mut self, key: u64, pkt: MqttOut) {
        let Some((session, _)) = self.mqtt.clients.get(&key).and_then(|c| c.conn.as_ref()) else {
            return;
        };
        self.mqtt.out.push((key, *session, pkt));
    }

    fn mqtt_persist_session(&mut self, key: u64) {
        if self.mqtt.store.is_none() {
            return;
        }
        if let Some(c) = self.mqtt.clients.get(&key) {
            if c.persistent() {
                self.mqtt.ops.push(StoreOp::PutSession(c.stored_session()));
            }
        }
    }

    /// CONNECT: attach (with takeover), resume or reset the session, and redeliver.
    pub(super) fn mqtt_connect(&mut self, req: MqttConnect) {
        let session = loop {
            let id = SessionId(random_id());
            if !self.sessions.contains_key(&id) && !self.mqtt.by_session.contains_key(&id) {
                break id;
            }
        };
        let mut present = false;
        if let Some(&key) = self.mqtt.by_id.get(&req.client_id) {
            // Takeover: the old connection is closed (its outbox dropped) and its will fires.
            if let Some((old, _)) = self.mqtt.clients.get(&key).and_then(|c| c.conn.clone()) {
                debug!(realm = %self.name, client_id = %req.client_id, "client id takeover");
                self.mqtt_detach_conn(key, old, false);
            }
            // The takeover may already have removed a clean session: look again.
            match self.mqtt.clients.get(&key).map(|c| c.clean) {
                Some(false) if !req.clean => present = true,
                Some(_) => self.mqtt_forget(key),
                None => {}
            }
        }
        let key = match self.mqtt.by_id.get(&req.client_id) {
            Some(&k) => k,
            None => {
                let k = self.mqtt.next_key;
                self.mqtt.next_key += 1;
                self.mqtt.clients.insert(
                    k,
                    Client::new(req.client_id.clone(), req.clean, req.settings.clone()),
                );
                self.mqtt.by_id.insert(req.client_id.clone(), k);
                k
            }
        };
        let c = self.mqtt.clients.get_mut(&key).expect("just inserted");
        c.conn = Some((session, req.outbox));
        c.will = req.will;
        c.settings = req.settings;
        c.read_acl = req.read_acl;
        c.last_seen = SystemTime::now();
        self.mqtt.by_session.insert(session, key);
        self.mqtt.connected += 1;
        debug!(realm = %self.name, client_id = %req.client_id, %session, clean = req.clean, present, "mqtt client connected");
        // CONNACK waits, like every other answer, until the batch's changes are durable.
        let connected = MqttConnected {
            session,
            session_present: present,
        };
        self.mqtt.replies.push((key, req.reply, connected));
        self.mqtt_persist_session(key);
        // Redeliver what was in flight (DUP), then send queued messages.
        let c = self.mqtt.clients.get(&key).expect("present");
        // In the order they were first sent (packet ids wrap around).
        let mut inflight: Vec<(&u16, &Pending)> = c.inflight.iter().collect();
        inflight.sort_by_key(|(_, p)| p.seq);
        let redeliver: Vec<MqttOut> = inflight
            .into_iter()
            .map(|(pkid, p)| {
                if p.pubrel {
                    MqttOut::PubRel(*pkid)
                } else {
                    MqttOut::Publish {
                        topic: p.msg.topic.clone(),
                        payload: p.msg.payload.clone(),
                        qos: p.qos,
                        retain: p.retain,
                        dup: true,
                        pkid: *pkid,
                    }
                }
            })
            .collect();
        for pkt in redeliver {
            self.mqtt_push(key, pkt);
        }
        self.mqtt_pump(key);
    }

    /// The connection of `session` ended (or is being replaced).
    fn mqtt_detach_conn(&mut self, key: u64, session: SessionId, clean_disconnect: bool) {
        let Some(c) = self.mqtt.clients.get_mut(&key) else {
            return;
        };
        if c.conn.as_ref().map(|(s, _)| *s) != Some(session) {
            return;
        }
        c.conn = None;
        c.last_seen = SystemTime::now();
        let will = c.will.take();
        let clean = c.clean;
        self.mqtt.by_session.remove(&session);
        self.mqtt.connected = self.mqtt.connected.saturating_sub(1);
        // Packets still held for this connection are moot.
        self.mqtt.out.retain(|(_, s, _)| *s != session);
        if !clean_disconnect {
            if let Some(w) = will {
                debug!(realm = %self.name, topic = %w.topic, "publishing will");
                let uri = super::bridge::mqtt_to_uri(&w.topic, self.uri_check);
                let topic = (w.topic.as_str(), uri.as_deref());
                self.mqtt_route(Some(key), topic, w.payload, w.qos, w.retain);
            }
        }
        if clean {
            self.mqtt_forget(key);
        } else {
            self.mqtt_persist_session(key);
        }
    }

    /// Whether the current batch has changes that must be stored before answers go out.
    pub(super) fn mqtt_has_pending_writes(&self) -> bool {
        self.mqtt.store.is_some() && !self.mqtt.ops.is_empty()
    }

    /// Holds a WAMP answer until the batch's store write is done.
    pub(super) fn mqtt_defer_wamp_ack(&mut self, session: SessionId, msg: crate::wamp::Message) {
        self.mqtt.wamp_acks.push((session, msg));
    }

    /// DISCONNECT or connection loss.
    pub(super) fn mqtt_disconnect(&mut self, session: SessionId, clean: bool) {
        if let Some(&key) = self.mqtt.by_session.get(&session) {
            debug!(realm = %self.name, %session, clean, "mqtt client disconnected");
            self.mqtt_detach_conn(key, session, clean);
        }
    }

    /// An incoming PUBLISH from a client.
    pub(super) fn mqtt_publish_in(
        &mut self,
        session: SessionId,
        topic: (&str, Option<&str>),
        payload: Bytes,
        qos: QoS,
        retain: bool,
        pkid: u16,
    ) {
        let Some(&key) = self.mqtt.by_session.get(&session) else {
            return;
        };
        self.mqtt.received += 1;
        match qos {
            QoS::AtMostOnce => self.mqtt_route(Some(key), topic, payload, qos, retain),
            QoS::AtLeastOnce => {
                self.mqtt_route(Some(key), topic, payload, qos, retain);
                self.mqtt_push(key, MqttOut::PubAck(pkid));
            }
            QoS::ExactlyOnce => {
                let fresh = self
                    .mqtt
                    .clients
                    .get_mut(&key)
                    .is_some_and(|c| c.incoming_qos2.insert(pkid));
                if fresh {
                    self.mqtt_route(Some(key), topic, payload, qos, retain);
                    self.mqtt_persist_session(key);
                }
                self.mqtt_push(key, MqttOut::PubRec(pkid));
            }
        }
    }

    /// Routes one MQTT publication to every matching MQTT subscription, once per client at the
    /// highest granted QoS, and updates the retained store. `topic` comes with its WAMP URI
    /// (`bridge::mqtt_to_uri`, `None` when it has none).
    fn mqtt_route(
        &mut self,
        from: Option<u64>,
        (topic, uri): (&str, Option<&str>),
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) {
        let msg = Arc::new(Msg {
            topic: topic.into(),
            payload,
            qos,
        });
        let (mapping, session) = match from.and_then(|k| self.mqtt_client_mapping(k)) {
            Some((m, s)) => (Some(m), s),
            None => (None, None),
        };
        if retain {
            let value = (!msg.payload.is_empty()).then(|| Retained::Mqtt {
                msg: msg.clone(),
                mapping: mapping
                    .clone()
                    .unwrap_or_else(|| Arc::new(PayloadMapping::passthrough())),
                persisted: false,
            });
            self.mqtt_set_retained(topic.to_owned(), value);
        }
        let mut buf = [""; 16];
        let levels = split_levels(topic, &mut buf);
        let mut targets = std::mem::take(&mut self.mqtt.targets);
        self.mqtt_targets_into(levels.as_slice(), &mut targets);
        for (key, granted) in targets.drain(..) {
            self.mqtt_deliver(key, &msg, qos.min(granted), false);
        }
        self.mqtt.targets = targets;
        if let Some(mapping) = mapping {
            self.bridge_mqtt_to_wamp(&mapping, topic, uri, &msg.payload, session);
        }
        trace!(realm = %self.name, %topic, "mqtt published");
    }

    /// Sets (or with `None` deletes) the retained message of an MQTT topic, for both protocols.
    pub(super) fn mqtt_set_retained(&mut self, topic: String, value: Option<Retained>) {
        let persist_ok = !topic.starts_with('$') && self.mqtt.store.is_some();
        // `options.mqtt.max_retained` bounds the store; `$SYS` topics do not count.
        if value.is_some()
            && !topic.starts_with('$')
            && !self.mqtt.retained.contains_key(&topic)
            && self.retained_count() >= self.max_retained
        {
            self.retained_refused += 1;
            debug!(realm = %self.name, %topic, max = self.max_retained, "retained message not kept: options.mqtt.max_retained reached");
            return;
        }
        match value {
            None => {
                if let Some(Retained::Mqtt {
                    persisted: true, ..
                }) = self.mqtt.retained.remove(&topic)
                {
                    self.mqtt.ops.push(StoreOp::DeleteRetained(topic));
                }
            }
            Some(Retained::Mqtt { msg, mapping, .. }) => {
                if persist_ok {
                    self.mqtt.ops.push(StoreOp::PutRetained(StoredMessage {
                        topic: topic.clone(),
                        payload: msg.payload.clone(),
                        qos: msg.qos as u8,
                        retain: true,
                    }));
                }
                self.mqtt.retained.insert(
                    topic,
                    Retained::Mqtt {
                        msg,
                        mapping,
                        persisted: persist_ok,
                    },
                );
            }
            Some(w @ Retained::Wamp(_)) => {
                if let Some(Retained::Mqtt {
                    persisted: true, ..
                }) = self.mqtt.retained.insert(topic.clone(), w)
                {
                    self.mqtt.ops.push(StoreOp::DeleteRetained(topic));
                }
            }
        }
    }

    /// Retained messages that count against `max_retained` (not `$SYS`).
    fn retained_count(&self) -> usize {
        use std::ops::Bound::{Excluded, Included};
        let sys = self
            .mqtt
            .retained
            .range::<str, _>((Included("$"), Excluded("%")))
            .count();
        self.mqtt.retained.len() - sys
    }

    /// The retained messages whose MQTT topic starts with `prefix` (a range of the sorted map,
    /// so a SUBSCRIBE with a literal start does not scan every retained message).
    pub(super) fn retained_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Retained)> + 'a {
        use std::ops::Bound::{Included, Unbounded};
        self.mqtt
            .retained
            .range::<str, _>((Included(prefix), Unbounded))
            .take_while(move |(t, _)| t.starts_with(prefix))
    }

    /// MQTT clients whose filters match a topic (given as levels): once per client, at the
    /// highest granted QoS of its matching subscriptions.
    pub(super) fn mqtt_targets(&self, levels: &[&str]) -> Vec<(u64, QoS)> {
        let mut targets = Vec::new();
        self.mqtt_targets_into(levels, &mut targets);
        targets
    }

    /// `mqtt_targets` into `targets` (cleared first).
    fn mqtt_targets_into(&self, levels: &[&str], targets: &mut Vec<(u64, QoS)>) {
        targets.clear();
        let subs = &self.subs;
        self.sub_index.matches_levels(levels, |id| {
            if let Some(sub) = subs.get(&id) {
                targets.extend(sub.mqtt.iter().copied());
            }
        });
        targets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        targets.dedup_by_key(|t| t.0);
    }

    /// A client's payload mapping and, when connected, its session.
    pub(super) fn mqtt_client_mapping(
        &self,
        key: u64,
    ) -> Option<(Arc<PayloadMapping>, Option<SessionId>)> {
        let c = self.mqtt.clients.get(&key)?;
        Some((
            c.settings.payload_mapping.clone(),
            c.conn.as_ref().map(|(s, _)| *s),
        ))
    }

    /// Delivers a message to one client (for the bridge).
    pub(super) fn mqtt_deliver_pub(&mut self, key: u64, msg: &Arc<Msg>, qos: QoS, retain: bool) {
        self.mqtt_deliver(key, msg, qos, retain);
    }

    fn mqtt_deliver(&mut self, key: u64, msg: &Arc<Msg>, qos: QoS, retain: bool) {
        let Some(c) = self.mqtt.clients.get_mut(&key) else {
            return;
        };
        if c.read_acl.as_ref().is_some_and(|a| !a.allows(&msg.topic)) {
            return;
        }
        if qos == QoS::AtMostOnce {
            match &c.conn {
                Some((session, _)) => {
                    let session = *session;
                    self.mqtt.out.push((
                        key,
                        session,
                        MqttOut::Publish {
                            topic: msg.topic.clone(),
                            payload: msg.payload.clone(),
                            qos,
                            retain,
                            dup: false,
                            pkid: 0,
                        },
                    ));
                }
                // QoS 0 is not queued for offline clients (mosquitto's default).
                None => self.mqtt.dropped += 1,
            }
            return;
        }
        let limits = &c.settings;
        let over_count =
            limits.max_queued_messages > 0 && c.queue.len() >= limits.max_queued_messages;
        let over_bytes = limits.max_queued_bytes > 0
            && c.queued_bytes + msg.payload.len() > limits.max_queued_bytes;
        let window_free =
            c.conn.is_some() && c.inflight.len() < c.settings.max_inflight && c.queue.is_empty();
        if !window_free && (over_count || over_bytes) {
            self.mqtt.dropped += 1;
            return;
        }
        let seq = c.next_seq;
        c.next_seq += 1;
        let p = Pending {
            seq,
            msg: msg.clone(),
            qos,
            retain,
            pkid: None,
            pubrel: false,
        };
        c.queued_bytes += msg.payload.len();
        c.queue.push_back(p);
        let persistent = c.persistent() && self.mqtt.store.is_some();
        if persistent && !window_free {
            let c = self.mqtt.clients.get(&key).expect("present");
            let item = stored(c.queue.back().expect("just pushed"));
            self.mqtt.ops.push(StoreOp::PutQueued {
                client_id: c.id.clone(),
                item,
            });
        }
        self.mqtt_pump(key);
    }

    /// Moves queued messages into the in-flight window and sends them.
    fn mqtt_pump(&mut self, key: u64) {
        let persist = self.mqtt.store.is_some();
        let Some(c) = self.mqtt.clients.get_mut(&key) else {
            return;
        };
        let Some((session, _)) = c.conn.clone() else {
            return;
        };
        while c.inflight.len() < c.settings.max_inflight {
            let Some(mut p) = c.queue.pop_front() else {
                break;
            };
            c.queued_bytes -= p.msg.payload.len();
            let pkid = c.alloc_pkid();
            p.pkid = Some(pkid);
            self.mqtt.out.push((
                key,
                session,
                MqttOut::Publish {
                    topic: p.msg.topic.clone(),
                    payload: p.msg.payload.clone(),
                    qos: p.qos,
                    retain: p.retain,
                    dup: false,
                    pkid,
                },
            ));
            if persist && c.persistent() {
                self.mqtt.ops.push(StoreOp::PutQueued {
                    client_id: c.id.clone(),
                    item: stored(&p),
                });
            }
            c.inflight.insert(pkid, p);
        }
    }

    /// PUBACK / PUBREC / PUBCOMP for our deliveries, PUBREL for the client's QoS 2.
    pub(super) fn mqtt_ack(&mut self, session: SessionId, kind: MqttAck, pkid: u16) {
        let Some(&key) = self.mqtt.by_session.get(&session) else {
            return;
        };
        let persist = self.mqtt.store.is_some();
        let Some(c) = self.mqtt.clients.get_mut(&key) else {
            return;
        };
        let persistent = persist && c.persistent();
        match kind {
            MqttAck::PubRel => {
                let removed = c.incoming_qos2.remove(&pkid);
                self.mqtt_push(key, MqttOut::PubComp(pkid));
                if removed {
                    self.mqtt_persist_session(key);
                }
            }
            MqttAck::PubRec => {
                if let Some(p) = c.inflight.get_mut(&pkid) {
                    if p.qos == QoS::ExactlyOnce {
                        p.pubrel = true;
                        if persistent {
                            let item = stored(p);
                            self.mqtt.ops.push(StoreOp::PutQueued {
                                client_id: c.id.clone(),
                                item,
                            });
                        }
                    }
                }
                self.mqtt_push(key, MqttOut::PubRel(pkid));
            }
            MqttAck::PubAck | MqttAck::PubComp => {
                let done = match c.inflight.get(&pkid) {
                    Some(p) if kind == MqttAck::PubAck && p.qos == QoS::AtLeastOnce => true,
                    Some(p) if kind == MqttAck::PubComp && p.qos == QoS::ExactlyOnce => true,
                    _ => false,
                };
                if done {
                    let p = c.inflight.remove(&pkid).expect("checked");
                    self.mqtt.sent += 1;
                    if persistent {
                        self.mqtt.ops.push(StoreOp::DeleteQueued {
                            client_id: c.id.clone(),
                            seq: p.seq,
                        });
                    }
                    self.mqtt_pump(key);
                }
            }
        }
    }

    /// SUBSCRIBE: grant every valid filter (codec already validated them), SUBACK, then the
    /// retained messages that match.
    pub(super) fn mqtt_subscribe(
        &mut self,
        session: SessionId,
        pkid: u16,
        filters: Vec<(String, Option<QoS>)>,
    ) {
        let Some(&key) = self.mqtt.by_session.get(&session) else {
            return;
        };
        let mut codes = Vec::with_capacity(filters.len());
        let max = self.limits.max_subscriptions;
        let mut filters = filters;
        for (f, q) in &mut filters {
            // Beyond `options.max_subscriptions_per_session`, new filters are refused (0x80).
            let full = self
                .mqtt
                .clients
                .get(&key)
                .is_some_and(|c| c.subs.len() >= max && !c.subs.contains_key(f.as_str()));
            if full && q.is_some() {
                debug!(realm = %self.name, filter = %f, max, "mqtt subscribe refused: options.max_subscriptions_per_session reached");
                *q = None;
            }
            match q {
                Some(q) => {
                    self.mqtt_attach_filter(key, f, *q);
                    codes.push(SubAckCode::Success(*q));
                }
                // Refused by the client's role: SUBACK 0x80 for this filter only.
                None => codes.push(SubAckCode::Failure),
            }
        }
        self.mqtt_persist_session(key);
        self.mqtt_push(key, MqttOut::SubAck { pkid, codes });
        let Some((mapping, _)) = self.mqtt_client_mapping(key) else {
            return;
        };
        for (f, q) in filters.into_iter().filter_map(|(f, q)| Some((f, q?))) {
            let matching: Vec<Arc<Msg>> = self
                .retained_under(&literal_prefix(f.split('/'), '/'))
                .filter(|(t, _)| filter_matches(&f, t))
                .filter_map(|(t, r)| Self::retained_for_mqtt(r, &mapping, t))
                .collect();
            for m in matching {
                let qos = m.qos.min(q);
                self.mqtt_deliver(key, &m, qos, true);
            }
        }
    }

    /// UNSUBSCRIBE.
    pub(super) fn mqtt_unsubscribe(&mut self, session: SessionId, pkid: u16, filters: Vec<String>) {
        let Some(&key) = self.mqtt.by_session.get(&session) else {
            return;
        };
        for f in &filters {
            self.mqtt_detach_filter(key, f);
        }
        self.mqtt_persist_session(key);
        self.mqtt_push(key, MqttOut::UnsubAck(pkid));
    }

    /// Makes the batch durable, then releases the packets it produced. Connections whose
    /// outbox is full are dropped (their persistent state keeps what was in flight).
    pub(super) fn mqtt_flush(&mut self) {
        let mut durable = true;
        if !self.mqtt.ops.is_empty() {
            let ops = std::mem::take(&mut self.mqtt.ops);
            if let Some(store) = &self.mqtt.store {
                if let Err(e) = store.apply(&ops) {
                    durable = false;
                    self.mqtt.store_failures += 1;
                    error!(realm = %self.name, error = %e, "MQTT store write failed; acknowledgements of this batch are withheld and the write is retried");
                    // Retried in front of the next batch (in-order puts and deletes).
                    self.mqtt.ops = ops;
                    // Without durability, do not acknowledge: the clients resend.
                    self.mqtt.out.retain(|(_, _, p)| {
                        !matches!(
                            p,
                            MqttOut::PubAck(_)
                                | MqttOut::PubRec(_)
                                | MqttOut::PubRel(_)
                                | MqttOut::PubComp(_)
                                | MqttOut::SubAck { .. }
                                | MqttOut::UnsubAck(_)
                        )
                    });
                }
            }
        }
        for (key, reply, connected) in std::mem::take(&mut self.mqtt.replies) {
            let session = connected.session;
            // Not durable: no answer, the connection refuses the client (server unavailable).
            if !durable || reply.send(connected).is_err() {
                self.mqtt_detach_conn(key, session, true);
            }
        }
        for (session, msg) in std::mem::take(&mut self.mqtt.wamp_acks) {
            self.send(session, msg);
        }
        while !self.mqtt.out.is_empty() {
            let out = std::mem::take(&mut self.mqtt.out);
            let mut overflowed: Vec<(u64, SessionId)> = Vec::new();
            let mut closed: Vec<SessionId> = Vec::new();
            for (key, session, pkt) in out {
                if overflowed.iter().any(|(_, s)| *s == session) || closed.contains(&session) {
                    continue;
                }
                let Some((s, outbox)) = self.mqtt.clients.get(&key).and_then(|c| c.conn.as_ref())
                else {
                    continue;
                };
                if *s != session {
                    continue;
                }
                let qos0 = matches!(
                    &pkt,
                    MqttOut::Publish {
                        qos: QoS::AtMostOnce,
                        ..
                    }
                );
                // A slow subscriber loses QoS 0 messages, never the in-flight window: they may
                // not take the room kept for it.
                let keep_free = if qos0 {
                    self.mqtt
                        .clients
                        .get(&key)
                        .map_or(0, |c| c.settings.max_inflight + 16)
                } else {
                    0
                };
                match outbox.try_send_keeping(Outgoing::Mqtt(pkt), keep_free) {
                    Ok(()) => {
                        if qos0 {
                            self.mqtt.sent += 1;
                        }
                    }
                    Err(crate::router::outbox::TrySendError::Full(_)) if qos0 => {
                        self.mqtt.dropped += 1;
                    }
                    Err(crate::router::outbox::TrySendError::Full(_)) => {
                        overflowed.push((key, session));
                    }
                    // The connection is ending; its own MqttDisconnect decides about the will.
                    Err(crate::router::outbox::TrySendError::Closed(_)) => closed.push(session),
                }
            }
            for (key, session) in overflowed {
                debug!(realm = %self.name, %session, "mqtt outbox full; dropping the connection");
                self.stats.sessions_overflowed += 1;
                self.mqtt_detach_conn(key, session, false);
            }
            if !self.mqtt.ops.is_empty() {
                // Wills published by dropped connections.
                let ops = std::mem::take(&mut self.mqtt.ops);
                if let Some(store) = &self.mqtt.store {
                    if let Err(e) = store.apply(&ops) {
                        self.mqtt.store_failures += 1;
                        error!(realm = %self.name, error = %e, "MQTT store write failed");
                    }
                }
            }
        }
    }

    /// Periodic work: session expiry and `$SYS` topics.
    pub(super) fn mqtt_tick(&mut self, publish_sys: bool) {
        let now = SystemTime::now();
        let expired: Vec<u64> = self
            .mqtt
            .clients
            .iter()
            .filter(|(_, c)| {
                c.conn.is_none()
                    && c.settings
                        .session_expiry
                        .is_some_and(|e| now.duration_since(c.last_seen).unwrap_or_default() > e)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            debug!(realm = %self.name, "persistent session expired");
            self.mqtt_forget(key);
        }
        if publish_sys {
            self.mqtt_publish_sys();
        }
        self.mqtt_flush();
    }

    fn mqtt_publish_sys(&mut self) {
        let m = &self.mqtt;
        let subscriptions: usize = m.clients.values().map(|c| c.subs.len()).sum();
        let retained = m.retained.len()
            - m.retained
                .range::<str, _>((
                    std::ops::Bound::Included("$SYS/"),
                    std::ops::Bound::Excluded("$SYS0"),
                ))
                .count();
        let values: Vec<(&str, String)> = vec![
            (
                "$SYS/broker/version",
                format!("junction {}", env!("CARGO_PKG_VERSION")),
            ),
            (
                "$SYS/broker/uptime",
                format!("{} seconds", m.started.elapsed().as_secs()),
            ),
            ("$SYS/broker/clients/connected", m.connected.to_string()),
            ("$SYS/broker/clients/total", m.clients.len().to_string()),
            (
                "$SYS/broker/clients/disconnected",
                (m.clients.len() - m.connected.min(m.clients.len())).to_string(),
            ),
            ("$SYS/broker/messages/received", m.received.to_string()),
            ("$SYS/broker/messages/sent", m.sent.to_string()),
            (
                "$SYS/broker/bytes/received",
                m.counters
                    .bytes_received
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            (
                "$SYS/broker/bytes/sent",
                m.counters.bytes_sent.load(Ordering::Relaxed).to_string(),
            ),
            ("$SYS/broker/subscriptions/count", subscriptions.to_string()),
            ("$SYS/broker/retained messages/count", retained.to_string()),
            (
                "$SYS/broker/publish/messages/dropped",
                m.dropped.to_string(),
            ),
            ("$SYS/broker/store/failures", m.store_failures.to_string()),
            (
                "$SYS/broker/bridge/to_wamp",
                self.bridge_stats.to_wamp.to_string(),
            ),
            (
                "$SYS/broker/bridge/dropped",
                self.bridge_stats.dropped.to_string(),
            ),
            (
                "$SYS/broker/bridge/unmappable",
                self.bridge_stats.unmappable.to_string(),
            ),
            (
                "$SYS/broker/retained messages/refused",
                self.retained_refused.to_string(),
            ),
        ];
        for (topic, value) in values {
            // `$` topics have no WAMP URI.
            let topic = (topic, None);
            self.mqtt_route(None, topic, Bytes::from(value), QoS::AtMostOnce, true);
        }
    }
}

/// The literal start of a pattern given as levels (`Some(level)` literal, `None` a wildcard):
/// the levels before the first wildcard joined by `sep`. Every topic the pattern matches starts
/// with it (`a/b/#` → `a/b`, `+/x` → ``).
pub(super) fn literal_prefix<'a>(levels: impl Iterator<Item = &'a str>, sep: char) -> String {
    let mut out = String::new();
    for (i, level) in levels.enumerate() {
        if level == "+" || level == "#" {
            break;
        }
        if i > 0 {
            out.push(sep);
        }
        out.push_str(level);
    }
    out
}

/// The levels of a topic, on the stack for up to 16 levels.
enum Levels<'a, 'b> {
    Stack(&'b [&'a str]),
    Heap(Vec<&'a str>),
}

impl<'a> Levels<'a, '_> {
    fn as_slice(&self) -> &[&'a str] {
        match self {
            Levels::Stack(s) => s,
            Levels::Heap(v) => v,
        }
    }
}

fn split_levels<'a, 'b>(topic: &'a str, buf: &'b mut [&'a str; 16]) -> Levels<'a, 'b> {
    let mut n = 0;
    for level in topic.split('/') {
        if n == buf.len() {
            return Levels::Heap(topic.split('/').collect());
        }
        buf[n] = level;
        n += 1;
    }
    Levels::Stack(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes() {
        let p = |f: &str| literal_prefix(f.split('/'), '/');
        assert_eq!(p("a/b/#"), "a/b");
        assert_eq!(p("a/+/c"), "a");
        assert_eq!(p("a/b"), "a/b");
        assert_eq!(p("#"), "");
        assert_eq!(p("+/x"), "");
        assert_eq!(p("/a/#"), "/a");
    }
    use crate::router::RealmCmd;

    struct Conn {
        session: SessionId,
        present: bool,
        rx: crate::router::OutboxRx,
    }

    impl Conn {
        fn drain(&mut self) -> Vec<MqttOut> {
            let mut v = Vec::new();
            while let Ok(o) = self.rx.try_recv() {
                if let Outgoing::Mqtt(m) = o {
                    v.push(m);
                }
            }
            v
        }
    }

    fn settings() -> Arc<MqttSettings> {
        Arc::new(MqttSettings {
            max_inflight: 2,
            max_queued_messages: 3,
            ..Default::default()
        })
    }

    fn connect(core: &mut RealmCore, id: &str, clean: bool, will: Option<Will>) -> Conn {
        let (tx, rx) = crate::router::outbox::channel(64);
        let (rtx, mut rrx) = oneshot::channel();
        core.handle(RealmCmd::MqttConnect(MqttConnect {
            client_id: id.into(),
            clean,
            will,
            authid: id.into(),
            outbox: tx,
            settings: settings(),
            read_acl: None,
            reply: rtx,
        }));
        core.mqtt_flush();
        let c = rrx.try_recv().expect("connected");
        Conn {
            session: c.session,
            present: c.session_present,
            rx,
        }
    }

    fn publish(core: &mut RealmCore, from: &Conn, topic: &str, qos: QoS, retain: bool, pkid: u16) {
        core.handle(RealmCmd::MqttPublish {
            session: from.session,
            topic: topic.into(),
            uri: crate::wamp::uri::from_mqtt_topic(topic, core.uri_check).map(Arc::from),
            payload: Bytes::from(format!("{topic}:{}", qos as u8)),
            qos,
            retain,
            pkid,
        });
        core.mqtt_flush();
    }

    fn subscribe(core: &mut RealmCore, c: &Conn, filters: &[(&str, QoS)]) {
        core.handle(RealmCmd::MqttSubscribe {
            session: c.session,
            pkid: 1,
            filters: filters
                .iter()
                .map(|(f, q)| ((*f).to_owned(), Some(*q)))
                .collect(),
        });
        core.mqtt_flush();
    }

    fn publishes(out: &[MqttOut]) -> Vec<(String, QoS, bool, bool)> {
        out.iter()
            .filter_map(|m| match m {
                MqttOut::Publish {
                    topic,
                    qos,
                    retain,
                    dup,
                    ..
                } => Some((topic.to_string(), *qos, *retain, *dup)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_max_qos() {
        let mut core = RealmCore::new("r");
        let mut sub = connect(&mut core, "s", true, None);
        let mut publ = connect(&mut core, "p", true, None);
        subscribe(
            &mut core,
            &sub,
            &[
                ("a/#", QoS::AtMostOnce),
                ("a/+", QoS::ExactlyOnce),
                ("+/x/#", QoS::AtLeastOnce),
            ],
        );
        assert!(matches!(sub.drain()[..], [MqttOut::SubAck { .. }]));
        publish(&mut core, &publ, "a/b", QoS::ExactlyOnce, false, 7);
        assert_eq!(
            publishes(&sub.drain()),
            vec![("a/b".into(), QoS::ExactlyOnce, false, false)]
        );
        assert!(matches!(publ.drain()[..], [MqttOut::PubRec(7)]));
        // A duplicate QoS 2 publish before PUBREL is not routed again.
        publish(&mut core, &publ, "a/b", QoS::ExactlyOnce, false, 7);
        assert!(publishes(&sub.drain()).is_empty());
        assert!(
            matches!(publ.drain()[..], [MqttOut::PubRec(7)]),
            "answered again"
        );
        core.handle(RealmCmd::MqttAck {
            session: publ.session,
            kind: MqttAck::PubRel,
            pkid: 7,
        });
        core.mqtt_flush();
        assert!(matches!(publ.drain()[..], [MqttOut::PubComp(7)]));
        // `a/#` matches `a`; `$` topics are not matched by first-level wildcards.
        publish(&mut core, &publ, "a", QoS::AtMostOnce, false, 0);
        publish(&mut core, &publ, "$SYS/x/y", QoS::AtMostOnce, false, 0);
        assert_eq!(
            publishes(&sub.drain()),
            vec![("a".into(), QoS::AtMostOnce, false, false)]
        );
    }

    #[test]
    fn inflight_window_queue_and_acks() {
        let mut core = RealmCore::new("r");
        let mut sub = connect(&mut core, "s", true, None);
        let publ = connect(&mut core, "p", true, None);
        subscribe(&mut core, &sub, &[("t", QoS::AtLeastOnce)]);
        sub.drain();
        for i in 0..4 {
            publish(&mut core, &publ, "t", QoS::AtLeastOnce, false, i + 1);
        }
        let first: Vec<u16> = sub
            .drain()
            .into_iter()
            .filter_map(|m| match m {
                MqttOut::Publish { pkid, .. } => Some(pkid),
                _ => None,
            })
            .collect();
        assert_eq!(first.len(), 2, "max_inflight is 2");
        core.handle(RealmCmd::MqttAck {
            session: sub.session,
            kind: MqttAck::PubAck,
            pkid: first[0],
        });
        core.mqtt_flush();
        assert_eq!(publishes(&sub.drain()).len(), 1, "an ack frees one slot");
    }

    #[test]
    fn retained_will_and_unsubscribe() {
        let mut core = RealmCore::new("r");
        let publ = connect(&mut core, "p", true, None);
        publish(&mut core, &publ, "r/1", QoS::AtLeastOnce, true, 1);
        let mut sub = connect(&mut core, "s", true, None);
        subscribe(&mut core, &sub, &[("r/#", QoS::AtLeastOnce)]);
        let out = sub.drain();
        assert!(
            matches!(out[0], MqttOut::SubAck { .. }),
            "SUBACK comes before retained messages"
        );
        assert_eq!(
            publishes(&out),
            vec![("r/1".into(), QoS::AtLeastOnce, true, false)]
        );
        // Empty payload deletes the retained message.
        core.handle(RealmCmd::MqttPublish {
            session: publ.session,
            topic: "r/1".into(),
            uri: Some("r.1".into()),
            payload: Bytes::new(),
            qos: QoS::AtMostOnce,
            retain: true,
            pkid: 0,
        });
        core.mqtt_flush();
        sub.drain();
        let mut late = connect(&mut core, "late", true, None);
        subscribe(&mut core, &late, &[("r/#", QoS::AtLeastOnce)]);
        assert!(publishes(&late.drain()).is_empty());
        // Will on abnormal disconnect only.
        let will = Will {
            topic: "r/will".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtMostOnce,
            retain: false,
        };
        let w = connect(&mut core, "w", true, Some(will.clone()));
        core.handle(RealmCmd::MqttDisconnect {
            session: w.session,
            clean: true,
        });
        core.mqtt_flush();
        assert!(publishes(&sub.drain()).is_empty());
        let w = connect(&mut core, "w", true, Some(will));
        core.handle(RealmCmd::MqttDisconnect {
            session: w.session,
            clean: false,
        });
        core.mqtt_flush();
        assert_eq!(
            publishes(&sub.drain()),
            vec![("r/will".into(), QoS::AtMostOnce, false, false)]
        );
        // Unsubscribe stops deliveries.
        core.handle(RealmCmd::MqttUnsubscribe {
            session: sub.session,
            pkid: 9,
            filters: vec!["r/#".into()],
        });
        core.mqtt_flush();
        assert!(matches!(sub.drain()[..], [MqttOut::UnsubAck(9)]));
        publish(&mut core, &publ, "r/2", QoS::AtMostOnce, false, 0);
        assert!(publishes(&sub.drain()).is_empty());
    }

    #[test]
    fn persistent_session_queues_redelivers_with_dup_and_bounds() {
        let mut core = RealmCore::new("r");
        let publ = connect(&mut core, "p", true, None);
        let mut sub = connect(&mut core, "s", false, None);
        assert!(!sub.present);
        subscribe(&mut core, &sub, &[("q", QoS::AtLeastOnce)]);
        sub.drain();
        publish(&mut core, &publ, "q", QoS::AtLeastOnce, false, 1);
        assert_eq!(publishes(&sub.drain()).len(), 1);
        // Disconnect without PUBACK; publish more than the queue bound while offline.
        core.handle(RealmCmd::MqttDisconnect {
            session: sub.session,
            clean: false,
        });
        core.mqtt_flush();
        for i in 0..6 {
            publish(&mut core, &publ, "q", QoS::AtLeastOnce, false, 10 + i);
            publish(&mut core, &publ, "q", QoS::AtMostOnce, false, 0);
        }
        let mut again = connect(&mut core, "s", false, None);
        assert!(again.present);
        let got = publishes(&again.drain());
        assert_eq!(
            got[0],
            ("q".into(), QoS::AtLeastOnce, false, true),
            "the unacked one comes back with DUP"
        );
        assert_eq!(
            got.len(),
            2,
            "the in-flight window (2) is full: one redelivery plus one queued"
        );
        assert!(
            core.mqtt.dropped >= 3 + 6,
            "over the queue bound (3) and QoS 0 while offline are dropped"
        );
        // clean_session=1 wipes it.
        core.handle(RealmCmd::MqttDisconnect {
            session: again.session,
            clean: true,
        });
        core.mqtt_flush();
        let fresh = connect(&mut core, "s", true, None);
        assert!(!fresh.present);
    }

    #[test]
    fn takeover_closes_the_old_connection_and_fires_its_will() {
        let mut core = RealmCore::new("r");
        let mut watcher = connect(&mut core, "watch", true, None);
        subscribe(&mut core, &watcher, &[("will/#", QoS::AtMostOnce)]);
        watcher.drain();
        let will = Will {
            topic: "will/a".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtMostOnce,
            retain: false,
        };
        let mut old = connect(&mut core, "a", true, Some(will));
        let _new = connect(&mut core, "a", true, None);
        assert!(matches!(
            old.rx.try_recv(),
            Err(crate::router::outbox::TryRecvError::Disconnected)
        ));
        assert_eq!(
            publishes(&watcher.drain()),
            vec![("will/a".into(), QoS::AtMostOnce, false, false)]
        );
    }
}
