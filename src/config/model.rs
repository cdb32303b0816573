//! Validated node configuration: the only config types runtime code sees.
//!
//! Built by `config::load` from a Crossbar version-2 `config.json` after every check passed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::Serializer;

/// The whole node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `controller.id`, if given.
    pub controller_id: Option<String>,
    /// `controller.options.title`, if given.
    pub title: Option<String>,
    /// Router workers (`workers[]` of type `router`).
    pub routers: Vec<RouterWorker>,
}

/// One router worker: realms and the transports that reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterWorker {
    /// `id`, if given.
    pub id: Option<String>,
    /// `realms[]`.
    pub realms: Vec<RealmConfig>,
    /// `transports[]`.
    pub transports: Vec<TransportConfig>,
}

/// `realms[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealmConfig {
    /// Realm name (a WAMP URI).
    pub name: String,
    /// `roles[]`, in config order.
    pub roles: Vec<RoleConfig>,
    /// `options.uri_check` (default loose, as Crossbar's router).
    pub uri_check: UriCheck,
    /// `options.mqtt` (junction extension): broker settings of this realm.
    pub mqtt: RealmMqtt,
    /// `options.max_subscriptions_per_session` / `options.max_registrations_per_session`
    /// (junction extensions).
    pub limits: SessionLimits,
    /// Where persistent state goes (`<cbdir>/junction-<realm>.redb`); `None` when the config
    /// was parsed without a node directory, or persistence is off.
    pub store_path: Option<PathBuf>,
}

/// How URIs from peers are checked (WAMP spec "strict" and "loose" rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UriCheck {
    /// Components match `^[0-9a-z_]+$` (empty components only where patterns allow).
    Strict,
    /// Components match `^[^\s\.#]+$` (the default, as in Crossbar).
    #[default]
    Loose,
}

/// `roles[j]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    /// Role name (the `authrole`).
    pub name: String,
    /// `permissions[]`, in config order (empty for a dynamic role).
    pub permissions: Vec<Permission>,
    /// `authorizer`: the procedure that authorizes this role's sessions (a dynamic role).
    pub authorizer: Option<String>,
}

/// How a URI pattern in config or in SUBSCRIBE/REGISTER options matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchPolicy {
    /// The whole URI.
    #[default]
    Exact,
    /// String prefix (Crossbar semantics: `com.ex` matches `com.example`).
    Prefix,
    /// Same number of components; empty components match any one component.
    Wildcard,
}

/// `permissions[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    /// URI or pattern (may be empty for a prefix catch-all).
    pub uri: String,
    /// `match` (default exact, or derived from a legacy trailing `*`).
    pub match_policy: MatchPolicy,
    /// `allow`.
    pub allow: Allow,
    /// `disclose`.
    pub disclose: Disclose,
    /// `cache` (accepted; static permissions are always evaluated in memory).
    pub cache: bool,
}

/// `allow{...}`: all default to false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    /// CALL.
    pub call: bool,
    /// REGISTER.
    pub register: bool,
    /// PUBLISH.
    pub publish: bool,
    /// SUBSCRIBE.
    pub subscribe: bool,
}

/// `disclose{...}`: all default to false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disclose {
    /// Disclose the caller to callees.
    pub caller: bool,
    /// Disclose the publisher to subscribers.
    pub publisher: bool,
}

/// One listening transport.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
    /// `type: "websocket"`.
    WebSocket(WebSocketTransport),
    /// `type: "rawsocket"`.
    RawSocket(RawSocketTransport),
    /// `type: "web"`.
    Web(WebTransport),
    /// `type: "universal"`: one port, protocol sniffed per connection.
    Universal(UniversalTransport),
    /// `type: "mqtt"`: an MQTT 3.1.1 broker endpoint.
    Mqtt(MqttTransport),
}

