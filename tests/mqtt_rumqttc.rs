//! The MQTT broker with rumqttc, a third-party Rust MQTT 3.1.1 client (`AsyncClient` +
//! `EventLoop`), against a node started in-process: QoS 0/1/2 round trips over the universal
//! port and the standalone `mqtt` transport, retained messages, and a persistent session that
//! survives a reconnect and a node restart (redb store in the node directory).
//!
//! The config goes through `config::load_dir` (so store paths are set as `junction start`
//! sets them); the listeners are then moved to port 0 and found with `Node::tcp_addr`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use junction::config::{self, Endpoint, NodeConfig, TransportConfig};
use junction::node::Node;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn node_config(dir: &Path) -> NodeConfig {
    let cfg = json!({
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "options": {"mqtt": {"persistence": true, "sys_interval": 1}},
                "roles": [{"name": "anonymous", "permissions": [{
                    "uri": "", "match": "prefix",
                    "allow": {"call": true, "register": true, "publish": true, "subscribe": true}
                }]}]
            }],
            "transports": [
                {
                    "type": "universal",
                    "endpoint": {"type": "tcp", "port": 1, "interface": "127.0.0.1"},
                    "rawsocket": {},
                    "websocket": {"ws": {"type": "websocket"}},
                    "mqtt": {"options": {"realm": "realm1"}}
                },
                {
                    "type": "mqtt",
                    "endpoint": {"type": "tcp", "port": 2, "interface": "127.0.0.1"},
                    "options": {"realm": "realm1"}
                }
            ]
        }]
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut cfg = config::load_dir(dir)
        .unwrap_or_else(|e| panic!("config refused: {e:?}"))
        .expect("config.json present");
    for t in &mut cfg.routers[0].transports {
        let ep = match t {
            TransportConfig::Universal(u) => &mut u.endpoint,
            TransportConfig::Mqtt(m) => &mut m.endpoint,
            _ => unreachable!(),
        };
        if let Endpoint::Tcp(tcp) = ep {
            tcp.port = 0;
        }
    }
    assert!(
        cfg.routers[0].realms[0].store_path.is_some(),
        "load_dir sets the store path of a persistent realm"
    );
    cfg
}

struct TestNode {
    node: Node,
    universal: SocketAddr,
    standalone: SocketAddr,
}

async fn start(dir: &Path) -> TestNode {
    let node = Node::start(&node_config(dir)).await.expect("node starts");
    let universal = node.tcp_addr(0).expect("universal listener");
    let standalone = node.tcp_addr(1).expect("mqtt listener");
    TestNode {
        node,
        universal,
        standalone,
    }
}

/// A rumqttc client whose event loop runs in a task; incoming packets arrive on `rx`.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Packet>,
    task: JoinHandle<()>,
    session_present: bool,
}

