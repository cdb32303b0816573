"""Dynamic authentication (`"type": "dynamic"`, `"authenticator": <procedure>`) for ticket,
wampcra, anonymous, cryptosign and MQTT username/password, with Autobahn|Python sessions on both
sides and paho-mqtt (dynamic `tls` is in test_auth_tls.py).

Node: one `websocket` transport whose `auth` has anonymous (role `backend`, so the
authenticator backend joins anonymously and registers), dynamic ticket and dynamic wampcra,
both calling `com.example.authenticate` in the realm the client asks for.

- realm1: a backend session registers the authenticator: ticket "good" for authid "joe" →
  role "user"; wampcra user "peter" → {"secret": "s3cret", "role": "user"}; anything else
  raises an ApplicationError.
- realm2: no authenticator is registered: every ticket / wampcra client is refused
  (wamp.error.not_authorized), promptly.

A second websocket transport (`dyn2`) has dynamic anonymous and dynamic cryptosign; an MQTT
transport has a dynamic ticket authenticator (username/password). The authenticator admits:
anonymous clients whose authextra says {"want": "in"} (as authid "anon-in", role "user");
cryptosign authid "dev1" with the key GOOD; MQTT user "sensor1" with password "pw1".

Each test opens its own backend (each test body runs in a fresh event loop).
"""

import asyncio
import os
import time

import pytest
import txaio

txaio.use_asyncio()

from autobahn.wamp import auth, cryptosign  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port  # noqa: E402
from test_auth_common import HOST, joined, open_auth, perm, refused, ticket_answer  # noqa: E402
from test_mqtt_common import Paho, uid, wait_listening  # noqa: E402
from wamp_client import Client, close, connect, join_outcome, run  # noqa: E402

GOOD = cryptosign.CryptosignKey.from_bytes(os.urandom(32))
OTHER = cryptosign.CryptosignKey.from_bytes(os.urandom(32))

AUTHENTICATOR = "com.example.authenticate"
ALLOW_ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
ROLES = [
    {"name": "backend", "permissions": ALL_PERMISSIONS},
    {"name": "user", "permissions": [perm("com.example.", **ALLOW_ALL)]},
]


def dynamic_config(port, port2, mqtt_port, port4):
    dyn = {"type": "dynamic", "authenticator": AUTHENTICATOR}
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": ROLES}, {"name": "realm2", "roles": ROLES},
                       {"name": "authrealm", "roles": ROLES}],
            "transports": [{
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": port, "interface": HOST},
                "url": f"ws://{HOST}:{port}/ws",
                "serializers": ["json", "msgpack", "cbor"],
                "auth": {
                    "anonymous": {"type": "static", "role": "backend"},
                    "ticket": {"type": "dynamic", "authenticator": AUTHENTICATOR},
                    "wampcra": {"type": "dynamic", "authenticator": AUTHENTICATOR},
                },
            }, {
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": port2, "interface": HOST},
                "url": f"ws://{HOST}:{port2}/ws",
                "serializers": ["json", "msgpack", "cbor"],
                "auth": {"anonymous": dyn, "cryptosign": dyn},
            }, {
                # the authenticator lives in another realm (Crossbar's authenticator-realm)
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": port4, "interface": HOST},
                "url": f"ws://{HOST}:{port4}/ws",
                "auth": {"ticket": {**dyn, "authenticator-realm": "authrealm"}},
            }, {
                "type": "mqtt",
                "endpoint": {"type": "tcp", "port": mqtt_port, "interface": HOST},
                "options": {"realm": "realm1", "payload_mapping": {"": {"type": "utf8"}},
                            "auth": {"ticket": dyn}},
            }],
        }],
    }


@pytest.fixture(scope="module")
def node():
    ports = set()
    while len(ports) < 4:
        ports.add(free_port())
    port, port2, mqtt_port, port4 = sorted(ports)
    router = Router(dynamic_config(port, port2, mqtt_port, port4), name="auth-dynamic")
    for p in (port2, mqtt_port, port4):
        wait_listening(p, router)
    router.port2, router.mqtt_port, router.port4 = port2, mqtt_port, port4
    yield router
    _stop_checked(router)


class Backend:
    """An anonymous session in realm1 registering AUTHENTICATOR; records its calls."""

    def __init__(self, url, realm="realm1"):
        self.url = url
        self.realm = realm
        self.calls = []
        self.session = None

    def authenticate(self, realm, authid, details):
        self.calls.append((realm, authid, dict(details)))
        method = details.get("authmethod")
        if method == "ticket" and authid == "joe" and details.get("ticket") == "good":
            return "user"
        if method == "wampcra" and authid == "peter":
            return {"secret": "s3cret", "role": "user"}
        if method == "anonymous" and (details.get("authextra") or {}).get("want") == "in":
            return {"role": "user", "authid": "anon-in"}
        if method == "cryptosign" and authid == "dev1":
            return {"pubkey": GOOD.public_key(), "role": "user"}
        if (method == "ticket" and authid == "sensor1" and details.get("ticket") == "pw1"
                and details.get("transport", {}).get("type") == "mqtt"):
            return "user"
        raise ApplicationError("com.example.no_such_user", f"{method} {authid!r} refused")

    async def __aenter__(self):
        self.session = await connect(self.url, realm=self.realm, name="backend")
        await self.session.register(self.authenticate, AUTHENTICATOR)
        return self

    async def __aexit__(self, *exc):
        await close(self.session)
        return False


