//! Node configuration: Crossbar version-2 `config.json` → validated `NodeConfig`.
//!
//! # Layout
//!
//! - `model`: the validated types, the only config types runtime code sees.
//! - `raw`: serde mirrors of the JSON nodes, all `deny_unknown_fields`.
//! - `check`: walks the JSON tree, dispatching on `type`, deserializes each node through
//!   `serde_path_to_error` and validates it, collecting **every** problem as a `ConfigError`
//!   whose `path` is the full key path from the root (`workers[0].transports[1].endpoint.port`).
//! - `syntax`: hand-written id, URI, URL, `"$VAR"` and `"${VAR}"` checks.
//!
//! Called by `junction check` / `start` / `init` through [`load_dir`], [`parse_json`] and
//! [`default_config_json`]. A config either yields a fully checked `NodeConfig` or a list of
//! errors; nothing in between reaches the runtime.
//!
//! # What junction honours, and what it rejects
//!
//! A key Crossbar accepts but junction does not implement is never ignored silently: it is
//! reported as `<path>: not supported yet` (its contents are not inspected). A key Crossbar
//! does not know is a parse error (`unknown field`).
//!
//! | node | honoured | rejected: not supported (yet) |
//! |---|---|---|
//! | top level | `$schema`, `version` (must be 2), `controller`, `workers` | |
//! | `controller` | `id`, `options.title`; `options.shutdown` (a mode or list of modes, checked, no effect: junction is one process), `options.enable_parallel_worker_start` (checked, no effect) | `manhole`, `connections` (non-empty), `keyring` |
//! | worker | `type: router`: `id`, `options.title` (no effect), `realms`, `transports`, `components: []`, `connections: []` | types `container`, `guest`, `proxy`, `websocket-testee`; `manhole`, non-empty `components` / `connections`; `options.{python, pythonpath, cpu_affinity, env, expose_controller, expose_shared, disabled, extra}` |
//! | realm | `name` (loose WAMP URI, unique across the node: all realms share one routing core), `roles`, `options.uri_check`, `options.enable_meta_api: false`, `options.mqtt` (extension: `persistence`, `sys_interval`) | `enable_meta_api: true`, `bridge_meta_api`, `event_dispatching_chunk_size`, `store`, `rlinks` |
//! | role | `name` (unique per realm), `permissions` | `authorizer` (and both at once is an error) |
//! | permission | `uri` (loose, may be empty), `match`, `allow`, `disclose`, `cache` (no effect) | `validate` |
//! | transport | every type: `id`, `endpoint`, `max_connections` (≥ 1). `websocket`: `url` (its path is the upgrade path), `serializers`, `options`, `auth`. `rawsocket`: `serializers`, `options`, `auth`. `web`: `paths`, `options: {}`. `universal`: `rawsocket`, `websocket` (path → WebSocket settings, or MQTT settings for `type: "mqtt"`, an extension), `mqtt`, `web`. `mqtt`: `options` (see below) | types `flashpolicy`, `websocket.testee`, `stream.testee`; `debug`, `cookie`; every web `options` key (`access_log`, `hsts`, ...); a `dynamic` payload mapping's `realm` other than the transport's |
//! | web path service | path keys `^([a-z0-9A-Z_\-]+\|/)$`; `static` (`directory`, `options`), `redirect`, `json` (`value`), `nodeinfo`, `websocket` | static `package`/`resource`, json `options` keys, types `reverseproxy`, `websocket-reverseproxy`, `wsgi`, `cgi`, `resource`, `path`, `longpoll`, `caller`, `publisher`, `webhook`, `archive`, `wap`, `catalog`, `none` |
//! | `auth` | type `static` of `anonymous` (`role`), `ticket` (`principals`: authid → `ticket`, `role`), `wampcra` (`users`: authid → `secret`, `role`, `salt`, `iterations`, `keylen`) and `cryptosign` (`principals`: authid → `authorized_keys` (64-hex Ed25519 public keys, each for one authid), `role`); secrets may be `"${VAR}"`; type `dynamic` (`authenticator` procedure in the session's realm) of `ticket` and `wampcra`. MQTT `options.auth`: `anonymous` and static `ticket` | type `function` of every method, type `dynamic` of `anonymous`, `cryptosign` and MQTT methods, `authenticator-realm`, `anonymous.realm`, `anonymous.authid`, `default-role`, cryptosign `trustroots` and principal `realm`; methods `tls`, `cookie`, `scram`, `*-proxy`; `wampcra` and `cryptosign` for MQTT (no challenge in MQTT 3.1.1) |
//! | endpoint | `type: tcp`: `port` (1..=65535 or `"$VAR"`), `interface` (an IP address of `version`), `backlog` (1..=65535, default 1024), `version` (4 or 6), `tls`. `type: unix`: `path`, `backlog` | types `twisted`, `onion`; `shared`, `portrange`, `user_timeout` |
//! | `tls` | `key`, `certificate`, `chain_certificates`, `ca_certificates` (client certificates required), `ciphers` (IANA/OpenSSL names of rustls's suites), `min_version` (extension) | `dhparam` (rustls has no finite-field DH) |
//! | WebSocket `options` | see below | every other Crossbar WebSocket option (`allowed_origins`, `compression`, `auto_fragment_size`, ...) |
//!
//! WebSocket `options` junction honours:
//! - `max_message_size`, `max_frame_size`: bytes, 1 to 16 MiB (Crossbar's `0` = unlimited is
//!   rejected: junction enforces every limit);
//! - `auto_ping_interval`, `auto_ping_timeout`: milliseconds, `0` = off (as in Autobahn);
//! - `open_handshake_timeout`, `close_handshake_timeout`: milliseconds, positive;
//! - `require_websocket_subprotocol`: bool;
//! - `outbox_messages` (**junction extension**, Crossbar rejects it): the per-connection outbox
//!   capacity in messages, 1 to 1 048 576, default 1024.
//!
//! MQTT `options` (of an `mqtt` transport, a universal `mqtt`, or an MQTT WebSocket path):
//! `realm` (required, a realm of the same worker), `role` (default "anonymous", a role of that
//! realm), and the junction extensions `max_packet_size` (1 to 268 435 455), `max_inflight`
//! (1 to 65535), `max_queued_messages`, `max_queued_bytes`, `session_expiry` (s, 0 = never),
//! `max_keepalive` (1 to 65535), `connect_timeout` (ms, positive), `password_file` (a mosquitto
//! password file, resolved like every path and loaded with
//! `crate::auth::mosquitto::PasswordFile::load`; its users get `role`), `allow_anonymous` (default
//! true; false turns anonymous access off, as in mosquitto; contradicting `auth.anonymous` is an
//! error), `acl_file` (a mosquitto ACL file, resolved like every path and loaded with
//! `crate::auth::mosquitto::AclFile::load`; checked on top of the role's permissions), Crossbar's
//! `auth` (see **Authentication** below), and `payload_mapping` (WAMP URI prefix →
//! `{"type": "passthrough"}`, `{"type": "native", "serializer": ...}`, `{"type":
//! "dynamic", "encoder": ..., "decoder": ..., "realm"?: ...}` or the junction extension
//! `{"type": "utf8"}`; entries are reported at `payload_mapping["<prefix>"]`, the key quoted as
//! it may hold dots or be empty). [`load_dir`] gives each realm
//! with MQTT persistence on its store file `<cbdir>/junction-<realm>.redb` ([`store_file_name`]);
//! two such realms must not share one.
//!
//! # Authentication
//!
//! A transport without `auth` allows anonymous sessions with role `"anonymous"` (Crossbar); an
//! `auth` block lists the methods allowed, and anonymous access is off unless it has
//! `anonymous`. An `auth` with no method is an error. Secrets (`ticket`, WAMP-CRA `secret`) may
//! be `"${VAR}"`, read from the environment (the same injectable lookup as `"$VAR"` ports; unset
//! or empty is an error at the key). A WAMP-CRA `salt` makes the secret salted (PBKDF2, default
//! `iterations` 1000 and `keylen` 32, as Autobahn's `derive_key`). No error message quotes a
//! secret, and the model's `Debug` hides them. Every role a WAMP transport hands out (anonymous,
//! ticket principals, WAMP-CRA users) must be a role of a realm of the same worker; the roles of
//! MQTT settings (`options.role` when given or used, `auth.anonymous.role`, ticket principals)
//! must be roles of the MQTT realm. Each is blamed at its `role` key (the default `"anonymous"`
//! at the transport, or at `auth.anonymous`).
//!
//! # Listeners and paths
//!
//! Two TCP listeners on
//! the same port and IP version must not share an interface (an absent or unspecified interface
//! overlaps every interface); two Unix listeners must not share a path. A universal transport's
//! WebSocket path must not also be a web path.
//!
//! Relative paths (static `directory`, Unix socket `path`, TLS files, MQTT `password_file` and
//! `acl_file`) are resolved against the node directory by [`load_dir`] (against the current
//! directory by [`parse_json`]): runtime code sees absolute paths only. Static directories must
//! exist, TLS blocks must load (`crate::tls::server_config`), and so must password and ACL files.
//! `docs/config.md` is the user-facing reference.
//!
//! YAML configs are not read yet: a `config.yaml` in the node directory is reported (Crossbar
//! would prefer it over `config.json`).
//!
//! # Warnings
//!
//! A few things are valid but probably not meant; they do not stop the node and are returned
//! by [`load_dir_with_warnings`] and [`parse_json_with_warnings`] as `ConfigError`s (`junction
//! check` prints them as `warning: path: message`, `junction start` logs them): an MQTT
//! `payload_mapping` without a `""` key (`...payload_mapping: no "" catch-all: URIs that match
//! no key do not cross between MQTT and WAMP`); MQTT settings no client can connect to
//! (anonymous access off, and no ticket principal and no `password_file`); a WAMP-CRA user's
//! `iterations` or `keylen` without `salt` (no effect).

