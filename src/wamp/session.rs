//! The WAMP session state machine of one connection, independent of the transport.
//!
//! A transport decodes frames into `Message`s and calls `WampSession::handle`; the session
//! validates, authorizes, and turns them into realm commands, or answers locally (WELCOME,
//! ABORT, ERROR for invalid URIs and denied actions) by pushing into `out`, which the transport
//! writes. The only awaits are the realm queue (backpressure) and the join reply.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::debug;

use crate::config::{MatchPolicy, TransportAuth};
use crate::router::authz::{Action, Decision, DynamicCache, Grant};
use crate::router::{
    CallRequest, InvokePolicy, OutboxRx, PublishRequest, RealmCmd, RealmHandle, SessionId,
    SessionInfo,
};
use crate::wamp::message::{code, dict};
use crate::wamp::uri;
use crate::wamp::{Message, Payload};
use crate::wire::{Dict, Value};

/// Close reasons and error URIs used by the router.
pub mod reason {
    #![allow(missing_docs)]
    pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
    pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
    pub const NO_SUCH_ROLE: &str = "wamp.error.no_such_role";
    pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    pub const AUTHORIZATION_FAILED: &str = "wamp.error.authorization_failed";
    pub const INVALID_URI: &str = "wamp.error.invalid_uri";
    pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
    pub const OPTION_NOT_ALLOWED: &str = "wamp.error.option_not_allowed";
    pub const SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
    pub const GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
    pub const CLOSE_NORMAL: &str = "wamp.close.normal";
}

/// The realms a transport gives access to, by name.
pub type RealmMap = HashMap<String, RealmHandle>;

/// Per-transport session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Realms reachable through this transport.
    pub realms: Arc<RealmMap>,
    /// Role given to anonymous sessions.
    pub anonymous_role: Arc<str>,
    /// Authentication methods this transport accepts.
    pub auth: Arc<TransportAuth>,
    /// Outbox capacity (messages).
    pub outbox_messages: usize,
    /// The transport type as a dynamic authorizer sees it (`websocket`, `rawsocket`).
    pub transport: &'static str,
}

/// What the transport should do after a message.
#[derive(Debug)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The session joined: read deliveries from this outbox from now on.
    Joined(OutboxRx),
    /// Write `out`, then close the connection.
    Close,
}

#[derive(Debug)]
enum State {
    Hello,
    /// CHALLENGE sent; waiting for AUTHENTICATE.
    Challenged(Box<Pending>),
    Established {
        realm: RealmHandle,
        id: SessionId,
        who: Who,
    },
    Closed,
}

/// Who a joined session is, for authorization.
#[derive(Debug)]
struct Who {
    authrole: String,
    /// The session's dynamic authorizer state, for a role with an `authorizer`.
    dynamic: Option<Box<DynamicCache>>,
}

/// A session between CHALLENGE and AUTHENTICATE.
#[derive(Debug)]
struct Pending {
    realm: RealmHandle,
    authid: String,
    method: &'static str,
    /// The role on success; `None` when the authid is unknown (the answer is checked anyway, so
    /// unknown and known users take the same path).
    role: Option<String>,
    /// What AUTHENTICATE.Signature must be.
    expected: Expected,
    callee_cancels: bool,
}

/// How an AUTHENTICATE signature is checked.
#[derive(Debug)]
enum Expected {
    /// Equal to this secret (ticket) or computed value (WAMP-CRA).
    Secret(String),
    /// Whatever the dynamic authenticator (`procedure`) accepts (ticket).
    Dynamic { procedure: String },
    /// An Ed25519 signature of `challenge` by `key` (cryptosign), hex, optionally followed by
    /// the challenge itself (Autobahn sends signature || message).
    Ed25519 {
        challenge: [u8; 32],
        key: Option<[u8; 32]>,
    },
}

impl Expected {
    fn verify(&self, signature: &str) -> bool {
        match self {
            Expected::Secret(s) => secret_eq(signature.as_bytes(), s.as_bytes()),
            Expected::Dynamic { .. } => false,
            Expected::Ed25519 { challenge, key } => {
                let Some(key) = key else { return false };
                let Some(bytes) = decode_hex(signature) else {
                    return false;
                };
                let sig = match bytes.len() {
                    64 => &bytes[..],
                    96 if bytes[64..] == challenge[..] => &bytes[..64],
                    _ => return false,
                };
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                    .verify(challenge, sig)
                    .is_ok()
            }
        }
    }
}

/// How long a dynamic authenticator may take.
const AUTHENTICATOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The (authid, role) a dynamic authenticator grants: a role name, or `{"role": .., "authid"?:
/// ..}` (an `authid` replaces the one the client asked for).
pub(crate) fn principal_from(v: &Value, authid: &str) -> Option<(String, String)> {
    match v {
        Value::Str(role) => Some((authid.to_owned(), role.clone())),
        Value::Dict(d) => {
            let role = d.get("role")?.as_str()?.to_owned();
            let authid = d.get("authid").and_then(Value::as_str).unwrap_or(authid);
            Some((authid.to_owned(), role))
        }
        _ => None,
    }
}

