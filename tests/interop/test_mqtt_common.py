"""Shared helpers of the MQTT broker tests (tests/interop/test_mqtt_*.py). Holds no test.

- `broker_config(...)`: a node config with a universal transport (RawSocket, WebSocket WAMP at
  /ws, MQTT on raw TCP, MQTT over WebSocket at /mqtt) and a standalone `mqtt` transport.
- `Broker`: a started node (a conftest `Router`) with `.universal`, `.standalone` ports.
- `Raw`: a hand-written MQTT 3.1.1 client on a plain socket, byte-exact, for what paho will
  not send (malformed packets, withheld acknowledgements, exact flags and packet ids).
- `Paho`: a thin synchronous wrapper around paho-mqtt 2 (a real third-party client) over TCP
  or WebSocket (`transport="ws"`), auto-reconnect off, every wait bounded.

Every wait is bounded (WAIT seconds unless told); a test never hangs on the broker.
"""

import itertools
import queue
import socket
import struct
import threading
import time
import uuid
from collections import namedtuple

import paho.mqtt.client as mqtt
import pytest

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port

WAIT = 5.0
HOST = "127.0.0.1"

# Transports every core test runs over: MQTT on the universal port (sniffed), the standalone
# `mqtt` transport, and MQTT over WebSocket at /mqtt on the universal port.
TRANSPORTS = ["universal", "mqtt", "ws"]

# ---------------------------------------------------------------- config and node


def broker_config(p1, p2, persistence=True, sys_interval=1, max_inflight=16, max_queued=100,
                  standalone_options=None):
    realm_mqtt = {"persistence": persistence, "sys_interval": sys_interval}
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "options": {"mqtt": realm_mqtt},
                "roles": [{"name": "anonymous", "permissions": ALL_PERMISSIONS}],
            }],
            "transports": [
                {
                    "type": "universal",
                    "endpoint": {"type": "tcp", "port": p1, "interface": HOST},
                    "rawsocket": {},
                    "websocket": {
                        "ws": {"type": "websocket"},
                        "mqtt": {"type": "mqtt", "options": {"realm": "realm1"}},
                    },
                    "mqtt": {"options": {"realm": "realm1", "max_inflight": max_inflight,
                                         "max_queued_messages": max_queued}},
                },
                {
                    "type": "mqtt",
                    "endpoint": {"type": "tcp", "port": p2, "interface": HOST},
                    "options": {"realm": "realm1", **(standalone_options or {})},
                },
            ],
        }],
    }


class Broker:
    """A junction node serving MQTT; `cbdir` reuses a node directory (restart tests)."""

    def __init__(self, name="mqtt", cbdir=None, **config_kw):
        self.universal = free_port()
        self.standalone = free_port()
        while self.standalone == self.universal:
            self.standalone = free_port()
        self.router = Router(broker_config(self.universal, self.standalone, **config_kw),
                             name=name, cbdir=cbdir)
        self.dir = self.router.dir
        wait_listening(self.standalone, self.router)

    def port(self, transport):
        """The port for a transport name of TRANSPORTS (ws is on the universal port)."""
        return self.standalone if transport == "mqtt" else self.universal

    def alive(self):
        return self.router.proc.poll() is None

    def stop(self):
        _stop_checked_keep_dir(self.router)


