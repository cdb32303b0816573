"""WAMP-cryptosign (Ed25519) with Autobahn|Python's own CryptosignKey.

A websocket transport whose `auth` has only `cryptosign` principals: the right key joins with
the principal's role (by authid, or found by its public key), a key that is not authorized, an
unknown authid and a request for channel binding are refused.
"""

import os

import pytest
import txaio

txaio.use_asyncio()

from autobahn.wamp import cryptosign  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

from conftest import ALL_PERMISSIONS, Router, _stop_checked, free_port  # noqa: E402
from wamp_client import Client, join_outcome, run  # noqa: E402

GOOD = cryptosign.CryptosignKey.from_bytes(os.urandom(32))
OTHER = cryptosign.CryptosignKey.from_bytes(os.urandom(32))


def config(port):
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [
                {"name": "device", "permissions": ALL_PERMISSIONS},
            ]}],
            "transports": [{
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                "url": f"ws://127.0.0.1:{port}/ws",
                "auth": {"cryptosign": {"type": "static", "principals": {
                    "dev1": {"authorized_keys": [GOOD.public_key()], "role": "device"},
                }}},
            }],
        }],
    }


@pytest.fixture(scope="module")
def node():
    r = Router(config(free_port()), name="cryptosign")
    yield r
    _stop_checked(r)


class SignClient(Client):
    def __init__(self, cfg, key, authid=None, channel_binding=None):
        super().__init__(cfg, name="cryptosign")
        self.key, self.want_authid, self.channel_binding = key, authid, channel_binding

    def onConnect(self):
        extra = {"pubkey": self.key.public_key()}
        if self.channel_binding:
            extra["channel_binding"] = self.channel_binding
        self.join(self.config.realm, authmethods=["cryptosign"], authid=self.want_authid, authextra=extra)

    def onChallenge(self, challenge):
        assert challenge.method == "cryptosign"
        assert len(challenge.extra["challenge"]) == 64
        return self.key.sign_challenge(challenge)


async def attempt(port, key, serializer="json", **kw):
    s = SignClient(ComponentConfig(realm="realm1"), key, **kw)
    return await join_outcome(s, f"ws://127.0.0.1:{port}/ws", serializer)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor", "ubjson"])
def test_authorized_key_joins(node, serializer):
    details, reason = run(attempt(node.port, GOOD, serializer, authid="dev1"))
    assert reason is None, reason
    assert (details.authid, details.authrole, details.authmethod) == ("dev1", "device", "cryptosign")


def test_principal_found_by_public_key(node):
    details, reason = run(attempt(node.port, GOOD))
    assert reason is None, reason
    assert details.authid == "dev1"


def test_wrong_key_unknown_authid_and_channel_binding_are_refused(node):
    for kw in ({"key": OTHER, "authid": "dev1"}, {"key": OTHER}, {"key": GOOD, "authid": "nobody"},
               {"key": GOOD, "authid": "dev1", "channel_binding": "tls-unique"}):
        key = kw.pop("key")
        details, reason = run(attempt(node.port, key, **kw))
        assert details is None and reason == "wamp.error.not_authorized", (kw, details, reason)