/// A WAMP-CRA user from a dynamic authenticator's answer (`secret`, `role`, optional `salt`,
/// `iterations`, `keylen`).
fn cra_user_from(d: &Dict) -> Option<crate::config::CraUser> {
    let secret = d.get("secret")?.as_str()?.to_owned();
    let role = d.get("role")?.as_str()?.to_owned();
    let salt = d.get("salt").and_then(Value::as_str).map(|salt| {
        let n = |k: &str, default: u64| d.get(k).and_then(Value::as_u64).unwrap_or(default);
        (
            salt.to_owned(),
            n("iterations", 1000) as u32,
            n("keylen", 32) as u32,
        )
    });
    Some(crate::config::CraUser { secret, role, salt })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Failed authentications since start (all transports).
pub static AUTH_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// How long a failed authentication waits before its ABORT (slows down guessing).
const FAILED_AUTH_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// Constant-time comparison of secrets.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)]
    ring::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Autobahn's `derive_key`: base64(PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen)).
fn derive_key(secret: &str, salt: &str, iterations: u32, keylen: u32) -> String {
    use base64::Engine;
    let mut out = vec![0u8; keylen.clamp(1, 1024) as usize];
    let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("max(1) is non-zero");
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt.as_bytes(),
        secret.as_bytes(),
        &mut out,
    );
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// WAMP-CRA signature: base64(HMAC-SHA256(key, challenge)).
fn cra_sign(key: &[u8], challenge: &str) -> String {
    use base64::Engine;
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&k, challenge.as_bytes()).as_ref())
}

/// UTC time as ISO 8601 (for the WAMP-CRA challenge).
fn iso_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One connection's WAMP session.
#[derive(Debug)]
pub struct WampSession {
    cfg: SessionConfig,
    /// SHA-1 fingerprint of the TLS client certificate, if any (`tls` authentication).
    peer_cert_sha1: Option<String>,
    state: State,
}

fn abort(out: &mut Vec<Message>, reason: &str, message: &str) -> Flow {
    out.push(Message::Abort {
        details: dict([("message", Value::from(message))]),
        reason: reason.to_owned(),
    });
    Flow::Close
}

fn error(out: &mut Vec<Message>, request_type: u64, request: u64, err: &str, message: &str) {
    out.push(Message::Error {
        request_type,
        request,
        details: Dict::new(),
        error: err.to_owned(),
        payload: Payload {
            args: Some(vec![Value::from(message)]),
            kwargs: None,
            raw: None,
        },
    });
}

fn features(names: &[&str]) -> Value {
    let f: Dict = names
        .iter()
        .map(|n| ((*n).to_owned(), Value::Bool(true)))
        .collect();
    Value::Dict(dict([("features", Value::Dict(f))]))
}

fn opt_bool(opts: &Dict, key: &str) -> Result<Option<bool>, String> {
    match opts.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("option {key} must be a boolean")),
    }
}

fn opt_ids(opts: &Dict, key: &str) -> Result<Option<Vec<u64>>, String> {
    match opts.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::List(l)) => l
            .iter()
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| format!("option {key} must be a list of session ids"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("option {key} must be a list of session ids")),
    }
}

fn opt_match(opts: &Dict) -> Result<MatchPolicy, String> {
    match opts.get("match") {
        None | Some(Value::Null) => Ok(MatchPolicy::Exact),
        Some(Value::Str(s)) => match s.as_str() {
            "exact" => Ok(MatchPolicy::Exact),
            "prefix" => Ok(MatchPolicy::Prefix),
            "wildcard" => Ok(MatchPolicy::Wildcard),
            other => Err(format!("unknown match policy {other:?}")),
        },
        Some(_) => Err("option match must be a string".to_owned()),
    }
}

/// The payload passthru keys of a PUBLISH's options (`ppt_*`, Crossbar's `enc_*`), copied to
/// the EVENT details; an error when the payload and the options disagree.
fn passthru_details(opts: &Dict, payload: &Payload) -> Result<Dict, String> {
    const KEYS: [&str; 7] = [
        "ppt_scheme",
        "ppt_serializer",
        "ppt_cipher",
        "ppt_keyid",
        "enc_algo",
        "enc_key",
        "enc_serializer",
    ];
    let d: Dict = KEYS
        .iter()
        .filter_map(|k| opts.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let declared = d.contains_key("ppt_scheme") || d.contains_key("enc_algo");
    match (declared, payload.raw.is_some()) {
        (true, false) => {
            Err("ppt_scheme/enc_algo given but the payload is not a single binary".into())
        }
        (false, true) => Err("a binary payload needs ppt_scheme (payload passthru mode)".into()),
        _ => Ok(d),
    }
}

/// What `admit` gives: ready at once for static roles (no state kept in the session's
/// future), a boxed future when a dynamic authorizer is asked.
type Admission<'a> = futures_util::future::Either<
    std::future::Ready<Option<Grant>>,
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<Grant>> + Send + 'a>>,
>;

/// A request being admitted: where its ERROR goes and what it asks for.
struct Request<'a> {
    out: &'a mut Vec<Message>,
    request_type: u64,
    request: u64,
    uri: &'a str,
    action: Action,
}