/// MQTT settings (the `options` of an `mqtt` transport, or the universal `mqtt` key, or a
/// WebSocket path of `type: "mqtt"`).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    /// `options.realm` (required): the realm MQTT clients join.
    pub realm: String,
    /// `options.role` (default "anonymous"): the authrole of MQTT clients.
    pub role: String,
    /// `options.max_packet_size` (junction extension, bytes, default 1 MiB): larger packets
    /// close the connection.
    pub max_packet_size: usize,
    /// `options.max_inflight` (junction extension, default 32): unacknowledged QoS 1/2
    /// messages in flight to one client; more are queued.
    pub max_inflight: usize,
    /// `options.max_queued_messages` (junction extension, default 1000): messages queued per
    /// client session (offline, or beyond the in-flight window); 0 = no limit. Beyond it new
    /// QoS 1/2 messages are dropped and counted, as mosquitto does.
    pub max_queued_messages: usize,
    /// `options.max_queued_bytes` (junction extension, default 0 = no byte limit).
    pub max_queued_bytes: usize,
    /// `options.session_expiry` (junction extension, seconds, default 0 = never): a persistent
    /// session unused for this long is discarded.
    pub session_expiry: Option<Duration>,
    /// `options.max_keepalive` (junction extension, seconds, default 65535): below 65535, a
    /// CONNECT asking for a larger keepalive, or none (0), is refused with CONNACK 0x02, as
    /// mosquitto's `max_keepalive` does for MQTT 3.1.1.
    pub max_keepalive: u16,
    /// `options.payload_mapping` (absent: passthrough for every URI).
    pub payload_mapping: Arc<PayloadMapping>,
    /// `options.auth` (and `password_file`, `allow_anonymous`): who may connect.
    pub auth: Arc<TransportAuth>,
    /// Connect deadline: CONNECT must arrive within this time (`options.connect_timeout`, ms,
    /// junction extension, default 10 s).
    pub connect_timeout: Duration,
}

/// Authentication accepted on one transport (Crossbar's transport `auth`, plus the
/// mosquitto-style sources for MQTT).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportAuth {
    /// `anonymous` (role), `None` when anonymous access is off. Without an `auth` block
    /// anonymous is on with role "anonymous" (Crossbar).
    pub anonymous: Option<String>,
    /// `ticket` (static `principals`): authid → (ticket, role).
    pub ticket: std::collections::BTreeMap<String, TicketPrincipal>,
    /// `wampcra` (static `users`): authid → user.
    pub wampcra: std::collections::BTreeMap<String, CraUser>,
    /// `cryptosign` (static `principals`): authid → (authorized Ed25519 public keys, role).
    pub cryptosign: std::collections::BTreeMap<String, CryptosignPrincipal>,
    /// `tls` (static `principals` by `certificate-sha1`): normalized fingerprint
    /// (`AA:BB:...`, upper case) → principal.
    pub tls: std::collections::BTreeMap<String, TlsPrincipal>,
    /// `type: "dynamic"` methods: method ("ticket", "wampcra", ...) → authenticator procedure.
    /// Checked before the static principals of the same method.
    pub dynamic: std::collections::BTreeMap<String, String>,
    /// `authenticator-realm` of a dynamic method: the realm the authenticator is registered in
    /// (absent: the realm the client joins).
    pub dynamic_realm: std::collections::BTreeMap<String, String>,
    /// MQTT only: a mosquitto `password_file` (users get `password_file_role`).
    pub password_file: Option<PathBuf>,
    /// Role of users authenticated by `password_file`.
    pub password_file_role: String,
    /// MQTT only: a mosquitto `acl_file`, checked on top of the role's permissions.
    pub acl_file: Option<PathBuf>,
}

impl Default for TransportAuth {
    fn default() -> Self {
        Self {
            anonymous: Some("anonymous".into()),
            ticket: Default::default(),
            wampcra: Default::default(),
            cryptosign: Default::default(),
            tls: Default::default(),
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            password_file: None,
            password_file_role: "anonymous".into(),
            acl_file: None,
        }
    }
}

