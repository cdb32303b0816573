"""MQTT↔WAMP bridge: `options.payload_mapping` (passthrough, native, utf8, dynamic).

The shared node maps `pt.` passthrough, `nj.`/`nc.`/`nm.`/`nu.` native json/cbor/msgpack/
ubjson, `u8.` utf8, `dy.` dynamic (codec.encode / codec.decode), `lp.` json with `lp.xy` utf8
(longest prefix, character-wise), and nothing for `zz.` (does not cross). A second node has
no `payload_mapping` at all (passthrough for every URI).

Native payloads are compared by decoding, never by bytes. "Did not cross" is checked with a
marker published after the message that must not arrive (same publisher, same path), plus a
short settle where the path is asynchronous (dynamic codec).
"""

import base64
import json
import time

import cbor2
import msgpack
import pytest
import ubjson
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from raw_ws import HELLO_DETAILS, RawWamp
from conftest import Router, _stop_checked, free_port
from test_bridge_common import (HOST, NATIVE_PREFIX, UTF8, BridgeNode, MqttPassthru, Paho, aio,
                                bridge_config, bridge_fixture, mqtt_none, native, tid, wsub)
from test_mqtt_common import clients  # noqa: F401
from wamp_client import SERIALIZERS, assert_same, run, sessions

bridge = bridge_fixture(name="bridge-payload")
ACK = PublishOptions(acknowledge=True)

ENCODE = {
    "json": lambda o: json.dumps(o).encode(),
    "cbor": cbor2.dumps,
    "msgpack": lambda o: msgpack.packb(o, use_bin_type=True),
    "ubjson": ubjson.dumpb,
}
DECODE = {
    "json": lambda b: json.loads(b.decode("utf-8")),
    "cbor": cbor2.loads,
    "msgpack": lambda b: msgpack.unpackb(b, raw=False),
    "ubjson": ubjson.loadb,
}

ARGS = [23.5, 1, -7, "s ✓", True, False, None, [1, [2]], {"k": "v", "n": {"x": 1}}]
KWARGS = {"unit": "C", "n": 2, "list": [1.5, "x"], "none": None}
BIN = b"\x00\x01\xfe\xff"


def native_event(args=None, kwargs=None):
    d = {}
    if args is not None:
        d["args"] = args
    if kwargs is not None:
        d["kwargs"] = kwargs
    return d


def check_native_mqtt_payload(ser, payload, args, kwargs, what):
    """The MQTT payload of a WAMP event under native mapping: a dict in `ser` with args and
    kwargs (each key may be left out when empty)."""
    try:
        obj = DECODE[ser](payload)
    except Exception as e:
        raise AssertionError(f"{what}: MQTT payload {payload!r} does not decode as {ser}: {e}")
    assert isinstance(obj, dict), f"{what}: decoded MQTT payload is {obj!r}, not a dict"
    assert set(obj) <= {"args", "kwargs"}, f"{what}: unexpected keys in {obj!r}"
    assert_same(obj.get("args") or [], args or [], f"{what}: args")
    assert_same(obj.get("kwargs") or {}, kwargs or {}, f"{what}: kwargs")


# ---------------------------------------------------------------- native


@pytest.mark.parametrize("wser", SERIALIZERS)
def test_native_json_mqtt_to_wamp(bridge, clients, wser):
    p = tid()
    pub = clients.add(bridge.paho(client_id=tid("pub")))
    cases = [
        ({"args": [23.5], "kwargs": {"unit": "C"}}, [23.5], {"unit": "C"}),
        ({"args": ARGS, "kwargs": KWARGS}, ARGS, KWARGS),
        ({"args": [21.5]}, [21.5], {}),
        ({"kwargs": {"only": "kw"}}, [], {"only": "kw"}),
        ({}, [], {}),
    ]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            ev = await wsub(w, f"nj.{p}.temp")
            for obj, _, _ in cases:
                await aio(pub.publish, f"nj/{p}/temp", json.dumps(obj).encode(), 1)
            for i, (obj, args, kwargs) in enumerate(cases):
                e = await ev.get(f"event {i} ({obj})")
                assert_same(e.args, args, f"event {i} args")
                assert_same(e.kwargs, kwargs, f"event {i} kwargs")
            await ev.none()

    run(body())