def wait_listening(port, router, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if router.proc.poll() is not None:
            pytest.fail(f"junction exited with {router.proc.returncode}; log:\n{router.log()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"junction does not listen on port {port}; log:\n{router.log()}")


def _stop_checked_keep_dir(router):
    """conftest's _stop_checked without removing the directory (restart tests reuse it)."""
    remove = router.remove_dir
    router.remove_dir = lambda: None
    try:
        _stop_checked(router)
    finally:
        router.remove_dir = remove


def broker_fixture(**config_kw):
    """A module-scoped fixture factory: one node for the module, stopped (checked) after."""

    @pytest.fixture(scope="module")
    def broker():
        b = Broker(**config_kw)
        yield b
        _stop_checked(b.router)

    return broker


_counter = itertools.count()


def uid(prefix="t"):
    """A unique topic prefix / client id part (tests share a node)."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------- raw MQTT codec

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"


def enc_len(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(first_byte, body=b""):
    return bytes([first_byte]) + enc_len(len(body)) + body


def connect_bytes(client_id="", clean=True, keepalive=60, will=None, username=None, password=None,
                  proto="MQTT", level=4, flags=None):
    """CONNECT; `will` = (topic, payload, qos, retain); `flags` overrides the flags byte."""
    f = 0x02 if clean else 0
    payload = enc_str(client_id)
    if will is not None:
        topic, msg, qos, retain = will
        f |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += enc_str(topic) + enc_str(msg)
    if username is not None:
        f |= 0x80
        payload += enc_str(username)
    if password is not None:
        f |= 0x40
        payload += enc_str(password)
    if flags is not None:
        f = flags
    body = enc_str(proto) + bytes([level, f]) + struct.pack("!H", keepalive) + payload
    return packet(0x10, body)


def publish_bytes(topic, payload=b"", qos=0, retain=False, dup=False, pid=None):
    if isinstance(payload, str):
        payload = payload.encode()
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = enc_str(topic)
    if qos:
        body += struct.pack("!H", pid if pid is not None else 1)
    return packet(first, body + payload)


def subscribe_bytes(pid, filters):
    body = struct.pack("!H", pid)
    for f, q in filters:
        body += enc_str(f) + bytes([q])
    return packet(0x82, body)


def unsubscribe_bytes(pid, filters):
    return packet(0xA2, struct.pack("!H", pid) + b"".join(enc_str(f) for f in filters))


def ack_bytes(kind, pid):
    first = {PUBACK: 0x40, PUBREC: 0x50, PUBREL: 0x62, PUBCOMP: 0x70}[kind]
    return packet(first, struct.pack("!H", pid))


Packet = namedtuple("Packet", "type flags body")
Pub = namedtuple("Pub", "topic payload qos retain dup pid")


def parse_publish(p):
    (n,) = struct.unpack("!H", p.body[:2])
    topic = p.body[2:2 + n].decode()
    rest = p.body[2 + n:]
    qos = (p.flags >> 1) & 3
    pid = None
    if qos:
        (pid,) = struct.unpack("!H", rest[:2])
        rest = rest[2:]
    return Pub(topic, bytes(rest), qos, bool(p.flags & 1), bool(p.flags & 8), pid)


class Closed(Exception):
    pass


class Raw:
    """A byte-level MQTT client on a plain TCP socket. `pending` keeps packets that arrived
    while waiting for another one (in order)."""

    def __init__(self, port, host=HOST):
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.buf = bytearray()
        self.pending = []
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete packet within the wait (have {bytes(self.buf)!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed(f"connection closed (buffered {bytes(self.buf)!r})")
            self.buf += chunk

    def read_packet(self, timeout=WAIT):
        """The next packet from the socket (not from `pending`); raises Closed / TimeoutError."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        mult, length, i = 1, 0, 1
        while True:
            self._fill(i + 1, deadline)
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise AssertionError(f"broker sent a remaining length of more than 4 bytes: {bytes(self.buf[:i])!r}")
        self._fill(i + length, deadline)
        first = self.buf[0]
        body = bytes(self.buf[i:i + length])
        del self.buf[:i + length]
        return Packet(first >> 4, first & 0x0F, body)

    def next(self, timeout=WAIT):
        if self.pending:
            return self.pending.pop(0)
        return self.read_packet(timeout)

    def expect(self, ptype, timeout=WAIT):
        """Waits for a packet of `ptype`; other packets go to `pending`."""
        for i, p in enumerate(self.pending):
            if p.type == ptype:
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            p = self.read_packet(max(0.0, deadline - time.monotonic()))
            if p.type == ptype:
                return p
            self.pending.append(p)

    def connect(self, client_id="", clean=True, keepalive=60, will=None, **kw):
        """Sends CONNECT; returns (session_present, return_code)."""
        self.send(connect_bytes(client_id, clean, keepalive, will, **kw))
        p = self.read_packet()
        assert p.type == CONNACK and p.flags == 0 and len(p.body) == 2, f"expected CONNACK, got {p}"
        assert p.body[0] in (0, 1), f"CONNACK acknowledge flags {p.body[0]:#x} has reserved bits"
        return bool(p.body[0] & 1), p.body[1]

    def connect_ok(self, client_id="", clean=True, keepalive=60, will=None, **kw):
        sp, rc = self.connect(client_id, clean, keepalive, will, **kw)
        assert rc == 0, f"CONNACK return code {rc} (expected 0, accepted)"
        return sp

    def subscribe(self, filters, pid=1):
        """Returns the SUBACK return codes."""
        self.send(subscribe_bytes(pid, filters))
        p = self.expect(SUBACK)
        assert p.flags == 0
        (got_pid,) = struct.unpack("!H", p.body[:2])
        assert got_pid == pid, f"SUBACK packet id {got_pid}, expected {pid}"
        return list(p.body[2:])

    def unsubscribe(self, filters, pid=2):
        self.send(unsubscribe_bytes(pid, filters))
        p = self.expect(UNSUBACK)
        assert p.flags == 0 and p.body == struct.pack("!H", pid), f"bad UNSUBACK {p}"

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=1):
        """Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP)."""
        self.send(publish_bytes(topic, payload, qos, retain, pid=pid))
        if qos == 1:
            p = self.expect(PUBACK)
            assert p.flags == 0 and p.body == struct.pack("!H", pid), f"bad PUBACK {p}"
        elif qos == 2:
            p = self.expect(PUBREC)
            assert p.flags == 0 and p.body == struct.pack("!H", pid), f"bad PUBREC {p}"
            self.send(ack_bytes(PUBREL, pid))
            p = self.expect(PUBCOMP)
            assert p.flags == 0 and p.body == struct.pack("!H", pid), f"bad PUBCOMP {p}"

    def recv_publish(self, timeout=WAIT, ack=True):
        """The next PUBLISH (other packets are kept in `pending`); acknowledged unless ack=False
        (QoS 2: PUBREC, then PUBCOMP for the broker's PUBREL)."""
        p = self.expect(PUBLISH, timeout)
        pub = parse_publish(p)
        if ack and pub.qos == 1:
            self.send(ack_bytes(PUBACK, pub.pid))
        elif ack and pub.qos == 2:
            self.send(ack_bytes(PUBREC, pub.pid))
            rel = self.expect(PUBREL, timeout)
            assert rel.flags == 2 and rel.body == struct.pack("!H", pub.pid), f"bad PUBREL {rel}"
            self.send(ack_bytes(PUBCOMP, pub.pid))
        return pub

    def ping(self, timeout=WAIT):
        self.send(PINGREQ_BYTES)
        p = self.expect(PINGRESP, timeout)
        assert p.flags == 0 and p.body == b""

    def wait_closed(self, timeout=3.0):
        """Reads (and discards) until the broker closes; returns the seconds it took, or
        None if the connection is still open after `timeout`."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        if self.closed:
            return 0.0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                return time.monotonic() - t0
            self.buf += chunk

    def disconnect(self):
        """DISCONNECT, then wait (3 s at most) for the broker to close: once it has, it has
        processed everything sent before (a reconnect with the same client id would otherwise
        race with the old connection's unread PUBACKs)."""
        try:
            self.send(DISCONNECT_BYTES)
            self.wait_closed(3.0)
        except OSError:
            pass
        self.close()

    def abort(self):
        """Closes the socket abruptly (RST), without DISCONNECT."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- paho wrapper

Msg = namedtuple("Msg", "topic payload qos retain dup")


class Paho:
    """paho-mqtt 2 client with its network loop in a thread; every wait bounded."""

    def __init__(self, port, transport="tcp", client_id="", clean=True, protocol=mqtt.MQTTv311,
                 will=None, keepalive=30, host=HOST):
        self.host, self.port, self.keepalive = host, port, keepalive
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=clean, protocol=protocol,
                             transport="websockets" if transport == "ws" else "tcp",
                             reconnect_on_failure=False)
        if transport == "ws":
            self.c.ws_set_options(path="/mqtt")
        if will is not None:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain)
        self.messages = queue.Queue()
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self._subacks = {}
        self._unsubacks = set()
        self._lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe

    # callbacks (network thread)
    def _on_connect(self, c, ud, flags, rc, props=None):
        self.connack = (bool(flags.session_present), rc)
        self.connected.set()

    def _on_disconnect(self, c, ud, flags, rc, props=None):
        self.disconnected.set()

    def _on_message(self, c, ud, m):
        self.messages.put(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup)))

    def _on_subscribe(self, c, ud, mid, rcs, props=None):
        with self._lock:
            self._subacks[mid] = [r.value for r in rcs]

    def _on_unsubscribe(self, c, ud, mid, rcs, props=None):
        with self._lock:
            self._unsubacks.add(mid)

    def connect(self, expect_rc=0):
        """Connects; returns session_present. Fails unless the CONNACK code is `expect_rc`."""
        self.c.connect(self.host, self.port, keepalive=self.keepalive)
        self.c.loop_start()
        assert self.connected.wait(WAIT), f"no CONNACK within {WAIT} s (port {self.port})"
        sp, rc = self.connack
        if expect_rc == 0:
            assert not rc.is_failure, f"CONNACK refused: {rc}"
        return sp

    def _wait(self, pred, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self._lock:
                r = pred()
            if r is not None:
                return r
            time.sleep(0.005)
        raise AssertionError(f"no {what} within {WAIT} s")

    def subscribe(self, filters):
        """filters: [(filter, qos)]; returns the granted codes from SUBACK."""
        rc, mid = self.c.subscribe(filters)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        return self._wait(lambda: self._subacks.get(mid), "SUBACK")

    def unsubscribe(self, filters):
        rc, mid = self.c.unsubscribe(filters)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: True if mid in self._unsubacks else None, "UNSUBACK")

    def publish(self, topic, payload=b"", qos=0, retain=False, wait=True):
        info = self.c.publish(topic, payload, qos, retain)
        if wait and qos:
            info.wait_for_publish(WAIT)
            assert info.is_published(), f"QoS {qos} publish to {topic!r} not completed within {WAIT} s"
        return info

    def get(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None

    def get_n(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(out)} of {n} messages within {timeout} s: {out[:5]}...")
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                pass
        return out

    def drain_quiet(self, quiet=0.5, limit=WAIT):
        """Messages until none arrived for `quiet` s (at most `limit` s in all)."""
        out = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                out.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                break
        return out

    def until(self, topic, timeout=WAIT):
        """Messages received before the first one on `topic` (which is consumed).

        paho hands QoS 2 messages over only on PUBREL, so a marker is a barrier for everything
        sent before it only when it is delivered at QoS 2 (subscribe and publish it at QoS 2)."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"marker {topic!r} not received within {timeout} s; before it: {before}")
            try:
                m = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if m.topic == topic:
                return before
            before.append(m)

    def disconnect(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.disconnected.wait(2.0)
        self.c.loop_stop()


def paho(port, transport="tcp", **kw):
    """A connected Paho (transport: 'tcp', or 'ws' for /mqtt)."""
    c = Paho(port, transport=transport, **kw)
    c.connect()
    return c


def paho_for(broker, transport, **kw):
    """A connected Paho on one of TRANSPORTS."""
    return paho(broker.port(transport), "ws" if transport == "ws" else "tcp", **kw)


class Clients:
    """Collects clients of a test so they are all closed at the end."""

    def __init__(self):
        self.items = []

    def add(self, c):
        self.items.append(c)
        return c

    def close(self):
        for c in self.items:
            try:
                c.disconnect() if isinstance(c, Paho) else c.close()
            except Exception:
                pass


@pytest.fixture
def clients():
    cs = Clients()
    yield cs
    cs.close()
