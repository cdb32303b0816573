"""MQTT authentication and role checks (options.auth ticket principals, mosquitto password_file,
allow_anonymous) with a byte-exact client (`Raw`) and paho-mqtt.

- ticket principals (universal `mqtt` options.auth): username/password = authid/ticket; good →
  CONNACK 0 and the principal's role; wrong password, unknown user, username without password
  → CONNACK 4 after ~0.5 s; no credentials (auth without anonymous) → CONNACK 5.
- password_file (written by mosquitto_passwd) with allow_anonymous false: good → 0 (role =
  options.role), bad → 4, none → 5.
- no credential source: any username (and password) is just a name → 0.
- role checks: SUBACK 0x80 per denied filter (granted ones in the same SUBSCRIBE keep their
  QoS); a denied PUBLISH is dropped (QoS 1 still PUBACKed, QoS 2 PUBRECed) and never reaches a
  permissive subscriber; `$SYS/...` is not writable, not even by an admin.

Negative deliveries are checked with an ordered marker: a subscriber gets the marker (published
after the denied message by the same client on the same connection) and nothing before it.

Node: see test_auth_common.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_auth_common import ENV_TICKET, ENV_TICKET_VAR, MIN_FAIL_DELAY, PW_USERS, TICKETS, auth_node_fixture
from test_mqtt_common import PUBCOMP, PUBREC, PUBREL, Paho, Raw, ack_bytes, clients, publish_bytes, uid  # noqa: F401

node = auth_node_fixture()

ACCEPTED, BAD_CREDENTIALS, NOT_AUTHORIZED = 0, 4, 5
DENIED = 0x80


def connack(node, port_name, timeout_ok=3.0, **kw):
    """(return code, seconds until CONNACK, closed-after-refusal) for a Raw CONNECT."""
    c = Raw(node.ports[port_name])
    try:
        t0 = time.monotonic()
        _, rc = c.connect(client_id=uid("c"), **kw)
        took = time.monotonic() - t0
        closed = None
        if rc != ACCEPTED:
            closed = c.wait_closed(timeout_ok) is not None
        return rc, took, closed
    finally:
        if not c.closed:
            c.disconnect()
        c.close()


def expect_refused(node, port_name, code, **kw):
    rc, took, closed = connack(node, port_name, **kw)
    assert rc == code, f"CONNACK return code {rc}, expected {code} ({kw})"
    assert MIN_FAIL_DELAY <= took < 3.0, f"refusal CONNACK after {took:.3f} s, expected ~0.5 s ({kw})"
    assert closed, f"connection not closed after the refusal CONNACK ({kw})"


def raw_login(node, port_name="universal", username=None, password=None):
    c = Raw(node.ports[port_name])
    c.connect_ok(client_id=uid("c"), username=username, password=password)
    return c


def ticket_login(node, authid):
    return raw_login(node, "universal", authid, TICKETS[authid]["ticket"])


def in_parallel(*fns):
    """Runs the (slow: ~0.5 s each) refusal checks concurrently; re-raises the first failure."""
    with ThreadPoolExecutor(len(fns)) as ex:
        for f in [ex.submit(fn) for fn in fns]:
            f.result()


# ---------------------------------------------------------------- ticket principals


def test_ticket_principals_accepted(node):
    for authid, p in TICKETS.items():
        rc, took, _ = connack(node, "universal", username=authid, password=p["ticket"])
        assert rc == ACCEPTED, f"CONNACK {rc} for {authid} with the right ticket"
        assert took < MIN_FAIL_DELAY, f"accepted CONNACK took {took:.3f} s"


def test_ticket_principal_with_paho(node, clients):
    c = clients.add(node.paho("universal", username="alice", password=TICKETS["alice"]["ticket"]))
    topic = f"com/example/{uid()}"
    assert c.subscribe([(topic, 1)]) == [1]
    c.publish(topic, b"hello", qos=1)
    m = c.get()
    assert (m.topic, m.payload) == (topic, b"hello")
    # paho too gets the refusal code for a bad password (paho 2 names the MQTT 3.1.1 code 4
    # by its MQTT 5 reason code 134, "Bad user name or password")
    p = clients.add(Paho(node.ports["universal"]))
    p.c.username_pw_set("alice", "wrong")
    p.connect(expect_rc=BAD_CREDENTIALS)
    rc = p.connack[1]
    assert rc.is_failure and str(rc) == "Bad user name or password", f"paho got CONNACK {rc} ({rc.value})"


def test_ticket_refusals(node):
    alice = TICKETS["alice"]["ticket"]
    in_parallel(
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="alice", password="wrong"),
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="alice",
                               password=TICKETS["root"]["ticket"]),
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="alice", password=""),
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="mallory", password=alice),
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="alice"),
        # options.auth without anonymous: no credentials at all → not authorized
        lambda: expect_refused(node, "universal", NOT_AUTHORIZED),
        # envy's ticket is "${VAR}" in the config: the placeholder itself is not the ticket
        lambda: expect_refused(node, "universal", BAD_CREDENTIALS, username="envy",
                               password="${%s}" % ENV_TICKET_VAR),
    )


def test_ticket_from_environment(node):
    rc, _, _ = connack(node, "universal", username="envy", password=ENV_TICKET)
    assert rc == ACCEPTED, f"CONNACK {rc} for envy with the ticket from ${ENV_TICKET_VAR}"


def test_ticket_over_mqtt_websocket(node, clients):
    """MQTT over WebSocket (/mqtt on the universal port) with the same ticket principals."""
    c = clients.add(node.paho("universal", transport="ws", username="alice",
                              password=TICKETS["alice"]["ticket"]))
    assert c.subscribe([("com/example/ws/#", 1), ("other/#", 1)]) == [1, DENIED]
    bad = clients.add(Paho(node.ports["universal"], transport="ws"))
    bad.c.username_pw_set("alice", "wrong")
    t0 = time.monotonic()
    bad.connect(expect_rc=BAD_CREDENTIALS)
    took = time.monotonic() - t0
    rc = bad.connack[1]
    assert rc.is_failure and str(rc) == "Bad user name or password", f"paho got CONNACK {rc} ({rc.value})"
    assert took >= MIN_FAIL_DELAY, f"refusal after {took:.3f} s"
    anon = clients.add(Paho(node.ports["universal"], transport="ws"))
    anon.connect(expect_rc=NOT_AUTHORIZED)
    rc = anon.connack[1]
    assert rc.is_failure and str(rc) == "Not authorized", f"paho got CONNACK {rc} ({rc.value})"


def test_ticket_principal_role(node):
    """alice (role user: com.example. only) vs root (admin): same filters, different SUBACKs."""
    alice, root = ticket_login(node, "alice"), ticket_login(node, "root")
    try:
        filters = [("com/example/#", 1), ("other/#", 1), ("+/x", 0), ("com/example/a/+", 2), ("#", 0)]
        assert alice.subscribe(filters) == [1, DENIED, DENIED, 2, DENIED], "alice (role user) SUBACK"
        assert root.subscribe(filters) == [1, 1, 0, 2, 0], "root (role admin) SUBACK"
    finally:
        alice.disconnect()
        root.disconnect()


# ---------------------------------------------------------------- password file


def test_password_file_users(node):
    node.require_password_file()
    for user, password in PW_USERS.items():
        rc, _, _ = connack(node, "mqtt_pw", username=user, password=password)
        assert rc == ACCEPTED, f"CONNACK {rc} for password-file user {user!r} ({node.password_tool})"


def test_password_file_refusals(node):
    node.require_password_file()
    in_parallel(
        lambda: expect_refused(node, "mqtt_pw", BAD_CREDENTIALS, username="dev1", password="dev1-pasS"),
        lambda: expect_refused(node, "mqtt_pw", BAD_CREDENTIALS, username="dev1",
                               password=PW_USERS["dev2"]),
        lambda: expect_refused(node, "mqtt_pw", BAD_CREDENTIALS, username="nobody", password="x"),
        lambda: expect_refused(node, "mqtt_pw", BAD_CREDENTIALS, username="dev1"),
        # the ticket principals of another transport are not users here
        lambda: expect_refused(node, "mqtt_pw", BAD_CREDENTIALS, username="alice",
                               password=TICKETS["alice"]["ticket"]),
        # allow_anonymous: false
        lambda: expect_refused(node, "mqtt_pw", NOT_AUTHORIZED),
    )


def test_password_file_next_to_ticket_principal(node):
    """mqtt_pw has a password file (role device) and the ticket principal root (admin): both log
    in, each with its own role."""
    node.require_password_file()
    root = raw_login(node, "mqtt_pw", "root", TICKETS["root"]["ticket"])
    dev = raw_login(node, "mqtt_pw", "dev1", PW_USERS["dev1"])
    try:
        filters = [("other/#", 1), ("cmd/#", 1)]
        assert root.subscribe(filters) == [1, 1], "root (ticket principal, admin) on mqtt_pw"
        assert dev.subscribe(filters) == [DENIED, 1], "dev1 (password file, device) on mqtt_pw"
    finally:
        root.disconnect()
        dev.disconnect()


def test_password_file_role(node, clients):
    """Password-file users get options.role (device: publish sensor., subscribe cmd.)."""
    node.require_password_file()
    c = raw_login(node, "mqtt_pw", "dev1", PW_USERS["dev1"])
    try:
        assert c.subscribe([("cmd/#", 1), ("sensor/#", 1), ("com/example/#", 0)]) == [1, DENIED, DENIED]
    finally:
        c.disconnect()
    # paho as a device: publish sensor data seen by an admin, commands from the admin reach it
    root = ticket_login(node, "root")
    dev = clients.add(node.paho("mqtt_pw", username="dev2", password=PW_USERS["dev2"]))
    try:
        t = uid()
        assert root.subscribe([(f"sensor/{t}/#", 1), (f"cmd/{t}/#", 1)]) == [1, 1]
        assert dev.subscribe([(f"cmd/{t}/#", 1)]) == [1]
        dev.publish(f"cmd/{t}/denied", b"no", qos=1)  # dropped: device may not publish cmd/
        dev.publish(f"sensor/{t}/temp", b"21.5", qos=1)
        m = root.recv_publish()
        assert (m.topic, m.payload) == (f"sensor/{t}/temp", b"21.5"), f"admin got {m} first"
        root.publish(f"cmd/{t}/reboot", b"now", qos=1)
        m = dev.get()
        assert (m.topic, m.payload) == (f"cmd/{t}/reboot", b"now")
    finally:
        root.disconnect()


# ---------------------------------------------------------------- no credential source


def test_no_credential_source_accepts_any_name(node):
    for kw in ({}, {"username": "whoever"}, {"username": "whoever", "password": "anything"},
               {"username": "alice", "password": "not-alice-ticket"}):
        rc, took, _ = connack(node, "mqtt_open", **kw)
        assert rc == ACCEPTED, f"CONNACK {rc} with {kw} on a transport without credential source"
        assert took < MIN_FAIL_DELAY, f"CONNACK took {took:.3f} s"


def test_anonymous_role_from_options_role(node):
    """mqtt_open's clients get options.role guest: subscribe com.example. only, no publish."""
    guest = raw_login(node, "mqtt_open", username="alice", password="whatever")
    root = ticket_login(node, "root")
    try:
        assert guest.subscribe([("com/example/#", 1), ("other/#", 1)]) == [1, DENIED]
        t = uid()
        assert root.subscribe([(f"com/example/{t}/#", 1)]) == [1]
        guest.publish(f"com/example/{t}/denied", b"guest", qos=1)  # PUBACKed, dropped
        root.publish(f"com/example/{t}/marker", b"m", qos=1)
        m = root.recv_publish()
        assert m.topic == f"com/example/{t}/marker", f"root received {m} (guest may not publish)"
        m = guest.recv_publish()
        assert m.topic == f"com/example/{t}/marker", f"guest received {m}"
    finally:
        guest.disconnect()
        root.disconnect()