/// A `ticket` principal.
#[derive(Clone, PartialEq)]
pub struct TicketPrincipal {
    /// The ticket (secret; never logged).
    pub ticket: String,
    /// Role granted.
    pub role: String,
}

impl std::fmt::Debug for TicketPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketPrincipal")
            .field("ticket", &"<secret>")
            .field("role", &self.role)
            .finish()
    }
}

/// A `tls` principal (client certificate).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPrincipal {
    /// authid.
    pub authid: String,
    /// Role granted.
    pub role: String,
}

/// A `cryptosign` principal.
#[derive(Debug, Clone, PartialEq)]
pub struct CryptosignPrincipal {
    /// `authorized_keys`: raw 32-byte Ed25519 public keys (hex in config).
    pub authorized_keys: Vec<[u8; 32]>,
    /// Role granted.
    pub role: String,
}

/// A `wampcra` user.
#[derive(Clone, PartialEq)]
pub struct CraUser {
    /// The secret (never logged).
    pub secret: String,
    /// Role granted.
    pub role: String,
    /// Salted secrets: (salt, iterations, keylen) for PBKDF2-HMAC-SHA256 (Autobahn's
    /// `derive_key`).
    pub salt: Option<(String, u32, u32)>,
}

impl std::fmt::Debug for CraUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CraUser")
            .field("secret", &"<secret>")
            .field("role", &self.role)
            .field("salt", &self.salt)
            .finish()
    }
}

/// How payloads cross between MQTT and WAMP for URIs under one prefix (`payload_mapping`).
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadFormat {
    /// `passthrough`: MQTT bytes ↔ WAMP payload passthru mode (`enc_algo`/`ppt_scheme` "mqtt").
    Passthrough,
    /// `native` with `serializer`: MQTT bytes are `{"args": [...], "kwargs": {...}}` in that
    /// serializer (plus the black/white-listing keys, MQTT → WAMP).
    Native(Serializer),
    /// `utf8` (junction extension): MQTT bytes are UTF-8 text ↔ WAMP `args[0]` string.
    Utf8,
    /// `dynamic`: WAMP procedures of the realm convert (`decoder(wamp_uri, mqtt_topic,
    /// payload)` → publish options dict; `encoder(mqtt_topic, wamp_uri, args, kwargs)` → bytes).
    Dynamic {
        /// Procedure for WAMP → MQTT.
        encoder: String,
        /// Procedure for MQTT → WAMP.
        decoder: String,
    },
}

/// `options.payload_mapping`: WAMP URI prefix → format, looked up by the longest prefix
/// (character-wise, as Crossbar's `StringTrie`). A URI no key matches does not cross.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PayloadMapping {
    /// (prefix, format), longest prefix first.
    pub entries: Vec<(String, PayloadFormat)>,
}

impl PayloadMapping {
    /// The mapping used when `payload_mapping` is absent: passthrough for everything.
    pub fn passthrough() -> Self {
        Self {
            entries: vec![(String::new(), PayloadFormat::Passthrough)],
        }
    }

    /// The format for `uri`, if any key is a prefix of it.
    pub fn lookup(&self, uri: &str) -> Option<&PayloadFormat> {
        self.entries
            .iter()
            .find(|(p, _)| uri.starts_with(p.as_str()))
            .map(|(_, f)| f)
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            realm: "realm1".into(),
            role: "anonymous".into(),
            max_packet_size: 1 << 20,
            max_inflight: 32,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            session_expiry: None,
            max_keepalive: 65535,
            connect_timeout: Duration::from_secs(10),
            payload_mapping: Arc::new(PayloadMapping::passthrough()),
            auth: Arc::new(TransportAuth::default()),
        }
    }
}

/// A standalone `mqtt` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttTransport {
    /// `id`.
    pub id: Option<String>,
    /// `endpoint`.
    pub endpoint: Endpoint,
    /// Settings.
    pub settings: MqttSettings,
    /// `max_connections` (junction extension).
    pub max_connections: Option<usize>,
}