@pytest.mark.parametrize("wser", SERIALIZERS)
def test_native_json_wamp_to_mqtt(bridge, clients, wser):
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"nj/{p}/#", 1)]) == [1]
    cases = [([23.5], {"unit": "C"}), (ARGS, KWARGS), ([1], None), (None, {"a": 1}), (None, None)]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            for i, (args, kwargs) in enumerate(cases):
                await w.publish(f"nj.{p}.t{i}", *(args or []), options=ACK, **(kwargs or {}))

    run(body())
    got = sub.get_n(len(cases))
    for i, ((args, kwargs), m) in enumerate(zip(cases, got)):
        assert m.topic == f"nj/{p}/t{i}", f"message {i} on {m.topic!r}"
        check_native_mqtt_payload("json", m.payload, args, kwargs, f"message {i}")
    mqtt_none(sub, 0.2)


@pytest.mark.parametrize("wser", SERIALIZERS)
@pytest.mark.parametrize("nser", ["cbor", "msgpack", "ubjson"])
def test_native_binary_serializers_both_ways(bridge, clients, nser, wser):
    """native cbor/msgpack/ubjson, including a binary value, both directions."""
    p = tid()
    pre = NATIVE_PREFIX[nser]
    args = ARGS + [BIN]
    kwargs = dict(KWARGS, bin=BIN)
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"{pre}/{p}/w", 1)]) == [1]
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            ev = await wsub(w, f"{pre}.{p}.m")
            await aio(pub.publish, f"{pre}/{p}/m", ENCODE[nser](native_event(args, kwargs)), 1)
            e = await ev.get()
            assert_same(e.args, args, "args")
            assert_same(e.kwargs, kwargs, "kwargs")
            await w.publish(f"{pre}.{p}.w", *args, options=ACK, **kwargs)

    run(body())
    m = sub.get()
    assert m.topic == f"{pre}/{p}/w"
    check_native_mqtt_payload(nser, m.payload, args, kwargs, f"native {nser}")


def test_native_json_undecodable_stays_mqtt(bridge, clients):
    """Not JSON, not UTF-8, not a dict, args not a list, a key other than args/kwargs/
    exclude/eligible (Crossbar drops these too): not delivered to WAMP; MQTT subscribers still
    get it; the publisher and the WAMP session are unaffected."""
    p = tid()
    topic = f"nj/{p}/u"
    bad = [b"not json", b"\xff\xfe{", b"[1, 2]", b'"str"', b"42", b"", b'{"args": 5}',
           b'{"kwargs": [1]}', b'{"args": [1]', b'{"args": [1], "extra": 2}']
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(topic, 1)]) == [1]
    pub = clients.add(bridge.raw())
    pub.connect_ok(tid("raw"))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            ev = await wsub(w, f"nj.{p}.u")
            for i, b in enumerate(bad):
                await aio(pub.publish, topic, b, 1, False, i + 1)
            await aio(pub.publish, topic, b'{"args": ["ok"]}', 1, False, 100)
            e = await ev.get("event for the valid payload")
            assert e.args == ["ok"], f"first WAMP event is {e} (an undecodable payload crossed)"
            await ev.none()
            assert w.is_attached()

    run(body())
    got = [m.payload for m in sub.get_n(len(bad) + 1)]
    assert got == bad + [b'{"args": ["ok"]}']
    pub.ping()


def test_native_exclude_eligible_keys(bridge, clients):
    """A native payload's `exclude` / `eligible` (WAMP session ids) filter WAMP receivers."""
    p = tid()
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            a = await s.open("json")
            b = await s.open("msgpack")
            ev_a = await wsub(a, f"nj.{p}.x")
            ev_b = await wsub(b, f"nj.{p}.x")
            for obj in ({"args": ["not a"], "exclude": [a.sid]},
                        {"args": ["only a"], "eligible": [a.sid]},
                        {"args": ["all"]}):
                await aio(pub.publish, f"nj/{p}/x", json.dumps(obj).encode(), 1)
            got_a = [(await ev_a.get()).args[0] for _ in range(2)]
            got_b = [(await ev_b.get()).args[0] for _ in range(2)]
            assert got_a == ["only a", "all"], got_a
            assert got_b == ["not a", "all"], got_b
            await ev_a.none(settle=0.1)
            await ev_b.none(settle=0.1)

    run(body())


