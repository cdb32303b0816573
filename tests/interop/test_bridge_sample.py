"""The README's MQTT↔WAMP example on the sample node config (node-config/config.json, whose
universal port's mqtt settings map every URI as native json), with mosquitto's command-line
clients and Autobahn|Python:

    mosquitto_pub -t sensor/1/temp -m '{"args":[21.5]}'   → WAMP sensor.1.temp args [21.5]
    WAMP publish actuator.1.set args [1]                  → mosquitto_sub -t 'actuator/#'

The config is a copy with the port replaced by a free one and the web root made absolute.
"""

import asyncio
import json
import shutil
import subprocess
import time

import pytest
from autobahn.wamp.types import PublishOptions

from conftest import REPO, Router, _stop_checked, free_port
from test_bridge_common import aio, wsub
from wamp_client import run, sessions


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found (apt-get install mosquitto-clients; tests/run does it)")
    return path


def sample_config(port):
    cfg = json.loads((REPO / "node-config" / "config.json").read_text())
    first = True
    for worker in cfg["workers"]:
        for t in worker.get("transports", []):
            ep = t.get("endpoint", {})
            if ep.get("type") == "tcp":
                # The first TCP transport gets `port`; others (the authenticated example) a
                # free port of their own.
                ep["port"] = port if first else free_port()
                ep["interface"] = "127.0.0.1"
                if "url" in t:
                    t["url"] = f"ws://127.0.0.1:{ep['port']}/ws"
                first = False
            for path in t.get("web", {}).get("paths", {}).values():
                if path.get("type") == "static":
                    path["directory"] = str(REPO / "static")
    return cfg


@pytest.fixture(scope="module")
def sample():
    port = free_port()
    cfg = sample_config(port)
    uni = cfg["workers"][0]["transports"][0]
    assert uni["type"] == "universal" and "mqtt" in uni, "the sample's first transport is not a universal port with mqtt"
    mapping = uni["mqtt"].get("options", {}).get("payload_mapping")
    assert mapping == {"": {"type": "native", "serializer": "json"}}, \
        f"sample payload_mapping is {mapping!r}, expected a native json catch-all"
    r = Router(cfg, name="bridge-sample")
    yield r
    _stop_checked(r)


@pytest.mark.parametrize("wser", ["json", "cbor"])
def test_mosquitto_pub_to_autobahn(sample, wser):
    async def body():
        async with sessions(sample.url) as s:
            w = await s.open(wser)
            ev = await wsub(w, "sensor.1.temp")
            out = await aio(subprocess.run,
                            [tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(sample.port),
                             "-t", "sensor/1/temp", "-m", '{"args":[21.5]}'],
                            capture_output=True, timeout=10)
            assert out.returncode == 0, f"mosquitto_pub exited {out.returncode}: {out.stderr!r}"
            e = await ev.get("sensor.1.temp event")
            assert e.args == [21.5] and isinstance(e.args[0], float) and e.kwargs == {}, e

    run(body())


def test_autobahn_to_mosquitto_sub(sample):
    sp = subprocess.Popen(
        [tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(sample.port), "-t", "actuator/#",
         "-v", "-C", "1", "-W", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    async def body():
        async with sessions(sample.url) as s:
            w = await s.open("json")
            # mosquitto_sub prints nothing once subscribed: publish until it has received.
            deadline = time.monotonic() + 8
            while sp.poll() is None and time.monotonic() < deadline:
                await w.publish("actuator.1.set", 1, options=PublishOptions(acknowledge=True))
                await asyncio.sleep(0.2)

    try:
        run(body())
        out, err = sp.communicate(timeout=5)
    finally:
        if sp.poll() is None:
            sp.kill()
            sp.wait()
    assert sp.returncode == 0, f"mosquitto_sub exited {sp.returncode}: {err.decode()}"
    topic, _, payload = out.decode().rstrip("\n").partition(" ")
    assert topic == "actuator/1/set", out
    obj = json.loads(payload)
    assert obj.get("args") == [1] and not obj.get("kwargs"), f"payload {payload!r}"
    assert set(obj) <= {"args", "kwargs"}, f"payload {payload!r}"


def test_strict_uri_check_keeps_other_topics_mqtt(sample):
    """The sample realm has uri_check strict: `sensor/2/Bad-Level` has no WAMP URI there."""
    async def body():
        async with sessions(sample.url) as s:
            w = await s.open("json")
            ev = await wsub(w, "sensor.2", match="prefix")
            for topic, msg in (("sensor/2/Bad-Level", '{"args":[0]}'), ("sensor/2/ok", '{"args":[1]}')):
                out = await aio(subprocess.run,
                                [tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(sample.port),
                                 "-q", "1", "-t", topic, "-m", msg], capture_output=True, timeout=10)
                assert out.returncode == 0, out.stderr
            e = await ev.get()
            assert (e.details.topic, e.args) == ("sensor.2.ok", [1]), e
            await ev.none()

    run(body())
