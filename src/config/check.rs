//! The config walker: raw JSON tree → validated `NodeConfig`, collecting every problem.
//!
//! `Checker` walks the `serde_json::Value` tree from the root. At each node it dispatches on
//! `type` where Crossbar does (workers, transports, endpoints, auth methods) and deserializes the
//! node into its `raw` struct through `serde_path_to_error`, prefixing the node's own path, so
//! every error names the full key path from the root. Child nodes are walked from the `Value`
//! even when their parent failed to deserialize, so one typo does not hide problems elsewhere.
//!
//! Each walker returns `Some` only when its subtree added no error; cross-checks that depend on
//! a subtree (the roles a transport's `auth` hands out must exist in a realm; the realm and roles
//! of MQTT settings must exist in the worker) are skipped when that subtree already failed, so
//! one mistake is not reported twice. Warnings (valid but probably unintended: an MQTT
//! `payload_mapping` without a `""` catch-all, ...) are collected apart and returned with a
//! valid config only.
//!
//! Inside `auth`, nodes that may hold a secret are checked by hand (`secret_object`, `secret`),
//! so that no message quotes a value there: only JSON types are named.
//! Node-wide uniqueness (realm names, realm store files, worker ids, TCP and Unix listeners) is
//! tracked in `Checker` and reported on the later occurrence.
//!
//! Relative file system paths (static `directory`, Unix socket `path`, TLS files) are resolved
//! against the checker's base directory (the node directory, or the current directory for
//! `parse_json`) and checked where a missing file would only fail later at start-up: static
//! directories must exist, TLS files must load (`crate::tls::server_config`), an MQTT
//! `password_file` must load (`crate::auth::mosquitto::PasswordFile::load`), and so must an
//! MQTT `acl_file` (`crate::auth::mosquitto::AclFile::load`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use super::raw::{
    RawAllow, RawAnonymousStatic, RawAuthDynamic, RawController, RawControllerOptions, RawCraUser,
    RawCryptosignPrincipal, RawCryptosignStatic, RawDisclose, RawJson, RawJsonOptions, RawMatch,
    RawMqtt, RawMqttOptions, RawMqttWebSocket, RawNode, RawNodeInfo, RawPayloadDynamic,
    RawPayloadNative, RawPayloadPlain, RawPermission, RawRawSocket, RawRawSocketOptions, RawRealm,
    RawRealmMqtt, RawRealmOptions, RawRedirect, RawRole, RawRouter, RawStatic, RawStaticOptions,
    RawTcpEndpoint, RawTicketPrincipal, RawTicketStatic, RawTls, RawTlsPrincipal, RawTlsStatic,
    RawUniversal, RawUniversalMqtt, RawUniversalRawSocket, RawUniversalWeb, RawUnixEndpoint,
    RawUriCheck, RawWampCraStatic, RawWeb, RawWebOptions, RawWebSocket, RawWebSocketOptions,
    RawWebSocketService, RawWorkerOptions,
};
use super::syntax;
use super::{
    Allow, ConfigError, CraUser, CryptosignPrincipal, Disclose, Endpoint, IpVersion, MatchPolicy,
    MqttSettings, MqttTransport, NodeConfig, PayloadFormat, PayloadMapping, Permission,
    RawSocketSettings, RawSocketTransport, RealmConfig, RealmMqtt, RoleConfig, RouterWorker,
    SessionLimits, StaticService, TcpEndpoint, TicketPrincipal, TlsConfig, TlsVersion,
    TransportAuth, TransportConfig, UniversalTransport, UnixEndpoint, UriCheck, WebPaths,
    WebService, WebSocketOptions, WebSocketSettings, WebSocketTransport, WebTransport,
};
use crate::wire::Serializer;

/// Largest `max_message_size` and `max_frame_size` junction accepts (16 MiB).
pub(super) const MAX_MESSAGE_SIZE_LIMIT: u64 = 16 << 20;
/// Largest `outbox_messages` junction accepts.
pub(super) const MAX_OUTBOX_MESSAGES: u64 = 1 << 20;
/// `backlog` of a TCP endpoint without one (Crossbar's default).
const DEFAULT_BACKLOG: u32 = 1024;
/// The role of anonymous sessions when `auth` is absent or does not name one (Crossbar's
/// default).
pub(super) const DEFAULT_ANONYMOUS_ROLE: &str = "anonymous";

/// Crossbar worker types junction does not run.
const UNSUPPORTED_WORKER_TYPES: &[&str] = &["container", "guest", "proxy", "websocket-testee"];
/// `cache_timeout` of a static web service without one (Crossbar's default: 12 hours).
pub(super) const DEFAULT_CACHE_TIMEOUT: u64 = 12 * 60 * 60;
/// The directory index file of static web services.
const DEFAULT_INDEX_FILE: &str = "index.html";
/// Longest Unix socket path in bytes (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_UNIX_PATH: usize = 107;

/// Listening transport types junction implements.
const TRANSPORT_TYPES: &[&str] = &["websocket", "rawsocket", "web", "universal", "mqtt"];
/// Crossbar listening transport types junction does not implement yet.
const UNSUPPORTED_TRANSPORT_TYPES: &[&str] = &["flashpolicy", "websocket.testee", "stream.testee"];
/// Largest MQTT `max_packet_size`: the largest packet MQTT's remaining-length field can
/// describe (268 435 455 bytes, 256 MiB - 1).
pub(super) const MAX_MQTT_PACKET_SIZE: u64 = 268_435_455;
/// Largest MQTT `max_inflight` (packet identifiers are 16 bits, 0 excluded).
pub(super) const MAX_MQTT_INFLIGHT: u64 = 65_535;
/// Largest MQTT `max_keepalive` (the CONNECT keepalive field is 16 bits).
pub(super) const MAX_MQTT_KEEPALIVE: u64 = 65_535;
/// `payload_mapping` types: Crossbar's three, then junction's `utf8`.
const PAYLOAD_FORMATS: &[&str] = &["passthrough", "native", "dynamic", "utf8"];
/// Serializers of a `native` payload mapping (Crossbar's list).
const PAYLOAD_SERIALIZERS: &[&str] = &["json", "cbor", "msgpack", "ubjson"];
/// The warning for a `payload_mapping` without a `""` key.
const NO_CATCH_ALL: &str =
    "no \"\" catch-all: URIs that match no key do not cross between MQTT and WAMP";
/// What the anonymous role is for, in "role ... is not defined" errors.
const ANONYMOUS_PURPOSE: &str = "for anonymous sessions";
/// `iterations` of a salted WAMP-CRA secret without one (Autobahn's `derive_key` default).
const DEFAULT_CRA_ITERATIONS: u32 = 1000;
/// `keylen` of a salted WAMP-CRA secret without one (Autobahn's `derive_key` default).
const DEFAULT_CRA_KEYLEN: u32 = 32;
/// Largest WAMP-CRA `keylen` in bytes.
const MAX_CRA_KEYLEN: u64 = 1024;
/// Crossbar listening endpoint types junction does not implement yet.
const UNSUPPORTED_ENDPOINT_TYPES: &[&str] = &["twisted", "onion"];
/// Web path service types junction implements.
const WEB_SERVICES: &[&str] = &["static", "redirect", "json", "nodeinfo", "websocket"];
/// Crossbar web path service types junction does not implement yet.
const UNSUPPORTED_WEB_SERVICES: &[&str] = &[
    "reverseproxy",
    "websocket-reverseproxy",
    "wsgi",
    "cgi",
    "resource",
    "path",
    "longpoll",
    "caller",
    "publisher",
    "webhook",
    "archive",
    "wap",
    "catalog",
    "none",
];
/// Authentication methods junction implements (`wampcra` and `cryptosign` not for MQTT).
const AUTH_METHODS: &[&str] = &["anonymous", "ticket", "wampcra", "cryptosign", "tls"];
/// Crossbar authentication methods junction does not implement yet.
const UNSUPPORTED_AUTH_METHODS: &[&str] =
    &["cookie", "scram", "cryptosign-proxy", "anonymous-proxy"];
/// Crossbar node shutdown modes (`controller.options.shutdown`).
const SHUTDOWN_MODES: &[&str] = &[
    "shutdown_on_shutdown_requested",
    "shutdown_on_worker_exit",
    "shutdown_on_worker_exit_with_error",
    "shutdown_on_last_worker_exit",
];

/// A key path from the root, rendered like `workers[0].transports[1].endpoint.port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Path(String);

impl Path {
    /// The root (renders as `(root)`).
    pub(super) fn root() -> Self {
        Self::default()
    }

    /// The path of `key` inside this object.
    pub(super) fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Self(key.to_owned())
        } else {
            Self(format!("{}.{key}", self.0))
        }
    }

    /// The path of element `index` of this list.
    pub(super) fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path of the entry `key` of a map whose keys may contain dots or be empty (a WAMP
    /// URI prefix of `payload_mapping`): the key as a JSON string in brackets,
    /// `payload_mapping["com.example."]`.
    pub(super) fn entry(&self, key: &str) -> Self {
        let quoted = serde_json::to_string(key).expect("a string always serializes");
        Self(format!("{}[{quoted}]", self.0))
    }

    /// This path followed by a path relative to it, as reported by `serde_path_to_error`.
    fn join(&self, tail: &serde_path_to_error::Path) -> Self {
        tail.iter()
            .fold(self.clone(), |path, segment| match segment {
                Segment::Seq { index } => path.index(*index),
                Segment::Map { key } => path.key(key),
                Segment::Enum { variant } => path.key(variant),
                Segment::Unknown => path.key("?"),
            })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Looks up environment variables for `"$VAR"` ports (injectable for tests).
pub(super) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// A role a transport hands out (to anonymous sessions, to a ticket principal, ...), with the
/// path to blame when no realm defines it and what it is for (`for anonymous sessions`).
#[derive(Debug)]
struct RoleRef {
    role: String,
    path: Path,
    purpose: String,
}

impl RoleRef {
    fn new(role: impl Into<String>, path: Path, purpose: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            path,
            purpose: purpose.into(),
        }
    }
}

/// The realm of MQTT settings and the roles they hand out, with the paths to blame when the
/// worker has no such realm or the realm no such role.
#[derive(Debug)]
struct MqttRef {
    realm: String,
    realm_path: Path,
    roles: Vec<RoleRef>,
}

/// What an `auth` block says about anonymous access.
#[derive(Debug, Default)]
enum Anonymous {
    /// No `anonymous` method: anonymous access is off.
    #[default]
    Off,
    /// `anonymous` without `role` (the path is the method's, to blame for the default role).
    DefaultRole(Path),
    /// `anonymous.role`, with the path of the `role` key.
    Role(String, Path),
}

/// A walked `auth` block, before the transport kind decides the defaults.
#[derive(Debug, Default)]
struct ParsedAuth {
    anonymous: Anonymous,
    ticket: BTreeMap<String, TicketPrincipal>,
    wampcra: BTreeMap<String, CraUser>,
    cryptosign: BTreeMap<String, CryptosignPrincipal>,
    /// `type: "dynamic"` methods: method → authenticator procedure.
    dynamic: BTreeMap<String, String>,
    /// method → `authenticator-realm`.
    dynamic_realm: BTreeMap<String, String>,
    /// `tls` principals by certificate fingerprint.
    tls: BTreeMap<String, crate::config::TlsPrincipal>,
    /// The roles of the ticket principals, WAMP-CRA users and cryptosign principals.
    roles: Vec<RoleRef>,
}

/// The `auth` of a WAMP transport or path, with the roles it hands out.
#[derive(Debug)]
struct WampAuth {
    auth: Arc<TransportAuth>,
    /// The anonymous role, or "anonymous" when anonymous access is off (then unused).
    anonymous_role: String,
    roles: Vec<RoleRef>,
}

/// Autobahn (and so Crossbar) reads a ping interval or timeout of 0 as "off".
fn ping(ms: Option<u64>) -> Option<Duration> {
    ms.filter(|&ms| ms > 0).map(Duration::from_millis)
}

/// `base.join(path)` with `.` and `..` removed lexically (Python's `os.path.abspath`, which
/// Crossbar applies to `os.path.join(cbdir, directory)`).
pub(super) fn resolve_path(base: &std::path::Path, path: impl AsRef<std::path::Path>) -> PathBuf {
    let mut resolved = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !resolved.pop() {
                    resolved.push(component);
                }
            }
            other => resolved.push(other),
        }
    }
    resolved
}

/// Walks one config tree; see the module docs.
pub(super) struct Checker<'e> {
    env: Env<'e>,
    /// Relative paths in the config are relative to this directory (absolute).
    base: &'e std::path::Path,
    errors: Vec<ConfigError>,
    /// Problems that do not make the config invalid (a `payload_mapping` without catch-all).
    warnings: Vec<ConfigError>,
    /// Realm names of the whole node → where first defined.
    realm_names: HashMap<String, Path>,
    /// Worker ids → where first used.
    worker_ids: HashMap<String, Path>,
    /// Valid TCP listeners so far, with the path of their endpoint.
    listeners: Vec<(TcpEndpoint, Path)>,
    /// Unix socket paths so far → the path of their endpoint.
    unix_listeners: HashMap<String, Path>,
    /// Store file names of persistent realms so far → the path of their realm.
    store_files: HashMap<String, Path>,
    /// MQTT realm/role references of the transports of the current worker so far.
    mqtt_refs: Vec<MqttRef>,
    /// `authenticator-realm`s of the transports of the current worker so far, with their paths.
    realm_refs: Vec<(String, Path)>,
}

