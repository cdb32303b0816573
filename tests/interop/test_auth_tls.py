"""WAMP `tls` authentication: the client certificate (verified against `ca_certificates`)
names the principal by its SHA-1 fingerprint, as Crossbar's `certificate-sha1`; or a dynamic
authenticator decides from the fingerprint (path /dyn; the authenticator's backend joins
anonymously on a second, plain transport)."""

import asyncio
import hashlib
import ssl

import pytest
from autobahn.wamp.types import ComponentConfig
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port
from test_universal import client_ctx, make_pki
from wamp_client import Client, join_outcome, run


def fingerprint(pem_path):
    der = x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha1(der).digest())


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    pki = tmp_path_factory.mktemp("pki")
    make_pki(pki)
    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    port, plain, port2 = sorted(ports)
    tls = {"key": str(pki / "server.key"), "certificate": str(pki / "server.crt"),
           "ca_certificates": [str(pki / "ca.crt")]}
    config = {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{"name": "backend", "permissions": ALL_PERMISSIONS}]}],
            "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1", "tls": tls},
                # MQTT over the same TLS port: the certificate names the principal too
                "mqtt": {"options": {"realm": "realm1", "auth": {"tls": {"type": "static", "principals": {
                    "client1": {"certificate-sha1": fingerprint(pki / "client.crt"),
                                "role": "backend"}}}}}},
                "websocket": {
                    "ws": {"type": "websocket", "auth": {"tls": {"type": "static", "principals": {
                        "client1": {"certificate-sha1": fingerprint(pki / "client.crt"),
                                    "role": "backend"}}}}},
                    "dyn": {"type": "websocket", "auth": {"tls": {
                        "type": "dynamic", "authenticator": "com.example.authenticate"}}},
                },
            }, {
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": plain, "interface": "127.0.0.1"},
                "url": f"ws://127.0.0.1:{plain}/ws",
                "auth": {"anonymous": {"type": "static", "role": "backend"}},
            }, {
                # MQTT with a dynamic tls authenticator
                "type": "universal",
                "endpoint": {"type": "tcp", "port": port2, "interface": "127.0.0.1", "tls": tls},
                "mqtt": {"options": {"realm": "realm1", "auth": {"tls": {
                    "type": "dynamic", "authenticator": "com.example.authenticate"}}}},
            }],
        }],
    }
    r = Router(config, name="tls-auth")
    r.pki = pki
    r.plain_url = f"ws://127.0.0.1:{plain}/ws"
    r.port2 = port2
    yield r
    _stop_checked(r)


class TlsClient(Client):
    def __init__(self, cfg, authid=None):
        super().__init__(cfg, name="tls")
        self.want_authid = authid

    def onConnect(self):
        self.join(self.config.realm, authmethods=["tls"], authid=self.want_authid)


async def attempt(node, authid=None, serializer="json", path="ws"):
    s = TlsClient(ComponentConfig(realm="realm1"), authid)
    ctx: ssl.SSLContext = client_ctx(node.pki, with_cert=True)
    return await join_outcome(s, f"wss://127.0.0.1:{node.port}/{path}", serializer, ssl=ctx)


@pytest.mark.parametrize("serializer", ["json", "cbor"])
def test_client_certificate_names_the_principal(node, serializer):
    details, reason = run(attempt(node, serializer=serializer))
    assert reason is None, reason
    assert (details.authid, details.authrole, details.authmethod) == ("client1", "backend", "tls")


def test_other_authid_than_the_certificate_is_refused(node):
    details, reason = run(attempt(node, authid="someone-else"))
    assert details is None and reason == "wamp.error.not_authorized", (details, reason)


def test_dynamic_authenticator_decides_by_certificate(node):
    from autobahn.wamp.exception import ApplicationError

    from wamp_client import close, connect

    want = fingerprint(node.pki / "client.crt")
    calls = []

    def authenticate(realm, authid, details):
        calls.append((realm, authid, dict(details)))
        if details["transport"]["client_cert"]["sha1"] == want and authid in (want, "client1"):
            return {"role": "backend", "authid": "client1-dyn"}
        raise ApplicationError("com.example.unknown", "unknown certificate")

    async def body():
        backend = await connect(node.plain_url, name="backend")
        await backend.register(authenticate, "com.example.authenticate")
        try:
            details, reason = await attempt(node, path="dyn")
            assert reason is None, reason
            got = (details.authid, details.authrole, details.authmethod, details.authprovider)
            assert got == ("client1-dyn", "backend", "tls", "dynamic"), got
            realm, authid, info = calls[0]
            assert (realm, authid, info["authmethod"]) == ("realm1", want, "tls"), calls[0]
            details, reason = await attempt(node, authid="someone-else", path="dyn")
            assert details is None and reason == "wamp.error.not_authorized", (details, reason)
        finally:
            await close(backend)

    run(body())


def mqtt_over_tls(port, pki, username=None, expect_rc=0):
    from test_mqtt_common import Paho, uid

    c = Paho(port, client_id=uid("tls"))
    c.c.tls_set_context(client_ctx(pki, with_cert=True))
    if username is not None:
        c.c.username_pw_set(username, "ignored")
    c.connect(expect_rc=expect_rc)
    return c


def test_mqtt_client_certificate_names_the_principal(node):
    c = mqtt_over_tls(node.port, node.pki)
    try:
        assert c.connack[1].value == 0, c.connack
        # role backend may do everything
        assert c.subscribe([("t/#", 1)]) == [1]
        c.publish("t/1", b"x", qos=1)
        m = c.get()
        assert (m.topic, m.payload) == ("t/1", b"x"), m
    finally:
        c.c.disconnect()
        c.c.loop_stop()
    # a username that is not the certificate's principal: CONNACK 4 (paho: reason code 134)
    c = mqtt_over_tls(node.port, node.pki, username="someone-else", expect_rc=4)
    try:
        assert c.connack[1].value == 134, c.connack
    finally:
        c.c.loop_stop()


def test_mqtt_dynamic_tls_authenticator(node):
    from autobahn.wamp.exception import ApplicationError

    from wamp_client import close, connect

    want = fingerprint(node.pki / "client.crt")
    calls = []

    def authenticate(realm, authid, details):
        calls.append((realm, authid, dict(details)))
        if details["transport"]["client_cert"]["sha1"] == want and authid == want:
            return {"role": "backend", "authid": "device-7"}
        raise ApplicationError("com.example.unknown", "unknown certificate")

    async def body():
        backend = await connect(node.plain_url, name="backend")
        await backend.register(authenticate, "com.example.authenticate")
        loop = asyncio.get_running_loop()
        try:
            c = await loop.run_in_executor(None, lambda: mqtt_over_tls(node.port2, node.pki))
            assert c.connack[1].value == 0, c.connack
            c.c.disconnect()
            c.c.loop_stop()
            realm, authid, info = calls[0]
            assert (realm, authid, info["authmethod"]) == ("realm1", want, "tls"), calls[0]
            assert info["transport"]["type"] == "mqtt", info
            # the authenticator refuses another authid: CONNACK 5 (paho: 135)
            c = await loop.run_in_executor(
                None, lambda: mqtt_over_tls(node.port2, node.pki, "other", expect_rc=5))
            assert c.connack[1].value == 135, c.connack
            c.c.loop_stop()
        finally:
            await close(backend)

    run(body())
