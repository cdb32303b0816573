//! RawSocket transport tests with a raw `TcpStream` client: byte-exact handshakes and error
//! replies, limit negotiation, PING/PONG, framing errors, and WAMP sessions over json and
//! msgpack. Plus property tests of the codec (chunking invariance, no panics).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use junction::config::*;
use junction::router::RealmHandle;
use junction::transport::rawsocket::{
    self, Frame, FrameError, FrameKind, RawSocketCodec, RawSocketEndpoint,
};
use junction::wamp::session::SessionConfig;
use junction::wire::Serializer;
use proptest::prelude::*;
use serde_json::{json, Value as J};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------

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

/// A RawSocket listener on 127.0.0.1:0 serving realm `realm1` (anonymous may do anything).
struct Server {
    addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Server {
    async fn start(settings: RawSocketSettings) -> Self {
        Self::start_with(settings, false).await
    }

    /// `refuse`: answer every connection with `refuse_max_connections`.
    async fn start_with(settings: RawSocketSettings, refuse: bool) -> Self {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let realm = RealmHandle::spawn(
            RealmConfig {
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
            },
            1024,
            cancel.clone(),
            &tracker,
        )
        .expect("in-memory realm starts");
        let mut realms = HashMap::new();
        realms.insert("realm1".to_string(), realm);
        let ep = Arc::new(RawSocketEndpoint {
            settings,
            session: SessionConfig {
                auth: Default::default(),
                realms: Arc::new(realms),
                anonymous_role: "anonymous".into(),
                outbox_messages: 64,
                transport: "rawsocket",
            },
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (c, t) = (cancel.clone(), tracker.clone());
        tracker.spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    () = c.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(_) => continue,
                    },
                };
                tcp.set_nodelay(true).unwrap();
                if refuse {
                    t.spawn(rawsocket::refuse_max_connections(tcp));
                } else {
                    t.spawn(rawsocket::serve(tcp, ep.clone(), c.clone()));
                }
            }
        });
        Self {
            addr,
            cancel,
            tracker,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        timeout(WAIT, self.tracker.wait())
            .await
            .expect("all tasks end after cancel");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn settings() -> RawSocketSettings {
    RawSocketSettings::default()
}

// ------------------------------------------------------------------------------------------
// Raw client
// ------------------------------------------------------------------------------------------

/// Connects and sends `hs`; returns the 4-octet reply.
async fn handshake(addr: SocketAddr, hs: [u8; 4]) -> (TcpStream, [u8; 4]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&hs).await.unwrap();
    let mut reply = [0u8; 4];
    timeout(WAIT, s.read_exact(&mut reply))
        .await
        .expect("a handshake reply within 5 s")
        .expect("a 4-octet handshake reply");
    (s, reply)
}

/// Asserts that the server closes the connection (EOF or reset) without sending anything.
async fn expect_closed(mut s: TcpStream) {
    let mut buf = [0u8; 64];
    match timeout(WAIT, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("expected close, got {:02x?}", &buf[..n]),
        Err(_) => panic!("connection still open after 5 s"),
    }
}

/// Reads until EOF (or reset); returns every octet read.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = timeout(WAIT, s.read_to_end(&mut out))
        .await
        .expect("connection closed within 5 s");
    out
}

async fn send_frame(s: &mut TcpStream, kind: u8, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut buf = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    buf.extend_from_slice(payload);
    s.write_all(&buf).await.unwrap();
}

/// Reads one frame: (header octet 0, payload).
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 4];
    timeout(WAIT, s.read_exact(&mut h))
        .await
        .expect("a frame within 5 s")
        .expect("a frame header");
    let len = (usize::from(h[0] & 0x08) << 21)
        | (usize::from(h[1]) << 16)
        | (usize::from(h[2]) << 8)
        | usize::from(h[3]);
    let mut payload = vec![0u8; len];
    timeout(WAIT, s.read_exact(&mut payload))
        .await
        .expect("a frame payload within 5 s")
        .expect("the frame payload");
    (h[0], payload)
}

/// A WAMP client over a raw RawSocket connection, encoding with serde_json / rmp-serde.
struct Wamp {
    s: TcpStream,
    ser: Serializer,
}

impl Wamp {
    async fn connect(addr: SocketAddr, ser: Serializer) -> Self {
        let id = match ser {
            Serializer::Json => 1,
            Serializer::MsgPack => 2,
            other => panic!("test client does not speak {other:?}"),
        };
        let (s, reply) = handshake(addr, [0x7F, 0xF0 | id, 0, 0]).await;
        assert_eq!(reply, [0x7F, 0xF0 | id, 0, 0]);
        Self { s, ser }
    }

