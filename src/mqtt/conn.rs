//! One MQTT connection: CONNECT handshake, keepalive, and the packet pump between the socket
//! and the realm.
//!
//! The connection owns only transport state: the codec, the keepalive timer and the outbox.
//! Session state (subscriptions, packet ids, in-flight QoS 1/2 messages, queues, wills) lives
//! in the realm so that it survives the connection. Everything the realm sends is written with
//! one flush per drained batch.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use super::{write_publish, ConnectReturnCode, MqttCodec, MqttError, Packet};
use crate::auth::mosquitto::Access;
use crate::config::MqttSettings;
use crate::router::authz::{Action, Decision, DynamicCache};
use crate::router::{
    MqttAck, MqttConnect, MqttCounters, MqttOut, OutboxRx, Outgoing, RealmCmd, RealmHandle,
    SessionId,
};
use crate::wire::{Dict, Value};

/// Most outbox items written per flush.
const MAX_BATCH: usize = 256;
/// Initial read buffer (grows on demand; idle connections stay small).
const READ_BUFFER: usize = 512;

/// What an MQTT listener needs per connection.
#[derive(Debug)]
pub struct MqttEndpoint {
    /// Transport settings.
    pub settings: Arc<MqttSettings>,
    /// The realm MQTT clients join (`options.realm`).
    pub realm: RealmHandle,
    /// `options.password_file`, loaded at start.
    pub password_file: Option<Arc<crate::auth::mosquitto::PasswordFile>>,
    /// `options.acl_file`, loaded at start (mosquitto semantics, on top of the role checks).
    pub acl_file: Option<Arc<crate::auth::mosquitto::AclFile>>,
    /// The realms of dynamic authenticators with an `authenticator-realm` (method → realm);
    /// the others are called in `realm`.
    pub authenticator_realms: std::collections::BTreeMap<String, RealmHandle>,
}

impl MqttEndpoint {
    /// The realm whose dealer reaches the dynamic authenticator of `method`.
    fn authenticator_realm(&self, method: &str) -> &RealmHandle {
        self.authenticator_realms.get(method).unwrap_or(&self.realm)
    }
}

/// Failed MQTT authentications since start.
pub static MQTT_AUTH_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Denied MQTT publications since start (dropped; QoS 1/2 still acknowledged, as mosquitto).
pub static MQTT_DENIED_PUBLISHES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);
/// How long a failed MQTT authentication waits before its CONNACK.
const FAILED_AUTH_DELAY: Duration = Duration::from_millis(500);

/// The WAMP URI form of an MQTT topic or filter, for permission checks: levels become URI
/// components, `+` an empty (wildcard) component and a trailing `#` a prefix (`a/#` → `a.`).
pub fn permission_uri(topic: &str) -> String {
    let mut levels: Vec<&str> = topic.split('/').collect();
    let rest = levels.last() == Some(&"#");
    if rest {
        levels.pop();
    }
    let mut uri: String = levels
        .iter()
        .map(|l| if *l == "+" { "" } else { l })
        .collect::<Vec<_>>()
        .join(".");
    if rest && !uri.is_empty() {
        uri.push('.');
    }
    uri
}

/// The mosquitto ACL check, when the transport has an `acl_file`.
fn acl_allows(
    ep: &MqttEndpoint,
    user: Option<&str>,
    client_id: &str,
    topic: &str,
    access: Access,
) -> bool {
    ep.acl_file
        .as_ref()
        .is_none_or(|acl| acl.check(user, client_id, topic, access))
}

/// Topics and filters deeper than the index allows are refused like denied ones.
fn too_deep(topic: &str) -> bool {
    topic.split('/').count() > crate::router::index::MAX_TOPIC_LEVELS
}

