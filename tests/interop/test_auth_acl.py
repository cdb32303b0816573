"""MQTT `options.acl_file` (mosquitto 2.x ACL file, a junction extension) with paho-mqtt.

The node (one per module) has one realm whose role `anything` may do everything, so only the
ACL file restricts, and these transports:

- `acl`: an `mqtt` transport with `password_file` (alice, bob, carol; written with `junction
  passwd`), `acl_file`, anonymous clients allowed (role `anything`);
- `universal`: the same options on a universal transport's `mqtt` and its MQTT WebSocket path
  `/mqtt` (the ACL applies there too);
- `limited`: the same files with the role `limited` (subscribe under `alice.`, publish under
  `alice.open`): the ACL applies ON TOP of the role, it never grants what the role refuses;
- `open`: an `mqtt` transport without ACL (role `anything`): the permissive writer and the
  checker that sees every message.

ACL (ACL below): anonymous clients read `public/#`; alice reads and writes `alice/#`, reads
`shared/#` except `shared/secret`; bob has no section; carol reads `#` except `private/#`;
every client reads and writes `clients/<client id>/#` and writes `status/<username>`.

Checked:
- Write on PUBLISH: a refused publish is dropped (QoS 1 PUBACKed, QoS 2 completed) and reaches
  no subscriber, not even a permissive one on `open`.
- Subscribe on SUBSCRIBE (junction's rule, see `AclFile::check`): a filter is granted only when
  a readable entry covers all of it, so `#` gets SUBACK 0x80 unless an entry covers `#`
  (carol's `topic read #`); mosquitto itself would grant every SUBSCRIBE and filter on
  delivery. A `deny` covering only part of a filter does not refuse it.
- Read per delivered message: a granted subscription (carol's `#`, alice's `shared/#`) only
  delivers topics the client may read, retained messages included.

Negative deliveries are checked with an ordered marker: a QoS 2 subscriber gets the marker
(published after the refused message, by the same client on the same connection) and nothing
before it.
"""

import subprocess

import pytest

from conftest import ALL_PERMISSIONS, JUNCTION, Router, _stop_checked, free_port
from test_mqtt_common import HOST, Paho, clients, uid, wait_listening  # noqa: F401

DENIED = 0x80

PASSWORDS = {"alice": "alice-pw", "bob": "bob pw with spaces", "carol": "carol-pw"}

ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret

user carol
topic read #
topic deny private/#

# every client
pattern readwrite clients/%c/#
pattern write status/%u
"""


def perm(uri, **allow):
    return {"uri": uri, "match": "prefix", "allow": allow,
            "disclose": {"caller": True, "publisher": True}}


ROLES = [
    {"name": "anything", "permissions": ALL_PERMISSIONS},
    {"name": "limited", "permissions": [perm("alice.", subscribe=True),
                                        perm("alice.open", publish=True)]},
]


def acl_options(role="anything"):
    # Relative paths: resolved against the node directory.
    return {"realm": "realm1", "role": role, "password_file": "passwd", "acl_file": "acl",
            "allow_anonymous": True}


def acl_config(ports):
    ep = lambda name: {"type": "tcp", "port": ports[name], "interface": HOST}  # noqa: E731
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "options": {"mqtt": {"persistence": False}},
                        "roles": ROLES}],
            "transports": [
                {"type": "mqtt", "endpoint": ep("acl"), "options": acl_options()},
                {"type": "universal", "endpoint": ep("universal"),
                 "mqtt": {"options": acl_options()},
                 "websocket": {"mqtt": {"type": "mqtt", "options": acl_options()}}},
                {"type": "mqtt", "endpoint": ep("limited"), "options": acl_options("limited")},
                {"type": "mqtt", "endpoint": ep("open"),
                 "options": {"realm": "realm1", "role": "anything"}},
            ],
        }],
    }


def junction_passwd(path, user, password, create=False):
    cmd = [str(JUNCTION), "passwd", str(path), user, "--password", password]
    if create:
        cmd.append("-c")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}): {r.stderr}{r.stdout}"


class AclNode:
    def __init__(self, cbdir):
        self.ports = {}
        for name in ("acl", "universal", "limited", "open"):
            p = free_port()
            while p in self.ports.values():
                p = free_port()
            self.ports[name] = p
        for i, (user, password) in enumerate(PASSWORDS.items()):
            junction_passwd(cbdir / "passwd", user, password, create=i == 0)
        lines = (cbdir / "passwd").read_text().splitlines()
        assert [line.split(":")[0] for line in lines] == list(PASSWORDS), lines
        (cbdir / "acl").write_text(ACL)
        self.router = Router(acl_config(self.ports), name="acl", cbdir=cbdir)
        for port in self.ports.values():
            wait_listening(port, self.router)

    def client(self, port_name="acl", user=None, client_id="", transport="tcp"):
        """A connected paho client; `user` logs in with its password file password."""
        if port_name == "ws":
            port_name, transport = "universal", "ws"
        c = Paho(self.ports[port_name], transport=transport, client_id=client_id)
        if user is not None:
            c.c.username_pw_set(user, PASSWORDS[user])
        c.connect()
        return c


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = AclNode(tmp_path_factory.mktemp("acl-node"))
    yield n
    _stop_checked(n.router)


@pytest.fixture
def checker(node, clients):
    """A client on the transport without ACL: sees every message of the realm."""
    return clients.add(node.client("open", client_id=uid("checker")))


def refused_publish(sender, topic, marker, watcher, qos=1):
    """`sender` publishes `topic` (refused by the ACL or the role), then `marker` (allowed) at
    QoS 2; `watcher` (subscribed at QoS 2 to both) must get the marker and nothing before it."""
    sender.publish(topic, b"refused", qos=qos)  # acknowledged (PUBACK / PUBCOMP) all the same
    sender.publish(marker, b"marker", qos=2)
    before = watcher.until(marker)
    assert before == [], f"refused publish to {topic!r} was delivered: {before}"


# ---------------------------------------------------------------- alice (user section)


@pytest.mark.parametrize("port_name", ["acl", "universal", "ws"])
def test_alice_own_topics(node, clients, port_name):
    """alice may publish and subscribe alice/#; her own subscription receives what she sends."""
    alice = clients.add(node.client(port_name, "alice", client_id=uid("alice")))
    u = uid()
    assert alice.subscribe([(f"alice/{u}/#", 1), ("alice/+", 1)]) == [1, 1]
    alice.publish(f"alice/{u}/x", b"mine", qos=1)
    m = alice.get()
    assert (m.topic, m.payload) == (f"alice/{u}/x", b"mine")


