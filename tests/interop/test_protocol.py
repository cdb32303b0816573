"""Protocol errors, transport limits and framing, with raw WebSocket frames."""

import asyncio
import json
import socket
import time

import msgpack
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from raw_ws import (
    ABORT,
    CALL,
    ERROR,
    HELLO,
    HELLO_DETAILS,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    RawWamp,
    batch_binary,
    batch_json,
    split_binary_batch,
    split_json_batch,
)
from wamp_client import close, connect, run

# --------------------------------------------------------------------------
# Session establishment


def test_unknown_realm_aborts_autobahn(router, serializer):
    """Autobahn joining a realm that does not exist gets ABORT wamp.error.no_such_realm."""

    async def body():
        session = await connect(router.url, serializer, realm="no.such.realm", wait_join=False)
        try:
            details = await asyncio.wait_for(asyncio.shield(session.left), 5)
            assert details.reason == "wamp.error.no_such_realm", f"reason={details.reason!r}"
            assert not session.joined.done() or session.joined.exception() is not None
            await asyncio.wait_for(asyncio.shield(session.disconnected), 5)
        finally:
            await close(session)

    run(body())


def test_unknown_realm_aborts_raw(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.send([HELLO, "no.such.realm", HELLO_DETAILS])
        msg = await c.recv()
        assert msg[0] == ABORT and msg[2] == "wamp.error.no_such_realm", msg
        assert isinstance(msg[1], dict), msg
        await c.close()

    run(body())


def test_welcome_details(router):
    async def body():
        c = await RawWamp.open(router.url)
        welcome = await c.hello()
        details = welcome[2]
        assert isinstance(details, dict), welcome
        roles = details.get("roles", {})
        assert "broker" in roles and "dealer" in roles, f"WELCOME roles: {roles!r}"
        assert details.get("authrole") == "anonymous", f"authrole {details.get('authrole')!r}"
        await c.close()

    run(body())


def test_goodbye_is_answered(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send([6, {}, "wamp.close.close_realm"])
        msg = await c.recv()
        # the spec's reply reason is goodbye_and_out; Crossbar answers wamp.close.normal
        assert msg[0] == 6 and msg[2] in ("wamp.close.goodbye_and_out", "wamp.close.normal"), msg
        await c.close()

    run(body())


def test_subscription_ids_shared_per_topic(router):
    """The broker returns the same subscription id to every subscriber of a topic
    (and to a session that subscribes twice), and delivers each event once."""

    async def body():
        a = await RawWamp.open(router.url)
        b = await RawWamp.open(router.url)
        await a.hello()
        await b.hello()
        await a.send([SUBSCRIBE, 1, {}, "com.example.shared"])
        ra = await a.recv()
        await a.send([SUBSCRIBE, 2, {}, "com.example.shared"])
        ra2 = await a.recv()
        await b.send([SUBSCRIBE, 1, {}, "com.example.shared"])
        rb = await b.recv()
        assert ra[:2] == [SUBSCRIBED, 1] and ra2[:2] == [SUBSCRIBED, 2] and rb[:2] == [SUBSCRIBED, 1], (ra, ra2, rb)
        assert ra[2] == ra2[2] == rb[2], f"subscription ids differ: {ra[2]}, {ra2[2]}, {rb[2]}"
        await b.send([PUBLISH, 7, {"acknowledge": True}, "com.example.shared", ["once"]])
        assert (await b.recv())[:2] == [PUBLISHED, 7]
        ev = await a.recv()
        assert ev[0] == 36 and ev[1] == ra[2] and ev[4] == ["once"], ev
        await a.send([PUBLISH, 8, {"acknowledge": True}, "com.example.other", []])
        nxt = await a.recv()
        assert nxt[:2] == [PUBLISHED, 8], f"second EVENT for one publication: {nxt!r}"
        await a.close()
        await b.close()

    run(body())


# --------------------------------------------------------------------------
# Invalid URIs: ERROR wamp.error.invalid_uri, the session stays usable

INVALID_URI_CASES = [
    pytest.param([PUBLISH, 1, {"acknowledge": True}, "com..bad!"], id="publish-ack"),
    pytest.param([SUBSCRIBE, 2, {}, "bad uri with spaces"], id="subscribe"),
    pytest.param([REGISTER, 3, {}, "A..b"], id="register"),
    pytest.param([CALL, 4, {}, "com.#x"], id="call"),
]


@pytest.mark.parametrize("msg", INVALID_URI_CASES)
def test_invalid_uri_error_keeps_session(router, msg):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send(msg)
        reply = await c.recv()
        assert reply[:3] == [ERROR, msg[0], msg[1]], f"sent {msg!r}, got {reply!r}"
        assert isinstance(reply[3], dict), reply
        assert reply[4] == "wamp.error.invalid_uri", f"sent {msg!r}, got {reply!r}"
        # still usable
        await c.send([SUBSCRIBE, 100, {}, "com.example.valid"])
        reply = await c.recv()
        assert reply[0] == SUBSCRIBED and reply[1] == 100, f"after the ERROR: {reply!r}"
        await c.close()

    run(body())


def test_invalid_uri_publish_without_ack_keeps_session(router):
    """No acknowledge: the router may answer ERROR or nothing, but keeps the session."""

    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send([PUBLISH, 1, {}, "com..bad!"])
        await c.send([SUBSCRIBE, 2, {}, "com.example.valid"])
        reply = await c.recv()
        if reply[0] == ERROR:
            assert reply[1:3] == [PUBLISH, 1] and reply[4] == "wamp.error.invalid_uri", reply
            reply = await c.recv()
        assert reply[0] == SUBSCRIBED and reply[1] == 2, f"after the bad PUBLISH: {reply!r}"
        await c.close()

    run(body())


def test_wildcard_subscription_allows_empty_components(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send([SUBSCRIBE, 1, {"match": "wildcard"}, "com..temp"])
        reply = await c.recv()
        assert reply[0] == SUBSCRIBED and reply[1] == 1, reply
        await c.close()

    run(body())


# --------------------------------------------------------------------------
# Protocol violations: ABORT wamp.error.protocol_violation and close


async def _expect_protocol_violation(c, sent):
    msg = await c.recv()
    assert msg[0] == ABORT, f"sent {sent!r}, expected ABORT, got {msg!r}"
    assert msg[2] == "wamp.error.protocol_violation", f"sent {sent!r}, got {msg!r}"
    assert isinstance(msg[1], dict), msg
    await c.expect_closed()


PROTOCOL_VIOLATIONS = [
    pytest.param([1], id="short-hello"),
    pytest.param({"not": "a list"}, id="json-object"),
    pytest.param('"a string"', id="json-string"),
    pytest.param("[1, \"realm1\"", id="truncated-json"),
    pytest.param("this is not json", id="not-json"),
    pytest.param([WELCOME, 12345, {}], id="welcome-from-client"),
    pytest.param([HELLO, "realm1", HELLO_DETAILS], id="second-hello"),
    pytest.param([99999, 1, {}], id="unknown-type"),
    pytest.param([SUBSCRIBE, "x", {}, "com.example.t"], id="bad-request-id"),
    pytest.param([], id="empty-list"),
]


@pytest.mark.parametrize("bad", PROTOCOL_VIOLATIONS)
def test_protocol_violation_after_welcome(router, bad):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send(bad)
        await _expect_protocol_violation(c, bad)

    run(body())


@pytest.mark.parametrize(
    "first",
    [
        pytest.param([SUBSCRIBE, 1, {}, "com.example.t"], id="subscribe"),
        pytest.param([PUBLISH, 1, {}, "com.example.t"], id="publish"),
        pytest.param([6, {}, "wamp.close.close_realm"], id="goodbye"),
    ],
)
def test_message_before_hello(router, first):
    async def body():
        c = await RawWamp.open(router.url)
        await c.send(first)
        await _expect_protocol_violation(c, first)

    run(body())


def test_binary_frame_on_json_transport(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        await c.send(json.dumps([SUBSCRIBE, 1, {}, "com.example.t"]).encode())
        # either a protocol-violation ABORT or a plain close, but not an answer
        e = await c.expect_closed()
        for data in c.trailing:
            msg = json.loads(data)
            assert msg[0] == ABORT and msg[2] == "wamp.error.protocol_violation", msg
        print("closed with", e)

    run(body())


# --------------------------------------------------------------------------
# Transport limits


def test_message_just_below_max_size_is_fine(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        big = "x" * (1048576 - 200)
        await c.send([PUBLISH, 1, {"acknowledge": True}, "com.example.big", [big]])
        reply = await c.recv()
        assert reply[0] == PUBLISHED and reply[1] == 1, str(reply)[:200]
        await c.close()

    run(body())


def test_message_too_big_closes_1009(router):
    async def body():
        c = await RawWamp.open(router.url)
        await c.hello()
        big = "x" * (1048576 + 1000)
        try:
            await c.send([PUBLISH, 1, {"acknowledge": True}, "com.example.big", [big]])
        except ConnectionClosed as e:
            c.closed_with = e
        if c.closed_with is None:
            await c.expect_closed()
        e = c.closed_with
        assert e.rcvd is not None, f"connection dropped without a close frame ({e!r})"
        assert e.rcvd.code == 1009, f"close code {e.rcvd.code} ({e.rcvd.reason!r}), expected 1009"

    run(body())


def test_wrong_path_is_404(router):
    async def body():
        url = router.url.rsplit("/", 1)[0] + "/not-the-ws-path"
        with pytest.raises(InvalidStatus) as e:
            await ws_connect(url, subprotocols=["wamp.2.json"], open_timeout=5)
        assert e.value.response.status_code == 404, e.value.response.status_code

    run(body())


def test_unknown_subprotocol_is_400(router):
    async def body():
        with pytest.raises(InvalidStatus) as e:
            await ws_connect(router.url, subprotocols=["wamp.2.nosuchformat"], open_timeout=5)
        assert e.value.response.status_code == 400, e.value.response.status_code

    run(body())


def test_subprotocol_preference_picks_supported(router):
    """The client's first supported subprotocol is chosen; unknown ones are skipped."""

    async def body():
        ws = await ws_connect(
            router.url, subprotocols=["wamp.2.nosuchformat", "wamp.2.msgpack", "wamp.2.json"], open_timeout=5
        )
        try:
            assert ws.subprotocol == "wamp.2.msgpack", ws.subprotocol
            await ws.send(msgpack.packb([HELLO, "realm1", HELLO_DETAILS]))
            reply = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
            assert reply[0] == WELCOME, reply
        finally:
            await ws.close()

    run(body())


def test_open_handshake_timeout_tcp_only(router_factory):
    """A TCP client that never sends the HTTP upgrade is dropped after open_handshake_timeout."""
    r = router_factory(options={"open_handshake_timeout": 1000})
    s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
    t0 = time.monotonic()
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        raise AssertionError("connection still open 10 s after connecting (open_handshake_timeout 1000 ms)")
    finally:
        s.close()
    dt = time.monotonic() - t0
    print(f"closed after {dt:.2f}s, got {data[:200]!r}")
    assert dt >= 0.5, f"closed after {dt:.2f}s, before the 1 s timeout"
    assert dt <= 5, f"closed only after {dt:.2f}s"


def test_open_handshake_timeout_no_hello(router_factory):
    """A WebSocket client that never sends HELLO is closed after open_handshake_timeout."""
    r = router_factory(options={"open_handshake_timeout": 1000})

    async def body():
        c = await RawWamp.open(r.url)
        t0 = time.monotonic()
        await c.expect_closed(timeout=8)
        dt = time.monotonic() - t0
        print(f"closed after {dt:.2f}s: {c.closed_with!r}, trailing {c.trailing!r}")
        assert dt >= 0.5, f"closed after {dt:.2f}s, before the 1 s timeout"

    run(body())


# --------------------------------------------------------------------------
# Batched WebSocket transport


@pytest.mark.parametrize("sep", ["\x18", "\x1e"], ids=["0x18", "0x1e"])
def test_json_batched(router, sep):
    async def body():
        c = await RawWamp.open(router.url, "wamp.2.json.batched")
        await c.send(batch_json([HELLO, "realm1", HELLO_DETAILS], sep=sep))
        frame = await c.recv_raw()
        msgs = split_json_batch(frame)
        assert msgs and msgs[0][0] == WELCOME, f"frame {frame!r}"
        # two messages in one batch
        await c.send(
            batch_json([SUBSCRIBE, 1, {}, "com.example.b1"], [SUBSCRIBE, 2, {}, "com.example.b2"], sep=sep)
        )
        got = msgs[1:]
        while len(got) < 2:
            got += split_json_batch(await c.recv_raw())
        assert [m[0] for m in got] == [SUBSCRIBED, SUBSCRIBED], got
        assert sorted(m[1] for m in got) == [1, 2], got
        await c.close()

    run(body())


def test_json_batched_autobahn_separator_on_the_wire(router):
    """Autobahn splits on 0x18 only, so the router must write 0x18 (not 0x1e)."""

    async def body():
        c = await RawWamp.open(router.url, "wamp.2.json.batched")
        await c.send(batch_json([HELLO, "realm1", HELLO_DETAILS], sep="\x18"))
        frame = await c.recv_raw()
        assert frame.endswith("\x18"), f"frame {frame!r}"
        await c.close()

    run(body())


def test_msgpack_batched(router):
    async def body():
        c = await RawWamp.open(router.url, "wamp.2.msgpack.batched")
        await c.send(batch_binary(msgpack.packb([HELLO, "realm1", HELLO_DETAILS])))
        frame = await c.recv_raw()
        msgs = [msgpack.unpackb(p) for p in split_binary_batch(frame)]
        assert msgs and msgs[0][0] == WELCOME, msgs
        await c.send(
            batch_binary(
                msgpack.packb([SUBSCRIBE, 1, {}, "com.example.b1"]),
                msgpack.packb([SUBSCRIBE, 2, {}, "com.example.b2"]),
            )
        )
        got = msgs[1:]
        while len(got) < 2:
            got += [msgpack.unpackb(p) for p in split_binary_batch(await c.recv_raw())]
        assert sorted((m[0], m[1]) for m in got) == [(SUBSCRIBED, 1), (SUBSCRIBED, 2)], got
        await c.close()

    run(body())
