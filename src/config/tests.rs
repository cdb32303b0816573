//! Config loading and validation tests: every error names its exact key path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::wire::Serializer;

const SAMPLE: &str = include_str!("../../node-config/config.json");

/// The base directory of `parse`: relative paths in test configs resolve against it.
const NODE: &str = "/node";

/// No environment variables.
fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(config: &Value) -> Result<NodeConfig, Vec<ConfigError>> {
    parse_in(config, Path::new(NODE))
}

/// `parse` with relative paths resolved against `base`.
fn parse_in(config: &Value, base: &Path) -> Result<NodeConfig, Vec<ConfigError>> {
    parse_with_env(&config.to_string(), "(root)", &no_env, base)
}

/// The errors of an invalid config, as "path: message" lines.
fn errors(config: &Value) -> Vec<String> {
    match parse(config) {
        Ok(node) => panic!("config unexpectedly valid: {node:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn session_limits() {
    let mut config = base();
    let realm = |config: &Value| parse(config).expect("valid").routers[0].realms[0].clone();
    assert_eq!(realm(&config).limits, SessionLimits::default());
    assert_eq!(SessionLimits::default().max_subscriptions, 10_000);
    config["workers"][0]["realms"][0]["options"] =
        json!({"max_subscriptions_per_session": 3, "max_registrations_per_session": 2});
    assert_eq!(
        realm(&config).limits,
        SessionLimits {
            max_subscriptions: 3,
            max_registrations: 2
        }
    );
    config["workers"][0]["realms"][0]["options"] = json!({"max_subscriptions_per_session": 0});
    assert_one_error(
        &config,
        "workers[0].realms[0].options.max_subscriptions_per_session",
        "0 is out of range (1 to 10000000)",
    );
    config["workers"][0]["realms"][0]["options"] = json!({"max_registrations_per_session": "x"});
    assert_one_error(
        &config,
        "workers[0].realms[0].options.max_registrations_per_session",
        "invalid type: string \"x\", expected u64",
    );
}

#[test]
fn dynamic_roles() {
    let mut config = base();
    let roles = &mut config["workers"][0]["realms"][0]["roles"];
    roles
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "app", "authorizer": "com.example.authorize"}));
    let node = parse(&config).expect("a dynamic role is valid");
    let role = &node.routers[0].realms[0].roles[1];
    assert_eq!(role.authorizer.as_deref(), Some("com.example.authorize"));
    assert!(role.permissions.is_empty());

    config["workers"][0]["realms"][0]["roles"][1]["authorizer"] = json!("com..bad");
    assert_one_error(
        &config,
        "workers[0].realms[0].roles[1].authorizer",
        "invalid procedure URI",
    );
    config["workers"][0]["realms"][0]["roles"][1]["authorizer"] = json!(7);
    assert_one_error(
        &config,
        "workers[0].realms[0].roles[1].authorizer",
        "must be a string",
    );
}

/// Asserts that exactly one error is reported, at `path`, and that its message contains
/// `needle`.
#[track_caller]
fn assert_one_error(config: &Value, path: &str, needle: &str) {
    let errors = parse(config).expect_err("config must be invalid");
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert_eq!(errors[0].path, path, "{errors:#?}");
    assert!(errors[0].message.contains(needle), "{errors:#?}");
}

/// The default config with a standalone WebSocket transport instead of the universal one
/// (the default before universal transports existed), as a JSON value to be modified by a test.
fn base() -> Value {
    let mut config: Value = serde_json::from_str(&default_config_json()).unwrap();
    config["workers"][0]["transports"] = json!([{
        "type": "websocket",
        "endpoint": {"type": "tcp", "port": 8080},
        "url": "ws://127.0.0.1:8080/ws",
        "serializers": ["json", "msgpack", "cbor", "ubjson"]
    }]);
    config
}

/// `base()` with `transports` replaced.
fn with_transports(transports: Value) -> Value {
    let mut config = base();
    config["workers"][0]["transports"] = transports;
    config
}

/// `workers[0].transports[0]` of `config`.
fn transport0(config: &mut Value) -> &mut Value {
    &mut config["workers"][0]["transports"][0]
}

fn websocket(node: &NodeConfig, worker: usize, transport: usize) -> &WebSocketTransport {
    let TransportConfig::WebSocket(ws) = &node.routers[worker].transports[transport] else {
        panic!("not a websocket transport")
    };
    ws
}

fn rawsocket(node: &NodeConfig, transport: usize) -> &RawSocketTransport {
    let TransportConfig::RawSocket(rs) = &node.routers[0].transports[transport] else {
        panic!("not a rawsocket transport")
    };
    rs
}

fn web(node: &NodeConfig, transport: usize) -> &WebTransport {
    let TransportConfig::Web(web) = &node.routers[0].transports[transport] else {
        panic!("not a web transport")
    };
    web
}

fn universal(node: &NodeConfig, transport: usize) -> &UniversalTransport {
    let TransportConfig::Universal(uni) = &node.routers[0].transports[transport] else {
        panic!("not a universal transport")
    };
    uni
}

#[test]
fn default_config_parses() {
    let node = parse_json(&default_config_json()).expect("default config is valid");
    assert_eq!(node.routers.len(), 1);
    let router = &node.routers[0];
    assert_eq!(router.realms.len(), 1);
    let realm = &router.realms[0];
    assert_eq!(realm.name, "realm1");
    assert_eq!(realm.uri_check, UriCheck::Loose);
    assert_eq!(
        realm.roles,
        vec![RoleConfig {
            name: "anonymous".into(),
            permissions: vec![Permission {
                uri: String::new(),
                match_policy: MatchPolicy::Prefix,
                allow: Allow {
                    call: true,
                    register: true,
                    publish: true,
                    subscribe: true
                },
                disclose: Disclose::default(),
                cache: true,
            }],
            authorizer: None,
        }]
    );
    assert_eq!(router.transports.len(), 1);
    let uni = universal(&node, 0);
    assert_eq!(uni.id, None);
    assert_eq!(
        uni.endpoint,
        Endpoint::Tcp(TcpEndpoint {
            port: 8080,
            interface: None,
            backlog: 1024,
            version: IpVersion::V4,
            tls: None,
        })
    );
    assert_eq!(uni.rawsocket, Some(RawSocketSettings::default()));
    assert_eq!(uni.websocket.keys().collect::<Vec<_>>(), ["ws"]);
    assert_eq!(
        uni.websocket["ws"],
        WebSocketSettings {
            serializers: Serializer::ALL.to_vec(),
            options: WebSocketOptions::default(),
            anonymous_role: "anonymous".into(),
            auth: std::sync::Arc::new(TransportAuth {
                anonymous: Some("anonymous".into()),
                password_file_role: "anonymous".into(),
                acl_file: None,
                ..Default::default()
            }),
        }
    );
    let paths = uni.web.as_ref().expect("web paths");
    assert_eq!(paths.len(), 1);
    assert_eq!(paths["/"], WebService::NodeInfo);
    assert_eq!(uni.max_connections, None);
    // MQTT on the same port: realm1, role anonymous, every limit at its default, native JSON
    // payloads for every URI.
    assert_eq!(uni.mqtt, Some(native_json_mqtt()));
    assert_eq!(uni.mqtt.as_ref().unwrap().realm, "realm1");
    assert_eq!(uni.mqtt.as_ref().unwrap().role, "anonymous");
    assert!(uni.mqtt_websocket.is_empty());
    assert_eq!(realm.mqtt, RealmMqtt::default());
    // `parse_json` knows no node directory.
    assert_eq!(realm.store_path, None);
    assert!(default_config_json().ends_with("}\n"));
}

/// The MQTT settings of the default and the sample config: the defaults with the payload mapping
/// `{"": {"type": "native", "serializer": "json"}}`.
fn native_json_mqtt() -> MqttSettings {
    MqttSettings {
        payload_mapping: Arc::new(PayloadMapping {
            entries: vec![(String::new(), PayloadFormat::Native(Serializer::Json))],
        }),
        ..MqttSettings::default()
    }
}

#[test]
fn default_and_sample_config_have_no_warnings() {
    let (_, warnings) = parse_json_with_warnings(&default_config_json()).expect("valid");
    assert_eq!(warnings, []);
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node-config");
    let (_, warnings) =
        parse_with_env_warnings(SAMPLE, "(root)", &no_env, &node_dir).expect("valid");
    assert_eq!(warnings, []);
}

#[test]
fn default_config_starts_anywhere() {
    // It refers to no file, so it is valid whatever directory it is loaded from.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), default_config_json()).unwrap();
    load_dir(dir.path()).unwrap().expect("config found");
}

#[test]
fn sample_config_parses() {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node-config");
    let node = parse_with_env(SAMPLE, "(root)", &no_env, &node_dir)
        .expect("node-config/config.json is valid");
    assert_eq!(node.title.as_deref(), Some("junction node"));
    let router = &node.routers[0];
    assert_eq!(router.id.as_deref(), Some("router1"));
    let roles: Vec<_> = router.realms[0]
        .roles
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(roles, ["anonymous", "restricted", "user"]);
    assert_eq!(router.transports.len(), 2);
    let uni = universal(&node, 0);
    assert_eq!(uni.id.as_deref(), Some("uni8080"));
    let tcp = uni.endpoint.tcp().unwrap();
    assert_eq!(
        (tcp.port, tcp.interface, tcp.tls.as_ref()),
        (8080, None, None)
    );
    let rs = uni.rawsocket.as_ref().expect("rawsocket");
    assert_eq!(rs.serializers, Serializer::ALL.to_vec());
    let ws = &uni.websocket["ws"];
    assert_eq!(ws.serializers, Serializer::ALL.to_vec());
    assert_eq!(ws.options.max_message_size, 1 << 20);
    assert_eq!(ws.options.max_frame_size, 1 << 20);
    assert_eq!(ws.options.auto_ping_interval, Some(Duration::from_secs(10)));
    assert_eq!(ws.options.auto_ping_timeout, Some(Duration::from_secs(5)));
    assert_eq!(ws.anonymous_role, "anonymous");
    let paths = uni.web.as_ref().expect("web paths");
    let WebService::Static(root) = &paths["/"] else {
        panic!("/ is not static: {paths:#?}")
    };
    // "../static" relative to the node directory, made absolute and normalised.
    assert_eq!(
        root.directory,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
    );
    assert_eq!(paths["info"], WebService::NodeInfo);
    assert_eq!(uni.mqtt, Some(native_json_mqtt()));
    assert!(uni.mqtt_websocket.is_empty());
    assert_eq!(router.realms[0].mqtt, RealmMqtt::default());
    assert_eq!(ws.auth.anonymous.as_deref(), Some("anonymous"));
    assert!(ws.auth.ticket.is_empty() && ws.auth.wampcra.is_empty());

    // The second transport: ticket and WAMP-CRA for role "user", no anonymous access.
    let user = &router.realms[0].roles[2];
    assert_eq!(
        user.permissions,
        [Permission {
            uri: "com.example.".into(),
            match_policy: MatchPolicy::Prefix,
            allow: Allow {
                call: true,
                register: false,
                publish: true,
                subscribe: true
            },
            disclose: Disclose::default(),
            cache: false,
        }]
    );
    let ws = websocket(&node, 0, 1);
    assert_eq!(ws.id.as_deref(), Some("ws8081"));
    assert_eq!(ws.endpoint.tcp().unwrap().port, 8081);
    assert_eq!(ws.path.as_deref(), Some("/ws"));
    assert_eq!(ws.anonymous_role, "anonymous");
    assert_eq!(
        *ws.auth,
        TransportAuth {
            anonymous: None,
            cryptosign: Default::default(),
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            tls: Default::default(),
            ticket: [(
                "joe".to_owned(),
                TicketPrincipal {
                    ticket: "secret123".into(),
                    role: "user".into()
                }
            )]
            .into(),
            wampcra: [(
                "peter".to_owned(),
                CraUser {
                    secret: "secret456".into(),
                    role: "user".into(),
                    salt: None
                }
            )]
            .into(),
            password_file: None,
            password_file_role: "anonymous".into(),
            acl_file: None,
        }
    );
}

#[test]
fn typo_in_nested_key_reports_full_path() {
    let mut config = base();
    let allow = &mut config["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["allow"];
    allow["publsh"] = allow["publish"].take();
    allow.as_object_mut().unwrap().remove("publish");
    let errors = errors(&config);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workers[0].realms[0].roles[0].permissions[0].allow.publsh: unknown field `publsh`"
        ),
        "{errors:#?}"
    );
}

#[test]
fn typo_in_endpoint_and_options_keys() {
    let mut config = base();
    transport0(&mut config)["endpoint"]["prot"] = json!(8080);
    transport0(&mut config)["options"] = json!({"max_mesage_size": 10});
    let errors = errors(&config);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("workers[0].transports[0].endpoint.prot: unknown field `prot`"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with(
            "workers[0].transports[0].options.max_mesage_size: unknown field `max_mesage_size`"
        ),
        "{errors:#?}"
    );
}

#[test]
fn type_errors_report_their_path() {
    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["allow"]["call"] = json!("yes");
    assert_one_error(
        &config,
        "workers[0].realms[0].roles[0].permissions[0].allow.call",
        "invalid type: string \"yes\", expected a boolean",
    );

    let mut config = base();
    transport0(&mut config)["serializers"] = json!(["json", 5]);
    assert_one_error(
        &config,
        "workers[0].transports[0].serializers[1]",
        "invalid type",
    );

    let mut config = base();
    config["workers"][0]["realms"] = json!({"name": "realm1"});
    let errors = errors(&config);
    assert!(
        errors.contains(&"workers[0].realms: invalid type: map, expected a sequence".to_owned()),
        "{errors:#?}"
    );
}

#[test]
fn three_distinct_problems_are_all_reported() {
    let mut config = base();
    config["workers"][0]["realms"][0]["name"] = json!("bad name");
    transport0(&mut config)["endpoint"]["port"] = json!(0);
    transport0(&mut config)["serializers"] = json!(["json", "xml"]);
    let errors = errors(&config);
    assert_eq!(
        errors,
        [
            "workers[0].realms[0].name: invalid realm name \"bad name\": must be a WAMP URI \
             (non-empty components without whitespace, '.' or '#')",
            "workers[0].transports[0].serializers[1]: unknown serializer \"xml\", expected one \
             of \"json\", \"msgpack\", \"cbor\", \"ubjson\"",
            "workers[0].transports[0].endpoint.port: port 0 is not allowed",
        ]
    );
}

#[test]
fn problems_in_sibling_nodes_survive_a_parse_error() {
    // A typo in the worker itself must not hide problems in its realms and transports.
    let mut config = base();
    config["workers"][0]["realm"] = json!([]);
    config["workers"][0]["realms"][0]["store"] = json!({"type": "memory"});
    transport0(&mut config)["endpoint"]["port"] = json!(70000);
    let errors = errors(&config);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with("workers[0].realm: unknown field `realm`"),
        "{errors:#?}"
    );
    assert_eq!(errors[1], "workers[0].realms[0].store: not supported yet");
    assert_eq!(
        errors[2],
        "workers[0].transports[0].endpoint.port: port 70000 is out of range (1 to 65535)"
    );
}

#[test]
fn port_zero_is_rejected() {
    let mut config = base();
    transport0(&mut config)["endpoint"]["port"] = json!(0);
    let errors = parse(&config).unwrap_err();
    assert_eq!(
        errors,
        [ConfigError {
            path: "workers[0].transports[0].endpoint.port".into(),
            message: "port 0 is not allowed".into(),
        }]
    );
}

#[test]
fn port_from_environment() {
    let mut config = base();
    transport0(&mut config)["endpoint"]["port"] = json!("$JUNCTION_PORT");
    let text = config.to_string();

    let env = |var: &str| (var == "JUNCTION_PORT").then(|| "9090".to_owned());
    let node = parse_with_env(&text, "(root)", &env, Path::new(NODE))
        .expect("valid with the variable set");
    assert_eq!(websocket(&node, 0, 0).endpoint.tcp().unwrap().port, 9090);

    let errors = parse_with_env(&text, "(root)", &no_env, Path::new(NODE)).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "workers[0].transports[0].endpoint.port: environment variable JUNCTION_PORT is not set"
    );

    let env = |_: &str| Some("http".to_owned());
    let errors = parse_with_env(&text, "(root)", &env, Path::new(NODE)).unwrap_err();
    assert_eq!(errors[0].path, "workers[0].transports[0].endpoint.port");
    assert!(
        errors[0].message.contains("not a port number"),
        "{errors:#?}"
    );

    let env = |_: &str| Some("0".to_owned());
    let errors = parse_with_env(&text, "(root)", &env, Path::new(NODE)).unwrap_err();
    assert_eq!(
        errors[0].message,
        "port 0 is not allowed (from environment variable JUNCTION_PORT)"
    );

    let mut config = base();
    transport0(&mut config)["endpoint"]["port"] = json!("8080");
    assert_one_error(
        &config,
        "workers[0].transports[0].endpoint.port",
        "expected an integer or an environment variable reference",
    );
}

#[test]
fn duplicate_realm_is_rejected() {
    let mut config = base();
    let realm = config["workers"][0]["realms"][0].clone();
    config["workers"][0]["realms"]
        .as_array_mut()
        .unwrap()
        .push(realm);
    assert_one_error(
        &config,
        "workers[0].realms[1].name",
        "duplicate realm name \"realm1\" (already defined at workers[0].realms[0]",
    );
}

#[test]
fn duplicate_role_is_rejected() {
    let mut config = base();
    let roles = &mut config["workers"][0]["realms"][0]["roles"];
    let role = roles[0].clone();
    roles.as_array_mut().unwrap().push(role);
    assert_one_error(
        &config,
        "workers[0].realms[0].roles[1].name",
        "duplicate role name \"anonymous\"",
    );
}

#[test]
fn legacy_starred_permissions_are_converted() {
    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["permissions"] = json!([
        {"uri": "com.x.*", "allow": {"call": true}},
        {"uri": "com.x.exact"},
        {"uri": "*"},
        {"uri": "com.*.y"},
        {"uri": "com.z.*", "match": "exact"},
    ]);
    let node = parse(&config).expect("valid");
    let permissions = &node.routers[0].realms[0].roles[0].permissions;
    let got: Vec<_> = permissions
        .iter()
        .map(|p| (p.uri.as_str(), p.match_policy))
        .collect();
    assert_eq!(
        got,
        [
            ("com.x.", MatchPolicy::Prefix),
            ("com.x.exact", MatchPolicy::Exact),
            ("", MatchPolicy::Prefix),
            ("com..y", MatchPolicy::Wildcard),
            ("com.z.*", MatchPolicy::Exact),
        ]
    );
    assert!(permissions[0].allow.call && !permissions[0].allow.publish);
    assert!(
        !permissions[1].cache,
        "cache defaults to false, as in Crossbar"
    );
}

#[test]
fn invalid_permission_uri_is_rejected() {
    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["uri"] = json!("com.#");
    assert_one_error(
        &config,
        "workers[0].realms[0].roles[0].permissions[0].uri",
        "invalid URI \"com.#\"",
    );
}

#[test]
fn unknown_serializer_is_rejected() {
    let mut config = base();
    transport0(&mut config)["serializers"] = json!(["cbor", "yaml"]);
    assert_one_error(
        &config,
        "workers[0].transports[0].serializers[1]",
        "unknown serializer \"yaml\"",
    );
}

#[test]
fn serializer_list_problems() {
    let mut config = base();
    transport0(&mut config)["serializers"] = json!(["cbor", "json", "cbor", "flatbuffers"]);
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].serializers[2]: duplicate serializer \"cbor\"",
            "workers[0].transports[0].serializers[3]: serializer \"flatbuffers\" is not \
             supported yet",
        ]
    );

    let mut config = base();
    transport0(&mut config)["serializers"] = json!([]);
    assert_one_error(
        &config,
        "workers[0].transports[0].serializers",
        "at least one serializer",
    );

    let mut config = base();
    transport0(&mut config)["serializers"] = json!(["cbor", "json"]);
    let node = parse(&config).unwrap();
    assert_eq!(
        websocket(&node, 0, 0).serializers,
        [Serializer::Cbor, Serializer::Json],
        "config order is preference order"
    );
}

#[test]
fn version_must_be_two() {
    let mut config = base();
    config["version"] = json!(1);
    assert_one_error(&config, "version", "version 1 is not supported, must be 2");
    config.as_object_mut().unwrap().remove("version");
    assert_one_error(&config, "version", "missing, must be 2");
}