mod check;
pub mod model;
mod raw;
mod syntax;
#[cfg(test)]
mod tests;

pub use model::*;

use std::path::{Path, PathBuf};

/// One problem in the config: "path: message", e.g.
/// `"workers[0].transports[1].endpoint.port: port 0 is not allowed"`. Warnings (see the module
/// docs) have the same shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The key path from the root (`(root)` for the top level), or the file for I/O and
    /// syntax errors of [`load_dir`].
    pub path: String,
    /// What is wrong, lower-case, without a trailing period.
    pub message: String,
}

/// Parses and validates config JSON text; returns every problem found.
///
/// `"$VAR"` ports and `"${VAR}"` secrets are read from the process environment. Relative paths
/// in the config (static `directory`, Unix socket `path`, TLS files, MQTT `password_file` and
/// `acl_file`) are resolved against the current directory, as [`load_dir`] resolves them against
/// the node directory; the result holds absolute paths.
///
/// # Errors
///
/// A JSON syntax error (path `(root)`, message with line and column), or every structural and
/// semantic problem of the tree, in tree order.
pub fn parse_json(text: &str) -> Result<NodeConfig, Vec<ConfigError>> {
    parse_json_with_warnings(text).map(|(node, _warnings)| node)
}

/// [`parse_json`], also returning the config's warnings: problems that do not stop the node
/// (an MQTT `payload_mapping` without a `""` catch-all), in tree order, as `path: message`.
///
/// # Errors
///
/// As [`parse_json`].
pub fn parse_json_with_warnings(
    text: &str,
) -> Result<(NodeConfig, Vec<ConfigError>), Vec<ConfigError>> {
    let cwd = current_dir();
    parse_with_env_warnings(text, "(root)", &|var| std::env::var(var).ok(), &cwd)
}

