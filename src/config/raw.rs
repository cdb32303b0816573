//! Raw serde mirrors of the Crossbar version-2 config nodes, one struct per node kind.
//!
//! Every struct is `deny_unknown_fields`, so a typo is a parse error at its exact path. A key
//! Crossbar knows but junction does not implement is still a field (`Option<IgnoredAny>`, so its
//! content is not inspected) and is listed by `unsupported()`, which `config::check` turns into
//! "not supported yet" errors. Child nodes that need dispatch on `type`, or that are checked
//! on their own so one bad child does not hide problems in its siblings, are also
//! `Option<IgnoredAny>` here: `config::check` walks them from the `serde_json::Value`.
//!
//! A JSON `null` counts as an absent key.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

/// A key only checked for presence (an unsupported key, whose content is not inspected).
type Walked = Option<IgnoredAny>;

/// A child node that `config::check` walks from the `Value` itself; the field only makes
/// `deny_unknown_fields` accept the key.
type Child = Option<IgnoredAny>;

/// Names of the unsupported keys present in `$node`, in declaration order.
macro_rules! present {
    ($node:expr, [$($field:ident),* $(,)?]) => {
        [$((stringify!($field), $node.$field.is_some())),*]
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect()
    };
}

/// The top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    #[serde(rename = "$schema")]
    pub(super) _schema: Option<String>,
    pub(super) version: Option<u64>,
    #[serde(rename = "controller")]
    pub(super) _controller: Child,
    #[serde(rename = "workers")]
    pub(super) _workers: Child,
}

/// `controller`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawController {
    pub(super) id: Option<String>,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    pub(super) manhole: Walked,
    pub(super) connections: Option<Vec<IgnoredAny>>,
    pub(super) keyring: Walked,
}

impl RawController {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = present!(self, [manhole, keyring]);
        if self.connections.as_ref().is_some_and(|c| !c.is_empty()) {
            keys.push("connections");
        }
        keys
    }
}

/// `controller.options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControllerOptions {
    pub(super) title: Option<String>,
    /// A mode or a list of modes; checked by hand for exact element paths.
    pub(super) shutdown: Option<Value>,
    pub(super) enable_parallel_worker_start: Option<bool>,
}

/// `workers[i]` of type `router`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouter {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    pub(super) manhole: Walked,
    #[serde(rename = "realms")]
    pub(super) _realms: Child,
    #[serde(rename = "transports")]
    pub(super) _transports: Child,
    pub(super) components: Option<Vec<IgnoredAny>>,
    pub(super) connections: Option<Vec<IgnoredAny>>,
}

impl RawRouter {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = present!(self, [manhole]);
        if self.components.as_ref().is_some_and(|c| !c.is_empty()) {
            keys.push("components");
        }
        if self.connections.as_ref().is_some_and(|c| !c.is_empty()) {
            keys.push("connections");
        }
        keys
    }
}

/// `workers[i].options` (Crossbar native worker options).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkerOptions {
    /// Accepted and ignored: junction runs no worker processes to title.
    pub(super) title: Option<String>,
    pub(super) python: Walked,
    pub(super) pythonpath: Walked,
    pub(super) cpu_affinity: Walked,
    pub(super) env: Walked,
    pub(super) expose_controller: Walked,
    pub(super) expose_shared: Walked,
    pub(super) disabled: Walked,
    pub(super) extra: Walked,
}

impl RawWorkerOptions {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(
            self,
            [
                python,
                pythonpath,
                cpu_affinity,
                env,
                expose_controller,
                expose_shared,
                disabled,
                extra,
            ]
        )
    }
}

/// `realms[j]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealm {
    pub(super) name: String,
    #[serde(rename = "roles")]
    pub(super) _roles: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    pub(super) store: Walked,
    pub(super) rlinks: Walked,
}

impl RawRealm {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [store, rlinks])
    }
}

