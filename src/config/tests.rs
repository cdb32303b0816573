//! Config loading and validation tests: every error names its exact key path.

use std::path::Path;
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
        }
    );
    let paths = uni.web.as_ref().expect("web paths");
    assert_eq!(paths.len(), 1);
    assert_eq!(paths["/"], WebService::NodeInfo);
    assert_eq!(uni.max_connections, None);
    assert!(default_config_json().ends_with("}\n"));
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
    assert_eq!(roles, ["anonymous", "restricted"]);
    assert_eq!(router.transports.len(), 1);
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
    transports.push(json!({"type": "mqtt", "endpoint": {"type": "tcp", "port": 1883}}));
    transports.push(json!({"type": "flashpolicy", "whatever": {"nested": 1}}));
    transports.push(json!({"type": "websocket.testee"}));
    transports.push(json!({"type": "stream.testee"}));
    transports.push(json!({"type": "carrier-pigeon"}));
    let errors = errors(&config);
    assert_eq!(
        errors[..4],
        [
            "workers[0].transports[1].type: transport type \"mqtt\" is not supported yet",
            "workers[0].transports[2].type: transport type \"flashpolicy\" is not supported yet",
            "workers[0].transports[3].type: transport type \"websocket.testee\" is not \
             supported yet",
            "workers[0].transports[4].type: transport type \"stream.testee\" is not supported \
             yet",
        ]
    );
    assert_eq!(
        errors[4],
        "workers[0].transports[5].type: unknown transport type \"carrier-pigeon\", expected \
         one of \"websocket\", \"rawsocket\", \"web\", \"universal\", \"mqtt\", \
         \"flashpolicy\", \"websocket.testee\", \"stream.testee\""
    );
    assert_eq!(errors.len(), 5);
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
        "ticket": {"type": "static", "principals": {}},
        "wampcra": {"type": "dynamic", "authenticator": "com.x"},
        "cryptosign": {}
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
        "workers[0].realms[0].roles[1].authorizer: dynamic authorization is not supported yet",
        "workers[0].realms[0].roles[2]: a role cannot have both `permissions` and `authorizer`",
        "workers[0].transports[0].debug: not supported yet",
        "workers[0].transports[0].cookie: not supported yet",
        "workers[0].transports[0].endpoint.shared: not supported yet",
        "workers[0].transports[0].options.allowed_origins: not supported yet",
        "workers[0].transports[0].options.tcp_nodelay: not supported yet",
        "workers[0].transports[0].options.compression: not supported yet",
        "workers[0].transports[0].auth.anonymous.authid: not supported yet",
        "workers[0].transports[0].auth.ticket: authentication method \"ticket\" is not \
         supported yet",
        "workers[0].transports[0].auth.wampcra: authentication method \"wampcra\" is not \
         supported yet",
        "workers[0].transports[0].auth.cryptosign: authentication method \"cryptosign\" is not \
         supported yet",
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
fn dynamic_anonymous_auth_is_not_supported() {
    let mut config = base();
    transport0(&mut config)["auth"] =
        json!({"anonymous": {"type": "dynamic", "authenticator": "com.example.auth"}});
    assert_one_error(
        &config,
        "workers[0].transports[0].auth.anonymous.type",
        "authentication type \"dynamic\" is not supported yet",
    );
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
    ] {
        let _ = parse_json(text);
    }
}
