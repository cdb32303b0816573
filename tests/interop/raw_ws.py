"""A raw WAMP-over-WebSocket client (websockets library) for frames Autobahn won't send."""

import asyncio
import json
import struct

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from wamp_client import STEP_TIMEOUT

HELLO_DETAILS = {
    "roles": {
        "publisher": {"features": {}},
        "subscriber": {"features": {}},
        "caller": {"features": {}},
        "callee": {"features": {}},
    }
}

# WAMP message codes
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED = 16, 17
SUBSCRIBE, SUBSCRIBED = 32, 33
CALL, REGISTER, REGISTERED = 48, 64, 65


class RawWamp:
    """One WebSocket connection speaking wamp.2.json (or .batched) by hand."""

    def __init__(self, ws):
        self.ws = ws
        self.closed_with = None

    @classmethod
    async def open(cls, url, subprotocol="wamp.2.json", **kw):
        ws = await asyncio.wait_for(
            ws_connect(url, subprotocols=[subprotocol], max_size=None, open_timeout=STEP_TIMEOUT,
                       close_timeout=2, compression=None, **kw),
            STEP_TIMEOUT + 1,
        )
        assert ws.subprotocol == subprotocol, f"negotiated {ws.subprotocol!r}, offered {subprotocol!r}"
        return cls(ws)

    async def send(self, msg):
        """Send a JSON-serializable WAMP message (or a ready str/bytes) as one frame."""
        data = msg if isinstance(msg, (str, bytes)) else json.dumps(msg)
        await self.ws.send(data)

    async def recv_raw(self, timeout=STEP_TIMEOUT):
        try:
            return await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no message from the router within {timeout} s") from None

    async def recv(self, timeout=STEP_TIMEOUT):
        data = await self.recv_raw(timeout)
        assert isinstance(data, str), f"wamp.2.json message in a binary frame: {data!r}"
        return json.loads(data)

    async def hello(self, realm="realm1"):
        await self.send([HELLO, realm, HELLO_DETAILS])
        msg = await self.recv()
        assert msg[0] == WELCOME, f"expected WELCOME, got {msg!r}"
        assert isinstance(msg[1], int) and 1 <= msg[1] <= 2**53, f"bad session id in {msg!r}"
        return msg

    async def expect_closed(self, timeout=STEP_TIMEOUT):
        """Read until the router closes the connection; returns the ConnectionClosed.

        Messages read on the way are collected in self.trailing.
        """
        self.trailing = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"router did not close the connection within {timeout} s (got {self.trailing!r})"
                )
            try:
                self.trailing.append(await asyncio.wait_for(self.ws.recv(), remaining))
            except asyncio.TimeoutError:
                continue
            except ConnectionClosed as e:
                self.closed_with = e
                return e

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass


def batch_json(*msgs, sep="\x18"):
    return "".join(json.dumps(m) + sep for m in msgs)


def split_json_batch(frame):
    """Split a wamp.2.json.batched frame; each message must be terminated by 0x18 or 0x1e."""
    assert isinstance(frame, str), f"json.batched frame is binary: {frame!r}"
    assert frame and frame[-1] in "\x18\x1e", f"batched frame not terminated by 0x18/0x1e: {frame!r}"
    sep = frame[-1]
    parts = frame.split(sep)[:-1]
    return [json.loads(p) for p in parts]


def batch_binary(*payloads):
    return b"".join(struct.pack("!L", len(p)) + p for p in payloads)


def split_binary_batch(frame):
    assert isinstance(frame, bytes), f"binary batched frame is text: {frame!r}"
    out, i = [], 0
    while i < len(frame):
        assert i + 4 <= len(frame), f"truncated length prefix in {frame!r}"
        (n,) = struct.unpack("!L", frame[i : i + 4])
        assert i + 4 + n <= len(frame), f"truncated message in {frame!r}"
        out.append(frame[i + 4 : i + 4 + n])
        i += 4 + n
    return out
