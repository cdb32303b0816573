"""MQTT↔WAMP bridge: retained messages, QoS, offline persistent sessions and wills across the
two protocols. Topics under `u8.` (utf8: MQTT text ↔ args[0]) unless the test is about a
native payload (`nj.`, native json).

`exclude`/`eligible` by session id are not tested: an MQTT client cannot learn its WAMP
session id.
"""

import asyncio
import json

import pytest
from autobahn.wamp.types import PublishOptions

from test_bridge_common import MqttPassthru, aio, bridge_fixture, mqtt_none, tid, wsub
from test_mqtt_common import clients  # noqa: F401
from wamp_client import run, sessions

bridge = bridge_fixture(name="bridge-delivery")
ACK = PublishOptions(acknowledge=True)


# ---------------------------------------------------------------- retained


@pytest.mark.parametrize("match", ["exact", "prefix", "wildcard"])
def test_mqtt_retained_to_wamp_get_retained(bridge, clients, match):
    p = tid()
    topic_uri = {"exact": (f"u8.{p}.a.b", None), "prefix": (f"u8.{p}", "prefix"),
                 "wildcard": (f"u8.{p}..b", "wildcard")}[match]
    pub = clients.add(bridge.paho(client_id=tid("pub")))
    pub.publish(f"u8/{p}/a/b", b"kept", qos=1, retain=True)

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            ev = await wsub(w, topic_uri[0], match=topic_uri[1], get_retained=True)
            e = await ev.get(f"retained event ({match})")
            assert e.args == ["kept"], e
            assert e.details.retained is True, f"details.retained = {e.details.retained!r}"
            if match != "exact":
                assert e.details.topic == f"u8.{p}.a.b", e.details
            # without get_retained: nothing
            w2 = await s.open("cbor")
            ev2 = await wsub(w2, topic_uri[0], match=topic_uri[1])
            await ev2.none("retained event without get_retained")
            # live events after that are not marked retained
            await aio(pub.publish, f"u8/{p}/a/b", b"live", 1)
            for q in (ev, ev2):
                e = await q.get("live event")
                assert e.args == ["live"] and not e.details.retained, e

    run(body())


def test_wamp_retain_to_new_mqtt_subscriber(bridge, clients):
    p = tid()

    async def publish():
        async with sessions(bridge.url) as s:
            w = await s.open("msgpack")
            pub = await w.publish(f"u8.{p}.r", "r1", options=PublishOptions(acknowledge=True,
                                                                             retain=True))
            assert pub is not None and isinstance(pub.id, int), pub
            # a later WAMP subscriber with get_retained gets it too
            r = await s.open("json")
            ev = await wsub(r, f"u8.{p}.r", get_retained=True)
            e = await ev.get("retained event (WAMP to WAMP)")
            assert e.args == ["r1"] and e.details.retained is True, e

    run(publish())
    for f in (f"u8/{p}/r", f"u8/{p}/#"):
        c = clients.add(bridge.paho(client_id=tid("sub")))
        assert c.subscribe([(f, 1)]) == [1]
        m = c.get()
        assert (m.topic, m.payload, m.retain) == (f"u8/{p}/r", b"r1", True), f"filter {f}: {m}"
        mqtt_none(c, 0.1)

    # a live WAMP retain publish reaches current MQTT subscribers with RETAIN=0
    async def live():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            await w.publish(f"u8.{p}.r", "r2", options=PublishOptions(acknowledge=True, retain=True))

    run(live())
    m = c.get()
    assert (m.topic, m.payload, m.retain) == (f"u8/{p}/r", b"r2", False), m