def test_bridge_counters_in_sys(bridge, clients):
    """`$SYS/broker/bridge/dropped` counts crossings that did not happen (no mapping key, an
    undecodable payload, a WAMP event the mapping cannot carry); `…/bridge/unmappable` counts MQTT
    topics with no WAMP URI (docs/mqtt.md; published every `sys_interval` = 1 s here)."""
    p = tid()
    mon = clients.add(bridge.paho(client_id=tid("mon")))
    names = ["bridge/dropped", "bridge/unmappable"]
    mon.subscribe([(f"$SYS/broker/{n}", 0) for n in names])
    before = _sys_values(mon, names)
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            await wsub(w, f"zz.{p}", match="prefix")
            await wsub(w, f"nj.{p}", match="prefix")
            await wsub(w, f"u8.{p}", match="prefix")
            ok = await wsub(w, f"u8.{p}.ok")
            await aio(pub.publish, f"zz/{p}/a", b"no key", 1)            # dropped
            await aio(pub.publish, f"nj/{p}/a", b"not json", 1)          # dropped
            await w.publish(f"u8.{p}.n", 42, options=ACK)                # dropped (args[0] no str)
            await aio(pub.publish, f"u8/{p}/a.b", b"x", 1)               # unmappable
            await aio(pub.publish, f"u8/{p}/ok", b"x", 1)                # crosses
            await ok.get()

    # the WAMP publish above only counts if an MQTT client subscribes to it
    assert pub.subscribe([(f"u8/{p}/#", 0)]) == [0]
    run(body())
    want = {"bridge/dropped": 3, "bridge/unmappable": 1}
    after = _sys_values(mon, names, lambda v: all(v[n] >= before[n] + want[n] for n in names))
    for n in names:
        assert after[n] - before[n] >= want[n], f"$SYS/broker/{n}: {before[n]} -> {after[n]}"


def _sys_values(client, names, done=lambda v: True, timeout=4.0):
    """Latest values of $SYS/broker/<name> until all are known and `done(values)`."""
    vals = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = client.get(timeout=max(0.05, deadline - time.monotonic()))
        except AssertionError:
            break
        for n in names:
            if m.topic == f"$SYS/broker/{n}":
                vals[n] = int(m.payload)
        if len(vals) == len(names) and done(vals):
            return vals
    raise AssertionError(f"$SYS values within {timeout} s: {vals} (want all of {names})")


def test_per_transport_mapping(clients):
    """Each MQTT listener has its own payload_mapping: one WAMP publication reaches a utf8
    client as text and a native-json client as JSON; retained WAMP publications too."""
    p1, p2 = free_port(), free_port()
    cfg = bridge_config(p1, mapping={"": UTF8})
    cfg["workers"][0]["transports"].append({
        "type": "mqtt", "endpoint": {"type": "tcp", "port": p2, "interface": HOST},
        "options": {"realm": "realm1", "payload_mapping": {"": native("json")}}})
    r = Router(cfg, name="bridge-two")
    try:
        text = clients.add(Paho(p1, client_id=tid("text")))
        text.connect()
        js = clients.add(Paho(p2, client_id=tid("json")))
        js.connect()
        for c in (text, js):
            assert c.subscribe([("two/#", 1)]) == [1]

        async def body():
            async with sessions(r.url) as s:
                w = await s.open("json")
                ev = await wsub(w, "two", match="prefix")
                await aio(text.publish, "two/from/text", b"hello", 1)
                await aio(js.publish, "two/from/json", b'{"args": ["hi"], "kwargs": {"k": 1}}', 1)
                e1, e2 = await ev.get(), await ev.get()
                assert (e1.details.topic, e1.args, e1.kwargs) == ("two.from.text", ["hello"], {})
                assert (e2.details.topic, e2.args, e2.kwargs) == ("two.from.json", ["hi"], {"k": 1})
                await w.publish("two.from.wamp", "wamp", options=PublishOptions(acknowledge=True,
                                                                                retain=True))

        run(body())
        # MQTT -> MQTT is untouched by the mappings
        t = [(m.topic, m.payload) for m in text.get_n(3)]
        j = [(m.topic, m.payload) for m in js.get_n(3)]
        assert t[:2] == j[:2] == [("two/from/text", b"hello"),
                                  ("two/from/json", b'{"args": ["hi"], "kwargs": {"k": 1}}')]
        assert t[2] == ("two/from/wamp", b"wamp"), t
        assert j[2][0] == "two/from/wamp", j
        check_native_mqtt_payload("json", j[2][1], ["wamp"], None, "json listener")
        # the retained WAMP publication, converted per listener
        for port, check in ((p1, lambda b: b == b"wamp"),
                            (p2, lambda b: json.loads(b).get("args") == ["wamp"])):
            c = clients.add(Paho(port, client_id=tid("late")))
            c.connect()
            assert c.subscribe([("two/from/wamp", 1)]) == [1]
            m = c.get()
            assert m.retain and check(m.payload), f"port {port}: {m}"
    finally:
        clients.close()
        _stop_checked(r)


