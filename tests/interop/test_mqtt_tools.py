"""MQTT broker with mosquitto's command-line clients (Debian package mosquitto-clients,
installed by tests/run when missing): mosquitto_pub / mosquitto_sub over the universal port
and the standalone mqtt transport."""

import shutil
import subprocess
import time

import pytest

from test_mqtt_common import broker_fixture, clients, paho, uid  # noqa: F401

broker = broker_fixture(name="mqtt-tools")


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found (apt-get install mosquitto-clients; tests/run does it)")
    return path


def sub_proc(port, topic, *extra):
    return subprocess.Popen(
        [tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
         "-C", "1", "-W", "10", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def pub(port, topic, message, *extra):
    body = ["-n"] if message is None else ["-m", message]
    out = subprocess.run(
        [tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
         *body, *extra],
        capture_output=True, timeout=10)
    assert out.returncode == 0, f"mosquitto_pub exited {out.returncode}: {out.stderr.decode()}"


@pytest.mark.parametrize("transport", ["universal", "mqtt"])
@pytest.mark.parametrize("version", ["mqttv311", "mqttv31"])
def test_mosquitto_pub_sub(broker, transport, version):
    port = broker.port(transport)
    topic = uid("mosq") + "/x"
    sp = sub_proc(port, topic, "-V", version)
    try:
        # mosquitto_sub prints nothing when it has subscribed: publish until it has received.
        deadline = time.monotonic() + 8
        while sp.poll() is None and time.monotonic() < deadline:
            pub(port, topic, "hello", "-V", version)
            try:
                sp.wait(0.3)
            except subprocess.TimeoutExpired:
                pass
        out, err = sp.communicate(timeout=5)
    finally:
        if sp.poll() is None:
            sp.kill()
            sp.wait()
    assert sp.returncode == 0, f"mosquitto_sub exited {sp.returncode}: {err.decode()}"
    assert out == b"hello\n"


def test_mosquitto_retained(broker, clients):
    port = broker.universal
    topic = uid("mosqr") + "/x"
    pub(port, topic, "kept", "-r")
    sp = sub_proc(port, topic, "-v")
    out, err = sp.communicate(timeout=10)
    assert sp.returncode == 0, f"mosquitto_sub exited {sp.returncode}: {err.decode()}"
    assert out == f"{topic} kept\n".encode()
    # and paho sees the same retained message
    c = clients.add(paho(broker.standalone, client_id=uid("p")))
    assert c.subscribe([(topic, 1)]) == [1]
    m = c.get()
    assert (m.payload, m.retain, m.qos) == (b"kept", True, 1)
    # mosquitto_pub -r -n deletes it
    pub(port, topic, None, "-r")
    sp = sub_proc(port, topic, "-W", "1")
    out, _ = sp.communicate(timeout=10)
    assert out == b"", f"retained message not deleted by an empty retained publish: {out!r}"


def test_mosquitto_sub_receives_paho_qos2(broker, clients):
    port = broker.standalone
    topic = uid("mosq2") + "/x"
    sp = subprocess.Popen(
        [tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "2",
         "-C", "3", "-W", "10", "-i", uid("msub"), "-c"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        c = clients.add(paho(broker.universal, client_id=uid("p")))
        deadline = time.monotonic() + 8
        n = 0
        while sp.poll() is None and time.monotonic() < deadline:
            c.publish(topic, f"m{n}".encode(), qos=2)
            n += 1
            try:
                sp.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
        out, err = sp.communicate(timeout=5)
    finally:
        if sp.poll() is None:
            sp.kill()
            sp.wait()
    assert sp.returncode == 0, err.decode()
    lines = out.decode().split()
    assert len(lines) == 3 and lines == sorted(lines, key=lambda x: int(x[1:])), lines