#[test]
fn unsupported_worker_types() {
    for kind in ["container", "guest", "proxy", "websocket-testee"] {
        let mut config = base();
        config["workers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": kind, "anything": "goes"}));
        assert_eq!(
            errors(&config),
            [format!(
                "workers[1].type: worker type \"{kind}\" is not supported"
            )]
        );
    }
    let mut config = base();
    config["workers"][0]["type"] = json!("rooter");
    assert_one_error(&config, "workers[0].type", "unknown worker type \"rooter\"");
}

#[test]
fn unsupported_transport_types_hide_their_inner_keys() {
    let mut config = base();
    let transports = config["workers"][0]["transports"].as_array_mut().unwrap();
    transports.push(json!({"type": "flashpolicy", "whatever": {"nested": 1}}));
    transports.push(json!({"type": "websocket.testee"}));
    transports.push(json!({"type": "stream.testee"}));
    transports.push(json!({"type": "carrier-pigeon"}));
    let errors = errors(&config);
    assert_eq!(
        errors[..3],
        [
            "workers[0].transports[1].type: transport type \"flashpolicy\" is not supported yet",
            "workers[0].transports[2].type: transport type \"websocket.testee\" is not \
             supported yet",
            "workers[0].transports[3].type: transport type \"stream.testee\" is not supported \
             yet",
        ]
    );
    assert_eq!(
        errors[3],
        "workers[0].transports[4].type: unknown transport type \"carrier-pigeon\", expected \
         one of \"websocket\", \"rawsocket\", \"web\", \"universal\", \"mqtt\", \
         \"flashpolicy\", \"websocket.testee\", \"stream.testee\""
    );
    assert_eq!(errors.len(), 4);
}

#[test]
fn unsupported_keys_report_their_paths() {
    let mut config = base();
    config["controller"] = json!({
        "id": "node_ctl",
        "options": {"title": "t", "shutdown": ["shutdown_on_worker_exit"],
                    "enable_parallel_worker_start": true},
        "manhole": {},
        "keyring": {"type": "file"},
        "connections": [{}]
    });
    let worker = &mut config["workers"][0];
    worker["manhole"] = json!({});
    worker["components"] = json!([{"type": "class"}]);
    worker["connections"] = json!([{}]);
    worker["options"] = json!({"title": "r", "cpu_affinity": [0], "env": {}, "pythonpath": []});
    let realm = &mut worker["realms"][0];
    realm["store"] = json!({"type": "memory"});
    realm["rlinks"] = json!([]);
    realm["options"] = json!({"enable_meta_api": true, "bridge_meta_api": true,
                              "event_dispatching_chunk_size": 100, "uri_check": "loose"});
    let role = &mut realm["roles"][0];
    role["permissions"][0]["validate"] = json!({"call": "x"});
    realm["roles"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dyn", "authorizer": "com.example.authorize"}));
    realm["roles"].as_array_mut().unwrap().push(json!({
        "name": "both", "authorizer": "com.example.authorize", "permissions": []
    }));
    let transport = transport0(&mut config);
    transport["debug"] = json!(true);
    transport["cookie"] = json!({});
    transport["endpoint"]["shared"] = json!(true);
    transport["options"] =
        json!({"compression": {}, "allowed_origins": ["*"], "tcp_nodelay": true});
    transport["auth"] = json!({
        "anonymous": {"type": "static", "role": "anonymous", "authid": "x"},
        "ticket": {"type": "function", "create": "x.y"},
        "wampcra": {"type": "dynamic", "authenticator": "com.x", "authenticator-realm": "r"},
        "cryptosign": {"type": "static", "trustroots": {"realm1": "0xabc"}},
        "scram": {}
    });
    let errors = errors(&config);
    let expected = [
        "controller.manhole: not supported yet",
        "controller.keyring: not supported yet",
        "controller.connections: not supported yet",
        "workers[0].manhole: not supported yet",
        "workers[0].components: not supported yet",
        "workers[0].connections: not supported yet",
        "workers[0].options.pythonpath: not supported yet",
        "workers[0].options.cpu_affinity: not supported yet",
        "workers[0].options.env: not supported yet",
        "workers[0].realms[0].store: not supported yet",
        "workers[0].realms[0].rlinks: not supported yet",
        "workers[0].realms[0].options.enable_meta_api: the WAMP meta API is not supported yet; \
         set this to false",
        "workers[0].realms[0].options.bridge_meta_api: not supported yet",
        "workers[0].realms[0].options.event_dispatching_chunk_size: not supported yet",
        "workers[0].realms[0].roles[0].permissions[0].validate: not supported yet",
        "workers[0].realms[0].roles[2]: a role cannot have both `permissions` and `authorizer`",
        "workers[0].transports[0].debug: not supported yet",
        "workers[0].transports[0].cookie: not supported yet",
        "workers[0].transports[0].endpoint.shared: not supported yet",
        "workers[0].transports[0].options.allowed_origins: not supported yet",
        "workers[0].transports[0].options.tcp_nodelay: not supported yet",
        "workers[0].transports[0].options.compression: not supported yet",
        "workers[0].transports[0].auth.anonymous.authid: not supported yet",
        "workers[0].transports[0].auth.ticket.type: authentication type \"function\" is not \
         supported yet",
        "workers[0].transports[0].auth.cryptosign.trustroots: not supported yet",
        "workers[0].transports[0].auth.scram: authentication method \"scram\" is not supported \
         yet",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn unsupported_endpoint_types_and_keys() {
    for kind in ["twisted", "onion"] {
        let mut config = base();
        transport0(&mut config)["endpoint"] = json!({"type": kind, "server_string": "tcp:80"});
        assert_eq!(
            errors(&config),
            [format!(
                "workers[0].transports[0].endpoint.type: endpoint type \"{kind}\" is not \
                 supported yet"
            )]
        );
    }
    let mut config = base();
    transport0(&mut config)["endpoint"] = json!({"type": "tcp", "portrange": [8000, 8010]});
    assert_eq!(
        errors(&config),
        ["workers[0].transports[0].endpoint.portrange: not supported yet"]
    );
    let mut config = base();
    transport0(&mut config)["endpoint"] = json!({"type": "tcp"});
    assert_one_error(
        &config,
        "workers[0].transports[0].endpoint",
        "missing field `port`",
    );
}

#[test]
fn dynamic_anonymous_cryptosign_and_tls_auth_parse() {
    for method in ["anonymous", "cryptosign", "tls"] {
        let mut config = base();
        transport0(&mut config)["auth"] =
            json!({method: {"type": "dynamic", "authenticator": "com.example.auth"}});
        let node = parse(&config).expect("a dynamic method is valid");
        let TransportConfig::WebSocket(ws) = &node.routers[0].transports[0] else {
            panic!("websocket expected");
        };
        assert_eq!(
            ws.auth.dynamic.get(method).map(String::as_str),
            Some("com.example.auth")
        );
        assert!(
            ws.auth.anonymous.is_none(),
            "dynamic anonymous is not static"
        );
    }
}

#[test]
fn anonymous_role_must_exist() {
    let mut config = base();
    transport0(&mut config)["auth"] = json!({"anonymous": {"type": "static", "role": "guest"}});
    assert_one_error(
        &config,
        "workers[0].transports[0].auth.anonymous.role",
        "role \"guest\" (for anonymous sessions) is not defined in any realm of this worker",
    );

    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["name"] = json!("user");
    assert_one_error(
        &config,
        "workers[0].transports[0]",
        "role \"anonymous\" (for anonymous sessions) is not defined",
    );

    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["name"] = json!("frontend");
    transport0(&mut config)["auth"] = json!({"anonymous": {"type": "static", "role": "frontend"}});
    let node = parse(&config).expect("valid");
    assert_eq!(websocket(&node, 0, 0).anonymous_role, "frontend");
}

#[test]
fn broken_realm_does_not_also_blame_the_anonymous_role() {
    let mut config = base();
    config["workers"][0]["realms"][0]["roles"][0]["nmae"] = json!("x");
    let errors = errors(&config);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("workers[0].realms[0].roles[0].nmae: unknown field"));
}

#[test]
fn conflicting_listeners_are_rejected() {
    let mut config = base();
    let second = json!({
        "type": "websocket",
        "endpoint": {"type": "tcp", "port": 8080, "interface": "127.0.0.1"},
    });
    config["workers"][0]["transports"]
        .as_array_mut()
        .unwrap()
        .push(second);
    assert_one_error(
        &config,
        "workers[0].transports[1].endpoint",
        "tcp port 8080 on 127.0.0.1 is already used by workers[0].transports[0].endpoint",
    );

    // Different IP version, or a different interface: no conflict.
    let mut config = base();
    transport0(&mut config)["endpoint"]["interface"] = json!("127.0.0.1");
    let transports = config["workers"][0]["transports"].as_array_mut().unwrap();
    transports.push(json!({
        "type": "websocket",
        "endpoint": {"type": "tcp", "port": 8080, "interface": "127.0.0.2"},
    }));
    transports.push(json!({
        "type": "websocket",
        "endpoint": {"type": "tcp", "port": 8080, "version": 6},
    }));
    parse(&config).expect("valid");
}

#[test]
fn endpoint_values_are_checked() {
    let mut config = base();
    transport0(&mut config)["endpoint"] = json!({
        "type": "tcp", "port": 8080, "interface": "::1", "backlog": 0, "version": 5
    });
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].endpoint.version: invalid IP version 5, expected 4 or 6",
            "workers[0].transports[0].endpoint.interface: interface ::1 does not match IP \
             version 4 of this endpoint",
            "workers[0].transports[0].endpoint.backlog: backlog 0 is out of range (1 to 65535)",
        ]
    );

    let mut config = base();
    transport0(&mut config)["endpoint"] = json!({
        "type": "tcp", "port": 8080, "interface": "::1", "backlog": 50, "version": 6
    });
    let node = parse(&config).expect("valid");
    let endpoint = &websocket(&node, 0, 0).endpoint;
    assert_eq!(
        endpoint.tcp().unwrap().interface,
        Some("::1".parse().unwrap())
    );
    assert_eq!(
        (
            endpoint.tcp().unwrap().backlog,
            endpoint.tcp().unwrap().version
        ),
        (50, IpVersion::V6)
    );

    let mut config = base();
    transport0(&mut config)["endpoint"]["interface"] = json!("localhost");
    assert_one_error(
        &config,
        "workers[0].transports[0].endpoint.interface",
        "expected an IP address",
    );
}

#[test]
fn websocket_options_are_honoured() {
    let mut config = base();
    transport0(&mut config)["options"] = json!({
        "max_message_size": 65536,
        "max_frame_size": 4096,
        "auto_ping_interval": 0,
        "auto_ping_timeout": 2000,
        "open_handshake_timeout": 2500,
        "close_handshake_timeout": 500,
        "require_websocket_subprotocol": false,
        "outbox_messages": 64
    });
    let node = parse(&config).expect("valid");
    assert_eq!(
        websocket(&node, 0, 0).options,
        WebSocketOptions {
            max_message_size: 65536,
            max_frame_size: 4096,
            auto_ping_interval: None,
            auto_ping_timeout: Some(Duration::from_secs(2)),
            open_handshake_timeout: Duration::from_millis(2500),
            close_handshake_timeout: Duration::from_millis(500),
            require_websocket_subprotocol: false,
            outbox_messages: 64,
        }
    );
}

#[test]
fn websocket_option_values_are_checked() {
    let mut config = base();
    transport0(&mut config)["options"] = json!({
        "max_message_size": 0,
        "max_frame_size": 16 * 1024 * 1024 + 1,
        "open_handshake_timeout": 0,
        "outbox_messages": 0
    });
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].options.max_message_size: must be positive (junction has \
             no unlimited size)",
            "workers[0].transports[0].options.max_frame_size: 16777217 exceeds the maximum of \
             16777216 (16 MiB)",
            "workers[0].transports[0].options.open_handshake_timeout: must be positive \
             (junction has no unlimited handshake)",
            "workers[0].transports[0].options.outbox_messages: must be positive",
        ]
    );

    let mut config = base();
    transport0(&mut config)["options"] = json!({"auto_ping_interval": -1});
    assert_one_error(
        &config,
        "workers[0].transports[0].options.auto_ping_interval",
        "invalid value: integer `-1`",
    );
}

#[test]
fn websocket_url_path_and_problems() {
    let mut config = base();
    transport0(&mut config)["url"] = json!("ws://example.com:443/wamp?x=1");
    let node = parse(&config).expect("a different external port is fine");
    assert_eq!(websocket(&node, 0, 0).path.as_deref(), Some("/wamp"));

    transport0(&mut config)
        .as_object_mut()
        .unwrap()
        .remove("url");
    let node = parse(&config).expect("valid");
    assert_eq!(websocket(&node, 0, 0).path, None);

    transport0(&mut config)["url"] = json!("http://127.0.0.1:8080/ws");
    assert_one_error(
        &config,
        "workers[0].transports[0].url",
        "scheme \"http\" is not ws or wss",
    );
}

#[test]
fn ids_are_checked() {
    let mut config = base();
    config["controller"]["id"] = json!("Node");
    config["workers"][0]["id"] = json!("ab");
    transport0(&mut config)["id"] = json!("ws-1");
    let errors = errors(&config);
    let paths: Vec<_> = errors
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "controller.id",
            "workers[0].id",
            "workers[0].transports[0].id"
        ]
    );

    let mut config = base();
    config["workers"][0]["id"] = json!("router1");
    let mut second = config["workers"][0].clone();
    second["realms"][0]["name"] = json!("realm2");
    second["transports"][0]["endpoint"]["port"] = json!(8081);
    config["workers"].as_array_mut().unwrap().push(second);
    assert_one_error(
        &config,
        "workers[1].id",
        "duplicate worker id \"router1\" (already used by workers[0])",
    );
}

#[test]
fn controller_options() {
    let mut config = base();
    config["controller"] = json!({"id": "node1", "options": {"title": "my node",
                                  "shutdown": "shutdown_on_last_worker_exit"}});
    let node = parse(&config).expect("valid");
    assert_eq!(node.controller_id.as_deref(), Some("node1"));
    assert_eq!(node.title.as_deref(), Some("my node"));

    config["controller"]["options"]["shutdown"] =
        json!(["shutdown_on_worker_exit", "shutdown_now", 3]);
    let errors = errors(&config);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0]
        .starts_with("controller.options.shutdown[1]: unknown shutdown mode \"shutdown_now\""));
    assert!(errors[1].starts_with("controller.options.shutdown[2]: invalid type"));
}

#[test]
fn realm_options() {
    let mut config = base();
    config["workers"][0]["realms"][0]["options"] =
        json!({"uri_check": "loose", "enable_meta_api": false});
    let node = parse(&config).expect("valid");
    assert_eq!(node.routers[0].realms[0].uri_check, UriCheck::Loose);

    config["workers"][0]["realms"][0]["options"] = json!({"uri_check": "lax"});
    assert_one_error(
        &config,
        "workers[0].realms[0].options.uri_check",
        "unknown variant `lax`",
    );
}

#[test]
fn empty_components_and_connections_are_fine() {
    let mut config = base();
    config["workers"][0]["components"] = json!([]);
    config["workers"][0]["connections"] = json!([]);
    config["$schema"] =
        json!("https://raw.githubusercontent.com/crossbario/crossbar/master/crossbar.json");
    parse(&config).expect("valid");
}

#[test]
fn syntax_errors_and_non_objects() {
    let errors = parse_json("{\"version\": 2,,}").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "(root)");
    assert!(errors[0].message.contains("line 1 column"), "{errors:#?}");

    assert_eq!(
        parse_json("[]").unwrap_err()[0].to_string(),
        "(root): invalid type: sequence, expected a map"
    );
    let errors = parse_json(r#"{"version": 2, "workers": [7]}"#).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "workers[0]: invalid type: integer `7`, expected a map"
    );
    let errors = parse_json(r#"{"version": 2, "workers": [{"id": "abc"}]}"#).unwrap_err();
    assert_eq!(errors[0].to_string(), "workers[0]: missing field `type`");
}

#[test]
fn load_dir_finds_config_json() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_dir(dir.path()), Ok(None));

    std::fs::write(dir.path().join("config.json"), default_config_json()).unwrap();
    let node = load_dir(dir.path()).unwrap().expect("config found");
    assert_eq!(node.routers[0].realms[0].name, "realm1");

    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let errors = load_dir(dir.path()).unwrap_err();
    assert!(errors[0].path.ends_with("config.json"), "{errors:#?}");
    assert!(errors[0].message.contains("EOF"), "{errors:#?}");

    std::fs::write(dir.path().join("config.yaml"), "version: 2\n").unwrap();
    let errors = load_dir(dir.path()).unwrap_err();
    assert!(errors[0].path.ends_with("config.yaml"), "{errors:#?}");
    assert!(
        errors[0].message.contains("not supported yet"),
        "{errors:#?}"
    );
}

#[test]
fn arbitrary_json_never_panics() {
    // A few shapes the walker must survive (the fuzz target covers the rest).
    for text in [
        "null",
        "1",
        "\"x\"",
        "{}",
        r#"{"workers": null, "controller": null}"#,
        r#"{"version": 2, "workers": [{"type": "router", "realms": [null, 1, []],
            "transports": [{"type": "websocket", "endpoint": [], "auth": []}]}]}"#,
        r#"{"version": 2, "workers": [{"type": 5}, {"type": "router", "transports": [
            {"type": "websocket", "endpoint": {"type": "tcp", "port": 1.5}, "auth": {}}]}]}"#,
        r#"{"version": 2, "workers": [{"type": "router", "transports": [
            {"type": "universal", "endpoint": {"type": "unix", "path": 3},
             "rawsocket": [], "websocket": {"ws": 1, "x": {"type": null}}, "web": 7},
            {"type": "universal", "endpoint": {"type": "tcp", "port": 1, "tls": []},
             "web": {"paths": []}, "websocket": {"ws": {}}},
            {"type": "web", "endpoint": {"type": "tcp", "port": 2,
                                         "tls": {"key": 1, "certificate": null}},
             "paths": {"/": null, "a": {"type": "static", "options": []},
                       "b": {"type": "static", "options": {"mime_types": []}},
                       "c": {"type": "json"}, "d": {"type": "websocket", "options": 1}}},
            {"type": "rawsocket", "endpoint": {"type": "unix", "path": ""}, "options": null}
        ]}]}"#,
        r#"{"version": 2, "workers": [{"type": "router",
            "realms": [{"name": "r", "options": {"mqtt": []}}, {"name": "s", "options": 1},
                       {"name": "t", "options": {"mqtt": {"persistence": null}}}],
            "transports": [
            {"type": "mqtt", "endpoint": null, "options": {"realm": 1, "role": []}},
            {"type": "mqtt", "options": null},
            {"type": "universal", "endpoint": {"type": "tcp", "port": 3}, "mqtt": 1,
             "websocket": {"m": {"type": "mqtt", "options": []}, "n": {"type": "mqtt"}}},
            {"type": "universal", "endpoint": {"type": "tcp", "port": 4},
             "mqtt": {"options": {"payload_mapping": 5}}}
        ]}]}"#,
    ] {
        let _ = parse_json(text);
    }
}

// ---------------------------------------------------------------------------------------------
// RawSocket transports

#[test]
fn rawsocket_transport_parses() {
    let config = with_transports(json!([
        {"type": "rawsocket", "id": "rs_tcp",
         "endpoint": {"type": "tcp", "port": 8081},
         "max_connections": 100},
        {"type": "rawsocket",
         "endpoint": {"type": "unix", "path": "sockets/rs.sock", "backlog": 16},
         "serializers": ["cbor", "json"],
         "options": {"max_message_size": 65536, "open_handshake_timeout": 2000,
                     "auto_ping_interval": 10000, "auto_ping_timeout": 0,
                     "outbox_messages": 64},
         "auth": {"anonymous": {"type": "static", "role": "anonymous"}}}
    ]));
    let node = parse(&config).expect("valid");
    let first = rawsocket(&node, 0);
    assert_eq!(first.id.as_deref(), Some("rs_tcp"));
    assert_eq!(first.endpoint.tcp().unwrap().port, 8081);
    assert_eq!(first.settings, RawSocketSettings::default());
    assert_eq!(first.settings.max_message_size, 16 << 20);
    assert_eq!(first.max_connections, Some(100));

    let second = rawsocket(&node, 1);
    assert_eq!(
        second.endpoint,
        Endpoint::Unix(UnixEndpoint {
            path: "/node/sockets/rs.sock".into(),
            backlog: 16,
        })
    );
    assert_eq!(
        second.settings,
        RawSocketSettings {
            serializers: vec![Serializer::Cbor, Serializer::Json],
            max_message_size: 65536,
            anonymous_role: "anonymous".into(),
            auth: std::sync::Arc::new(TransportAuth {
                anonymous: Some("anonymous".into()),
                password_file_role: "anonymous".into(),
                acl_file: None,
                ..Default::default()
            }),
            open_handshake_timeout: Duration::from_secs(2),
            auto_ping_interval: Some(Duration::from_secs(10)),
            auto_ping_timeout: None,
            outbox_messages: 64,
        }
    );
    assert_eq!(second.max_connections, None);
}

