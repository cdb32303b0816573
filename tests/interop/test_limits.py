"""Per-session and per-realm limits (junction extensions): `options.max_subscriptions_per_session`,
`options.max_registrations_per_session` (WAMP and MQTT sessions alike) and
`options.mqtt.max_retained`, with Autobahn|Python and paho-mqtt.

Node: realm1 with max 3 subscriptions and 2 registrations per session and at most 2 retained
messages; one universal port (WebSocket /ws and MQTT, `utf8` mapping).
"""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from test_mqtt_common import Paho, uid, wait_listening
from wamp_client import close, connect, run

LIMIT = "junction.error.limit_exceeded"


@pytest.fixture(scope="module")
def node():
    port = free_port()
    config = {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "roles": [{"name": "anonymous", "permissions": ALL_PERMISSIONS}],
                "options": {"max_subscriptions_per_session": 3,
                            "max_registrations_per_session": 2,
                            "mqtt": {"persistence": False, "sys_interval": 1,
                                     "max_retained": 2}},
            }],
            "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                "websocket": {"ws": {"type": "websocket"}},
                "mqtt": {"options": {"realm": "realm1",
                                     "payload_mapping": {"": {"type": "utf8"}}}},
            }],
        }],
    }
    r = Router(config, name="limits")
    wait_listening(port, r)
    yield r
    _stop_checked(r)


async def limit_error(aw):
    try:
        await asyncio.wait_for(aw, 5)
    except ApplicationError as e:
        assert e.error == LIMIT, e.error
        return str(e.args[0]) if e.args else ""
    raise AssertionError("succeeded beyond the limit")


def test_wamp_subscriptions_and_registrations(node):
    async def body():
        s = await connect(node.url)
        subs = [await s.subscribe(lambda: None, f"com.example.t{i}") for i in range(3)]
        text = await limit_error(s.subscribe(lambda: None, "com.example.t3"))
        assert "max_subscriptions_per_session" in text, text
        # the same topic again is no new subscription
        again = await s.subscribe(lambda: None, "com.example.t0")
        assert again.id == subs[0].id
        # unsubscribing makes room
        await subs[1].unsubscribe()
        await s.subscribe(lambda: None, "com.example.t3")
        for i in range(2):
            await s.register(lambda: i, f"com.example.p{i}")
        text = await limit_error(s.register(lambda: 0, "com.example.p2"))
        assert "max_registrations_per_session" in text, text
        # another session has its own budget
        other = await connect(node.url)
        await other.subscribe(lambda: None, "com.example.t3")
        await other.register(lambda: 0, "com.example.p2")
        await close(other)
        await close(s)

    run(body())


def test_mqtt_subscriptions(node):
    c = Paho(node.port, client_id=uid("lim"))
    c.connect()
    try:
        assert c.subscribe([("a/1", 0), ("a/2", 1), ("a/3", 0)]) == [0, 1, 0]
        # the 4th filter is refused, a filter the client has is updated
        assert c.subscribe([("a/4", 0), ("a/1", 1)]) == [0x80, 1]
        c.unsubscribe(["a/2"])
        assert c.subscribe([("a/4", 0)]) == [0]
    finally:
        c.c.disconnect()
        c.c.loop_stop()


def test_retained_bound(node):
    pub = Paho(node.port, client_id=uid("rpub"))
    pub.connect()
    try:
        base = uid("r")
        for i in range(3):
            pub.publish(f"{base}/{i}", f"v{i}".encode(), qos=1, retain=True)
        sub = Paho(node.port, client_id=uid("rsub"))
        sub.connect()
        try:
            sub.subscribe([(f"{base}/#", 0)])
            got = sorted((m.topic, m.payload) for m in sub.get_n(2))
            assert got == [(f"{base}/0", b"v0"), (f"{base}/1", b"v1")], got
            with pytest.raises(AssertionError):
                sub.get(timeout=0.5)   # the third topic was not retained
            # updating a retained topic is fine; deleting one makes room
            pub.publish(f"{base}/0", b"", qos=1, retain=True)
            pub.publish(f"{base}/2", b"v2", qos=1, retain=True)
            sub.subscribe([("$SYS/broker/retained messages/refused", 0)])
            # (the live publications to base/0 and base/2 arrive first)
            refused = next(m for m in (sub.get(timeout=3) for _ in range(5))
                           if m.topic.startswith("$SYS/"))
            assert refused.topic == "$SYS/broker/retained messages/refused", refused
            assert int(refused.payload) >= 1, refused
        finally:
            sub.c.disconnect()
            sub.c.loop_stop()
        late = Paho(node.port, client_id=uid("rlate"))
        late.connect()
        try:
            late.subscribe([(f"{base}/#", 0)])
            got = sorted((m.topic, m.payload) for m in late.get_n(2))
            assert got == [(f"{base}/1", b"v1"), (f"{base}/2", b"v2")], got
        finally:
            late.c.disconnect()
            late.c.loop_stop()
    finally:
        pub.c.disconnect()
        pub.c.loop_stop()
