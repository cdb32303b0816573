"""One universal port serving everything at once (issue: universal transport).

A single node with one `universal` transport on TCP (and a second one on a Unix socket)
serves, concurrently: Autobahn|Python over WebSocket and over RawSocket (TCP and Unix), an
MQTT client (paho-mqtt) that gets CONNACK "server unavailable" until the broker lands, and
HTTP (curl) for static files, redirects, 404 and traversal attempts. A TLS variant carries
wss, RawSocket-over-TLS, MQTT-over-TLS and https on one port, with client certificates
required when `ca_certificates` is set.
"""

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig, PublishOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from wamp_client import STEP_TIMEOUT, Client, close, make_serializer, run

REPO = Path(__file__).resolve().parents[2]
UNAVAILABLE = "Server unavailable"


def universal_config(port, web_dir, unix_path=None, tls=None, max_connections=None):
    endpoint = {"type": "tcp", "port": port, "interface": "127.0.0.1"}
    if tls:
        endpoint["tls"] = tls
    transport = {
        "type": "universal",
        "endpoint": endpoint,
        "rawsocket": {"serializers": ["json", "msgpack", "cbor", "ubjson"]},
        "websocket": {"ws": {"serializers": ["json", "msgpack", "cbor", "ubjson"]}},
        "web": {
            "paths": {
                "/": {"type": "static", "directory": str(web_dir)},
                "old": {"type": "redirect", "url": "/index.html"},
                "info": {"type": "nodeinfo"},
            }
        },
    }
    if max_connections:
        transport["max_connections"] = max_connections
    transports = [transport]
    if unix_path:
        transports.append({
            "type": "universal",
            "endpoint": {"type": "unix", "path": str(unix_path)},
            "rawsocket": {"serializers": ["json", "msgpack"]},
        })
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": ALL_PERMISSIONS}]}],
            "transports": transports,
        }],
    }


@pytest.fixture
def web_dir(tmp_path):
    d = tmp_path / "web"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>t</title><p>hello from junction</p>")
    (d / "data.json").write_text('{"a": 1}')
    (tmp_path / "secret.txt").write_text("do not serve")
    return d


@pytest.fixture
def node(tmp_path, web_dir):
    unix_path = tmp_path / "wamp.sock"
    r = Router(universal_config(free_port(), web_dir, unix_path=unix_path), name="universal")
    r.unix_path = unix_path
    yield r
    _stop_checked(r)


async def ws_session(host, port, serializer, ssl_ctx=None):
    loop = asyncio.get_running_loop()
    session = Client(ComponentConfig(realm="realm1"), name=f"ws-{serializer}")
    scheme = "wss" if ssl_ctx else "ws"
    factory = WampWebSocketClientFactory(lambda: session, url=f"{scheme}://{host}:{port}/ws",
                                         serializers=[make_serializer(serializer)])
    await asyncio.wait_for(loop.create_connection(factory, host, port, ssl=ssl_ctx,
                                                  server_hostname=host if ssl_ctx else None), STEP_TIMEOUT)
    await asyncio.wait_for(asyncio.shield(session.joined), STEP_TIMEOUT)
    return session


async def rs_session(serializer, host=None, port=None, unix=None, ssl_ctx=None):
    loop = asyncio.get_running_loop()
    session = Client(ComponentConfig(realm="realm1"), name=f"rs-{serializer}")
    factory = WampRawSocketClientFactory(lambda: session, serializer=make_serializer(serializer))
    if unix:
        conn = loop.create_unix_connection(factory, str(unix))
    else:
        conn = loop.create_connection(factory, host, port, ssl=ssl_ctx,
                                      server_hostname=host if ssl_ctx else None)
    await asyncio.wait_for(conn, STEP_TIMEOUT)
    await asyncio.wait_for(asyncio.shield(session.joined), STEP_TIMEOUT)
    return session