#[test]
fn rawsocket_problems_report_their_paths() {
    let config = with_transports(json!([
        {"type": "rawsocket", "id": "Bad",
         "endpoint": {"type": "tcp", "port": 8081},
         "serializers": ["json", "xml"],
         "debug": true,
         "max_connections": 0,
         "options": {"max_message_size": 16 * 1024 * 1024 + 1, "open_handshake_timeout": 0,
                     "outbox_messages": 0},
         "auth": {"anonymous": {"type": "static", "role": "nobody"}}},
        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8082},
         "options": {"max_frame_size": 4096}},
        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8083}, "cookie": {}},
        {"type": "rawsocket"}
    ]));
    let errors = errors(&config);
    let expected_prefixes = [
        "workers[0].transports[0].id: invalid id \"Bad\"",
        "workers[0].transports[0].debug: not supported yet",
        "workers[0].transports[0].max_connections: must be at least 1",
        "workers[0].transports[0].serializers[1]: unknown serializer \"xml\"",
        "workers[0].transports[0].options.max_message_size: 16777217 exceeds the maximum of \
         16777216 (16 MiB)",
        "workers[0].transports[0].options.open_handshake_timeout: must be positive",
        "workers[0].transports[0].options.outbox_messages: must be positive",
        "workers[0].transports[1].options.max_frame_size: unknown field `max_frame_size`",
        "workers[0].transports[2].cookie: unknown field `cookie`",
        "workers[0].transports[3]: missing field `endpoint`",
    ];
    assert_eq!(errors.len(), expected_prefixes.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expected_prefixes) {
        assert!(
            error.starts_with(prefix),
            "{error:?} should start with {prefix:?}"
        );
    }

    // A broken transport does not also blame its role; a valid one does.
    let config = with_transports(json!([
        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081},
         "auth": {"anonymous": {"type": "static", "role": "nobody"}}}
    ]));
    assert_one_error(
        &config,
        "workers[0].transports[0].auth.anonymous.role",
        "role \"nobody\" (for anonymous sessions) is not defined",
    );
}

#[test]
fn max_connections_on_every_transport() {
    let config = with_transports(json!([
        {"type": "websocket", "endpoint": {"type": "tcp", "port": 8080}, "max_connections": 5},
        {"type": "web", "endpoint": {"type": "tcp", "port": 8081},
         "paths": {"/": {"type": "nodeinfo"}}, "max_connections": 6},
        {"type": "universal", "endpoint": {"type": "tcp", "port": 8082}, "max_connections": 7}
    ]));
    let node = parse(&config).expect("valid");
    assert_eq!(websocket(&node, 0, 0).max_connections, Some(5));
    assert_eq!(web(&node, 1).max_connections, Some(6));
    assert_eq!(universal(&node, 2).max_connections, Some(7));

    let config = with_transports(json!([
        {"type": "websocket", "endpoint": {"type": "tcp", "port": 8080}, "max_connections": -1}
    ]));
    assert_one_error(
        &config,
        "workers[0].transports[0].max_connections",
        "invalid value: integer `-1`",
    );
}

// ---------------------------------------------------------------------------------------------
// Unix endpoints

#[test]
fn unix_endpoints() {
    let config = with_transports(json!([
        {"type": "websocket", "endpoint": {"type": "unix", "path": "/run/junction/ws.sock"}},
        {"type": "web", "endpoint": {"type": "unix", "path": "./web.sock"},
         "paths": {"info": {"type": "nodeinfo"}}},
        {"type": "universal", "endpoint": {"type": "unix", "path": "../run/uni.sock"}}
    ]));
    let node = parse(&config).expect("valid");
    let unix = |endpoint: &Endpoint| match endpoint {
        Endpoint::Unix(u) => u.clone(),
        Endpoint::Tcp(_) => panic!("not unix"),
    };
    assert_eq!(
        unix(&websocket(&node, 0, 0).endpoint),
        UnixEndpoint {
            path: "/run/junction/ws.sock".into(),
            backlog: 1024
        }
    );
    assert_eq!(
        unix(&web(&node, 1).endpoint).path,
        PathBuf::from("/node/web.sock")
    );
    assert_eq!(
        unix(&universal(&node, 2).endpoint).path,
        PathBuf::from("/run/uni.sock")
    );
}

#[test]
fn unix_endpoint_problems() {
    let config = with_transports(json!([
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "a.sock"}},
        {"type": "websocket", "endpoint": {"type": "unix", "path": "/node/a.sock"}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "/node/./b/../a.sock"}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "c.sock", "backlog": 0}},
        {"type": "rawsocket", "endpoint": {"type": "unix"}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "d.sock", "port": 1}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": ""}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "x".repeat(120)}}
    ]));
    let errors = errors(&config);
    let expected_prefixes = [
        "workers[0].transports[1].endpoint.path: unix socket /node/a.sock is already used by \
         workers[0].transports[0].endpoint",
        "workers[0].transports[2].endpoint.path: unix socket /node/a.sock is already used by \
         workers[0].transports[0].endpoint",
        "workers[0].transports[3].endpoint.backlog: backlog 0 is out of range (1 to 65535)",
        "workers[0].transports[4].endpoint: missing field `path`",
        "workers[0].transports[5].endpoint.port: unknown field `port`, expected one of \
         `type`, `path`, `backlog`",
        "workers[0].transports[6].endpoint.path: must not be empty",
        "workers[0].transports[7].endpoint.path: socket path /node/xxx",
    ];
    assert_eq!(errors.len(), expected_prefixes.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expected_prefixes) {
        assert!(
            error.starts_with(prefix),
            "{error:?} should start with {prefix:?}"
        );
    }
    assert!(errors[6].ends_with("more than the 107 a Unix socket address can hold"));
}

#[test]
fn tcp_and_unix_listeners_do_not_clash() {
    let config = with_transports(json!([
        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8080}},
        {"type": "universal", "endpoint": {"type": "tcp", "port": 8080}},
        {"type": "rawsocket", "endpoint": {"type": "unix", "path": "8080"}}
    ]));
    assert_one_error(
        &config,
        "workers[0].transports[1].endpoint",
        "tcp port 8080 on all IPv4 interfaces is already used by workers[0].transports[0].endpoint",
    );
}

// ---------------------------------------------------------------------------------------------
// Web transports and services

/// A node directory with a `web` folder next to it (Crossbar's layout: `"../web"`).
fn app_dir() -> (tempfile::TempDir, PathBuf) {
    let app = tempfile::tempdir().unwrap();
    let node = app.path().join(".crossbar");
    std::fs::create_dir(&node).unwrap();
    std::fs::create_dir(app.path().join("web")).unwrap();
    std::fs::write(app.path().join("web/index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(app.path().join("file.txt"), "not a directory").unwrap();
    (app, node)
}

#[test]
fn web_transport_parses() {
    let (app, node_dir) = app_dir();
    let config = with_transports(json!([{
        "type": "web", "id": "web8081",
        "endpoint": {"type": "tcp", "port": 8081},
        "options": {},
        "paths": {
            "/": {"type": "static", "directory": "../web",
                  "options": {"enable_directory_listing": true,
                              "mime_types": {"wasm": "application/wasm", ".MJS": "text/javascript"},
                              "cache_timeout": 60,
                              "default_file": "index.html"}},
            "plain": {"type": "static", "directory": "../web", "options": {"cache_timeout": null}},
            "docs": {"type": "redirect", "id": "docs_redirect", "url": "https://example.com/"},
            "cfg": {"type": "json", "value": {"a": [1, 2]}},
            "nothing": {"type": "json", "value": null},
            "info": {"type": "nodeinfo"},
            "ws": {"type": "websocket", "serializers": ["msgpack"],
                   "url": "ws://example.com/ws",
                   "options": {"auto_ping_interval": 5000}}
        }
    }]));
    let node = parse_in(&config, &node_dir).expect("valid");
    let web = web(&node, 0);
    assert_eq!(web.id.as_deref(), Some("web8081"));
    assert_eq!(web.paths.len(), 7);
    let WebService::Static(root) = &web.paths["/"] else {
        panic!("{:#?}", web.paths)
    };
    assert_eq!(
        root,
        &StaticService {
            directory: app.path().join("web"),
            enable_directory_listing: true,
            mime_types: [
                (".mjs".to_owned(), "text/javascript".to_owned()),
                (".wasm".to_owned(), "application/wasm".to_owned()),
            ]
            .into(),
            cache_timeout: Some(60),
            default_file: "index.html".into(),
            fallback_file: Some("index.html".into()),
        }
    );
    let WebService::Static(plain) = &web.paths["plain"] else {
        panic!()
    };
    assert_eq!(plain.cache_timeout, None, "null means no caching headers");
    assert!(!plain.enable_directory_listing);
    assert_eq!(plain.fallback_file, None);
    assert_eq!(
        web.paths["docs"],
        WebService::Redirect {
            url: "https://example.com/".into()
        }
    );
    assert_eq!(
        web.paths["cfg"],
        WebService::Json {
            value: json!({"a": [1, 2]})
        }
    );
    assert_eq!(
        web.paths["nothing"],
        WebService::Json { value: Value::Null }
    );
    assert_eq!(web.paths["info"], WebService::NodeInfo);
    assert_eq!(
        web.paths["ws"],
        WebService::WebSocket(WebSocketSettings {
            serializers: vec![Serializer::MsgPack],
            options: WebSocketOptions {
                auto_ping_interval: Some(Duration::from_secs(5)),
                ..WebSocketOptions::default()
            },
            anonymous_role: "anonymous".into(),
            auth: std::sync::Arc::new(TransportAuth {
                anonymous: Some("anonymous".into()),
                password_file_role: "anonymous".into(),
                acl_file: None,
                ..Default::default()
            }),
        })
    );
}

#[test]
fn static_cache_timeout_defaults_to_twelve_hours() {
    let (_app, node_dir) = app_dir();
    let config = with_transports(json!([{
        "type": "web", "endpoint": {"type": "tcp", "port": 8081},
        "paths": {"/": {"type": "static", "directory": "../web"}}
    }]));
    let node = parse_in(&config, &node_dir).expect("valid");
    let WebService::Static(root) = &web(&node, 0).paths["/"] else {
        panic!()
    };
    assert_eq!(root.cache_timeout, Some(43200));
    assert_eq!(root.default_file, "index.html");
    assert!(root.mime_types.is_empty());
}

#[test]
fn web_problems_report_their_paths() {
    let (app, node_dir) = app_dir();
    let config = with_transports(json!([{
        "type": "web", "endpoint": {"type": "tcp", "port": 8081},
        "options": {"access_log": true, "hsts": true, "gzip": true},
        "paths": {
            "/": {"type": "static", "directory": "../missing"},
            "file": {"type": "static", "directory": "../file.txt"},
            "pkg": {"type": "static", "package": "app", "resource": "web"},
            "nodir": {"type": "static"},
            "opts": {"type": "static", "directory": "../web",
                     "options": {"mime_types": {"": "x/y", "svg": "image svg", "js": 3,
                                                "JS": "text/javascript", ".js": "a/b"},
                                 "default_file": "../etc/passwd",
                                 "allow_cross_origin": true}},
            "a/b": {"type": "nodeinfo"},
            "": {"type": "nodeinfo"},
            "proxy": {"type": "reverseproxy", "host": "127.0.0.1", "port": 9000},
            "lp": {"type": "longpoll"},
            "ftp": {"type": "ftp"},
            "redir": {"type": "redirect"},
            "cfg": {"type": "json", "value": 1, "options": {"prettify": true}},
            "nocfg": {"type": "json"},
            "info": {"type": "nodeinfo", "title": "x"},
            "notype": {"directory": "../web"},
            "ws": {"type": "websocket", "cookie": {}, "debug": true,
                   "endpoint": {"type": "tcp", "port": 1}, "max_connections": 1,
                   "url": "http://x/"}
        }
    }]));
    let errors = errors_in(&config, &node_dir);
    let missing = app.path().join("missing");
    let file = app.path().join("file.txt");
    let expected_prefixes = [
        "workers[0].transports[0].options.gzip: unknown field `gzip`".to_owned(),
        format!(
            "workers[0].transports[0].paths./.directory: directory {} does not exist",
            missing.display()
        ),
        format!(
            "workers[0].transports[0].paths.file.directory: {} is not a directory",
            file.display()
        ),
        "workers[0].transports[0].paths.pkg.package: not supported yet".into(),
        "workers[0].transports[0].paths.pkg.resource: not supported yet".into(),
        "workers[0].transports[0].paths.nodir: missing field `directory`".into(),
        "workers[0].transports[0].paths.opts.options.allow_cross_origin: unknown field".into(),
        "workers[0].transports[0].paths.a/b: invalid path \"a/b\": must be \"/\" or one path \
         component"
            .into(),
        "workers[0].transports[0].paths.: invalid path \"\"".into(),
        "workers[0].transports[0].paths.proxy.type: web service type \"reverseproxy\" is not \
         supported yet"
            .into(),
        "workers[0].transports[0].paths.lp.type: web service type \"longpoll\" is not supported \
         yet"
        .into(),
        "workers[0].transports[0].paths.ftp.type: unknown web service type \"ftp\", expected one \
         of \"static\", \"redirect\", \"json\", \"nodeinfo\", \"websocket\", \"reverseproxy\""
            .into(),
        "workers[0].transports[0].paths.redir: missing field `url`".into(),
        "workers[0].transports[0].paths.cfg.options.prettify: not supported yet".into(),
        "workers[0].transports[0].paths.nocfg: missing field `value`".into(),
        "workers[0].transports[0].paths.info.title: unknown field `title`".into(),
        "workers[0].transports[0].paths.notype: missing field `type`".into(),
        "workers[0].transports[0].paths.ws.debug: not supported yet".into(),
        "workers[0].transports[0].paths.ws.cookie: not supported yet".into(),
        "workers[0].transports[0].paths.ws.endpoint: not allowed here".into(),
        "workers[0].transports[0].paths.ws.max_connections: not allowed here".into(),
        "workers[0].transports[0].paths.ws.url: invalid WebSocket URL \"http://x/\"".into(),
    ];
    assert_eq!(errors.len(), expected_prefixes.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(&expected_prefixes) {
        assert!(
            error.starts_with(prefix.as_str()),
            "{error:?} should start with {prefix:?}"
        );
    }

    // Options of the web transport Crossbar knows but junction does not implement, and the
    // static options' value checks (hidden above by the unknown `allow_cross_origin`).
    let config = with_transports(json!([{
        "type": "web", "endpoint": {"type": "tcp", "port": 8081},
        "options": {"access_log": true, "display_tracebacks": false, "hsts": true,
                    "hsts_max_age": 10, "client_timeout": 5},
        "paths": {
            "opts": {"type": "static", "directory": "../web",
                     "options": {"mime_types": {"": "x/y", "svg": "image svg", "js": 3,
                                                "JS": "text/javascript", ".js": "a/b"},
                                 "default_file": "../etc/passwd"}},
            "neg": {"type": "static", "directory": "../web", "options": {"cache_timeout": -1}}
        }
    }]));
    assert_eq!(
        errors_in(&config, &node_dir),
        [
            "workers[0].transports[0].options.access_log: not supported yet",
            "workers[0].transports[0].options.display_tracebacks: not supported yet",
            "workers[0].transports[0].options.hsts: not supported yet",
            "workers[0].transports[0].options.hsts_max_age: not supported yet",
            "workers[0].transports[0].options.client_timeout: not supported yet",
            "workers[0].transports[0].paths.opts.options.default_file: invalid default file \
             \"../etc/passwd\": must be a relative path inside the directory (no '..', no \
             leading '/')",
            "workers[0].transports[0].paths.opts.options.mime_types.: invalid file extension \
             \"\": expected e.g. \".wasm\"",
            "workers[0].transports[0].paths.opts.options.mime_types.svg: invalid MIME type \
             \"image svg\": expected e.g. \"application/wasm\"",
            "workers[0].transports[0].paths.opts.options.mime_types.js: invalid type: integer \
             `3`, expected a string",
            "workers[0].transports[0].paths.opts.options.mime_types..js: duplicate extension \
             \".js\" (already given at workers[0].transports[0].paths.opts.options.mime_types.JS)",
            "workers[0].transports[0].paths.neg.options.cache_timeout: invalid value: integer \
             `-1`, expected u64",
        ]
    );

    let config =
        with_transports(json!([{"type": "web", "endpoint": {"type": "tcp", "port": 8081}}]));
    assert_one_error(&config, "workers[0].transports[0]", "missing field `paths`");
}

/// The errors of an invalid config whose relative paths resolve against `base`.
fn errors_in(config: &Value, base: &Path) -> Vec<String> {
    match parse_in(config, base) {
        Ok(node) => panic!("config unexpectedly valid: {node:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn websocket_service_roles_are_checked() {
    let config = with_transports(json!([{
        "type": "web", "endpoint": {"type": "tcp", "port": 8081},
        "paths": {"ws": {"type": "websocket",
                         "auth": {"anonymous": {"type": "static", "role": "guest"}}}}
    }]));
    assert_one_error(
        &config,
        "workers[0].transports[0].paths.ws.auth.anonymous.role",
        "role \"guest\" (for anonymous sessions) is not defined in any realm of this worker",
    );
}

// ---------------------------------------------------------------------------------------------
// Universal transports

#[test]
fn universal_transport_parses() {
    let (app, node_dir) = app_dir();
    let config = with_transports(json!([{
        "type": "universal", "id": "uni",
        "endpoint": {"type": "tcp", "port": 8080},
        "rawsocket": {"serializers": ["msgpack"], "options": {"max_message_size": 1048576}},
        "websocket": {
            "ws": {"type": "websocket", "options": {"max_message_size": 65536}},
            "ws2": {"serializers": ["json"], "url": "wss://example.com/ws2", "id": "second_ws",
                    "auth": {"anonymous": {"type": "static", "role": "anonymous"}}}
        },
        "web": {"paths": {"/": {"type": "static", "directory": "../web"},
                          "info": {"type": "nodeinfo"}},
                "options": {}}
    }]));
    let node = parse_in(&config, &node_dir).expect("valid");
    let uni = universal(&node, 0);
    assert_eq!(uni.id.as_deref(), Some("uni"));
    assert_eq!(
        uni.rawsocket,
        Some(RawSocketSettings {
            serializers: vec![Serializer::MsgPack],
            max_message_size: 1 << 20,
            ..RawSocketSettings::default()
        })
    );
    assert_eq!(uni.websocket.len(), 2);
    assert_eq!(uni.websocket["ws"].options.max_message_size, 65536);
    assert_eq!(uni.websocket["ws"].serializers, Serializer::ALL.to_vec());
    assert_eq!(uni.websocket["ws2"].serializers, [Serializer::Json]);
    let web = uni.web.as_ref().unwrap();
    let WebService::Static(root) = &web["/"] else {
        panic!()
    };
    assert_eq!(root.directory, app.path().join("web"));
    assert_eq!(web["info"], WebService::NodeInfo);

    // Every part is optional.
    let config =
        with_transports(json!([{"type": "universal", "endpoint": {"type": "tcp", "port": 8080}}]));
    let node = parse(&config).expect("valid");
    let uni = universal(&node, 0);
    assert_eq!(
        (
            uni.rawsocket.as_ref(),
            uni.websocket.len(),
            uni.web.as_ref()
        ),
        (None, 0, None)
    );
}

#[test]
fn universal_problems_report_their_paths() {
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "mqtt": {"options": {"realm": "realm1"}},
        "rawsocket": {"endpoint": {"type": "tcp", "port": 1}, "max_connections": 3,
                      "debug": true, "options": {"max_message_size": 0}},
        "websocket": {
            "ws": {"type": "websocket"},
            "page": {"type": "static", "directory": "x"},
            "odd": {"type": "smoke-signal"},
            "num": {"type": 7},
            "a.b": {"type": "websocket"},
            "lim": {"max_connections": 10}
        },
        "web": {"paths": {"ws": {"type": "nodeinfo"}}, "endpoint": {}, "max_connections": 2}
    }]));
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].rawsocket.debug: not supported yet",
            "workers[0].transports[0].rawsocket.endpoint: not allowed here: this is served on \
             the endpoint of its transport",
            "workers[0].transports[0].rawsocket.max_connections: not allowed here: set \
             `max_connections` on the transport",
            "workers[0].transports[0].rawsocket.options.max_message_size: must be positive \
             (junction has no unlimited size)",
            "workers[0].transports[0].websocket.page.type: type \"static\" is not allowed here, \
             expected \"websocket\" or \"mqtt\"; other web services go under `web.paths`",
            "workers[0].transports[0].websocket.odd.type: type \"smoke-signal\" is not allowed \
             here, expected \"websocket\" or \"mqtt\"",
            "workers[0].transports[0].websocket.num.type: invalid type: integer `7`, expected a \
             string",
            "workers[0].transports[0].websocket.a.b: invalid path \"a.b\": must be \"/\" or one \
             path component of letters, digits, '_' and '-' (^([a-z0-9A-Z_\\-]+|/)$)",
            "workers[0].transports[0].websocket.lim.max_connections: not allowed here: set \
             `max_connections` on the transport",
            "workers[0].transports[0].web.endpoint: not allowed here: this is served on the \
             endpoint of its transport",
            "workers[0].transports[0].web.max_connections: not allowed here: set \
             `max_connections` on the transport",
            "workers[0].transports[0].websocket.ws: path \"ws\" is also a key of web.paths: a \
             path is either a WebSocket or a web service",
        ]
    );

    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "flash": {},
        "web": {"paths": {}, "id": "web"},
        "rawsocket": {"type": "rawsocket"}
    }]));
    let errors = errors(&config);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with(
        "workers[0].transports[0].flash: unknown field `flash`, expected one of `id`, `type`, \
         `endpoint`, `rawsocket`, `websocket`, `web`, `mqtt`, `max_connections`"
    ));
    assert!(errors[1].starts_with("workers[0].transports[0].rawsocket.type: unknown field `type`"));
    assert!(errors[2].starts_with("workers[0].transports[0].web.id: unknown field `id`"));

    let config = with_transports(json!([{"type": "universal", "websocket": []}]));
    assert_eq!(
        errors_in(&config, Path::new(NODE)),
        [
            "workers[0].transports[0]: missing field `endpoint`",
            "workers[0].transports[0].websocket: invalid type: sequence, expected a map",
        ]
    );
}