    fn encode(&self, v: &J) -> Vec<u8> {
        match self.ser {
            Serializer::Json => serde_json::to_vec(v).unwrap(),
            _ => rmp_serde::to_vec(v).unwrap(),
        }
    }

    fn decode(&self, b: &[u8]) -> J {
        match self.ser {
            Serializer::Json => serde_json::from_slice(b).unwrap(),
            _ => rmp_serde::from_slice(b).unwrap(),
        }
    }

    async fn send(&mut self, v: J) {
        let b = self.encode(&v);
        send_frame(&mut self.s, 0, &b).await;
    }

    async fn recv(&mut self) -> J {
        loop {
            let (h0, payload) = read_frame(&mut self.s).await;
            match h0 {
                0 => return self.decode(&payload),
                // Answer server PINGs.
                1 => send_frame(&mut self.s, 2, &payload).await,
                _ => panic!("unexpected frame type octet {h0:#x}"),
            }
        }
    }

    async fn join(&mut self) -> u64 {
        self.send(hello()).await;
        let w = self.recv().await;
        assert_eq!(w[0], 2, "WELCOME: {w}");
        w[1].as_u64().unwrap()
    }
}

fn hello() -> J {
    json!([1, "realm1", {"roles": {"publisher": {}, "subscriber": {}, "caller": {}, "callee": {}}}])
}

// ------------------------------------------------------------------------------------------
// Handshake
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn handshake_each_serializer() {
    let srv = Server::start(settings()).await;
    for id in 1u8..=4 {
        let (_s, reply) = handshake(srv.addr, [0x7F, 0xF0 | id, 0, 0]).await;
        assert_eq!(reply, [0x7F, 0xF0 | id, 0, 0], "serializer {id}");
        // The client's own LLLL does not change ours.
        let (_s, reply) = handshake(srv.addr, [0x7F, id, 0, 0]).await;
        assert_eq!(
            reply,
            [0x7F, 0xF0 | id, 0, 0],
            "serializer {id}, client LLLL 0"
        );
    }
    assert_eq!(
        handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await.1,
        [0x7F, 0xF1, 0x00, 0x00]
    );
    srv.stop().await;
}

#[tokio::test]
async fn handshake_unsupported_serializer() {
    let srv = Server::start(settings()).await;
    for id in 5u8..=15 {
        let (s, reply) = handshake(srv.addr, [0x7F, 0xF0 | id, 0, 0]).await;
        assert_eq!(reply, [0x7F, 0x10, 0, 0], "serializer {id}");
        expect_closed(s).await;
    }
    srv.stop().await;

    // A serializer we implement but this transport does not allow.
    let srv = Server::start(RawSocketSettings {
        serializers: vec![Serializer::Json],
        ..settings()
    })
    .await;
    for id in [2u8, 3, 4] {
        let (s, reply) = handshake(srv.addr, [0x7F, 0xF0 | id, 0, 0]).await;
        assert_eq!(reply, [0x7F, 0x10, 0, 0], "serializer {id}");
        expect_closed(s).await;
    }
    let (s, reply) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0xF1, 0, 0]);
    drop(s);
    srv.stop().await;
}