async def roundtrip(sessions):
    """Every session subscribes; each publishes once; everyone gets everyone else's event."""
    got = {i: [] for i in range(len(sessions))}
    for i, s in enumerate(sessions):
        await s.subscribe(lambda *a, i=i, **kw: got[i].append(a), "com.example.uni")
    for i, s in enumerate(sessions):
        await s.publish("com.example.uni", i, b"\x00\x01bin", options=PublishOptions(acknowledge=True))
    deadline = time.monotonic() + STEP_TIMEOUT
    want = len(sessions) - 1
    while time.monotonic() < deadline and any(len(v) < want for v in got.values()):
        await asyncio.sleep(0.02)
    for i, events in got.items():
        assert sorted(e[0] for e in events) == [j for j in range(len(sessions)) if j != i], (i, events)
        assert all(e[1] == b"\x00\x01bin" for e in events)
    # RPC across transports: the first session is the callee.
    await sessions[0].register(lambda a, b: a + b, "com.example.uni.add")
    for s in sessions[1:]:
        assert await s.call("com.example.uni.add", 2, 3) == 5


def mqtt_connack(host, port, ssl_ctx=None):
    """A paho-mqtt client connects; returns the name of the CONNACK reason it got."""
    import paho.mqtt.client as mqtt

    result = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="uni-test", protocol=mqtt.MQTTv311)
    if ssl_ctx:
        c.tls_set_context(ssl_ctx)
    def on_connect(cl, ud, flags, rc, props=None):
        # paho 2 maps the MQTT 3.1.1 CONNACK return code to an MQTT 5 reason code
        # (3 "server unavailable" becomes 136); its name is the stable thing to compare.
        result.setdefault("rc", str(rc))

    c.on_connect = on_connect
    c.on_connect_fail = lambda cl, ud: result.setdefault("fail", True)
    c.connect(host, port, keepalive=10)
    deadline = time.monotonic() + STEP_TIMEOUT
    while "rc" not in result and time.monotonic() < deadline:
        c.loop(timeout=0.1)
    try:
        c.disconnect()
    except Exception:
        pass
    return result.get("rc")


def curl(*args):
    out = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--path-as-is", *args],
                         capture_output=True, timeout=10, text=True)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


def test_one_port_serves_everything(node):
    port = node.port

    async def body():
        sessions = [
            await ws_session("127.0.0.1", port, "json"),
            await ws_session("127.0.0.1", port, "cbor"),
            await rs_session("json", "127.0.0.1", port),
            await rs_session("msgpack", "127.0.0.1", port),
            await rs_session("ubjson", "127.0.0.1", port),
            await rs_session("msgpack", unix=node.unix_path),
        ]
        try:
            await roundtrip(sessions)
        finally:
            await asyncio.gather(*(close(s) for s in sessions), return_exceptions=True)

    run(body())
    # MQTT reaches the MQTT dispatch: refused with "server unavailable" until the broker exists.
    assert mqtt_connack("127.0.0.1", port) == UNAVAILABLE
    # HTTP on the same port.
    code, text = curl(f"http://127.0.0.1:{port}/")
    assert code == 200 and "hello from junction" in text
    assert curl(f"http://127.0.0.1:{port}/data.json") == (200, '{"a": 1}')
    assert curl(f"http://127.0.0.1:{port}/nope.html")[0] == 404
    code, _ = curl("-o", "/dev/null", f"http://127.0.0.1:{port}/old")
    assert code in (301, 302, 303, 307)
    for attempt in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/a/../../secret.txt"]:
        code, text = curl(f"http://127.0.0.1:{port}{attempt}")
        assert "do not serve" not in text, attempt
        assert code in (400, 403, 404), (attempt, code)
    info = json.loads(curl(f"http://127.0.0.1:{port}/info?format=json")[1])
    assert info["realms"] == ["realm1"]
    # A WebSocket upgrade on a path that is not in the websocket map is not upgraded.
    code, _ = curl("-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
                   "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Sec-WebSocket-Protocol: wamp.2.json",
                   f"http://127.0.0.1:{port}/notws")
    assert code != 101


def test_garbage_first_bytes_are_closed(node):
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"\x00\x01\x02\x03garbage\r\n\r\n")
        s.settimeout(5)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pytest.fail("connection with garbage first bytes was not closed")
        assert data == b"" or data.startswith(b"HTTP/1.1 400")