#[test]
fn universal_websocket_roles_are_checked() {
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "rawsocket": {"auth": {"anonymous": {"type": "static", "role": "device"}}},
        "websocket": {"ws": {"auth": {"anonymous": {"type": "static", "role": "browser"}}}}
    }]));
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].rawsocket.auth.anonymous.role: role \"device\" (for \
             anonymous sessions) is not defined in any realm of this worker",
            "workers[0].transports[0].websocket.ws.auth.anonymous.role: role \"browser\" (for \
             anonymous sessions) is not defined in any realm of this worker",
        ]
    );
}

#[test]
fn load_dir_resolves_paths_against_the_node_directory() {
    let (app, node_dir) = app_dir();
    let mut config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "unix", "path": "uni.sock"},
        "web": {"paths": {"/": {"type": "static", "directory": "../web"}}}
    }]));
    std::fs::write(node_dir.join("config.json"), config.to_string()).unwrap();
    let node = load_dir(&node_dir).unwrap().expect("config found");
    let uni = universal(&node, 0);
    assert_eq!(
        uni.endpoint,
        Endpoint::Unix(UnixEndpoint {
            path: node_dir.join("uni.sock"),
            backlog: 1024
        })
    );
    let WebService::Static(root) = &uni.web.as_ref().unwrap()["/"] else {
        panic!()
    };
    assert_eq!(root.directory, app.path().join("web"));
    assert!(root.directory.is_absolute());

    config["workers"][0]["transports"][0]["web"]["paths"]["/"]["directory"] = json!("web");
    std::fs::write(node_dir.join("config.json"), config.to_string()).unwrap();
    let errors = load_dir(&node_dir).unwrap_err();
    assert_eq!(
        errors,
        [ConfigError {
            path: "workers[0].transports[0].web.paths./.directory".into(),
            message: format!(
                "directory {} does not exist",
                node_dir.join("web").display()
            ),
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// TLS

/// Test certificates made at test time: a CA, a server certificate it signed, a self-signed
/// one and a client CA, as PEM files in a temporary node directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        write("ca.crt", &ca.pem());

        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
        write("server.key", &server_key.serialize_pem());
        write("server.crt", &server.pem());

        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        write("self.key", &key_pair.serialize_pem());
        write("self.crt", &cert.pem());

        let other_key = rcgen::KeyPair::generate().unwrap();
        write("other.key", &other_key.serialize_pem());

        write("garbage.pem", "this is not PEM\n");
        write(
            "broken.crt",
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        );
        write(
            "bad_der.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A config with one rawsocket transport on TCP with `tls`.
    fn config(&self, tls: Value) -> Value {
        with_transports(json!([{
            "type": "rawsocket",
            "endpoint": {"type": "tcp", "port": 8443, "tls": tls}
        }]))
    }

    fn parse(&self, tls: Value) -> Result<NodeConfig, Vec<ConfigError>> {
        parse_in(&self.config(tls), self.path())
    }

    /// The errors, with the temporary directory written as `$DIR`.
    fn errors(&self, tls: Value) -> Vec<String> {
        let dir = self.path().display().to_string();
        match self.parse(tls) {
            Ok(_) => panic!("config unexpectedly valid"),
            Err(errors) => errors
                .iter()
                .map(|e| e.to_string().replace(&dir, "$DIR"))
                .collect(),
        }
    }
}

fn tls_of(node: &NodeConfig) -> &TlsConfig {
    rawsocket(node, 0)
        .endpoint
        .tcp()
        .unwrap()
        .tls
        .as_ref()
        .expect("tls")
}

#[test]
fn tls_endpoint_parses() {
    let pki = Pki::new();
    let node = pki
        .parse(json!({"key": "server.key", "certificate": "server.crt",
                      "chain_certificates": ["ca.crt"]}))
        .expect("valid");
    let tls = tls_of(&node);
    assert_eq!(
        tls,
        &TlsConfig {
            key: pki.path().join("server.key"),
            certificate: pki.path().join("server.crt"),
            chain_certificates: vec![pki.path().join("ca.crt")],
            ca_certificates: vec![],
            ciphers: None,
            min_version: TlsVersion::V1_2,
        }
    );
    let server = crate::tls::server_config(tls).expect("loads");
    assert_eq!(server.alpn_protocols, [b"http/1.1".to_vec()]);

    // Absolute paths, client certificates, TLS 1.3 only, cipher names of both spellings.
    let key = pki.path().join("self.key").display().to_string();
    let node = pki
        .parse(
            json!({"key": key, "certificate": "self.crt", "ca_certificates": ["ca.crt"],
                      "min_version": "1.3",
                      "ciphers": "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"}),
        )
        .expect("valid");
    let tls = tls_of(&node);
    assert_eq!(tls.key, pki.path().join("self.key"));
    assert_eq!(tls.min_version, TlsVersion::V1_3);
    assert_eq!(
        tls.ciphers.as_deref(),
        Some(
            &[
                "TLS_AES_256_GCM_SHA384".to_owned(),
                "TLS_CHACHA20_POLY1305_SHA256".to_owned()
            ][..]
        )
    );
    crate::tls::server_config(tls).expect("loads");

    let node = pki
        .parse(json!({"key": "server.key", "certificate": "server.crt",
                      "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:\
                                  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, \
                                  ecdhe-ecdsa-aes256-gcm-sha384"}))
        .expect("valid");
    assert_eq!(tls_of(&node).ciphers.as_ref().unwrap().len(), 3);
}

#[test]
fn tls_dhparam_is_rejected_with_the_reason() {
    let pki = Pki::new();
    assert_eq!(
        pki.errors(json!({"key": "server.key", "certificate": "server.crt",
                          "dhparam": "dhparam.pem"})),
        [
            "workers[0].transports[0].endpoint.tls.dhparam: not supported: rustls uses ECDHE key \
          exchange only and cannot use custom DH parameters"
        ]
    );
}

#[test]
fn tls_unknown_ciphers_are_listed() {
    let pki = Pki::new();
    let errors = pki.errors(json!({"key": "server.key", "certificate": "server.crt",
        "ciphers": "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:HIGH:!aNULL"}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workers[0].transports[0].endpoint.tls.ciphers: unknown or unsupported cipher suites \
             \"DHE-RSA-AES128-GCM-SHA256\", \"HIGH\", \"!aNULL\": rustls offers only ECDHE key \
             exchange with AES-GCM or ChaCha20-Poly1305; known names: TLS_AES_128_GCM_SHA256, "
        ),
        "{errors:#?}"
    );

    // RSA suites only, with an ECDSA key: TLS 1.2 clients could never connect.
    assert_eq!(
        pki.errors(json!({"key": "server.key", "certificate": "server.crt",
                          "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"})),
        [
            "workers[0].transports[0].endpoint.tls.ciphers: none of the TLS 1.2 cipher suites can \
          be used with the ECDSA key in $DIR/server.key"
        ]
    );
    assert_eq!(
        pki.errors(json!({"key": "server.key", "certificate": "server.crt",
                          "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256", "min_version": "1.3"})),
        [
            "workers[0].transports[0].endpoint.tls.ciphers: TLS 1.2 cipher suites have no effect \
          with min_version \"1.3\": ECDHE-ECDSA-AES128-GCM-SHA256"
        ]
    );
    assert_eq!(
        pki.errors(
            json!({"key": "server.key", "certificate": "server.crt", "ciphers": " : ",
                          "min_version": "1.1"})
        ),
        [
            "workers[0].transports[0].endpoint.tls.min_version: invalid TLS version \"1.1\", \
             expected \"1.2\" or \"1.3\"",
            "workers[0].transports[0].endpoint.tls.ciphers: empty cipher list",
        ]
    );
}

#[test]
fn tls_missing_and_bad_files() {
    let pki = Pki::new();
    let errors = pki.errors(json!({"key": "missing.key", "certificate": "missing.crt",
                                   "chain_certificates": ["ca.crt", "nochain.crt"],
                                   "ca_certificates": ["noca.crt"]}));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with(
        "workers[0].transports[0].endpoint.tls.key: cannot read $DIR/missing.key: No such file"
    ));
    assert!(errors[1].starts_with(
        "workers[0].transports[0].endpoint.tls.certificate: cannot read $DIR/missing.crt: No such \
         file"
    ));
    assert!(errors[2].starts_with(
        "workers[0].transports[0].endpoint.tls.chain_certificates[1]: cannot read \
         $DIR/nochain.crt"
    ));
    assert!(errors[3].starts_with(
        "workers[0].transports[0].endpoint.tls.ca_certificates[0]: cannot read $DIR/noca.crt"
    ));

    // Bad PEM: no PEM at all, broken base64, a key where a certificate should be.
    assert_eq!(
        pki.errors(json!({"key": "garbage.pem", "certificate": "server.key"})),
        [
            "workers[0].transports[0].endpoint.tls.key: no private key in $DIR/garbage.pem \
             (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)",
            "workers[0].transports[0].endpoint.tls.certificate: no certificate in \
             $DIR/server.key (expected PEM \"BEGIN CERTIFICATE\" blocks)",
        ]
    );
    let errors = pki.errors(json!({"key": "server.key", "certificate": "broken.crt"}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workers[0].transports[0].endpoint.tls.certificate: invalid PEM in $DIR/broken.crt"
        ),
        "{errors:#?}"
    );
    let errors = pki.errors(json!({"key": "server.key", "certificate": "bad_der.crt"}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workers[0].transports[0].endpoint.tls.certificate: invalid certificate in \
             $DIR/bad_der.crt"
        ),
        "{errors:#?}"
    );
    let errors = pki.errors(json!({"key": "server.key", "certificate": "server.crt",
                                   "ca_certificates": ["bad_der.crt"]}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workers[0].transports[0].endpoint.tls.ca_certificates[0]: certificate 1 in \
             $DIR/bad_der.crt is not a usable CA certificate"
        ),
        "{errors:#?}"
    );

    // The key of another certificate.
    assert_eq!(
        pki.errors(json!({"key": "other.key", "certificate": "server.crt"})),
        ["workers[0].transports[0].endpoint.tls.key: the private key in $DIR/other.key does not \
          match the certificate in $DIR/server.crt"]
    );
}

#[test]
fn tls_structure_problems() {
    let pki = Pki::new();
    let errors = pki.errors(json!({"certificate": "server.crt", "keyfile": "server.key"}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(
        "workers[0].transports[0].endpoint.tls.keyfile: unknown field `keyfile`, expected one of \
         `key`, `certificate`, `chain_certificates`, `ca_certificates`, `dhparam`, `ciphers`, \
         `min_version`"
    ));
    assert_eq!(
        pki.errors(json!({"certificate": "server.crt"})),
        ["workers[0].transports[0].endpoint.tls: missing field `key`"]
    );
    assert_eq!(
        pki.errors(json!({"key": "", "certificate": "server.crt"})),
        ["workers[0].transports[0].endpoint.tls.key: must not be empty"]
    );
    // A broken endpoint still has its tls checked.
    let config = pki.config(json!({"key": "server.key", "certificate": "nope.crt"}));
    let mut config = config;
    config["workers"][0]["transports"][0]["endpoint"]["prot"] = json!(1);
    let errors = errors_in(&config, pki.path());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("workers[0].transports[0].endpoint.prot: unknown field"));
    assert!(errors[1].starts_with("workers[0].transports[0].endpoint.tls.certificate: cannot read"));
}

#[test]
fn tls_loads_relative_to_the_node_directory() {
    let pki = Pki::new();
    let config = pki.config(json!({"key": "server.key", "certificate": "server.crt"}));
    std::fs::write(pki.path().join("config.json"), config.to_string()).unwrap();
    let node = load_dir(pki.path()).unwrap().expect("config found");
    assert_eq!(tls_of(&node).certificate, pki.path().join("server.crt"));
}

/// Runs a TLS handshake in memory between a rustls client trusting `ca` (and presenting
/// `client`, if given) and `server`.
fn handshake(
    server: Arc<rustls::ServerConfig>,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<(), rustls::Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut server = rustls::ServerConnection::new(server).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut &buf[..]).unwrap();
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut &buf[..]).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            // The client's last flight (its certificate, if any) reaches the server.
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut &buf[..]).unwrap();
            server.process_new_packets()?;
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn tls_server_config_handshakes() {
    let pki = Pki::new();
    let p = |name: &str| pki.path().join(name);
    let tls = TlsConfig {
        key: p("server.key"),
        certificate: p("server.crt"),
        chain_certificates: vec![],
        ca_certificates: vec![],
        ciphers: None,
        min_version: TlsVersion::V1_2,
    };
    let server = crate::tls::server_config(&tls).unwrap();
    handshake(server, &p("ca.crt"), None).expect("handshake");

    // Client certificates required: the server certificate (signed by the CA) passes as a
    // client certificate, no certificate fails.
    let mutual = TlsConfig {
        ca_certificates: vec![p("ca.crt")],
        ..tls.clone()
    };
    let server = crate::tls::server_config(&mutual).unwrap();
    handshake(
        server.clone(),
        &p("ca.crt"),
        Some((&p("server.crt"), &p("server.key"))),
    )
    .expect("handshake with a client certificate");
    let refused = handshake(server, &p("ca.crt"), None);
    assert!(refused.is_err(), "no client certificate must fail");

    // TLS 1.3 only with a chosen suite.
    let strict = TlsConfig {
        min_version: TlsVersion::V1_3,
        ciphers: Some(vec!["TLS_CHACHA20_POLY1305_SHA256".into()]),
        ..tls
    };
    let server = crate::tls::server_config(&strict).unwrap();
    handshake(server, &p("ca.crt"), None).expect("TLS 1.3 handshake");
}

// ---------------------------------------------------------------------------------------------
// MQTT

/// `base()` with one `mqtt` transport on TCP port 1883 with these `options`.
fn mqtt_config(options: Value) -> Value {
    with_transports(json!([{
        "type": "mqtt",
        "endpoint": {"type": "tcp", "port": 1883},
        "options": options
    }]))
}

fn mqtt(node: &NodeConfig, transport: usize) -> &MqttTransport {
    let TransportConfig::Mqtt(mqtt) = &node.routers[0].transports[transport] else {
        panic!("not an mqtt transport")
    };
    mqtt
}

/// `config` with a role `name` (no permissions) added to `realms[0]`.
fn with_role(mut config: Value, name: &str) -> Value {
    config["workers"][0]["realms"][0]["roles"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "permissions": []}));
    config
}

#[test]
fn mqtt_transport_defaults() {
    let mut config = mqtt_config(json!({"realm": "realm1"}));
    transport0(&mut config)["id"] = json!("mqtt1883");
    let node = parse(&config).expect("valid");
    assert_eq!(
        *mqtt(&node, 0),
        MqttTransport {
            id: Some("mqtt1883".into()),
            endpoint: Endpoint::Tcp(TcpEndpoint {
                port: 1883,
                interface: None,
                backlog: 1024,
                version: IpVersion::V4,
                tls: None,
            }),
            settings: MqttSettings::default(),
            max_connections: None,
        }
    );
    let settings = &mqtt(&node, 0).settings;
    assert_eq!(settings.realm, "realm1");
    assert_eq!(settings.role, "anonymous");
    assert_eq!(settings.max_packet_size, 1 << 20);
    assert_eq!(settings.max_inflight, 32);
    assert_eq!(settings.max_queued_messages, 1000);
    assert_eq!(settings.max_queued_bytes, 0);
    assert_eq!(settings.session_expiry, None);
    assert_eq!(settings.max_keepalive, 65535);
    assert_eq!(settings.connect_timeout, Duration::from_secs(10));
}

#[test]
fn mqtt_transport_options_are_honoured() {
    let mut config = with_role(
        mqtt_config(json!({
            "realm": "realm1",
            "role": "device",
            "max_packet_size": 268_435_455,
            "max_inflight": 65535,
            "max_queued_messages": 0,
            "max_queued_bytes": 1_000_000,
            "session_expiry": 3600,
            "max_keepalive": 1,
            "connect_timeout": 2500,
            "payload_mapping": {"": {"type": "native", "serializer": "msgpack"}}
        })),
        "device",
    );
    transport0(&mut config)["endpoint"] = json!({"type": "unix", "path": "mqtt.sock"});
    transport0(&mut config)["max_connections"] = json!(10);
    let node = parse(&config).expect("valid");
    let transport = mqtt(&node, 0);
    assert_eq!(
        transport.endpoint,
        Endpoint::Unix(UnixEndpoint {
            path: PathBuf::from("/node/mqtt.sock"),
            backlog: 1024
        })
    );
    assert_eq!(transport.max_connections, Some(10));
    assert_eq!(
        transport.settings,
        MqttSettings {
            auth: std::sync::Arc::new(TransportAuth {
                anonymous: Some("device".into()),
                password_file_role: "device".into(),
                acl_file: None,
                ..Default::default()
            }),
            realm: "realm1".into(),
            role: "device".into(),
            max_packet_size: 268_435_455,
            max_inflight: 65535,
            max_queued_messages: 0,
            max_queued_bytes: 1_000_000,
            session_expiry: Some(Duration::from_secs(3600)),
            max_keepalive: 1,
            connect_timeout: Duration::from_millis(2500),
            payload_mapping: Arc::new(PayloadMapping {
                entries: vec![(String::new(), PayloadFormat::Native(Serializer::MsgPack))],
            }),
        }
    );

    // The lower bounds, and 0 = never / unlimited.
    let config = mqtt_config(json!({
        "realm": "realm1",
        "max_packet_size": 1,
        "max_inflight": 1,
        "max_queued_bytes": 0,
        "session_expiry": 0,
        "max_keepalive": 65535,
        "connect_timeout": 1
    }));
    let node = parse(&config).expect("valid");
    let settings = &mqtt(&node, 0).settings;
    assert_eq!(
        (
            settings.max_packet_size,
            settings.max_inflight,
            settings.max_queued_bytes,
            settings.session_expiry,
            settings.max_keepalive,
            settings.connect_timeout
        ),
        (1, 1, 0, None, 65535, Duration::from_millis(1))
    );
}

#[test]
fn mqtt_transport_over_tls() {
    let pki = Pki::new();
    let config = with_transports(json!([{
        "type": "mqtt",
        "endpoint": {"type": "tcp", "port": 8883,
                     "tls": {"key": "server.key", "certificate": "server.crt"}},
        "options": {"realm": "realm1"}
    }]));
    let node = parse_in(&config, pki.path()).expect("valid");
    let tcp = mqtt(&node, 0).endpoint.tcp().unwrap();
    assert_eq!(tcp.port, 8883);
    let tls = tcp.tls.as_ref().expect("tls");
    assert_eq!(tls.key, pki.path().join("server.key"));
    assert_eq!(tls.certificate, pki.path().join("server.crt"));
}