/// Who a CONNECT authenticates as: (authid, authrole), or the CONNACK refusal code.
fn authenticate(
    ep: &MqttEndpoint,
    client_id: &str,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> Result<(String, String), ConnectReturnCode> {
    let auth = &ep.settings.auth;
    let has_credentials_source = !auth.ticket.is_empty() || ep.password_file.is_some();
    match (username, password) {
        (Some(user), Some(pass)) if has_credentials_source => {
            if let Some(p) = auth.ticket.get(user) {
                #[allow(deprecated)]
                let ok =
                    ring::constant_time::verify_slices_are_equal(p.ticket.as_bytes(), pass).is_ok();
                if ok {
                    return Ok((user.to_owned(), p.role.clone()));
                }
            } else if let Some(pf) = &ep.password_file {
                if pf.verify(user, pass) {
                    return Ok((user.to_owned(), auth.password_file_role.clone()));
                }
            }
            Err(ConnectReturnCode::BadCredentials)
        }
        (Some(_), _) if has_credentials_source => Err(ConnectReturnCode::BadCredentials),
        // No credential source: like mosquitto with allow_anonymous, a username is just a name.
        (user, _) => match &auth.anonymous {
            Some(role) => Ok((user.unwrap_or(client_id).to_owned(), role.clone())),
            None => Err(ConnectReturnCode::NotAuthorized),
        },
    }
}

/// What dynamic authenticators and authorizers are told about an MQTT client's connection:
/// `authextra` with its client id and `transport` of type "mqtt".
fn client_details(client_id: &str) -> Dict {
    let authextra = Dict::from_iter([("client_id".to_owned(), Value::from(client_id))]);
    let transport = Dict::from_iter([("type".to_owned(), Value::from("mqtt"))]);
    Dict::from_iter([
        ("authextra".to_owned(), Value::Dict(authextra)),
        ("transport".to_owned(), Value::Dict(transport)),
    ])
}

/// The state for asking a dynamic authorizer, when the client's role has one: the session
/// details it is told (as for a WAMP session, `transport.type` "mqtt", the client id in
/// `authextra`).
fn dynamic_authz(
    ep: &MqttEndpoint,
    authrole: &str,
    session: SessionId,
    client_id: &str,
    connect: &super::codec::Connect,
) -> Option<Box<DynamicCache>> {
    if !ep.realm.authz.is_dynamic(authrole) {
        return None;
    }
    let auth = &ep.settings.auth;
    let credentials = !auth.ticket.is_empty()
        || ep.password_file.is_some()
        || auth.dynamic.contains_key("ticket");
    let (authid, authmethod) = match (&connect.username, credentials) {
        (Some(user), true) => (user.as_str(), "ticket"),
        (Some(user), false) => (user.as_str(), "anonymous"),
        (None, _) => (client_id, "anonymous"),
    };
    let mut details = client_details(client_id);
    details.extend([
        ("session".to_owned(), Value::from(session.0)),
        ("authid".to_owned(), Value::from(authid)),
        ("authrole".to_owned(), Value::from(authrole)),
        ("authmethod".to_owned(), Value::from(authmethod)),
        ("authprovider".to_owned(), Value::from("static")),
    ]);
    Some(Box::new(DynamicCache::new(details)))
}

/// Whether the client's role lets it do `action` on the WAMP form of `topic`, asking the role's
/// dynamic authorizer when it has one (a failed authorizer call denies).
async fn role_allows(
    realm: &RealmHandle,
    authrole: &str,
    dynamic: &mut Option<Box<DynamicCache>>,
    topic: &str,
    action: Action,
) -> bool {
    let uri = permission_uri(topic);
    match (realm.authz.decide(authrole, &uri), dynamic) {
        (Decision::Static(g), _) => g.allows(action),
        (Decision::Ask(procedure), Some(cache)) => {
            // Boxed: rare, and it must not grow every connection's future.
            match Box::pin(cache.authorize(realm, procedure, &uri, action, &Dict::new())).await {
                Ok(g) => g.allows(action),
                Err(e) => {
                    warn!(%topic, ?action, authorizer = procedure, error = %e, "mqtt authorization failed");
                    false
                }
            }
        }
        (Decision::Ask(_), None) => false,
    }
}

/// What was decided about the last topic a client published to (static roles only).
struct TopicChecks {
    topic: String,
    /// Role, ACL, `$SYS` and depth checks passed.
    allowed: bool,
    /// The topic's WAMP URI, if it has one.
    uri: Option<Arc<str>>,
}

/// A client certificate (TLS with `ca_certificates`) as the MQTT transport's `auth.tls` sees
/// it: `None` when `tls` does not decide (no `tls` method, or a static one that does not list
/// the certificate: the other methods go on); else the principal, or the refusal. A username,
/// when given, must be the principal's authid (CONNACK 4 otherwise).
async fn authenticate_tls(
    ep: &MqttEndpoint,
    fingerprint: &str,
    client_id: &str,
    username: Option<&str>,
) -> Option<Result<(String, String), ConnectReturnCode>> {
    let auth = &ep.settings.auth;
    let principal = if let Some(procedure) = auth.dynamic.get("tls") {
        let mut info = client_details(client_id);
        let cert = Dict::from_iter([("sha1".to_owned(), Value::from(fingerprint))]);
        if let Some(Value::Dict(t)) = info.get_mut("transport") {
            t.insert("client_cert".into(), Value::Dict(cert));
        }
        info.insert("authmethod".into(), Value::from("tls"));
        let authid = username.unwrap_or(fingerprint);
        let args = vec![
            Value::from(&*ep.realm.name),
            Value::from(authid),
            Value::Dict(info),
        ];
        let answer = ep
            .authenticator_realm("tls")
            .internal_call(procedure, args, AUTHENTICATOR_TIMEOUT)
            .await;
        match answer
            .ok()
            .and_then(|v| crate::wamp::session::principal_from(&v, authid))
        {
            Some(p) => p,
            None => {
                debug!(%client_id, "mqtt tls authenticator refused or failed");
                return Some(Err(ConnectReturnCode::NotAuthorized));
            }
        }
    } else {
        let p = auth.tls.get(fingerprint)?;
        (p.authid.clone(), p.role.clone())
    };
    match username {
        Some(user) if user != principal.0 => Some(Err(ConnectReturnCode::BadCredentials)),
        _ => Some(Ok(principal)),
    }
}

/// How long a dynamic authenticator may take to answer for an MQTT client.
const AUTHENTICATOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Username/password checked by the transport's dynamic ticket authenticator, called as for a
/// WAMP ticket: `authenticator(realm, username, {"authmethod": "ticket", "ticket": password,
/// "authextra": {"client_id": ..}, "transport": {"type": "mqtt"}})`.
async fn authenticate_dynamic(
    ep: &MqttEndpoint,
    procedure: &str,
    client_id: &str,
    username: &str,
    password: Option<&[u8]>,
) -> Result<(String, String), ConnectReturnCode> {
    let Some(ticket) = password.and_then(|p| std::str::from_utf8(p).ok()) else {
        return Err(ConnectReturnCode::BadCredentials);
    };
    let mut info = client_details(client_id);
    info.extend([
        ("authmethod".to_owned(), Value::from("ticket")),
        ("ticket".to_owned(), Value::from(ticket)),
    ]);
    let args = vec![
        Value::from(&*ep.realm.name),
        Value::from(username),
        Value::Dict(info),
    ];
    match ep
        .authenticator_realm("ticket")
        .internal_call(procedure, args, AUTHENTICATOR_TIMEOUT)
        .await
    {
        Ok(v) => crate::wamp::session::principal_from(&v, username)
            .ok_or(ConnectReturnCode::BadCredentials),
        Err(e) => {
            debug!(%client_id, error = %e, "mqtt authenticator refused or failed");
            Err(ConnectReturnCode::BadCredentials)
        }
    }
}

/// Why an MQTT connection ended.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("client sent DISCONNECT")]
    Disconnect,
    #[error("connection closed by the client")]
    Closed,
    #[error("keepalive expired")]
    Keepalive,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("malformed packet")]
    Malformed(#[source] MqttError),
    #[error("router shutdown")]
    Shutdown,
    #[error("dropped by the realm (takeover or outbox overflow)")]
    Dropped,
    #[error("write failed")]
    Write(#[source] MqttError),
}

/// Counts bytes in both directions for `$SYS`.
struct Counted<IO> {
    inner: IO,
    counters: Arc<MqttCounters>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counters.bytes_received.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters
                .bytes_sent
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn random_client_id() -> String {
    format!("junction-{:016x}", rand::random::<u64>())
}

async fn recv_outbox(rx: &mut OutboxRx, buf: &mut Vec<Outgoing>) -> usize {
    rx.recv_many(buf, MAX_BATCH).await
}

fn encode(dst: &mut BytesMut, item: Outgoing) -> Result<(), MqttError> {
    let Outgoing::Mqtt(out) = item else {
        return Ok(());
    };
    match out {
        MqttOut::Publish {
            topic,
            payload,
            qos,
            retain,
            dup,
            pkid,
        } => write_publish(dst, &topic, qos, retain, dup, pkid, &payload),
        MqttOut::PubAck(id) => Packet::PubAck(id).encode(dst),
        MqttOut::PubRec(id) => Packet::PubRec(id).encode(dst),
        MqttOut::PubRel(id) => Packet::PubRel(id).encode(dst),
        MqttOut::PubComp(id) => Packet::PubComp(id).encode(dst),
        MqttOut::SubAck { pkid, codes } => Packet::SubAck { pkid, codes }.encode(dst),
        MqttOut::UnsubAck(id) => Packet::UnsubAck(id).encode(dst),
    }
}

type MqttFramed<IO> = Framed<Counted<IO>, MqttCodec>;

/// A connection that completed its CONNECT handshake.
struct Accepted<IO> {
    framed: MqttFramed<IO>,
    connect: super::codec::Connect,
    client_id: String,
    authrole: String,
    session: crate::router::SessionId,
    rx: OutboxRx,
}

/// Serves one MQTT connection from its first byte (CONNECT).
///
/// The handshake runs in its own boxed future: it is large and runs once, while the packet loop
/// runs for the connection's whole life, so only the loop's state stays in the task.
pub async fn serve<IO>(io: IO, ep: Arc<MqttEndpoint>, cancel: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(accepted) = Box::pin(handshake(io, &ep)).await {
        run(accepted, ep, cancel).await;
    }
}

/// CONNECT to CONNACK: `None` when the connection was refused or failed (already answered).
async fn handshake<IO>(io: IO, ep: &Arc<MqttEndpoint>) -> Option<Accepted<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = Counted {
        inner: io,
        counters: ep.realm.mqtt_counters.clone(),
    };
    let mut framed =
        Framed::with_capacity(io, MqttCodec::new(ep.settings.max_packet_size), READ_BUFFER);
    // tokio-util starts the write buffer at 8 KiB; an idle MQTT client needs none.
    *framed.write_buffer_mut() = BytesMut::new();
    let connect = match tokio::time::timeout(ep.settings.connect_timeout, framed.next()).await {
        Ok(Some(Ok(Packet::Connect(c)))) => c,
        Ok(Some(Ok(other))) => {
            debug!(
                packet = other.name(),
                "first packet is not CONNECT; closing"
            );
            return None;
        }
        Ok(Some(Err(e))) => {
            debug!(error = %e, "bad CONNECT");
            if let Some(code) = e.connack_code() {
                let _ = framed
                    .send(Packet::ConnAck {
                        session_present: false,
                        code,
                    })
                    .await;
            }
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            debug!("no CONNECT before the connect timeout");
            return None;
        }
    };
    if connect.will.as_ref().is_some_and(|w| too_deep(&w.topic)) {
        debug!("will topic has too many levels: refused");
        let _ = framed
            .send(Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::IdentifierRejected,
            })
            .await;
        return None;
    }
    let refuse = |code| Packet::ConnAck {
        session_present: false,
        code,
    };
    let client_id = if connect.client_id.is_empty() {
        if !connect.clean_session {
            debug!("empty client id with clean_session=0: identifier rejected");
            let _ = framed
                .send(refuse(ConnectReturnCode::IdentifierRejected))
                .await;
            return None;
        }
        random_client_id()
    } else {
        connect.client_id.clone()
    };
    let max_ka = ep.settings.max_keepalive;
    if max_ka < u16::MAX && (connect.keep_alive == 0 || connect.keep_alive > max_ka) {
        debug!(
            keep_alive = connect.keep_alive,
            max_ka, "keepalive out of range: identifier rejected"
        );
        let _ = framed
            .send(refuse(ConnectReturnCode::IdentifierRejected))
            .await;
        return None;
    }
    let by_cert = match crate::transport::listen::peer_cert_sha1() {
        Some(fp) => authenticate_tls(ep, &fp, &client_id, connect.username.as_deref()).await,
        None => None,
    };
    let dynamic_ticket = ep.settings.auth.dynamic.get("ticket");
    let who = match (by_cert, dynamic_ticket, &connect.username) {
        (Some(by_cert), _, _) => by_cert,
        (None, Some(procedure), Some(user)) => {
            authenticate_dynamic(ep, procedure, &client_id, user, connect.password.as_deref()).await
        }
        (None, _, _) => authenticate(
            ep,
            &client_id,
            connect.username.as_deref(),
            connect.password.as_deref(),
        ),
    };
    let (authid, authrole) = match who {
        Ok(who) => who,
        Err(code) => {
            MQTT_AUTH_FAILURES.fetch_add(1, Ordering::Relaxed);
            debug!(%client_id, user = connect.username.as_deref().unwrap_or(""), ?code, "mqtt authentication failed");
            tokio::time::sleep(FAILED_AUTH_DELAY).await;
            let _ = framed.send(refuse(code)).await;
            return None;
        }
    };
    if !ep.realm.authz.has_role(&authrole) {
        let _ = framed.send(refuse(ConnectReturnCode::NotAuthorized)).await;
        return None;
    }
    tracing::Span::current().record("realm", &*ep.realm.name);
    let capacity = ep.settings.max_inflight * 2 + 1024;
    let (tx, rx) = crate::router::outbox::channel(capacity);
    let (rtx, rrx) = oneshot::channel();
    let req = MqttConnect {
        client_id: client_id.clone(),
        clean: connect.clean_session,
        will: connect.will.clone(),
        authid,
        outbox: tx,
        settings: ep.settings.clone(),
        read_acl: ep.acl_file.as_ref().map(|acl| crate::router::ReadAcl {
            acl: acl.clone(),
            username: connect.username.clone(),
            client_id: client_id.clone(),
        }),
        reply: rtx,
    };
    if ep.realm.tx.send(RealmCmd::MqttConnect(req)).await.is_err() {
        let _ = framed
            .send(refuse(ConnectReturnCode::ServerUnavailable))
            .await;
        return None;
    }
    let Ok(joined) = rrx.await else {
        let _ = framed
            .send(refuse(ConnectReturnCode::ServerUnavailable))
            .await;
        return None;
    };
    let session = joined.session;
    tracing::Span::current().record("session", session.0);
    if framed
        .send(Packet::ConnAck {
            session_present: joined.session_present,
            code: ConnectReturnCode::Accepted,
        })
        .await
        .is_err()
    {
        let _ = ep
            .realm
            .tx
            .send(RealmCmd::MqttDisconnect {
                session,
                clean: false,
            })
            .await;
        return None;
    }
    debug!(%client_id, clean = connect.clean_session, keep_alive = connect.keep_alive, "mqtt session up");
    Some(Accepted {
        framed,
        connect,
        client_id,
        authrole,
        session,
        rx,
    })
}

