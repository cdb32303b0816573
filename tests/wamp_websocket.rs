//! WebSocket-level tests with a raw tungstenite client: byte-exact framing, error paths,
//! backpressure and shutdown. (Protocol interop with a real WAMP client is in tests/interop.)

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use junction::config::*;
use junction::node::Node;
use serde_json::{json, Value as J};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn allow_all() -> Permission {
    Permission {
        uri: String::new(),
        match_policy: MatchPolicy::Prefix,
        allow: Allow {
            call: true,
            register: true,
            publish: true,
            subscribe: true,
        },
        disclose: Disclose::default(),
        cache: true,
    }
}

fn config(options: WebSocketOptions) -> NodeConfig {
    NodeConfig {
        controller_id: None,
        title: None,
        routers: vec![RouterWorker {
            id: None,
            realms: vec![RealmConfig {
                name: "realm1".into(),
                roles: vec![RoleConfig {
                    name: "anonymous".into(),
                    permissions: vec![allow_all()],
                    authorizer: None,
                }],
                uri_check: UriCheck::Strict,
                mqtt: Default::default(),
                limits: Default::default(),
                store_path: None,
            }],
            transports: vec![TransportConfig::WebSocket(WebSocketTransport {
                id: None,
                endpoint: Endpoint::Tcp(TcpEndpoint {
                    port: 0,
                    interface: Some("127.0.0.1".parse().unwrap()),
                    backlog: 128,
                    version: IpVersion::V4,
                    tls: None,
                }),
                max_connections: None,
                path: Some("/ws".into()),
                serializers: vec![
                    junction::wire::Serializer::Json,
                    junction::wire::Serializer::MsgPack,
                ],
                options,
                anonymous_role: "anonymous".into(),
                auth: Default::default(),
            })],
        }],
    }
}

async fn start(options: WebSocketOptions) -> (Node, SocketAddr) {
    let node = Node::start(&config(options)).await.expect("node starts");
    let addr = node.tcp_addr(0).unwrap();
    (node, addr)
}

async fn connect(
    addr: SocketAddr,
    path: &str,
    proto: &str,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(proto).unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn send(c: &mut Client, v: J) {
    c.send(Ws::Text(v.to_string().into())).await.unwrap();
}

async fn recv(c: &mut Client) -> J {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("no error");
        match m {
            Ws::Text(t) => return serde_json::from_str(&t).unwrap(),
            Ws::Close(f) => return json!({"close": f.map(|f| u16::from(f.code))}),
            _ => continue,
        }
    }
}

fn hello() -> J {
    json!([1, "realm1", {"roles": {"publisher": {}, "subscriber": {}, "caller": {}, "callee": {}}}])
}

async fn joined(addr: SocketAddr) -> (Client, u64) {
    let mut c = connect(addr, "/ws", "wamp.2.json").await.unwrap();
    send(&mut c, hello()).await;
    let w = recv(&mut c).await;
    assert_eq!(w[0], 2, "WELCOME: {w}");
    (c, w[1].as_u64().unwrap())
}