#[test]
fn mqtt_option_values_are_checked() {
    let path = "workers[0].transports[0].options";
    for (key, value, message) in [
        (
            "max_packet_size",
            json!(0),
            "0 is out of range (1 to 268435455)",
        ),
        (
            "max_packet_size",
            json!(268_435_456),
            "268435456 is out of range (1 to 268435455)",
        ),
        ("max_inflight", json!(0), "0 is out of range (1 to 65535)"),
        (
            "max_inflight",
            json!(65536),
            "65536 is out of range (1 to 65535)",
        ),
        ("max_keepalive", json!(0), "0 is out of range (1 to 65535)"),
        (
            "max_keepalive",
            json!(65536),
            "65536 is out of range (1 to 65535)",
        ),
        (
            "connect_timeout",
            json!(0),
            "must be positive (junction has no unlimited handshake)",
        ),
        (
            "max_queued_messages",
            json!(-1),
            "invalid value: integer `-1`, expected u64",
        ),
        (
            "max_queued_bytes",
            json!(-1),
            "invalid value: integer `-1`, expected u64",
        ),
        (
            "session_expiry",
            json!(1.5),
            "invalid type: floating point `1.5`, expected u64",
        ),
        ("role", json!(""), "role name must not be empty"),
        (
            "payload_mapping",
            json!([]),
            "invalid type: sequence, expected a map",
        ),
        (
            "allow_anonymous",
            json!(1),
            "invalid type: integer `1`, expected a boolean",
        ),
        ("password_file", json!(""), "must not be empty"),
    ] {
        let config = mqtt_config(json!({"realm": "realm1", key: value}));
        let errors = parse(&config).expect_err(key);
        assert_eq!(
            errors,
            [ConfigError {
                path: format!("{path}.{key}"),
                message: message.into()
            }],
            "{key}: {value}"
        );
    }

    // Unknown keys, a missing realm, a missing `options`.
    let config = mqtt_config(json!({"realm": "realm1", "qos": 1}));
    assert_one_error(&config, &format!("{path}.qos"), "unknown field `qos`");
    let config = mqtt_config(json!({"role": "anonymous"}));
    assert_one_error(&config, path, "missing field `realm`");
    let config = mqtt_config(json!([]));
    assert_one_error(&config, path, "invalid type: sequence, expected a map");
    let mut config = mqtt_config(json!({}));
    transport0(&mut config)
        .as_object_mut()
        .unwrap()
        .remove("options");
    assert_one_error(
        &config,
        "workers[0].transports[0]",
        "missing field `options` (`options.realm` names the realm MQTT clients join)",
    );

    // Crossbar's `auth` of an MQTT transport is inside `options`; on the transport it is an
    // unknown key (as in Crossbar).
    let mut config = mqtt_config(json!({"realm": "realm1"}));
    transport0(&mut config)["auth"] = json!({});
    assert_one_error(
        &config,
        "workers[0].transports[0].auth",
        "unknown field `auth`, expected one of `id`, `type`, `endpoint`, `options`, \
         `max_connections`",
    );
    transport0(&mut config)
        .as_object_mut()
        .unwrap()
        .remove("auth");
    transport0(&mut config)["max_connections"] = json!(0);
    assert_one_error(
        &config,
        "workers[0].transports[0].max_connections",
        "must be at least 1",
    );
    transport0(&mut config)["max_connections"] = json!(1);
    transport0(&mut config)["id"] = json!("M");
    assert_one_error(&config, "workers[0].transports[0].id", "invalid id \"M\"");
    transport0(&mut config)["id"] = json!("mqtt");
    transport0(&mut config)
        .as_object_mut()
        .unwrap()
        .remove("endpoint");
    assert_one_error(
        &config,
        "workers[0].transports[0]",
        "missing field `endpoint`",
    );
    transport0(&mut config)["endpoint"] = json!({"type": "onion"});
    assert_one_error(
        &config,
        "workers[0].transports[0].endpoint.type",
        "endpoint type \"onion\" is not supported yet",
    );
}

#[test]
fn mqtt_realm_and_role_must_exist() {
    // The realm must be one of this worker's.
    let config = mqtt_config(json!({"realm": "realm2"}));
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].options.realm: realm \"realm2\" (for MQTT clients) is not \
          defined in this worker"
        ]
    );
    // The role must be one of that realm's: blamed on `role`, or on `options` for the
    // default role.
    let config = mqtt_config(json!({"realm": "realm1", "role": "device"}));
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].options.role: role \"device\" (for MQTT clients) is not \
          defined in realm \"realm1\""
        ]
    );
    let mut config = mqtt_config(json!({"realm": "realm1"}));
    config["workers"][0]["realms"][0]["roles"][0]["name"] = json!("device");
    assert_eq!(
        errors(&config),
        [
            "workers[0].transports[0].options: role \"anonymous\" (for MQTT clients) is not \
          defined in realm \"realm1\""
        ]
    );

    // A role of another realm of the worker does not count.
    let mut config = mqtt_config(json!({"realm": "realm1", "role": "device"}));
    config["workers"][0]["realms"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "realm2", "roles": [{"name": "device", "permissions": []}]}));
    assert_one_error(
        &config,
        "workers[0].transports[0].options.role",
        "role \"device\" (for MQTT clients) is not defined in realm \"realm1\"",
    );

    // A realm of another worker does not count either.
    let mut config = mqtt_config(json!({"realm": "realm2"}));
    let mut other = config["workers"][0].clone();
    other["realms"][0]["name"] = json!("realm2");
    other["transports"] = json!([]);
    config["workers"].as_array_mut().unwrap().push(other);
    assert_one_error(
        &config,
        "workers[0].transports[0].options.realm",
        "realm \"realm2\" (for MQTT clients) is not defined in this worker",
    );

    // A broken realm, or a broken transport, is not blamed a second time.
    let mut config = mqtt_config(json!({"realm": "realm1"}));
    config["workers"][0]["realms"][0]["name"] = json!("bad realm");
    assert_one_error(
        &config,
        "workers[0].realms[0].name",
        "invalid realm name \"bad realm\"",
    );
    let mut config = mqtt_config(json!({"realm": "nowhere"}));
    transport0(&mut config)["endpoint"]["port"] = json!(0);
    assert_one_error(
        &config,
        "workers[0].transports[0].endpoint.port",
        "port 0 is not allowed",
    );
}

#[test]
fn universal_mqtt() {
    let config = with_role(
        with_transports(json!([{
            "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
            "mqtt": {"options": {"realm": "realm1", "role": "device", "max_inflight": 5}}
        }])),
        "device",
    );
    let node = parse(&config).expect("valid");
    let uni = universal(&node, 0);
    assert_eq!(
        uni.mqtt,
        Some(MqttSettings {
            role: "device".into(),
            max_inflight: 5,
            auth: std::sync::Arc::new(TransportAuth {
                anonymous: Some("device".into()),
                password_file_role: "device".into(),
                acl_file: None,
                ..Default::default()
            }),
            ..MqttSettings::default()
        })
    );
    assert!(uni.mqtt_websocket.is_empty());

    // Without the key, MQTT connections are refused.
    let config =
        with_transports(json!([{"type": "universal", "endpoint": {"type": "tcp", "port": 8080}}]));
    assert_eq!(universal(&parse(&config).unwrap(), 0).mqtt, None);

    let config = |mqtt: Value| {
        with_transports(json!([{
            "type": "universal", "endpoint": {"type": "tcp", "port": 8080}, "mqtt": mqtt
        }]))
    };
    let path = "workers[0].transports[0].mqtt";
    assert_eq!(
        errors(&config(json!({
            "endpoint": {"type": "tcp", "port": 1883},
            "max_connections": 3,
            "options": {"realm": "realm1", "max_keepalive": 0,
                        "payload_mapping": {"a.b": {"type": "bogus"}}}
        }))),
        [
            format!(
                "{path}.endpoint: not allowed here: this is served on the endpoint of its \
                 transport"
            ),
            format!(
                "{path}.max_connections: not allowed here: set `max_connections` on the transport"
            ),
            format!(
                "{path}.options.payload_mapping[\"a.b\"].type: unknown payload mapping type \
                 \"bogus\", expected one of \"passthrough\", \"native\", \"dynamic\", \"utf8\""
            ),
            format!("{path}.options.max_keepalive: 0 is out of range (1 to 65535)"),
        ]
    );
    assert_one_error(
        &config(json!({})),
        path,
        "missing field `options` (`options.realm` names the realm MQTT clients join)",
    );
    assert_one_error(
        &config(json!({"type": "mqtt", "options": {"realm": "realm1"}})),
        &format!("{path}.type"),
        "unknown field `type`",
    );
    assert_one_error(
        &config(json!([])),
        path,
        "invalid type: sequence, expected a map",
    );
    assert_one_error(
        &config(json!({"options": {"realm": "realm9"}})),
        &format!("{path}.options.realm"),
        "realm \"realm9\" (for MQTT clients) is not defined in this worker",
    );
    assert_one_error(
        &config(json!({"options": {"realm": "realm1", "auth": {}}})),
        &format!("{path}.options.auth"),
        "no authentication method configured (give \"anonymous\" or \"ticket\"; without \
         `auth` anonymous access is allowed)",
    );
}

/// The payload mapping of the `mqtt` transport of `mqtt_config` with this `payload_mapping`,
/// and the warnings.
fn payload_mapping(mapping: Value) -> (PayloadMapping, Vec<String>) {
    let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": mapping}));
    let (node, warnings) =
        parse_with_env_warnings(&config.to_string(), "(root)", &no_env, Path::new(NODE))
            .unwrap_or_else(|e| panic!("invalid: {e:#?}"));
    let mapping = (*mqtt(&node, 0).settings.payload_mapping).clone();
    (mapping, warnings.iter().map(ToString::to_string).collect())
}

#[test]
fn payload_mapping_types() {
    let (mapping, warnings) = payload_mapping(json!({
        "": {"type": "passthrough"},
        "com.example.json": {"type": "native", "serializer": "json"},
        "com.example.cbor": {"type": "native", "serializer": "cbor"},
        "com.example.msgpack": {"type": "native", "serializer": "msgpack"},
        "com.example.ubjson": {"type": "native", "serializer": "ubjson"},
        "com.example.text": {"type": "utf8"},
        "com.example.dyn": {"type": "dynamic", "encoder": "com.codec.encode",
                            "decoder": "com.codec.decode"},
        // The transport's own realm is the only codec realm junction supports.
        "com.example.dyn2": {"type": "dynamic", "encoder": "e", "decoder": "d",
                             "realm": "realm1"},
        // null counts as absent.
        "com.example.dyn3": {"type": "dynamic", "encoder": "e", "decoder": "d", "realm": null},
    }));
    assert_eq!(warnings, Vec::<String>::new());
    let dynamic = |encoder: &str, decoder: &str| PayloadFormat::Dynamic {
        encoder: encoder.into(),
        decoder: decoder.into(),
    };
    // Longest prefix first; keys of equal length keep their config order.
    assert_eq!(
        mapping.entries,
        [
            (
                "com.example.msgpack".to_owned(),
                PayloadFormat::Native(Serializer::MsgPack)
            ),
            (
                "com.example.ubjson".into(),
                PayloadFormat::Native(Serializer::UbJson)
            ),
            (
                "com.example.json".into(),
                PayloadFormat::Native(Serializer::Json)
            ),
            (
                "com.example.cbor".into(),
                PayloadFormat::Native(Serializer::Cbor)
            ),
            ("com.example.text".into(), PayloadFormat::Utf8),
            ("com.example.dyn2".into(), dynamic("e", "d")),
            ("com.example.dyn3".into(), dynamic("e", "d")),
            (
                "com.example.dyn".into(),
                dynamic("com.codec.encode", "com.codec.decode")
            ),
            (String::new(), PayloadFormat::Passthrough),
        ]
    );
    assert_eq!(
        mapping.lookup("com.example.text.x"),
        Some(&PayloadFormat::Utf8)
    );
    // Character-wise prefixes, as Crossbar's StringTrie.
    assert_eq!(mapping.lookup("com.example.dyn2"), Some(&dynamic("e", "d")));
    assert_eq!(
        mapping.lookup("com.example.dynamo"),
        Some(&dynamic("com.codec.encode", "com.codec.decode"))
    );
    assert_eq!(mapping.lookup("org.x"), Some(&PayloadFormat::Passthrough));
}

#[test]
fn payload_mapping_longest_prefix_first() {
    let (mapping, _) = payload_mapping(json!({
        "": {"type": "utf8"},
        "a": {"type": "passthrough"},
        "a.b.c": {"type": "native", "serializer": "cbor"},
        "a.b": {"type": "native", "serializer": "json"},
        "x.y": {"type": "passthrough"},
    }));
    let prefixes: Vec<_> = mapping.entries.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(prefixes, ["a.b.c", "a.b", "x.y", "a", ""]);
    assert_eq!(
        mapping.lookup("a.b.cd"),
        Some(&PayloadFormat::Native(Serializer::Cbor))
    );
    assert_eq!(
        mapping.lookup("a.b.x"),
        Some(&PayloadFormat::Native(Serializer::Json))
    );
    assert_eq!(mapping.lookup("a.x"), Some(&PayloadFormat::Passthrough));
    assert_eq!(mapping.lookup("b"), Some(&PayloadFormat::Utf8));
}

#[test]
fn payload_mapping_absent_is_passthrough() {
    let config = mqtt_config(json!({"realm": "realm1"}));
    let node = parse(&config).expect("valid");
    let mapping = &mqtt(&node, 0).settings.payload_mapping;
    assert_eq!(**mapping, PayloadMapping::passthrough());
    assert_eq!(mapping.lookup("any.uri"), Some(&PayloadFormat::Passthrough));
    // null counts as absent.
    let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": null}));
    let node = parse(&config).expect("valid");
    assert_eq!(
        *mqtt(&node, 0).settings.payload_mapping,
        PayloadMapping::passthrough()
    );
}

#[test]
fn payload_mapping_without_catch_all_warns() {
    let warning = "workers[0].transports[0].options.payload_mapping: no \"\" catch-all: URIs \
                   that match no key do not cross between MQTT and WAMP";
    let (mapping, warnings) = payload_mapping(json!({"com.example.": {"type": "passthrough"}}));
    assert_eq!(warnings, [warning]);
    assert_eq!(mapping.lookup("org.x"), None);
    let (mapping, warnings) = payload_mapping(json!({}));
    assert_eq!(warnings, [warning]);
    assert_eq!(mapping.entries, []);
    // `parse_json` (and `load_dir`) still accept it.
    let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": {}}));
    parse(&config).expect("a warning is not an error");

    // One warning per MQTT settings without a catch-all, in tree order.
    let mapping = json!({"x": {"type": "passthrough"}});
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {"mq": {"type": "mqtt",
                             "options": {"realm": "realm1", "payload_mapping": mapping}}},
        "mqtt": {"options": {"realm": "realm1", "payload_mapping": mapping}}
    }, {
        "type": "mqtt", "endpoint": {"type": "tcp", "port": 1883},
        "options": {"realm": "realm1", "payload_mapping": {"": {"type": "passthrough"}}}
    }]));
    let (_, warnings) =
        parse_with_env_warnings(&config.to_string(), "(root)", &no_env, Path::new(NODE))
            .expect("valid");
    let path = "workers[0].transports[0]";
    assert_eq!(
        warnings.iter().map(|w| w.path.as_str()).collect::<Vec<_>>(),
        [
            format!("{path}.websocket.mq.options.payload_mapping"),
            format!("{path}.mqtt.options.payload_mapping"),
        ]
    );
    assert!(warnings.iter().all(|w| w.message
        == "no \"\" catch-all: URIs that match no key do not cross between MQTT and WAMP"));

    // A config with errors reports its errors only.
    let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": {},
                                    "max_inflight": 0}));
    let errors = parse_with_env_warnings(&config.to_string(), "(root)", &no_env, Path::new(NODE))
        .expect_err("invalid");
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn payload_mapping_load_dir_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": {}}));
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let (node, warnings) = load_dir_with_warnings(dir.path()).expect("valid");
    assert!(node.is_some());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        warnings[0].path,
        "workers[0].transports[0].options.payload_mapping"
    );
    // `load_dir` drops them.
    load_dir(dir.path()).unwrap().expect("config found");
    // No config, no warnings.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(load_dir_with_warnings(empty.path()), Ok((None, Vec::new())));
}

#[test]
fn payload_mapping_errors() {
    let path = "workers[0].transports[0].options.payload_mapping";
    let check = |mapping: Value, expected: &[(&str, &str)]| {
        let config = mqtt_config(json!({"realm": "realm1", "payload_mapping": mapping}));
        let errors = parse(&config).expect_err("invalid");
        let errors: Vec<_> = errors
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|(at, message)| (format!("{path}{at}"), (*message).to_owned()))
            .collect();
        assert_eq!(errors, expected, "{mapping}");
    };
    let uri_error = |uri: &str| {
        format!(
            "invalid procedure URI {uri:?}: must be a WAMP URI (non-empty components without \
             whitespace, '.' or '#')"
        )
    };

    // The mapping and its values are maps.
    check(
        json!("x"),
        &[("", "invalid type: string \"x\", expected a map")],
    );
    check(
        json!({"": "passthrough"}),
        &[(
            "[\"\"]",
            "invalid type: string \"passthrough\", expected a map",
        )],
    );
    check(
        json!({"a": null}),
        &[("[\"a\"]", "invalid type: null, expected a map")],
    );
    check(
        json!({"a": []}),
        &[("[\"a\"]", "invalid type: sequence, expected a map")],
    );

    // `type`: required, a string, one of four.
    check(json!({"a.b": {}}), &[("[\"a.b\"]", "missing field `type`")]);
    check(
        json!({"a.b": {"serializer": "json"}}),
        &[("[\"a.b\"]", "missing field `type`")],
    );
    check(
        json!({"a.b": {"type": 1}}),
        &[(
            "[\"a.b\"].type",
            "invalid type: integer `1`, expected a string",
        )],
    );
    check(
        json!({"a.b": {"type": "json"}}),
        &[(
            "[\"a.b\"].type",
            "unknown payload mapping type \"json\", expected one of \"passthrough\", \
             \"native\", \"dynamic\", \"utf8\"",
        )],
    );

    // passthrough and utf8: no other key.
    check(
        json!({"": {"type": "passthrough", "serializer": "json"}}),
        &[(
            "[\"\"].serializer",
            "unknown field `serializer`, expected `type`",
        )],
    );
    check(
        json!({"": {"type": "utf8", "encoding": "latin1"}}),
        &[(
            "[\"\"].encoding",
            "unknown field `encoding`, expected `type`",
        )],
    );

    // native: `serializer` required, one of Crossbar's four.
    check(
        json!({"": {"type": "native"}}),
        &[("[\"\"]", "missing field `serializer`")],
    );
    for bad in ["flatbuffers", "JSON", ""] {
        check(
            json!({"": {"type": "native", "serializer": bad}}),
            &[(
                "[\"\"].serializer",
                format!(
                    "unknown serializer {bad:?}, expected one of \"json\", \"cbor\", \
                     \"msgpack\", \"ubjson\""
                )
                .as_str(),
            )],
        );
    }
    check(
        json!({"": {"type": "native", "serializer": ["json"]}}),
        &[(
            "[\"\"].serializer",
            "invalid type: sequence, expected a string",
        )],
    );
    check(
        json!({"": {"type": "native", "serializer": "json", "realm": "realm1"}}),
        &[(
            "[\"\"].realm",
            "unknown field `realm`, expected `type` or `serializer`",
        )],
    );

    // dynamic: `encoder` and `decoder` required procedure URIs, `realm` the transport's.
    check(
        json!({"": {"type": "dynamic", "decoder": "d"}}),
        &[("[\"\"]", "missing field `encoder`")],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "e"}}),
        &[("[\"\"]", "missing field `decoder`")],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": 1, "decoder": "d"}}),
        &[(
            "[\"\"].encoder",
            "invalid type: integer `1`, expected a string",
        )],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "a..b", "decoder": "c d"}}),
        &[
            ("[\"\"].encoder", uri_error("a..b").as_str()),
            ("[\"\"].decoder", uri_error("c d").as_str()),
        ],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "", "decoder": "d#"}}),
        &[
            ("[\"\"].encoder", uri_error("").as_str()),
            ("[\"\"].decoder", uri_error("d#").as_str()),
        ],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "e", "decoder": "d", "realm": "realm2"}}),
        &[(
            "[\"\"].realm",
            "not supported yet: the codec procedures must be in the transport's realm",
        )],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "e", "decoder": "d", "realm": 7}}),
        &[(
            "[\"\"].realm",
            "invalid type: integer `7`, expected a string",
        )],
    );
    check(
        json!({"": {"type": "dynamic", "encoder": "e", "decoder": "d", "serializer": "json"}}),
        &[(
            "[\"\"].serializer",
            "unknown field `serializer`, expected one of `type`, `encoder`, `decoder`, `realm`",
        )],
    );

    // Keys are quoted in the path: dots, the empty key and quotes stay unambiguous.
    check(
        json!({"say \"hi\"": {"type": "x"}}),
        &[(
            "[\"say \\\"hi\\\"\"].type",
            "unknown payload mapping type \"x\", expected one of \"passthrough\", \
             \"native\", \"dynamic\", \"utf8\"",
        )],
    );

    // Every entry is checked: one bad entry does not hide another.
    check(
        json!({
            "a": {"type": "native", "serializer": "xml"},
            "": {"type": "passthrough"},
            "b": {"type": "dynamic", "encoder": "e", "decoder": "d", "realm": "other"}
        }),
        &[
            (
                "[\"a\"].serializer",
                "unknown serializer \"xml\", expected one of \"json\", \"cbor\", \"msgpack\", \
                 \"ubjson\"",
            ),
            (
                "[\"b\"].realm",
                "not supported yet: the codec procedures must be in the transport's realm",
            ),
        ],
    );
}