# ---------------------------------------------------------------- utf8


@pytest.mark.parametrize("wser", SERIALIZERS)
def test_utf8_both_ways(bridge, clients, wser):
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"u8/{p}/w", 1)]) == [1]
    pub = clients.add(bridge.paho(client_id=tid("pub")))
    texts = ["héllo ✓", "", '{"args": [1]}', "x" * 5000]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            ev = await wsub(w, f"u8.{p}.m")
            for t in texts:
                await aio(pub.publish, f"u8/{p}/m", t.encode(), 1)
            for t in texts:
                e = await ev.get()
                assert_same(e.args, [t], "args")
                assert e.kwargs == {}, e
            # WAMP -> MQTT: args[0] string; a non-string args[0] does not cross
            await w.publish(f"u8.{p}.w", "hi ✓", options=ACK)
            await w.publish(f"u8.{p}.w", 1, options=ACK)
            await w.publish(f"u8.{p}.w", b"bytes", options=ACK)
            await w.publish(f"u8.{p}.w", {"a": 1}, options=ACK)
            await w.publish(f"u8.{p}.w", "marker", options=ACK)

    run(body())
    got = [(m.topic, m.payload) for m in sub.get_n(2)]
    assert got == [(f"u8/{p}/w", "hi ✓".encode()), (f"u8/{p}/w", b"marker")], \
        f"a WAMP event whose args[0] is not a string crossed: {got}"
    mqtt_none(sub, 0.2)


def test_utf8_invalid_utf8_does_not_reach_wamp(bridge, clients):
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"u8/{p}/m", 1)]) == [1]
    pub = clients.add(bridge.paho(client_id=tid("pub")))

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            ev = await wsub(w, f"u8.{p}.m")
            await aio(pub.publish, f"u8/{p}/m", b"\xff\xfe bad", 1)
            await aio(pub.publish, f"u8/{p}/m", b"ok", 1)
            e = await ev.get()
            assert e.args == ["ok"], f"invalid UTF-8 crossed as {e.args!r}"
            await ev.none()

    run(body())
    assert [m.payload for m in sub.get_n(2)] == [b"\xff\xfe bad", b"ok"]


# ---------------------------------------------------------------- longest prefix, unmapped


def test_longest_prefix_wins_characterwise(bridge, clients):
    """`lp.xy` (utf8) beats `lp.` (json) for `lp.xyz…`; `lp.x…` stays json."""
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([("lp/#", 1)]) == [1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            r = await s.open("msgpack")
            ev_u = await wsub(r, f"lp.xyz{p}.a")
            ev_j = await wsub(r, f"lp.x{p}.a")
            # MQTT -> WAMP
            await aio(sub.publish, f"lp/xyz{p}/a", b"plain text", 1)
            await aio(sub.publish, f"lp/x{p}/a", b'{"args": [1]}', 1)
            assert (await ev_u.get("utf8 event")).args == ["plain text"]
            assert (await ev_j.get("json event")).args == [1]
            # WAMP -> MQTT
            await w.publish(f"lp.xyz{p}.a", "s", options=ACK)
            await w.publish(f"lp.x{p}.a", 1, options=ACK)

    run(body())
    msgs = [m for m in sub.get_n(4) if m.topic.endswith(p + "/a")]
    by_topic = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m.payload)
    assert by_topic[f"lp/xyz{p}/a"] == [b"plain text", b"s"]
    first, second = by_topic[f"lp/x{p}/a"]
    assert first == b'{"args": [1]}'
    check_native_mqtt_payload("json", second, [1], None, "lp.x (json)")


