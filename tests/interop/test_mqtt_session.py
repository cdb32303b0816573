"""MQTT broker: will messages, persistent sessions, offline queue bound, redelivery.

MQTT 3.1.1 sections cited as [MQTT-x.y.z-n].
"""

import socket
import struct
import time

import pytest
from websockets.sync.client import connect as ws_connect

from test_mqtt_common import (HOST, PUBCOMP, PUBREL, TRANSPORTS, WAIT, Paho, Raw, ack_bytes,
                              broker_fixture, clients, connect_bytes, paho,  # noqa: F401 (fixture)
                              paho_for, uid)

broker = broker_fixture(name="mqtt-session")

RAW_PORTS = ["universal", "mqtt"]


# ---------------------------------------------------------------- will


def watch(broker, clients, topic, qos=2):
    w = clients.add(paho(broker.standalone, client_id=uid("watch")))
    assert w.subscribe([(topic, qos)]) == [qos]
    return w


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_will_on_abrupt_close(broker, clients, transport):
    """[MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT,
    with its QoS and retain flag."""
    topic = uid("will") + "/t"
    w = watch(broker, clients, topic)
    will = (topic, b"gone", 1, True)
    if transport == "ws":
        ws = ws_connect(f"ws://{HOST}:{broker.universal}/mqtt", subprotocols=["mqtt"], open_timeout=WAIT)
        ws.send(connect_bytes(uid("wc"), will=will))
        assert ws.recv(timeout=WAIT) == b"\x20\x02\x00\x00"
        ws.socket.shutdown(socket.SHUT_RDWR)  # no WebSocket close frame, no DISCONNECT
        ws.socket.close()
    else:
        r = Raw(broker.port(transport))
        r.connect_ok(uid("wc"), will=will)
        r.abort()
    m = w.get(timeout=3)
    assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"gone", 1, False)
    # retained: a later subscriber gets it with the retain flag
    late = clients.add(paho(broker.universal, client_id=uid("late")))
    assert late.subscribe([(topic, 2)]) == [2]
    m = late.get()
    assert (m.payload, m.qos, m.retain) == (b"gone", 1, True)
    late.publish(topic, b"", qos=1, retain=True)  # clean up the retained will


def test_will_qos_levels(broker, clients):
    p = uid("willq")
    w = watch(broker, clients, f"{p}/+")
    for q in (0, 1, 2):
        r = Raw(broker.universal)
        r.connect_ok(uid("wq"), will=(f"{p}/{q}", f"w{q}".encode(), q, False))
        r.abort()
    got = {m.topic: (m.payload, m.qos, m.retain) for m in w.get_n(3, timeout=3)}
    assert got == {f"{p}/{q}": (f"w{q}".encode(), q, False) for q in (0, 1, 2)}


def test_will_on_keepalive_timeout(broker, clients):
    topic = uid("willka") + "/t"
    w = watch(broker, clients, topic)
    r = clients.add(Raw(broker.universal))
    r.connect_ok(uid("ka"), keepalive=1, will=(topic, b"timeout", 1, False))
    t0 = time.monotonic()
    m = w.get(timeout=3.5)
    assert (m.payload, m.qos) == (b"timeout", 1)
    assert time.monotonic() - t0 >= 0.9, "will published before the keepalive elapsed"


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_no_will_after_disconnect(broker, clients, transport):
    """[MQTT-3.14.4-3]: DISCONNECT discards the will."""
    topic = uid("nowill") + "/t"
    mark = uid("mark")
    w = clients.add(paho(broker.standalone, client_id=uid("watch")))
    assert w.subscribe([(topic, 1), (mark, 2)]) == [1, 2]
    r = clients.add(Raw(broker.port(transport)))
    r.connect_ok(uid("nw"), will=(topic, b"must not", 1, True))
    r.send(b"\xe0\x00")
    assert r.wait_closed(3.0) is not None, "the broker did not close after DISCONNECT [MQTT-3.14.4-1]"
    time.sleep(0.3)
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(mark, b"", qos=2)
    assert w.until(mark) == [], "the will was published after a clean DISCONNECT"
    late = clients.add(paho(broker.universal, client_id=uid("late")))
    assert late.subscribe([(topic, 1), (mark, 2)]) == [1, 2]
    pub.publish(mark, b"", qos=2)
    assert late.until(mark) == [], "a retained will exists after a clean DISCONNECT"


def test_will_on_takeover(broker, clients):
    topic = uid("willtk") + "/t"
    w = watch(broker, clients, topic)
    cid = uid("tk")
    a = clients.add(Raw(broker.universal))
    a.connect_ok(cid, will=(topic, b"taken over", 1, False))
    b = clients.add(Raw(broker.standalone))
    b.connect_ok(cid)
    assert a.wait_closed(3.0) is not None
    m = w.get(timeout=3)
    assert (m.payload, m.qos) == (b"taken over", 1)