/// `realms[j].options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealmOptions {
    pub(super) enable_meta_api: Option<bool>,
    pub(super) bridge_meta_api: Walked,
    pub(super) event_dispatching_chunk_size: Walked,
    pub(super) uri_check: Option<RawUriCheck>,
    /// junction extension.
    pub(super) max_subscriptions_per_session: Option<u64>,
    /// junction extension.
    pub(super) max_registrations_per_session: Option<u64>,
    /// junction extension: MQTT broker settings of the realm (`RawRealmMqtt`).
    #[serde(rename = "mqtt")]
    pub(super) _mqtt: Child,
}

/// `realms[j].options.mqtt` (junction extension).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealmMqtt {
    pub(super) persistence: Option<bool>,
    /// Seconds; 0 = off.
    pub(super) sys_interval: Option<u64>,
    pub(super) max_retained: Option<u64>,
}

impl RawRealmOptions {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [bridge_meta_api, event_dispatching_chunk_size])
    }
}

/// `realms[j].options.uri_check`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawUriCheck {
    Strict,
    Loose,
}

/// `roles[k]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) name: String,
    pub(super) permissions: Walked,
    pub(super) authorizer: Walked,
}

/// `permissions[l]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPermission {
    pub(super) uri: String,
    #[serde(rename = "match")]
    pub(super) match_policy: Option<RawMatch>,
    #[serde(rename = "allow")]
    pub(super) _allow: Child,
    #[serde(rename = "disclose")]
    pub(super) _disclose: Child,
    pub(super) cache: Option<bool>,
    pub(super) validate: Walked,
}

/// `permissions[l].match`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawMatch {
    Exact,
    Prefix,
    Wildcard,
}

/// `permissions[l].allow`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAllow {
    pub(super) call: bool,
    pub(super) register: bool,
    pub(super) publish: bool,
    pub(super) subscribe: bool,
}

/// `permissions[l].disclose`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDisclose {
    pub(super) caller: bool,
    pub(super) publisher: bool,
}

/// `transports[t]` of type `websocket`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSocket {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "endpoint")]
    pub(super) _endpoint: Child,
    pub(super) url: Option<String>,
    pub(super) serializers: Option<Vec<String>>,
    pub(super) debug: Walked,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    #[serde(rename = "auth")]
    pub(super) _auth: Child,
    pub(super) cookie: Walked,
    pub(super) max_connections: Option<u64>,
}

impl RawWebSocket {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [debug, cookie])
    }
}

/// A WebSocket path: an entry of a universal transport's `websocket` map, or a web path
/// service of type `websocket`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSocketService {
    /// Checked like every item id; no effect.
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// Checked; no effect (the path key is the upgrade path).
    pub(super) url: Option<String>,
    pub(super) serializers: Option<Vec<String>>,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    #[serde(rename = "auth")]
    pub(super) _auth: Child,
    pub(super) debug: Walked,
    pub(super) cookie: Walked,
    /// Illegal here (Crossbar: the sub-item uses the transport's endpoint).
    pub(super) endpoint: Walked,
    /// Illegal here (Crossbar: set it on the transport).
    pub(super) max_connections: Walked,
}

impl RawWebSocketService {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [debug, cookie])
    }
}

/// `transports[t]` of type `rawsocket`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRawSocket {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "endpoint")]
    pub(super) _endpoint: Child,
    pub(super) serializers: Option<Vec<String>>,
    pub(super) debug: Walked,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    #[serde(rename = "auth")]
    pub(super) _auth: Child,
    pub(super) max_connections: Option<u64>,
}

impl RawRawSocket {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [debug])
    }
}

/// `rawsocket` of a universal transport.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniversalRawSocket {
    pub(super) serializers: Option<Vec<String>>,
    pub(super) debug: Walked,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    #[serde(rename = "auth")]
    pub(super) _auth: Child,
    /// Illegal here (Crossbar: the universal transport's endpoint is used).
    pub(super) endpoint: Walked,
    /// Illegal here (Crossbar: set it on the universal transport).
    pub(super) max_connections: Walked,
}

impl RawUniversalRawSocket {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [debug])
    }
}

/// `options` of a RawSocket transport (Crossbar knows only `max_message_size`; the others are
/// junction extensions).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRawSocketOptions {
    pub(super) max_message_size: Option<u64>,
    pub(super) open_handshake_timeout: Option<u64>,
    pub(super) auto_ping_interval: Option<u64>,
    pub(super) auto_ping_timeout: Option<u64>,
    pub(super) outbox_messages: Option<u64>,
}

