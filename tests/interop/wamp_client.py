"""Autobahn|Python (asyncio) client helpers for the interop tests.

Each test runs its own event loop with ``run(coro)``; sessions are opened with
``connect(url, serializer)`` and closed with ``close(session)`` (or the
``sessions()`` async context manager, which closes everything it opened).

"ubjson" is NOT Autobahn's own UBJSON serializer: Autobahn 26 encodes "ubjson"
with `bjdata` (BJData, little-endian), while junction implements spec UBJSON as
py-ubjson writes it. ``PyUBJSONSerializer`` below plugs py-ubjson into Autobahn.
"""

import asyncio
import struct
from urllib.parse import urlparse

import txaio

txaio.use_asyncio()

import ubjson  # noqa: E402  (py-ubjson)
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.interfaces import IObjectSerializer, ISerializer  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
    Serializer,
)
from autobahn.wamp.types import ComponentConfig  # noqa: E402

SERIALIZERS = ["json", "msgpack", "cbor", "ubjson"]

# Per-step timeout (seconds) for anything we wait for from the router.
STEP_TIMEOUT = 5.0


class PyUBJSONObjectSerializer:
    """Spec UBJSON (https://ubjson.org) via py-ubjson; bytes travel as `[$U#`."""

    NAME = "ubjson"
    UBJSON_MODULE = ubjson
    BINARY = True

    def __init__(self, batched=False):
        self._batched = batched

    def serialize(self, obj):
        data = ubjson.dumpb(obj)
        if self._batched:
            return struct.pack("!L", len(data)) + data
        return data

    def unserialize(self, payload):
        if not self._batched:
            return [ubjson.loadb(payload)]
        msgs = []
        i, n = 0, len(payload)
        while i < n:
            if i + 4 > n:
                raise Exception("batch format error [1]")
            (length,) = struct.unpack("!L", payload[i : i + 4])
            if i + 4 + length > n:
                raise Exception("batch format error [2]")
            msgs.append(ubjson.loadb(payload[i + 4 : i + 4 + length]))
            i += 4 + length
        return msgs


IObjectSerializer.register(PyUBJSONObjectSerializer)


class PyUBJSONSerializer(Serializer):
    SERIALIZER_ID = "ubjson"
    RAWSOCKET_SERIALIZER_ID = 4
    PAYLOAD_SERIALIZER_ID = "ubjson"
    MIME_TYPE = "application/ubjson"

    def __init__(self, batched=False):
        Serializer.__init__(self, PyUBJSONObjectSerializer(batched=batched))
        if batched:
            self.SERIALIZER_ID = "ubjson.batched"


ISerializer.register(PyUBJSONSerializer)


def make_serializer(name):
    """Serializer instance for "json", "msgpack", "cbor", "ubjson" (+ ".batched")."""
    batched = name.endswith(".batched")
    base = name[: -len(".batched")] if batched else name
    cls = {
        "json": JsonSerializer,
        "msgpack": MsgPackSerializer,
        "cbor": CBORSerializer,
        "ubjson": PyUBJSONSerializer,
    }[base]
    return cls(batched=batched)


class JoinFailed(Exception):
    def __init__(self, details):
        super().__init__(f"session did not join: reason={getattr(details, 'reason', None)!r} "
                         f"message={getattr(details, 'message', None)!r}")
        self.details = details


class Client(ApplicationSession):
    """ApplicationSession exposing futures for join, leave and disconnect."""

    def __init__(self, config, name=""):
        super().__init__(config)
        self.name = name
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self.disconnected = loop.create_future()

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(details))
        return super().onLeave(details)

    def onDisconnect(self):
        if not self.disconnected.done():
            self.disconnected.set_result(True)
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("transport closed before the session joined"))
        return super().onDisconnect()

    @property
    def sid(self):
        return self._session_id