#[test]
fn payload_mapping_is_checked_with_other_option_errors() {
    // The mapping is walked even when a sibling option is broken, and a broken mapping does
    // not hide the sibling's error.
    let config = mqtt_config(json!({
        "realm": "realm1", "max_inflight": "x",
        "payload_mapping": {"": {"type": "native", "serializer": "xml"}}
    }));
    let path = "workers[0].transports[0].options";
    assert_eq!(
        errors(&config),
        [
            format!("{path}.max_inflight: invalid type: string \"x\", expected u64"),
            format!(
                "{path}.payload_mapping[\"\"].serializer: unknown serializer \"xml\", expected \
                 one of \"json\", \"cbor\", \"msgpack\", \"ubjson\""
            ),
        ]
    );
    // Without a realm there is no realm to compare a codec realm with: only the missing realm
    // is reported.
    let config = mqtt_config(json!({
        "payload_mapping": {"": {"type": "dynamic", "encoder": "e", "decoder": "d",
                                 "realm": "realm2"}}
    }));
    assert_one_error(&config, path, "missing field `realm`");
    // The codec realm is compared with the transport's realm, whatever it is.
    let mut config = mqtt_config(json!({
        "realm": "realm2",
        "payload_mapping": {"": {"type": "dynamic", "encoder": "e", "decoder": "d",
                                 "realm": "realm2"}}
    }));
    config["workers"][0]["realms"][0]["name"] = json!("realm2");
    let node = parse(&config).expect("valid");
    assert_eq!(
        mqtt(&node, 0).settings.payload_mapping.lookup("x"),
        Some(&PayloadFormat::Dynamic {
            encoder: "e".into(),
            decoder: "d".into()
        })
    );
}

#[test]
fn payload_mapping_in_every_mqtt_settings() {
    let mapping = json!({"": {"type": "utf8"}, "bad": {"type": "native"}});
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {"mq": {"type": "mqtt",
                             "options": {"realm": "realm1", "payload_mapping": mapping}}},
        "mqtt": {"options": {"realm": "realm1", "payload_mapping": mapping}}
    }]));
    let path = "workers[0].transports[0]";
    assert_eq!(
        errors(&config),
        [
            format!(
                "{path}.websocket.mq.options.payload_mapping[\"bad\"]: missing field `serializer`"
            ),
            format!("{path}.mqtt.options.payload_mapping[\"bad\"]: missing field `serializer`"),
        ]
    );
    let mapping = json!({"": {"type": "utf8"}});
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {"mq": {"type": "mqtt",
                             "options": {"realm": "realm1", "payload_mapping": mapping}}},
        "mqtt": {"options": {"realm": "realm1", "payload_mapping": mapping}}
    }]));
    let node = parse(&config).expect("valid");
    let uni = universal(&node, 0);
    let utf8 = PayloadMapping {
        entries: vec![(String::new(), PayloadFormat::Utf8)],
    };
    assert_eq!(*uni.mqtt.as_ref().unwrap().payload_mapping, utf8);
    assert_eq!(*uni.mqtt_websocket["mq"].payload_mapping, utf8);
}

#[test]
fn mqtt_over_websocket_paths() {
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {
            "ws": {"type": "websocket"},
            "mqtt": {"type": "mqtt", "options": {"realm": "realm1", "max_packet_size": 4096}}
        },
        "web": {"paths": {"/": {"type": "nodeinfo"}}}
    }]));
    let node = parse(&config).expect("valid");
    let uni = universal(&node, 0);
    assert_eq!(uni.websocket.keys().collect::<Vec<_>>(), ["ws"]);
    assert_eq!(uni.mqtt_websocket.keys().collect::<Vec<_>>(), ["mqtt"]);
    assert_eq!(
        uni.mqtt_websocket["mqtt"],
        MqttSettings {
            max_packet_size: 4096,
            ..MqttSettings::default()
        }
    );
    assert_eq!(uni.mqtt, None);

    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {
            "mq": {"type": "mqtt", "serializers": ["json"], "options": {"realm": "realm1"}},
            "mq2": {"type": "mqtt"},
            "mq3": {"type": "mqtt", "endpoint": {}, "max_connections": 1,
                    "options": {"realm": "realm1"}},
            "a/b": {"type": "mqtt", "options": {"realm": "realm1"}},
            "info": {"type": "mqtt", "options": {"realm": "realm1"}}
        },
        "web": {"paths": {"info": {"type": "nodeinfo"}}}
    }]));
    let path = "workers[0].transports[0].websocket";
    let errors = errors(&config);
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!(
            "{path}.mq.serializers: unknown field `serializers`, expected one of `type`, \
             `options`"
        )),
        "{errors:#?}"
    );
    assert_eq!(
        errors[1..],
        [
            format!(
                "{path}.mq2: missing field `options` (`options.realm` names the realm MQTT \
                 clients join)"
            ),
            format!(
                "{path}.mq3.endpoint: not allowed here: this is served on the endpoint of its \
                 transport"
            ),
            format!(
                "{path}.mq3.max_connections: not allowed here: set `max_connections` on the \
                 transport"
            ),
            format!(
                "{path}.a/b: invalid path \"a/b\": must be \"/\" or one path component of \
                 letters, digits, '_' and '-' (^([a-z0-9A-Z_\\-]+|/)$)"
            ),
            // A path is either MQTT over WebSocket or a web service, never both.
            format!(
                "{path}.info: path \"info\" is also a key of web.paths: a path is either a \
                 WebSocket or a web service"
            ),
        ]
    );

    // The realm and role of an MQTT path are checked like those of an MQTT transport.
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "websocket": {"mq": {"type": "mqtt", "options": {"realm": "realm1", "role": "nobody"}}}
    }]));
    assert_one_error(
        &config,
        &format!("{path}.mq.options.role"),
        "role \"nobody\" (for MQTT clients) is not defined in realm \"realm1\"",
    );
}

#[test]
fn realm_mqtt_options() {
    let mut config = base();
    let options = |config: &mut Value, mqtt: Value| {
        config["workers"][0]["realms"][0]["options"] = json!({"mqtt": mqtt});
    };
    let realm = |config: &Value| parse(config).expect("valid").routers[0].realms[0].clone();

    assert_eq!(realm(&config).mqtt, RealmMqtt::default());
    assert_eq!(
        RealmMqtt::default(),
        RealmMqtt {
            persistence: true,
            sys_interval: Some(Duration::from_secs(10)),
            max_retained: 100_000,
        }
    );
    options(&mut config, json!({}));
    assert_eq!(realm(&config).mqtt, RealmMqtt::default());
    options(
        &mut config,
        json!({"persistence": false, "sys_interval": 0}),
    );
    assert_eq!(
        realm(&config).mqtt,
        RealmMqtt {
            persistence: false,
            sys_interval: None,
            max_retained: 100_000,
        }
    );
    options(
        &mut config,
        json!({"persistence": true, "sys_interval": 60, "max_retained": 7}),
    );
    assert_eq!(
        realm(&config).mqtt,
        RealmMqtt {
            persistence: true,
            sys_interval: Some(Duration::from_secs(60)),
            max_retained: 7,
        }
    );
    // `parse_json` leaves the store path to `load_dir`.
    assert_eq!(realm(&config).store_path, None);

    let path = "workers[0].realms[0].options.mqtt";
    options(&mut config, json!({"persistence": "yes"}));
    assert_one_error(
        &config,
        &format!("{path}.persistence"),
        "invalid type: string \"yes\", expected a boolean",
    );
    options(&mut config, json!({"sys_interval": -1}));
    assert_one_error(
        &config,
        &format!("{path}.sys_interval"),
        "invalid value: integer `-1`, expected u64",
    );
    options(&mut config, json!({"retain": true}));
    assert_one_error(
        &config,
        &format!("{path}.retain"),
        "unknown field `retain`, expected one of `persistence`, `sys_interval`, `max_retained`",
    );
    options(&mut config, json!(true));
    assert_one_error(
        &config,
        path,
        "invalid type: boolean `true`, expected a map",
    );
    // Checked even when a sibling option has a typo.
    config["workers"][0]["realms"][0]["options"] =
        json!({"uri_chek": "loose", "mqtt": {"sys_interval": "10"}});
    let errors = errors(&config);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with(&format!("{path}.sys_interval: invalid type")));
    assert!(errors[1].starts_with("workers[0].realms[0].options.uri_chek: unknown field"));
}

#[test]
fn store_file_names_are_sanitized() {
    assert_eq!(store_file_name("realm1"), "junction-realm1.redb");
    assert_eq!(
        store_file_name("com.Example-app_1"),
        "junction-com.Example-app_1.redb"
    );
    // Every other character, multi-byte ones included, becomes one '_'.
    assert_eq!(store_file_name("a/b"), "junction-a_b.redb");
    assert_eq!(
        store_file_name("com.ex/wärme"),
        "junction-com.ex_w_rme.redb"
    );
    assert_eq!(store_file_name("日本:x*?\\"), "junction-___x___.redb");
}

#[test]
fn realms_must_not_share_a_store_file() {
    let mut config = base();
    let realm1 = config["workers"][0]["realms"][0].clone();
    let realms = config["workers"][0]["realms"].as_array_mut().unwrap();
    for name in ["a/b", "a_b", "a:b"] {
        let mut realm = realm1.clone();
        realm["name"] = json!(name);
        realms.push(realm);
    }
    assert_eq!(
        errors(&config),
        [
            "workers[0].realms[2].name: realm \"a_b\" would share the store file \
             junction-a_b.redb with the realm at workers[0].realms[1]; rename one or set \
             `options.mqtt.persistence` to false",
            "workers[0].realms[3].name: realm \"a:b\" would share the store file \
             junction-a_b.redb with the realm at workers[0].realms[1]; rename one or set \
             `options.mqtt.persistence` to false",
        ]
    );
    // Fine when only one of them persists.
    for j in [1, 2] {
        config["workers"][0]["realms"][j]["options"] = json!({"mqtt": {"persistence": false}});
    }
    parse(&config).expect("valid");

    // Across workers too: the store files are the node's.
    let mut config = base();
    let mut other = config["workers"][0].clone();
    config["workers"][0]["realms"][0]["name"] = json!("x/y");
    other["realms"][0]["name"] = json!("x_y");
    other["transports"] = json!([]);
    config["workers"].as_array_mut().unwrap().push(other);
    assert_one_error(
        &config,
        "workers[1].realms[0].name",
        "realm \"x_y\" would share the store file junction-x_y.redb with the realm at \
         workers[0].realms[0]",
    );
}

#[test]
fn load_dir_sets_store_paths() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base();
    let realm1 = config["workers"][0]["realms"][0].clone();
    let realms = config["workers"][0]["realms"].as_array_mut().unwrap();
    let mut odd = realm1.clone();
    odd["name"] = json!("com.ex/wärme");
    realms.push(odd);
    let mut volatile = realm1;
    volatile["name"] = json!("volatile");
    volatile["options"] = json!({"mqtt": {"persistence": false}});
    realms.push(volatile);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();

    let node = load_dir(dir.path()).unwrap().expect("config found");
    let paths: Vec<_> = node.routers[0]
        .realms
        .iter()
        .map(|r| r.store_path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            Some(dir.path().join("junction-realm1.redb")),
            Some(dir.path().join("junction-com.ex_w_rme.redb")),
            None,
        ]
    );
    // Nothing is created by loading the config.
    assert!(!dir.path().join("junction-realm1.redb").exists());

    // `parse_json` (no node directory) leaves them all `None`: state stays in memory.
    let node = parse(&config).expect("valid");
    assert!(node.routers[0]
        .realms
        .iter()
        .all(|r| r.store_path.is_none()));
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// `base()` with role "user" added and `auth` on its WebSocket transport.
fn ws_auth(auth: Value) -> Value {
    let mut config = with_role(base(), "user");
    transport0(&mut config)["auth"] = auth;
    config
}

/// An environment with `JOE_TICKET` and `PETER_SECRET` set and `EMPTY` set to "".
fn test_env(var: &str) -> Option<String> {
    match var {
        "JOE_TICKET" => Some("ticket-from-env".into()),
        "PETER_SECRET" => Some("secret-from-env".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse_env(config: &Value) -> Result<NodeConfig, Vec<ConfigError>> {
    parse_with_env(&config.to_string(), "(root)", &test_env, Path::new(NODE))
}

/// The errors of `config` (with `test_env`) as "path: message" lines.
fn env_errors(config: &Value) -> Vec<String> {
    match parse_env(config) {
        Ok(node) => panic!("config unexpectedly valid: {node:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn principal(ticket: &str, role: &str) -> TicketPrincipal {
    TicketPrincipal {
        ticket: ticket.into(),
        role: role.into(),
    }
}

fn cra_user(secret: &str, role: &str, salt: Option<(&str, u32, u32)>) -> CraUser {
    CraUser {
        secret: secret.into(),
        role: role.into(),
        salt: salt.map(|(s, i, k)| (s.to_owned(), i, k)),
    }
}

#[test]
fn ticket_and_wampcra_auth_parses() {
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {
            "joe": {"ticket": "${JOE_TICKET}", "role": "user"},
            "joe@example.com": {"ticket": "literal", "role": "anonymous"}
        }},
        "wampcra": {"type": "static", "users": {
            "peter": {"secret": "${PETER_SECRET}", "role": "user"},
            "salty": {"secret": "pw", "role": "user", "salt": "salt123"},
            "tuned": {"secret": "pw", "role": "user", "salt": "s", "iterations": 100,
                      "keylen": 16}
        }}
    }));
    let node = parse_env(&config).expect("valid");
    let ws = websocket(&node, 0, 0);
    // `auth` without `anonymous`: anonymous access is off.
    assert_eq!(ws.auth.anonymous, None);
    assert_eq!(ws.anonymous_role, "anonymous");
    assert_eq!(
        ws.auth.ticket,
        [
            ("joe".to_owned(), principal("ticket-from-env", "user")),
            (
                "joe@example.com".to_owned(),
                principal("literal", "anonymous")
            ),
        ]
        .into()
    );
    assert_eq!(
        ws.auth.wampcra,
        [
            (
                "peter".to_owned(),
                cra_user("secret-from-env", "user", None)
            ),
            (
                "salty".to_owned(),
                cra_user("pw", "user", Some(("salt123", 1000, 32)))
            ),
            (
                "tuned".to_owned(),
                cra_user("pw", "user", Some(("s", 100, 16)))
            ),
        ]
        .into()
    );
    assert_eq!(ws.auth.password_file, None);

    // With `anonymous` too.
    let config = ws_auth(json!({
        "anonymous": {"type": "static", "role": "user"},
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "t", "role": "user"}}}
    }));
    let ws = websocket(&parse(&config).expect("valid"), 0, 0).clone();
    assert_eq!(ws.auth.anonymous.as_deref(), Some("user"));
    assert_eq!(ws.anonymous_role, "user");
    assert_eq!(ws.auth.ticket.len(), 1);

    // `anonymous` without `role`: role "anonymous".
    let config = ws_auth(json!({"anonymous": {"type": "static"}}));
    let ws = websocket(&parse(&config).expect("valid"), 0, 0).clone();
    assert_eq!(ws.auth.anonymous.as_deref(), Some("anonymous"));
    assert_eq!(ws.anonymous_role, "anonymous");
}

#[test]
fn default_config_is_anonymous_only() {
    let node = parse_json(&default_config_json()).expect("valid");
    let uni = universal(&node, 0);
    let anonymous_only = TransportAuth::default();
    assert_eq!(*uni.websocket["ws"].auth, anonymous_only);
    assert_eq!(*uni.rawsocket.as_ref().unwrap().auth, anonymous_only);
    assert_eq!(*uni.mqtt.as_ref().unwrap().auth, anonymous_only);
    // No `auth` on a standalone transport: the same.
    let node = parse(&base()).expect("valid");
    assert_eq!(*websocket(&node, 0, 0).auth, anonymous_only);
}

#[test]
fn every_wamp_transport_kind_carries_its_auth() {
    let auth = json!({"ticket": {"type": "static",
                                 "principals": {"joe": {"ticket": "t", "role": "user"}}}});
    let config = with_role(
        with_transports(json!([
            {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081}, "auth": auth},
            {"type": "web", "endpoint": {"type": "tcp", "port": 8082},
             "paths": {"ws": {"type": "websocket", "auth": auth}}},
            {"type": "universal", "endpoint": {"type": "tcp", "port": 8083},
             "rawsocket": {"auth": auth},
             "websocket": {"ws": {"auth": auth}}}
        ])),
        "user",
    );
    let node = parse(&config).expect("valid");
    let expected = TransportAuth {
        anonymous: None,
        ticket: [("joe".to_owned(), principal("t", "user"))].into(),
        wampcra: BTreeMap::new(),
        cryptosign: Default::default(),
        dynamic: Default::default(),
        dynamic_realm: Default::default(),
        tls: Default::default(),
        password_file: None,
        password_file_role: "anonymous".into(),
        acl_file: None,
    };
    assert_eq!(*rawsocket(&node, 0).settings.auth, expected);
    let WebService::WebSocket(service) = &web(&node, 1).paths["ws"] else {
        panic!("not a websocket service")
    };
    assert_eq!(*service.auth, expected);
    let uni = universal(&node, 2);
    assert_eq!(*uni.rawsocket.as_ref().unwrap().auth, expected);
    assert_eq!(*uni.websocket["ws"].auth, expected);

    // The roles of each are checked, at their own paths.
    let bad = json!({"ticket": {"type": "static",
                                "principals": {"joe": {"ticket": "t", "role": "admin"}}}});
    let config = with_transports(json!([
        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081}, "auth": bad},
        {"type": "web", "endpoint": {"type": "tcp", "port": 8082},
         "paths": {"ws": {"type": "websocket", "auth": bad}}},
        {"type": "universal", "endpoint": {"type": "tcp", "port": 8083},
         "rawsocket": {"auth": bad},
         "websocket": {"ws": {"auth": bad}}}
    ]));
    let message = "role \"admin\" (for ticket principal \"joe\") is not defined in any realm \
                   of this worker";
    assert_eq!(
        errors(&config),
        [
            format!("workers[0].transports[0].auth.ticket.principals[\"joe\"].role: {message}"),
            format!(
                "workers[0].transports[1].paths.ws.auth.ticket.principals[\"joe\"].role: \
                 {message}"
            ),
            format!(
                "workers[0].transports[2].rawsocket.auth.ticket.principals[\"joe\"].role: \
                 {message}"
            ),
            format!(
                "workers[0].transports[2].websocket.ws.auth.ticket.principals[\"joe\"].role: \
                 {message}"
            ),
        ]
    );
}

#[test]
fn auth_roles_must_exist() {
    let config = ws_auth(json!({
        "anonymous": {"type": "static", "role": "guest"},
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "t", "role": "admin"}}},
        "wampcra": {"type": "static", "users": {"peter": {"secret": "s", "role": "ops"}}},
        "cryptosign": {"type": "static", "principals": {
            "carl": {"authorized_keys": [KEY_A], "role": "robot"}
        }}
    }));
    let path = "workers[0].transports[0].auth";
    assert_eq!(
        errors(&config),
        [
            format!(
                "{path}.anonymous.role: role \"guest\" (for anonymous sessions) is not defined \
                 in any realm of this worker"
            ),
            format!(
                "{path}.ticket.principals[\"joe\"].role: role \"admin\" (for ticket principal \
                 \"joe\") is not defined in any realm of this worker"
            ),
            format!(
                "{path}.wampcra.users[\"peter\"].role: role \"ops\" (for WAMP-CRA user \
                 \"peter\") is not defined in any realm of this worker"
            ),
            format!(
                "{path}.cryptosign.principals[\"carl\"].role: role \"robot\" (for cryptosign \
                 principal \"carl\") is not defined in any realm of this worker"
            ),
        ]
    );
    // A role of another realm of the same worker counts.
    let mut config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "t", "role": "admin"}}}
    }));
    config["workers"][0]["realms"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "realm2", "roles": [{"name": "admin", "permissions": []}]}));
    parse(&config).expect("valid");
}

