"""Permission matrix across protocols: an authenticated MQTT client can neither read nor write
WAMP topics its role forbids, and an authenticated WAMP session can neither read nor write MQTT
topics its role forbids; what the roles allow crosses both ways.

Principals (test_auth_common): alice = role user (com.example. only) by ticket on WAMP and MQTT,
bob = user by WAMP-CRA, root = admin by ticket, dev1 = device (publish sensor., subscribe cmd.)
from the mosquitto password file, guest = anonymous WAMP (standalone websocket) and MQTT
without credentials (`mqtt_open`): subscribe com.example. only.

Every MQTT transport maps URIs as utf8: MQTT b"x" <-> WAMP args ["x"]. A negative delivery is
checked with an ordered marker from the same publisher: the subscriber's first message must
be the marker.
"""

import asyncio

from autobahn.wamp.types import PublishOptions

from test_auth_common import (
    CRA_USERS,
    PW_USERS,
    TICKETS,
    aio,
    auth_node_fixture,
    expect_error,
    joined,
    open_auth,
    ticket_answer,
)
from test_mqtt_common import Raw, uid
from wamp_client import close, next_item, run

node = auth_node_fixture()

DENIED = 0x80
ACK = PublishOptions(acknowledge=True)


async def wamp_ticket(node, authid, kind="ws", serializer="json"):
    s = await open_auth(kind, node.ports["universal"], serializer, authmethods=["ticket"], authid=authid,
                        answer=ticket_answer(TICKETS[authid]["ticket"]))
    d = await joined(s)
    assert d.authrole == TICKETS[authid]["role"], d
    return s


async def wamp_cra(node, authid, kind="rs", serializer="cbor"):
    from autobahn.wamp import auth

    secret = CRA_USERS[authid]["secret"]
    s = await open_auth(kind, node.ports["rs"], serializer, authmethods=["wampcra"], authid=authid,
                        answer=lambda c: auth.compute_wcs(secret, c.extra["challenge"]).decode())
    d = await joined(s)
    assert d.authrole == CRA_USERS[authid]["role"], d
    return s


async def wamp_guest(node):
    s = await open_auth("ws", node.ports["ws"], "msgpack")
    d = await joined(s)
    assert (d.authmethod, d.authrole) == ("anonymous", "guest"), d
    return s


async def mqtt(node, port_name="universal", username=None, password=None):
    def login():
        c = Raw(node.ports[port_name])
        c.connect_ok(client_id=uid("m"), username=username, password=password)
        return c
    return await aio(login)


async def mqtt_ticket(node, authid):
    return await mqtt(node, "universal", authid, TICKETS[authid]["ticket"])


async def mqtt_close(*cs):
    for c in cs:
        await aio(c.disconnect)


async def wsub(session, topic, q, tag=None):
    """Subscribes; each event lands in `q` as (tag or topic, args)."""
    await session.subscribe(lambda *a, **kw: q.put_nowait((tag or topic, a)), topic)


def test_mqtt_write_to_wamp(node):
    """MQTT alice (user) publishes: under com.example. → WAMP alice/bob/guest receive it;
    secret/... (forbidden to user) → dropped: WAMP root (admin, subscribed) gets the marker first."""

    async def body():
        t = uid("t").replace("-", "_")
        wa, wb, wg, wr = (await wamp_ticket(node, "alice"), await wamp_cra(node, "bob"),
                          await wamp_guest(node), await wamp_ticket(node, "root", "rs", "ubjson"))
        ma = await mqtt_ticket(node, "alice")
        q = {n: asyncio.Queue() for n in "abgr"}
        for n, s in zip("abg", (wa, wb, wg)):
            await wsub(s, f"com.example.{t}.x", q[n])
        await wsub(wr, f"secret.{t}.x", q["r"])
        await wsub(wr, f"com.example.{t}.marker", q["r"])

        await aio(ma.publish, f"com/example/{t}/x", b"from mqtt alice", 1)
        for n in "abg":
            got = await next_item(q[n], f"event for WAMP {n}")
            assert got == (f"com.example.{t}.x", ("from mqtt alice",)), (n, got)

        await aio(ma.publish, f"secret/{t}/x", b"forbidden", 1, False, 2)
        await aio(ma.publish, f"com/example/{t}/marker", b"marker", 1, False, 3)
        got = await next_item(q["r"], "marker for WAMP root")
        assert got[0] == f"com.example.{t}.marker", f"WAMP root got {got}: MQTT user wrote secret/{t}/x"

        await mqtt_close(ma)
        for s in (wa, wb, wg, wr):
            await close(s)

    run(body())


def test_mqtt_read_from_wamp(node):
    """MQTT alice cannot subscribe where user may not (SUBACK 0x80), so WAMP publications there
    never reach her; WAMP publications under com.example. do."""

    async def body():
        t = uid("t").replace("-", "_")
        wr = await wamp_ticket(node, "root")
        ma = await mqtt_ticket(node, "alice")
        codes = await aio(ma.subscribe, [(f"secret/{t}/#", 1), (f"com/example/{t}/#", 1)])
        assert codes == [DENIED, 1], f"MQTT alice SUBACK {codes}"
        await wr.publish(f"secret.{t}.x", "secret", options=ACK)
        await wr.publish(f"com.example.{t}.y", "public", options=ACK)
        m = await aio(ma.recv_publish)
        assert (m.topic, m.payload) == (f"com/example/{t}/y", b"public"), f"MQTT alice got {m}"
        await mqtt_close(ma)
        await close(wr)

    run(body())