impl<'e> Checker<'e> {
    /// Validates a whole config tree; returns it with its warnings, in tree order.
    ///
    /// # Errors
    ///
    /// Every problem found, in tree order (warnings are dropped then).
    pub(super) fn check(
        root: &Value,
        env: Env<'e>,
        base: &'e std::path::Path,
    ) -> Result<(NodeConfig, Vec<ConfigError>), Vec<ConfigError>> {
        let mut checker = Self {
            env,
            base,
            errors: Vec::new(),
            warnings: Vec::new(),
            realm_names: HashMap::new(),
            worker_ids: HashMap::new(),
            listeners: Vec::new(),
            unix_listeners: HashMap::new(),
            store_files: HashMap::new(),
            mqtt_refs: Vec::new(),
            realm_refs: Vec::new(),
        };
        match checker.node(root) {
            Some(node) if checker.errors.is_empty() => Ok((node, checker.warnings)),
            _ => Err(checker.errors),
        }
    }

    /// A path of the config, made absolute against the base directory.
    fn resolve(&self, path: &str) -> PathBuf {
        resolve_path(self.base, path)
    }

    fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn warning(&mut self, path: &Path, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Reports each of `keys` (inside `path`) as not supported yet.
    fn unsupported(&mut self, path: &Path, keys: Vec<&'static str>) {
        for key in keys {
            self.error(&path.key(key), "not supported yet");
        }
    }

    /// Whether no error was added since the error count was `start`.
    fn ok_since(&self, start: usize) -> bool {
        self.errors.len() == start
    }

    /// Deserializes one node into its raw struct; errors carry the full path.
    fn de<T: DeserializeOwned>(&mut self, value: &Value, path: &Path) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(raw) => Some(raw),
            Err(e) => {
                let at = path.join(e.path());
                self.error(&at, e.inner().to_string());
                None
            }
        }
    }

    /// `value` as a JSON object, or an error.
    fn object<'v>(&mut self, value: &'v Value, path: &Path) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(
                    path,
                    format!("invalid type: {}, expected a map", describe(other)),
                );
                None
            }
        }
    }

    /// An object node deserialized into its raw struct. (serde would otherwise also accept a
    /// struct written as a positional JSON array.)
    fn object_de<T: DeserializeOwned>(&mut self, value: &Value, path: &Path) -> Option<T> {
        self.object(value, path)?;
        self.de(value, path)
    }

    /// The elements of an optional list (absent → empty).
    fn list<'v>(&mut self, value: Option<&'v Value>, path: &Path) -> &'v [Value] {
        match value {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                let message = format!("invalid type: {}, expected a sequence", describe(other));
                self.error(path, message);
                &[]
            }
        }
    }

    /// The `type` of an object node.
    fn kind<'v>(&mut self, map: &'v Map<String, Value>, path: &Path) -> Option<&'v str> {
        match get(map, "type") {
            Some(Value::String(kind)) => Some(kind),
            Some(other) => {
                let message = format!("invalid type: {}, expected a string", describe(other));
                self.error(&path.key("type"), message);
                None
            }
            None => {
                self.error(path, "missing field `type`");
                None
            }
        }
    }

    /// A configuration item id (`^[a-z][a-z0-9_]{2,63}$`).
    fn item_id(&mut self, id: String, path: &Path) -> Option<String> {
        if syntax::is_valid_id(&id) {
            Some(id)
        } else {
            self.error(
                path,
                format!(
                    "invalid id {id:?}: must be a lower-case letter followed by 2 to 63 \
                     lower-case letters, digits or underscores"
                ),
            );
            None
        }
    }

    fn node(&mut self, root: &Value) -> Option<NodeConfig> {
        let path = Path::root();
        let map = self.object(root, &path)?;
        if let Some(raw) = self.de::<RawNode>(root, &path) {
            match raw.version {
                Some(2) => {}
                Some(version) => self.error(
                    &path.key("version"),
                    format!("version {version} is not supported, must be 2"),
                ),
                None => self.error(&path.key("version"), "missing, must be 2"),
            }
        }
        let (controller_id, title) = match get(map, "controller") {
            Some(controller) => self.controller(controller, &path.key("controller")),
            None => (None, None),
        };
        let workers_path = path.key("workers");
        let mut routers = Vec::new();
        for (i, worker) in self
            .list(get(map, "workers"), &workers_path)
            .iter()
            .enumerate()
        {
            if let Some(router) = self.worker(worker, &workers_path.index(i)) {
                routers.push(router);
            }
        }
        Some(NodeConfig {
            controller_id,
            title,
            routers,
        })
    }

    /// `controller` → (id, title).
    fn controller(&mut self, value: &Value, path: &Path) -> (Option<String>, Option<String>) {
        let Some(map) = self.object(value, path) else {
            return (None, None);
        };
        let mut id = None;
        if let Some(raw) = self.de::<RawController>(value, path) {
            id = raw
                .id
                .clone()
                .and_then(|i| self.item_id(i, &path.key("id")));
            self.unsupported(path, raw.unsupported());
        }
        let mut title = None;
        if let Some(options) = get(map, "options") {
            let options_path = path.key("options");
            if let Some(raw) = self.object_de::<RawControllerOptions>(options, &options_path) {
                title = raw.title;
                // `shutdown` and `enable_parallel_worker_start` are checked and otherwise
                // ignored: junction is one process with no workers to start or lose, so every
                // shutdown mode means the same (the node stops when asked to or when it fails).
                let _ = raw.enable_parallel_worker_start;
                if let Some(shutdown) = &raw.shutdown {
                    self.shutdown(shutdown, &options_path.key("shutdown"));
                }
            }
        }
        (id, title)
    }

    /// `controller.options.shutdown`: a mode or a list of modes.
    fn shutdown(&mut self, value: &Value, path: &Path) {
        let mode = |checker: &mut Self, value: &Value, path: &Path| match value {
            Value::String(m) if SHUTDOWN_MODES.contains(&m.as_str()) => {}
            Value::String(m) => checker.error(
                path,
                format!(
                    "unknown shutdown mode {m:?}, expected one of {}",
                    quoted(SHUTDOWN_MODES)
                ),
            ),
            other => checker.error(
                path,
                format!("invalid type: {}, expected a string", describe(other)),
            ),
        };
        match value {
            Value::Array(modes) => {
                for (i, m) in modes.iter().enumerate() {
                    mode(self, m, &path.index(i));
                }
            }
            Value::String(_) => mode(self, value, path),
            other => self.error(
                path,
                format!(
                    "invalid type: {}, expected a string or a list of strings",
                    describe(other)
                ),
            ),
        }
    }

    /// `workers[i]`: dispatch on `type`.
    fn worker(&mut self, value: &Value, path: &Path) -> Option<RouterWorker> {
        let map = self.object(value, path)?;
        match self.kind(map, path)? {
            "router" => self.router(value, map, path),
            kind if UNSUPPORTED_WORKER_TYPES.contains(&kind) => {
                self.error(
                    &path.key("type"),
                    format!("worker type {kind:?} is not supported"),
                );
                None
            }
            kind => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown worker type {kind:?}, expected one of \"router\", {}",
                        quoted(UNSUPPORTED_WORKER_TYPES)
                    ),
                );
                None
            }
        }
    }

    fn router(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<RouterWorker> {
        let start = self.errors.len();
        let mut id = None;
        if let Some(raw) = self.de::<RawRouter>(value, path) {
            if let Some(worker_id) = raw.id.clone() {
                let id_path = path.key("id");
                id = self.item_id(worker_id, &id_path);
                if let Some(worker_id) = &id {
                    if let Some(first) = first_use(&mut self.worker_ids, worker_id, path) {
                        self.error(
                            &id_path,
                            format!("duplicate worker id {worker_id:?} (already used by {first})"),
                        );
                    }
                }
            }
            self.unsupported(path, raw.unsupported());
        }
        if let Some(options) = get(map, "options") {
            let options_path = path.key("options");
            if let Some(raw) = self.object_de::<RawWorkerOptions>(options, &options_path) {
                // `title` names a worker process in Crossbar; junction accepts and ignores it.
                let _ = raw.title;
                self.unsupported(&options_path, raw.unsupported());
            }
        }

        let realms_start = self.errors.len();
        let realms_path = path.key("realms");
        let mut realms = Vec::new();
        for (i, realm) in self
            .list(get(map, "realms"), &realms_path)
            .iter()
            .enumerate()
        {
            if let Some(realm) = self.realm(realm, &realms_path.index(i)) {
                realms.push(realm);
            }
        }
        let realms_ok = self.ok_since(realms_start);

        let transports_path = path.key("transports");
        let mut transports = Vec::new();
        let mut transport_ids = HashMap::new();
        let mut role_refs = Vec::new();
        self.mqtt_refs.clear();
        self.realm_refs.clear();
        for (i, transport) in self
            .list(get(map, "transports"), &transports_path)
            .iter()
            .enumerate()
        {
            let transport_path = transports_path.index(i);
            if let Some((transport, roles)) =
                self.transport(transport, &transport_path, &mut transport_ids)
            {
                transports.push(transport);
                role_refs.extend(roles);
            }
        }
        let mqtt_refs = std::mem::take(&mut self.mqtt_refs);
        let realm_refs = std::mem::take(&mut self.realm_refs);
        if realms_ok {
            for (realm, path) in realm_refs {
                if !realms.iter().any(|r| r.name == realm) {
                    self.error(
                        &path,
                        format!(
                            "realm {realm:?} (of the authenticator) is not defined in this worker"
                        ),
                    );
                }
            }
            for RoleRef {
                role,
                path,
                purpose,
            } in role_refs
            {
                let defined = realms
                    .iter()
                    .any(|r| r.roles.iter().any(|x| x.name == role));
                if !defined {
                    self.error(
                        &path,
                        format!(
                            "role {role:?} ({purpose}) is not defined in any realm of this worker"
                        ),
                    );
                }
            }
            for MqttRef {
                realm,
                realm_path,
                roles,
            } in mqtt_refs
            {
                let Some(r) = realms.iter().find(|r| r.name == realm) else {
                    self.error(
                        &realm_path,
                        format!("realm {realm:?} (for MQTT clients) is not defined in this worker"),
                    );
                    continue;
                };
                for RoleRef {
                    role,
                    path,
                    purpose,
                } in roles
                {
                    if !r.roles.iter().any(|x| x.name == role) {
                        self.error(
                            &path,
                            format!("role {role:?} ({purpose}) is not defined in realm {realm:?}"),
                        );
                    }
                }
            }
        }
        self.ok_since(start).then_some(RouterWorker {
            id,
            realms,
            transports,
        })
    }

    /// `realms[j]`.
    fn realm(&mut self, value: &Value, path: &Path) -> Option<RealmConfig> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        let mut name = None;
        if let Some(raw) = self.de::<RawRealm>(value, path) {
            let name_path = path.key("name");
            if !syntax::is_loose_uri(&raw.name) {
                self.error(
                    &name_path,
                    format!(
                        "invalid realm name {:?}: must be a WAMP URI (non-empty components \
                         without whitespace, '.' or '#')",
                        raw.name
                    ),
                );
            } else if let Some(first) = first_use(&mut self.realm_names, &raw.name, path) {
                // junction hosts every realm in one routing core, so unlike Crossbar (one
                // process per router worker) a realm name is unique across the whole node.
                self.error(
                    &name_path,
                    format!(
                        "duplicate realm name {:?} (already defined at {first}; realm names \
                         are unique across the node)",
                        raw.name
                    ),
                );
            } else {
                name = Some(raw.name.clone());
            }
            self.unsupported(path, raw.unsupported());
        }
        let mut uri_check = UriCheck::default();
        let mut mqtt = RealmMqtt::default();
        let mut limits = SessionLimits::default();
        if let Some(options) = get(map, "options") {
            let options_path = path.key("options");
            // `mqtt` is checked even when a sibling option has a typo.
            if let Some(value) = self.map_get(options, "mqtt") {
                if let Some(m) = self.realm_mqtt(value, &options_path.key("mqtt")) {
                    mqtt = m;
                }
            }
            if let Some(raw) = self.object_de::<RawRealmOptions>(options, &options_path) {
                if raw.enable_meta_api == Some(true) {
                    self.error(
                        &options_path.key("enable_meta_api"),
                        "the WAMP meta API is not supported yet; set this to false",
                    );
                }
                self.unsupported(&options_path, raw.unsupported());
                uri_check = match raw.uri_check {
                    Some(RawUriCheck::Loose) => UriCheck::Loose,
                    Some(RawUriCheck::Strict) => UriCheck::Strict,
                    None => UriCheck::Loose,
                };
                let max = |v: Option<u64>, key: &str, default: usize, this: &mut Self| {
                    let path = options_path.key(key);
                    this.in_range(v, 1, 10_000_000, &path)
                        .map_or(default, to_usize)
                };
                limits.max_subscriptions = max(
                    raw.max_subscriptions_per_session,
                    "max_subscriptions_per_session",
                    limits.max_subscriptions,
                    self,
                );
                limits.max_registrations = max(
                    raw.max_registrations_per_session,
                    "max_registrations_per_session",
                    limits.max_registrations,
                    self,
                );
            }
        }
        let roles_path = path.key("roles");
        let mut role_names = HashMap::new();
        let mut roles = Vec::new();
        for (i, role) in self.list(get(map, "roles"), &roles_path).iter().enumerate() {
            if let Some(role) = self.role(role, &roles_path.index(i), &mut role_names) {
                roles.push(role);
            }
        }
        if let (Some(name), true, true) = (&name, mqtt.persistence, self.ok_since(start)) {
            // Two realms must not share a store file (their names may differ only in
            // characters the file name replaces).
            let file = super::store_file_name(name);
            if let Some(first) = first_use(&mut self.store_files, &file, path) {
                self.error(
                    &path.key("name"),
                    format!(
                        "realm {name:?} would share the store file {file} with the realm at \
                         {first}; rename one or set `options.mqtt.persistence` to false"
                    ),
                );
            }
        }
        if !self.ok_since(start) {
            return None;
        }
        Some(RealmConfig {
            name: name?,
            roles,
            uri_check,
            mqtt,
            limits,
            // Set by `load_dir`, which knows the node directory.
            store_path: None,
        })
    }

    /// `realms[j].options.mqtt` (junction extension).
    fn realm_mqtt(&mut self, value: &Value, path: &Path) -> Option<RealmMqtt> {
        let raw = self.object_de::<RawRealmMqtt>(value, path)?;
        let defaults = RealmMqtt::default();
        let max_retained = self
            .in_range(raw.max_retained, 0, 100_000_000, &path.key("max_retained"))
            .map_or(defaults.max_retained, to_usize);
        Some(RealmMqtt {
            max_retained,
            persistence: raw.persistence.unwrap_or(defaults.persistence),
            sys_interval: match raw.sys_interval {
                None => defaults.sys_interval,
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
        })
    }

    /// `roles[k]`; `names` holds the role names of this realm so far.
    fn role(
        &mut self,
        value: &Value,
        path: &Path,
        names: &mut HashMap<String, Path>,
    ) -> Option<RoleConfig> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        let mut name = None;
        if let Some(raw) = self.de::<RawRole>(value, path) {
            let name_path = path.key("name");
            if raw.name.is_empty() {
                self.error(&name_path, "role name must not be empty");
            } else if let Some(first) = first_use(names, &raw.name, path) {
                self.error(
                    &name_path,
                    format!(
                        "duplicate role name {:?} in this realm (already defined at {first})",
                        raw.name
                    ),
                );
            } else {
                name = Some(raw.name.clone());
            }
            if raw.permissions.is_some() && raw.authorizer.is_some() {
                self.error(
                    path,
                    "a role cannot have both `permissions` and `authorizer`",
                );
            }
        }
        let authorizer = match get(map, "authorizer") {
            None => None,
            Some(Value::String(uri)) => {
                let start = self.errors.len();
                self.procedure(uri, &path.key("authorizer"));
                self.ok_since(start).then(|| uri.clone())
            }
            Some(_) => {
                self.error(
                    &path.key("authorizer"),
                    "must be a string (the authorizer's procedure URI)",
                );
                None
            }
        };
        let permissions_path = path.key("permissions");
        let mut permissions = Vec::new();
        let items = self.list(get(map, "permissions"), &permissions_path);
        for (i, permission) in items.iter().enumerate() {
            if let Some(permission) = self.permission(permission, &permissions_path.index(i)) {
                permissions.push(permission);
            }
        }
        if !self.ok_since(start) {
            return None;
        }
        Some(RoleConfig {
            name: name?,
            permissions,
            authorizer,
        })
    }

    /// `permissions[l]`.
    fn permission(&mut self, value: &Value, path: &Path) -> Option<Permission> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        let mut pattern = None;
        if let Some(raw) = self.de::<RawPermission>(value, path) {
            if !syntax::is_loose_uri_pattern(&raw.uri) {
                self.error(
                    &path.key("uri"),
                    format!(
                        "invalid URI {:?}: must not contain whitespace or '#'",
                        raw.uri
                    ),
                );
            }
            let (uri, match_policy) = match raw.match_policy {
                Some(policy) => (raw.uri, MatchPolicy::from(policy)),
                // Crossbar's "starred URI" conversion applies only without an explicit `match`.
                None => syntax::convert_starred_uri(&raw.uri),
            };
            if raw.validate.is_some() {
                self.unsupported(path, vec!["validate"]);
            }
            // Static permissions are always evaluated in memory: `cache` changes nothing.
            pattern = Some((uri, match_policy, raw.cache.unwrap_or(false)));
        }
        let allow = match get(map, "allow") {
            Some(allow) => self.object_de::<RawAllow>(allow, &path.key("allow")),
            None => Some(RawAllow::default()),
        };
        let disclose = match get(map, "disclose") {
            Some(disclose) => self.object_de::<RawDisclose>(disclose, &path.key("disclose")),
            None => Some(RawDisclose::default()),
        };
        if !self.ok_since(start) {
            return None;
        }
        let (uri, match_policy, cache) = pattern?;
        let (allow, disclose) = (allow?, disclose?);
        Some(Permission {
            uri,
            match_policy,
            allow: Allow {
                call: allow.call,
                register: allow.register,
                publish: allow.publish,
                subscribe: allow.subscribe,
            },
            disclose: Disclose {
                caller: disclose.caller,
                publisher: disclose.publisher,
            },
            cache,
        })
    }

    /// `transports[t]`: dispatch on `type`. Returns the transport and, for each anonymous role
    /// it uses, the path to blame when that role is not defined.
    fn transport(
        &mut self,
        value: &Value,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(TransportConfig, Vec<RoleRef>)> {
        let map = self.object(value, path)?;
        // MQTT references of a transport that fails are dropped with it, as its role refs.
        let mqtt_refs = self.mqtt_refs.len();
        let transport = self.transport_of_kind(value, map, path, ids);
        if transport.is_none() {
            self.mqtt_refs.truncate(mqtt_refs);
        }
        transport
    }

    /// `transports[t]` after its `type`.
    fn transport_of_kind(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(TransportConfig, Vec<RoleRef>)> {
        match self.kind(map, path)? {
            "websocket" => self
                .websocket(value, map, path, ids)
                .map(|(ws, roles)| (TransportConfig::WebSocket(ws), roles)),
            "rawsocket" => self
                .rawsocket(value, map, path, ids)
                .map(|(rs, roles)| (TransportConfig::RawSocket(rs), roles)),
            "web" => self
                .web(value, map, path, ids)
                .map(|(web, roles)| (TransportConfig::Web(web), roles)),
            "universal" => self
                .universal(value, map, path, ids)
                .map(|(uni, roles)| (TransportConfig::Universal(uni), roles)),
            "mqtt" => self
                .mqtt(value, map, path, ids)
                .map(|mqtt| (TransportConfig::Mqtt(mqtt), Vec::new())),
            kind if UNSUPPORTED_TRANSPORT_TYPES.contains(&kind) => {
                self.error(
                    &path.key("type"),
                    format!("transport type {kind:?} is not supported yet"),
                );
                None
            }
            kind => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown transport type {kind:?}, expected one of {}, {}",
                        quoted(TRANSPORT_TYPES),
                        quoted(UNSUPPORTED_TRANSPORT_TYPES)
                    ),
                );
                None
            }
        }
    }

    /// A transport `id`: valid and unique in the worker.
    fn transport_id(
        &mut self,
        id: Option<String>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<String> {
        let id_path = path.key("id");
        let id = self.item_id(id?, &id_path)?;
        if let Some(first) = first_use(ids, &id, path) {
            self.error(
                &id_path,
                format!("duplicate transport id {id:?} in this worker (already used by {first})"),
            );
        }
        Some(id)
    }

    /// `max_connections` of a transport (at least 1; absent = unlimited).
    fn max_connections(&mut self, value: Option<u64>, path: &Path) -> Option<usize> {
        match value? {
            0 => {
                self.error(&path.key("max_connections"), "must be at least 1");
                None
            }
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// The `endpoint` of a listening transport, recorded as a listener of the node.
    fn transport_endpoint(&mut self, map: &Map<String, Value>, path: &Path) -> Option<Endpoint> {
        let endpoint_path = path.key("endpoint");
        let Some(value) = get(map, "endpoint") else {
            self.error(path, "missing field `endpoint`");
            return None;
        };
        let endpoint = self.endpoint(value, &endpoint_path)?;
        self.listener(&endpoint, &endpoint_path);
        Some(endpoint)
    }

    /// The optional `auth` of a WAMP transport or path (WebSocket, RawSocket).
    fn auth_of(&mut self, map: &Map<String, Value>, path: &Path) -> Option<WampAuth> {
        let Some(value) = get(map, "auth") else {
            // Crossbar: without `auth`, anonymous access is allowed with role "anonymous"
            // (blamed on the transport when no realm defines it).
            return Some(WampAuth {
                auth: anonymous_only(DEFAULT_ANONYMOUS_ROLE),
                anonymous_role: DEFAULT_ANONYMOUS_ROLE.to_owned(),
                roles: vec![RoleRef::new(
                    DEFAULT_ANONYMOUS_ROLE,
                    path.clone(),
                    ANONYMOUS_PURPOSE,
                )],
            });
        };
        let parsed = self.auth(value, &path.key("auth"), false)?;
        let mut roles = Vec::new();
        let anonymous = match parsed.anonymous {
            Anonymous::Off => None,
            Anonymous::DefaultRole(path) => {
                roles.push(RoleRef::new(
                    DEFAULT_ANONYMOUS_ROLE,
                    path,
                    ANONYMOUS_PURPOSE,
                ));
                Some(DEFAULT_ANONYMOUS_ROLE.to_owned())
            }
            Anonymous::Role(role, path) => {
                roles.push(RoleRef::new(role.clone(), path, ANONYMOUS_PURPOSE));
                Some(role)
            }
        };
        roles.extend(parsed.roles);
        let anonymous_role = anonymous
            .clone()
            .unwrap_or_else(|| DEFAULT_ANONYMOUS_ROLE.to_owned());
        Some(WampAuth {
            auth: Arc::new(TransportAuth {
                anonymous,
                ticket: parsed.ticket,
                wampcra: parsed.wampcra,
                cryptosign: parsed.cryptosign,
                dynamic: parsed.dynamic,
                dynamic_realm: parsed.dynamic_realm,
                tls: parsed.tls,
                password_file: None,
                password_file_role: anonymous_role.clone(),
                acl_file: None,
            }),
            anonymous_role,
            roles,
        })
    }

    fn websocket(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(WebSocketTransport, Vec<RoleRef>)> {
        let start = self.errors.len();
        let mut id = None;
        let mut url_path = None;
        let mut serializers = Serializer::ALL.to_vec();
        let mut max_connections = None;
        if let Some(raw) = self.de::<RawWebSocket>(value, path) {
            id = self.transport_id(raw.id.clone(), path, ids);
            self.unsupported(path, raw.unsupported());
            if let Some(url) = &raw.url {
                // Only the path matters: the URL's host and port are what clients see, which
                // may differ from the endpoint (a proxy in front, Crossbar's `external_port`).
                url_path = self.websocket_url(url, &path.key("url"));
            }
            if let Some(names) = &raw.serializers {
                serializers = self.serializers(names, &path.key("serializers"));
            }
            max_connections = self.max_connections(raw.max_connections, path);
        }
        let endpoint = self.transport_endpoint(map, path);
        let options = match get(map, "options") {
            Some(options) => self.websocket_options(options, &path.key("options")),
            None => Some(WebSocketOptions::default()),
        };
        let auth = self.auth_of(map, path);
        if !self.ok_since(start) {
            return None;
        }
        let WampAuth {
            auth,
            anonymous_role,
            roles,
        } = auth?;
        let transport = WebSocketTransport {
            id,
            auth,
            endpoint: endpoint?,
            max_connections,
            path: url_path,
            serializers,
            options: options?,
            anonymous_role,
        };
        Some((transport, roles))
    }

    /// A WebSocket `url`: its path.
    fn websocket_url(&mut self, url: &str, path: &Path) -> Option<String> {
        match syntax::websocket_url_path(url) {
            Ok(p) => Some(p),
            Err(why) => {
                self.error(path, format!("invalid WebSocket URL {url:?}: {why}"));
                None
            }
        }
    }

    fn rawsocket(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(RawSocketTransport, Vec<RoleRef>)> {
        let start = self.errors.len();
        let mut id = None;
        let mut serializers = None;
        let mut max_connections = None;
        if let Some(raw) = self.de::<RawRawSocket>(value, path) {
            id = self.transport_id(raw.id.clone(), path, ids);
            self.unsupported(path, raw.unsupported());
            serializers = raw.serializers;
            max_connections = self.max_connections(raw.max_connections, path);
        }
        let endpoint = self.transport_endpoint(map, path);
        let settings = self.rawsocket_settings(serializers.as_deref(), map, path);
        if !self.ok_since(start) {
            return None;
        }
        let (settings, roles) = settings?;
        let transport = RawSocketTransport {
            id,
            endpoint: endpoint?,
            settings,
            max_connections,
        };
        Some((transport, roles))
    }

    /// `rawsocket` of a universal transport.
    fn universal_rawsocket(
        &mut self,
        value: &Value,
        path: &Path,
    ) -> Option<(RawSocketSettings, Vec<RoleRef>)> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        let mut serializers = None;
        if let Some(raw) = self.de::<RawUniversalRawSocket>(value, path) {
            self.unsupported(path, raw.unsupported());
            self.sub_item_keys(raw.endpoint.is_some(), raw.max_connections.is_some(), path);
            serializers = raw.serializers;
        }
        let settings = self.rawsocket_settings(serializers.as_deref(), map, path);
        self.ok_since(start).then_some(settings?)
    }

    /// Reports `endpoint` and `max_connections` inside a sub-item of a universal transport (or
    /// a path service), where Crossbar forbids them too.
    fn sub_item_keys(&mut self, endpoint: bool, max_connections: bool, path: &Path) {
        if endpoint {
            self.error(
                &path.key("endpoint"),
                "not allowed here: this is served on the endpoint of its transport",
            );
        }
        if max_connections {
            self.error(
                &path.key("max_connections"),
                "not allowed here: set `max_connections` on the transport",
            );
        }
    }

    /// `serializers`, `options` and `auth` of a RawSocket transport or sub-item.
    fn rawsocket_settings(
        &mut self,
        serializers: Option<&[String]>,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<(RawSocketSettings, Vec<RoleRef>)> {
        let start = self.errors.len();
        let defaults = RawSocketSettings::default();
        let serializers = match serializers {
            Some(names) => self.serializers(names, &path.key("serializers")),
            None => defaults.serializers.clone(),
        };
        let mut settings = match get(map, "options") {
            Some(options) => self.rawsocket_options(options, &path.key("options")),
            None => Some(defaults),
        };
        let auth = self.auth_of(map, path);
        if !self.ok_since(start) {
            return None;
        }
        let WampAuth {
            auth,
            anonymous_role,
            roles,
        } = auth?;
        if let Some(settings) = &mut settings {
            settings.serializers = serializers;
            settings.anonymous_role = anonymous_role;
            settings.auth = auth;
        }
        Some((settings?, roles))
    }

    /// `options` of a RawSocket transport (serializers and role are filled in by the caller).
    fn rawsocket_options(&mut self, value: &Value, path: &Path) -> Option<RawSocketSettings> {
        let raw = self.object_de::<RawRawSocketOptions>(value, path)?;
        let start = self.errors.len();
        let defaults = RawSocketSettings::default();
        let max_message_size = self
            .size(raw.max_message_size, &path.key("max_message_size"))
            .unwrap_or(defaults.max_message_size);
        let open_handshake_timeout = self
            .timeout(
                raw.open_handshake_timeout,
                &path.key("open_handshake_timeout"),
            )
            .unwrap_or(defaults.open_handshake_timeout);
        let outbox_messages = self
            .outbox_messages(raw.outbox_messages, &path.key("outbox_messages"))
            .unwrap_or(defaults.outbox_messages);
        self.ok_since(start).then_some(RawSocketSettings {
            max_message_size,
            open_handshake_timeout,
            auto_ping_interval: ping(raw.auto_ping_interval),
            auto_ping_timeout: ping(raw.auto_ping_timeout),
            outbox_messages,
            ..defaults
        })
    }

    fn web(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(WebTransport, Vec<RoleRef>)> {
        let start = self.errors.len();
        let mut id = None;
        let mut max_connections = None;
        if let Some(raw) = self.de::<RawWeb>(value, path) {
            id = self.transport_id(raw.id.clone(), path, ids);
            max_connections = self.max_connections(raw.max_connections, path);
        }
        let endpoint = self.transport_endpoint(map, path);
        let paths = self.web_paths_and_options(map, path);
        if !self.ok_since(start) {
            return None;
        }
        let (paths, roles) = paths?;
        let transport = WebTransport {
            id,
            endpoint: endpoint?,
            paths,
            max_connections,
        };
        Some((transport, roles))
    }

    /// `paths` (required) and `options` of a web transport or of a universal `web` sub-item.
    fn web_paths_and_options(
        &mut self,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<(WebPaths, Vec<RoleRef>)> {
        let start = self.errors.len();
        if let Some(options) = get(map, "options") {
            let options_path = path.key("options");
            if let Some(raw) = self.object_de::<RawWebOptions>(options, &options_path) {
                self.unsupported(&options_path, raw.unsupported());
            }
        }
        let paths = match get(map, "paths") {
            Some(paths) => self.web_paths(paths, &path.key("paths")),
            None => {
                self.error(path, "missing field `paths`");
                None
            }
        };
        self.ok_since(start).then_some(paths?)
    }

    /// A web `paths` map: path key → service.
    fn web_paths(&mut self, value: &Value, path: &Path) -> Option<(WebPaths, Vec<RoleRef>)> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        let mut paths = WebPaths::new();
        let mut roles = Vec::new();
        for (key, service) in map {
            let service_path = path.key(key);
            if !self.web_path_key(key, &service_path) {
                continue;
            }
            if let Some((service, role)) = self.web_service(service, &service_path) {
                paths.insert(key.clone(), service);
                roles.extend(role);
            }
        }
        self.ok_since(start).then_some((paths, roles))
    }

    /// Whether `key` is a valid web path key; reports it when not.
    fn web_path_key(&mut self, key: &str, path: &Path) -> bool {
        let valid = syntax::is_web_path(key);
        if !valid {
            self.error(
                path,
                format!(
                    "invalid path {key:?}: must be \"/\" or one path component of letters, \
                     digits, '_' and '-' (^([a-z0-9A-Z_\\-]+|/)$)"
                ),
            );
        }
        valid
    }

    /// One web path service: dispatch on `type`.
    fn web_service(&mut self, value: &Value, path: &Path) -> Option<(WebService, Vec<RoleRef>)> {
        let map = self.object(value, path)?;
        match self.kind(map, path)? {
            "static" => self
                .static_service(value, map, path)
                .map(|s| (s, Vec::new())),
            "redirect" => {
                let raw = self.de::<RawRedirect>(value, path)?;
                self.service_id(raw.id, path)?;
                if raw.url.is_empty() {
                    self.error(&path.key("url"), "must not be empty");
                    return None;
                }
                Some((WebService::Redirect { url: raw.url }, Vec::new()))
            }
            "json" => {
                let raw = self.de::<RawJson>(value, path);
                let start = self.errors.len();
                if let Some(options) = get(map, "options") {
                    let options_path = path.key("options");
                    if let Some(raw) = self.object_de::<RawJsonOptions>(options, &options_path) {
                        self.unsupported(&options_path, raw.unsupported());
                    }
                }
                let raw = raw?;
                self.service_id(raw.id, path)?;
                self.ok_since(start)
                    .then_some((WebService::Json { value: raw.value }, Vec::new()))
            }
            "nodeinfo" => {
                let raw = self.de::<RawNodeInfo>(value, path)?;
                self.service_id(raw.id, path)?;
                Some((WebService::NodeInfo, Vec::new()))
            }
            "websocket" => self
                .websocket_service(value, map, path)
                .map(|(ws, roles)| (WebService::WebSocket(ws), roles)),
            kind if UNSUPPORTED_WEB_SERVICES.contains(&kind) => {
                self.error(
                    &path.key("type"),
                    format!("web service type {kind:?} is not supported yet"),
                );
                None
            }
            kind => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown web service type {kind:?}, expected one of {}, {}",
                        quoted(WEB_SERVICES),
                        quoted(UNSUPPORTED_WEB_SERVICES)
                    ),
                );
                None
            }
        }
    }

    /// The `id` of a path service: checked like every item id, no effect. `None` when invalid.
    fn service_id(&mut self, id: Option<String>, path: &Path) -> Option<()> {
        match id {
            Some(id) => self.item_id(id, &path.key("id")).map(|_| ()),
            None => Some(()),
        }
    }

    /// A `static` web service.
    fn static_service(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<WebService> {
        let start = self.errors.len();
        let mut directory = None;
        if let Some(raw) = self.de::<RawStatic>(value, path) {
            self.service_id(raw.id.clone(), path);
            self.unsupported(path, raw.unsupported());
            match raw.directory {
                Some(dir) => directory = self.static_directory(&dir, &path.key("directory")),
                // `package` + `resource` were reported as not supported yet.
                None if raw.package.is_some() || raw.resource.is_some() => {}
                None => self.error(path, "missing field `directory`"),
            }
        }
        let mut service = StaticService {
            directory: PathBuf::new(),
            enable_directory_listing: false,
            mime_types: BTreeMap::new(),
            cache_timeout: Some(DEFAULT_CACHE_TIMEOUT),
            default_file: DEFAULT_INDEX_FILE.to_owned(),
            fallback_file: None,
        };
        if let Some(options) = get(map, "options") {
            let options_path = path.key("options");
            if let Some(raw) = self.object_de::<RawStaticOptions>(options, &options_path) {
                service.enable_directory_listing = raw.enable_directory_listing.unwrap_or(false);
                if let Some(timeout) = raw.cache_timeout {
                    service.cache_timeout = timeout;
                }
                if let Some(file) = raw.default_file {
                    service.fallback_file = self.fallback_file(file, &options_path);
                }
                if let Some(mime_types) = self.map_get(options, "mime_types") {
                    service.mime_types =
                        self.mime_types(mime_types, &options_path.key("mime_types"));
                }
            }
        }
        if !self.ok_since(start) {
            return None;
        }
        service.directory = directory?;
        Some(WebService::Static(service))
    }

    /// `value[key]` of an object value (`null` = absent).
    fn map_get<'v>(&self, value: &'v Value, key: &str) -> Option<&'v Value> {
        value.as_object().and_then(|map| get(map, key))
    }

    /// A static `directory`: resolved against the base directory; it must exist.
    fn static_directory(&mut self, dir: &str, path: &Path) -> Option<PathBuf> {
        if dir.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        let resolved = self.resolve(dir);
        match std::fs::metadata(&resolved) {
            Ok(meta) if meta.is_dir() => Some(resolved),
            Ok(_) => {
                self.error(path, format!("{} is not a directory", resolved.display()));
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.error(
                    path,
                    format!("directory {} does not exist", resolved.display()),
                );
                None
            }
            Err(e) => {
                self.error(path, format!("cannot access {}: {e}", resolved.display()));
                None
            }
        }
    }

    /// `options.default_file` of a static service: a relative file name inside the directory.
    fn fallback_file(&mut self, file: String, options_path: &Path) -> Option<String> {
        let relative = std::path::Path::new(&file);
        let inside = !file.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if inside {
            Some(file)
        } else {
            self.error(
                &options_path.key("default_file"),
                format!(
                    "invalid default file {file:?}: must be a relative path inside the directory \
                     (no '..', no leading '/')"
                ),
            );
            None
        }
    }

    /// `options.mime_types` of a static service: extension → MIME type, keys normalised to
    /// a lower-case extension with its leading dot.
    fn mime_types(&mut self, value: &Value, path: &Path) -> BTreeMap<String, String> {
        let mut types = BTreeMap::new();
        let Some(map) = self.object(value, path) else {
            return types;
        };
        let mut seen: HashMap<String, Path> = HashMap::new();
        for (key, mime) in map {
            let key_path = path.key(key);
            let extension = key.strip_prefix('.').unwrap_or(key);
            if extension.is_empty()
                || extension
                    .chars()
                    .any(|c| c.is_whitespace() || c == '/' || c == '\\')
            {
                self.error(
                    &key_path,
                    format!("invalid file extension {key:?}: expected e.g. \".wasm\""),
                );
                continue;
            }
            let normalised = format!(".{}", extension.to_ascii_lowercase());
            let Value::String(mime) = mime else {
                self.error(
                    &key_path,
                    format!("invalid type: {}, expected a string", describe(mime)),
                );
                continue;
            };
            let valid_mime = mime
                .split_once('/')
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
                && !mime.chars().any(char::is_whitespace);
            if !valid_mime {
                self.error(
                    &key_path,
                    format!("invalid MIME type {mime:?}: expected e.g. \"application/wasm\""),
                );
                continue;
            }
            if let Some(first) = first_use(&mut seen, &normalised, &key_path) {
                self.error(
                    &key_path,
                    format!("duplicate extension {normalised:?} (already given at {first})"),
                );
                continue;
            }
            types.insert(normalised, mime.clone());
        }
        types
    }

    /// A WebSocket path: a web path service of type `websocket`, or an entry of a universal
    /// transport's `websocket` map.
    fn websocket_service(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<(WebSocketSettings, Vec<RoleRef>)> {
        let start = self.errors.len();
        let mut serializers = Serializer::ALL.to_vec();
        if let Some(raw) = self.de::<RawWebSocketService>(value, path) {
            self.service_id(raw.id.clone(), path);
            self.unsupported(path, raw.unsupported());
            self.sub_item_keys(raw.endpoint.is_some(), raw.max_connections.is_some(), path);
            if let Some(url) = &raw.url {
                // Checked as by Crossbar; the path key, not the URL, is where it upgrades.
                self.websocket_url(url, &path.key("url"));
            }
            if let Some(names) = &raw.serializers {
                serializers = self.serializers(names, &path.key("serializers"));
            }
        }
        let options = match get(map, "options") {
            Some(options) => self.websocket_options(options, &path.key("options")),
            None => Some(WebSocketOptions::default()),
        };
        let auth = self.auth_of(map, path);
        if !self.ok_since(start) {
            return None;
        }
        let WampAuth {
            auth,
            anonymous_role,
            roles,
        } = auth?;
        let settings = WebSocketSettings {
            serializers,
            options: options?,
            auth,
            anonymous_role,
        };
        Some((settings, roles))
    }

    fn universal(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<(UniversalTransport, Vec<RoleRef>)> {
        let start = self.errors.len();
        let mut id = None;
        let mut max_connections = None;
        if let Some(raw) = self.de::<RawUniversal>(value, path) {
            id = self.transport_id(raw.id.clone(), path, ids);
            max_connections = self.max_connections(raw.max_connections, path);
        }
        let endpoint = self.transport_endpoint(map, path);
        let mut roles = Vec::new();

        let mut rawsocket = None;
        if let Some(value) = get(map, "rawsocket") {
            if let Some((settings, rs_roles)) =
                self.universal_rawsocket(value, &path.key("rawsocket"))
            {
                rawsocket = Some(settings);
                roles.extend(rs_roles);
            }
        }

        let mut websocket = BTreeMap::new();
        let mut mqtt_websocket = BTreeMap::new();
        let ws_path = path.key("websocket");
        let ws_map = get(map, "websocket").and_then(|v| self.object(v, &ws_path));
        for (key, entry) in ws_map.into_iter().flatten() {
            let entry_path = ws_path.key(key);
            if !self.web_path_key(key, &entry_path) {
                continue;
            }
            if self.map_get(entry, "type").and_then(Value::as_str) == Some("mqtt") {
                if let Some(settings) = self.mqtt_websocket(entry, &entry_path) {
                    mqtt_websocket.insert(key.clone(), settings);
                }
                continue;
            }
            if let Some((settings, ws_roles)) = self.universal_websocket(entry, &entry_path) {
                websocket.insert(key.clone(), settings);
                roles.extend(ws_roles);
            }
        }

        let mqtt = get(map, "mqtt").and_then(|v| self.universal_mqtt(v, &path.key("mqtt")));

        let mut web = None;
        let web_path = path.key("web");
        let web_map = get(map, "web").and_then(|v| self.object(v, &web_path));
        if let Some(web_map) = web_map {
            let web_value = &map["web"];
            if let Some(raw) = self.de::<RawUniversalWeb>(web_value, &web_path) {
                self.sub_item_keys(
                    raw.endpoint.is_some(),
                    raw.max_connections.is_some(),
                    &web_path,
                );
            }
            if let Some((paths, web_roles)) = self.web_paths_and_options(web_map, &web_path) {
                web = Some(paths);
                roles.extend(web_roles);
            }
            // A path in both maps: Crossbar would silently route it to the WebSocket.
            let web_keys = get(web_map, "paths").and_then(Value::as_object);
            for key in ws_map.into_iter().flat_map(Map::keys) {
                if web_keys.is_some_and(|keys| keys.contains_key(key)) {
                    self.error(
                        &ws_path.key(key),
                        format!(
                            "path {key:?} is also a key of web.paths: a path is either a \
                             WebSocket or a web service"
                        ),
                    );
                }
            }
        }

        if !self.ok_since(start) {
            return None;
        }
        let transport = UniversalTransport {
            id,
            endpoint: endpoint?,
            rawsocket,
            websocket,
            web,
            max_connections,
            mqtt,
            mqtt_websocket,
        };
        Some((transport, roles))
    }

    /// An entry of a universal transport's `websocket` map: `type` is optional here, and must
    /// be `websocket` when present (entries of type `mqtt` go to `mqtt_websocket`).
    fn universal_websocket(
        &mut self,
        value: &Value,
        path: &Path,
    ) -> Option<(WebSocketSettings, Vec<RoleRef>)> {
        let map = self.object(value, path)?;
        match get(map, "type") {
            None => {}
            Some(Value::String(kind)) if kind == "websocket" => {}
            Some(Value::String(kind)) => {
                let hint = if WEB_SERVICES.contains(&kind.as_str())
                    || UNSUPPORTED_WEB_SERVICES.contains(&kind.as_str())
                {
                    "; other web services go under `web.paths`"
                } else {
                    ""
                };
                self.error(
                    &path.key("type"),
                    format!(
                        "type {kind:?} is not allowed here, expected \"websocket\" or \"mqtt\"{hint}"
                    ),
                );
                return None;
            }
            Some(other) => {
                let message = format!("invalid type: {}, expected a string", describe(other));
                self.error(&path.key("type"), message);
                return None;
            }
        }
        self.websocket_service(value, map, path)
    }

    /// A transport of type `mqtt`.
    fn mqtt(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
        ids: &mut HashMap<String, Path>,
    ) -> Option<MqttTransport> {
        let start = self.errors.len();
        let mut id = None;
        let mut max_connections = None;
        if let Some(raw) = self.de::<RawMqtt>(value, path) {
            id = self.transport_id(raw.id.clone(), path, ids);
            max_connections = self.max_connections(raw.max_connections, path);
        }
        let endpoint = self.transport_endpoint(map, path);
        let settings = self.mqtt_settings(map, path);
        if !self.ok_since(start) {
            return None;
        }
        Some(MqttTransport {
            id,
            endpoint: endpoint?,
            settings: settings?,
            max_connections,
        })
    }

    /// `mqtt` of a universal transport: `{"options": {...}}`.
    fn universal_mqtt(&mut self, value: &Value, path: &Path) -> Option<MqttSettings> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        if let Some(raw) = self.de::<RawUniversalMqtt>(value, path) {
            self.sub_item_keys(raw.endpoint.is_some(), raw.max_connections.is_some(), path);
        }
        let settings = self.mqtt_settings(map, path);
        self.ok_since(start).then_some(settings?)
    }

    /// An entry of a universal transport's `websocket` map with `type: "mqtt"` (junction
    /// extension): MQTT over WebSocket on that path.
    fn mqtt_websocket(&mut self, value: &Value, path: &Path) -> Option<MqttSettings> {
        let start = self.errors.len();
        let map = self.object(value, path)?;
        if let Some(raw) = self.de::<RawMqttWebSocket>(value, path) {
            self.sub_item_keys(raw.endpoint.is_some(), raw.max_connections.is_some(), path);
        }
        let settings = self.mqtt_settings(map, path);
        self.ok_since(start).then_some(settings?)
    }

    /// The required `options` of an MQTT transport or sub-item.
    fn mqtt_settings(&mut self, map: &Map<String, Value>, path: &Path) -> Option<MqttSettings> {
        match get(map, "options") {
            Some(options) => self.mqtt_options(options, &path.key("options")),
            None => {
                self.error(
                    path,
                    "missing field `options` (`options.realm` names the realm MQTT clients join)",
                );
                None
            }
        }
    }

    /// MQTT `options`; records the realm and role for the worker's cross-check.
    fn mqtt_options(&mut self, value: &Value, path: &Path) -> Option<MqttSettings> {
        let map = self.object(value, path)?;
        let start = self.errors.len();
        let raw = self.de::<RawMqttOptions>(value, path);
        // The mapping is walked even when a sibling option has a typo.
        let payload_mapping = match get(map, "payload_mapping") {
            Some(mapping) => {
                let realm = get(map, "realm").and_then(Value::as_str);
                self.payload_mapping(mapping, realm, &path.key("payload_mapping"))
                    .map(Arc::new)
            }
            None => Some(MqttSettings::default().payload_mapping),
        };
        // `auth` is walked even when a sibling option has a typo.
        let auth = get(map, "auth").and_then(|auth| self.auth(auth, &path.key("auth"), true));
        let raw = raw?;
        let explicit_role = raw.role.is_some();
        let (role, role_path) = match raw.role {
            Some(role) if role.is_empty() => {
                self.error(&path.key("role"), "role name must not be empty");
                (role, path.key("role"))
            }
            Some(role) => (role, path.key("role")),
            None => (DEFAULT_ANONYMOUS_ROLE.to_owned(), path.clone()),
        };
        let password_file = raw
            .password_file
            .as_deref()
            .and_then(|file| self.password_file(file, &path.key("password_file")));
        let acl_file = raw
            .acl_file
            .as_deref()
            .and_then(|file| self.acl_file(file, &path.key("acl_file")));
        let defaults = MqttSettings::default();
        let max_packet_size = self
            .in_range(
                raw.max_packet_size,
                1,
                MAX_MQTT_PACKET_SIZE,
                &path.key("max_packet_size"),
            )
            .map_or(defaults.max_packet_size, to_usize);
        let max_inflight = self
            .in_range(
                raw.max_inflight,
                1,
                MAX_MQTT_INFLIGHT,
                &path.key("max_inflight"),
            )
            .map_or(defaults.max_inflight, to_usize);
        let max_keepalive = self
            .in_range(
                raw.max_keepalive,
                1,
                MAX_MQTT_KEEPALIVE,
                &path.key("max_keepalive"),
            )
            .map_or(defaults.max_keepalive, |n| {
                u16::try_from(n).expect("at most MAX_MQTT_KEEPALIVE")
            });
        let connect_timeout = self
            .timeout(raw.connect_timeout, &path.key("connect_timeout"))
            .unwrap_or(defaults.connect_timeout);
        if !self.ok_since(start) {
            return None;
        }
        // Here `auth` is `None` only when there is none: a broken one added errors.
        let (mut auth, roles) = self.mqtt_auth(
            auth,
            raw.allow_anonymous,
            password_file,
            RoleRef::new(role.clone(), role_path, "for MQTT clients"),
            explicit_role,
            path,
        )?;
        auth.acl_file = acl_file;
        self.mqtt_refs.push(MqttRef {
            realm: raw.realm.clone(),
            realm_path: path.key("realm"),
            roles,
        });
        Some(MqttSettings {
            auth: Arc::new(auth),
            realm: raw.realm,
            role,
            max_packet_size,
            max_inflight,
            max_queued_messages: raw
                .max_queued_messages
                .map_or(defaults.max_queued_messages, to_usize),
            max_queued_bytes: raw
                .max_queued_bytes
                .map_or(defaults.max_queued_bytes, to_usize),
            session_expiry: match raw.session_expiry {
                None => defaults.session_expiry,
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
            max_keepalive,
            connect_timeout,
            payload_mapping: payload_mapping?,
        })
    }

    /// Who may connect to an MQTT transport: Crossbar's `options.auth` (`parsed`, `None` when
    /// absent), mosquitto's `allow_anonymous` and `password_file` (already checked). `role` is
    /// `options.role` (`explicit` when given), the role of anonymous clients without
    /// `auth.anonymous.role` and of `password_file` users; it is checked against the realm when
    /// given or used. Returns the auth and the roles to check.
    fn mqtt_auth(
        &mut self,
        parsed: Option<ParsedAuth>,
        allow_anonymous: Option<bool>,
        password_file: Option<PathBuf>,
        role: RoleRef,
        explicit: bool,
        path: &Path,
    ) -> Option<(TransportAuth, Vec<RoleRef>)> {
        let mut roles = Vec::new();
        // Whether anonymous clients get a role of their own (`auth.anonymous.role`).
        let mut own_anonymous_role = false;
        // The anonymous role `auth` gives (`options.role` when `auth.anonymous` has none), and
        // whether `auth` is there at all.
        let mut dynamic = BTreeMap::new();
        let mut dynamic_realm = BTreeMap::new();
        let mut tls = BTreeMap::new();
        let (from_auth, ticket, principal_roles, auth_given) = match parsed {
            // Crossbar: without `auth`, anonymous access is allowed.
            None => (None, BTreeMap::new(), Vec::new(), false),
            Some(parsed) => {
                let from_auth = match parsed.anonymous {
                    Anonymous::Role(anonymous, path) => {
                        own_anonymous_role = true;
                        roles.push(RoleRef::new(
                            anonymous.clone(),
                            path,
                            "for anonymous MQTT clients",
                        ));
                        Some(anonymous)
                    }
                    Anonymous::DefaultRole(_) => Some(role.role.clone()),
                    Anonymous::Off => None,
                };
                dynamic = parsed.dynamic;
                dynamic_realm = parsed.dynamic_realm;
                tls = parsed.tls;
                (from_auth, parsed.ticket, parsed.roles, true)
            }
        };
        let anonymous = match allow_anonymous {
            Some(false) if from_auth.is_some() => {
                self.error(
                    &path.key("allow_anonymous"),
                    "false, but `auth.anonymous` allows anonymous clients: remove one of them",
                );
                return None;
            }
            Some(false) => None,
            Some(true) => Some(from_auth.unwrap_or_else(|| role.role.clone())),
            None if auth_given => from_auth,
            None => Some(role.role.clone()),
        };
        if anonymous.is_none()
            && ticket.is_empty()
            && dynamic.is_empty()
            && tls.is_empty()
            && password_file.is_none()
        {
            self.warning(
                path,
                "no MQTT client can connect: anonymous access is off, and there is no ticket \
                 principal and no `password_file`",
            );
        }
        // `options.role` is checked when given, or when anonymous clients or password file
        // users get it.
        let anonymous_get_role = anonymous.is_some() && !own_anonymous_role;
        let password_file_role = role.role.clone();
        if explicit || anonymous_get_role || password_file.is_some() {
            roles.insert(0, role);
        }
        roles.extend(principal_roles);
        Some((
            TransportAuth {
                anonymous,
                ticket,
                wampcra: BTreeMap::new(),
                cryptosign: BTreeMap::new(),
                dynamic,
                dynamic_realm,
                tls,
                password_file,
                password_file_role,
                acl_file: None,
            },
            roles,
        ))
    }

    /// MQTT `options.password_file` (junction extension): a mosquitto password file, resolved
    /// against the base directory; it must load.
    fn password_file(&mut self, file: &str, path: &Path) -> Option<PathBuf> {
        if file.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        let resolved = self.resolve(file);
        match crate::auth::mosquitto::PasswordFile::load(&resolved) {
            Ok(_) => Some(resolved),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    /// MQTT `options.acl_file` (junction extension): a mosquitto ACL file, resolved against
    /// the base directory; it must load.
    fn acl_file(&mut self, file: &str, path: &Path) -> Option<PathBuf> {
        if file.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        let resolved = self.resolve(file);
        match crate::auth::mosquitto::AclFile::load(&resolved) {
            Ok(_) => Some(resolved),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    /// MQTT `options.payload_mapping`: WAMP URI prefix (any string, `""` too) → payload format,
    /// as Crossbar's `check_listening_transport_mqtt` checks it, plus junction's `utf8` type,
    /// unknown keys refused, procedure URIs checked and the codec realm limited to `realm` (the
    /// transport's, when it is a string). Entries come out longest prefix first. A mapping
    /// without a `""` key is valid but warned about.
    fn payload_mapping(
        &mut self,
        value: &Value,
        realm: Option<&str>,
        path: &Path,
    ) -> Option<PayloadMapping> {
        let map = self.object(value, path)?;
        let start = self.errors.len();
        let mut entries = Vec::with_capacity(map.len());
        for (prefix, entry) in map {
            if let Some(format) = self.payload_format(entry, realm, &path.entry(prefix)) {
                entries.push((prefix.clone(), format));
            }
        }
        if !self.ok_since(start) {
            return None;
        }
        if !map.contains_key("") {
            self.warning(path, NO_CATCH_ALL);
        }
        // Stable: keys of equal length keep their order (none is a prefix of another).
        entries.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Some(PayloadMapping { entries })
    }

    /// One value of `payload_mapping`: `{"type": ..., ...}`.
    fn payload_format(
        &mut self,
        value: &Value,
        realm: Option<&str>,
        path: &Path,
    ) -> Option<PayloadFormat> {
        let map = self.object(value, path)?;
        match self.kind(map, path)? {
            "passthrough" => self
                .de::<RawPayloadPlain>(value, path)
                .map(|_| PayloadFormat::Passthrough),
            "utf8" => self
                .de::<RawPayloadPlain>(value, path)
                .map(|_| PayloadFormat::Utf8),
            "native" => {
                let raw = self.de::<RawPayloadNative>(value, path)?;
                let serializer = PAYLOAD_SERIALIZERS
                    .contains(&raw.serializer.as_str())
                    .then(|| Serializer::from_name(&raw.serializer))
                    .flatten();
                if serializer.is_none() {
                    self.error(
                        &path.key("serializer"),
                        format!(
                            "unknown serializer {:?}, expected one of {}",
                            raw.serializer,
                            quoted(PAYLOAD_SERIALIZERS)
                        ),
                    );
                }
                serializer.map(PayloadFormat::Native)
            }
            "dynamic" => {
                let raw = self.de::<RawPayloadDynamic>(value, path)?;
                let start = self.errors.len();
                self.procedure(&raw.encoder, &path.key("encoder"));
                self.procedure(&raw.decoder, &path.key("decoder"));
                if let (Some(codec), Some(realm)) = (&raw.realm, realm) {
                    if codec != realm {
                        self.error(
                            &path.key("realm"),
                            "not supported yet: the codec procedures must be in the \
                             transport's realm",
                        );
                    }
                }
                self.ok_since(start).then_some(PayloadFormat::Dynamic {
                    encoder: raw.encoder,
                    decoder: raw.decoder,
                })
            }
            kind => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown payload mapping type {kind:?}, expected one of {}",
                        quoted(PAYLOAD_FORMATS)
                    ),
                );
                None
            }
        }
    }

    /// A procedure URI of a `dynamic` payload mapping (loose, as junction registers them).
    fn procedure(&mut self, uri: &str, path: &Path) {
        if !syntax::is_loose_uri(uri) {
            self.error(
                path,
                format!(
                    "invalid procedure URI {uri:?}: must be a WAMP URI (non-empty components \
                     without whitespace, '.' or '#')"
                ),
            );
        }
    }

    /// An optional integer that must lie in `min..=max`.
    fn in_range(&mut self, value: Option<u64>, min: u64, max: u64, path: &Path) -> Option<u64> {
        match value? {
            n if (min..=max).contains(&n) => Some(n),
            n => {
                self.error(path, format!("{n} is out of range ({min} to {max})"));
                None
            }
        }
    }

    /// `serializers` of a WebSocket transport, in config (preference) order.
    fn serializers(&mut self, names: &[String], path: &Path) -> Vec<Serializer> {
        if names.is_empty() {
            self.error(path, "at least one serializer is required");
        }
        let mut serializers = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match Serializer::from_name(name) {
                Some(s) if serializers.contains(&s) => {
                    self.error(&path.index(i), format!("duplicate serializer {name:?}"));
                }
                Some(s) => serializers.push(s),
                None if name == "flatbuffers" => self.error(
                    &path.index(i),
                    "serializer \"flatbuffers\" is not supported yet",
                ),
                None => self.error(
                    &path.index(i),
                    format!(
                        "unknown serializer {name:?}, expected one of \"json\", \"msgpack\", \
                         \"cbor\", \"ubjson\""
                    ),
                ),
            }
        }
        serializers
    }

    /// `options` of a WebSocket transport.
    fn websocket_options(&mut self, value: &Value, path: &Path) -> Option<WebSocketOptions> {
        let raw = self.object_de::<RawWebSocketOptions>(value, path)?;
        let start = self.errors.len();
        self.unsupported(path, raw.unsupported());
        let defaults = WebSocketOptions::default();
        let max_message_size = self
            .size(raw.max_message_size, &path.key("max_message_size"))
            .unwrap_or(defaults.max_message_size);
        let max_frame_size = self
            .size(raw.max_frame_size, &path.key("max_frame_size"))
            .unwrap_or(max_message_size);
        let open_handshake_timeout = self
            .timeout(
                raw.open_handshake_timeout,
                &path.key("open_handshake_timeout"),
            )
            .unwrap_or(defaults.open_handshake_timeout);
        let close_handshake_timeout = self
            .timeout(
                raw.close_handshake_timeout,
                &path.key("close_handshake_timeout"),
            )
            .unwrap_or(defaults.close_handshake_timeout);
        let outbox_messages = self
            .outbox_messages(raw.outbox_messages, &path.key("outbox_messages"))
            .unwrap_or(defaults.outbox_messages);
        self.ok_since(start).then_some(WebSocketOptions {
            max_message_size,
            max_frame_size,
            auto_ping_interval: ping(raw.auto_ping_interval),
            auto_ping_timeout: ping(raw.auto_ping_timeout),
            open_handshake_timeout,
            close_handshake_timeout,
            require_websocket_subprotocol: raw
                .require_websocket_subprotocol
                .unwrap_or(defaults.require_websocket_subprotocol),
            outbox_messages,
        })
    }

    /// `outbox_messages` (junction extension): 1 to `MAX_OUTBOX_MESSAGES`.
    fn outbox_messages(&mut self, value: Option<u64>, path: &Path) -> Option<usize> {
        match value? {
            0 => {
                self.error(path, "must be positive");
                None
            }
            n if n > MAX_OUTBOX_MESSAGES => {
                self.error(
                    path,
                    format!("{n} exceeds the maximum of {MAX_OUTBOX_MESSAGES}"),
                );
                None
            }
            n => Some(usize::try_from(n).expect("at most MAX_OUTBOX_MESSAGES")),
        }
    }

    /// A size limit in bytes: 1 to 16 MiB. (Crossbar reads 0 as unlimited; junction enforces
    /// every limit.)
    fn size(&mut self, bytes: Option<u64>, path: &Path) -> Option<usize> {
        match bytes? {
            0 => {
                self.error(path, "must be positive (junction has no unlimited size)");
                None
            }
            n if n > MAX_MESSAGE_SIZE_LIMIT => {
                self.error(
                    path,
                    format!("{n} exceeds the maximum of {MAX_MESSAGE_SIZE_LIMIT} (16 MiB)"),
                );
                None
            }
            n => Some(usize::try_from(n).expect("at most 16 MiB")),
        }
    }

    /// A handshake timeout in milliseconds: positive.
    fn timeout(&mut self, ms: Option<u64>, path: &Path) -> Option<Duration> {
        match ms? {
            0 => {
                self.error(
                    path,
                    "must be positive (junction has no unlimited handshake)",
                );
                None
            }
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// `endpoint`: dispatch on `type`.
    fn endpoint(&mut self, value: &Value, path: &Path) -> Option<Endpoint> {
        let map = self.object(value, path)?;
        match self.kind(map, path)? {
            "tcp" => self.tcp_endpoint(value, map, path).map(Endpoint::Tcp),
            "unix" => self.unix_endpoint(value, path).map(Endpoint::Unix),
            kind if UNSUPPORTED_ENDPOINT_TYPES.contains(&kind) => {
                self.error(
                    &path.key("type"),
                    format!("endpoint type {kind:?} is not supported yet"),
                );
                None
            }
            kind => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown endpoint type {kind:?}, expected one of \"tcp\", \"unix\", {}",
                        quoted(UNSUPPORTED_ENDPOINT_TYPES)
                    ),
                );
                None
            }
        }
    }

    /// A `backlog`: 1 to 65535, default 1024.
    fn backlog(&mut self, backlog: Option<u64>, path: &Path) -> u32 {
        match backlog {
            None => DEFAULT_BACKLOG,
            Some(n @ 1..=65535) => u32::try_from(n).expect("at most 65535"),
            Some(n) => {
                self.error(
                    &path.key("backlog"),
                    format!("backlog {n} is out of range (1 to 65535)"),
                );
                DEFAULT_BACKLOG
            }
        }
    }

    fn unix_endpoint(&mut self, value: &Value, path: &Path) -> Option<UnixEndpoint> {
        let raw = self.de::<RawUnixEndpoint>(value, path)?;
        let start = self.errors.len();
        let backlog = self.backlog(raw.backlog, path);
        let socket = if raw.path.is_empty() {
            self.error(&path.key("path"), "must not be empty");
            None
        } else {
            let resolved = self.resolve(&raw.path);
            let len = resolved.as_os_str().len();
            if len > MAX_UNIX_PATH {
                self.error(
                    &path.key("path"),
                    format!(
                        "socket path {} is {len} bytes long, more than the {MAX_UNIX_PATH} a \
                         Unix socket address can hold",
                        resolved.display()
                    ),
                );
            }
            Some(resolved)
        };
        if !self.ok_since(start) {
            return None;
        }
        Some(UnixEndpoint {
            path: socket?,
            backlog,
        })
    }

    fn tcp_endpoint(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        path: &Path,
    ) -> Option<TcpEndpoint> {
        let raw = self.de::<RawTcpEndpoint>(value, path);
        let start = self.errors.len();
        // `tls` is checked even when the endpoint itself has a typo.
        let tls = get(map, "tls").map(|tls| self.tls(tls, &path.key("tls")));
        let raw = raw?;
        self.unsupported(path, raw.unsupported());
        let port = match &raw.port {
            Some(port) => self.port(port, &path.key("port")),
            // Already reported as not supported; a missing `port` would be a second error
            // for the same mistake.
            None if raw.portrange.is_some() => None,
            None => {
                self.error(path, "missing field `port`");
                None
            }
        };
        let version = match raw.version {
            None | Some(4) => IpVersion::V4,
            Some(6) => IpVersion::V6,
            Some(n) => {
                self.error(
                    &path.key("version"),
                    format!("invalid IP version {n}, expected 4 or 6"),
                );
                IpVersion::V4
            }
        };
        let interface = raw.interface.as_deref().and_then(|interface| {
            let interface_path = path.key("interface");
            let Ok(ip) = interface.parse::<IpAddr>() else {
                self.error(
                    &interface_path,
                    format!("invalid interface {interface:?}: expected an IP address"),
                );
                return None;
            };
            let matches = match version {
                IpVersion::V4 => ip.is_ipv4(),
                IpVersion::V6 => ip.is_ipv6(),
            };
            if !matches {
                let v = if version == IpVersion::V4 { 4 } else { 6 };
                self.error(
                    &interface_path,
                    format!("interface {ip} does not match IP version {v} of this endpoint"),
                );
            }
            Some(ip)
        });
        let backlog = self.backlog(raw.backlog, path);
        if !self.ok_since(start) {
            return None;
        }
        Some(TcpEndpoint {
            port: port?,
            interface,
            backlog,
            version,
            tls: match tls {
                Some(tls) => Some(tls?),
                None => None,
            },
        })
    }

    /// `endpoint.tls`: files resolved against the base directory, then loaded and checked by
    /// `crate::tls::server_config`.
    fn tls(&mut self, value: &Value, path: &Path) -> Option<TlsConfig> {
        let raw = self.object_de::<RawTls>(value, path)?;
        let start = self.errors.len();
        if raw.dhparam.is_some() {
            self.error(
                &path.key("dhparam"),
                "not supported: rustls uses ECDHE key exchange only and cannot use custom DH \
                 parameters",
            );
        }
        let min_version = match raw.min_version.as_deref() {
            None | Some("1.2") => TlsVersion::V1_2,
            Some("1.3") => TlsVersion::V1_3,
            Some(v) => {
                self.error(
                    &path.key("min_version"),
                    format!("invalid TLS version {v:?}, expected \"1.2\" or \"1.3\""),
                );
                TlsVersion::V1_2
            }
        };
        let ciphers = raw.ciphers.as_deref().map(crate::tls::split_cipher_list);
        if ciphers.as_ref().is_some_and(Vec::is_empty) {
            self.error(&path.key("ciphers"), "empty cipher list");
        }
        let files = |checker: &mut Self, key: &str, file: &str| {
            if file.is_empty() {
                checker.error(&path.key(key), "must not be empty");
            }
            checker.resolve(file)
        };
        let key = files(self, "key", &raw.key);
        let certificate = files(self, "certificate", &raw.certificate);
        let chain_certificates = raw
            .chain_certificates
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, f)| files(self, &format!("chain_certificates[{i}]"), f))
            .collect();
        let ca_certificates = raw
            .ca_certificates
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, f)| files(self, &format!("ca_certificates[{i}]"), f))
            .collect();
        if !self.ok_since(start) {
            return None;
        }
        let tls = TlsConfig {
            key,
            certificate,
            chain_certificates,
            ca_certificates,
            ciphers,
            min_version,
        };
        match crate::tls::server_config(&tls) {
            Ok(_) => Some(tls),
            Err(problems) => {
                for (key, message) in problems {
                    self.error(&path.key(&key), message);
                }
                None
            }
        }
    }

    /// A TCP port: an integer or Crossbar's `"$VAR"` environment reference.
    fn port(&mut self, value: &Value, path: &Path) -> Option<u16> {
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(port) => self.port_number(port, path, ""),
                None => {
                    self.error(
                        path,
                        format!("invalid port {n}: expected an integer from 1 to 65535"),
                    );
                    None
                }
            },
            Value::String(s) => {
                let Some(var) = syntax::env_reference(s) else {
                    self.error(
                        path,
                        format!(
                            "invalid port {s:?}: expected an integer or an environment variable \
                             reference like \"$PORT\""
                        ),
                    );
                    return None;
                };
                let Some(text) = (self.env)(var) else {
                    self.error(path, format!("environment variable {var} is not set"));
                    return None;
                };
                match text.trim().parse::<u64>() {
                    Ok(port) => {
                        self.port_number(port, path, &format!(" (from environment variable {var})"))
                    }
                    Err(_) => {
                        self.error(
                            path,
                            format!(
                                "environment variable {var} is {text:?}, which is not a port number"
                            ),
                        );
                        None
                    }
                }
            }
            other => {
                let message = format!(
                    "invalid type: {}, expected a port number or \"$VAR\"",
                    describe(other)
                );
                self.error(path, message);
                None
            }
        }
    }

    fn port_number(&mut self, port: u64, path: &Path, source: &str) -> Option<u16> {
        match u16::try_from(port) {
            Ok(0) => self.error(path, format!("port 0 is not allowed{source}")),
            Ok(port) => return Some(port),
            Err(_) => self.error(
                path,
                format!("port {port} is out of range (1 to 65535){source}"),
            ),
        }
        None
    }

    /// Records a listener; reports it when an earlier one already takes its address.
    fn listener(&mut self, endpoint: &Endpoint, path: &Path) {
        match endpoint {
            Endpoint::Tcp(tcp) => self.tcp_listener(tcp, path),
            Endpoint::Unix(unix) => {
                let first = first_use(&mut self.unix_listeners, &unix.path.to_string_lossy(), path);
                if let Some(first) = first {
                    self.error(
                        &path.key("path"),
                        format!(
                            "unix socket {} is already used by {first}",
                            unix.path.display()
                        ),
                    );
                }
            }
        }
    }

    /// Records a TCP listener; reports it when an earlier one already takes its address.
    fn tcp_listener(&mut self, endpoint: &TcpEndpoint, path: &Path) {
        let clash = self
            .listeners
            .iter()
            .find(|(other, _)| overlaps(endpoint, other))
            .map(|(_, first)| first.clone());
        match clash {
            Some(first) => {
                let on = match endpoint.interface {
                    Some(ip) => ip.to_string(),
                    None if endpoint.version == IpVersion::V4 => "all IPv4 interfaces".into(),
                    None => "all IPv6 interfaces".into(),
                };
                self.error(
                    path,
                    format!(
                        "tcp port {} on {on} is already used by {first}",
                        endpoint.port
                    ),
                );
            }
            None => self.listeners.push((endpoint.clone(), path.clone())),
        }
    }

    /// An `auth` block (of a WAMP transport or path, or MQTT `options.auth` when `mqtt`):
    /// every method walked, each problem reported at its key. `None` when anything is wrong.
    fn auth(&mut self, value: &Value, path: &Path, mqtt: bool) -> Option<ParsedAuth> {
        let start = self.errors.len();
        let map = self.secret_object(value, path)?;
        let mut parsed = ParsedAuth::default();
        let methods = map.iter().filter(|(_, config)| !config.is_null());
        let mut any = false;
        for (method, config) in methods {
            any = true;
            let method_path = path.key(method);
            match method.as_str() {
                "anonymous" => {
                    if let Some(anonymous) = self.anonymous(config, &method_path, mqtt, &mut parsed)
                    {
                        parsed.anonymous = anonymous;
                    }
                }
                "ticket" => self.ticket(config, &method_path, mqtt, &mut parsed),
                "wampcra" if mqtt => self.error(
                    &method_path,
                    "not supported for MQTT (no challenge in MQTT 3.1.1)",
                ),
                "wampcra" => self.wampcra(config, &method_path, &mut parsed),
                "cryptosign" if mqtt => self.error(
                    &method_path,
                    "not supported for MQTT (no challenge in MQTT 3.1.1)",
                ),
                "cryptosign" => self.cryptosign(config, &method_path, &mut parsed),
                "tls" => self.tls_auth(config, &method_path, &mut parsed),
                m if UNSUPPORTED_AUTH_METHODS.contains(&m) => self.error(
                    &method_path,
                    format!("authentication method {m:?} is not supported yet"),
                ),
                m => self.error(
                    &method_path,
                    format!(
                        "unknown authentication method {m:?}, expected one of {}, {}",
                        quoted(AUTH_METHODS),
                        quoted(UNSUPPORTED_AUTH_METHODS)
                    ),
                ),
            }
        }
        if !any {
            let methods = if mqtt {
                "\"anonymous\" or \"ticket\""
            } else {
                "\"anonymous\", \"ticket\", \"wampcra\" or \"cryptosign\""
            };
            self.error(
                path,
                format!(
                    "no authentication method configured (give {methods}; without `auth` \
                     anonymous access is allowed)"
                ),
            );
        }
        self.ok_since(start).then_some(parsed)
    }

    /// The `type` of an authentication method: true for `static`; `dynamic` and `function`
    /// (not supported yet) and unknown types are reported.
    fn static_method(&mut self, map: &Map<String, Value>, path: &Path) -> bool {
        match self.kind(map, path) {
            None => false,
            Some("static") => true,
            Some(kind @ ("dynamic" | "function")) => {
                self.error(
                    &path.key("type"),
                    format!("authentication type {kind:?} is not supported yet"),
                );
                false
            }
            Some(kind) => {
                self.error(
                    &path.key("type"),
                    format!(
                        "unknown authentication type {kind:?}, expected one of \"static\", \
                         \"dynamic\", \"function\""
                    ),
                );
                false
            }
        }
    }

    /// A method of `type: "dynamic"` (WAMP anonymous, ticket, wampcra, cryptosign, tls; MQTT
    /// ticket): its `authenticator` procedure
    /// (loose URI, in the session's realm) recorded as `parsed.dynamic[method]`. False when the
    /// type is not "dynamic" (the caller goes on with `static_method`).
    fn dynamic_method(
        &mut self,
        map: &Map<String, Value>,
        value: &Value,
        path: &Path,
        method: &str,
        parsed: &mut ParsedAuth,
    ) -> bool {
        if !matches!(get(map, "type"), Some(Value::String(kind)) if kind == "dynamic") {
            return false;
        }
        let Some(raw) = self.de::<RawAuthDynamic>(value, path) else {
            return true;
        };
        let start = self.errors.len();
        self.procedure(&raw.authenticator, &path.key("authenticator"));
        if self.ok_since(start) {
            parsed.dynamic.insert(method.to_owned(), raw.authenticator);
            if let Some(realm) = raw.authenticator_realm {
                self.realm_refs
                    .push((realm.clone(), path.key("authenticator-realm")));
                parsed.dynamic_realm.insert(method.to_owned(), realm);
            }
        }
        true
    }

    /// `auth.anonymous` (`None` for a dynamic one, recorded in `parsed.dynamic`).
    fn anonymous(
        &mut self,
        value: &Value,
        path: &Path,
        mqtt: bool,
        parsed: &mut ParsedAuth,
    ) -> Option<Anonymous> {
        let map = self.secret_object(value, path)?;
        if !mqtt && self.dynamic_method(map, value, path, "anonymous", parsed) {
            return None;
        }
        if !self.static_method(map, path) {
            return None;
        }
        let raw = self.de::<RawAnonymousStatic>(value, path)?;
        let start = self.errors.len();
        self.unsupported(path, raw.unsupported());
        let anonymous = match raw.role {
            Some(role) if role.is_empty() => {
                self.error(&path.key("role"), "role name must not be empty");
                return None;
            }
            Some(role) => Anonymous::Role(role, path.key("role")),
            None => Anonymous::DefaultRole(path.clone()),
        };
        self.ok_since(start).then_some(anonymous)
    }

    /// `auth.ticket` (static `principals`: authid → `{ticket, role}`).
    fn ticket(&mut self, value: &Value, path: &Path, mqtt: bool, parsed: &mut ParsedAuth) {
        let Some(map) = self.secret_object(value, path) else {
            return;
        };
        if self.dynamic_method(map, value, path, "ticket", parsed) {
            return;
        }
        if !self.static_method(map, path) {
            return;
        }
        if let Some(raw) = self.de::<RawTicketStatic>(value, path) {
            if raw.default_role.is_some() {
                self.unsupported_key(path, "default-role");
            }
        }
        let purpose = if mqtt {
            "for MQTT ticket principal"
        } else {
            "for ticket principal"
        };
        let (entries, entries_path) = self.principals(map, "principals", path);
        for (authid, entry) in entries.into_iter().flatten() {
            let Some(entry_path) = self.principal(authid, entry, &entries_path) else {
                continue;
            };
            let authid = authid.clone();
            let Some(raw) = self.de::<RawTicketPrincipal>(entry, &entry_path) else {
                continue;
            };
            let ticket = self.secret(raw.ticket.as_ref(), "ticket", &entry_path);
            let role = self.principal_role(raw.role, &entry_path, &format!("{purpose} {authid:?}"));
            if let (Some(ticket), Some(role)) = (ticket, role) {
                parsed.ticket.insert(
                    authid,
                    TicketPrincipal {
                        ticket,
                        role: role.role.clone(),
                    },
                );
                parsed.roles.push(role);
            }
        }
    }

    /// `auth.tls` (static `principals`: authid → `{certificate-sha1, role}`).
    fn tls_auth(&mut self, value: &Value, path: &Path, parsed: &mut ParsedAuth) {
        let Some(map) = self.secret_object(value, path) else {
            return;
        };
        if self.dynamic_method(map, value, path, "tls", parsed) {
            return;
        }
        if !self.static_method(map, path) {
            return;
        }
        if self.de::<RawTlsStatic>(value, path).is_none() {
            return;
        }
        let (entries, entries_path) = self.principals(map, "principals", path);
        for (authid, entry) in entries.into_iter().flatten() {
            let Some(entry_path) = self.principal(authid, entry, &entries_path) else {
                continue;
            };
            let Some(raw) = self.de::<RawTlsPrincipal>(entry, &entry_path) else {
                continue;
            };
            let hex: String = raw.certificate_sha1.chars().filter(|c| *c != ':').collect();
            if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                self.error(
                    &entry_path.key("certificate-sha1"),
                    "must be a SHA-1 fingerprint: 40 hex digits, optionally separated by ':'",
                );
                continue;
            }
            let upper = hex.to_ascii_uppercase();
            let fingerprint = upper
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":");
            let purpose = format!("for tls principal {authid:?}");
            let Some(role) = self.principal_role(raw.role, &entry_path, &purpose) else {
                continue;
            };
            if parsed.tls.values().any(|p| &p.authid == authid)
                || parsed.tls.contains_key(&fingerprint)
            {
                self.error(
                    &entry_path.key("certificate-sha1"),
                    "this certificate is already listed",
                );
                continue;
            }
            parsed.tls.insert(
                fingerprint,
                crate::config::TlsPrincipal {
                    authid: authid.clone(),
                    role: role.role.clone(),
                },
            );
            parsed.roles.push(role);
        }
    }

    /// `auth.wampcra` (static `users`: authid → `{secret, role, salt?, iterations?, keylen?}`).
    fn wampcra(&mut self, value: &Value, path: &Path, parsed: &mut ParsedAuth) {
        let Some(map) = self.secret_object(value, path) else {
            return;
        };
        if self.dynamic_method(map, value, path, "wampcra", parsed) {
            return;
        }
        if !self.static_method(map, path) {
            return;
        }
        if let Some(raw) = self.de::<RawWampCraStatic>(value, path) {
            if raw.default_role.is_some() {
                self.unsupported_key(path, "default-role");
            }
        }
        let (entries, entries_path) = self.principals(map, "users", path);
        for (authid, entry) in entries.into_iter().flatten() {
            let Some(entry_path) = self.principal(authid, entry, &entries_path) else {
                continue;
            };
            let authid = authid.clone();
            let Some(raw) = self.de::<RawCraUser>(entry, &entry_path) else {
                continue;
            };
            let start = self.errors.len();
            let secret = self.secret(raw.secret.as_ref(), "secret", &entry_path);
            let role = self.principal_role(
                raw.role,
                &entry_path,
                &format!("for WAMP-CRA user {authid:?}"),
            );
            let iterations = self.in_range(
                raw.iterations,
                1,
                u64::from(u32::MAX),
                &entry_path.key("iterations"),
            );
            let keylen = self.in_range(raw.keylen, 1, MAX_CRA_KEYLEN, &entry_path.key("keylen"));
            let salt = match raw.salt {
                Some(salt) => Some((
                    salt,
                    iterations.map_or(DEFAULT_CRA_ITERATIONS, |n| {
                        u32::try_from(n).expect("at most u32::MAX")
                    }),
                    keylen.map_or(DEFAULT_CRA_KEYLEN, |n| {
                        u32::try_from(n).expect("at most MAX_CRA_KEYLEN")
                    }),
                )),
                None => {
                    for (key, given) in [("iterations", iterations), ("keylen", keylen)] {
                        if given.is_some() {
                            self.warning(
                                &entry_path.key(key),
                                "has no effect without `salt` (the secret is used as it is)",
                            );
                        }
                    }
                    None
                }
            };
            if !self.ok_since(start) {
                continue;
            }
            if let (Some(secret), Some(role)) = (secret, role) {
                parsed.wampcra.insert(
                    authid,
                    CraUser {
                        secret,
                        role: role.role.clone(),
                        salt,
                    },
                );
                parsed.roles.push(role);
            }
        }
    }

    /// `auth.cryptosign` (static `principals`: authid → `{authorized_keys, role}`). A key
    /// identifies one authid: the same key under two authids is an error.
    fn cryptosign(&mut self, value: &Value, path: &Path, parsed: &mut ParsedAuth) {
        let Some(map) = self.secret_object(value, path) else {
            return;
        };
        if self.dynamic_method(map, value, path, "cryptosign", parsed) {
            return;
        }
        if !self.static_method(map, path) {
            return;
        }
        let mut trustroots = false;
        if let Some(raw) = self.de::<RawCryptosignStatic>(value, path) {
            for (key, given) in [
                ("trustroots", raw.trustroots.is_some()),
                ("trustroot", raw.trustroot.is_some()),
            ] {
                if given {
                    trustroots = true;
                    self.unsupported_key(path, key);
                }
            }
        }
        // Crossbar takes `principals` or trustroots: without `principals`, the unsupported
        // trustroots are the whole story.
        if trustroots && get(map, "principals").is_none() {
            return;
        }
        // Each key, with the authid and path of its first listing.
        let mut seen = HashMap::new();
        let (entries, entries_path) = self.principals(map, "principals", path);
        for (authid, entry) in entries.into_iter().flatten() {
            let Some(entry_path) = self.principal(authid, entry, &entries_path) else {
                continue;
            };
            let Some(raw) = self.de::<RawCryptosignPrincipal>(entry, &entry_path) else {
                continue;
            };
            let start = self.errors.len();
            if raw.realm.is_some() {
                self.unsupported_key(&entry_path, "realm");
            }
            let keys =
                self.authorized_keys(raw.authorized_keys.as_ref(), authid, &entry_path, &mut seen);
            let role = self.principal_role(
                raw.role,
                &entry_path,
                &format!("for cryptosign principal {authid:?}"),
            );
            if !self.ok_since(start) {
                continue;
            }
            if let (Some(authorized_keys), Some(role)) = (keys, role) {
                parsed.cryptosign.insert(
                    authid.clone(),
                    CryptosignPrincipal {
                        authorized_keys,
                        role: role.role.clone(),
                    },
                );
                parsed.roles.push(role);
            }
        }
    }

    /// The `authorized_keys` of the cryptosign principal `authid` at `path`: a non-empty list
    /// of Ed25519 public keys, 64 hex characters each. `seen` maps the keys listed so far in
    /// this block to their authid and path. No message quotes a key.
    fn authorized_keys(
        &mut self,
        value: Option<&Value>,
        authid: &str,
        path: &Path,
        seen: &mut HashMap<[u8; 32], (String, Path)>,
    ) -> Option<Vec<[u8; 32]>> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            self.error(path, "missing field `authorized_keys`");
            return None;
        };
        let path = path.key("authorized_keys");
        let Value::Array(items) = value else {
            self.error(
                &path,
                format!("invalid type: {}, expected a sequence", json_type(value)),
            );
            return None;
        };
        if items.is_empty() {
            self.error(&path, "must list at least one public key");
            return None;
        }
        let start = self.errors.len();
        let mut keys = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let key_path = path.index(i);
            let Value::String(text) = item else {
                self.error(
                    &key_path,
                    format!("invalid type: {}, expected a string", json_type(item)),
                );
                continue;
            };
            let key = match ed25519_public_key(text) {
                Ok(key) => key,
                Err(message) => {
                    self.error(&key_path, message);
                    continue;
                }
            };
            match seen.get(&key) {
                Some((first, first_path)) if first == authid => self.warning(
                    &key_path,
                    format!("the same public key as {first_path} (listed twice)"),
                ),
                Some((first, first_path)) => self.error(
                    &key_path,
                    format!(
                        "the same public key is already listed for {first:?} at {first_path} \
                         (a key identifies one authid)"
                    ),
                ),
                None => {
                    seen.insert(key, (authid.to_owned(), key_path));
                    keys.push(key);
                }
            }
        }
        self.ok_since(start).then_some(keys)
    }

    /// The principal map `key` of a static method (`principals`, `users`), required, and its
    /// path; problems are reported (`None` then).
    fn principals<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        key: &str,
        path: &Path,
    ) -> (Option<&'v Map<String, Value>>, Path) {
        let map_path = path.key(key);
        let entries = match get(map, key) {
            Some(value) => self.secret_object(value, &map_path),
            None => {
                self.error(path, format!("missing field `{key}`"));
                None
            }
        };
        (entries, map_path)
    }

    /// The path of one principal (an entry of `principals` or `users`), when its authid is not
    /// empty and it is an object; problems are reported.
    fn principal(&mut self, authid: &str, entry: &Value, path: &Path) -> Option<Path> {
        let entry_path = path.entry(authid);
        if authid.is_empty() {
            self.error(&entry_path, "authid must not be empty");
            return None;
        }
        self.secret_object(entry, &entry_path)?;
        Some(entry_path)
    }

    /// The `role` of a principal: non-empty; returned as the reference to check.
    fn principal_role(&mut self, role: String, path: &Path, purpose: &str) -> Option<RoleRef> {
        let role_path = path.key("role");
        if role.is_empty() {
            self.error(&role_path, "role name must not be empty");
            return None;
        }
        Some(RoleRef::new(role, role_path, purpose))
    }

    /// A secret (`ticket`, WAMP-CRA `secret`) of the principal at `path`: a non-empty string,
    /// or `"${VAR}"` to read it from the environment (Crossbar's `maybe_from_env`). No message
    /// ever quotes the value.
    fn secret(&mut self, value: Option<&Value>, key: &str, path: &Path) -> Option<String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            self.error(path, format!("missing field `{key}`"));
            return None;
        };
        let path = path.key(key);
        let Value::String(text) = value else {
            self.error(
                &path,
                format!("invalid type: {}, expected a string", json_type(value)),
            );
            return None;
        };
        match syntax::env_secret_reference(text) {
            Some(var) => match (self.env)(var) {
                Some(secret) if secret.is_empty() => {
                    self.error(&path, format!("environment variable {var} is empty"));
                    None
                }
                Some(secret) => Some(secret),
                None => {
                    self.error(&path, format!("environment variable {var} is not set"));
                    None
                }
            },
            None if text.is_empty() => {
                self.error(&path, "must not be empty");
                None
            }
            None => Some(text.clone()),
        }
    }

    /// `value` as a JSON object, or an error naming only the JSON type found, never the value
    /// (inside `auth`, a misplaced value may be a secret).
    fn secret_object<'v>(
        &mut self,
        value: &'v Value,
        path: &Path,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(
                    path,
                    format!("invalid type: {}, expected a map", json_type(other)),
                );
                None
            }
        }
    }

    /// Reports `key` (inside `path`) as not supported yet.
    fn unsupported_key(&mut self, path: &Path, key: &str) {
        self.error(&path.key(key), "not supported yet");
    }
}