@pytest.mark.parametrize("port_name", ["acl", "universal", "ws"])
def test_alice_subscribe_rule(node, clients, port_name):
    """Subscribe is granted only for filters a readable entry of alice's covers: not `#`, not
    `+/x`, not public/# (anonymous entries are not alice's), not shared/secret (denied), but
    shared/# (the deny covers only part of it)."""
    alice = clients.add(node.client(port_name, "alice", client_id=uid("alice")))
    filters = [("#", 0), ("alice/#", 1), ("+/x", 0), ("shared/#", 1), ("shared/secret", 0),
               ("shared/+", 2), ("public/#", 0), ("clients/#", 0), ("alice", 0)]
    assert alice.subscribe(filters) == [DENIED, 1, DENIED, 1, DENIED, 2, DENIED, DENIED, 0]


def test_alice_reads_shared(node, clients, checker):
    """alice subscribes shared/# and receives what a permissive writer publishes there, except
    shared/secret (the Read check at delivery drops it)."""
    alice = clients.add(node.client("acl", "alice", client_id=uid("alice")))
    assert alice.subscribe([("shared/#", 2)]) == [2]
    checker.publish("shared/a", b"a", qos=1)
    checker.publish("shared/secret", b"secret", qos=1)
    checker.publish("shared/b", b"b", qos=0)
    checker.publish("shared/marker", b"m", qos=2)
    before = alice.until("shared/marker")
    assert [(m.topic, m.payload) for m in before] == [("shared/a", b"a"), ("shared/b", b"b")], \
        f"alice's shared/# delivered {before} (shared/secret must be dropped)"


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_alice_may_not_write_shared(node, clients, checker, qos):
    """alice's shared/# is read-only: her publish there is dropped (QoS 1/2 still acknowledged)
    and reaches neither a permissive subscriber nor her own subscription."""
    alice = clients.add(node.client("acl", "alice", client_id=uid("alice")))
    u = uid()
    assert alice.subscribe([("shared/#", 2), (f"alice/{u}/#", 2)]) == [2, 2]
    assert checker.subscribe([("shared/#", 2), (f"alice/{u}/#", 2)]) == [2, 2]
    refused_publish(alice, f"shared/{u}", f"alice/{u}/marker", checker, qos=qos)
    before = alice.until(f"alice/{u}/marker")
    assert before == [], f"alice received her own refused publish: {before}"


# ---------------------------------------------------------------- bob (no section: patterns only)


def test_bob_has_no_topics(node, clients, checker):
    """bob has no user section: every filter outside his patterns is refused, and he may not
    write alice/# (marker: his own status/bob)."""
    bob = clients.add(node.client("acl", "bob", client_id=uid("bob")))
    assert bob.subscribe([("alice/#", 1), ("shared/#", 1), ("public/#", 1), ("#", 0)]) == \
        [DENIED] * 4
    u = uid()
    assert checker.subscribe([(f"alice/{u}/#", 2), ("status/bob", 2)]) == [2, 2]
    refused_publish(bob, f"alice/{u}/x", "status/bob", checker)


def test_username_pattern(node, clients, checker):
    """`pattern write status/%u`: bob writes status/bob (write only: he may not subscribe to it),
    not status/alice."""
    bob = clients.add(node.client("acl", "bob", client_id=uid("bob")))
    assert checker.subscribe([("status/#", 2)]) == [2]
    bob.publish("status/bob", b"up", qos=1)
    m = checker.get()
    assert (m.topic, m.payload) == ("status/bob", b"up"), f"checker got {m}"
    refused_publish(bob, "status/alice", "status/bob", checker)
    assert bob.subscribe([("status/bob", 1)]) == [DENIED]