#[test]
fn secrets_from_the_environment() {
    let path = "workers[0].transports[0].auth";
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {
            "joe": {"ticket": "${NOT_SET}", "role": "user"},
            "ann": {"ticket": "${EMPTY}", "role": "user"}
        }},
        "wampcra": {"type": "static", "users": {
            "peter": {"secret": "${ALSO_NOT_SET}", "role": "user"}
        }}
    }));
    assert_eq!(
        env_errors(&config),
        [
            format!(
                "{path}.ticket.principals[\"joe\"].ticket: environment variable NOT_SET is not \
                 set"
            ),
            format!(
                "{path}.ticket.principals[\"ann\"].ticket: environment variable EMPTY is empty"
            ),
            format!(
                "{path}.wampcra.users[\"peter\"].secret: environment variable ALSO_NOT_SET is \
                 not set"
            ),
        ]
    );
    // `$VAR` without braces is a literal secret, as in Crossbar.
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "$JOE", "role": "user"}}}
    }));
    let node = parse_env(&config).expect("valid");
    assert_eq!(websocket(&node, 0, 0).auth.ticket["joe"].ticket, "$JOE");
}

#[test]
fn unsupported_auth_methods_and_types() {
    let path = "workers[0].transports[0].auth";
    for method in ["anonymous", "ticket", "wampcra", "cryptosign"] {
        for kind in ["dynamic", "function"] {
            if kind == "dynamic" {
                continue; // supported: see dynamic_ticket_and_wampcra_auth_parses
            }
            let config = ws_auth(json!({method: {"type": kind, "authenticator": "com.x.auth"}}));
            assert_eq!(
                errors(&config),
                [format!(
                    "{path}.{method}.type: authentication type \"{kind}\" is not supported yet"
                )]
            );
        }
        let config = ws_auth(json!({method: {"type": "magic"}}));
        assert_eq!(
            errors(&config),
            [format!(
                "{path}.{method}.type: unknown authentication type \"magic\", expected one of \
                 \"static\", \"dynamic\", \"function\""
            )]
        );
        let config = ws_auth(json!({method: {}}));
        assert_eq!(
            errors(&config),
            [format!("{path}.{method}: missing field `type`")]
        );
    }
    for method in ["cookie", "scram", "cryptosign-proxy", "anonymous-proxy"] {
        let config = ws_auth(json!({method: {"type": "static"}}));
        assert_eq!(
            errors(&config),
            [format!(
                "{path}.{method}: authentication method \"{method}\" is not supported yet"
            )]
        );
    }
    let config = ws_auth(json!({"password": {"type": "static"}}));
    assert_eq!(
        errors(&config),
        [format!(
            "{path}.password: unknown authentication method \"password\", expected one of \
             \"anonymous\", \"ticket\", \"wampcra\", \"cryptosign\", \"tls\", \"cookie\", \
             \"scram\", \"cryptosign-proxy\", \"anonymous-proxy\""
        )]
    );
    for unsupported in ["ticket", "wampcra"] {
        let inner = if unsupported == "ticket" {
            "principals"
        } else {
            "users"
        };
        let config = ws_auth(json!({unsupported: {
            "type": "static", inner: {}, "default-role": "user"
        }}));
        assert_eq!(
            errors(&config),
            [format!(
                "{path}.{unsupported}.default-role: not supported yet"
            )]
        );
    }
}

#[test]
fn dynamic_ticket_and_wampcra_auth_parses() {
    // Dynamic methods need no static principals; anonymous next to them stays static.
    let config = ws_auth(json!({
        "anonymous": {"type": "static", "role": "user"},
        "ticket": {"type": "dynamic", "authenticator": "com.example.authenticate"},
        "wampcra": {"type": "dynamic", "authenticator": "com.example.cra-auth"}
    }));
    let node = parse(&config).unwrap();
    let auth = &websocket(&node, 0, 0).auth;
    assert_eq!(auth.anonymous.as_deref(), Some("user"));
    assert!(auth.ticket.is_empty() && auth.wampcra.is_empty());
    let want: BTreeMap<String, String> = [
        ("ticket".to_owned(), "com.example.authenticate".to_owned()),
        ("wampcra".to_owned(), "com.example.cra-auth".to_owned()),
    ]
    .into();
    assert_eq!(auth.dynamic, want);

    // Only dynamic ticket: no anonymous, no static principals.
    let config = ws_auth(json!({"ticket": {"type": "dynamic", "authenticator": "a.b"}}));
    let node = parse(&config).unwrap();
    let auth = &websocket(&node, 0, 0).auth;
    assert_eq!(auth.anonymous, None);
    assert_eq!(auth.dynamic.get("ticket").map(String::as_str), Some("a.b"));
    assert!(!auth.dynamic.contains_key("wampcra"));

    // Static auth has no dynamic entries.
    let config = ws_auth(json!({"ticket": {"type": "static", "principals": {}}}));
    assert!(websocket(&parse(&config).unwrap(), 0, 0)
        .auth
        .dynamic
        .is_empty());
}

#[test]
fn dynamic_auth_problems() {
    let path = "workers[0].transports[0].auth";
    for method in ["anonymous", "ticket", "wampcra", "cryptosign", "tls"] {
        let config = ws_auth(json!({method: {"type": "dynamic"}}));
        assert_eq!(
            errors(&config),
            [format!("{path}.{method}: missing field `authenticator`")]
        );
        for bad in ["", "com..x", "com.x#y", "com.x y", ".com"] {
            let config = ws_auth(json!({method: {"type": "dynamic", "authenticator": bad}}));
            let errors = errors(&config);
            assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
            assert!(
                errors[0].starts_with(&format!(
                    "{path}.{method}.authenticator: invalid procedure URI"
                )),
                "{errors:?}"
            );
        }
        let config = ws_auth(json!({method: {
            "type": "dynamic", "authenticator": "com.x", "authenticator-realm": "realm2"
        }}));
        assert_eq!(
            errors(&config),
            [format!(
                "{path}.{method}.authenticator-realm: realm \"realm2\" (of the authenticator) \
                 is not defined in this worker"
            )]
        );
        let config = ws_auth(json!({method: {
            "type": "dynamic", "authenticator": "com.x", "authenticator-realm": "realm1"
        }}));
        let node = parse(&config).expect("an existing authenticator realm is fine");
        let TransportConfig::WebSocket(ws) = &node.routers[0].transports[0] else {
            panic!("websocket expected");
        };
        assert_eq!(
            ws.auth.dynamic_realm.get(method).map(String::as_str),
            Some("realm1")
        );
        let config = ws_auth(json!({method: {
            "type": "dynamic", "authenticator": "com.x", "principals": {}
        }}));
        let errors = errors(&config);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "{path}.{method}.principals: unknown field `principals`"
            )),
            "{errors:?}"
        );
    }
}

#[test]
fn auth_without_a_method_is_an_error() {
    let message = "no authentication method configured (give \"anonymous\", \"ticket\", \
                   \"wampcra\" or \"cryptosign\"; without `auth` anonymous access is allowed)";
    for auth in [json!({}), json!({"anonymous": null})] {
        assert_one_error(&ws_auth(auth), "workers[0].transports[0].auth", message);
    }
    assert_one_error(
        &ws_auth(json!("secret")),
        "workers[0].transports[0].auth",
        "invalid type: string, expected a map",
    );
}

#[test]
fn principal_problems_report_their_paths() {
    let path = "workers[0].transports[0].auth";
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {
            "no_ticket": {"role": "user"},
            "no_role": {"ticket": "t"},
            "typo": {"ticket": "t", "role": "user", "rloe": "x"},
            "": {"ticket": "t", "role": "user"},
            "empty": {"ticket": "", "role": ""},
            "number": {"ticket": 12345, "role": "user"},
            "null": {"ticket": null, "role": "user"},
            "string": "t"
        }},
        "wampcra": {"type": "static", "users": {
            "zero": {"secret": "s", "role": "user", "salt": "x", "iterations": 0, "keylen": 0},
            "huge": {"secret": "s", "role": "user", "salt": "x", "keylen": 4096},
            "salt": {"secret": "s", "role": "user", "salt": 7}
        }}
    }));
    let p = format!("{path}.ticket.principals");
    let u = format!("{path}.wampcra.users");
    assert_eq!(
        errors(&config),
        [
            format!("{p}[\"no_ticket\"]: missing field `ticket`"),
            format!("{p}[\"no_role\"]: missing field `role`"),
            format!("{p}[\"typo\"].rloe: unknown field `rloe`, expected `ticket` or `role`"),
            format!("{p}[\"\"]: authid must not be empty"),
            format!("{p}[\"empty\"].ticket: must not be empty"),
            format!("{p}[\"empty\"].role: role name must not be empty"),
            format!("{p}[\"number\"].ticket: invalid type: integer, expected a string"),
            format!("{p}[\"null\"]: missing field `ticket`"),
            format!("{p}[\"string\"]: invalid type: string, expected a map"),
            format!("{u}[\"zero\"].iterations: 0 is out of range (1 to 4294967295)"),
            format!("{u}[\"zero\"].keylen: 0 is out of range (1 to 1024)"),
            format!("{u}[\"huge\"].keylen: 4096 is out of range (1 to 1024)"),
            format!("{u}[\"salt\"].salt: invalid type: integer `7`, expected a string"),
        ]
    );
    let config = ws_auth(
        json!({"ticket": {"type": "static"}, "wampcra": {"type": "static",
                                                                          "users": []}}),
    );
    assert_eq!(
        errors(&config),
        [
            format!("{path}.ticket: missing field `principals`"),
            format!("{path}.wampcra.users: invalid type: sequence, expected a map"),
        ]
    );
}

#[test]
fn secrets_never_show_in_errors_or_debug_output() {
    let secret = "SECRET-value-42";
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {
            "a": {"ticket": secret, "role": "nobody"},
            "b": {"ticket": [secret], "role": "user"},
            "c": secret,
            "d": {"ticket": secret, "role": "user", "extra": 1},
            "e": {"ticket": {"x": secret}, "role": "user"}
        }},
        "wampcra": {"type": "static", "users": {
            "a": {"secret": secret, "role": "nobody"},
            "b": {"secret": 4242, "role": "user"},
            "c": secret,
            "d": {"secret": secret, "role": "user", "iterations": 0, "salt": "x"}
        }},
        "anonymous": secret
    }));
    let errors = errors(&config);
    // (The roles are not checked: the transport has other errors.)
    assert_eq!(errors.len(), 8, "{errors:#?}");
    for error in &errors {
        assert!(
            !error.contains("SECRET") && !error.contains("4242"),
            "{error}"
        );
    }
    // MQTT `options.auth`, `principals` and the method itself as strings.
    let config = mqtt_config(json!({"realm": "realm1", "auth": {
        "ticket": {"type": "static", "principals": secret}
    }}));
    let errors = self::errors(&config);
    assert!(errors.iter().all(|e| !e.contains("SECRET")), "{errors:#?}");
    let config = ws_auth(json!({"ticket": secret}));
    assert!(self::errors(&config).iter().all(|e| !e.contains("SECRET")));
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {"a": {"ticket": secret, "role": "nobody"}}}
    }));
    assert_eq!(
        self::errors(&config),
        [
            "workers[0].transports[0].auth.ticket.principals[\"a\"].role: role \"nobody\" (for \
          ticket principal \"a\") is not defined in any realm of this worker"
        ]
    );

    // A valid config's Debug output hides them too.
    let config = ws_auth(json!({
        "ticket": {"type": "static", "principals": {"a": {"ticket": secret, "role": "user"}}},
        "wampcra": {"type": "static", "users": {"b": {"secret": secret, "role": "user"}}}
    }));
    let node = parse(&config).expect("valid");
    assert_eq!(websocket(&node, 0, 0).auth.ticket["a"].ticket, secret);
    for debug in [format!("{node:?}"), format!("{node:#?}")] {
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("<secret>"));
    }
}

#[test]
fn wampcra_iterations_without_salt_warn() {
    let config = ws_auth(json!({"wampcra": {"type": "static", "users": {
        "peter": {"secret": "s", "role": "user", "iterations": 10, "keylen": 16}
    }}}));
    let (node, warnings) =
        parse_with_env_warnings(&config.to_string(), "(root)", &no_env, Path::new(NODE))
            .expect("valid");
    assert_eq!(websocket(&node, 0, 0).auth.wampcra["peter"].salt, None);
    let path = "workers[0].transports[0].auth.wampcra.users[\"peter\"]";
    let message = "has no effect without `salt` (the secret is used as it is)";
    assert_eq!(
        warnings,
        [
            ConfigError {
                path: format!("{path}.iterations"),
                message: message.into()
            },
            ConfigError {
                path: format!("{path}.keylen"),
                message: message.into()
            },
        ]
    );
}

// WAMP-Cryptosign

/// Ed25519 public keys (RFC 8032, tests 1 to 3).
const KEY_A: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const KEY_B: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const KEY_C: &str = "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025";

/// The bytes of a lowercase hex key.
fn key_bytes(hex: &str) -> [u8; 32] {
    let mut key = [0; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    key
}

fn cryptosign_principal(keys: &[&str], role: &str) -> CryptosignPrincipal {
    CryptosignPrincipal {
        authorized_keys: keys.iter().map(|k| key_bytes(k)).collect(),
        role: role.into(),
    }
}

#[test]
fn cryptosign_auth_parses() {
    let config = ws_auth(json!({
        "cryptosign": {"type": "static", "principals": {
            "client01": {"authorized_keys": [KEY_A, KEY_B.to_uppercase()], "role": "user"},
            "client02@example.com": {"authorized_keys": [KEY_C], "role": "anonymous"}
        }}
    }));
    let ws = websocket(&parse(&config).expect("valid"), 0, 0).clone();
    assert_eq!(
        *ws.auth,
        TransportAuth {
            anonymous: None,
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            tls: Default::default(),
            ticket: BTreeMap::new(),
            wampcra: BTreeMap::new(),
            cryptosign: [
                (
                    "client01".to_owned(),
                    cryptosign_principal(&[KEY_A, KEY_B], "user")
                ),
                (
                    "client02@example.com".to_owned(),
                    cryptosign_principal(&[KEY_C], "anonymous")
                ),
            ]
            .into(),
            password_file: None,
            password_file_role: "anonymous".into(),
            acl_file: None,
        }
    );
    // The decoded bytes (the second key was written in uppercase).
    let keys = &ws.auth.cryptosign["client01"].authorized_keys;
    assert_eq!(keys[0][..4], [0xd7, 0x5a, 0x98, 0x01]);
    assert_eq!(keys[0][28..], [0xf7, 0x07, 0x51, 0x1a]);
    assert_eq!(keys[1][..4], [0x3d, 0x40, 0x17, 0xc3]);

    // Next to other methods; on a RawSocket transport too.
    let auth = json!({
        "anonymous": {"type": "static", "role": "user"},
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "t", "role": "user"}}},
        "cryptosign": {"type": "static", "principals": {
            "joe": {"authorized_keys": [KEY_A], "role": "user"}
        }}
    });
    let config = with_role(
        with_transports(json!([
            {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081}, "auth": auth}
        ])),
        "user",
    );
    let node = parse(&config).expect("valid");
    let auth = &rawsocket(&node, 0).settings.auth;
    assert_eq!(auth.anonymous.as_deref(), Some("user"));
    assert_eq!(auth.ticket.len(), 1);
    assert_eq!(
        auth.cryptosign,
        [("joe".to_owned(), cryptosign_principal(&[KEY_A], "user"))].into()
    );
}

#[test]
fn cryptosign_problems_report_their_paths() {
    let path = "workers[0].transports[0].auth.cryptosign";
    let p = format!("{path}.principals");
    let config = ws_auth(json!({"cryptosign": {"type": "static", "principals": {
        "short": {"authorized_keys": [KEY_A, &KEY_B[..62]], "role": "user"},
        "long": {"authorized_keys": [format!("{KEY_B}00")], "role": "user"},
        "prefixed": {"authorized_keys": [format!("0x{}", &KEY_B[2..])], "role": "user"},
        "non_ascii": {"authorized_keys": [format!("é{}", &KEY_B[1..])], "role": "user"},
        "number": {"authorized_keys": [42], "role": "user"},
        "string": {"authorized_keys": KEY_B, "role": "user"},
        "empty": {"authorized_keys": [], "role": "user"},
        "no_keys": {"role": "user"},
        "null_keys": {"authorized_keys": null, "role": "user"},
        "no_role": {"authorized_keys": [KEY_B]},
        "empty_role": {"authorized_keys": [KEY_B], "role": ""},
        "realm": {"authorized_keys": [KEY_C], "role": "user", "realm": "realm1"},
        "typo": {"authorized_keys": [KEY_C], "role": "user", "pubkey": "x"},
        "": {"authorized_keys": [KEY_C], "role": "user"},
        "string_principal": KEY_C
    }}}));
    let bad_length = "must be an Ed25519 public key (64 hex characters), not";
    let not_hex = "must be an Ed25519 public key (64 hex characters): found a character that is \
                   not a hex digit";
    let errors = errors(&config);
    assert_eq!(
        errors,
        [
            format!("{p}[\"short\"].authorized_keys[1]: {bad_length} 62 characters"),
            format!("{p}[\"long\"].authorized_keys[0]: {bad_length} 66 characters"),
            format!("{p}[\"prefixed\"].authorized_keys[0]: {not_hex}"),
            format!("{p}[\"non_ascii\"].authorized_keys[0]: {not_hex}"),
            format!("{p}[\"number\"].authorized_keys[0]: invalid type: integer, expected a string"),
            format!("{p}[\"string\"].authorized_keys: invalid type: string, expected a sequence"),
            format!("{p}[\"empty\"].authorized_keys: must list at least one public key"),
            format!("{p}[\"no_keys\"]: missing field `authorized_keys`"),
            format!("{p}[\"null_keys\"]: missing field `authorized_keys`"),
            format!("{p}[\"no_role\"]: missing field `role`"),
            format!("{p}[\"empty_role\"].role: role name must not be empty"),
            format!("{p}[\"realm\"].realm: not supported yet"),
            format!(
                "{p}[\"typo\"].pubkey: unknown field `pubkey`, expected one of \
                 `authorized_keys`, `role`, `realm`"
            ),
            format!("{p}[\"\"]: authid must not be empty"),
            format!("{p}[\"string_principal\"]: invalid type: string, expected a map"),
        ]
    );
    // No message quotes a key, good or bad (a private key may have been pasted by mistake).
    for error in &errors {
        for key in [KEY_A, KEY_B, KEY_C] {
            assert!(!error.contains(&key[4..20]), "{error}");
        }
    }

    // The block itself.
    let cases = [
        (
            json!({"type": "static"}),
            vec![format!("{path}: missing field `principals`")],
        ),
        (
            json!({"type": "static", "principals": [KEY_A]}),
            vec![format!(
                "{path}.principals: invalid type: sequence, expected a map"
            )],
        ),
        (
            json!({"type": "static", "trustroots": {"realm1": "0xabc"}}),
            vec![format!("{path}.trustroots: not supported yet")],
        ),
        (
            json!({"type": "static", "principals": {}, "trustroot": "0xabc",
                   "trustroots": {}}),
            vec![
                format!("{path}.trustroots: not supported yet"),
                format!("{path}.trustroot: not supported yet"),
            ],
        ),
        (
            json!({"type": "static", "principals": {}, "authenticator": "com.x.auth"}),
            vec![format!(
                "{path}.authenticator: unknown field `authenticator`, expected one of `type`, \
                 `principals`, `trustroots`, `trustroot`"
            )],
        ),
        (
            json!({"type": "dynamic", "authenticator": "com.x.auth", "principals": {}}),
            vec![format!(
                "{path}.principals: unknown field `principals`, expected one of `type`, \
                 `authenticator`, `authenticator-realm`"
            )],
        ),
        (
            json!([KEY_A]),
            vec![format!("{path}: invalid type: sequence, expected a map")],
        ),
    ];
    for (cryptosign, expected) in cases {
        assert_eq!(
            self::errors(&ws_auth(json!({"cryptosign": cryptosign}))),
            expected
        );
    }
}

