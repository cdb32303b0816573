"""Shared helpers of the authentication tests (tests/interop/test_auth_*.py). Holds no test.

One node (`AuthNode`) serves every case:

- `universal` port: RawSocket and WebSocket (/ws) with `auth` = ticket + wampcra and NO
  anonymous; MQTT (and MQTT over WebSocket at /mqtt) with `options.auth` = ticket principals
  (no anonymous either).
- `ws` port: a `websocket` transport with anonymous (role `guest`) + ticket.
- `rs` port: a `rawsocket` transport with ticket + wampcra.
- `mqtt_pw` port: an `mqtt` transport with a mosquitto `password_file`, `allow_anonymous:
  false`, `role` `device`, and one ticket principal (root).
- `mqtt_open` port: an `mqtt` transport with no credential source (any username is a name),
  `role` `guest`.
- `mqtt_mixed` port: ticket principals plus `allow_anonymous: true` (anonymous → `guest`).

The ticket principal `envy` has the ticket "${JUNCTION_AUTH_TEST_TICKET}" in the config, read
from the environment the node starts with.

Every MQTT transport maps every URI as `utf8`, so an MQTT payload b"x" is the WAMP event
args ["x"] and back.

Roles (realm1):
  user    everything under `com.example.` (prefix), nothing else
  admin   everything
  guest   subscribe under `com.example.` only
  device  publish under `sensor.`, subscribe under `cmd.`
"""

import asyncio
import os
import shutil
import subprocess
import time

import pytest
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

from conftest import ALL_PERMISSIONS, JUNCTION, Router, _stop_checked, free_port
from test_mqtt_common import HOST, Paho, Raw, wait_listening
from wamp_client import STEP_TIMEOUT, Client, expect_error, make_serializer  # noqa: F401 (re-exported)

ALLOW_ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


def perm(uri, match="prefix", **allow):
    return {"uri": uri, "match": match, "allow": allow, "disclose": {"caller": True, "publisher": True}}


ROLES = [
    {"name": "user", "permissions": [perm("com.example.", **ALLOW_ALL)]},
    {"name": "admin", "permissions": ALL_PERMISSIONS},
    {"name": "guest", "permissions": [perm("com.example.", subscribe=True)]},
    {"name": "device", "permissions": [perm("sensor.", publish=True), perm("cmd.", subscribe=True)]},
]

# WAMP ticket principals (also the MQTT ones: username = authid, password = ticket).
TICKETS = {
    "alice": {"ticket": "alice-ticket-1", "role": "user"},
    "root": {"ticket": "root-ticket-2", "role": "admin"},
}
# A principal whose ticket comes from the environment ("${VAR}", Crossbar's maybe_from_env); the
# node is started with ENV_TICKET_VAR set to ENV_TICKET.
ENV_TICKET_VAR = "JUNCTION_AUTH_TEST_TICKET"
ENV_TICKET = "ticket-from-the-environment"
TICKETS_CONFIG = {**TICKETS, "envy": {"ticket": "${%s}" % ENV_TICKET_VAR, "role": "user"}}
# WAMP-CRA users: bob plain, carol salted (the server derives the key from the secret).
CRA_USERS = {
    "bob": {"secret": "bob-secret", "role": "user"},
    "carol": {"secret": "carol-secret", "role": "admin", "salt": "salt123", "iterations": 100,
              "keylen": 16},
}
# mosquitto password file users (role `device` from the transport's options.role).
PW_USERS = {"dev1": "dev1-pass", "dev2": "dev2 pass with spaces"}

SERIALIZERS = ["json", "msgpack", "cbor", "ubjson"]
UTF8_ALL = {"": {"type": "utf8"}}

# How long a failed authentication must take at least (the server waits 0.5 s).
MIN_FAIL_DELAY = 0.45


def wamp_auth(anonymous=None, ticket=True, wampcra=True):
    auth = {}
    if anonymous:
        auth["anonymous"] = {"type": "static", "role": anonymous}
    if ticket:
        auth["ticket"] = {"type": "static", "principals": TICKETS_CONFIG}
    if wampcra:
        auth["wampcra"] = {"type": "static", "users": CRA_USERS}
    return auth