/// `transports[t]` of type `web`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "endpoint")]
    pub(super) _endpoint: Child,
    #[serde(rename = "paths")]
    pub(super) _paths: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    pub(super) max_connections: Option<u64>,
}

/// `web` of a universal transport.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniversalWeb {
    #[serde(rename = "paths")]
    pub(super) _paths: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    /// Illegal here.
    pub(super) endpoint: Walked,
    /// Illegal here.
    pub(super) max_connections: Walked,
}

/// `options` of a web transport: all known to Crossbar, none implemented yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebOptions {
    pub(super) access_log: Walked,
    pub(super) display_tracebacks: Walked,
    pub(super) hsts: Walked,
    pub(super) hsts_max_age: Walked,
    pub(super) client_timeout: Walked,
}

impl RawWebOptions {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(
            self,
            [
                access_log,
                display_tracebacks,
                hsts,
                hsts_max_age,
                client_timeout
            ]
        )
    }
}

/// `transports[t]` of type `universal`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniversal {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "endpoint")]
    pub(super) _endpoint: Child,
    #[serde(rename = "rawsocket")]
    pub(super) _rawsocket: Child,
    #[serde(rename = "websocket")]
    pub(super) _websocket: Child,
    #[serde(rename = "web")]
    pub(super) _web: Child,
    #[serde(rename = "mqtt")]
    pub(super) _mqtt: Child,
    pub(super) max_connections: Option<u64>,
}

/// `transports[t]` of type `mqtt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "endpoint")]
    pub(super) _endpoint: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    pub(super) max_connections: Option<u64>,
}

/// `mqtt` of a universal transport.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniversalMqtt {
    #[serde(rename = "options")]
    pub(super) _options: Child,
    /// Illegal here (Crossbar: the universal transport's endpoint is used).
    pub(super) endpoint: Walked,
    /// Illegal here (Crossbar: set it on the universal transport).
    pub(super) max_connections: Walked,
}

/// An entry of a universal transport's `websocket` map with `type: "mqtt"` (junction
/// extension: MQTT over WebSocket on that path).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqttWebSocket {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    #[serde(rename = "options")]
    pub(super) _options: Child,
    /// Illegal here.
    pub(super) endpoint: Walked,
    /// Illegal here.
    pub(super) max_connections: Walked,
}

/// `options` of an MQTT transport (Crossbar: `realm`, `role`, `payload_mapping`, `auth`; the
/// others are junction extensions).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqttOptions {
    pub(super) realm: String,
    pub(super) role: Option<String>,
    /// WAMP URI prefix → payload format, walked by `config::check` (each entry on its own).
    #[serde(rename = "payload_mapping")]
    pub(super) _payload_mapping: Child,
    /// Crossbar's transport `auth` (walked by `config::check`: `anonymous` and `ticket`).
    #[serde(rename = "auth")]
    pub(super) _auth: Child,
    /// junction extension: a mosquitto `password_file`, relative to the node directory.
    pub(super) password_file: Option<String>,
    /// junction extension: a mosquitto `acl_file`, relative to the node directory.
    pub(super) acl_file: Option<String>,
    /// junction extension: mosquitto's `allow_anonymous` (default true).
    pub(super) allow_anonymous: Option<bool>,
    pub(super) max_packet_size: Option<u64>,
    pub(super) max_inflight: Option<u64>,
    pub(super) max_queued_messages: Option<u64>,
    pub(super) max_queued_bytes: Option<u64>,
    pub(super) session_expiry: Option<u64>,
    pub(super) max_keepalive: Option<u64>,
    pub(super) connect_timeout: Option<u64>,
}

/// A `payload_mapping` entry of type `passthrough` or `utf8` (junction extension): no other
/// key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayloadPlain {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
}

/// A `payload_mapping` entry of type `native`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayloadNative {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// Checked by hand against the four names Crossbar allows.
    pub(super) serializer: String,
}