/// The current directory (absolute), or `/` when it cannot be determined.
fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// [`parse_with_env_warnings`] without the warnings.
#[cfg(test)]
pub(crate) fn parse_with_env(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<NodeConfig, Vec<ConfigError>> {
    parse_with_env_warnings(text, source, env, base).map(|(node, _warnings)| node)
}

/// [`parse_json_with_warnings`] with a named source for syntax errors, an injectable
/// environment and the directory relative paths are resolved against (absolute).
pub(crate) fn parse_with_env_warnings(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<(NodeConfig, Vec<ConfigError>), Vec<ConfigError>> {
    let root: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![ConfigError {
            path: source.to_owned(),
            message: e.to_string(),
        }]
    })?;
    check::Checker::check(&root, env, base)
}

/// Finds and loads the config in a node directory: `config.json`; `Ok(None)` when there is
/// none. The file name goes into I/O and syntax errors.
///
/// Relative paths in the config are resolved against `cbdir` (as Crossbar does: a static
/// `"directory": "../web"` is the `web` folder next to the node directory), so the result holds
/// absolute paths only. Static directories must exist, every TLS key and certificate must load
/// (see [`crate::tls::server_config`]), and so must every MQTT `password_file` and `acl_file`.
///
/// # Errors
///
/// The file cannot be read, is not JSON, or is invalid (see [`parse_json`]); or the directory
/// holds a `config.yaml`, which junction cannot read yet (and Crossbar would prefer over
/// `config.json`).
pub fn load_dir(cbdir: &Path) -> Result<Option<NodeConfig>, Vec<ConfigError>> {
    load_dir_with_warnings(cbdir).map(|(node, _warnings)| node)
}