def test_unmapped_uri_does_not_cross(bridge, clients):
    """No key matches `zz.`: nothing crosses either way; same-protocol delivery is intact."""
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"zz/{p}/#", 1), (f"u8/{p}/mark", 1)]) == [1, 1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            r = await s.open("json")
            ev = await wsub(r, f"zz.{p}", match="prefix")
            mark = await wsub(r, f"u8.{p}.mark")
            await aio(sub.publish, f"zz/{p}/a", b"from-mqtt", 1)
            await aio(sub.publish, f"u8/{p}/mark", b"m1", 1)
            assert (await mark.get("marker event")).args == ["m1"]
            await w.publish(f"zz.{p}.b", "from-wamp", options=ACK)
            e = await ev.get("WAMP to WAMP event on zz")
            assert (e.details.topic, e.args) == (f"zz.{p}.b", ["from-wamp"]), \
                f"{e} (an MQTT publication on an unmapped topic crossed?)"
            await w.publish(f"u8.{p}.mark", "m2", options=ACK)
            await ev.none()

    run(body())
    got = [(m.topic, m.payload) for m in sub.get_n(3)]
    assert got == [(f"zz/{p}/a", b"from-mqtt"), (f"u8/{p}/mark", b"m1"), (f"u8/{p}/mark", b"m2")], \
        f"unmapped WAMP publication crossed? {got}"


# ---------------------------------------------------------------- passthrough


def passthru_value(v):
    """The bytes in a JSON passthru payload ("\\u0000" + base64)."""
    assert isinstance(v, str) and v.startswith("\x00"), f"passthru payload {v!r} is not JSON binary"
    return base64.b64decode(v[1:])


async def raw_session(url):
    r = await RawWamp.open(url)
    details = json.loads(json.dumps(HELLO_DETAILS))
    for role in ("publisher", "subscriber"):
        details["roles"][role]["features"].update(
            {"payload_passthru_mode": True, "payload_transparency": True})
    await r.send([1, "realm1", details])
    msg = await r.recv()
    assert msg[0] == 2, f"expected WELCOME, got {msg!r}"
    return r


def test_passthrough_raw_frames_both_ways(bridge, clients):
    """MQTT → WAMP: `[36, sub, pub, {"enc_algo"|"ppt_scheme": "mqtt"}, "\\u0000<b64>"]`;
    WAMP → MQTT: PUBLISH with `ppt_scheme` (spec) or `enc_algo` (Crossbar/Autobahn) "mqtt"."""
    p = tid()
    data = bytes(range(256))
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"pt/{p}/w", 1)]) == [1]

    async def body():
        r = await raw_session(bridge.url)
        try:
            await r.send([32, 1, {}, f"pt.{p}.m"])
            m = await r.recv()
            assert m[:2] == [33, 1], m
            sub_id = m[2]
            await aio(sub.publish, f"pt/{p}/m", data, 1)
            ev = await r.recv()
            assert ev[0] == 36 and ev[1] == sub_id, ev
            assert len(ev) == 5, f"passthru EVENT should have 5 elements: {ev!r}"
            details = ev[3]
            assert details.get("enc_algo") == "mqtt" or details.get("ppt_scheme") == "mqtt", \
                f"EVENT details carry no mqtt passthru scheme: {details!r}"
            assert passthru_value(ev[4]) == data
            b64 = "\x00" + base64.b64encode(b"spec \x00\xff").decode()
            await r.send([16, 10, {"ppt_scheme": "mqtt", "acknowledge": True}, f"pt.{p}.w", b64])
            m = await r.recv()
            assert m[:2] == [17, 10], f"ppt_scheme publish: {m!r}"
            b64 = "\x00" + base64.b64encode(b"crossbar \x00\xff").decode()
            await r.send([16, 11, {"enc_algo": "mqtt", "acknowledge": True}, f"pt.{p}.w", b64])
            m = await r.recv()
            assert m[:2] == [17, 11], f"enc_algo publish: {m!r}"
        finally:
            await r.close()

    run(body())
    got = [(m.topic, m.payload) for m in sub.get_n(2)]
    assert got == [(f"pt/{p}/w", b"spec \x00\xff"), (f"pt/{p}/w", b"crossbar \x00\xff")]