/// Realm-level MQTT broker settings (junction extension: realm `options.mqtt`).
#[derive(Debug, Clone, PartialEq)]
pub struct RealmMqtt {
    /// `persistence` (default true): retained messages and persistent sessions are stored in
    /// `<cbdir>/junction-<realm>.redb` and survive a restart. false keeps them in memory only.
    pub persistence: bool,
    /// `sys_interval` (seconds, default 10, 0 = off): how often `$SYS/broker/...` topics are
    /// published.
    pub sys_interval: Option<Duration>,
    /// `max_retained` (default 100 000): retained messages the realm keeps (MQTT and WAMP
    /// alike); when full, a topic without a retained message gets none.
    pub max_retained: usize,
}

impl Default for RealmMqtt {
    fn default() -> Self {
        Self {
            persistence: true,
            sys_interval: Some(Duration::from_secs(10)),
            max_retained: 100_000,
        }
    }
}

/// What one session (WAMP or MQTT) may hold in a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Subscriptions (WAMP) or subscribed filters (MQTT) per session (default 10 000).
    pub max_subscriptions: usize,
    /// Registrations per WAMP session (default 10 000).
    pub max_registrations: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_subscriptions: 10_000,
            max_registrations: 10_000,
        }
    }
}

/// A listening endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// `type: "tcp"` (optionally with `tls`).
    Tcp(TcpEndpoint),
    /// `type: "unix"`.
    Unix(UnixEndpoint),
}

impl Endpoint {
    /// The TCP endpoint, if this is one.
    pub fn tcp(&self) -> Option<&TcpEndpoint> {
        match self {
            Endpoint::Tcp(t) => Some(t),
            Endpoint::Unix(_) => None,
        }
    }
}

/// A Unix-domain socket endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct UnixEndpoint {
    /// `path`: absolute and lexically normalised (relative paths are resolved against the node
    /// directory). Unique across the node.
    pub path: PathBuf,
    /// `backlog` (default 1024).
    pub backlog: u32,
}

/// `endpoint.tls`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// `key`: PEM private key file (absolute; relative paths in the config are resolved
    /// against the node directory). Every file of a validated config was readable and valid
    /// when it was loaded; build the rustls config with `crate::tls::server_config`.
    pub key: PathBuf,
    /// `certificate`: PEM certificate file.
    pub certificate: PathBuf,
    /// `chain_certificates`: intermediate certificates sent after `certificate`.
    pub chain_certificates: Vec<PathBuf>,
    /// `ca_certificates`: when non-empty, clients must present a certificate signed by one.
    pub ca_certificates: Vec<PathBuf>,
    /// `ciphers`: IANA/OpenSSL cipher suite names, mapped to rustls suites (`None` = rustls
    /// defaults).
    pub ciphers: Option<Vec<String>>,
    /// Minimum protocol version (`min_version`, junction extension: "1.2" default or "1.3").
    pub min_version: TlsVersion,
}

/// TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[default]
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// RawSocket settings (standalone transport or the `rawsocket` key of a universal one).
#[derive(Debug, Clone, PartialEq)]
pub struct RawSocketSettings {
    /// `serializers` (default all four).
    pub serializers: Vec<Serializer>,
    /// `options.max_message_size` in bytes (default 16 MiB = 2^24, the RawSocket maximum).
    pub max_message_size: usize,
    /// Role of anonymous sessions (`auth.anonymous.role`, default "anonymous").
    pub anonymous_role: String,
    /// `auth`: every method this transport accepts (`anonymous` mirrors `anonymous_role`).
    pub auth: Arc<TransportAuth>,
    /// `options.open_handshake_timeout` (ms; default 10 s): handshake + HELLO deadline.
    pub open_handshake_timeout: Duration,
    /// `options.auto_ping_interval` (ms; junction sends RawSocket PINGs; `None` = off).
    pub auto_ping_interval: Option<Duration>,
    /// `options.auto_ping_timeout` (ms; `None` = off).
    pub auto_ping_timeout: Option<Duration>,
    /// `options.outbox_messages` (junction extension, default 1024).
    pub outbox_messages: usize,
}