def cra_answer(secret):
    def answer(c):
        assert c.method == "wampcra", f"CHALLENGE method {c.method!r}, expected 'wampcra'"
        return auth.compute_wcs(secret, c.extra["challenge"]).decode("ascii")

    return answer


def check_welcome(details, authid, authrole, authmethod, realm="realm1"):
    got = (details.realm, details.authid, details.authrole, details.authmethod)
    want = (realm, authid, authrole, authmethod)
    assert got == want, f"WELCOME (realm, authid, authrole, authmethod) = {got}, expected {want}"


def test_ticket_accepted_by_authenticator(node):
    async def body():
        async with Backend(node.url) as backend:
            s = await open_auth("ws", node.port, authmethods=["ticket"], authid="joe",
                                answer=ticket_answer("good"))
            details = await joined(s)
            check_welcome(details, "joe", "user", "ticket")
            # the role applies: com.example.* is allowed for "user"
            await s.register(lambda: "hi", "com.example.hello")
            assert await s.call("com.example.hello") == "hi"
            await close(s)
            assert backend.calls == [
                ("realm1", "joe", {"authmethod": "ticket", "ticket": "good"})
            ], backend.calls

    run(body())


@pytest.mark.parametrize("authid,ticket", [("joe", "bad"), ("nobody", "good")],
                         ids=["wrong-ticket", "unknown-user"])
def test_ticket_refused_by_authenticator(node, authid, ticket):
    async def body():
        async with Backend(node.url) as backend:
            s = await open_auth("ws", node.port, authmethods=["ticket"], authid=authid,
                                answer=ticket_answer(ticket))
            reason = await refused(s)
            assert reason == "wamp.error.not_authorized", f"ABORT reason {reason!r}"
            await close(s)
            assert [c[:2] for c in backend.calls] == [("realm1", authid)], backend.calls

    run(body())


def test_wampcra_user_from_authenticator(node):
    async def body():
        async with Backend(node.url) as backend:
            s = await open_auth("ws", node.port, authmethods=["wampcra"], authid="peter",
                                answer=cra_answer("s3cret"))
            details = await joined(s)
            check_welcome(details, "peter", "user", "wampcra")
            assert [c.method for c in s.challenges] == ["wampcra"]
            await close(s)
            assert backend.calls == [("realm1", "peter", {"authmethod": "wampcra"})], backend.calls

    run(body())


@pytest.mark.parametrize("authid,secret", [("peter", "wrong"), ("nobody", "s3cret")],
                         ids=["wrong-secret", "unknown-user"])
def test_wampcra_refused(node, authid, secret):
    async def body():
        async with Backend(node.url):
            s = await open_auth("ws", node.port, authmethods=["wampcra"], authid=authid,
                                answer=cra_answer(secret))
            reason = await refused(s)
            assert reason == "wamp.error.not_authorized", f"ABORT reason {reason!r}"
            await close(s)

    run(body())


@pytest.mark.parametrize("method", ["ticket", "wampcra"])
def test_no_authenticator_registered_is_refused(node, method):
    """realm2 has no authenticator: refused at once, not after the 10 s authenticator timeout."""

    async def body():
        async with Backend(node.url):  # registered in realm1 only
            t0 = time.monotonic()
            answer = ticket_answer("good") if method == "ticket" else cra_answer("s3cret")
            authid = "joe" if method == "ticket" else "peter"
            s = await open_auth("ws", node.port, realm="realm2", authmethods=[method],
                                authid=authid, answer=answer)
            reason = await refused(s, timeout=5)
            took = time.monotonic() - t0
            assert reason == "wamp.error.not_authorized", f"ABORT reason {reason!r}"
            assert took < 5, f"refusal took {took:.1f} s"
            await close(s)

    run(body())


def test_anonymous_backend_role(node):
    async def body():
        s = await connect(node.url, realm="realm1", name="anon")
        details = await asyncio.wait_for(asyncio.shield(s.joined), 5)
        assert (details.authmethod, details.authrole) == ("anonymous", "backend")
        await close(s)

    run(body())