@pytest.mark.parametrize("wser", SERIALIZERS)
def test_passthrough_autobahn_both_ways(bridge, clients, wser):
    """Autobahn|Python's payload codec API sees MQTT bytes (enc_algo "mqtt") and publishes
    bytes in passthru mode; a normal args publish under passthrough does not cross."""
    p = tid()
    data = b"\x00raw\xff" + bytes(range(256)) * 400  # ~100 KiB
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"pt/{p}/w", 1)]) == [1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open(wser)
            codec = MqttPassthru()
            w.set_payload_codec(codec)
            ev = await wsub(w, f"pt.{p}.m")
            await aio(sub.publish, f"pt/{p}/m", data, 1)
            await aio(sub.publish, f"pt/{p}/m", b"", 1)
            e = await ev.get("passthru event (Autobahn drops it without enc_algo)")
            assert e.args == [data], f"event args {e.args!r}"
            assert e.details.enc_algo == "mqtt", e.details
            e = await ev.get("empty passthru event")
            assert e.args == [b""], f"event args {e.args!r}"
            # WAMP -> MQTT: an args publish does not cross, a passthru one does
            plain = await s.open(wser)
            await plain.publish(f"pt.{p}.w", "args are not bytes", options=ACK)
            await w.publish(f"pt.{p}.w", b"\x01passthru\xff", options=ACK)

    run(body())
    m = sub.get()
    assert (m.topic, m.payload) == (f"pt/{p}/w", b"\x01passthru\xff"), \
        f"first MQTT message {m} (did the args publish cross under passthrough?)"
    mqtt_none(sub, 0.2)


@pytest.fixture(scope="module")
def bridge_default():
    b = BridgeNode(name="bridge-default", mapping=None)
    yield b
    _stop_checked(b.router)


def test_no_payload_mapping_is_passthrough(bridge_default, clients):
    p = tid()
    b = bridge_default
    sub = clients.add(b.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"any/{p}/w", 1)]) == [1]

    async def body():
        async with sessions(b.url) as s:
            w = await s.open("cbor")
            w.set_payload_codec(MqttPassthru(prefixes=("any.",)))
            ev = await wsub(w, f"any.{p}.m")
            await aio(sub.publish, f"any/{p}/m", b'{"args": [1]}', 1)
            e = await ev.get("passthru event")
            assert e.args == [b'{"args": [1]}'] and e.details.enc_algo == "mqtt", e
            plain = await s.open("json")
            await plain.publish(f"any.{p}.w", "args", options=ACK)
            await w.publish(f"any.{p}.w", b"bytes", options=ACK)

    run(body())
    assert sub.get().payload == b"bytes"
    mqtt_none(sub, 0.2)


# ---------------------------------------------------------------- dynamic


class Codec:
    """The dynamic codec's procedures, registered by an Autobahn callee."""

    def __init__(self):
        self.decoded = []
        self.encoded = []

    def decode(self, wamp_uri, mqtt_topic, payload):
        self.decoded.append((wamp_uri, mqtt_topic, payload))
        if payload == b"boom":
            raise ApplicationError("com.example.decode_failed", "boom")
        if payload == b"list":
            return [1, 2]
        return {"args": [wamp_uri, mqtt_topic, payload.decode()], "kwargs": {"len": len(payload)}}

    def encode(self, mqtt_topic, wamp_uri, args, kwargs):
        self.encoded.append((mqtt_topic, wamp_uri, args, kwargs))
        if args and args[0] == "boom":
            raise ApplicationError("com.example.encode_failed", "boom")
        return json.dumps({"t": mqtt_topic, "u": wamp_uri, "a": args, "k": kwargs}).encode()