def test_empty_retained_deletes_for_both(bridge, clients):
    p = tid()
    pub = clients.add(bridge.paho(client_id=tid("pub")))
    pub.publish(f"u8/{p}/m", b"from-mqtt", qos=1, retain=True)

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            await w.publish(f"u8.{p}.w", "from-wamp", options=PublishOptions(acknowledge=True,
                                                                            retain=True))
            ev = await wsub(w, f"u8.{p}", match="prefix", get_retained=True)
            got = sorted([(await ev.get()).args[0], (await ev.get()).args[0]])
            assert got == ["from-mqtt", "from-wamp"], got
            # MQTT empty retained payloads delete both (the one MQTT and the one WAMP published)
            await aio(pub.publish, f"u8/{p}/m", b"", 1, True)
            await aio(pub.publish, f"u8/{p}/w", b"", 1, True)
            await asyncio.sleep(0.1)
            r = await s.open("cbor")
            ev2 = await wsub(r, f"u8.{p}", match="prefix", get_retained=True)
            ev3 = await wsub(r, f"u8.{p}.w", get_retained=True)
            await ev2.none("retained event after deletion")
            await ev3.none("retained event after deletion")

    run(body())
    c = clients.add(bridge.paho(client_id=tid("sub")))
    assert c.subscribe([(f"u8/{p}/#", 1)]) == [1]
    mqtt_none(c, 0.3)


def test_native_json_retained_both_ways(bridge, clients):
    """Retained payloads go through the mapping too (json)."""
    p = tid()
    pub = clients.add(bridge.paho(client_id=tid("pub")))
    pub.publish(f"nj/{p}/m", b'{"args": [21.5], "kwargs": {"u": "C"}}', qos=1, retain=True)

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("cbor")
            ev = await wsub(w, f"nj.{p}.m", get_retained=True)
            e = await ev.get("retained native event")
            assert (e.args, e.kwargs) == ([21.5], {"u": "C"}), e
            await w.publish(f"nj.{p}.w", 7, options=PublishOptions(acknowledge=True, retain=True))

    run(body())
    c = clients.add(bridge.paho(client_id=tid("sub")))
    assert c.subscribe([(f"nj/{p}/w", 0)]) == [0]
    m = c.get()
    assert m.retain and json.loads(m.payload).get("args") == [7], m


# ---------------------------------------------------------------- QoS


@pytest.mark.parametrize("wser", ["json", "ubjson"])
def test_mqtt_qos_publishers_to_wamp(bridge, clients, wser):
    """QoS 0/1/2 publishers (raw client: PUBACK / PUBREC-PUBREL-PUBCOMP checked) reach WAMP."""
    p = tid()
    r = clients.add(bridge.raw())
    r.connect_ok(tid("raw"))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            ev = await wsub(w, f"u8.{p}", match="prefix")
            for q in (0, 1, 2):
                await aio(r.publish, f"u8/{p}/q{q}", f"qos{q}".encode(), q, False, 10 + q)
            got = [(await ev.get(f"event {i}")) for i in range(3)]
            assert [(e.details.topic, e.args) for e in got] == [
                (f"u8.{p}.q{q}", [f"qos{q}"]) for q in (0, 1, 2)]
            await ev.none()

    run(body())


def test_wamp_publisher_to_mqtt_qos(bridge, clients):
    """An acknowledged WAMP publish gets a Publication; MQTT subscribers at QoS 0/1/2 get it at
    min(granted, 1) (raw clients: exact QoS, acknowledged)."""
    p = tid()
    subs = {}
    for q in (0, 1, 2):
        r = clients.add(bridge.raw())
        r.connect_ok(tid(f"s{q}"))
        assert r.subscribe([(f"u8/{p}/t", q)], pid=5) == [q]
        subs[q] = r

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("cbor")
            pub = await w.publish(f"u8.{p}.t", "x", options=ACK)
            assert pub is not None and isinstance(pub.id, int), pub

    run(body())
    for q, r in subs.items():
        m = r.recv_publish()
        assert (m.topic, m.payload, m.retain) == (f"u8/{p}/t", b"x", False), m
        assert m.qos == min(q, 1), f"subscriber granted QoS {q} got QoS {m.qos} (want {min(q, 1)})"
        r.ping()


