"""Dynamic authentication (`"type": "dynamic"`, `"authenticator": <procedure>`) for ticket and
wampcra, with Autobahn|Python sessions on both sides.

Node: one `websocket` transport whose `auth` has anonymous (role `backend`, so the
authenticator backend joins anonymously and registers), dynamic ticket and dynamic wampcra,
both calling `com.example.authenticate` in the realm the client asks for.

- realm1: a backend session registers the authenticator: ticket "good" for authid "joe" →
  role "user"; wampcra user "peter" → {"secret": "s3cret", "role": "user"}; anything else
  raises an ApplicationError.
- realm2: no authenticator is registered: every ticket / wampcra client is refused
  (wamp.error.not_authorized), promptly.

Each test opens its own backend (each test body runs in a fresh event loop).
"""

import asyncio
import time

import pytest
from autobahn.wamp import auth
from autobahn.wamp.exception import ApplicationError

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from test_auth_common import HOST, joined, open_auth, perm, refused, ticket_answer
from wamp_client import close, connect, run

AUTHENTICATOR = "com.example.authenticate"
ALLOW_ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
ROLES = [
    {"name": "backend", "permissions": ALL_PERMISSIONS},
    {"name": "user", "permissions": [perm("com.example.", **ALLOW_ALL)]},
]


def dynamic_config(port):
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": ROLES}, {"name": "realm2", "roles": ROLES}],
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
            }],
        }],
    }


@pytest.fixture(scope="module")
def node():
    router = Router(dynamic_config(free_port()), name="auth-dynamic")
    yield router
    _stop_checked(router)


class Backend:
    """An anonymous session in realm1 registering AUTHENTICATOR; records its calls."""

    def __init__(self, url):
        self.url = url
        self.calls = []
        self.session = None

    def authenticate(self, realm, authid, details):
        self.calls.append((realm, authid, dict(details)))
        method = details.get("authmethod")
        if method == "ticket" and authid == "joe" and details.get("ticket") == "good":
            return "user"
        if method == "wampcra" and authid == "peter":
            return {"secret": "s3cret", "role": "user"}
        raise ApplicationError("com.example.no_such_user", f"{method} {authid!r} refused")

    async def __aenter__(self):
        self.session = await connect(self.url, realm="realm1", name="backend")
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
