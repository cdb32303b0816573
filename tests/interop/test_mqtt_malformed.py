"""MQTT broker robustness: every malformed packet closes that connection only.

Each case opens its own connection, (usually) completes CONNECT, sends one bad packet and
expects the broker to close the connection within 3 s; a client connected the whole time
(`witness`) must keep working, and the node must keep running. The classes are those of the
conformance checks in the MQTT research note (remaining length, fixed-header flags, QoS 3,
empty SUBSCRIBE/UNSUBSCRIBE, wildcard or empty topic names, bad UTF-8, reserved CONNECT flags,
packet types 0 and 15, ...).
"""

import struct

import pytest

from test_mqtt_common import (CONNACK, SUBACK, Closed, Raw, broker_fixture, clients,  # noqa: F401
                              connect_bytes, enc_len, enc_str, packet, paho, publish_bytes,
                              subscribe_bytes, uid)

broker = broker_fixture(name="mqtt-malformed")


@pytest.fixture(scope="module")
def witness(broker):
    c = paho(broker.standalone, client_id=uid("witness"))
    topic = uid("witness") + "/t"
    assert c.subscribe([(topic, 1)]) == [1]
    c.topic = topic
    yield c
    c.disconnect()


def check_witness(broker, witness):
    assert broker.alive(), f"the node died; log:\n{broker.router.log()}"
    body = uid("ping").encode()
    witness.publish(witness.topic, body, qos=1)
    m = witness.get(timeout=3)
    assert m.payload == body, "the witness client stopped working after a malformed packet elsewhere"
    # and new connections are still accepted
    r = Raw(broker.universal)
    try:
        r.connect_ok(uid("after"))
        r.ping()
    finally:
        r.close()


def raw_publish(topic_bytes, payload=b"x", first=0x30, pid=None):
    body = struct.pack("!H", len(topic_bytes)) + topic_bytes
    if pid is not None:
        body += struct.pack("!H", pid)
    return packet(first, body + payload)


# After a successful CONNECT.
AFTER_CONNECT = {
    "remaining-length-5-bytes": b"\x30\xff\xff\xff\xff\x7f",
    "oversized-packet-2MiB": b"\x30" + enc_len(2 * 1024 * 1024) + b"\x00\x01a" + b"x" * 100,
    "publish-qos3": raw_publish(b"a/b", first=0x36, pid=1),
    "publish-qos1-packet-id-0": publish_bytes("a/b", b"x", qos=1, pid=0),
    "publish-topic-hash": publish_bytes("a/#", b"x"),
    "publish-topic-plus": publish_bytes("a/+/b", b"x"),
    "publish-empty-topic": publish_bytes("", b"x"),
    "publish-topic-invalid-utf8": raw_publish(b"a/\xff\xfe"),
    "publish-topic-nul": raw_publish(b"a\x00b"),
    "publish-topic-surrogate": raw_publish(b"a/\xed\xa0\x80"),
    "publish-topic-longer-than-packet": b"\x30\x05\x00\x64abc",
    "publish-qos1-truncated-packet-id": b"\x32\x04\x00\x01a\x00",
    "subscribe-flags-0": b"\x80" + subscribe_bytes(1, [("a", 0)])[1:],
    "subscribe-no-filters": b"\x82\x02\x00\x01",
    "subscribe-qos3": subscribe_bytes(1, [("a", 3)]),
    "subscribe-reserved-bits": subscribe_bytes(1, [("a", 0x04)]),
    "subscribe-packet-id-0": subscribe_bytes(0, [("a", 0)]),
    "unsubscribe-flags-0": b"\xa0\x05\x00\x01\x00\x01a",
    "unsubscribe-no-filters": b"\xa2\x02\x00\x01",
    "pubrel-flags-0": b"\x60\x02\x00\x01",
    "puback-flags-2": b"\x42\x02\x00\x01",
    "puback-short": b"\x40\x01\x00",
    "pingreq-with-body": b"\xc0\x01\x00",
    "disconnect-flags-1": b"\xe1\x00",
    "packet-type-0": b"\x00\x00",
    "packet-type-15": b"\xf0\x00",
    "connack-from-client": b"\x20\x02\x00\x00",
    "suback-from-client": b"\x90\x03\x00\x01\x00",
    "second-connect": connect_bytes("again"),
}