#[tokio::test]
async fn invalid_uris_get_errors_and_session_survives() {
    let (node, addr) = start(WebSocketOptions::default()).await;
    let (mut c, _) = joined(addr).await;
    for (msg, ty) in [
        (json!([16, 1, {"acknowledge": true}, "com..bad"]), 16),
        (json!([32, 2, {}, "bad uri"]), 32),
        (json!([64, 3, {}, "A..b"]), 64),
        (json!([48, 4, {}, "com.#x"]), 48),
    ] {
        send(&mut c, msg).await;
        let e = recv(&mut c).await;
        assert_eq!(e[0], 8, "{e}");
        assert_eq!(e[1], ty, "{e}");
        assert_eq!(e[4], "wamp.error.invalid_uri", "{e}");
    }
    send(&mut c, json!([32, 5, {}, "com.ok"])).await;
    assert_eq!(recv(&mut c).await[0], 33);
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn protocol_violations_abort() {
    let (node, addr) = start(WebSocketOptions::default()).await;
    // Not HELLO first.
    let mut c = connect(addr, "/ws", "wamp.2.json").await.unwrap();
    send(&mut c, json!([32, 1, {}, "a"])).await;
    let a = recv(&mut c).await;
    assert_eq!(
        (a[0].clone(), a[2].clone()),
        (json!(3), json!("wamp.error.protocol_violation"))
    );
    // Garbage after WELCOME.
    for bad in ["[1]", "{\"a\":1}", "not json", "[2, 1, {}]"] {
        let (mut c, _) = joined(addr).await;
        c.send(Ws::Text(bad.into())).await.unwrap();
        let a = recv(&mut c).await;
        assert_eq!(a[0], 3, "{bad} → {a}");
        assert_eq!(a[2], "wamp.error.protocol_violation");
        assert_eq!(recv(&mut c).await["close"], 1000);
    }
    // Unknown realm.
    let mut c = connect(addr, "/ws", "wamp.2.json").await.unwrap();
    send(&mut c, json!([1, "nope", {"roles": {"caller": {}}}])).await;
    let a = recv(&mut c).await;
    assert_eq!(a[2], "wamp.error.no_such_realm");
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn http_errors_for_wrong_path_and_subprotocol() {
    let (node, addr) = start(WebSocketOptions::default()).await;
    let err = connect(addr, "/other", "wamp.2.json").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let err = connect(addr, "/ws", "wamp.2.flatbuffers")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn oversize_message_closes_1009() {
    let opts = WebSocketOptions {
        max_message_size: 1024,
        max_frame_size: 1024,
        ..Default::default()
    };
    let (node, addr) = start(opts).await;
    let (mut c, _) = joined(addr).await;
    send(&mut c, json!([16, 1, {}, "com.x", ["x".repeat(4096)]])).await;
    assert_eq!(recv(&mut c).await["close"], 1009);
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn hello_timeout_closes() {
    let opts = WebSocketOptions {
        open_handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let (node, addr) = start(opts).await;
    let mut c = connect(addr, "/ws", "wamp.2.json").await.unwrap();
    assert_eq!(recv(&mut c).await["close"], 1008);
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn batched_json_accepts_both_separators() {
    let (node, addr) = start(WebSocketOptions::default()).await;
    for sep in [0x18u8, 0x1e] {
        let mut c = connect(addr, "/ws", "wamp.2.json.batched").await.unwrap();
        let mut frame = hello().to_string().into_bytes();
        frame.push(sep);
        c.send(Ws::Text(String::from_utf8(frame).unwrap().into()))
            .await
            .unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Ws::Text(t) = m else { panic!("{m:?}") };
        let t = t.as_str();
        assert!(
            t.ends_with('\u{18}'),
            "junction writes 0x18 after each message: {t:?}"
        );
        let w: J = serde_json::from_str(&t[..t.len() - 1]).unwrap();
        assert_eq!(w[0], 2);
    }
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn slow_subscriber_does_not_stall_publisher() {
    let opts = WebSocketOptions {
        outbox_messages: 16,
        ..Default::default()
    };
    let (node, addr) = start(opts).await;
    // The slow subscriber subscribes and then never reads again.
    let (mut slow, _) = joined(addr).await;
    send(&mut slow, json!([32, 1, {}, "com.load"])).await;
    assert_eq!(recv(&mut slow).await[0], 33);
    let (mut fast, _) = joined(addr).await;
    send(&mut fast, json!([32, 1, {}, "com.load"])).await;
    assert_eq!(recv(&mut fast).await[0], 33);
    let (mut publisher, _) = joined(addr).await;
    let big = "x".repeat(16 * 1024);
    let n = 2000u64;
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        while got < n {
            let m = recv(&mut fast).await;
            assert_eq!(m[0], 36);
            got += 1;
        }
        got
    });
    for i in 1..=n {
        send(
            &mut publisher,
            json!([16, i, {"acknowledge": true}, "com.load", [big]]),
        )
        .await;
        let ack = recv(&mut publisher).await;
        assert_eq!(ack[0], 17, "{ack}");
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .unwrap()
            .unwrap(),
        n
    );
    drop(slow);
    node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn shutdown_sends_goodbye() {
    let (node, addr) = start(WebSocketOptions::default()).await;
    let (mut c, _) = joined(addr).await;
    let stop = tokio::spawn(node.shutdown(Duration::from_secs(3)));
    let g = recv(&mut c).await;
    assert_eq!(g[0], 6, "{g}");
    assert_eq!(g[2], "wamp.close.system_shutdown");
    assert_eq!(recv(&mut c).await["close"], 1001);
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap();
}