#[tokio::test]
async fn handshake_reserved_bits() {
    let srv = Server::start(settings()).await;
    for tail in [[0u8, 1], [1, 0], [0xFF, 0xFF]] {
        let (s, reply) = handshake(srv.addr, [0x7F, 0xF1, tail[0], tail[1]]).await;
        assert_eq!(reply, [0x7F, 0x30, 0, 0]);
        expect_closed(s).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn handshake_without_reply() {
    let srv = Server::start(settings()).await;
    // Serializer 0 is illegal; a wrong magic octet is not RawSocket: close, no reply.
    for hs in [[0x7F, 0xF0, 0, 0], [0x16, 0x03, 0x01, 0x00], [0x00; 4]] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(&hs).await.unwrap();
        expect_closed(s).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn handshake_timeout() {
    let srv = Server::start(RawSocketSettings {
        open_handshake_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    // Half a handshake.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(&[0x7F, 0xF1]).await.unwrap();
    expect_closed(s).await;
    // A handshake but no HELLO: the same deadline covers it.
    let (s, reply) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0xF1, 0, 0]);
    expect_closed(s).await;
    srv.stop().await;
}

#[tokio::test]
async fn refuse_max_connections_replies_error_4() {
    let srv = Server::start_with(settings(), true).await;
    let (s, reply) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0x40, 0x00, 0x00]);
    expect_closed(s).await;
    // Not RawSocket: just closed.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    expect_closed(s).await;
    srv.stop().await;
}

#[tokio::test]
async fn limit_negotiation() {
    for (max, llll) in [
        (1 << 24, 0xF),
        (1_048_576, 0xB),
        (1_048_577, 0xC),
        (65_536, 0x7),
        (1000, 0x1),
        (1024, 0x1),
        (512, 0x0),
        (100, 0x0),
    ] {
        let srv = Server::start(RawSocketSettings {
            max_message_size: max,
            ..settings()
        })
        .await;
        let (s, reply) = handshake(srv.addr, [0x7F, 0xF2, 0, 0]).await;
        assert_eq!(
            reply,
            [0x7F, (llll << 4) | 2, 0, 0],
            "max_message_size {max}"
        );
        drop(s);
        srv.stop().await;
    }
}

// ------------------------------------------------------------------------------------------
// Frames
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let srv = Server::start(settings()).await;
    let (mut s, _) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    for payload in [&b"hello ping"[..], b"", &[0u8, 1, 2, 255]] {
        send_frame(&mut s, 1, payload).await;
        assert_eq!(read_frame(&mut s).await, (0x02, payload.to_vec()));
    }
    // PINGs interleave with WAMP: the session still works.
    let mut c = Wamp {
        s,
        ser: Serializer::Json,
    };
    c.join().await;
    send_frame(&mut c.s, 1, b"after join").await;
    assert_eq!(read_frame(&mut c.s).await, (0x02, b"after join".to_vec()));
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn frame_over_limit_closes() {
    // 1000 → LLLL 1: 1024 octets accepted, 1025 refused from the header alone.
    let srv = Server::start(RawSocketSettings {
        max_message_size: 1000,
        ..settings()
    })
    .await;
    let (s, reply) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0x11, 0, 0]);
    let mut c = Wamp {
        s,
        ser: Serializer::Json,
    };
    // A HELLO of exactly 1024 octets is fine.
    let padded = |pad: String| {
        let mut h = hello();
        h[2]["pad"] = J::String(pad);
        serde_json::to_vec(&h).unwrap()
    };
    let base = padded(String::new()).len();
    let msg = padded("x".repeat(1024 - base));
    assert_eq!(msg.len(), 1024);
    send_frame(&mut c.s, 0, &msg).await;
    let w = c.recv().await;
    assert_eq!(w[0], 2, "WELCOME: {w}");
    // One more octet: closed without anything sent (only the header goes out).
    c.s.write_all(&[0x00, 0x00, 0x04, 0x01]).await.unwrap();
    assert!(read_to_close(&mut c.s).await.is_empty());

    // The X bit with a non-zero length is over any limit.
    let (mut s, _) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    s.write_all(&[0x08, 0x00, 0x00, 0x01]).await.unwrap();
    expect_closed(s).await;
    srv.stop().await;
}