def auth_config(ports, password_file):
    ep = lambda port: {"type": "tcp", "port": port, "interface": HOST}  # noqa: E731
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "options": {"mqtt": {"persistence": False, "sys_interval": 1}},
                "roles": ROLES,
            }],
            "transports": [
                {
                    "type": "universal",
                    "endpoint": ep(ports["universal"]),
                    "rawsocket": {"serializers": SERIALIZERS, "auth": wamp_auth()},
                    "websocket": {
                        "ws": {"type": "websocket", "serializers": SERIALIZERS, "auth": wamp_auth()},
                        # MQTT over WebSocket: the same ticket principals
                        "mqtt": {"type": "mqtt", "options": {
                            "realm": "realm1", "payload_mapping": UTF8_ALL,
                            "auth": {"ticket": {"type": "static", "principals": TICKETS_CONFIG}},
                        }},
                    },
                    "mqtt": {"options": {
                        "realm": "realm1",
                        "payload_mapping": UTF8_ALL,
                        "auth": {"ticket": {"type": "static", "principals": TICKETS_CONFIG}},
                    }},
                },
                {
                    "type": "websocket",
                    "endpoint": ep(ports["ws"]),
                    "url": f"ws://{HOST}:{ports['ws']}/ws",
                    "serializers": SERIALIZERS,
                    "auth": wamp_auth(anonymous="guest", wampcra=False),
                },
                {
                    "type": "rawsocket",
                    "endpoint": ep(ports["rs"]),
                    "serializers": SERIALIZERS,
                    "auth": wamp_auth(),
                },
                {
                    "type": "mqtt",
                    "endpoint": ep(ports["mqtt_pw"]),
                    "options": {"realm": "realm1", "role": "device", "payload_mapping": UTF8_ALL,
                                "password_file": str(password_file), "allow_anonymous": False,
                                # ticket principals next to the password file: root only
                                "auth": {"ticket": {"type": "static", "principals": {
                                    "root": TICKETS["root"]}}}},
                },
                {
                    "type": "mqtt",
                    "endpoint": ep(ports["mqtt_open"]),
                    "options": {"realm": "realm1", "role": "guest", "payload_mapping": UTF8_ALL},
                },
                {
                    # auth without anonymous, but allow_anonymous true: anonymous clients get
                    # options.role (guest), principals theirs
                    "type": "mqtt",
                    "endpoint": ep(ports["mqtt_mixed"]),
                    "options": {"realm": "realm1", "role": "guest", "payload_mapping": UTF8_ALL,
                                "allow_anonymous": True,
                                "auth": {"ticket": {"type": "static", "principals": TICKETS}}},
                },
            ],
        }],
    }


def write_password_file(path):
    """Creates a mosquitto password file with PW_USERS; returns the tool that wrote it.

    mosquitto_passwd (Debian package `mosquitto`) when installed, else `junction passwd`;
    None when neither is there (the password-file tests then skip)."""
    tool = shutil.which("mosquitto_passwd")
    for i, (user, password) in enumerate(PW_USERS.items()):
        if tool:
            cmd = [tool, "-b", str(path), user, password]
            if i == 0:
                cmd.insert(1, "-c")
        else:
            cmd = [str(JUNCTION), "passwd", str(path), user, "--password", password]
            if i == 0:
                cmd.append("-c")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            if not tool and "unrecognized subcommand" in r.stderr:
                return None
            raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr}{r.stdout}")
    return "mosquitto_passwd" if tool else "junction passwd"


