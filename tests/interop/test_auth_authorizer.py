"""Dynamic authorization: roles with an `authorizer` procedure (Crossbar's
`{"name": .., "authorizer": "<uri>"}`), with Autobahn|Python sessions on both sides and
paho-mqtt clients.

Node: one `universal` transport (WebSocket /ws, RawSocket, MQTT) whose WAMP and MQTT `auth`
are ticket principals:

    backend / backend-t   role `backend` (static: everything) — registers the authorizer
    app / app-t           role `app`     (dynamic: com.example.authorize)
    broken / broken-t     role `broken`  (dynamic: com.example.missing, never registered)

MQTT maps every topic as `utf8`. The authorizer (`Authorizer.authorize`) answers:

    com.example.open.*      True
    com.example.cached.*    {"allow": True, "cache": True}
    com.example.disclose.*  {"allow": True, "disclose": True}
    com.example.subonly     action == "subscribe"
    com.example.bad.*       "yes" (not a valid answer)        -> wamp.error.authorization_failed
    com.example.raise.*     raises ApplicationError           -> wamp.error.authorization_failed
    sensor*                 True (the MQTT side)
    anything else           False                             -> wamp.error.not_authorized
"""

import asyncio
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from test_auth_common import HOST, expect_error, joined, open_auth, ticket_answer
from test_mqtt_common import Paho, uid, wait_listening
from wamp_client import close, run

AUTHORIZER = "com.example.authorize"
PRINCIPALS = {
    "backend": {"ticket": "backend-t", "role": "backend"},
    "app": {"ticket": "app-t", "role": "app"},
    "broken": {"ticket": "broken-t", "role": "broken"},
}
SERIALIZERS = ["json", "msgpack", "cbor", "ubjson"]


def authorizer_config(port):
    ticket = {"ticket": {"type": "static", "principals": PRINCIPALS}}
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "options": {"mqtt": {"persistence": False}},
                "roles": [
                    {"name": "backend", "permissions": ALL_PERMISSIONS},
                    {"name": "app", "authorizer": AUTHORIZER},
                    {"name": "broken", "authorizer": "com.example.missing"},
                ],
            }],
            "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "port": port, "interface": HOST},
                "rawsocket": {"serializers": SERIALIZERS, "auth": ticket},
                "websocket": {"ws": {"type": "websocket", "serializers": SERIALIZERS,
                                     "auth": ticket}},
                "mqtt": {"options": {"realm": "realm1",
                                     "payload_mapping": {"": {"type": "utf8"}},
                                     "auth": ticket}},
            }],
        }],
    }


@pytest.fixture(scope="module")
def node():
    port = free_port()
    router = Router(authorizer_config(port), name="auth-authorizer")
    wait_listening(port, router)
    router.port = port
    yield router
    _stop_checked(router)


class Authorizer:
    """The backend session: registers AUTHORIZER and records every call."""

    def __init__(self, port):
        self.port = port
        self.calls = []
        self.session = None

    def authorize(self, session, uri, action, options):
        self.calls.append((dict(session), uri, action, dict(options or {})))
        if uri.startswith("com.example.open."):
            return True
        if uri.startswith("com.example.cached."):
            return {"allow": True, "cache": True}
        if uri.startswith("com.example.disclose."):
            return {"allow": True, "disclose": True}
        if uri == "com.example.subonly":
            return action == "subscribe"
        if uri.startswith("com.example.bad."):
            return "yes"
        if uri.startswith("com.example.raise."):
            raise ApplicationError("com.example.authorizer_down", "try later")
        if uri.startswith("sensor"):
            return True
        return False

    def calls_for(self, uri):
        return [c for c in self.calls if c[1] == uri]

    async def __aenter__(self):
        self.session = await session_as(self.port, "backend")
        await self.session.register(self.authorize, AUTHORIZER)
        return self

    async def __aexit__(self, *exc):
        await close(self.session)
        return False


async def session_as(port, authid, kind="ws", serializer="json"):
    s = await open_auth(kind, port, serializer=serializer, authmethods=["ticket"], authid=authid,
                        answer=ticket_answer(PRINCIPALS[authid]["ticket"]))
    details = await joined(s)
    assert details.authrole == PRINCIPALS[authid]["role"], details
    return s


@pytest.mark.parametrize("kind,serializer", [("ws", s) for s in SERIALIZERS] + [("rs", "msgpack")])
def test_allowed_and_denied_actions(node, kind, serializer):
    async def body():
        async with Authorizer(node.port) as authz:
            app = await session_as(node.port, "app", kind, serializer)
            # allowed: all four actions on com.example.open.*
            await app.register(lambda x: x * 2, "com.example.open.double")
            assert await app.call("com.example.open.double", 21) == 42
            got = asyncio.get_running_loop().create_future()
            await app.subscribe(lambda v: got.done() or got.set_result(v), "com.example.open.t")
            await app.publish("com.example.open.t", "hello",
                              options=PublishOptions(acknowledge=True, exclude_me=False))
            assert await asyncio.wait_for(got, 5) == "hello"
            # denied: all four actions elsewhere
            await expect_error(app.register(lambda: 1, "com.example.secret.p"))
            await expect_error(app.call("com.example.secret.p"))
            await expect_error(app.subscribe(lambda: None, "com.example.secret.t"))
            await expect_error(app.publish("com.example.secret.t",
                                           options=PublishOptions(acknowledge=True)))
            # per action: subscribe yes, publish no
            await app.subscribe(lambda: None, "com.example.subonly")
            await expect_error(app.publish("com.example.subonly",
                                           options=PublishOptions(acknowledge=True)))
            # what the authorizer was told (Crossbar's session details)
            session, uri, action, options = authz.calls_for("com.example.open.double")[0]
            assert (uri, action) == ("com.example.open.double", "register")
            want = {"session": app.sid, "authid": "app", "authrole": "app",
                    "authmethod": "ticket", "authprovider": "static"}
            assert {k: session.get(k) for k in want} == want, session
            transport = "websocket" if kind == "ws" else "rawsocket"
            assert session["transport"]["type"] == transport, session
            assert ("com.example.open.t", "publish") in [(c[1], c[2]) for c in authz.calls]
            publish_options = [c[3] for c in authz.calls if c[1:3] == ("com.example.open.t", "publish")]
            assert publish_options[0].get("acknowledge") is True, publish_options
            await close(app)

    run(body())