impl From<RawMatch> for MatchPolicy {
    fn from(raw: RawMatch) -> Self {
        match raw {
            RawMatch::Exact => Self::Exact,
            RawMatch::Prefix => Self::Prefix,
            RawMatch::Wildcard => Self::Wildcard,
        }
    }
}

/// A count or size from the config; saturates where `usize` is narrower than 64 bits.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `map[key]`, treating JSON `null` as absent.
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// Records the first use of `name` at `path`; returns the earlier path on a repeat.
fn first_use(seen: &mut HashMap<String, Path>, name: &str, path: &Path) -> Option<Path> {
    match seen.get(name) {
        Some(first) => Some(first.clone()),
        None => {
            seen.insert(name.to_owned(), path.clone());
            None
        }
    }
}

/// Whether two TCP listeners cannot both bind: same port and IP version, and the same
/// interface or either one on all interfaces.
fn overlaps(a: &TcpEndpoint, b: &TcpEndpoint) -> bool {
    let everywhere = |e: &TcpEndpoint| e.interface.is_none_or(|ip| ip.is_unspecified());
    a.port == b.port
        && a.version == b.version
        && (everywhere(a) || everywhere(b) || a.interface == b.interface)
}

/// `"a", "b", "c"`.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An Ed25519 public key written as 64 hex digits (either case). The error never quotes the
/// text: a private key pasted by mistake must not end up in a log.
fn ed25519_public_key(text: &str) -> Result<[u8; 32], String> {
    const EXPECTED: &str = "must be an Ed25519 public key (64 hex characters)";
    let chars = text.chars().count();
    if chars != 64 {
        return Err(format!("{EXPECTED}, not {chars} characters"));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{EXPECTED}: found a character that is not a hex digit"
        ));
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    };
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = nibble(pair[0]) << 4 | nibble(pair[1]);
    }
    Ok(key)
}

/// The JSON type of a value, without the value (for nodes that may hold a secret).
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "floating point",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "map",
    }
}

/// A JSON value as serde names it in "invalid type" errors.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// The auth of a transport that allows anonymous access only.
fn anonymous_only(role: &str) -> std::sync::Arc<crate::config::TransportAuth> {
    std::sync::Arc::new(crate::config::TransportAuth {
        anonymous: Some(role.to_owned()),
        password_file_role: role.to_owned(),
        ..Default::default()
    })
}
