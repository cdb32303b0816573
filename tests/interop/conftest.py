"""Fixtures for the interop tests: start a junction node on a free port.

The binary is $JUNCTION_BIN (tests/run sets it) or target/release/junction.

Fixtures:
  router          a node with the default config (module scope), a `Router`
  router_factory  start nodes with a custom config: router_factory(roles=..., options=...)
  serializer      parametrized over json, msgpack, cbor, ubjson
"""

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from wamp_client import SERIALIZERS

REPO = Path(__file__).resolve().parents[2]
JUNCTION = Path(os.environ.get("JUNCTION_BIN", REPO / "target" / "release" / "junction"))
CROSSBAR = Path(os.environ.get("JUNCTION_CROSSBAR", REPO / "target" / "cbvenv" / "bin" / "crossbar"))

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

ALL_PERMISSIONS = [
    {
        "uri": "",
        "match": "prefix",
        "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
        "disclose": {"caller": True, "publisher": True},
        "cache": True,
    }
]

DEFAULT_TRANSPORT_OPTIONS = {"max_message_size": 1048576, "open_handshake_timeout": 5000}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(port, roles=None, options=None, serializers=None, realm="realm1", realm_options=None):
    """A Crossbar version-2 node config with one router worker and one WebSocket transport."""
    transport_options = dict(DEFAULT_TRANSPORT_OPTIONS)
    transport_options.update(options or {})
    realm_cfg = {
        "name": realm,
        "roles": roles
        if roles is not None
        else [{"name": "anonymous", "permissions": copy.deepcopy(ALL_PERMISSIONS)}],
    }
    if realm_options is not None:
        realm_cfg["options"] = realm_options
    return {
        "version": 2,
        "workers": [
            {
                "type": "router",
                "realms": [realm_cfg],
                "transports": [
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                        "url": f"ws://127.0.0.1:{port}/ws",
                        "serializers": serializers or ["json", "msgpack", "cbor", "ubjson"],
                        "options": transport_options,
                    }
                ],
            }
        ],
    }


def require_binary():
    if not JUNCTION.exists():
        pytest.fail(f"junction binary not found at {JUNCTION} (run `cargo build --release`)")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Routers alive right now, so that a failing test can show their logs.
_LIVE_ROUTERS = []


class Router:
    def __init__(self, config, name="router", cbdir=None):
        """`cbdir`: reuse an existing node directory (a restart; the log is appended to)."""
        require_binary()
        self.port = config["workers"][0]["transports"][0]["endpoint"]["port"]
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.config = config
        self.dir = Path(cbdir) if cbdir else Path(tempfile.mkdtemp(prefix=f"junction-{name}-"))
        (self.dir / "config.json").write_text(json.dumps(config, indent=2))
        self.log_path = self.dir / "node.log"
        self._log = open(self.log_path, "ab" if cbdir else "wb")
        self.proc = subprocess.Popen(
            [str(JUNCTION), "start", "--cbdir", str(self.dir), "--loglevel", "debug"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self.returncode = None
        _LIVE_ROUTERS.append(self)
        self._wait_listening()

    def log(self, tail=20000):
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no log>"
        text = _ANSI.sub("", data.decode("utf-8", "replace"))
        return text if len(text) <= tail else "...\n" + text[-tail:]

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._cleanup()
                pytest.fail(
                    f"junction exited with {self.proc.returncode} before listening on "
                    f"port {self.port}; log:\n{self.log()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        pytest.fail(f"junction did not listen on port {self.port} within {START_TIMEOUT} s; log:\n{self.log()}")

    def terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM; returns (exit code, seconds) or raises AssertionError if it hangs."""
        if self.proc.poll() is not None:
            self._cleanup()
            return self.proc.returncode, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"junction did not exit within {timeout} s of SIGTERM; log:\n{self.log()}"
            ) from None
        self._cleanup()
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._cleanup()

    def _cleanup(self):
        self.returncode = self.proc.returncode
        if self in _LIVE_ROUTERS:
            _LIVE_ROUTERS.remove(self)
        if not self._log.closed:
            self._log.close()

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _stop_checked(router):
    """Teardown: SIGTERM, must exit within STOP_TIMEOUT (print the log otherwise)."""
    was_running = router.proc.poll() is None
    rc, _ = router.terminate()
    if was_running and rc not in (0, -signal.SIGTERM):
        pytest.fail(f"junction exited with {rc} after SIGTERM; log:\n{router.log()}")
    if not was_running:
        pytest.fail(f"junction had already exited ({rc}) before teardown; log:\n{router.log()}")
    router.remove_dir()


@pytest.fixture(scope="module")
def router():
    r = Router(make_config(free_port()), name="default")
    yield r
    _stop_checked(r)


@pytest.fixture
def router_factory():
    started = []

    def start(**kw):
        r = Router(make_config(free_port(), **kw), name="custom")
        started.append(r)
        return r

    yield start
    errors = []
    for r in started:
        if r.proc.poll() is not None and r.returncode is not None:
            # stopped by the test itself (e.g. the shutdown test)
            r.remove_dir()
            continue
        try:
            _stop_checked(r)
        except BaseException as e:  # pytest.fail raises an OutcomeException
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(params=SERIALIZERS)
def serializer(request):
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _LIVE_ROUTERS:
        for r in list(_LIVE_ROUTERS):
            report.sections.append((f"junction log ({r.dir})", r.log(tail=8000)))
