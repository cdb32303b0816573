"""MQTT broker: retained messages and persistent sessions survive a node restart.

With realm `options.mqtt.persistence` on, state lives in `<cbdir>/junction-realm1.redb`. A
second node is started on the same node directory (new ports) after SIGTERM, and after
`kill -9` for what the broker had acknowledged (PUBACK / PUBCOMP).
"""

import shutil

import pytest

from test_mqtt_common import Broker, Paho, Raw, clients, paho, uid  # noqa: F401


@pytest.fixture
def nodes():
    started = []

    def start(**kw):
        b = Broker(name="mqtt-durable", **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        if b.alive():
            b.router.kill()
    if started:
        shutil.rmtree(started[0].dir, ignore_errors=True)


def offline_session(port, clients, cid, filters):
    s = clients.add(Raw(port))
    assert s.connect_ok(cid, clean=False) is False
    assert s.subscribe(filters) == [q for _, q in filters]
    s.disconnect()


def test_state_survives_sigterm_restart(nodes, clients):
    p = uid("dur")
    cid = uid("dur")
    b1 = nodes()
    offline_session(b1.universal, clients, cid, [(f"{p}/q", 1)])
    pub = clients.add(paho(b1.standalone, client_id=uid("p")))
    pub.publish(f"{p}/k/1", b"k1", qos=1, retain=True)
    pub.publish(f"{p}/k/2", b"k2", qos=2, retain=True)
    pub.publish(f"{p}/k/3", b"k3", qos=1, retain=True)
    pub.publish(f"{p}/k/3", b"", qos=1, retain=True)  # deleted
    for i in range(3):
        pub.publish(f"{p}/q", f"m{i}".encode(), qos=1)
    pub.publish(f"{p}/q", b"m3", qos=2)
    pub.disconnect()
    b1.stop()  # SIGTERM: exits 0 within 10 s (checked), directory kept
    assert (b1.dir / "junction-realm1.redb").is_file(), \
        f"no {b1.dir}/junction-realm1.redb: {sorted(x.name for x in b1.dir.iterdir())}"

    b2 = nodes(cbdir=b1.dir)
    pub = clients.add(paho(b2.universal, client_id=uid("p")))
    pub.publish(f"{p}/q", b"m4", qos=1)  # the offline session's subscription survived too
    sub = clients.add(paho(b2.universal, client_id=uid("s")))
    assert sub.subscribe([(f"{p}/k/#", 2)]) == [2]
    got = {m.topic: (m.payload, m.qos, m.retain) for m in sub.get_n(2)}
    assert got == {f"{p}/k/1": (b"k1", 1, True), f"{p}/k/2": (b"k2", 2, True)}
    pub.publish(f"{p}/k/1", b"live", qos=1)
    assert sub.get().payload == b"live", "more retained messages than k/1 and k/2 after restart"
    s = clients.add(Paho(b2.standalone, client_id=cid, clean=False))
    assert s.connect() is True, "persistent session lost across SIGTERM + restart (session_present 0)"
    msgs = s.get_n(5)
    assert [(m.payload, m.qos) for m in msgs] == [(f"m{i}".encode(), 1) for i in range(5)]
    s.disconnect()
    b2.stop()


def test_acknowledged_survives_kill9(nodes, clients):
    p = uid("k9")
    cid = uid("k9")
    b1 = nodes()
    offline_session(b1.universal, clients, cid, [(f"{p}/q", 2)])
    r = clients.add(Raw(b1.standalone))
    r.connect_ok(uid("p"))
    r.publish(f"{p}/q", b"acked-1", qos=1, pid=1)  # returns after PUBACK
    r.publish(f"{p}/q", b"acked-2", qos=2, pid=2)  # returns after PUBCOMP
    r.publish(f"{p}/r", b"retained", qos=1, retain=True, pid=3)
    b1.router.kill()  # SIGKILL right after the acknowledgements
    r.close()

    b2 = nodes(cbdir=b1.dir)
    s = clients.add(Paho(b2.universal, client_id=cid, clean=False))
    assert s.connect() is True, "persistent session lost after kill -9 (session_present 0)"
    got = s.get_n(2)
    assert [(m.payload, m.qos) for m in got] == [(b"acked-1", 1), (b"acked-2", 2)], \
        "acknowledged QoS 1/2 messages for an offline session lost after kill -9"
    sub = clients.add(paho(b2.standalone, client_id=uid("s")))
    assert sub.subscribe([(f"{p}/r", 1)]) == [1]
    m = sub.get()
    assert (m.payload, m.retain) == (b"retained", True), "acknowledged retained message lost after kill -9"
    s.disconnect()
    b2.stop()