def test_rawsocket_handshake_errors_on_universal_port(node):
    def handshake(b):
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(b)
            return s.recv(4)

    assert handshake(bytes([0x7F, 0xF1, 0, 0])) == bytes([0x7F, 0xF1, 0, 0])
    assert handshake(bytes([0x7F, 0xF5, 0, 0])) == bytes([0x7F, 0x10, 0, 0])  # flatbuffers
    assert handshake(bytes([0x7F, 0xF1, 0, 1])) == bytes([0x7F, 0x30, 0, 0])  # reserved bits


def test_connection_limit(tmp_path, web_dir):
    r = Router(universal_config(free_port(), web_dir, max_connections=2), name="limit")
    try:
        # The fixture's readiness probe is a connection too; let its task finish first.
        time.sleep(0.5)
        held = [socket.create_connection(("127.0.0.1", r.port)) for _ in range(2)]
        for s in held:
            s.sendall(bytes([0x7F, 0xF1, 0, 0]))
            assert s.recv(4) == bytes([0x7F, 0xF1, 0, 0])
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
            s.sendall(bytes([0x7F, 0xF1, 0, 0]))
            assert s.recv(4) == bytes([0x7F, 0x40, 0, 0])
        code, _ = curl(f"http://127.0.0.1:{r.port}/")
        assert code == 503
        assert mqtt_connack("127.0.0.1", r.port) == UNAVAILABLE
        for s in held:
            s.close()
        time.sleep(0.3)
        assert curl(f"http://127.0.0.1:{r.port}/")[0] == 200
    finally:
        _stop_checked(r)


# ---- TLS ----

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(d: Path):
    """A CA, a server certificate for 127.0.0.1/localhost, and a client certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("junction test CA")).issuer_name(_name("junction test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn, server):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        return key, cert

    def write(name, key, cert):
        (d / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        (d / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    write("ca", ca_key, ca)
    write("server", *leaf("127.0.0.1", True))
    write("client", *leaf("client1", False))


def client_ctx(d: Path, with_cert: bool):
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(str(d / "client.crt"), str(d / "client.key"))
    return ctx


def test_tls_universal_port(tmp_path, web_dir):
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    tls = {"key": str(pki / "server.key"), "certificate": str(pki / "server.crt")}
    r = Router(universal_config(free_port(), web_dir, tls=tls), name="tls")
    try:
        ctx = client_ctx(pki, with_cert=False)

        async def body():
            sessions = [
                await ws_session("127.0.0.1", r.port, "json", ssl_ctx=ctx),
                await rs_session("msgpack", "127.0.0.1", r.port, ssl_ctx=ctx),
            ]
            try:
                await roundtrip(sessions)
            finally:
                await asyncio.gather(*(close(s) for s in sessions), return_exceptions=True)

        run(body())
        assert mqtt_connack("127.0.0.1", r.port, ssl_ctx=client_ctx(pki, False)) == UNAVAILABLE
        code, text = curl("--cacert", str(pki / "ca.crt"), f"https://127.0.0.1:{r.port}/")
        assert code == 200 and "hello from junction" in text
        # Plain text on a TLS port gets nothing useful.
        assert curl(f"http://127.0.0.1:{r.port}/")[0] != 200
    finally:
        _stop_checked(r)


def test_tls_client_certificate_required(tmp_path, web_dir):
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    tls = {"key": str(pki / "server.key"), "certificate": str(pki / "server.crt"),
           "ca_certificates": [str(pki / "ca.crt")]}
    r = Router(universal_config(free_port(), web_dir, tls=tls), name="mtls")
    try:
        code, text = curl("--cacert", str(pki / "ca.crt"), "--cert", str(pki / "client.crt"),
                          "--key", str(pki / "client.key"), f"https://127.0.0.1:{r.port}/")
        assert code == 200 and "hello from junction" in text
        code, _ = curl("--cacert", str(pki / "ca.crt"), f"https://127.0.0.1:{r.port}/")
        assert code == 0  # handshake refused without a client certificate

        async def body():
            s = await ws_session("127.0.0.1", r.port, "json", ssl_ctx=client_ctx(pki, True))
            await close(s)

        run(body())
    finally:
        _stop_checked(r)