#[tokio::test]
async fn reserved_frame_type_closes() {
    let srv = Server::start(settings()).await;
    for h0 in [0x03u8, 0x04, 0x07, 0x10, 0x80] {
        let (mut s, _) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
        s.write_all(&[h0, 0, 0, 2, b'[', b']']).await.unwrap();
        expect_closed(s).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn byte_at_a_time() {
    let srv = Server::start(settings()).await;
    let (s, _) = handshake(srv.addr, [0x7F, 0xF1, 0, 0]).await;
    let mut c = Wamp {
        s,
        ser: Serializer::Json,
    };
    let payload = serde_json::to_vec(&hello()).unwrap();
    let mut wire = vec![0, 0, 0, payload.len() as u8];
    wire.extend_from_slice(&payload);
    for b in wire {
        c.s.write_all(&[b]).await.unwrap();
        c.s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let w = c.recv().await;
    assert_eq!(w[0], 2, "WELCOME: {w}");
    drop(c);
    srv.stop().await;
}

// ------------------------------------------------------------------------------------------
// WAMP
// ------------------------------------------------------------------------------------------

async fn pubsub(ser: Serializer) {
    let srv = Server::start(settings()).await;
    let mut sub = Wamp::connect(srv.addr, ser).await;
    let mut publ = Wamp::connect(srv.addr, ser).await;
    let sub_id = sub.join().await;
    let pub_id = publ.join().await;
    assert_ne!(sub_id, pub_id);

    sub.send(json!([32, 1, {}, "com.example.topic"])).await;
    let subscribed = sub.recv().await;
    assert_eq!(subscribed[0], 33, "SUBSCRIBED: {subscribed}");
    assert_eq!(subscribed[1], 1);
    let subscription = subscribed[2].as_u64().unwrap();

    publ.send(
        json!([16, 7, {"acknowledge": true}, "com.example.topic", ["hello", 42], {"k": "v"}]),
    )
    .await;
    let published = publ.recv().await;
    assert_eq!(published[0], 17, "PUBLISHED: {published}");
    assert_eq!(published[1], 7);
    let publication = published[2].as_u64().unwrap();

    let ev = sub.recv().await;
    assert_eq!(ev[0], 36, "EVENT: {ev}");
    assert_eq!(ev[1].as_u64(), Some(subscription));
    assert_eq!(ev[2].as_u64(), Some(publication));
    assert_eq!(ev[4], json!(["hello", 42]));
    assert_eq!(ev[5], json!({"k": "v"}));

    // GOODBYE: the router answers and closes.
    sub.send(json!([6, {}, "wamp.close.close_realm"])).await;
    let bye = sub.recv().await;
    assert_eq!(bye[0], 6, "GOODBYE: {bye}");
    assert_eq!(bye[2], "wamp.close.goodbye_and_out");
    // The router waits for the client to close first (no close frame in RawSocket).
    let mut b = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(300), sub.s.read(&mut b))
            .await
            .is_err(),
        "the router keeps the connection open for the client to close"
    );
    sub.s.shutdown().await.unwrap();
    let t = std::time::Instant::now();
    assert!(read_to_close(&mut sub.s).await.is_empty());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "closed at our EOF"
    );

    // Shutdown: the remaining session is told and closed.
    srv.cancel.cancel();
    let bye = publ.recv().await;
    assert_eq!(bye[0], 6, "GOODBYE on shutdown: {bye}");
    assert!(read_to_close(&mut publ.s).await.is_empty());
    drop((sub, publ));
    srv.stop().await;
}

#[tokio::test]
async fn pubsub_json() {
    pubsub(Serializer::Json).await;
}

#[tokio::test]
async fn pubsub_msgpack() {
    pubsub(Serializer::MsgPack).await;
}

#[tokio::test]
async fn goodbye_closes_after_wait_if_the_client_does_not() {
    let srv = Server::start(settings()).await;
    let mut c = Wamp::connect(srv.addr, Serializer::MsgPack).await;
    c.join().await;
    c.send(json!([6, {}, "wamp.close.close_realm"])).await;
    assert_eq!(c.recv().await[0], 6);
    let t = std::time::Instant::now();
    assert!(read_to_close(&mut c.s).await.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    srv.stop().await;
}

#[tokio::test]
async fn outgoing_over_client_limit_closes() {
    let srv = Server::start(settings()).await;
    // This client receives at most 1024 octets (LLLL 1).
    let (s, reply) = handshake(srv.addr, [0x7F, 0x11, 0, 0]).await;
    assert_eq!(reply, [0x7F, 0xF1, 0, 0]);
    let mut sub = Wamp {
        s,
        ser: Serializer::Json,
    };
    sub.join().await;
    sub.send(json!([32, 1, {}, "com.example.big"])).await;
    assert_eq!(sub.recv().await[0], 33);

    let mut publ = Wamp::connect(srv.addr, Serializer::Json).await;
    publ.join().await;
    publ.send(json!([16, 2, {}, "com.example.big", ["small"]]))
        .await;
    publ.send(json!([16, 3, {}, "com.example.big", ["x".repeat(1100)]]))
        .await;
    // The small event arrives; the big one cannot be delivered: the connection closes and
    // no frame over 1024 octets is ever sent.
    let ev = sub.recv().await;
    assert_eq!(ev[4], json!(["small"]));
    let rest = read_to_close(&mut sub.s).await;
    assert!(
        rest.is_empty(),
        "nothing after the small event: {rest:02x?}"
    );
    drop((sub, publ));
    srv.stop().await;
}

#[tokio::test]
async fn auto_ping() {
    let srv = Server::start(RawSocketSettings {
        auto_ping_interval: Some(Duration::from_millis(100)),
        auto_ping_timeout: Some(Duration::from_millis(300)),
        ..settings()
    })
    .await;
    // A client answering PINGs stays connected across several intervals.
    let mut c = Wamp::connect(srv.addr, Serializer::Json).await;
    c.join().await;
    for _ in 0..3 {
        let (h0, payload) = read_frame(&mut c.s).await;
        assert_eq!(h0, 0x01, "a PING");
        send_frame(&mut c.s, 2, &payload).await;
    }
    c.send(json!([32, 1, {}, "com.example.t"])).await;
    assert_eq!(c.recv().await[0], 33);

    // A client that never answers is dropped after the timeout.
    let mut mute = Wamp::connect(srv.addr, Serializer::Json).await;
    mute.join().await;
    let got = read_to_close(&mut mute.s).await;
    let mut buf = BytesMut::from(&got[..]);
    let mut codec = RawSocketCodec::default();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        assert_ne!(f.kind, FrameKind::Message, "only PINGs before the close");
    }
    assert!(buf.is_empty());
    drop((c, mute));
    srv.stop().await;
}