def test_wamp_eligible_and_exclude_me_apply_to_mqtt(bridge, clients):
    """`eligible` listing only WAMP sessions leaves MQTT subscribers out; without it they get
    the event (an MQTT client's session id cannot be named, so only this side is testable)."""
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"u8/{p}/e", 1)]) == [1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            r = await s.open("cbor")
            ev = await wsub(r, f"u8.{p}.e")
            await w.publish(f"u8.{p}.e", "eligible r", options=PublishOptions(
                acknowledge=True, eligible=[r.sid]))
            await w.publish(f"u8.{p}.e", "everyone", options=ACK)
            assert [(await ev.get()).args[0] for _ in range(2)] == ["eligible r", "everyone"]

    run(body())
    m = sub.get()
    assert m.payload == b"everyone", f"first MQTT message {m} (eligible ignored for MQTT?)"
    mqtt_none(sub, 0.2)


def test_offline_persistent_session_gets_wamp_events(bridge, clients):
    """clean_session=0 subscriber at QoS 1 goes away; WAMP events are queued and delivered on
    reconnect, in order, at QoS 1."""
    p = tid()
    cid = tid("persist")
    c = clients.add(bridge.paho(client_id=cid, clean=False))
    assert c.subscribe([(f"u8/{p}/o", 1)]) == [1]
    c.disconnect()

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            for i in range(3):
                await w.publish(f"u8.{p}.o", f"m{i}", options=ACK)

    run(body())
    c2 = clients.add(bridge.paho(client_id=cid, clean=False))
    assert c2.connack[0] is True, "session_present should be 1"
    got = [(m.topic, m.payload, m.qos) for m in c2.get_n(3)]
    assert got == [(f"u8/{p}/o", f"m{i}".encode(), 1) for i in range(3)]
    # clean up the persistent session
    c2.disconnect()
    clients.add(bridge.paho(client_id=cid, clean=True))


# ---------------------------------------------------------------- wills


@pytest.mark.parametrize("wser", ["json", "cbor"])
def test_will_reaches_wamp(bridge, clients, wser):
    """A will (native json payload) of a client that dies abruptly reaches WAMP subscribers;
    a client that sends DISCONNECT has its will discarded."""
    p = tid()

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            w.set_payload_codec(MqttPassthru(prefixes=()))  # shows a passthru event, if any
            ev = await wsub(w, f"nj.{p}", match="prefix")
            clean = clients.add(bridge.raw())
            await aio(clean.connect_ok, tid("clean"), True, 60, (f"nj/{p}/clean", b'{"args": ["no"]}', 1, False))
            dying = clients.add(bridge.raw())
            await aio(dying.connect_ok, tid("dying"), True, 60, (f"nj/{p}/will", b'{"args": ["gone"]}', 1, False))
            clean.disconnect()
            await asyncio.sleep(0.1)
            dying.abort()
            e = await ev.get("will event", timeout=3)
            assert (e.details.topic, e.args) == (f"nj.{p}.will", ["gone"]), \
                f"{e} (the will of the client that disconnected cleanly crossed?)"
            await ev.none("will after a clean DISCONNECT")

    run(body())


def test_will_retained_reaches_later_wamp_subscriber(bridge, clients):
    p = tid()
    dying = clients.add(bridge.raw())
    dying.connect_ok(tid("dying"), will=(f"u8/{p}/status", b"offline", 1, True))
    dying.abort()
    watcher = clients.add(bridge.paho(client_id=tid("w")))
    assert watcher.subscribe([(f"u8/{p}/status", 1)]) == [1]
    m = watcher.get()
    assert (m.payload, m.retain) == (b"offline", True), m

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            # a passthru event (wrong mapping) would be shown as args [b"..."], enc_algo "mqtt"
            w.set_payload_codec(MqttPassthru(prefixes=()))
            ev = await wsub(w, f"u8.{p}.status", get_retained=True)
            e = await ev.get("retained will", timeout=3)
            assert e.args == ["offline"] and e.details.retained is True, \
                f"args={e.args!r} enc_algo={e.details.enc_algo!r} retained={e.details.retained!r}"

    run(body())