/// A `payload_mapping` entry of type `dynamic`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayloadDynamic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// Procedure called WAMP → MQTT.
    pub(super) encoder: String,
    /// Procedure called MQTT → WAMP.
    pub(super) decoder: String,
    /// The codec realm (Crossbar's default: the transport's realm).
    pub(super) realm: Option<String>,
}

/// Web path service of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatic {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    pub(super) directory: Option<String>,
    pub(super) package: Walked,
    pub(super) resource: Walked,
    #[serde(rename = "options")]
    pub(super) _options: Child,
}

impl RawStatic {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [package, resource])
    }
}

/// `options` of a static web service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaticOptions {
    pub(super) enable_directory_listing: Option<bool>,
    /// Extension → MIME type; checked by hand for exact key paths.
    #[serde(rename = "mime_types")]
    pub(super) _mime_types: Child,
    /// Absent: Crossbar's default; `null`: no caching headers (so `null` is not "absent" here).
    #[serde(default, deserialize_with = "nullable")]
    pub(super) cache_timeout: Option<Option<u64>>,
    pub(super) default_file: Option<String>,
}

/// Web path service of type `redirect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedirect {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    pub(super) url: String,
}

/// Web path service of type `json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJson {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// Any JSON, `null` included (required).
    pub(super) value: Value,
    #[serde(rename = "options")]
    pub(super) _options: Child,
}

/// `options` of a json web service: known to Crossbar, not implemented yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJsonOptions {
    pub(super) prettify: Walked,
    pub(super) allow_cross_origin: Walked,
    pub(super) discourage_caching: Walked,
}

impl RawJsonOptions {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [prettify, allow_cross_origin, discourage_caching])
    }
}

/// Web path service of type `nodeinfo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodeInfo {
    pub(super) id: Option<String>,
    #[serde(rename = "type")]
    pub(super) _kind: Child,
}

/// Deserializes a key whose `null` means something: absent → `None` (via `default`),
/// `null` → `Some(None)`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `transports[t].options` of a WebSocket transport.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSocketOptions {
    pub(super) max_message_size: Option<u64>,
    pub(super) max_frame_size: Option<u64>,
    pub(super) auto_ping_interval: Option<u64>,
    pub(super) auto_ping_timeout: Option<u64>,
    pub(super) open_handshake_timeout: Option<u64>,
    pub(super) close_handshake_timeout: Option<u64>,
    pub(super) require_websocket_subprotocol: Option<bool>,
    /// junction extension: outbox capacity in messages.
    pub(super) outbox_messages: Option<u64>,
    pub(super) allowed_origins: Walked,
    pub(super) allow_null_origin: Walked,
    pub(super) external_port: Walked,
    pub(super) enable_hybi10: Walked,
    pub(super) enable_rfc6455: Walked,
    pub(super) enable_webstatus: Walked,
    pub(super) validate_utf8: Walked,
    pub(super) mask_server_frames: Walked,
    pub(super) require_masked_client_frames: Walked,
    pub(super) apply_mask: Walked,
    pub(super) auto_fragment_size: Walked,
    pub(super) fail_by_drop: Walked,
    pub(super) echo_close_codereason: Walked,
    pub(super) tcp_nodelay: Walked,
    pub(super) auto_ping_size: Walked,
    pub(super) auto_ping_restart_on_any_traffic: Walked,
    pub(super) enable_flash_policy: Walked,
    pub(super) flash_policy: Walked,
    pub(super) compression: Walked,
    pub(super) show_server_version: Walked,
}

impl RawWebSocketOptions {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(
            self,
            [
                allowed_origins,
                allow_null_origin,
                external_port,
                enable_hybi10,
                enable_rfc6455,
                enable_webstatus,
                validate_utf8,
                mask_server_frames,
                require_masked_client_frames,
                apply_mask,
                auto_fragment_size,
                fail_by_drop,
                echo_close_codereason,
                tcp_nodelay,
                auto_ping_size,
                auto_ping_restart_on_any_traffic,
                enable_flash_policy,
                flash_policy,
                compression,
                show_server_version,
            ]
        )
    }
}