/// [`load_dir`], also returning the config's warnings (see [`parse_json_with_warnings`]); no
/// config file has none.
///
/// # Errors
///
/// As [`load_dir`].
pub fn load_dir_with_warnings(
    cbdir: &Path,
) -> Result<(Option<NodeConfig>, Vec<ConfigError>), Vec<ConfigError>> {
    let io_error = |file: &Path, e: std::io::Error| {
        vec![ConfigError {
            path: file.display().to_string(),
            message: e.to_string(),
        }]
    };
    let yaml = cbdir.join("config.yaml");
    match yaml.try_exists() {
        Ok(false) => {}
        Ok(true) => {
            return Err(vec![ConfigError {
                path: yaml.display().to_string(),
                message: "YAML configuration is not supported yet; convert it to config.json \
                          (`crossbar convert`)"
                    .into(),
            }])
        }
        Err(e) => return Err(io_error(&yaml, e)),
    }
    let json = cbdir.join("config.json");
    let text = match std::fs::read_to_string(&json) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, Vec::new())),
        Err(e) => return Err(io_error(&json, e)),
    };
    let base = check::resolve_path(&current_dir(), cbdir);
    let (mut node, warnings) = parse_with_env_warnings(
        &text,
        &json.display().to_string(),
        &|var| std::env::var(var).ok(),
        &base,
    )?;
    set_store_paths(&mut node, &base);
    Ok((Some(node), warnings))
}

/// Gives every realm with MQTT persistence on its store file in the node directory `cbdir`
/// (absolute): `<cbdir>/junction-<realm>.redb`, see [`store_file_name`].
fn set_store_paths(node: &mut NodeConfig, cbdir: &Path) {
    for realm in node.routers.iter_mut().flat_map(|r| r.realms.iter_mut()) {
        realm.store_path = realm
            .mqtt
            .persistence
            .then(|| cbdir.join(store_file_name(&realm.name)));
    }
}

/// The name of a realm's store file: `junction-<realm>.redb`, with every character of the
/// realm name outside `[A-Za-z0-9._-]` replaced by `_` (realm `com.ex/wärme` →
/// `junction-com.ex_w_rme.redb`). The checker refuses two persistent realms whose names give
/// the same file.
pub fn store_file_name(realm: &str) -> String {
    let name: String = realm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("junction-{name}.redb")
}

/// The built-in default config as pretty JSON (what `junction init` writes and `junction
/// start` uses when no config exists): version 2, one router worker with realm `realm1` whose
/// role `anonymous` may do everything, and one `universal` transport on TCP port 8080 (all
/// interfaces) that takes RawSocket, WebSocket at `/ws` and HTTP, all with the four
/// serializers, and MQTT (realm `realm1`, role `anonymous`, `payload_mapping` native JSON for
/// every URI: an MQTT payload `{"args": [...], "kwargs": {...}}` is a WAMP event's arguments).
/// Its only web service is `nodeinfo` at `/`: the default refers to no file, so it starts in
/// any directory (the sample `node-config/config.json` adds a static site).
pub fn default_config_json() -> String {
    let config = serde_json::json!({
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "roles": [{
                    "name": "anonymous",
                    "permissions": [{
                        "uri": "",
                        "match": "prefix",
                        "allow": {
                            "call": true,
                            "register": true,
                            "publish": true,
                            "subscribe": true
                        },
                        "disclose": {"caller": false, "publisher": false},
                        "cache": true
                    }]
                }]
            }],
            "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "port": 8080},
                "rawsocket": {
                    "serializers": ["json", "msgpack", "cbor", "ubjson"]
                },
                "websocket": {
                    "ws": {
                        "type": "websocket",
                        "serializers": ["json", "msgpack", "cbor", "ubjson"]
                    }
                },
                "mqtt": {
                    "options": {
                        "realm": "realm1",
                        "role": "anonymous",
                        "payload_mapping": {
                            "": {"type": "native", "serializer": "json"}
                        }
                    }
                },
                "web": {
                    "paths": {
                        "/": {"type": "nodeinfo"}
                    }
                }
            }]
        }]
    });
    let mut text = serde_json::to_string_pretty(&config).expect("a JSON value always serializes");
    text.push('\n');
    text
}