def test_allow_anonymous_true_next_to_principals(node):
    """mqtt_mixed: auth has ticket principals only, allow_anonymous true → clients without
    credentials get options.role (guest); principals their role; bad logins are still refused."""
    anon = raw_login(node, "mqtt_mixed")
    alice = raw_login(node, "mqtt_mixed", "alice", TICKETS["alice"]["ticket"])
    try:
        filters = [("com/example/#", 1), ("other/#", 1)]
        assert anon.subscribe(filters) == [1, DENIED], "anonymous (guest) SUBACK"
        assert alice.subscribe(filters) == [1, DENIED], "alice (user) SUBACK"
        t = uid()
        anon.publish(f"com/example/{t}/a", b"guest may not publish", qos=1)
        alice.publish(f"com/example/{t}/b", b"user may", qos=1)
        for c, who in ((anon, "anonymous"), (alice, "alice")):
            m = c.recv_publish()
            assert (m.topic, m.payload) == (f"com/example/{t}/b", b"user may"), f"{who} got {m}"
    finally:
        anon.disconnect()
        alice.disconnect()
    in_parallel(
        lambda: expect_refused(node, "mqtt_mixed", BAD_CREDENTIALS, username="alice", password="wrong"),
        lambda: expect_refused(node, "mqtt_mixed", BAD_CREDENTIALS, username="alice"),
        lambda: expect_refused(node, "mqtt_mixed", BAD_CREDENTIALS, username="nobody", password="x"),
    )