class ExtraClient(Client):
    """Joins with `authmethods` and `authextra`; signs a cryptosign CHALLENGE with `key`."""

    def __init__(self, cfg, authmethods, authid=None, authextra=None, key=None):
        super().__init__(cfg, name="dyn2")
        self.methods, self.want_authid, self.extra, self.key = authmethods, authid, authextra, key

    def onConnect(self):
        self.join(self.config.realm, authmethods=self.methods, authid=self.want_authid,
                  authextra=self.extra)

    def onChallenge(self, challenge):
        assert challenge.method == "cryptosign", challenge.method
        return self.key.sign_challenge(challenge)


async def attempt(port, serializer="json", **kw):
    s = ExtraClient(ComponentConfig(realm="realm1"), **kw)
    return await join_outcome(s, f"ws://{HOST}:{port}/ws", serializer)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_dynamic_anonymous(node, serializer):
    async def body():
        async with Backend(node.url) as backend:
            details, reason = await attempt(node.port2, serializer, authmethods=["anonymous"],
                                            authextra={"want": "in"})
            assert reason is None, reason
            check_welcome(details, "anon-in", "user", "anonymous")
            assert details.authprovider == "dynamic", details
            assert backend.calls[-1][2] == {"authmethod": "anonymous", "authextra": {"want": "in"}}
            details, reason = await attempt(node.port2, serializer, authmethods=["anonymous"],
                                            authextra={"want": "out"})
            assert details is None and reason == "wamp.error.not_authorized", (details, reason)

    run(body())


@pytest.mark.parametrize("serializer", ["json", "cbor"])
def test_dynamic_cryptosign(node, serializer):
    async def body():
        async with Backend(node.url) as backend:
            details, reason = await attempt(node.port2, serializer, authmethods=["cryptosign"],
                                            authid="dev1", key=GOOD,
                                            authextra={"pubkey": GOOD.public_key()})
            assert reason is None, reason
            check_welcome(details, "dev1", "user", "cryptosign")
            assert details.authprovider == "dynamic", details
            realm, authid, info = backend.calls[-1]
            assert (realm, authid, info["authmethod"]) == ("realm1", "dev1", "cryptosign"), info
            assert info["authextra"]["pubkey"] == GOOD.public_key(), info
            # refused: another key than the authenticator's, an unknown authid
            for kw in ({"authid": "dev1", "key": OTHER, "authextra": {"pubkey": OTHER.public_key()}},
                       {"authid": "dev1", "key": OTHER, "authextra": {}},
                       {"authid": "nobody", "key": GOOD, "authextra": {"pubkey": GOOD.public_key()}}):
                details, reason = await attempt(node.port2, serializer,
                                                authmethods=["cryptosign"], **kw)
                assert details is None and reason == "wamp.error.not_authorized", (kw, reason)

    run(body())


def test_dynamic_mqtt_ticket(node):
    async def body():
        async with Backend(node.url) as backend:
            loop = asyncio.get_running_loop()
            cid = uid("dyn")

            def mqtt_part():
                good = Paho(node.mqtt_port, client_id=cid)
                good.c.username_pw_set("sensor1", "pw1")
                good.connect()
                good.c.disconnect()
                good.c.loop_stop()
                results = []
                for user, pw in (("sensor1", "wrong"), ("nobody", "pw1")):
                    bad = Paho(node.mqtt_port, client_id=uid("bad"))
                    bad.c.username_pw_set(user, pw)
                    bad.connect(expect_rc=4)
                    results.append(bad.connack[1].value)
                    bad.c.loop_stop()
                return results

            codes = await loop.run_in_executor(None, mqtt_part)
            # CONNACK 4, bad user name or password (paho reports its MQTT 5 reason code 134)
            assert codes == [134, 134], codes
            realm, authid, info = backend.calls[0]
            assert (realm, authid, info["authmethod"], info["ticket"]) == (
                "realm1", "sensor1", "ticket", "pw1"), backend.calls[0]
            assert info["authextra"] == {"client_id": cid}, info

    run(body())


def test_authenticator_in_another_realm(node):
    async def body():
        async with Backend(node.url, realm="authrealm") as backend:
            s = await open_auth("ws", node.port4, authmethods=["ticket"], authid="joe",
                                answer=ticket_answer("good"))
            details = await joined(s)
            check_welcome(details, "joe", "user", "ticket")
            await close(s)
            # called in authrealm, told the realm the client joins
            assert backend.calls == [
                ("realm1", "joe", {"authmethod": "ticket", "ticket": "good"})
            ], backend.calls
        # without the authenticator registered in authrealm: refused (not looked up in realm1)
        async with Backend(node.url, realm="realm1"):
            s = await open_auth("ws", node.port4, authmethods=["ticket"], authid="joe",
                                answer=ticket_answer("good"))
            reason = await refused(s)
            assert reason == "wamp.error.not_authorized", reason
            await close(s)

    run(body())