def test_will_on_protocol_error(broker, clients):
    """[MQTT-3.1.2-8] / 3.1.2.5: a connection closed for a protocol error publishes its will."""
    topic = uid("willerr") + "/t"
    w = watch(broker, clients, topic)
    r = clients.add(Raw(broker.universal))
    r.connect_ok(uid("err"), will=(topic, b"broken", 0, False))
    r.send(b"\x82\x02\x00\x01")  # SUBSCRIBE without a filter
    assert r.wait_closed(3.0) is not None
    m = w.get(timeout=3)
    assert m.payload == b"broken"


# ---------------------------------------------------------------- persistent sessions


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_persistent_session(broker, clients, transport):
    topic = uid("ps") + "/t"
    mark = uid("mark")
    cid = uid("ps")
    s = clients.add(paho_for(broker, transport, client_id=cid, clean=False))
    assert s.connack[0] is False, "session present on a client id never seen"
    assert s.subscribe([(topic, 1)]) == [1]
    s.disconnect()
    pub = clients.add(paho_for(broker, "universal", client_id=uid("p")))
    for i in range(3):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    pub.publish(topic, b"m3", qos=2)
    s = clients.add(Paho(broker.port(transport), "ws" if transport == "ws" else "tcp", client_id=cid, clean=False))
    assert s.connect() is True, "session_present 0 on resuming a persistent session [MQTT-3.2.2-2]"
    got = s.get_n(4)
    assert [(m.payload, m.qos) for m in got] == [(b"m0", 1), (b"m1", 1), (b"m2", 1), (b"m3", 1)]
    pub.publish(topic, b"live", qos=1)  # the subscription is still there
    assert s.get().payload == b"live"
    s.disconnect()
    # clean_session=1 discards the session [MQTT-3.1.2-6]
    c = clients.add(paho_for(broker, transport, client_id=cid, clean=True))
    assert c.connack[0] is False, "session_present 1 with clean_session=1 [MQTT-3.2.2-1]"
    c.disconnect()
    pub.publish(topic, b"after wipe", qos=1)
    s = clients.add(paho_for(broker, transport, client_id=cid, clean=False))
    assert s.connack[0] is False, "the persistent session survived a clean_session=1 connection"
    assert s.subscribe([(mark, 2)]) == [2]
    pub.publish(mark, b"", qos=2)
    assert s.until(mark) == [], "messages delivered to a wiped session"
    s.disconnect()
    c = clients.add(paho_for(broker, transport, client_id=cid, clean=True))  # leave nothing behind
    c.disconnect()


def test_persistent_session_takeover_keeps_session(broker, clients):
    topic = uid("pstk") + "/t"
    cid = uid("pstk")
    a = clients.add(Raw(broker.universal))
    assert a.connect_ok(cid, clean=False) is False
    assert a.subscribe([(topic, 1)]) == [1]
    b = clients.add(Raw(broker.standalone))
    assert b.connect_ok(cid, clean=False) is True, "takeover of a persistent session: session present 1"
    assert a.wait_closed(3.0) is not None
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(topic, b"to b", qos=1)
    m = b.recv_publish()
    assert (m.payload, m.qos) == (b"to b", 1)
    b.disconnect()
    c = clients.add(Raw(broker.universal))
    c.connect_ok(cid, clean=True)
    c.disconnect()


def test_offline_queue_bound(broker, clients):
    """max_queued_messages 100 (universal port): 150 QoS 1 messages while offline → at most
    100 delivered, the rest dropped and counted in $SYS/broker/publish/messages/dropped."""
    topic = uid("bound") + "/t"
    cid = uid("bound")
    s = clients.add(Raw(broker.universal))
    s.connect_ok(cid, clean=False)
    assert s.subscribe([(topic, 1)]) == [1]
    s.disconnect()
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    infos = [pub.publish(topic, str(i).encode(), qos=1, wait=False) for i in range(150)]
    for info in infos:
        info.wait_for_publish(5)
        assert info.is_published()
    s = clients.add(Paho(broker.universal, client_id=cid, clean=False))
    assert s.connect() is True
    got = [int(m.payload) for m in s.drain_quiet(0.5, 8.0)]
    assert 0 < len(got) <= 100, f"{len(got)} queued messages delivered (limit 100)"
    assert got == sorted(got) and len(set(got)) == len(got), f"out of order or duplicated: {got}"
    s.disconnect()
    sysc = clients.add(paho(broker.universal, client_id=uid("sys")))
    assert sysc.subscribe([("$SYS/broker/publish/messages/dropped", 0)]) == [0]
    deadline = time.monotonic() + 3.0
    dropped = 0
    while time.monotonic() < deadline and dropped < 150 - len(got):
        try:
            dropped = int(sysc.get(timeout=max(0.01, deadline - time.monotonic())).payload)
        except AssertionError:
            break
    assert dropped >= 150 - len(got), f"$SYS/broker/publish/messages/dropped = {dropped}, expected >= {150 - len(got)}"
    c = clients.add(Raw(broker.universal))
    c.connect_ok(cid, clean=True)
    c.disconnect()


