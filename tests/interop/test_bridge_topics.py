"""MQTT↔WAMP bridge: topic mapping (MQTT `a/b/c` ↔ WAMP `a.b.c`).

WAMP exact, prefix and wildcard subscriptions receive MQTT publications; MQTT filters (`+`,
`#`, both in one filter, `a/#` matching `a`) receive WAMP publications under the concrete
topic; MQTT topics that cannot be WAMP URIs stay MQTT-only. The `u8.` prefix is mapped as utf8
(MQTT text ↔ args[0]) so payloads are easy to compare.
"""

import asyncio

from autobahn.wamp.types import PublishOptions

from test_bridge_common import aio, bridge_fixture, mqtt_none, tid, wsub
from test_mqtt_common import clients  # noqa: F401
from wamp_client import run, sessions

bridge = bridge_fixture(name="bridge-topics")
ACK = PublishOptions(acknowledge=True)


def test_mqtt_publication_reaches_exact_prefix_wildcard(bridge, clients):
    p = tid()
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            exact = await wsub(w, f"u8.{p}.a.b")
            exact_other = await wsub(w, f"u8.{p}.a")
            prefix = await wsub(w, f"u8.{p}.a", match="prefix")
            prefix_top = await wsub(w, f"u8.{p}", match="prefix")
            wildcard = await wsub(w, f"u8.{p}..b", match="wildcard")
            await aio(pub.publish, f"u8/{p}/a/b", b"ab", 1)
            await aio(pub.publish, f"u8/{p}/c/b", b"cb", 1)
            await aio(pub.publish, f"u8/{p}/a/b/d", b"abd", 1)

            e = await exact.get("exact event")
            assert e.args == ["ab"] and e.kwargs == {}, e
            got = [(await prefix.get("prefix event")) for _ in range(2)]
            assert [(x.details.topic, x.args) for x in got] == [
                (f"u8.{p}.a.b", ["ab"]), (f"u8.{p}.a.b.d", ["abd"])]
            got = [(await prefix_top.get("prefix event")) for _ in range(3)]
            assert [(x.details.topic, x.args) for x in got] == [
                (f"u8.{p}.a.b", ["ab"]), (f"u8.{p}.c.b", ["cb"]), (f"u8.{p}.a.b.d", ["abd"])]
            got = [(await wildcard.get("wildcard event")) for _ in range(2)]
            assert [(x.details.topic, x.args) for x in got] == [
                (f"u8.{p}.a.b", ["ab"]), (f"u8.{p}.c.b", ["cb"])]
            await asyncio.sleep(0.3)
            for name, ev in [("exact", exact), ("exact a", exact_other), ("prefix", prefix),
                             ("prefix top", prefix_top), ("wildcard", wildcard)]:
                assert ev.drain() == [], f"{name} subscription got extra events"

    run(body())


def test_wamp_publication_reaches_mqtt_filters(bridge, clients):
    """One client per filter (so overlap does not hide anything); topic is the concrete one."""
    p = tid()
    filters = {
        "exact": f"u8/{p}/a/b",
        "plus": f"u8/{p}/+/b",
        "hash": f"u8/{p}/#",
        "plus_hash": f"+/{p}/+/#",
        "parent_hash": f"u8/{p}/a/#",  # also matches u8/p/a itself
        "other": f"u8/{p}/x",
    }
    subs = {}
    for name, f in filters.items():
        subs[name] = clients.add(bridge.paho(client_id=tid(name)))
        assert subs[name].subscribe([(f, 1)]) == [1], name

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            for uri, arg in [(f"u8.{p}.a.b", "1"), (f"u8.{p}.a", "2"), (f"u8.{p}.c.b.d", "3")]:
                await w.publish(uri, arg, options=ACK)

    run(body())
    want = {
        "exact": [(f"u8/{p}/a/b", b"1")],
        "plus": [(f"u8/{p}/a/b", b"1")],
        "hash": [(f"u8/{p}/a/b", b"1"), (f"u8/{p}/a", b"2"), (f"u8/{p}/c/b/d", b"3")],
        "plus_hash": [(f"u8/{p}/a/b", b"1"), (f"u8/{p}/a", b"2"), (f"u8/{p}/c/b/d", b"3")],
        "parent_hash": [(f"u8/{p}/a/b", b"1"), (f"u8/{p}/a", b"2")],
        "other": [],
    }
    for name, expected in want.items():
        got = [(m.topic, m.payload) for m in subs[name].get_n(len(expected))]
        assert got == expected, f"filter {filters[name]!r}: got {got}, want {expected}"
    mqtt_none(subs["other"], settle=0.3)
    for name, c in subs.items():
        assert c.messages.empty(), f"filter {filters[name]!r} got extra {c.messages.get_nowait()}"