# As the first packet.
BAD_CONNECT = {
    "connect-reserved-flag": connect_bytes("r", flags=0x03),
    "connect-will-qos-without-will": connect_bytes("r", flags=0x0A),
    "connect-will-retain-without-will": connect_bytes("r", flags=0x22),
    "connect-will-qos3": connect_bytes("r", will=("w", b"x", 3, False)),
    "connect-password-without-username": connect_bytes("r", password="pw"),
    "connect-truncated-client-id": packet(0x10, enc_str("MQTT") + b"\x04\x02\x00\x3c\x00\x10ab"),
    "connect-client-id-invalid-utf8": packet(0x10, enc_str("MQTT") + b"\x04\x02\x00\x3c" + enc_str(b"\xc3\x28")),
    "connect-flags-0x10-0x18": packet(0x18, connect_bytes("r")[2:]),
    "connect-remaining-length-5-bytes": b"\x10\xff\xff\xff\xff\x7f",
}

PORTS = ["universal", "mqtt"]


@pytest.mark.parametrize("transport", PORTS)
@pytest.mark.parametrize("case", sorted(AFTER_CONNECT))
def test_malformed_after_connect_closes_only_that_connection(broker, witness, clients, transport, case):
    r = clients.add(Raw(broker.port(transport)))
    r.connect_ok(uid("bad"))
    r.send(AFTER_CONNECT[case])
    elapsed = r.wait_closed(3.0)
    assert elapsed is not None, f"{case}: connection still open 3 s after a malformed packet"
    check_witness(broker, witness)


@pytest.mark.parametrize("transport", PORTS)
@pytest.mark.parametrize("case", sorted(BAD_CONNECT))
def test_malformed_connect_refused(broker, witness, clients, transport, case):
    r = clients.add(Raw(broker.port(transport)))
    r.send(BAD_CONNECT[case])
    try:
        while True:
            p = r.read_packet(3.0)
            assert not (p.type == CONNACK and p.body[-1:] == b"\x00"), f"{case}: CONNECT accepted"
    except Closed:
        pass
    except TimeoutError:
        pytest.fail(f"{case}: connection still open 3 s after a malformed CONNECT")
    check_witness(broker, witness)


@pytest.mark.parametrize("flt", ["a/#/b", "a#", "a/b+", "#/a", "+a", ""])
def test_invalid_filter_refused(broker, witness, clients, flt):
    """An invalid filter: SUBACK 0x80 for it, or the connection closed; never a subscription."""
    r = clients.add(Raw(broker.standalone))
    r.connect_ok(uid("flt"))
    r.send(subscribe_bytes(3, [(flt, 1)]))
    try:
        p = r.expect(SUBACK, 3.0)
        assert p.body == b"\x00\x03\x80", f"filter {flt!r} granted: SUBACK {p.body!r}"
    except Closed:
        pass
    check_witness(broker, witness)


def test_many_broken_connections_at_once(broker, witness, clients):
    """50 connections, each with one of the broken inputs above, all at once."""
    after, first = sorted(AFTER_CONNECT), sorted(BAD_CONNECT)
    raws = [clients.add(Raw(broker.port(PORTS[i % 2]))) for i in range(50)]
    for i, r in enumerate(raws):
        if i % 3 == 0:
            r.send(BAD_CONNECT[first[i % len(first)]])
        else:
            r.send(connect_bytes(uid("g")) + AFTER_CONNECT[after[i % len(after)]])
    still_open = [i for i, r in enumerate(raws) if r.wait_closed(5.0) is None]
    assert still_open == [], f"connections {still_open} not closed"
    check_witness(broker, witness)