# ---------------------------------------------------------------- redelivery


@pytest.mark.parametrize("transport", RAW_PORTS)
def test_qos1_redelivered_with_dup_on_reconnect(broker, clients, transport):
    """[MQTT-4.4.0-1]: an unacknowledged QoS 1 PUBLISH is re-sent on reconnect (clean_session=0)
    with DUP=1 [MQTT-3.3.1-1] and its original packet identifier."""
    port = broker.port(transport)
    topic = uid("redel") + "/t"
    cid = uid("redel")
    r = clients.add(Raw(port))
    assert r.connect_ok(cid, clean=False) is False
    assert r.subscribe([(topic, 1)]) == [1]
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(topic, b"ack me", qos=1)
    first = r.recv_publish(ack=False)
    assert (first.payload, first.qos, first.dup) == (b"ack me", 1, False)
    r.abort()
    r2 = clients.add(Raw(port))
    assert r2.connect_ok(cid, clean=False) is True
    again = r2.recv_publish(ack=False)
    assert (again.topic, again.payload, again.qos) == (topic, b"ack me", 1)
    assert again.dup, "re-sent PUBLISH without DUP=1"
    assert again.pid == first.pid, f"re-sent with packet id {again.pid}, originally {first.pid}"
    r2.send(ack_bytes(4, again.pid))  # PUBACK
    r2.disconnect()
    # acknowledged: not sent a third time
    mark = uid("mark")
    r3 = clients.add(Raw(port))
    assert r3.connect_ok(cid, clean=False) is True
    assert r3.subscribe([(mark, 1)], pid=5) == [1]
    pub.publish(mark, b"m", qos=1)
    m = r3.recv_publish()
    assert m.topic == mark, f"an acknowledged message was re-sent: {m}"
    r3.disconnect()
    c = clients.add(Raw(port))
    c.connect_ok(cid, clean=True)


def test_qos2_redelivery_publish_then_pubrel(broker, clients):
    """QoS 2 towards a client: PUBLISH not PUBREC'd → PUBLISH again with DUP; PUBREC'd but not
    PUBCOMP'd → PUBREL again, and the message itself is not re-sent [MQTT-4.4.0-1]."""
    topic = uid("redel2") + "/t"
    cid = uid("redel2")
    r = clients.add(Raw(broker.universal))
    r.connect_ok(cid, clean=False)
    assert r.subscribe([(topic, 2)]) == [2]
    pub = clients.add(paho(broker.standalone, client_id=uid("p")))
    pub.publish(topic, b"exactly once", qos=2)
    first = r.recv_publish(ack=False)
    assert (first.qos, first.dup) == (2, False)
    r.abort()
    r = clients.add(Raw(broker.universal))
    assert r.connect_ok(cid, clean=False) is True
    again = r.recv_publish(ack=False)
    assert (again.payload, again.qos, again.dup, again.pid) == (b"exactly once", 2, True, first.pid)
    r.send(ack_bytes(5, again.pid))  # PUBREC
    rel = r.expect(PUBREL)
    assert rel.flags == 2 and rel.body == struct.pack("!H", again.pid)
    r.abort()  # no PUBCOMP
    r = clients.add(Raw(broker.universal))
    assert r.connect_ok(cid, clean=False) is True
    p = r.next()
    assert p.type == PUBREL and p.body == struct.pack("!H", first.pid), \
        f"expected the PUBREL to be re-sent first, got {p}"
    r.send(ack_bytes(PUBCOMP, first.pid))
    mark = uid("mark")
    assert r.subscribe([(mark, 1)], pid=3) == [1]
    pub.publish(mark, b"m", qos=1)
    m = r.recv_publish()
    assert m.topic == mark, f"the QoS 2 message was delivered again after PUBREC: {m}"
    r.disconnect()
    c = clients.add(Raw(broker.universal))
    c.connect_ok(cid, clean=True)


def test_inflight_window_queues_the_rest(broker, clients):
    """max_inflight 16 (universal): a client that does not acknowledge gets at most 16 QoS 1
    PUBLISHes; acknowledging releases the rest, in order."""
    topic = uid("infl") + "/t"
    r = clients.add(Raw(broker.universal))
    r.connect_ok(uid("infl"))
    assert r.subscribe([(topic, 1)]) == [1]
    pub = clients.add(paho(broker.standalone, client_id=uid("p")))
    for i in range(40):
        pub.publish(topic, str(i).encode(), qos=1)
    window = []
    try:
        while True:
            window.append(r.recv_publish(timeout=0.5, ack=False))
    except TimeoutError:
        pass
    assert 0 < len(window) <= 16, f"{len(window)} unacknowledged QoS 1 messages in flight (max_inflight 16)"
    got = list(window)
    for m in window:
        r.send(ack_bytes(4, m.pid))
    while len(got) < 40:
        got.append(r.recv_publish(timeout=3))
    assert [int(m.payload) for m in got] == list(range(40))