impl Request<'_> {
    /// ("topic", "publish to") and the like, for messages.
    fn words(&self) -> (&'static str, &'static str) {
        match self.action {
            Action::Publish => ("topic", "publish to"),
            Action::Subscribe => ("topic", "subscribe to"),
            Action::Register => ("procedure", "register"),
            Action::Call => ("procedure", "call"),
        }
    }

    fn fail(&mut self, reason: &str, text: &str) -> Option<Grant> {
        error(self.out, self.request_type, self.request, reason, text);
        None
    }

    /// The grant if it allows the action, else the `not_authorized` ERROR.
    fn decide(mut self, g: Grant) -> Option<Grant> {
        if g.allows(self.action) {
            return Some(g);
        }
        debug!(uri = %self.uri, action = ?self.action, "denied");
        let text = format!("not authorized to {} {:?}", self.words().1, self.uri);
        self.fail(reason::NOT_AUTHORIZED, &text)
    }
}

/// Checks a request's URI (for `policy`) and the role's permission for `action` (asking the
/// role's dynamic authorizer when it has one); answers the ERROR (`invalid_uri`,
/// `not_authorized` or `authorization_failed`) and gives `None` when either fails.
#[allow(clippy::too_many_arguments)]
fn admit<'a>(
    out: &'a mut Vec<Message>,
    request_type: u64,
    request: u64,
    uri: &'a str,
    policy: MatchPolicy,
    realm: &'a RealmHandle,
    who: &'a mut Who,
    action: Action,
    options: &'a Dict,
) -> Admission<'a> {
    use futures_util::future::Either;
    let mut req = Request {
        out,
        request_type,
        request,
        uri,
        action,
    };
    if !uri::is_valid(uri, policy, realm.config.uri_check) {
        let text = format!("invalid {} URI {uri:?}", req.words().0);
        return Either::Left(std::future::ready(req.fail(reason::INVALID_URI, &text)));
    }
    match (realm.authz.decide(&who.authrole, uri), &mut who.dynamic) {
        (Decision::Static(g), _) => Either::Left(std::future::ready(req.decide(g))),
        (Decision::Ask(procedure), Some(cache)) => Either::Right(Box::pin(async move {
            match cache
                .authorize(realm, procedure, uri, action, options)
                .await
            {
                Ok(g) => req.decide(g),
                Err(e) => {
                    tracing::warn!(%uri, ?action, authorizer = procedure, error = %e, "authorization failed");
                    let text = format!("authorization to {} {uri:?} failed: {e}", req.words().1);
                    req.fail(reason::AUTHORIZATION_FAILED, &text)
                }
            }
        })),
        // A role that became dynamic after the session joined cannot happen (roles are fixed
        // per realm); deny rather than guess.
        (Decision::Ask(_), None) => Either::Left(std::future::ready(req.decide(Grant::default()))),
    }
}

/// Options junction does not implement yet: refused with `wamp.error.option_not_allowed`
/// rather than silently ignored.
fn unsupported(opts: &Dict, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find(|k| {
            opts.get(**k)
                .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)))
        })
        .map(|k| format!("option {k} is not supported yet"))
}

impl WampSession {
    /// A session waiting for HELLO.
    /// A session waiting for HELLO on a connection whose TLS client certificate (if any) has
    /// this fingerprint.
    pub fn with_peer_cert(cfg: SessionConfig, peer_cert_sha1: Option<String>) -> Self {
        Self {
            cfg,
            state: State::Hello,
            peer_cert_sha1,
        }
    }

    /// A session waiting for HELLO (the client certificate comes from the connection task).
    pub fn new(cfg: SessionConfig) -> Self {
        Self {
            cfg,
            state: State::Hello,
            peer_cert_sha1: crate::transport::listen::peer_cert_sha1(),
        }
    }