def test_wamp_write_to_mqtt(node):
    """WAMP alice (user) may not publish to secret.* (not_authorized); MQTT root subscribed to
    secret/# gets nothing from her; what WAMP root publishes there does arrive; WAMP alice's
    com.example. publications reach MQTT alice and the MQTT guest."""

    async def body():
        t = uid("t").replace("-", "_")
        wa, wb, wr = await wamp_ticket(node, "alice", "rs", "msgpack"), await wamp_cra(node, "bob"), \
            await wamp_ticket(node, "root")
        mr, ma, mg = await mqtt_ticket(node, "root"), await mqtt_ticket(node, "alice"), \
            await mqtt(node, "mqtt_open", "anyone")
        assert await aio(mr.subscribe, [(f"secret/{t}/#", 1)]) == [1]
        assert await aio(ma.subscribe, [(f"com/example/{t}/#", 1)]) == [1]
        assert await aio(mg.subscribe, [(f"com/example/{t}/#", 1), (f"secret/{t}/#", 1)]) == [1, DENIED]

        for s in (wa, wb):
            await expect_error(s.publish(f"secret.{t}.x", "from user", options=ACK))
        await wr.publish(f"secret.{t}.x", "from admin", options=ACK)
        m = await aio(mr.recv_publish)
        assert (m.topic, m.payload) == (f"secret/{t}/x", b"from admin"), f"MQTT root got {m}"

        await wa.publish(f"com.example.{t}.z", "hello mqtt", options=ACK)
        for c, name in ((ma, "alice"), (mg, "guest")):
            m = await aio(c.recv_publish)
            assert (m.topic, m.payload) == (f"com/example/{t}/z", b"hello mqtt"), f"MQTT {name} got {m}"

        await mqtt_close(mr, ma, mg)
        for s in (wa, wb, wr):
            await close(s)

    run(body())


def test_wamp_read_from_mqtt(node):
    """WAMP alice/bob/guest may not subscribe to secret.* (not_authorized); WAMP root may, and
    gets what MQTT root publishes there."""

    async def body():
        t = uid("t").replace("-", "_")
        wa, wb, wg, wr = (await wamp_ticket(node, "alice"), await wamp_cra(node, "bob"),
                          await wamp_guest(node), await wamp_ticket(node, "root"))
        for s in (wa, wb, wg):
            await expect_error(s.subscribe(lambda *a: None, f"secret.{t}.x"))
        q = asyncio.Queue()
        await wsub(wr, f"secret.{t}.x", q)
        mr = await mqtt_ticket(node, "root")
        await aio(mr.publish, f"secret/{t}/x", b"admin data", 1)
        assert await next_item(q) == (f"secret.{t}.x", ("admin data",))
        # the guest cannot publish even where it may subscribe
        await expect_error(wg.publish(f"com.example.{t}", "x", options=ACK))
        await mqtt_close(mr)
        for s in (wa, wb, wg, wr):
            await close(s)

    run(body())


def test_password_file_device_across_protocols(node):
    """dev1 (password file, role device): its sensor/... publications reach WAMP root; its cmd/...
    publications are dropped; WAMP root's cmd.* publications reach it; WAMP alice can neither
    subscribe to sensor.* nor publish to cmd.*."""
    node.require_password_file()

    async def body():
        t = uid("t").replace("-", "_")
        wa, wr = await wamp_ticket(node, "alice"), await wamp_ticket(node, "root")
        dev = await mqtt(node, "mqtt_pw", "dev1", PW_USERS["dev1"])
        q = asyncio.Queue()
        await wsub(wr, f"cmd.{t}.x", q)
        await wsub(wr, f"sensor.{t}.temp", q)
        assert await aio(dev.subscribe, [(f"cmd/{t}/#", 1), (f"sensor/{t}/#", 1)]) == [1, DENIED]

        await aio(dev.publish, f"cmd/{t}/x", b"forged command", 1, False, 5)
        await aio(dev.publish, f"sensor/{t}/temp", b"21.5", 1, False, 6)
        got = await next_item(q, "sensor event")
        assert got == (f"sensor.{t}.temp", ("21.5",)), f"WAMP root got {got} first"

        await wr.publish(f"cmd.{t}.reboot", "now", options=ACK)
        m = await aio(dev.recv_publish)
        assert (m.topic, m.payload) == (f"cmd/{t}/reboot", b"now"), f"device got {m}"

        await expect_error(wa.subscribe(lambda *a: None, f"sensor.{t}.temp"))
        await expect_error(wa.publish(f"cmd.{t}.reboot", "x", options=ACK))
        await mqtt_close(dev)
        for s in (wa, wr):
            await close(s)

    run(body())
