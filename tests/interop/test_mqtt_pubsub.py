"""MQTT broker: publish/subscribe, QoS, payloads, ordering, wildcards, retained, $SYS.

paho-mqtt (a real client) over the universal port, the standalone `mqtt` transport and
WebSocket /mqtt; hand-written packets where exact bytes matter. "Nothing else arrived" is
checked with a marker message published after the one that must not arrive.
"""

import os
import re
import time

import pytest

from test_mqtt_common import (PUBCOMP, PUBREC, PUBREL, TRANSPORTS, Raw, ack_bytes,  # noqa: F401
                              broker_fixture, clients, paho, paho_for, publish_bytes, uid)

broker = broker_fixture(name="mqtt-pubsub")


def other(transport):
    """The publisher's transport: a different one than the subscriber's."""
    return TRANSPORTS[(TRANSPORTS.index(transport) + 1) % len(TRANSPORTS)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qos_matrix(broker, clients, transport):
    """Every publish QoS x subscription QoS: delivered at min(pub, sub) [MQTT-3.8.4-6]."""
    p = uid("qos")
    sub = clients.add(paho_for(broker, transport, client_id=uid("s")))
    pub = clients.add(paho_for(broker, other(transport), client_id=uid("p")))
    assert sub.subscribe([(f"{p}/s{q}", q) for q in (0, 1, 2)]) == [0, 1, 2]
    for sq in (0, 1, 2):
        for pq in (0, 1, 2):
            pub.publish(f"{p}/s{sq}", f"{sq}{pq}".encode(), qos=pq)
    got = sub.get_n(9)
    seen = {}
    for m in got:
        sq, pq = int(m.payload[0:1]), int(m.payload[1:2])
        assert m.topic == f"{p}/s{sq}"
        assert not m.retain and not m.dup
        assert m.payload not in seen, f"{m.payload} delivered twice"
        seen[m.payload] = m.qos
    want = {f"{sq}{pq}".encode(): min(sq, pq) for sq in (0, 1, 2) for pq in (0, 1, 2)}
    assert seen == want


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_payloads(broker, clients, transport):
    """0 B, 1 B, every byte value, 100 KiB: delivered unchanged at QoS 0, 1 and 2."""
    topic = uid("pl") + "/t"
    sub = clients.add(paho_for(broker, transport, client_id=uid("s")))
    pub = clients.add(paho_for(broker, other(transport), client_id=uid("p")))
    assert sub.subscribe([(topic, 2)]) == [2]
    payloads = [b"", b"\x00", bytes(range(256)) * 2, os.urandom(100 * 1024)]
    sent = []
    for q in (0, 1, 2):
        for pl in payloads:
            pub.publish(topic, pl, qos=q)
            sent.append((pl, q))
    got = sub.get_n(len(sent), timeout=10)
    # one publisher, one topic, one QoS: in order per QoS [MQTT-4.6.0-6]
    for q in (0, 1, 2):
        want = [pl for pl, pq in sent if pq == q]
        have = [m.payload for m in got if m.qos == q]
        assert [len(x) for x in have] == [len(x) for x in want], f"QoS {q} payload lengths"
        assert have == want, f"QoS {q} payload bytes differ"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_order_qos1(broker, clients, transport):
    """100 QoS 1 messages on one topic arrive in order, each once."""
    topic = uid("ord") + "/t"
    sub = clients.add(paho_for(broker, transport, client_id=uid("s")))
    pub = clients.add(paho_for(broker, transport, client_id=uid("p")))
    assert sub.subscribe([(topic, 1)]) == [1]
    infos = [pub.publish(topic, str(i).encode(), qos=1, wait=False) for i in range(100)]
    for info in infos:
        info.wait_for_publish(5)
        assert info.is_published()
    got = sub.get_n(100, timeout=10)
    assert [int(m.payload) for m in got] == list(range(100))
    assert all(m.qos == 1 for m in got)


def test_order_qos2_raw_publisher(broker, clients):
    """QoS 2 from a client that sends its PUBLISHes back to back (several in flight)."""
    topic = uid("ord2") + "/t"
    sub = clients.add(paho(broker.universal, client_id=uid("s")))
    assert sub.subscribe([(topic, 2)]) == [2]
    r = clients.add(Raw(broker.standalone))
    r.connect_ok(uid("r"))
    for i in range(1, 21):
        r.send(publish_bytes(topic, str(i).encode(), qos=2, pid=i))
    recs = []
    for _ in range(20):
        pid = int.from_bytes(r.expect(PUBREC).body, "big")
        recs.append(pid)
        r.send(ack_bytes(PUBREL, pid))
    assert sorted(recs) == list(range(1, 21))
    comps = [int.from_bytes(r.expect(PUBCOMP).body, "big") for _ in range(20)]
    assert sorted(comps) == list(range(1, 21))
    got = sub.get_n(20)
    assert [int(m.payload) for m in got] == list(range(1, 21))
    assert all(m.qos == 2 for m in got)


def test_qos2_duplicate_publish_delivered_once(broker, clients):
    """A QoS 2 PUBLISH re-sent with DUP before PUBREL is not delivered twice [MQTT-4.3.3-2]."""
    topic = uid("q2dup") + "/t"
    mark = uid("mark")
    sub = clients.add(paho(broker.universal, client_id=uid("s")))
    assert sub.subscribe([(topic, 2), (mark, 2)]) == [2, 2]
    r = clients.add(Raw(broker.universal))
    r.connect_ok(uid("r"))
    r.send(publish_bytes(topic, b"once", qos=2, pid=9))
    assert r.expect(PUBREC).body == b"\x00\x09"
    r.send(publish_bytes(topic, b"once", qos=2, pid=9, dup=True))
    assert r.expect(PUBREC).body == b"\x00\x09"
    r.send(ack_bytes(PUBREL, 9))
    assert r.expect(PUBCOMP).body == b"\x00\x09"
    r.publish(mark, b"m", qos=2, pid=10)
    before = sub.until(mark)
    assert [m.payload for m in before] == [b"once"]


def test_subscribe_several_filters(broker, clients):
    """One SUBSCRIBE, several filters: one return code per filter, in order [MQTT-3.9.3-1]."""
    p = uid("multi")
    r = clients.add(Raw(broker.universal))
    r.connect_ok(uid("r"))
    codes = r.subscribe([(f"{p}/a", 0), (f"{p}/b", 1), (f"{p}/c", 2), (f"{p}/+/d/#", 1), (f"{p}/a", 2)], pid=0x1234)
    # the repeated filter replaces the first subscription [MQTT-3.8.4-3]
    assert codes == [0, 1, 2, 1, 2]
    pub = clients.add(paho(broker.standalone, client_id=uid("p")))
    pub.publish(f"{p}/a", b"A", qos=2)
    m = r.recv_publish()
    assert (m.topic, m.payload, m.qos) == (f"{p}/a", b"A", 2), "re-subscribing did not replace the QoS"
    pub.publish(f"{p}/x/d/y", b"D", qos=2)
    m = r.recv_publish()
    assert (m.topic, m.payload, m.qos) == (f"{p}/x/d/y", b"D", 1)
    pub.publish(f"{p}/b", b"B", qos=0)
    m = r.recv_publish()
    assert (m.topic, m.payload, m.qos) == (f"{p}/b", b"B", 0)
    # the repeated filter is one subscription: a message arrives once
    pub.publish(f"{p}/a", b"A2", qos=1)
    pub.publish(f"{p}/c", b"C", qos=1)
    m1, m2 = r.recv_publish(), r.recv_publish()
    assert [(m1.payload, m1.qos), (m2.payload, m2.qos)] == [(b"A2", 1), (b"C", 1)]


@pytest.mark.parametrize("transport", ["universal", "mqtt"])
def test_unsubscribe(broker, clients, transport):
    """UNSUBACK, then nothing more for that filter; the connection stays open."""
    p = uid("unsub")
    r = clients.add(Raw(broker.port(transport)))
    r.connect_ok(uid("r"))
    assert r.subscribe([(f"{p}/x", 1), (f"{p}/mark", 1)]) == [1, 1]
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(f"{p}/x", b"before", qos=1)
    m = r.recv_publish()
    assert m.payload == b"before"
    r.unsubscribe([f"{p}/x"], pid=77)
    r.unsubscribe([f"{p}/never-subscribed"], pid=78)  # still acknowledged [MQTT-3.10.4-5]
    pub.publish(f"{p}/x", b"after", qos=1)
    pub.publish(f"{p}/mark", b"mark", qos=1)
    m = r.recv_publish()
    assert (m.topic, m.payload) == (f"{p}/mark", b"mark"), f"got {m} after UNSUBACK"
    r.ping()  # still connected
    assert r.wait_closed(0.3) is None


@pytest.mark.parametrize("qos_hash,qos_plus", [(2, 1), (1, 2)])
def test_overlapping_subscriptions_deliver_once_at_max_qos(broker, clients, qos_hash, qos_plus):
    """`a/#` and `a/+` (and more) both match: one copy at the maximum QoS [MQTT-3.3.5-1]
    (mosquitto's default delivers below the maximum in one of these two orders)."""
    p = uid("ovl")
    mark = f"{p}-mark"
    sub = clients.add(paho(broker.universal, client_id=uid("s")))
    assert sub.subscribe([(f"{p}/a/#", qos_hash), (f"{p}/a/+", qos_plus), (f"{p}/a/b", 0),
                          ("+/a/b", 0), (mark, 2)]) == [qos_hash, qos_plus, 0, 0, 2]
    pub = clients.add(paho(broker.standalone, client_id=uid("p")))
    pub.publish(f"{p}/a/b", b"q2", qos=2)
    pub.publish(f"{p}/a/b", b"q1", qos=1)
    pub.publish(f"{p}/a/b/c", b"deep", qos=2)  # only a/# matches
    pub.publish(mark, b"", qos=2)
    before = sub.until(mark)
    # (paho hands a QoS 2 message over on PUBREL: compare without order)
    assert sorted((m.payload, m.qos) for m in before) == sorted([(b"q2", 2), (b"q1", 1), (b"deep", qos_hash)])


def test_wildcards(broker, clients):
    """`+` matches one level (including an empty one), `#` any number including none."""
    p = uid("wc")
    topics = [p, f"{p}/", f"{p}/x", f"{p}/y", f"{p}/x/b/c", f"/{p}/z", f"{p}x/y"]
    expected = {
        "+/x/#": {f"{p}/x", f"{p}/x/b/c"},
        f"{p}/#": {p, f"{p}/", f"{p}/x", f"{p}/y", f"{p}/x/b/c"},
        f"{p}/+": {f"{p}/", f"{p}/x", f"{p}/y"},
        f"{p}/+/b/+": {f"{p}/x/b/c"},
        f"+/{p}/+": {f"/{p}/z"},
        "+/+": {f"{p}/", f"{p}/x", f"{p}/y", f"{p}x/y"},
        "#": set(topics),
        f"{p}": {p},
        f"{p}/x/#": {f"{p}/x", f"{p}/x/b/c"},
    }
    mark = uid("mark")
    subs = {}
    for f in expected:
        c = clients.add(paho(broker.universal, client_id=uid("s")))
        assert c.subscribe([(f, 1), (mark, 2)]) == [1, 2], f
        subs[f] = c
    pub = clients.add(paho(broker.standalone, client_id=uid("p")))
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    pub.publish(mark, b"", qos=2)
    for f, c in subs.items():
        got = [m.topic for m in c.until(mark) if p in m.topic]  # `#`, `+/+` see other tests too
        assert sorted(got) == sorted(expected[f]), f"filter {f!r}"
        assert len(got) == len(set(got)), f"filter {f!r}: duplicates {got}"


def test_sys_topics_not_matched_by_leading_wildcards(broker, clients):
    """[MQTT-4.7.2-1]: `#` and `+/...` do not match topics starting with `$`; `$SYS/#` does."""
    wild = clients.add(paho(broker.universal, client_id=uid("wild")))
    assert wild.subscribe([("#", 0), ("+/broker/#", 0), ("+/broker/uptime", 0), ("+/+/+", 0)]) == [0, 0, 0, 0]
    sys = clients.add(paho(broker.standalone, client_id=uid("sys")))
    assert sys.subscribe([("$SYS/#", 0)]) == [0]
    # wait for a live (not retained) $SYS publication: `wild` was subscribed before it
    deadline = time.monotonic() + 3.0
    live = None
    while time.monotonic() < deadline and live is None:
        try:
            m = sys.get(timeout=max(0.01, deadline - time.monotonic()))
        except AssertionError:
            break
        if m.topic.startswith("$SYS/broker/") and not m.retain:
            live = m
    assert live is not None, "no live $SYS/broker/... publication within 3 s (sys_interval 1)"
    time.sleep(0.3)
    leaked = [m.topic for m in wild.drain_quiet(0.1, 1.0) if m.topic.startswith("$")]
    assert leaked == [], f"wildcard filters matched $-topics: {sorted(set(leaked))[:5]}"


SYS_TOPICS = [
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/publish/messages/dropped",
]
SYS_COUNTERS = [t for t in SYS_TOPICS if t not in ("$SYS/broker/version", "$SYS/broker/uptime")]


def test_sys_topics(broker, clients):
    """$SYS/broker/... every sys_interval (1 s), mosquitto's names, retained."""
    c = clients.add(paho(broker.universal, client_id=uid("sys")))
    assert c.subscribe([("$SYS/#", 0)]) == [0]
    seen = {}
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and not all(t in seen for t in SYS_TOPICS):
        try:
            m = c.get(timeout=max(0.01, deadline - time.monotonic()))
        except AssertionError:
            break
        seen.setdefault(m.topic, m)
    for t in ("$SYS/broker/version", "$SYS/broker/clients/connected"):
        assert t in seen, f"{t} not received within 3 s of subscribing to $SYS/#; got {sorted(seen)}"
    assert seen["$SYS/broker/version"].payload.strip(), "empty version"
    connected = seen["$SYS/broker/clients/connected"].payload.decode()
    assert re.fullmatch(r"\d+", connected) and int(connected) >= 1, f"clients/connected = {connected!r}"
    missing = [t for t in SYS_TOPICS if t not in seen]
    assert missing == [], f"$SYS topics not published within 3 s: {missing}"
    for t in SYS_COUNTERS:
        assert re.fullmatch(rb"\d+", seen[t].payload), f"{t} = {seen[t].payload!r} (not a decimal integer)"
    # retained (as mosquitto): a new subscriber gets them at once, with the retain flag
    late = clients.add(paho(broker.standalone, client_id=uid("sys2")))
    assert late.subscribe([("$SYS/broker/version", 0), ("$SYS/broker/clients/connected", 0)]) == [0, 0]
    first = late.get_n(2, timeout=0.9)
    assert all(m.retain for m in first), f"$SYS topics are not retained: {first}"
    assert {m.topic for m in first} == {"$SYS/broker/version", "$SYS/broker/clients/connected"}


# ---------------------------------------------------------------- retained


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retained_last_message_per_topic(broker, clients, transport):
    p = uid("ret")
    pub = clients.add(paho_for(broker, other(transport), client_id=uid("p")))
    pub.publish(f"{p}/t", b"r1", qos=1, retain=True)
    pub.publish(f"{p}/t", b"r2", qos=1, retain=True)
    sub = clients.add(paho_for(broker, transport, client_id=uid("s")))
    assert sub.subscribe([(f"{p}/t", 2)]) == [2]
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == (f"{p}/t", b"r2", 1, True)
    # a live publication, even with the retain flag, reaches subscribers with retain 0 [MQTT-3.3.1-9]
    pub.publish(f"{p}/t", b"r3", qos=1, retain=True)
    m = sub.get()
    assert (m.payload, m.retain) == (b"r3", False), f"expected live r3 (retain 0) next, got {m}"
    # re-subscribing re-sends the retained message [MQTT-3.8.4-3]
    assert sub.subscribe([(f"{p}/t", 1)]) == [1]
    m = sub.get()
    assert (m.payload, m.retain, m.qos) == (b"r3", True, 1)


def test_retained_on_wildcard_subscribe_and_qos(broker, clients):
    p = uid("retw")
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(f"{p}/a", b"A", qos=2, retain=True)
    pub.publish(f"{p}/b/c", b"BC", qos=0, retain=True)
    pub.publish(f"{p}/d", b"D", qos=1, retain=False)  # not retained
    for sq in (0, 1, 2):
        sub = clients.add(paho(broker.standalone, client_id=uid("s")))
        assert sub.subscribe([(f"{p}/#", sq)]) == [sq]
        got = {m.topic: m for m in sub.get_n(2)}
        assert set(got) == {f"{p}/a", f"{p}/b/c"}
        assert all(m.retain for m in got.values())
        assert got[f"{p}/a"].qos == min(2, sq) and got[f"{p}/a"].payload == b"A"
        assert got[f"{p}/b/c"].qos == 0 and got[f"{p}/b/c"].payload == b"BC"
        pub.publish(f"{p}/a", b"live", qos=0)
        m = sub.get()
        assert (m.topic, m.payload, m.retain) == (f"{p}/a", b"live", False), f"unexpected {m}"
    # `+` subscriptions get retained messages too
    sub = clients.add(paho(broker.universal, client_id=uid("s")))
    assert sub.subscribe([(f"{p}/+/c", 1)]) == [1]
    m = sub.get()
    assert (m.topic, m.payload, m.retain) == (f"{p}/b/c", b"BC", True)


@pytest.mark.parametrize("transport", ["universal", "ws"])
def test_retained_empty_payload_deletes(broker, clients, transport):
    p = uid("retdel")
    pub = clients.add(paho(broker.universal, client_id=uid("p")))
    pub.publish(f"{p}/t", b"keep", qos=1, retain=True)
    current = clients.add(paho_for(broker, transport, client_id=uid("cur")))
    assert current.subscribe([(f"{p}/t", 1)]) == [1]
    assert current.get().payload == b"keep"
    pub.publish(f"{p}/t", b"", qos=1, retain=True)
    # the zero-byte retained message is delivered to current subscribers as normal [MQTT-3.3.1-10]
    m = current.get()
    assert (m.payload, m.retain) == (b"", False)
    new = clients.add(paho_for(broker, transport, client_id=uid("new")))
    assert new.subscribe([(f"{p}/t", 1), (f"{p}/#", 1)]) == [1, 1]
    pub.publish(f"{p}/t", b"live", qos=1)
    m = new.get()
    assert (m.payload, m.retain) == (b"live", False), f"a deleted retained message was delivered: {m}"