/// `endpoint` of type `tcp` (listening).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTcpEndpoint {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// An integer or a `"$VAR"` environment reference; checked by hand.
    pub(super) port: Option<Value>,
    pub(super) interface: Option<String>,
    pub(super) backlog: Option<u64>,
    pub(super) version: Option<u64>,
    pub(super) shared: Walked,
    #[serde(rename = "tls")]
    pub(super) _tls: Child,
    pub(super) portrange: Walked,
    pub(super) user_timeout: Walked,
}

impl RawTcpEndpoint {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [shared, portrange, user_timeout])
    }
}

/// `endpoint.tls` of a listening TCP endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) key: String,
    pub(super) certificate: String,
    pub(super) chain_certificates: Option<Vec<String>>,
    pub(super) ca_certificates: Option<Vec<String>>,
    /// Rejected with a reason: rustls has no finite-field DH.
    pub(super) dhparam: Walked,
    /// An OpenSSL cipher list (`"A:B:C"`).
    pub(super) ciphers: Option<String>,
    /// junction extension: `"1.2"` or `"1.3"`.
    pub(super) min_version: Option<String>,
}

/// `endpoint` of type `unix` (listening).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUnixEndpoint {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    pub(super) path: String,
    pub(super) backlog: Option<u64>,
}

/// `auth.anonymous` of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnonymousStatic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    pub(super) role: Option<String>,
    pub(super) realm: Walked,
    pub(super) authid: Walked,
}

impl RawAnonymousStatic {
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        present!(self, [realm, authid])
    }
}

/// `auth.ticket` of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTicketStatic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// authid → principal, walked by `config::check` (each entry on its own).
    #[serde(rename = "principals")]
    pub(super) _principals: Child,
    /// Crossbar's role for principals without one: not supported yet.
    #[serde(rename = "default-role")]
    pub(super) default_role: Walked,
}

/// `auth.wampcra` of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWampCraStatic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// authid → user, walked by `config::check` (each entry on its own).
    #[serde(rename = "users")]
    pub(super) _users: Child,
    /// Crossbar's role for users without one: not supported yet.
    #[serde(rename = "default-role")]
    pub(super) default_role: Walked,
}

/// `auth.ticket` / `auth.wampcra` of type `dynamic`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthDynamic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// The authenticator procedure (in the session's realm).
    pub(super) authenticator: String,
    /// Crossbar's realm of the authenticator (default: the realm the client joins).
    #[serde(rename = "authenticator-realm")]
    pub(super) authenticator_realm: Option<String>,
}

/// A static `ticket` principal. The ticket is any JSON here: `config::check` checks it by hand
/// so that no error message ever quotes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTicketPrincipal {
    pub(super) ticket: Option<Value>,
    pub(super) role: String,
}

/// `auth.tls` of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsStatic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// authid → principal, walked by `config::check`.
    #[serde(rename = "principals")]
    pub(super) _principals: Child,
}

/// A static `tls` principal: the SHA-1 fingerprint of its client certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsPrincipal {
    #[serde(rename = "certificate-sha1")]
    pub(super) certificate_sha1: String,
    pub(super) role: String,
}

/// A static `wampcra` user. The secret is any JSON here, checked by hand as a ticket is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCraUser {
    pub(super) secret: Option<Value>,
    pub(super) role: String,
    pub(super) salt: Option<String>,
    pub(super) iterations: Option<u64>,
    pub(super) keylen: Option<u64>,
}

/// `auth.cryptosign` of type `static`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCryptosignStatic {
    #[serde(rename = "type")]
    pub(super) _kind: Child,
    /// authid → principal, walked by `config::check` (each entry on its own).
    #[serde(rename = "principals")]
    pub(super) _principals: Child,
    /// Crossbar's realm → trustroot map (certificate chains): not supported yet.
    pub(super) trustroots: Walked,
    /// An older Crossbar's single trustroot: not supported yet.
    pub(super) trustroot: Walked,
}

/// A static `cryptosign` principal. `authorized_keys` is any JSON here: `config::check` walks
/// it by hand for exact element paths (and messages that never quote a key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCryptosignPrincipal {
    pub(super) authorized_keys: Option<Value>,
    pub(super) role: String,
    /// The realm the principal may join: not supported yet.
    pub(super) realm: Walked,
}