@pytest.mark.parametrize("wser", ["json", "cbor"])
def test_dynamic_both_ways(bridge, clients, wser):
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"dy/{p}/w", 1)]) == [1]
    codec = Codec()

    async def body():
        async with sessions(bridge.url) as s:
            callee = await s.open(wser)
            await callee.register(codec.decode, "codec.decode")
            await callee.register(codec.encode, "codec.encode")
            w = await s.open(wser)
            ev = await wsub(w, f"dy.{p}.m")
            await aio(sub.publish, f"dy/{p}/m", b"hello", 1)
            e = await ev.get("decoded event")
            assert_same(e.args, [f"dy.{p}.m", f"dy/{p}/m", "hello"], "decoded args")
            assert_same(e.kwargs, {"len": 5}, "decoded kwargs")
            assert codec.decoded == [(f"dy.{p}.m", f"dy/{p}/m", b"hello")], codec.decoded
            await w.publish(f"dy.{p}.w", 1, "x", options=ACK, a=1)
            m = await aio(sub.get)
            assert m.topic == f"dy/{p}/w"
            assert json.loads(m.payload) == {"t": f"dy/{p}/w", "u": f"dy.{p}.w", "a": [1, "x"],
                                             "k": {"a": 1}}, m.payload

    run(body())


def test_dynamic_codec_errors_drop_only_that_message(bridge, clients):
    """A decoder that raises (or returns a non-dict) drops that message on the way to WAMP;
    an encoder that raises drops it on the way to MQTT; every client stays connected."""
    p = tid()
    topic = f"dy/{p}/m"
    mqtt_sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert mqtt_sub.subscribe([(topic, 1)]) == [1]
    pub = clients.add(bridge.raw())
    pub.connect_ok(tid("raw"))
    codec = Codec()

    async def body():
        async with sessions(bridge.url) as s:
            callee = await s.open("json")
            await callee.register(codec.decode, "codec.decode")
            await callee.register(codec.encode, "codec.encode")
            w = await s.open("json")
            ev = await wsub(w, f"dy.{p}.m")
            await aio(pub.publish, topic, b"boom", 1, False, 1)
            await aio(pub.publish, topic, b"list", 1, False, 2)
            await aio(pub.publish, topic, b"after", 1, False, 3)
            e = await ev.get("event after the failing decodes")
            assert e.args[2:] == ["after"], f"got {e} (a failed decode crossed?)"
            await ev.none(settle=0.5)
            # encoder raising: MQTT does not get it, WAMP subscribers do
            other = await s.open("json")
            await other.publish(f"dy.{p}.m", "boom", options=ACK)
            e = await ev.get("WAMP-to-WAMP event whose encoding fails")
            assert e.args == ["boom"], e
            await other.publish(f"dy.{p}.m", "fine", options=ACK)
            # wait here: the callee must stay until it has encoded "fine"
            got = [m.payload for m in await aio(mqtt_sub.get_n, 4)]
            assert callee.is_attached() and w.is_attached() and other.is_attached()
            return got

    got = run(body())
    assert got[:3] == [b"boom", b"list", b"after"], got
    assert json.loads(got[3])["a"] == ["fine"], f"{got[3]!r} (the failed encode crossed?)"
    mqtt_none(mqtt_sub, 0.3)
    pub.ping()


def test_dynamic_without_codec_registered_drops(bridge, clients):
    """No callee for the codec procedures: nothing crosses, nothing breaks."""
    p = tid()
    sub = clients.add(bridge.paho(client_id=tid("sub")))
    assert sub.subscribe([(f"dy/{p}/#", 1)]) == [1]

    async def body():
        async with sessions(bridge.url) as s:
            w = await s.open("json")
            ev = await wsub(w, f"dy.{p}.m")
            await aio(sub.publish, f"dy/{p}/m", b"x", 1)
            await w.publish(f"dy.{p}.w", "y", options=ACK)
            await ev.none(settle=0.5)
            assert w.is_attached()

    run(body())
    got = [(m.topic, m.payload) for m in sub.drain_quiet(quiet=0.3, limit=2)]
    assert got == [(f"dy/{p}/m", b"x")], got
