"""Shared helpers of the MQTT↔WAMP bridge tests (tests/interop/test_bridge_*.py). Holds no test.

- `bridge_config(port, mapping)`: a node with one universal port serving WAMP (WebSocket /ws,
  RawSocket) and MQTT, the MQTT settings carrying `options.payload_mapping`.
- `MAPPING`: the mapping of the shared node: one URI prefix per payload format, plus an
  unmapped prefix (`zz`) and a longest-prefix pair (`lp.` json / `lp.xy` utf8).
- `BridgeNode`: a started node (`.router`, `.url`, `.port`).
- `Events` / `wsub`: a WAMP subscription whose events (args, kwargs, details) land in a queue.
- `MqttPassthru`: an Autobahn payload codec for payload passthru mode with `enc_algo` "mqtt"
  (how Autobahn|Python exposes transparent payloads): an event's raw bytes become args[0];
  publishing bytes to a `pt.` URI sends them as a passthru payload.
- `aio(fn, ...)`: runs a blocking paho/Raw call in a thread so that the event loop (and any
  Autobahn callee on it, e.g. the dynamic codec) keeps running.

MQTT clients come from test_mqtt_common (`Paho`, `Raw`). Every wait is bounded.
"""

import asyncio
import itertools
import time
import uuid
from collections import namedtuple

import pytest
from autobahn.wamp.interfaces import IPayloadCodec
from autobahn.wamp.types import EncodedPayload, SubscribeOptions

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from test_mqtt_common import HOST, Paho, Raw  # noqa: F401  (re-exported for the tests)
from wamp_client import STEP_TIMEOUT

PASSTHROUGH = {"type": "passthrough"}
UTF8 = {"type": "utf8"}


def native(ser):
    return {"type": "native", "serializer": ser}


DYNAMIC = {"type": "dynamic", "encoder": "codec.encode", "decoder": "codec.decode"}

# The shared node's mapping. `zz` is mapped by nothing: it never crosses.
MAPPING = {
    "pt.": PASSTHROUGH,
    "nj.": native("json"),
    "nc.": native("cbor"),
    "nm.": native("msgpack"),
    "nu.": native("ubjson"),
    "u8.": UTF8,
    "dy.": DYNAMIC,
    # longest prefix, character-wise: "lp.xyz.a" is utf8 ("lp.xy"), "lp.x.a" is json ("lp.")
    "lp.": native("json"),
    "lp.xy": UTF8,
}

NATIVE_PREFIX = {"json": "nj", "cbor": "nc", "msgpack": "nm", "ubjson": "nu"}


def bridge_config(port, mapping=MAPPING, persistence=True, sys_interval=1, uri_check=None):
    mqtt_options = {"realm": "realm1"}
    if mapping is not None:
        mqtt_options["payload_mapping"] = mapping
    realm_options = {"mqtt": {"persistence": persistence, "sys_interval": sys_interval}}
    if uri_check:
        realm_options["uri_check"] = uri_check
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "options": realm_options,
                "roles": [{"name": "anonymous", "permissions": ALL_PERMISSIONS}],
            }],
            "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "port": port, "interface": HOST},
                "rawsocket": {"serializers": ["json", "msgpack", "cbor", "ubjson"]},
                "websocket": {"ws": {"type": "websocket",
                                     "serializers": ["json", "msgpack", "cbor", "ubjson"]}},
                "mqtt": {"options": mqtt_options},
            }],
        }],
    }


class BridgeNode:
    def __init__(self, name="bridge", **config_kw):
        self.port = free_port()
        self.router = Router(bridge_config(self.port, **config_kw), name=name)
        self.url = self.router.url

    def paho(self, **kw):
        """A connected paho-mqtt client on the universal port."""
        c = Paho(self.port, **kw)
        c.connect()
        return c

    def raw(self):
        return Raw(self.port)


def bridge_fixture(**config_kw):
    """A module-scoped node fixture (stopped and checked after the module)."""

    @pytest.fixture(scope="module")
    def bridge():
        b = BridgeNode(**config_kw)
        yield b
        _stop_checked(b.router)

    return bridge


_counter = itertools.count()


def tid(prefix="t"):
    """A unique topic level, valid as an MQTT level and a strict WAMP URI component."""
    return f"{prefix}{next(_counter)}_{uuid.uuid4().hex[:6]}"


async def aio(fn, *args, **kw):
    """A blocking call (paho waits, Raw reads) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kw)


# ---------------------------------------------------------------- WAMP side

Ev = namedtuple("Ev", "args kwargs details")


class Events:
    """Queue of events of one subscription: Ev(args list, kwargs dict, EventDetails)."""

    def __init__(self):
        self.q = asyncio.Queue()

    def handler(self, *args, details=None, **kwargs):
        self.q.put_nowait(Ev(list(args), kwargs, details))

    async def get(self, what="event", timeout=STEP_TIMEOUT):
        try:
            return await asyncio.wait_for(self.q.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no WAMP {what} within {timeout} s") from None

    async def none(self, what="event", settle=0.3):
        """Nothing (more) arrives within `settle` s."""
        await asyncio.sleep(settle)
        assert self.q.empty(), f"unexpected WAMP {what}: {self.q.get_nowait()!r}"

    def drain(self):
        out = []
        while not self.q.empty():
            out.append(self.q.get_nowait())
        return out


async def wsub(session, topic, match=None, get_retained=None):
    """Subscribe `session` to `topic`; returns its Events."""
    ev = Events()
    await asyncio.wait_for(
        session.subscribe(ev.handler, topic, options=SubscribeOptions(
            match=match, details_arg="details", get_retained=get_retained)),
        STEP_TIMEOUT)
    return ev


class MqttPassthru(IPayloadCodec):
    """Autobahn payload codec for payload passthru mode with the `mqtt` scheme.

    Incoming events with `enc_algo` (Autobahn reads only `enc_algo`, not `ppt_scheme`) carry
    the MQTT bytes: they are handed to the handler as args[0]. Publishing a single `bytes`
    argument to a URI starting with one of `prefixes` sends it as a passthru payload
    (`[16, req, {"enc_algo": "mqtt"}, topic, <bytes>]`)."""

    def __init__(self, prefixes=("pt.",)):
        self.prefixes = tuple(prefixes)
        self.decoded = []

    def encode(self, is_originating, uri, args=None, kwargs=None):
        if (is_originating and uri.startswith(self.prefixes) and args and len(args) == 1
                and isinstance(args[0], bytes) and not kwargs):
            return EncodedPayload(args[0], "mqtt")
        return None

    def decode(self, is_originating, uri, encoded_payload):
        self.decoded.append((uri, encoded_payload.enc_algo, encoded_payload.payload))
        return uri, [bytes(encoded_payload.payload)], None



# ---------------------------------------------------------------- MQTT side


def mqtt_none(client, settle=0.3):
    """Nothing arrives at a Paho client within `settle` s (blocking; use via aio)."""
    time.sleep(settle)
    assert client.messages.empty(), f"unexpected MQTT message: {client.messages.get_nowait()!r}"


def sys_value(client, name, timeout=5.0):
    """The next `$SYS/broker/<name>` value a Paho client (subscribed to it) receives, as int."""
    topic = f"$SYS/broker/{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = client.get(timeout=max(0.05, deadline - time.monotonic()))
        if m.topic == topic:
            return int(m.payload)
    raise AssertionError(f"no {topic} within {timeout} s")