/// Queues `pkt` in the write buffer (a plain function: the packet is not kept in the loop's
/// future while the flush that follows waits).
fn queue<IO>(framed: &mut MqttFramed<IO>, pkt: Packet) -> Result<(), MqttError> {
    pkt.encode(framed.write_buffer_mut())
}

/// The packet loop of an accepted connection, until it ends.
async fn run<IO>(mut accepted: Accepted<IO>, ep: Arc<MqttEndpoint>, cancel: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Borrowed, not moved out: moved fields would take space in the future twice.
    let Accepted {
        framed,
        connect,
        client_id,
        authrole,
        session,
        rx,
    } = &mut accepted;
    let session = *session;
    let mut dynamic = dynamic_authz(&ep, authrole, session, client_id, connect);
    let mut last_topic: Option<Box<TopicChecks>> = None;
    // Keepalive: the client must send something within 1.5 × keep_alive (MQTT-3.1.2-24).
    let grace = (connect.keep_alive > 0)
        .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    let mut deadline = grace.map_or(far, |g| Instant::now() + g);
    // Starts empty: an idle connection should not hold a batch buffer (recv_many grows it).
    let mut items = Vec::new();
    let realm = ep.realm.tx.clone();
    let end: End = loop {
        // Framed reserves only one spare byte before a read: with a small buffer holding a
        // partial packet, a busy client would be read a few bytes per syscall. Keep room for a
        // real read; an idle connection never gets here often enough to grow.
        {
            let rb = framed.read_buffer_mut();
            if rb.capacity() - rb.len() < 256 {
                rb.reserve(4096);
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => break End::Shutdown,
            n = recv_outbox(rx, &mut items) => {
                if n == 0 {
                    break End::Dropped;
                }
                let mut failed = None;
                for item in items.drain(..) {
                    if let Err(e) = encode(framed.write_buffer_mut(), item) {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    break End::Write(e);
                }
                if let Err(e) = SinkExt::<Packet>::flush(framed).await {
                    break End::Write(e);
                }
            }
            () = sleep_until(deadline) => break End::Keepalive,
            pkt = framed.next() => {
                let pkt = match pkt {
                    None => break End::Closed,
                    Some(Err(e)) => break End::Malformed(e),
                    Some(Ok(p)) => p,
                };
                if let Some(g) = grace {
                    deadline = Instant::now() + g;
                }
                trace!(packet = pkt.name(), "received");
                // A client usually publishes to few topics: the last topic's checks are kept.
                let (denied, uri) = match &pkt {
                    Packet::Publish(p) => match &last_topic {
                        Some(m) if m.topic == p.topic => (!m.allowed, m.uri.clone()),
                        _ => {
                            let allowed = !too_deep(&p.topic) && !p.topic.starts_with("$SYS/") && role_allows(&ep.realm, authrole, &mut dynamic, &p.topic, Action::Publish).await && acl_allows(&ep, connect.username.as_deref(), client_id, &p.topic, Access::Write);
                            let uri: Option<Arc<str>> = crate::wamp::uri::from_mqtt_topic(&p.topic, ep.realm.config.uri_check).map(Arc::from);
                            // A dynamic authorizer's answers are kept by its own rules.
                            if dynamic.is_none() {
                                last_topic = Some(Box::new(TopicChecks { topic: p.topic.clone(), allowed, uri: uri.clone() }));
                            }
                            (!allowed, uri)
                        }
                    },
                    _ => (false, None),
                };
                let cmd = match pkt {
                    Packet::Publish(p) if denied => {
                        // Denied: dropped and counted; QoS 1/2 are still acknowledged (mosquitto).
                        MQTT_DENIED_PUBLISHES.fetch_add(1, Ordering::Relaxed);
                        debug!(topic = %p.topic, "mqtt publish denied");
                        let ack = match p.qos {
                            super::QoS::AtMostOnce => None,
                            super::QoS::AtLeastOnce => Some(Packet::PubAck(p.pkid)),
                            super::QoS::ExactlyOnce => Some(Packet::PubRec(p.pkid)),
                        };
                        if let Some(ack) = ack {
                            if let Err(e) = queue(framed, ack) {
                                break End::Write(e);
                            }
                            if let Err(e) = SinkExt::<Packet>::flush(&mut *framed).await {
                                break End::Write(e);
                            }
                        }
                        continue;
                    }
                    Packet::Publish(p) => RealmCmd::MqttPublish {
                        session,
                        topic: p.topic,
                        uri,
                        payload: p.payload,
                        qos: p.qos,
                        retain: p.retain,
                        pkid: p.pkid,
                    },
                    Packet::PubAck(id) => RealmCmd::MqttAck { session, kind: MqttAck::PubAck, pkid: id },
                    Packet::PubRec(id) => RealmCmd::MqttAck { session, kind: MqttAck::PubRec, pkid: id },
                    Packet::PubRel(id) => RealmCmd::MqttAck { session, kind: MqttAck::PubRel, pkid: id },
                    Packet::PubComp(id) => RealmCmd::MqttAck { session, kind: MqttAck::PubComp, pkid: id },
                    Packet::Subscribe { pkid, filters } => {
                        let mut granted = Vec::with_capacity(filters.len());
                        for (f, q) in filters {
                            let ok = !too_deep(&f) && role_allows(&ep.realm, authrole, &mut dynamic, &f, Action::Subscribe).await && acl_allows(&ep, connect.username.as_deref(), client_id, &f, Access::Subscribe);
                            if !ok {
                                debug!(filter = %f, "mqtt subscribe denied");
                            }
                            granted.push((f, ok.then_some(q)));
                        }
                        RealmCmd::MqttSubscribe { session, pkid, filters: granted }
                    }
                    Packet::Unsubscribe { pkid, filters } => RealmCmd::MqttUnsubscribe { session, pkid, filters },
                    Packet::PingReq => {
                        if let Err(e) = queue(framed, Packet::PingResp) {
                            break End::Write(e);
                        }
                        if let Err(e) = SinkExt::<Packet>::flush(&mut *framed).await {
                            break End::Write(e);
                        }
                        continue;
                    }
                    Packet::Disconnect => break End::Disconnect,
                    other => break End::Protocol(format!("unexpected {} from a client", other.name())),
                };
                if crate::router::send_cmd(&realm, cmd).await.is_err() {
                    break End::Shutdown;
                }
                // `send_cmd` does not touch tokio's task budget when the realm has room (a
                // tokio `send` would): without this, a busy client's task keeps the worker and
                // the realm falls behind (-25 % on MQTT QoS 0 1->10).
                tokio::task::consume_budget().await;
            }
        }
    };
    // A server shutdown is not the client's fault: no will then (the session stays stored).
    let clean = matches!(end, End::Disconnect | End::Shutdown);
    // Boxed: a rare wait, kept out of the loop's state.
    let _ = Box::pin(realm.send(RealmCmd::MqttDisconnect { session, clean })).await;
    let _ = SinkExt::<Packet>::close(framed).await;
    match &end {
        End::Malformed(e) => debug!(reason = %end, error = %e, "mqtt connection ended"),
        _ => debug!(reason = %end, "mqtt connection ended"),
    }
}

/// Byte-stream view of a WebSocket carrying MQTT in binary messages (MQTT over WebSocket:
/// packets may span messages and messages may hold several packets).
pub struct WsByteStream<S> {
    ws: S,
    buf: Bytes,
    done: bool,
}

impl<S> WsByteStream<S> {
    /// Wraps an established WebSocket.
    pub fn new(ws: S) -> Self {
        Self {
            ws,
            buf: Bytes::new(),
            done: false,
        }
    }
}

type WsResult = Result<WsMessage, tokio_tungstenite::tungstenite::Error>;

impl<S> AsyncRead for WsByteStream<S>
where
    S: Stream<Item = WsResult>
        + Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.remaining());
                out.put_slice(&self.buf[..n]);
                self.buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) | Poll::Ready(Some(Ok(WsMessage::Close(_)))) => {
                    self.done = true;
                }
                Poll::Ready(Some(Ok(WsMessage::Binary(b)))) => self.buf = b,
                Poll::Ready(Some(Ok(WsMessage::Text(_)))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text frame on an MQTT WebSocket",
                    )))
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsByteStream<S>
where
    S: Stream<Item = WsResult>
        + Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.ws).poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            Poll::Ready(Ok(())) => {}
        }
        match Pin::new(&mut self.ws).start_send(WsMessage::Binary(Bytes::copy_from_slice(buf))) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(e) => Poll::Ready(Err(io::Error::other(e))),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