// ------------------------------------------------------------------------------------------
// Codec properties
// ------------------------------------------------------------------------------------------

/// Decodes `wire` fed in chunks of the given sizes (cycled): the frames, and whether it
/// failed.
fn decode_chunked(wire: &[u8], chunks: &[usize], max: usize) -> (Vec<Frame>, bool) {
    let mut codec = RawSocketCodec::new(max, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        buf.put_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    (0u8..3, proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(k, p)| Frame {
        kind: FrameKind::from_bits(k).unwrap(),
        payload: Bytes::from(p),
    })
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_frames(
        frames in proptest::collection::vec(frame_strategy(), 0..12),
        chunks in proptest::collection::vec(1usize..700, 1..20),
    ) {
        let mut codec = RawSocketCodec::default();
        let mut wire = BytesMut::new();
        for f in &frames {
            codec.encode(f.clone(), &mut wire).unwrap();
        }
        let (got, failed) = decode_chunked(&wire, &chunks, 1 << 24);
        prop_assert!(!failed);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        wire in proptest::collection::vec(any::<u8>(), 0..2000),
        chunks in proptest::collection::vec(1usize..64, 1..20),
        max in 0usize..1500,
    ) {
        let whole = decode_chunked(&wire, &[wire.len().max(1)], max);
        let chunked = decode_chunked(&wire, &chunks, max);
        prop_assert_eq!(&whole, &chunked);
        for f in &whole.0 {
            prop_assert!(f.payload.len() <= max);
        }
    }

    #[test]
    fn headers_with_small_type_octets(
        // Mostly-valid streams: header octet 0 in 0..16 exercises types, X and reserved types.
        parts in proptest::collection::vec((0u8..16, 0u16..300), 0..10),
        chunks in proptest::collection::vec(1usize..32, 1..20),
    ) {
        let mut wire = Vec::new();
        for (h0, len) in &parts {
            wire.extend_from_slice(&[*h0, 0, (*len >> 8) as u8, *len as u8]);
            wire.extend(std::iter::repeat_n(0xA5u8, usize::from(*len)));
        }
        let whole = decode_chunked(&wire, &[wire.len().max(1)], 1 << 24);
        let chunked = decode_chunked(&wire, &chunks, 1 << 24);
        prop_assert_eq!(&whole, &chunked);
        // The oracle: type 3..7 fails; X with a non-zero length fails (over 2^24); X with a
        // zero length waits for 2^24 octets.
        let mut valid = 0;
        let mut fails = false;
        for (h0, len) in &parts {
            if h0 & 0x07 >= 3 || (h0 & 0x08 != 0 && *len != 0) {
                fails = true;
                break;
            }
            if h0 & 0x08 != 0 {
                break;
            }
            valid += 1;
        }
        prop_assert_eq!(whole.0.len(), valid);
        prop_assert_eq!(whole.1, fails);
    }
}

#[test]
fn codec_error_kinds() {
    let mut codec = RawSocketCodec::new(100, 100);
    let mut buf = BytesMut::from(&[0x00u8, 0x00, 0x00, 101][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong { len: 101, max: 100 })
    ));
    let mut buf = BytesMut::from(&[0x05u8, 0, 0, 0][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::ReservedType(5))
    ));
    let mut buf = BytesMut::from(&[0x40u8, 0, 0, 0][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::ReservedBits(0x40))
    ));
}