impl Client {
    async fn connect(addr: SocketAddr, id: &str, clean: bool) -> Client {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_clean_session(clean);
        opts.set_keep_alive(Duration::from_secs(10));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            break;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    // no automatic reconnect: the test sees the connection end
                    Err(_) => break,
                }
            }
        });
        let ack = match timeout(WAIT, rx.recv()).await {
            Ok(Some(Packet::ConnAck(ack))) => ack,
            other => panic!("{id}: expected CONNACK, got {other:?}"),
        };
        assert_eq!(ack.code, ConnectReturnCode::Success, "{id}: CONNACK code");
        Client {
            client,
            rx,
            task,
            session_present: ack.session_present,
        }
    }

    async fn next(&mut self) -> Packet {
        timeout(WAIT, self.rx.recv())
            .await
            .expect("a packet within 5 s")
            .expect("connection open")
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            if let Packet::SubAck(ack) = self.next().await {
                assert_eq!(ack.return_codes.len(), 1);
                return ack.return_codes[0];
            }
        }
    }

    /// Publishes and waits for the end of its QoS flow (PUBACK / PUBCOMP).
    async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .unwrap();
        if qos == QoS::AtMostOnce {
            return;
        }
        loop {
            match (qos, self.next().await) {
                (QoS::AtLeastOnce, Packet::PubAck(_)) | (QoS::ExactlyOnce, Packet::PubComp(_)) => {
                    return
                }
                _ => {}
            }
        }
    }

    async fn next_publish(&mut self) -> Publish {
        loop {
            if let Packet::Publish(p) = self.next().await {
                return p;
            }
        }
    }

    async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let mut task = self.task;
        if timeout(Duration::from_secs(2), &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[tokio::test]
async fn qos_round_trips_on_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    for (sub_addr, pub_addr, tag) in [
        (n.universal, n.standalone, "u"),
        (n.standalone, n.universal, "m"),
    ] {
        let mut sub = Client::connect(sub_addr, &format!("rt-sub-{tag}"), true).await;
        assert!(!sub.session_present);
        let mut publ = Client::connect(pub_addr, &format!("rt-pub-{tag}"), true).await;
        for (q, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let filter = format!("rt/{tag}/{q}/#");
            assert_eq!(
                sub.subscribe(&filter, qos).await,
                SubscribeReasonCode::Success(qos)
            );
        }
        let big: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        for (q, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            for payload in [vec![], vec![0u8, 255, 1], big.clone()] {
                let topic = format!("rt/{tag}/{q}/x");
                publ.publish(&topic, qos, false, payload.clone()).await;
                let m = sub.next_publish().await;
                assert_eq!(m.topic, topic);
                assert_eq!(m.qos, qos);
                assert_eq!(m.payload.len(), payload.len());
                assert_eq!(&m.payload[..], &payload[..]);
                assert!(!m.retain && !m.dup);
            }
        }
        // delivered at min(publish QoS, subscription QoS)
        publ.publish(
            &format!("rt/{tag}/1/down"),
            QoS::ExactlyOnce,
            false,
            b"2->1".to_vec(),
        )
        .await;
        let m = sub.next_publish().await;
        assert_eq!((m.qos, &m.payload[..]), (QoS::AtLeastOnce, &b"2->1"[..]));
        publ.publish(
            &format!("rt/{tag}/2/up"),
            QoS::AtLeastOnce,
            false,
            b"1->2".to_vec(),
        )
        .await;
        let m = sub.next_publish().await;
        assert_eq!((m.qos, &m.payload[..]), (QoS::AtLeastOnce, &b"1->2"[..]));
        sub.disconnect().await;
        publ.disconnect().await;
    }
    n.node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn retained_messages() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    let mut publ = Client::connect(n.universal, "ret-pub", true).await;
    publ.publish("ret/a", QoS::AtLeastOnce, true, b"first".to_vec())
        .await;
    publ.publish("ret/a", QoS::AtLeastOnce, true, b"second".to_vec())
        .await;
    publ.publish("ret/b/c", QoS::ExactlyOnce, true, b"bc".to_vec())
        .await;

    let mut sub = Client::connect(n.standalone, "ret-sub", true).await;
    assert_eq!(
        sub.subscribe("ret/#", QoS::ExactlyOnce).await,
        SubscribeReasonCode::Success(QoS::ExactlyOnce)
    );
    let mut got = [sub.next_publish().await, sub.next_publish().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        got.iter()
            .map(|m| (m.topic.as_str(), &m.payload[..], m.retain, m.qos))
            .collect::<Vec<_>>(),
        vec![
            ("ret/a", &b"second"[..], true, QoS::AtLeastOnce),
            ("ret/b/c", &b"bc"[..], true, QoS::ExactlyOnce),
        ]
    );
    // live deliveries have retain 0
    publ.publish("ret/a", QoS::AtLeastOnce, true, b"third".to_vec())
        .await;
    let m = sub.next_publish().await;
    assert_eq!((&m.payload[..], m.retain), (&b"third"[..], false));
    // an empty retained message deletes (and is delivered to current subscribers)
    publ.publish("ret/a", QoS::AtLeastOnce, true, vec![]).await;
    let m = sub.next_publish().await;
    assert_eq!((m.topic.as_str(), m.payload.len()), ("ret/a", 0));

    let mut late = Client::connect(n.universal, "ret-late", true).await;
    late.subscribe("ret/a", QoS::AtLeastOnce).await;
    publ.publish("ret/a", QoS::AtLeastOnce, false, b"live".to_vec())
        .await;
    let m = late.next_publish().await;
    assert_eq!(
        (&m.payload[..], m.retain),
        (&b"live"[..], false),
        "a deleted retained message was delivered"
    );
    for c in [publ, sub, late] {
        c.disconnect().await;
    }
    n.node.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn persistent_session_survives_reconnect_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;

    let mut s = Client::connect(n.standalone, "rs-persistent", false).await;
    assert!(!s.session_present, "fresh client id: no session");
    s.subscribe("ps/t", QoS::AtLeastOnce).await;
    s.disconnect().await;

    let mut publ = Client::connect(n.universal, "rs-pub", true).await;
    for i in 0..3u8 {
        publ.publish("ps/t", QoS::AtLeastOnce, false, vec![b'0' + i])
            .await;
    }
    let mut s = Client::connect(n.universal, "rs-persistent", false).await;
    assert!(s.session_present, "session_present after reconnect");
    for i in 0..3u8 {
        let m = s.next_publish().await;
        assert_eq!((&m.payload[..], m.qos), (&[b'0' + i][..], QoS::AtLeastOnce));
    }
    s.disconnect().await;
    publ.publish("ps/t", QoS::AtLeastOnce, false, b"offline".to_vec())
        .await;
    publ.disconnect().await;

    // restart the node on the same directory
    n.node.shutdown(Duration::from_secs(2)).await;
    let n = start(dir.path()).await;
    assert!(dir.path().join("junction-realm1.redb").is_file());
    let mut s = Client::connect(n.standalone, "rs-persistent", false).await;
    assert!(s.session_present, "session lost across a restart");
    let m = s.next_publish().await;
    assert_eq!(&m.payload[..], b"offline");
    s.disconnect().await;

    // clean_session=1 wipes it
    let c = Client::connect(n.universal, "rs-persistent", true).await;
    assert!(!c.session_present);
    c.disconnect().await;
    let s = Client::connect(n.universal, "rs-persistent", false).await;
    assert!(!s.session_present, "session survived clean_session=1");
    s.disconnect().await;
    n.node.shutdown(Duration::from_secs(2)).await;
}
