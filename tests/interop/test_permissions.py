"""Static role permissions (Crossbar `roles[].permissions[]`)."""

import asyncio

import pytest
from autobahn.wamp.types import PublishOptions

from wamp_client import STEP_TIMEOUT, expect_error, run, sessions

RESTRICTED_ROLES = [
    {
        "name": "anonymous",
        "permissions": [
            {"uri": "com.example.", "match": "prefix", "allow": {"subscribe": True}},
            {"uri": "com.example.add2", "match": "exact", "allow": {"call": True}},
        ],
    }
]


@pytest.fixture
def restricted(router_factory):
    return router_factory(roles=RESTRICTED_ROLES)


def test_permissions(restricted, serializer):
    async def body():
        async with sessions(restricted.url) as s:
            a = await s.open(serializer)
            # allowed: subscribe under the prefix (and on the prefix itself)
            sub = await a.subscribe(lambda *x: None, "com.example.topic")
            assert sub.id
            sub = await a.subscribe(lambda *x: None, "com.example.deep.er.topic")
            assert sub.id
            # not allowed: subscribe elsewhere
            await expect_error(a.subscribe(lambda *x: None, "org.other.topic"))
            await expect_error(a.subscribe(lambda *x: None, "com.examplex"))
            # not allowed: publish anywhere (acknowledged, so the error comes back)
            ack = PublishOptions(acknowledge=True)
            await expect_error(a.publish("com.example.topic", 1, options=ack))
            await expect_error(a.publish("org.other.topic", 1, options=ack))
            # not allowed: register, even the procedure the role may call
            await expect_error(a.register(lambda: 1, "com.example.add2"))
            await expect_error(a.register(lambda: 1, "com.example.other"))
            # call: permitted on the exact URI (nobody registered it -> no_such_procedure)
            await expect_error(a.call("com.example.add2", 1, 2), "wamp.error.no_such_procedure")
            # not permitted elsewhere, not even below the exact URI
            await expect_error(a.call("com.example.add3", 1, 2))
            await expect_error(a.call("com.example.add2.x", 1, 2))
            assert a.is_attached()

    run(body())


def test_wildcard_permission_and_deny_default(router_factory):
    roles = [
        {
            "name": "anonymous",
            "permissions": [
                {"uri": "sensors..temp", "match": "wildcard", "allow": {"publish": True, "subscribe": True}},
                {"uri": "com.example.", "match": "prefix", "allow": {"register": True, "call": True}},
                {"uri": "com.example.secret", "match": "exact", "allow": {"register": True, "call": False}},
            ],
        }
    ]
    r = router_factory(roles=roles)

    async def body():
        async with sessions(r.url) as s:
            a = await s.open("json")
            b = await s.open("cbor")
            got = asyncio.Queue()
            await b.subscribe(lambda v: got.put_nowait(v), "sensors.kitchen.temp")
            ack = PublishOptions(acknowledge=True)
            await a.publish("sensors.kitchen.temp", 20, options=ack)
            assert await asyncio.wait_for(got.get(), STEP_TIMEOUT) == 20
            await expect_error(a.publish("sensors.kitchen.humidity", 1, options=ack))
            await expect_error(a.publish("sensors.a.b.temp", 1, options=ack))
            await expect_error(a.subscribe(lambda *x: None, "other.topic"))
            # exact beats prefix: the exact entry denies the call
            await a.register(lambda: "s", "com.example.secret")
            await a.register(lambda: "p", "com.example.public")
            assert await b.call("com.example.public") == "p"
            await expect_error(b.call("com.example.secret"))

    run(body())
