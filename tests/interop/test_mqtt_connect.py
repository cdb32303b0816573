"""MQTT broker: CONNECT handling, keepalive, takeover, protocol errors, MQTT 3.1, WebSocket.

MQTT 3.1.1 sections cited as [MQTT-x.y.z-n]. One node per module (universal port with MQTT on
raw TCP and WebSocket /mqtt, plus a standalone `mqtt` transport).
"""

import time

import paho.mqtt.client as mqtt
import pytest
from websockets.exceptions import InvalidHandshake
from websockets.sync.client import connect as ws_connect

from test_mqtt_common import (CONNACK, HOST, TRANSPORTS, WAIT, Closed, Paho, Raw, broker_fixture,
                              clients, connect_bytes, paho_for, publish_bytes,  # noqa: F401 (fixture)
                              subscribe_bytes, uid)

broker = broker_fixture(name="mqtt-connect")

RAW_PORTS = ["universal", "mqtt"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connect_connack_accepted(broker, clients, transport):
    c = clients.add(Paho(broker.port(transport), "ws" if transport == "ws" else "tcp", client_id=uid("c")))
    assert c.connect() is False  # clean session: session present 0 [MQTT-3.2.2-1]
    sp, rc = c.connack
    assert rc.value == 0


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_connack_bytes_and_empty_client_id(broker, clients, transport):
    port = broker.port(transport)
    r = clients.add(Raw(port))
    r.send(connect_bytes(uid("c"), clean=True))
    p = r.read_packet()
    assert (p.type, p.flags, p.body) == (CONNACK, 0, b"\x00\x00"), p
    # Zero-length client id with clean session 1: accepted, the server assigns one [MQTT-3.1.3-6].
    r2 = clients.add(Raw(port))
    assert r2.connect("", clean=True) == (False, 0)
    r2.ping()
    # A second one at the same time does not take over the first (each gets its own id).
    r3 = clients.add(Raw(port))
    assert r3.connect("", clean=True) == (False, 0)
    r2.ping()
    r3.ping()


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_empty_client_id_with_persistent_session_refused(broker, clients, transport):
    r = clients.add(Raw(broker.port(transport)))
    # [MQTT-3.1.3-8]: CONNACK 0x02 "identifier rejected", then close; session present 0 [MQTT-3.2.2-4].
    assert r.connect("", clean=False) == (False, 2)
    assert r.wait_closed(3.0) is not None, "connection still open after CONNACK 0x02"


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_takeover_closes_first_connection(broker, clients, transport):
    port = broker.port(transport)
    cid = uid("take")
    a = clients.add(Raw(port))
    a.connect_ok(cid)
    b = clients.add(Raw(port))
    b.connect_ok(cid)  # [MQTT-3.1.4-2]: the existing client is disconnected
    assert a.wait_closed(3.0) is not None, "first connection with the same client id was not closed"
    b.ping()


def test_takeover_across_transports(broker, clients):
    """One client id, three transports: the newest connection always wins."""
    cid = uid("take-x")
    first = clients.add(paho_for(broker, "ws", client_id=cid))
    second = clients.add(Raw(broker.standalone))
    second.connect_ok(cid)
    assert first.disconnected.wait(3.0), "WebSocket client not disconnected by a takeover on the mqtt port"
    third = clients.add(Raw(broker.universal))
    third.connect_ok(cid)
    assert second.wait_closed(3.0) is not None
    third.ping()


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_keepalive_enforced(broker, clients, transport):
    """keepalive 1 s: silent → closed after 1.5 s [MQTT-3.1.2-24]; pinging → stays open."""
    port = broker.port(transport)
    silent = clients.add(Raw(port))
    pinger = clients.add(Raw(port))
    silent.connect_ok(uid("ka-silent"), keepalive=1)
    t0 = time.monotonic()
    pinger.connect_ok(uid("ka-ping"), keepalive=1)
    closed_at = None
    while time.monotonic() - t0 < 3.0:
        pinger.ping()
        if closed_at is None and silent.wait_closed(0.4) is not None:
            closed_at = time.monotonic() - t0
    assert closed_at is not None, "a client silent for 3 s with keepalive 1 s was not disconnected"
    assert closed_at >= 0.9, f"disconnected after {closed_at:.2f} s, before the keepalive elapsed"
    assert closed_at <= 3.0, f"disconnected only after {closed_at:.2f} s (1.5 x keepalive = 1.5 s)"
    pinger.ping()  # the pinging client is still connected


def test_keepalive_zero_means_no_timeout(broker, clients):
    r = clients.add(Raw(broker.standalone))
    r.connect_ok(uid("ka0"), keepalive=0)
    assert r.wait_closed(2.0) is None, "keepalive 0 disables the timeout [MQTT-3.1.2-10]"
    r.ping()


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_unsupported_protocol_level(broker, clients, transport):
    """[MQTT-3.1.2-2]: level not supported → CONNACK 0x01, then close."""
    r = clients.add(Raw(broker.port(transport)))
    r.send(connect_bytes(uid("lvl"), level=5))
    p = r.read_packet()
    assert (p.type, p.flags, p.body) == (CONNACK, 0, b"\x00\x01"), f"expected CONNACK 0x01, got {p}"
    assert r.wait_closed(3.0) is not None


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_unknown_protocol_name(broker, clients, transport):
    """[MQTT-3.1.2-1]: bad protocol name → the server may close (or refuse); never accept."""
    r = clients.add(Raw(broker.port(transport)))
    r.send(connect_bytes(uid("name"), proto="MQTX", level=4))
    try:
        p = r.read_packet(3.0)
        assert p.type == CONNACK and p.body[1] != 0, f"CONNECT with protocol name MQTX accepted: {p}"
    except Closed:
        return
    assert r.wait_closed(3.0) is not None


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_second_connect_is_a_protocol_violation(broker, clients, transport):
    r = clients.add(Raw(broker.port(transport)))
    r.connect_ok(uid("twice"))
    r.send(connect_bytes(uid("twice")))  # [MQTT-3.1.0-2]
    try:
        p = r.read_packet(3.0)
        pytest.fail(f"a second CONNECT was answered with {p} instead of a disconnect")
    except Closed:
        pass


@pytest.mark.parametrize("transport", RAW_PORTS)
@pytest.mark.parametrize("first", [b"\xc0\x00", publish_bytes("a/b", b"x"), subscribe_bytes(1, [("a", 0)])],
                         ids=["pingreq", "publish", "subscribe"])
def test_packet_before_connect_disconnects(broker, clients, transport, first):
    """[MQTT-3.1.0-1]: the first packet must be CONNECT."""
    r = clients.add(Raw(broker.port(transport)))
    r.send(first)
    try:
        r.send(connect_bytes(uid("late")))
    except OSError:
        return  # already closed
    try:
        while True:
            p = r.read_packet(3.0)
            assert p.type != CONNACK or p.body[1] != 0, "a CONNECT after another packet was accepted"
    except Closed:
        pass


# ---------------------------------------------------------------- MQTT 3.1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mqtt31_client(broker, clients, transport):
    """paho with MQTTv31 (protocol name MQIsdp, level 3): connect, subscribe, QoS 0/1/2."""
    port = broker.port(transport)
    kind = "ws" if transport == "ws" else "tcp"
    sub = clients.add(Paho(port, kind, client_id=uid("v31s"), protocol=mqtt.MQTTv31))
    sub.connect()
    pub = clients.add(Paho(port, kind, client_id=uid("v31p"), protocol=mqtt.MQTTv31))
    pub.connect()
    topic = uid("v31") + "/t"
    assert sub.subscribe([(topic, 2)]) == [2]
    for q in (0, 1, 2):
        pub.publish(topic, f"m{q}".encode(), qos=q)
    got = sub.get_n(3)
    assert [(m.payload, m.qos) for m in got] == [(b"m0", 0), (b"m1", 1), (b"m2", 2)]


def test_mqtt31_raw_connack(broker, clients):
    r = clients.add(Raw(broker.universal))
    r.send(connect_bytes(uid("v31raw"), proto="MQIsdp", level=3))
    p = r.read_packet()
    assert (p.type, p.body[1]) == (CONNACK, 0), p
    # 3.1.1 and 3.1 clients talk to each other.
    other = clients.add(Raw(broker.standalone))
    other.connect_ok(uid("v311"))
    topic = uid("mix") + "/t"
    assert r.subscribe([(topic, 1)]) == [1]
    other.publish(topic, b"hi", qos=1)
    m = r.recv_publish()
    assert (m.topic, m.payload, m.qos) == (topic, b"hi", 1)


# ---------------------------------------------------------------- WebSocket framing


def test_websocket_subprotocol_and_split_frames(broker):
    """MQTT over WebSocket [MQTT-6.0.0-*]: subprotocol `mqtt` echoed; binary frames; a packet
    split over frames and several packets in one frame are both fine."""
    url = f"ws://{HOST}:{broker.universal}/mqtt"
    with ws_connect(url, subprotocols=["mqtt"], open_timeout=WAIT, close_timeout=1) as ws:
        assert ws.subprotocol == "mqtt"
        cb = connect_bytes(uid("wsraw"))
        ws.send(cb[:5])
        ws.send(cb[5:])
        assert ws.recv(timeout=WAIT) == b"\x20\x02\x00\x00"
        topic = uid("ws") + "/t"
        ws.send(subscribe_bytes(7, [(topic, 0)]) + publish_bytes(topic, b"one frame"))
        got = b""
        deadline = time.monotonic() + WAIT
        while len(got) < 5 + len(publish_bytes(topic, b"one frame")) and time.monotonic() < deadline:
            got += ws.recv(timeout=WAIT)
        assert got[:5] == b"\x90\x03\x00\x07\x00", got
        assert got[5:] == publish_bytes(topic, b"one frame")
    # the MQTT 3.1 subprotocol name
    with ws_connect(url, subprotocols=["mqttv3.1"], open_timeout=WAIT, close_timeout=1) as ws:
        assert ws.subprotocol == "mqttv3.1"
        ws.send(connect_bytes(uid("ws31"), proto="MQIsdp", level=3))
        assert ws.recv(timeout=WAIT) == b"\x20\x02\x00\x00"


def test_websocket_wamp_still_served_next_to_mqtt(broker):
    """/ws keeps speaking WAMP; /mqtt does not accept a WAMP subprotocol."""
    url = f"ws://{HOST}:{broker.universal}/ws"
    with ws_connect(url, subprotocols=["wamp.2.json"], open_timeout=WAIT, close_timeout=1) as ws:
        assert ws.subprotocol == "wamp.2.json"
        ws.send('[1, "realm1", {"roles": {"subscriber": {}}}]')
        assert ws.recv(timeout=WAIT).startswith("[2,")
    try:
        with ws_connect(f"ws://{HOST}:{broker.universal}/mqtt", subprotocols=["wamp.2.json"],
                        open_timeout=WAIT, close_timeout=1) as ws:
            negotiated = ws.subprotocol
    except (InvalidHandshake, OSError):
        negotiated = None  # refusing the upgrade is fine
    assert negotiated != "wamp.2.json", "/mqtt negotiated a WAMP subprotocol"