class AuthNode:
    def __init__(self, tmp_dir):
        self.ports = {}
        for name in ("universal", "ws", "rs", "mqtt_pw", "mqtt_open", "mqtt_mixed"):
            p = free_port()
            while p in self.ports.values():
                p = free_port()
            self.ports[name] = p
        pw = tmp_dir / "passwd"
        self.password_tool = write_password_file(pw)
        if self.password_tool is None:
            # No tool to write a mosquitto password file: serve an empty one (the
            # password-file tests skip), so the other tests still run.
            pw.write_text("")
        os.environ[ENV_TICKET_VAR] = ENV_TICKET
        try:
            self.router = Router(auth_config(self.ports, pw), name="auth")
        finally:
            del os.environ[ENV_TICKET_VAR]
        for name, port in self.ports.items():
            wait_listening(port, self.router)
        self.url = f"ws://{HOST}:{self.ports['universal']}/ws"

    def require_password_file(self):
        if self.password_tool is None:
            pytest.skip("neither mosquitto_passwd (package mosquitto) nor `junction passwd` "
                        "is available to write a mosquitto password file")

    def raw(self, port_name="universal"):
        return Raw(self.ports[port_name])

    def paho(self, port_name="universal", username=None, password=None, **kw):
        c = Paho(self.ports[port_name], **kw)
        if username is not None:
            c.c.username_pw_set(username, password)
        c.connect()
        return c


def auth_node_fixture():
    @pytest.fixture(scope="module")
    def node(tmp_path_factory):
        n = AuthNode(tmp_path_factory.mktemp("auth"))
        yield n
        _stop_checked(n.router)

    return node


# ---------------------------------------------------------------- WAMP clients


class AuthClient(Client):
    """A Client that joins with authmethods/authid and answers CHALLENGE with `answer(challenge)`
    (a function returning the signature). Records the challenges and when it answered / left."""

    def __init__(self, config, authmethods=None, authid=None, answer=None, name=""):
        super().__init__(config, name=name)
        self._want_authmethods = authmethods
        self._want_authid = authid
        self.answer = answer
        self.challenges = []
        self.t_answered = None
        self.t_left = None
        self.leave_details = None

    def onConnect(self):
        self.join(self.config.realm, authmethods=self._want_authmethods, authid=self._want_authid)

    def onChallenge(self, challenge):
        self.challenges.append(challenge)
        if self.answer is None:
            raise Exception(f"unexpected CHALLENGE {challenge.method!r}")
        sig = self.answer(challenge)
        self.t_answered = time.monotonic()
        return sig

    def onLeave(self, details):
        if self.t_left is None:
            self.t_left = time.monotonic()
            self.leave_details = details
        return super().onLeave(details)


async def open_auth(kind, port, serializer="json", realm="realm1", **auth):
    """Connects an AuthClient over `kind` ("ws" or "rs"); does not wait for the join."""
    loop = asyncio.get_running_loop()
    session = AuthClient(ComponentConfig(realm=realm), name=f"{kind}-{serializer}", **auth)
    if kind == "ws":
        factory = WampWebSocketClientFactory(lambda: session, url=f"ws://{HOST}:{port}/ws",
                                             serializers=[make_serializer(serializer)])
    elif kind == "rs":
        factory = WampRawSocketClientFactory(lambda: session, serializer=make_serializer(serializer))
    else:
        raise ValueError(kind)
    await asyncio.wait_for(loop.create_connection(factory, HOST, port), STEP_TIMEOUT)
    return session


async def joined(session, timeout=STEP_TIMEOUT):
    return await asyncio.wait_for(asyncio.shield(session.joined), timeout)


async def refused(session, timeout=STEP_TIMEOUT):
    """Waits for the join to fail; returns the ABORT reason."""
    from wamp_client import JoinFailed

    try:
        details = await asyncio.wait_for(asyncio.shield(session.joined), timeout)
    except JoinFailed as e:
        return e.details.reason
    raise AssertionError(f"session joined (authid={details.authid!r}, authrole={details.authrole!r}), "
                         "expected an ABORT")


def ticket_answer(ticket):
    def answer(challenge):
        assert challenge.method == "ticket", f"CHALLENGE method {challenge.method!r}, expected 'ticket'"
        return ticket
    return answer


def aio(fn, *args, **kw):
    """Runs a blocking (paho / Raw) call in a thread, keeping the event loop running."""
    return asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))