impl Default for RawSocketSettings {
    fn default() -> Self {
        Self {
            serializers: Serializer::ALL.to_vec(),
            max_message_size: 1 << 24,
            anonymous_role: "anonymous".into(),
            auth: Arc::new(TransportAuth::default()),
            open_handshake_timeout: Duration::from_secs(10),
            auto_ping_interval: None,
            auto_ping_timeout: None,
            outbox_messages: 1024,
        }
    }
}

/// A standalone `rawsocket` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSocketTransport {
    /// `id`.
    pub id: Option<String>,
    /// `endpoint` (tcp, with optional tls, or unix).
    pub endpoint: Endpoint,
    /// Settings.
    pub settings: RawSocketSettings,
    /// `max_connections` (junction extension; `None` = unlimited).
    pub max_connections: Option<usize>,
}

/// WebSocket settings of one path (universal `websocket` map, or a web `websocket` service).
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketSettings {
    /// `serializers`.
    pub serializers: Vec<Serializer>,
    /// `options`.
    pub options: WebSocketOptions,
    /// Role of anonymous sessions.
    pub anonymous_role: String,
    /// `auth`: every method this path accepts (`anonymous` mirrors `anonymous_role`).
    pub auth: Arc<TransportAuth>,
}

/// One service of a web path map.
#[derive(Debug, Clone, PartialEq)]
pub enum WebService {
    /// `type: "static"`.
    Static(StaticService),
    /// `type: "redirect"`: 302 to `url`.
    Redirect {
        /// Target URL.
        url: String,
    },
    /// `type: "json"`: serve `value` as application/json.
    Json {
        /// The document.
        value: serde_json::Value,
    },
    /// `type: "nodeinfo"`: a page describing the node.
    NodeInfo,
    /// `type: "websocket"`: WAMP over WebSocket on this path.
    WebSocket(WebSocketSettings),
}

/// `type: "static"`.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticService {
    /// `directory`: an absolute, lexically normalised path to an existing directory (relative
    /// paths are resolved against the node directory, as Crossbar: `..` is the app dir).
    pub directory: PathBuf,
    /// `options.enable_directory_listing` (default false).
    pub enable_directory_listing: bool,
    /// `options.mime_types`: lower-case extension with its dot (".wasm") → MIME type
    /// overrides. Match file extensions case-insensitively.
    pub mime_types: std::collections::BTreeMap<String, String>,
    /// `options.cache_timeout` in seconds: `Cache-Control: max-age=N, public` (and `Expires`).
    /// Absent in the config → 43200 (Crossbar's 12 h default); `null` → `None` = no header.
    pub cache_timeout: Option<u64>,
    /// The directory index file name: always "index.html" (served for a request of a
    /// directory, as Twisted's index). Not configurable: Crossbar's `options.default_file` is
    /// a different thing, see `fallback_file`.
    pub default_file: String,
    /// `options.default_file` (Crossbar's name): a file, relative to `directory`, served with
    /// 200 instead of a 404 for any path of this service that does not exist (single-page
    /// apps). `None` = 404.
    pub fallback_file: Option<String>,
}

/// A web path map: first path component → service; `"/"` is the root.
pub type WebPaths = std::collections::BTreeMap<String, WebService>;

/// A standalone `web` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct WebTransport {
    /// `id`.
    pub id: Option<String>,
    /// `endpoint`.
    pub endpoint: Endpoint,
    /// `paths`.
    pub paths: WebPaths,
    /// `max_connections` (junction extension).
    pub max_connections: Option<usize>,
}