#[test]
fn cryptosign_keys_identify_one_authid() {
    let p = "workers[0].transports[0].auth.cryptosign.principals";
    // The same key for two authids, whatever its case.
    let config = ws_auth(json!({"cryptosign": {"type": "static", "principals": {
        "joe": {"authorized_keys": [KEY_A], "role": "user"},
        "ann": {"authorized_keys": [KEY_B, KEY_A.to_uppercase()], "role": "user"},
        "bob": {"authorized_keys": [KEY_A], "role": "user"}
    }}}));
    let first = format!("{p}[\"joe\"].authorized_keys[0]");
    assert_eq!(
        errors(&config),
        [
            format!(
                "{p}[\"ann\"].authorized_keys[1]: the same public key is already listed for \
                 \"joe\" at {first} (a key identifies one authid)"
            ),
            format!(
                "{p}[\"bob\"].authorized_keys[0]: the same public key is already listed for \
                 \"joe\" at {first} (a key identifies one authid)"
            ),
        ]
    );

    // Twice for one authid: a warning, and the key once in the model.
    let config = ws_auth(json!({"cryptosign": {"type": "static", "principals": {
        "joe": {"authorized_keys": [KEY_A, KEY_B, KEY_A], "role": "user"}
    }}}));
    let (node, warnings) =
        parse_with_env_warnings(&config.to_string(), "(root)", &no_env, Path::new(NODE))
            .expect("valid");
    assert_eq!(
        websocket(&node, 0, 0).auth.cryptosign["joe"].authorized_keys,
        [key_bytes(KEY_A), key_bytes(KEY_B)]
    );
    assert_eq!(
        warnings,
        [ConfigError {
            path: format!("{p}[\"joe\"].authorized_keys[2]"),
            message: format!("the same public key as {first} (listed twice)"),
        }]
    );

    // Each transport has its own principals: two may give one key to different authids.
    let auth = |authid: &str| {
        json!({"cryptosign": {"type": "static", "principals": {
            authid: {"authorized_keys": [KEY_A], "role": "user"}
        }}})
    };
    let config = with_role(
        with_transports(json!([
            {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081}, "auth": auth("joe")},
            {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8082}, "auth": auth("ann")}
        ])),
        "user",
    );
    let node = parse(&config).expect("valid");
    assert!(rawsocket(&node, 1)
        .settings
        .auth
        .cryptosign
        .contains_key("ann"));
}

// MQTT authentication

/// The auth of the `mqtt` transport of `mqtt_config(options)` (with role "device" in realm1),
/// and the warnings.
fn mqtt_auth_in(options: Value, base: &Path) -> (TransportAuth, Vec<ConfigError>) {
    let config = with_role(mqtt_config(options), "device");
    let (node, warnings) = parse_with_env_warnings(&config.to_string(), "(root)", &test_env, base)
        .unwrap_or_else(|e| panic!("invalid: {e:#?}"));
    ((*mqtt(&node, 0).settings.auth).clone(), warnings)
}

fn mqtt_auth(options: Value) -> TransportAuth {
    let (auth, warnings) = mqtt_auth_in(options, Path::new(NODE));
    assert_eq!(warnings, [], "unexpected warnings");
    auth
}

/// The errors of `mqtt_config(options)` with role "device" in realm1.
fn mqtt_errors(options: Value) -> Vec<String> {
    env_errors(&with_role(mqtt_config(options), "device"))
}

#[test]
fn mqtt_auth_anonymous_and_ticket() {
    let joe = json!({"type": "static", "principals": {"joe": {"ticket": "${JOE_TICKET}",
                                                              "role": "device"}}});
    let joe_model: BTreeMap<_, _> =
        [("joe".to_owned(), principal("ticket-from-env", "device"))].into();

    // No `auth`: anonymous with `options.role`.
    let auth = mqtt_auth(json!({"realm": "realm1", "role": "device"}));
    assert_eq!(auth.anonymous.as_deref(), Some("device"));
    assert_eq!(auth.password_file_role, "device");

    // `auth` with `ticket` only: anonymous off.
    let auth = mqtt_auth(json!({"realm": "realm1", "auth": {"ticket": joe}}));
    assert_eq!(
        auth,
        TransportAuth {
            anonymous: None,
            ticket: joe_model.clone(),
            wampcra: BTreeMap::new(),
            cryptosign: Default::default(),
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            tls: Default::default(),
            password_file: None,
            password_file_role: "anonymous".into(),
            acl_file: None,
        }
    );
    // ... so the default `options.role` need not exist then.
    let mut config = mqtt_config(json!({"realm": "realm1", "auth": {"ticket": joe}}));
    config["workers"][0]["realms"][0]["roles"][0]["name"] = json!("device");
    parse_env(&config).expect("valid without an anonymous role");

    // `auth.anonymous` without a role: `options.role`; with one: that.
    let auth = mqtt_auth(json!({"realm": "realm1", "role": "device",
                                "auth": {"anonymous": {"type": "static"}, "ticket": joe}}));
    assert_eq!(auth.anonymous.as_deref(), Some("device"));
    assert_eq!(auth.ticket, joe_model);
    let auth = mqtt_auth(json!({"realm": "realm1", "role": "device",
                                "auth": {"anonymous": {"type": "static", "role": "anonymous"}}}));
    assert_eq!(auth.anonymous.as_deref(), Some("anonymous"));

    // The same in a universal transport's `mqtt` and an MQTT WebSocket path.
    let config = with_role(
        with_transports(json!([{
            "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
            "mqtt": {"options": {"realm": "realm1", "auth": {"ticket": joe}}},
            "websocket": {"mqtt": {"type": "mqtt",
                                   "options": {"realm": "realm1", "auth": {"ticket": joe}}}}
        }])),
        "device",
    );
    let node = parse_env(&config).expect("valid");
    let uni = universal(&node, 0);
    assert_eq!(uni.mqtt.as_ref().unwrap().auth.ticket, joe_model);
    assert_eq!(uni.mqtt.as_ref().unwrap().auth.anonymous, None);
    assert_eq!(uni.mqtt_websocket["mqtt"].auth.ticket, joe_model);
}

#[test]
fn mqtt_auth_problems() {
    let path = "workers[0].transports[0].options";
    assert_eq!(
        mqtt_errors(json!({"realm": "realm1", "auth": {
            "wampcra": {"type": "static", "users": {"p": {"secret": "s", "role": "device"}}}
        }})),
        [format!(
            "{path}.auth.wampcra: not supported for MQTT (no challenge in MQTT 3.1.1)"
        )]
    );
    assert_eq!(
        mqtt_errors(json!({"realm": "realm1", "auth": {
            "ticket": {"type": "dynamic", "authenticator": "com.x"},
            "cryptosign": {"type": "static", "principals": {
                "dev": {"authorized_keys": [KEY_A], "role": "device"}
            }}
        }})),
        [format!(
            "{path}.auth.cryptosign: not supported for MQTT (no challenge in MQTT 3.1.1)"
        )]
    );
    // Roles must be roles of the MQTT realm (not just of the worker).
    let mut config = with_role(
        mqtt_config(json!({"realm": "realm1", "auth": {
            "anonymous": {"type": "static", "role": "guest"},
            "ticket": {"type": "static", "principals": {
                "joe": {"ticket": "t", "role": "admin"}
            }}
        }})),
        "device",
    );
    config["workers"][0]["realms"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "realm2", "roles": [{"name": "admin", "permissions": []}]}));
    assert_eq!(
        errors(&config),
        [
            format!(
                "{path}.auth.anonymous.role: role \"guest\" (for anonymous MQTT clients) is not \
                 defined in realm \"realm1\""
            ),
            format!(
                "{path}.auth.ticket.principals[\"joe\"].role: role \"admin\" (for MQTT ticket \
                 principal \"joe\") is not defined in realm \"realm1\""
            ),
        ]
    );
    // An unset `${VAR}` ticket.
    assert_eq!(
        mqtt_errors(
            json!({"realm": "realm1", "auth": {"ticket": {"type": "static",
            "principals": {"joe": {"ticket": "${NOPE}", "role": "device"}}}}})
        ),
        [format!(
            "{path}.auth.ticket.principals[\"joe\"].ticket: environment variable NOPE is not set"
        )]
    );
    // `auth` is walked even when a sibling option has a typo.
    assert_eq!(
        mqtt_errors(json!({"realm": "realm1", "rol": "x", "auth": {"tls": {}}})),
        [
            format!(
                "{path}.rol: unknown field `rol`, expected one of `realm`, `role`, \
                 `payload_mapping`, `auth`, `password_file`, `acl_file`, `allow_anonymous`, \
                 `max_packet_size`, `max_inflight`, `max_queued_messages`, `max_queued_bytes`, \
                 `session_expiry`, `max_keepalive`, `connect_timeout`"
            ),
            format!("{path}.auth.tls: missing field `type`"),
        ]
    );
}

#[test]
fn mqtt_allow_anonymous() {
    let joe = json!({"type": "static", "principals": {"joe": {"ticket": "t", "role": "device"}}});
    // false turns anonymous access off.
    let auth = mqtt_auth(json!({"realm": "realm1", "allow_anonymous": false,
                                "auth": {"ticket": joe}}));
    assert_eq!(auth.anonymous, None);
    assert_eq!(auth.ticket.len(), 1);
    // true turns it on (with `options.role`) even with an `auth` without `anonymous`.
    let auth = mqtt_auth(
        json!({"realm": "realm1", "role": "device", "allow_anonymous": true,
                                "auth": {"ticket": joe}}),
    );
    assert_eq!(auth.anonymous.as_deref(), Some("device"));
    // true changes nothing without `auth`, or with `auth.anonymous`.
    let auth = mqtt_auth(json!({"realm": "realm1", "allow_anonymous": true}));
    assert_eq!(auth.anonymous.as_deref(), Some("anonymous"));
    let auth = mqtt_auth(json!({"realm": "realm1", "allow_anonymous": true,
        "auth": {"anonymous": {"type": "static", "role": "device"}}}));
    assert_eq!(auth.anonymous.as_deref(), Some("device"));
    // false contradicts `auth.anonymous`.
    assert_eq!(
        mqtt_errors(json!({"realm": "realm1", "allow_anonymous": false,
                           "auth": {"anonymous": {"type": "static"}, "ticket": joe}})),
        [
            "workers[0].transports[0].options.allow_anonymous: false, but `auth.anonymous` allows \
          anonymous clients: remove one of them"
        ]
    );
    // Nobody can connect: valid, with a warning.
    for options in [
        json!({"realm": "realm1", "allow_anonymous": false}),
        json!({"realm": "realm1", "auth": {"ticket": {"type": "static", "principals": {}}}}),
    ] {
        let (auth, warnings) = mqtt_auth_in(options, Path::new(NODE));
        assert_eq!(auth.anonymous, None);
        assert_eq!(
            warnings,
            [ConfigError {
                path: "workers[0].transports[0].options".into(),
                message: "no MQTT client can connect: anonymous access is off, and there is no \
                          ticket principal and no `password_file`"
                    .into()
            }]
        );
    }
}

/// A node directory with a mosquitto password file `passwd` (user "sensor", password "pw").
fn passwd_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hash = crate::auth::mosquitto::hash_password_pbkdf2(b"pw");
    std::fs::write(dir.path().join("passwd"), format!("sensor:{hash}\n")).unwrap();
    dir
}

#[test]
fn mqtt_password_file() {
    let dir = passwd_dir();
    let (auth, warnings) = mqtt_auth_in(
        json!({"realm": "realm1", "role": "device", "password_file": "passwd",
               "allow_anonymous": false}),
        dir.path(),
    );
    assert_eq!(warnings, []);
    assert_eq!(
        auth,
        TransportAuth {
            anonymous: None,
            ticket: BTreeMap::new(),
            wampcra: BTreeMap::new(),
            cryptosign: Default::default(),
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            tls: Default::default(),
            password_file: Some(dir.path().join("passwd")),
            password_file_role: "device".into(),
            acl_file: None,
        }
    );
    // With `ticket` too, and anonymous on by default.
    let (auth, _) = mqtt_auth_in(
        json!({"realm": "realm1", "password_file": "./sub/../passwd",
               "auth": {"anonymous": {"type": "static"},
                        "ticket": {"type": "static", "principals": {
                            "joe": {"ticket": "t", "role": "device"}}}}}),
        dir.path(),
    );
    assert_eq!(auth.password_file, Some(dir.path().join("passwd")));
    assert_eq!(auth.anonymous.as_deref(), Some("anonymous"));
    assert_eq!(auth.ticket.len(), 1);

    // load_dir resolves it against the node directory.
    let config = with_role(
        mqtt_config(json!({"realm": "realm1", "role": "device", "password_file": "passwd"})),
        "device",
    );
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let node = load_dir(dir.path()).unwrap().expect("config found");
    let auth = &mqtt(&node, 0).settings.auth;
    assert_eq!(auth.password_file, Some(dir.path().join("passwd")));
    assert_eq!(auth.anonymous.as_deref(), Some("device"));
    assert_eq!(auth.password_file_role, "device");

    // The password file users' role (`options.role`) must exist, even when anonymous is off.
    let mut config = mqtt_config(json!({"realm": "realm1", "password_file": "passwd",
                                        "allow_anonymous": false}));
    config["workers"][0]["realms"][0]["roles"][0]["name"] = json!("device");
    assert_eq!(
        errors_in(&config, dir.path()),
        [
            "workers[0].transports[0].options: role \"anonymous\" (for MQTT clients) is not \
          defined in realm \"realm1\""
        ]
    );
}

#[test]
fn mqtt_password_file_problems() {
    let dir = passwd_dir();
    let path = "workers[0].transports[0].options.password_file";
    let config = |file: &str| mqtt_config(json!({"realm": "realm1", "password_file": file}));
    // Missing: the error names the resolved file.
    let errors = errors_in(&config("missing"), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let prefix = format!("{path}: {}", dir.path().join("missing").display());
    assert!(errors[0].starts_with(&prefix), "{errors:#?}");
    // Malformed: the line is named.
    std::fs::write(dir.path().join("bad"), "# users\nsensor\n").unwrap();
    let errors = errors_in(&config("bad"), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(path), "{errors:#?}");
    assert!(errors[0].contains("line 2"), "{errors:#?}");
    // A directory.
    let errors = errors_in(&config("."), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(path), "{errors:#?}");
}

/// A node directory with `passwd` (see [`passwd_dir`]) and a mosquitto ACL file `acl`.
fn acl_dir() -> tempfile::TempDir {
    let dir = passwd_dir();
    std::fs::write(
        dir.path().join("acl"),
        "topic read public/#\nuser sensor\ntopic readwrite sensor/#\npattern write status/%u\n",
    )
    .unwrap();
    dir
}

#[test]
fn mqtt_acl_file() {
    let dir = acl_dir();
    let (auth, warnings) = mqtt_auth_in(
        json!({"realm": "realm1", "role": "device", "password_file": "passwd",
               "acl_file": "acl", "allow_anonymous": false}),
        dir.path(),
    );
    assert_eq!(warnings, []);
    assert_eq!(
        auth,
        TransportAuth {
            anonymous: None,
            ticket: BTreeMap::new(),
            wampcra: BTreeMap::new(),
            cryptosign: Default::default(),
            dynamic: Default::default(),
            dynamic_realm: Default::default(),
            tls: Default::default(),
            password_file: Some(dir.path().join("passwd")),
            password_file_role: "device".into(),
            acl_file: Some(dir.path().join("acl")),
        }
    );
    // Without a password file (anonymous clients and ticket principals), resolved lexically.
    let (auth, warnings) = mqtt_auth_in(
        json!({"realm": "realm1", "acl_file": "./sub/../acl"}),
        dir.path(),
    );
    assert_eq!(warnings, []);
    assert_eq!(auth.acl_file, Some(dir.path().join("acl")));
    assert_eq!(auth.anonymous.as_deref(), Some("anonymous"));
    // An absolute path stays as it is.
    let absolute = dir.path().join("acl").display().to_string();
    let (auth, _) = mqtt_auth_in(
        json!({"realm": "realm1", "acl_file": absolute}),
        Path::new(NODE),
    );
    assert_eq!(auth.acl_file, Some(dir.path().join("acl")));
    // Absent: none.
    let (auth, _) = mqtt_auth_in(json!({"realm": "realm1"}), dir.path());
    assert_eq!(auth.acl_file, None);

    // load_dir resolves it against the node directory.
    let config = with_role(
        mqtt_config(
            json!({"realm": "realm1", "role": "device", "password_file": "passwd",
                           "acl_file": "acl"}),
        ),
        "device",
    );
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let node = load_dir(dir.path()).unwrap().expect("config found");
    let auth = &mqtt(&node, 0).settings.auth;
    assert_eq!(auth.acl_file, Some(dir.path().join("acl")));
    assert_eq!(auth.password_file, Some(dir.path().join("passwd")));
}

#[test]
fn mqtt_acl_file_everywhere() {
    // A universal transport's `mqtt` and an MQTT WebSocket path take it too.
    let dir = acl_dir();
    let options = json!({"realm": "realm1", "acl_file": "acl"});
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "mqtt": {"options": options},
        "websocket": {"mq": {"type": "mqtt", "options": options}}
    }]));
    let node = parse_in(&config, dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    let uni = universal(&node, 0);
    let acl = Some(dir.path().join("acl"));
    assert_eq!(uni.mqtt.as_ref().unwrap().auth.acl_file, acl);
    assert_eq!(uni.mqtt_websocket["mq"].auth.acl_file, acl);
    // Errors at the exact key.
    let config = with_transports(json!([{
        "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
        "mqtt": {"options": {"realm": "realm1", "acl_file": "missing"}},
        "websocket": {"mq": {"type": "mqtt", "options": {"realm": "realm1", "acl_file": ""}}}
    }]));
    let errors = errors_in(&config, dir.path());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    // (The WebSocket paths are walked first.)
    assert_eq!(
        errors[0],
        "workers[0].transports[0].websocket.mq.options.acl_file: must not be empty"
    );
    assert!(
        errors[1].starts_with("workers[0].transports[0].mqtt.options.acl_file: "),
        "{errors:#?}"
    );
}

#[test]
fn mqtt_acl_file_problems() {
    let dir = acl_dir();
    let path = "workers[0].transports[0].options.acl_file";
    let config = |file: &str| mqtt_config(json!({"realm": "realm1", "acl_file": file}));
    // Empty.
    assert_eq!(
        errors_in(&config(""), dir.path()),
        [format!("{path}: must not be empty")]
    );
    // Missing: the error names the resolved file.
    let errors = errors_in(&config("missing"), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let prefix = format!("{path}: {}", dir.path().join("missing").display());
    assert!(errors[0].starts_with(&prefix), "{errors:#?}");
    // Malformed: the file and the line are named.
    std::fs::write(
        dir.path().join("bad"),
        "# acl\ntopic read a/#\nuser x\ntopic sometimes b\n",
    )
    .unwrap();
    assert_eq!(
        errors_in(&config("bad"), dir.path()),
        [format!(
            "{path}: {}: line 4: unknown access \"sometimes\" (expected read, write, readwrite \
             or deny)",
            dir.path().join("bad").display()
        )]
    );
    std::fs::write(dir.path().join("bad"), "topic read a/#/b\n").unwrap();
    let errors = errors_in(&config("bad"), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(path), "{errors:#?}");
    assert!(
        errors[0].contains("line 1: invalid topic filter"),
        "{errors:#?}"
    );
    // A directory.
    let errors = errors_in(&config("."), dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(path), "{errors:#?}");
    // Not a string.
    let errors = errors_in(
        &mqtt_config(json!({"realm": "realm1", "acl_file": 1})),
        dir.path(),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!("{path}: invalid type: integer `1`")),
        "{errors:#?}"
    );
    // Reported together with a broken password file.
    let errors = errors_in(
        &mqtt_config(json!({"realm": "realm1", "password_file": "nope", "acl_file": "nope"})),
        dir.path(),
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("workers[0].transports[0].options.password_file: "));
    assert!(errors[1].starts_with(&format!("{path}: ")));
}

#[test]
fn tls_client_certificate_principals() {
    let path = "workers[0].transports[0].auth";
    let fp = "b6:e5:2f:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00";
    let config = ws_auth(json!({"tls": {"type": "static", "principals": {
        "client_0": {"certificate-sha1": fp, "role": "anonymous"}}}}));
    let node = parse(&config).expect("valid");
    let ws = websocket(&node, 0, 0);
    let p = ws
        .auth
        .tls
        .get(&fp.to_ascii_uppercase())
        .expect("by normalized fingerprint");
    assert_eq!(
        (p.authid.as_str(), p.role.as_str()),
        ("client_0", "anonymous")
    );
    let config = ws_auth(json!({"tls": {"type": "static", "principals": {
        "client_0": {"certificate-sha1": "nothex", "role": "anonymous"}}}}));
    assert_eq!(
        errors(&config),
        [format!(
            "{path}.tls.principals[\"client_0\"].certificate-sha1: must be a SHA-1 fingerprint: \
             40 hex digits, optionally separated by ':'"
        )]
    );
}