def test_mqtt_topics_that_are_not_uris_stay_mqtt(bridge, clients):
    """A level with `.`, empty levels, whitespace: MQTT subscribers get them, WAMP does not."""
    p = tid()
    bad = [f"u8/{p}/a.b/c", f"u8/{p}//c", f"u8/{p}/c/", f"u8/{p}/a b", f"u8/{p}/tab\tx"]
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"u8/{p}/#", 1)]) == [1]
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            ev = await wsub(w, f"u8.{p}", match="prefix")
            for t in bad:
                await aio(pub.publish, t, b"bad", 1)
            await aio(pub.publish, f"u8/{p}/ok", b"ok", 1)
            e = await ev.get("event for the valid topic")
            assert (e.details.topic, e.args) == (f"u8.{p}.ok", ["ok"]), \
                f"first WAMP event is {e} (a non-URI MQTT topic crossed?)"
            await ev.none("event for a non-URI MQTT topic")
            assert w.is_attached()

    run(body())
    got = [(m.topic, m.payload) for m in sub.get_n(len(bad) + 1)]
    assert got == [(t, b"bad") for t in bad] + [(f"u8/{p}/ok", b"ok")]


def test_mqtt_publisher_own_subscription_and_wamp_both_get_it(bridge, clients):
    """An MQTT publish is delivered once to MQTT (including the publisher's own matching
    subscription) and once to each WAMP subscriber; a WAMP publish once to each MQTT client."""
    p = tid()
    c = clients.add(bridge.paho(client_id=tid("c")))
    assert c.subscribe([(f"u8/{p}/#", 1), (f"u8/{p}/+", 1)]) == [1, 1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("cbor")
            ev = await wsub(w, f"u8.{p}.x")
            ev2 = await wsub(w, f"u8.{p}", match="prefix")
            await aio(c.publish, f"u8/{p}/x", b"from-mqtt", 1)
            assert (await ev.get()).args == ["from-mqtt"]
            assert (await ev2.get()).args == ["from-mqtt"]
            await w.publish(f"u8.{p}.x", "from-wamp", options=ACK)
            # exclude_me: the WAMP publisher's own subscriptions do not get it
            await ev.none()
            assert ev2.drain() == []

    run(body())
    got = [(m.topic, m.payload) for m in c.get_n(2)]
    assert got == [(f"u8/{p}/x", b"from-mqtt"), (f"u8/{p}/x", b"from-wamp")]
    mqtt_none(c)


def test_wamp_uris_without_mqtt_form_stay_wamp(bridge, clients):
    """Loose WAMP URIs may hold `/`, `+` or `#`: they have no MQTT topic, so they do not cross
    (no `u8.p.a/b` → `u8/p/a/b` aliasing); WAMP subscribers still get them."""
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"u8/{p}/#", 1)]) == [1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            r = await s.open("json")
            ev = await wsub(r, f"u8.{p}", match="prefix")
            for uri in (f"u8.{p}.a/b", f"u8.{p}.+", f"u8.{p}.x+y"):
                await w.publish(uri, "no", options=ACK)
            await w.publish(f"u8.{p}.ok", "ok", options=ACK)
            got = [(await ev.get()).details.topic for _ in range(4)]
            assert got == [f"u8.{p}.a/b", f"u8.{p}.+", f"u8.{p}.x+y", f"u8.{p}.ok"], got

    run(body())
    m = sub.get()
    assert (m.topic, m.payload) == (f"u8/{p}/ok", b"ok"), f"first MQTT message {m}"
    mqtt_none(sub, 0.2)