@pytest.mark.parametrize("user", ["bob", None])
def test_client_id_pattern(node, clients, checker, user):
    """`pattern readwrite clients/%c/#`: a client with id c1 (bob, or anonymous) reads and writes
    clients/c1/#, nothing of another client id."""
    c1 = clients.add(node.client("acl", user, client_id="c1"))
    assert c1.subscribe([("clients/c1/#", 2), ("clients/c2/#", 1), ("clients/#", 0),
                         ("clients/+/x", 0)]) == [2, DENIED, DENIED, DENIED]
    assert checker.subscribe([("clients/#", 2)]) == [2]
    c1.publish("clients/c1/x", b"hello", qos=1)
    m = checker.get()
    assert (m.topic, m.payload) == ("clients/c1/x", b"hello"), f"checker got {m}"
    m = c1.get()
    assert (m.topic, m.payload) == ("clients/c1/x", b"hello"), f"c1 got {m}"
    refused_publish(c1, "clients/c2/x", "clients/c1/marker", checker)
    m = c1.get()
    assert m.topic == "clients/c1/marker", f"c1 got {m}"
    # A permissive writer's message to clients/c1 reaches c1.
    checker.publish("clients/c1/y", b"y", qos=2)
    m = c1.get()
    assert (m.topic, m.payload) == ("clients/c1/y", b"y"), f"c1 got {m}"


# ---------------------------------------------------------------- anonymous clients


def test_anonymous_reads_public(node, clients, checker):
    """Anonymous clients get the entries before the first `user` line: read public/#, no write
    there (marker: clients/<their client id>/..., a pattern), nothing of alice's; `status/%u`
    patterns are skipped for them."""
    cid = uid("anon")
    anon = clients.add(node.client("acl", None, client_id=cid))
    assert anon.subscribe([("public/#", 2), ("alice/#", 1), ("#", 0)]) == [2, DENIED, DENIED]
    u = uid()
    checker.publish(f"public/{u}", b"news", qos=1)
    m = anon.get()
    assert (m.topic, m.payload) == (f"public/{u}", b"news"), f"anonymous got {m}"
    assert checker.subscribe([("public/#", 2), (f"clients/{cid}/#", 2), ("status/#", 2)]) == \
        [2, 2, 2]
    refused_publish(anon, f"public/{u}/x", f"clients/{cid}/marker", checker)
    refused_publish(anon, "status/anonymous", f"clients/{cid}/marker2", checker)


# ---------------------------------------------------------------- carol: `#` filtered on delivery


def test_hash_subscription_filtered_on_delivery(node, clients, checker):
    """carol's `topic read #` covers `#`, so her SUBSCRIBE to `#` is granted; each delivery is
    then checked: private/# (denied) never arrives, retained messages included."""
    u = uid()
    checker.publish(f"private/{u}/kept", b"secret", qos=1, retain=True)
    checker.publish(f"other/{u}/kept", b"visible", qos=1, retain=True)
    try:
        carol = clients.add(node.client("acl", "carol", client_id=uid("carol")))
        assert carol.subscribe([("#", 2), ("private/#", 0)]) == [2, DENIED]
        checker.publish(f"private/{u}/x", b"secret", qos=1)
        checker.publish(f"other/{u}/x", b"x", qos=1)
        checker.publish(f"private/{u}/y", b"secret", qos=0)
        checker.publish(f"other/{u}/marker", b"m", qos=2)
        before = [(m.topic, m.payload, m.retain) for m in carol.until(f"other/{u}/marker")
                  if u in m.topic]
        assert before == [(f"other/{u}/kept", b"visible", True), (f"other/{u}/x", b"x", False)], \
            f"carol's `#` delivered {before} (private/ must be dropped)"
    finally:
        checker.publish(f"private/{u}/kept", b"", qos=1, retain=True)
        checker.publish(f"other/{u}/kept", b"", qos=1, retain=True)


# ---------------------------------------------------------------- on top of the role


def test_acl_on_top_of_role(node, clients, checker):
    """On `limited` (role: subscribe alice., publish alice.open) the same ACL applies too: what
    the ACL grants but the role refuses is refused, and the other way round."""
    alice = clients.add(node.client("limited", "alice", client_id=uid("alice")))
    # shared/#: ACL yes, role no; public/#: role no, ACL no; alice/#: both.
    assert alice.subscribe([("alice/#", 2), ("shared/#", 1)]) == [2, DENIED]
    anon = clients.add(node.client("limited", None, client_id=uid("anon")))
    # public/#: ACL yes (anonymous), role no; alice/#: role yes, ACL no.
    assert anon.subscribe([("public/#", 1), ("alice/#", 1)]) == [DENIED, DENIED]
    u = uid()
    assert checker.subscribe([(f"alice/{u}/#", 2), ("alice/open/#", 2)]) == [2, 2]
    # alice/<u>/x: ACL yes, role no (publish only under alice.open).
    refused_publish(alice, f"alice/{u}/x", f"alice/open/{u}", checker)
    m = alice.get()
    assert m.topic == f"alice/open/{u}", f"alice got {m}"