async def connect(url, serializer="json", realm="realm1", name="", wait_join=True,
                  timeout=STEP_TIMEOUT):
    """Open a WebSocket to `url`, join `realm`; returns the Client session.

    With wait_join=False the session is returned as soon as the TCP connection
    is up (for tests that expect the join to fail).
    """
    loop = asyncio.get_running_loop()
    session = Client(ComponentConfig(realm=realm), name=name or serializer)
    factory = WampWebSocketClientFactory(
        lambda: session, url=url, serializers=[make_serializer(serializer)]
    )
    u = urlparse(url)
    await asyncio.wait_for(loop.create_connection(factory, u.hostname, u.port), timeout)
    if wait_join:
        await asyncio.wait_for(asyncio.shield(session.joined), timeout)
    return session


async def close(session, timeout=STEP_TIMEOUT):
    """Leave (if joined) and wait until the transport is gone."""
    try:
        if session.is_attached():
            session.leave()
        elif session._transport is not None:
            session.disconnect()
        await asyncio.wait_for(asyncio.shield(session.disconnected), timeout)
    except asyncio.TimeoutError:
        if session._transport is not None:
            session._transport.close()


class sessions:
    """async with sessions(url) as s: a = await s.open("json") ... (all closed on exit)."""

    def __init__(self, url):
        self.url = url
        self.opened = []

    async def open(self, serializer="json", **kw):
        sess = await connect(self.url, serializer, **kw)
        self.opened.append(sess)
        return sess

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await asyncio.gather(*(close(s) for s in self.opened), return_exceptions=True)
        return False


def run(coro, timeout=25.0):
    """Run an async test body in a fresh event loop, bounded by `timeout`."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def next_item(queue, what="event", timeout=STEP_TIMEOUT):
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} arrived within {timeout} s") from None


async def assert_empty(queue, what="event", settle=0.2):
    await asyncio.sleep(settle)
    assert queue.empty(), f"unexpected {what}: {queue.get_nowait()!r}"


def strict_equal(a, b):
    """Equality that also compares types (1 != 1.0 != True, str != bytes)."""
    if type(a) is not type(b):
        # tuples come back from Autobahn for positional args
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            pass
        else:
            return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def first_difference(a, b, path="$"):
    """Human-readable location of the first strict difference (for messages)."""
    if type(a) is not type(b) and not (
        isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
    ):
        return f"{path}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            d = first_difference(a[k], b[k], f"{path}[{k!r}]")
            if d:
                return d
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def assert_same(got, want, what="value"):
    assert strict_equal(got, want), f"{what} differs: {first_difference(got, want)}"


async def expect_error(aw, uri="wamp.error.not_authorized"):
    """Awaits `aw`, which must fail with the WAMP error `uri`; returns the ApplicationError."""
    from autobahn.wamp.exception import ApplicationError

    try:
        result = await asyncio.wait_for(aw, STEP_TIMEOUT)
    except ApplicationError as e:
        assert e.error == uri, f"got {e.error!r}, expected {uri!r}"
        return e
    raise AssertionError(f"succeeded with {result!r}, expected {uri}")


async def join_outcome(session, url, serializer="json", ssl=None):
    """Connects `session` (a Client) over WebSocket to `url` (ws:// or wss:// with `ssl`) and
    waits for the join: (details, None) when it joined (it then leaves), (None, abort reason)
    when it was refused."""
    loop = asyncio.get_running_loop()
    factory = WampWebSocketClientFactory(lambda: session, url=url,
                                         serializers=[make_serializer(serializer)])
    u = urlparse(url)
    kw = {"ssl": ssl, "server_hostname": u.hostname} if ssl is not None else {}
    await asyncio.wait_for(loop.create_connection(factory, u.hostname, u.port, **kw), STEP_TIMEOUT)
    try:
        details = await asyncio.wait_for(asyncio.shield(session.joined), STEP_TIMEOUT)
    except JoinFailed as e:
        return None, e.details.reason
    session.leave()
    return details, None