    /// The session ID once joined.
    pub fn id(&self) -> Option<SessionId> {
        match &self.state {
            State::Established { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Whether the session has joined a realm.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// A decode error or similar: ABORT with protocol_violation and close.
    pub async fn protocol_violation(&mut self, why: &str, out: &mut Vec<Message>) -> Flow {
        debug!(why, "protocol violation");
        self.leave().await;
        abort(out, reason::PROTOCOL_VIOLATION, why)
    }

    /// Leaves the realm (idempotent). Call when the connection ends for any reason.
    pub async fn leave(&mut self) {
        if let State::Established { realm, id, .. } =
            std::mem::replace(&mut self.state, State::Closed)
        {
            // If the realm is gone (shutdown), there is nothing to leave.
            let _ = crate::router::send_cmd(&realm.tx, RealmCmd::Leave(id)).await;
        }
    }

    /// Router-initiated close at shutdown: GOODBYE `wamp.close.system_shutdown`.
    pub async fn shutdown(&mut self, out: &mut Vec<Message>) {
        if self.is_established() {
            out.push(Message::Goodbye {
                details: dict([("message", Value::from("the router is shutting down"))]),
                reason: reason::SYSTEM_SHUTDOWN.to_owned(),
            });
        }
        self.leave().await;
    }

    /// Handles one message from the peer.
    pub async fn handle(&mut self, msg: Message, out: &mut Vec<Message>) -> Flow {
        match &self.state {
            State::Hello => match msg {
                // Boxed (here and below): the handshake futures are large and run once per
                // session; inline they would size every established connection's future.
                Message::Hello { realm, details } => {
                    Box::pin(self.hello(realm, details, out)).await
                }
                other => {
                    let why = format!("expected HELLO, got message type {}", other.code());
                    Box::pin(self.protocol_violation(&why, out)).await
                }
            },
            State::Challenged(_) => match msg {
                Message::Authenticate { signature, .. } => {
                    Box::pin(self.authenticate(signature, out)).await
                }
                other => {
                    let why = format!("expected AUTHENTICATE, got message type {}", other.code());
                    Box::pin(self.protocol_violation(&why, out)).await
                }
            },
            State::Established { .. } => self.established(msg, out).await,
            State::Closed => Flow::Close,
        }
    }

    async fn hello(&mut self, realm_name: String, details: Dict, out: &mut Vec<Message>) -> Flow {
        let Some(realm) = self.cfg.realms.get(&realm_name).cloned() else {
            self.state = State::Closed;
            return abort(
                out,
                reason::NO_SUCH_REALM,
                &format!("no realm named {realm_name:?}"),
            );
        };
        let roles = match details.get("roles") {
            Some(Value::Dict(r)) if !r.is_empty() => r,
            _ => {
                return self
                    .protocol_violation("HELLO.Details.roles must be a non-empty dict", out)
                    .await
            }
        };
        let callee_cancels = roles
            .get("callee")
            .and_then(|c| {
                c.as_dict()?
                    .get("features")?
                    .as_dict()?
                    .get("call_canceling")?
                    .as_bool()
            })
            .unwrap_or(false);
        let requested_authid = details
            .get("authid")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        let methods: Vec<&str> = match details.get("authmethods") {
            None => vec!["anonymous"],
            Some(v) => v
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .collect(),
        };
        let auth = self.cfg.auth.clone();
        let authextra = details
            .get("authextra")
            .cloned()
            .unwrap_or_else(|| Value::Dict(Dict::new()));
        for method in methods {
            match method {
                "anonymous" | "tls" if auth.dynamic.contains_key(method) => {
                    // The authenticator gets what Crossbar gives it: the method, the client's
                    // authextra and, for tls, the client certificate (by its fingerprint).
                    let mut info = dict([
                        ("authmethod", Value::from(method)),
                        ("authextra", authextra.clone()),
                    ]);
                    let authid = if method == "tls" {
                        let Some(fp) = self.peer_cert_sha1.clone() else {
                            return self.refuse("no client certificate", out).await;
                        };
                        let cert = dict([("sha1", Value::from(fp.as_str()))]);
                        let transport = dict([("client_cert", Value::Dict(cert))]);
                        info.insert("transport".into(), Value::Dict(transport));
                        requested_authid.map_or(fp, str::to_owned)
                    } else {
                        requested_authid.map_or_else(random_authid, str::to_owned)
                    };
                    let procedure = &auth.dynamic[method];
                    let answer = self
                        .call_authenticator(method, &realm, procedure, &authid, info)
                        .await;
                    let method = if method == "tls" { "tls" } else { "anonymous" };
                    return match answer.ok().and_then(|v| principal_from(&v, &authid)) {
                        Some((authid, role)) => {
                            self.join(realm, authid, role, method, callee_cancels, out)
                                .await
                        }
                        None => self.refuse("refused by the authenticator", out).await,
                    };
                }
                "anonymous" => {
                    if let Some(role) = &auth.anonymous {
                        let authid = requested_authid.map_or_else(random_authid, str::to_owned);
                        return self
                            .join(
                                realm,
                                authid,
                                role.clone(),
                                "anonymous",
                                callee_cancels,
                                out,
                            )
                            .await;
                    }
                }
                "ticket" if !auth.ticket.is_empty() || auth.dynamic.contains_key("ticket") => {
                    let authid = requested_authid.unwrap_or_default().to_owned();
                    let (role, expected) = match auth.dynamic.get("ticket") {
                        // The authenticator decides once the ticket is there.
                        Some(procedure) => (
                            None,
                            Expected::Dynamic {
                                procedure: procedure.clone(),
                            },
                        ),
                        None => {
                            let principal = auth.ticket.get(&authid);
                            let ticket = principal.map_or_else(random_authid, |p| p.ticket.clone());
                            (principal.map(|p| p.role.clone()), Expected::Secret(ticket))
                        }
                    };
                    return self.challenge(
                        realm,
                        "ticket",
                        authid,
                        role,
                        expected,
                        Dict::new(),
                        callee_cancels,
                        out,
                    );
                }
                "wampcra" if !auth.wampcra.is_empty() || auth.dynamic.contains_key("wampcra") => {
                    let authid = requested_authid.unwrap_or_default().to_owned();
                    // A dynamic authenticator returns the user's secret and role (as Crossbar's).
                    let dynamic_user = match auth.dynamic.get("wampcra") {
                        Some(procedure) => {
                            let details = dict([("authmethod", Value::from("wampcra"))]);
                            match self
                                .call_authenticator("wampcra", &realm, procedure, &authid, details)
                                .await
                            {
                                Ok(Value::Dict(d)) => cra_user_from(&d),
                                _ => None,
                            }
                        }
                        None => None,
                    };
                    let user = dynamic_user.as_ref().or_else(|| auth.wampcra.get(&authid));
                    let role = user.map(|u| u.role.clone());
                    let challenge = Value::Dict(dict([
                        ("authid", Value::from(authid.as_str())),
                        ("authrole", Value::from(role.clone().unwrap_or_default())),
                        ("authmethod", Value::from("wampcra")),
                        ("authprovider", Value::from("static")),
                        ("session", Value::from(crate::router::realm::random_id())),
                        ("nonce", Value::from(random_authid())),
                        ("timestamp", Value::from(iso_now())),
                    ]));
                    let challenge = String::from_utf8(
                        crate::wire::Serializer::Json
                            .encode_to_bytes(&challenge)
                            .to_vec(),
                    )
                    .unwrap_or_default();
                    let mut extra = dict([("challenge", Value::from(challenge.as_str()))]);
                    let expected = match user {
                        Some(u) => {
                            let key = match &u.salt {
                                Some((salt, iterations, keylen)) => {
                                    extra.insert("salt".into(), Value::from(salt.as_str()));
                                    extra.insert(
                                        "iterations".into(),
                                        Value::from(u64::from(*iterations)),
                                    );
                                    extra.insert("keylen".into(), Value::from(u64::from(*keylen)));
                                    derive_key(&u.secret, salt, *iterations, *keylen)
                                }
                                None => u.secret.clone(),
                            };
                            cra_sign(key.as_bytes(), &challenge)
                        }
                        None => cra_sign(random_authid().as_bytes(), &challenge),
                    };
                    let expected = Expected::Secret(expected);
                    return self.challenge(
                        realm,
                        "wampcra",
                        authid,
                        role,
                        expected,
                        extra,
                        callee_cancels,
                        out,
                    );
                }
                "tls" if !auth.tls.is_empty() => {
                    // The certificate was verified against `ca_certificates` in the handshake;
                    // its fingerprint names the principal.
                    let found = self.peer_cert_sha1.as_ref().and_then(|fp| auth.tls.get(fp));
                    match found {
                        Some(p) if requested_authid.is_none_or(|a| a == p.authid) => {
                            let (authid, role) = (p.authid.clone(), p.role.clone());
                            return self
                                .join(realm, authid, role, "tls", callee_cancels, out)
                                .await;
                        }
                        _ => return self.refuse("no known client certificate", out).await,
                    }
                }
                "cryptosign"
                    if !auth.cryptosign.is_empty() || auth.dynamic.contains_key("cryptosign") =>
                {
                    let extra = details.get("authextra").and_then(Value::as_dict);
                    if extra
                        .and_then(|e| e.get("channel_binding"))
                        .is_some_and(|v| *v != Value::Null)
                    {
                        self.state = State::Closed;
                        return abort(
                            out,
                            reason::NOT_AUTHORIZED,
                            "cryptosign channel binding is not supported",
                        );
                    }
                    let pubkey = extra
                        .and_then(|e| e.get("pubkey"))
                        .and_then(Value::as_str)
                        .and_then(decode_hex)
                        .and_then(|k| <[u8; 32]>::try_from(k).ok());
                    // A dynamic authenticator names the key (and role) to check the signature
                    // with; a failed call leaves no key, so the answer cannot verify (the same
                    // path as an unknown authid).
                    let (authid, role, key) = if let Some(procedure) =
                        auth.dynamic.get("cryptosign")
                    {
                        let authid = requested_authid.unwrap_or_default().to_owned();
                        let info = dict([
                            ("authmethod", Value::from("cryptosign")),
                            ("authextra", authextra.clone()),
                        ]);
                        let answer = self
                            .call_authenticator("cryptosign", &realm, procedure, &authid, info)
                            .await
                            .ok();
                        let granted = answer.as_ref().and_then(|v| {
                            let key = v
                                .as_dict()?
                                .get("pubkey")?
                                .as_str()
                                .and_then(decode_hex)
                                .and_then(|k| <[u8; 32]>::try_from(k).ok())?;
                            let (authid, role) = principal_from(v, &authid)?;
                            Some((authid, role, key))
                        });
                        match granted {
                            // A client that announced another key cannot sign for this one.
                            Some((a, r, k)) if pubkey.is_none_or(|p| p == k) => {
                                (a, Some(r), Some(k))
                            }
                            _ => (authid, None, None),
                        }
                    } else {
                        // The principal: by authid when given, else the one whose key it is.
                        let found = match requested_authid {
                            Some(a) => auth.cryptosign.get(a).map(|p| (a.to_owned(), p)),
                            None => auth
                                .cryptosign
                                .iter()
                                .find(|(_, p)| {
                                    pubkey.is_some_and(|k| p.authorized_keys.contains(&k))
                                })
                                .map(|(a, p)| (a.clone(), p)),
                        };
                        match found {
                            Some((a, p)) => {
                                let key = pubkey.filter(|k| p.authorized_keys.contains(k));
                                (a, Some(p.role.clone()), key)
                            }
                            None => (requested_authid.unwrap_or_default().to_owned(), None, None),
                        }
                    };
                    let challenge: [u8; 32] = rand::random();
                    let extra = dict([
                        ("challenge", Value::from(encode_hex(&challenge))),
                        ("channel_binding", Value::Null),
                    ]);
                    let expected = Expected::Ed25519 { challenge, key };
                    return self.challenge(
                        realm,
                        "cryptosign",
                        authid,
                        role,
                        expected,
                        extra,
                        callee_cancels,
                        out,
                    );
                }
                _ => {}
            }
        }
        self.state = State::Closed;
        abort(
            out,
            reason::NO_AUTH_METHOD,
            "none of the offered authmethods is accepted by this transport",
        )
    }

    /// Sends the CHALLENGE of `method` and waits for AUTHENTICATE, which must match `expected`;
    /// `role` is the role on success (`None`: the answer is checked anyway, then refused).
    #[allow(clippy::too_many_arguments)]
    fn challenge(
        &mut self,
        realm: RealmHandle,
        method: &'static str,
        authid: String,
        role: Option<String>,
        expected: Expected,
        extra: Dict,
        callee_cancels: bool,
        out: &mut Vec<Message>,
    ) -> Flow {
        let pending = Pending {
            realm,
            method,
            role,
            expected,
            authid,
            callee_cancels,
        };
        self.state = State::Challenged(Box::new(pending));
        out.push(Message::Challenge {
            method: method.into(),
            extra,
        });
        Flow::Continue
    }

    /// Calls the dynamic authenticator `procedure` of `method` as Crossbar does,
    /// `procedure(realm, authid, details)` with the realm the client joins, through the dealer of
    /// the method's `authenticator-realm`, else of `joining`.
    async fn call_authenticator(
        &self,
        method: &str,
        joining: &RealmHandle,
        procedure: &str,
        authid: &str,
        details: Dict,
    ) -> Result<Value, String> {
        let realm = self
            .cfg
            .auth
            .dynamic_realm
            .get(method)
            .and_then(|r| self.cfg.realms.get(r))
            .unwrap_or(joining);
        let args = vec![
            Value::from(&*joining.name),
            Value::from(authid),
            Value::Dict(details),
        ];
        realm
            .internal_call(procedure, args, AUTHENTICATOR_TIMEOUT)
            .await
    }

    /// A failed authentication in HELLO: counted, delayed, ABORT `not_authorized`.
    async fn refuse(&mut self, why: &str, out: &mut Vec<Message>) -> Flow {
        AUTH_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        debug!(why, "authentication failed");
        tokio::time::sleep(FAILED_AUTH_DELAY).await;
        self.state = State::Closed;
        abort(out, reason::NOT_AUTHORIZED, why)
    }

    /// AUTHENTICATE after our CHALLENGE.
    async fn authenticate(&mut self, signature: String, out: &mut Vec<Message>) -> Flow {
        let State::Challenged(p) = std::mem::replace(&mut self.state, State::Closed) else {
            return Flow::Close;
        };
        let (ok, role, authid) = match &p.expected {
            Expected::Dynamic { procedure } => {
                let details = dict([
                    ("authmethod", Value::from("ticket")),
                    ("ticket", Value::from(signature.as_str())),
                ]);
                let answer = self
                    .call_authenticator("ticket", &p.realm, procedure, &p.authid, details)
                    .await;
                match answer.ok().and_then(|v| principal_from(&v, &p.authid)) {
                    Some((authid, role)) => (true, Some(role), authid),
                    None => (false, None, p.authid.clone()),
                }
            }
            _ => (
                p.expected.verify(&signature),
                p.role.clone(),
                p.authid.clone(),
            ),
        };
        let p = Pending { authid, ..*p };
        match (ok, role) {
            (true, Some(role)) => {
                let (realm, authid, method, cc) = (p.realm, p.authid, p.method, p.callee_cancels);
                self.join(realm, authid, role, method, cc, out).await
            }
            _ => {
                AUTH_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                debug!(authid = %p.authid, method = p.method, "authentication failed");
                tokio::time::sleep(FAILED_AUTH_DELAY).await;
                abort(out, reason::NOT_AUTHORIZED, "authentication failed")
            }
        }
    }

    /// Joins the realm as `authid`/`authrole` and answers WELCOME.
    async fn join(
        &mut self,
        realm: RealmHandle,
        authid: String,
        authrole: String,
        authmethod: &'static str,
        callee_cancels: bool,
        out: &mut Vec<Message>,
    ) -> Flow {
        let realm_name = realm.name.to_string();
        let authprovider = if self.cfg.auth.dynamic.contains_key(authmethod) {
            "dynamic"
        } else {
            "static"
        };
        if !realm.authz.has_role(&authrole) {
            self.state = State::Closed;
            return abort(
                out,
                reason::NO_SUCH_ROLE,
                &format!("realm has no role {authrole:?}"),
            );
        }
        let (tx, rx) = crate::router::outbox::channel(self.cfg.outbox_messages);
        let (rtx, rrx) = oneshot::channel();
        let info = SessionInfo {
            authid: authid.clone(),
            authrole: authrole.clone(),
            callee_cancels,
        };
        let joined = realm
            .tx
            .send(RealmCmd::Join {
                info,
                outbox: tx,
                reply: rtx,
            })
            .await
            .is_ok();
        let id = match (joined, rrx.await) {
            (true, Ok(id)) => id,
            _ => {
                self.state = State::Closed;
                return abort(out, reason::SYSTEM_SHUTDOWN, "the realm is shutting down");
            }
        };
        tracing::Span::current()
            .record("realm", realm_name.as_str())
            .record("session", id.0);
        let welcome = dict([
            ("realm", Value::from(realm_name.as_str())),
            ("authid", Value::from(authid.as_str())),
            ("authrole", Value::from(authrole.as_str())),
            ("authmethod", Value::from(authmethod)),
            ("authprovider", Value::from(authprovider)),
            (
                "roles",
                Value::Dict(dict([
                    (
                        "broker",
                        features(&[
                            "publisher_exclusion",
                            "publisher_identification",
                            "subscriber_blackwhite_listing",
                            "pattern_based_subscription",
                            "event_retention",
                            "payload_passthru_mode",
                            "payload_transparency",
                        ]),
                    ),
                    (
                        "dealer",
                        features(&[
                            "caller_identification",
                            "pattern_based_registration",
                            "shared_registration",
                            "call_canceling",
                        ]),
                    ),
                ])),
            ),
        ]);
        out.push(Message::Welcome {
            session: id.0,
            details: welcome,
        });
        let authid_for_authorizer = authid;
        // What a dynamic authorizer is told about the session (Crossbar's session details).
        let dynamic = realm.authz.is_dynamic(&authrole).then(|| {
            let transport = dict([("type", Value::from(self.cfg.transport))]);
            Box::new(DynamicCache::new(dict([
                ("session", Value::from(id.0)),
                ("authid", Value::from(authid_for_authorizer)),
                ("authrole", Value::from(authrole.as_str())),
                ("authmethod", Value::from(authmethod)),
                ("authprovider", Value::from(authprovider)),
                ("authextra", Value::Null),
                ("transport", Value::Dict(transport)),
            ])))
        });
        self.state = State::Established {
            realm,
            id,
            who: Who { authrole, dynamic },
        };
        Flow::Joined(rx)
    }

    async fn established(&mut self, msg: Message, out: &mut Vec<Message>) -> Flow {
        let State::Established { realm, id, who } = &mut self.state else {
            return Flow::Close;
        };
        let (realm, id) = (realm.clone(), *id);
        let cmd = match msg {
            Message::Goodbye { .. } => {
                out.push(Message::Goodbye {
                    details: Dict::new(),
                    reason: reason::GOODBYE_AND_OUT.into(),
                });
                self.leave().await;
                return Flow::Close;
            }
            Message::Publish {
                request,
                options,
                topic,
                payload,
            } => {
                let t = code::PUBLISH;
                let Some(g) = admit(
                    out,
                    t,
                    request,
                    &topic,
                    MatchPolicy::Exact,
                    &realm,
                    who,
                    Action::Publish,
                    &options,
                )
                .await
                else {
                    return Flow::Continue;
                };
                let acknowledge = opt_bool(&options, "acknowledge")
                    .ok()
                    .flatten()
                    .unwrap_or(false);
                let parsed = (|| -> Result<PublishRequest, String> {
                    if let Some(e) = unsupported(
                        &options,
                        &[
                            "exclude_authid",
                            "exclude_authrole",
                            "eligible_authid",
                            "eligible_authrole",
                        ],
                    ) {
                        return Err(e);
                    }
                    Ok(PublishRequest {
                        request,
                        topic,
                        acknowledge,
                        exclude_me: opt_bool(&options, "exclude_me")?.unwrap_or(true),
                        exclude: opt_ids(&options, "exclude")?.unwrap_or_default(),
                        eligible: opt_ids(&options, "eligible")?,
                        disclose: g.disclose.publisher
                            || opt_bool(&options, "disclose_me")?.unwrap_or(false),
                        retain: opt_bool(&options, "retain")?.unwrap_or(false),
                        ppt: passthru_details(&options, &payload)?,
                        payload,
                    })
                })();
                match parsed {
                    Ok(p) => RealmCmd::Publish(id, p),
                    Err(e) => {
                        // An unacknowledged publish gets no answer, per spec.
                        if acknowledge {
                            error(out, t, request, reason::INVALID_ARGUMENT, &e);
                        }
                        return Flow::Continue;
                    }
                }
            }
            Message::Subscribe {
                request,
                options,
                topic,
            } => {
                let t = code::SUBSCRIBE;
                let policy = match opt_match(&options) {
                    Ok(p) => p,
                    Err(e) => {
                        error(out, t, request, reason::INVALID_ARGUMENT, &e);
                        return Flow::Continue;
                    }
                };
                let get_retained = match opt_bool(&options, "get_retained") {
                    Ok(g) => g.unwrap_or(false),
                    Err(e) => {
                        error(out, t, request, reason::INVALID_ARGUMENT, &e);
                        return Flow::Continue;
                    }
                };
                if admit(
                    out,
                    t,
                    request,
                    &topic,
                    policy,
                    &realm,
                    who,
                    Action::Subscribe,
                    &options,
                )
                .await
                .is_none()
                {
                    return Flow::Continue;
                }
                RealmCmd::Subscribe {
                    session: id,
                    request,
                    get_retained,
                    topic,
                    policy,
                }
            }
            Message::Unsubscribe {
                request,
                subscription,
            } => RealmCmd::Unsubscribe {
                session: id,
                request,
                subscription,
            },
            Message::Register {
                request,
                options,
                procedure,
            } => {
                let t = code::REGISTER;
                let policy = match opt_match(&options) {
                    Ok(p) => p,
                    Err(e) => {
                        error(out, t, request, reason::INVALID_ARGUMENT, &e);
                        return Flow::Continue;
                    }
                };
                let invoke = match options.get("invoke") {
                    None | Some(Value::Null) => InvokePolicy::Single,
                    Some(Value::Str(s)) => match InvokePolicy::from_name(s) {
                        Some(p) => p,
                        None => {
                            error(
                                out,
                                t,
                                request,
                                reason::INVALID_ARGUMENT,
                                &format!("unknown invoke policy {s:?}"),
                            );
                            return Flow::Continue;
                        }
                    },
                    Some(_) => {
                        error(
                            out,
                            t,
                            request,
                            reason::INVALID_ARGUMENT,
                            "option invoke must be a string",
                        );
                        return Flow::Continue;
                    }
                };
                if let Some(e) = unsupported(&options, &["concurrency", "force_reregister"]) {
                    error(out, t, request, reason::OPTION_NOT_ALLOWED, &e);
                    return Flow::Continue;
                }
                if admit(
                    out,
                    t,
                    request,
                    &procedure,
                    policy,
                    &realm,
                    who,
                    Action::Register,
                    &options,
                )
                .await
                .is_none()
                {
                    return Flow::Continue;
                }
                RealmCmd::Register {
                    session: id,
                    request,
                    procedure,
                    policy,
                    invoke,
                }
            }
            Message::Unregister {
                request,
                registration,
            } => RealmCmd::Unregister {
                session: id,
                request,
                registration,
            },
            Message::Call {
                request,
                options,
                procedure,
                payload,
            } => {
                let t = code::CALL;
                let Some(g) = admit(
                    out,
                    t,
                    request,
                    &procedure,
                    MatchPolicy::Exact,
                    &realm,
                    who,
                    Action::Call,
                    &options,
                )
                .await
                else {
                    return Flow::Continue;
                };
                let timeout = options.get("timeout").and_then(Value::as_u64).unwrap_or(0);
                if timeout != 0 {
                    error(
                        out,
                        t,
                        request,
                        reason::OPTION_NOT_ALLOWED,
                        "option timeout is not supported yet",
                    );
                    return Flow::Continue;
                }
                let disclose = match opt_bool(&options, "disclose_me") {
                    Ok(d) => g.disclose.caller || d.unwrap_or(false),
                    Err(e) => {
                        error(out, t, request, reason::INVALID_ARGUMENT, &e);
                        return Flow::Continue;
                    }
                };
                RealmCmd::Call(
                    id,
                    CallRequest {
                        request,
                        procedure,
                        payload,
                        disclose,
                    },
                )
            }
            Message::Cancel { request, options } => {
                let mode = options
                    .get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("killnowait")
                    .to_owned();
                if !matches!(mode.as_str(), "skip" | "kill" | "killnowait") {
                    error(
                        out,
                        code::CANCEL,
                        request,
                        reason::INVALID_ARGUMENT,
                        &format!("unknown cancel mode {mode:?}"),
                    );
                    return Flow::Continue;
                }
                RealmCmd::Cancel {
                    session: id,
                    request,
                    mode,
                }
            }
            Message::Yield {
                request, payload, ..
            } => RealmCmd::Yield {
                session: id,
                request,
                payload,
            },
            Message::Error {
                request_type: code::INVOCATION,
                request,
                details,
                error,
                payload,
            } => RealmCmd::InvocationError {
                session: id,
                request,
                error,
                details,
                payload,
            },
            other => {
                let why = format!(
                    "message type {} is not allowed from a client here",
                    other.code()
                );
                return Box::pin(self.protocol_violation(&why, out)).await;
            }
        };
        if crate::router::send_cmd(&realm.tx, cmd).await.is_err() {
            out.push(Message::Goodbye {
                details: Dict::new(),
                reason: reason::SYSTEM_SHUTDOWN.into(),
            });
            self.state = State::Closed;
            return Flow::Close;
        }
        // As a tokio `send` would: use the task's budget, so a busy session yields to the realm
        // (see the MQTT loop).
        tokio::task::consume_budget().await;
        Flow::Continue
    }
}

/// A random anonymous authid like Crossbar's (`XXXX-XXXX-XXXX`).
fn random_authid() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXY3456789";
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}