/// A `universal` transport: RawSocket, MQTT, WebSocket and web on one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct UniversalTransport {
    /// `id`.
    pub id: Option<String>,
    /// `endpoint`.
    pub endpoint: Endpoint,
    /// `rawsocket` (`None`: RawSocket connections are refused).
    pub rawsocket: Option<RawSocketSettings>,
    /// `websocket`: first path component → settings.
    pub websocket: std::collections::BTreeMap<String, WebSocketSettings>,
    /// `web.paths` (`None`: plain HTTP gets 404 except WebSocket paths).
    pub web: Option<WebPaths>,
    /// `mqtt` (`None`: MQTT connections get CONNACK 0x03 "server unavailable").
    pub mqtt: Option<MqttSettings>,
    /// WebSocket paths that carry MQTT (`websocket.<path>.type: "mqtt"`, subprotocols `mqtt`
    /// and `mqttv3.1`).
    pub mqtt_websocket: std::collections::BTreeMap<String, MqttSettings>,
    /// `max_connections` (junction extension).
    pub max_connections: Option<usize>,
}

/// A `websocket` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketTransport {
    /// `id`, if given.
    pub id: Option<String>,
    /// `endpoint`.
    pub endpoint: Endpoint,
    /// `max_connections` (junction extension).
    pub max_connections: Option<usize>,
    /// The HTTP path that upgrades: the path of `url` when given, else `None` (any path, as
    /// Crossbar's standalone websocket transport).
    pub path: Option<String>,
    /// `serializers` (default: all four), in preference order.
    pub serializers: Vec<Serializer>,
    /// `options`.
    pub options: WebSocketOptions,
    /// The authrole of anonymous sessions: `auth.anonymous.role` (type `static`), or
    /// `"anonymous"` when there is no `auth` or no `role` (Crossbar's default). Always a role of
    /// a realm of the same worker.
    pub anonymous_role: String,
    /// `auth`: every method this transport accepts (`anonymous` mirrors `anonymous_role`).
    pub auth: Arc<TransportAuth>,
}

/// A TCP listening endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpEndpoint {
    /// `port`.
    pub port: u16,
    /// `interface` (default: all interfaces of `version`).
    pub interface: Option<IpAddr>,
    /// `backlog` (default 1024).
    pub backlog: u32,
    /// `version` 4 or 6 (default 4).
    pub version: IpVersion,
    /// `tls`, if the endpoint is encrypted.
    pub tls: Option<TlsConfig>,
}

/// IP version of a TCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    /// IPv4 (default).
    #[default]
    V4,
    /// IPv6.
    V6,
}

/// WebSocket `options` that junction honours.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketOptions {
    /// `max_message_size` in bytes (default 1 MiB). Larger messages close with 1009.
    pub max_message_size: usize,
    /// `max_frame_size` in bytes (default = `max_message_size`).
    pub max_frame_size: usize,
    /// `auto_ping_interval` (ms in config; `None` = no pings).
    pub auto_ping_interval: Option<Duration>,
    /// `auto_ping_timeout` (ms in config; `None` = wait forever for the pong).
    pub auto_ping_timeout: Option<Duration>,
    /// `open_handshake_timeout` (ms in config; default 10 s). Covers HTTP upgrade + HELLO.
    pub open_handshake_timeout: Duration,
    /// `close_handshake_timeout` (ms in config; default 1 s).
    pub close_handshake_timeout: Duration,
    /// `require_websocket_subprotocol` (default true): without a matching subprotocol answer
    /// HTTP 400; when false assume `wamp.2.json`.
    pub require_websocket_subprotocol: bool,
    /// Outbox capacity in messages per connection (junction extension `outbox_messages`,
    /// default 1024).
    pub outbox_messages: usize,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        Self {
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            auto_ping_interval: None,
            auto_ping_timeout: None,
            open_handshake_timeout: Duration::from_secs(10),
            close_handshake_timeout: Duration::from_secs(1),
            require_websocket_subprotocol: true,
            outbox_messages: 1024,
        }
    }
}

/// Where the node directory's files live.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDir {
    /// The node directory (`--cbdir`).
    pub cbdir: PathBuf,
}