def test_cache_is_per_answer(node):
    async def body():
        async with Authorizer(node.port) as authz:
            app = await session_as(node.port, "app")
            for _ in range(3):
                await app.publish("com.example.cached.t", options=PublishOptions(acknowledge=True))
                await app.publish("com.example.open.t", options=PublishOptions(acknowledge=True))
            assert len(authz.calls_for("com.example.cached.t")) == 1, authz.calls
            assert len(authz.calls_for("com.example.open.t")) == 3, authz.calls
            # the cache is per action: a subscribe asks again
            await app.subscribe(lambda: None, "com.example.cached.t")
            assert len(authz.calls_for("com.example.cached.t")) == 2, authz.calls
            await close(app)
            # and per session: a new session asks again
            app2 = await session_as(node.port, "app")
            await app2.publish("com.example.cached.t", options=PublishOptions(acknowledge=True))
            assert len(authz.calls_for("com.example.cached.t")) == 3, authz.calls
            await close(app2)

    run(body())


def test_disclose_from_authorizer(node):
    async def body():
        async with Authorizer(node.port) as authz:
            app = await session_as(node.port, "app")
            seen = asyncio.Queue()

            def on_event(topic):
                return lambda *a, details=None: seen.put_nowait((topic, details.publisher))

            from autobahn.wamp.types import SubscribeOptions
            opts = SubscribeOptions(details_arg="details")
            await authz.session.subscribe(on_event("disclose"), "com.example.disclose.t", options=opts)
            await authz.session.subscribe(on_event("open"), "com.example.open.t", options=opts)
            await app.publish("com.example.disclose.t", options=PublishOptions(acknowledge=True))
            await app.publish("com.example.open.t", options=PublishOptions(acknowledge=True))
            got = dict([await asyncio.wait_for(seen.get(), 5) for _ in range(2)])
            assert got == {"disclose": app.sid, "open": None}, got
            await close(app)

    run(body())


@pytest.mark.parametrize("uri", ["com.example.bad.t", "com.example.raise.t"])
def test_bad_authorizer_answer_fails_the_action(node, uri):
    async def body():
        async with Authorizer(node.port):
            app = await session_as(node.port, "app")
            e = await expect_error(app.publish(uri, options=PublishOptions(acknowledge=True)),
                                   "wamp.error.authorization_failed")
            assert "authoriz" in str(e.args[0] if e.args else e), e
            await expect_error(app.call(uri), "wamp.error.authorization_failed")
            # the session goes on
            await app.publish("com.example.open.t", options=PublishOptions(acknowledge=True))
            await close(app)

    run(body())


def test_unregistered_authorizer_fails_promptly(node):
    async def body():
        broken = await session_as(node.port, "broken")
        t0 = time.monotonic()
        await expect_error(broken.subscribe(lambda: None, "com.example.open.t"),
                           "wamp.error.authorization_failed")
        assert time.monotonic() - t0 < 2, "refusal should not wait for the authorizer timeout"
        await close(broken)

    run(body())


def test_mqtt_client_with_dynamic_role(node):
    async def body():
        async with Authorizer(node.port) as authz:
            sensors = asyncio.Queue()
            await authz.session.subscribe(lambda v: sensors.put_nowait(v), "sensor.", options=
                                          __import__("autobahn").wamp.types.SubscribeOptions(
                                              match="prefix"))
            cid = uid("dyn")
            loop = asyncio.get_running_loop()

            def mqtt_part():
                c = Paho(node.port, client_id=cid)
                c.c.username_pw_set("app", "app-t")
                c.connect()
                try:
                    assert c.subscribe([("sensor/#", 1)]) == [1]
                    assert c.subscribe([("secret/#", 1)]) == [0x80]
                    c.publish("secret/x", b"no", qos=1)   # denied: dropped, still acknowledged
                    c.publish("sensor/1", b"yes", qos=1)
                    m = c.get()
                    assert (m.topic, m.payload) == ("sensor/1", b"yes"), m
                finally:
                    c.c.disconnect()
                    c.c.loop_stop()

            await loop.run_in_executor(None, mqtt_part)
            assert await asyncio.wait_for(sensors.get(), 5) == "yes"
            await asyncio.sleep(0.2)
            assert sensors.empty(), "a denied MQTT publication reached a WAMP subscriber"
            mqtt_calls = [c for c in authz.calls if c[0].get("transport", {}).get("type") == "mqtt"]
            asked = sorted((c[1], c[2]) for c in mqtt_calls)
            assert ("secret.", "subscribe") in asked and ("secret.x", "publish") in asked, asked
            session = mqtt_calls[0][0]
            assert (session["authid"], session["authrole"], session["authmethod"]) == (
                "app", "app", "ticket"), session
            assert session["authextra"] == {"client_id": cid}, session

    run(body())