# ---------------------------------------------------------------- denied publications


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_denied_publish_dropped(node, qos):
    """alice (user) publishes to other/x: acknowledged per QoS, never delivered to root (admin,
    subscribed to other/#); the marker she publishes next is."""
    alice, root = ticket_login(node, "alice"), ticket_login(node, "root")
    try:
        t = uid()
        assert root.subscribe([(f"other/{t}/#", 2), (f"com/example/{t}/#", 2)]) == [2, 2]
        # Raw.publish checks the PUBACK / PUBREC-PUBREL-PUBCOMP flow for the denied message
        alice.publish(f"other/{t}/x", b"denied", qos=qos, pid=7)
        alice.publish(f"com/example/{t}/marker", b"m", qos=qos, pid=8)
        m = root.recv_publish()
        assert m.topic == f"com/example/{t}/marker", f"root received {m}: a denied publication crossed"
        alice.ping()
    finally:
        alice.disconnect()
        root.disconnect()


def test_denied_qos2_publish_pubrec_then_pubcomp(node):
    """The exact QoS 2 acknowledgements of a denied publication: PUBREC, and PUBCOMP for PUBREL."""
    alice = ticket_login(node, "alice")
    try:
        alice.send(publish_bytes("other/q2", b"x", qos=2, pid=42))
        p = alice.expect(PUBREC)
        assert p.body == b"\x00\x2a", p
        alice.send(ack_bytes(PUBREL, 42))
        p = alice.expect(PUBCOMP)
        assert p.body == b"\x00\x2a", p
    finally:
        alice.disconnect()


def test_sys_not_writable(node):
    """Nobody may publish to $SYS/..., not even an admin (the message is dropped, QoS 1 PUBACKed)."""
    root, watcher = ticket_login(node, "root"), ticket_login(node, "root")
    try:
        t = uid()
        assert watcher.subscribe([(f"$SYS/{t}/#", 1), (f"com/example/{t}", 1)]) == [1, 1]
        root.publish(f"$SYS/{t}/fake", b"forged", qos=1)
        root.publish(f"$SYS/{t}/fake", b"forged", qos=0)
        root.publish(f"com/example/{t}", b"marker", qos=1)
        m = watcher.recv_publish()
        assert m.topic == f"com/example/{t}", f"subscriber received {m}: $SYS was writable"
    finally:
        root.disconnect()
        watcher.disconnect()
