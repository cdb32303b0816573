"""Publish/subscribe through junction with Autobahn|Python over all serializers."""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from payloads import PAYLOAD_ARGS, PAYLOAD_KWARGS
from wamp_client import (
    SERIALIZERS,
    assert_empty,
    assert_same,
    next_item,
    run,
    sessions,
)

ACK = PublishOptions(acknowledge=True)


async def _subscribe_queue(session, topic, options=None):
    queue = asyncio.Queue()

    def on_event(*args, **kwargs):
        details = kwargs.pop("details", None)
        queue.put_nowait((args, kwargs, details))

    sub = await session.subscribe(on_event, topic, options=options)
    assert sub.id, "SUBSCRIBED without a subscription id"
    return queue, sub


@pytest.mark.parametrize("ser", SERIALIZERS)
def test_publish_receive_all_types(router, ser):
    """Args and kwargs of every JSON type and bytes arrive exactly as published."""

    async def body():
        async with sessions(router.url) as s:
            sub = await s.open(ser)
            pub = await s.open(ser)
            q, _ = await _subscribe_queue(sub, "com.example.types")
            await pub.publish("com.example.types", *PAYLOAD_ARGS, options=ACK, **PAYLOAD_KWARGS)
            args, kwargs, _ = await next_item(q)
            assert_same(list(args), PAYLOAD_ARGS, "args")
            assert_same(kwargs, PAYLOAD_KWARGS, "kwargs")

    run(body())


@pytest.mark.parametrize("ser", SERIALIZERS)
def test_int64_extremes(router, ser):
    """Integers at the int64 limits round-trip on one serializer."""
    values = [2**63 - 1, -(2**63), 2**62, -(2**62) - 7]

    async def body():
        async with sessions(router.url) as s:
            sub = await s.open(ser)
            pub = await s.open(ser)
            q, _ = await _subscribe_queue(sub, "com.example.int64")
            await pub.publish("com.example.int64", *values, options=ACK)
            args, _, _ = await next_item(q)
            assert_same(list(args), values, "args")

    run(body())


@pytest.mark.parametrize("pub_ser", SERIALIZERS)
def test_cross_serializer(router, pub_ser):
    """One publisher, a subscriber on every serializer: all get the same values."""

    async def body():
        async with sessions(router.url) as s:
            subs = [await s.open(ser, name=f"sub-{ser}") for ser in SERIALIZERS]
            queues = [(await _subscribe_queue(sub, "com.example.cross"))[0] for sub in subs]
            pub = await s.open(pub_ser)
            await pub.publish("com.example.cross", *PAYLOAD_ARGS, options=ACK, **PAYLOAD_KWARGS)
            for ser, q in zip(SERIALIZERS, queues):
                args, kwargs, _ = await next_item(q, f"event for the {ser} subscriber")
                assert_same(list(args), PAYLOAD_ARGS, f"args ({pub_ser} -> {ser})")
                assert_same(kwargs, PAYLOAD_KWARGS, f"kwargs ({pub_ser} -> {ser})")

    run(body())


@pytest.mark.parametrize("ser", ["json.batched", "msgpack.batched", "cbor.batched", "ubjson.batched"])
def test_batched_serializers_pubsub(router, ser):
    """Autobahn over the .batched WebSocket subprotocols, to a plain json subscriber."""

    async def body():
        async with sessions(router.url) as s:
            sub = await s.open(ser)
            plain = await s.open("json")
            q1, _ = await _subscribe_queue(sub, "com.example.batched")
            q2, _ = await _subscribe_queue(plain, "com.example.batched")
            pub = await s.open(ser)
            await pub.publish("com.example.batched", 1, "two", b"\x03", k={"v": [None]}, options=ACK)
            for q in (q1, q2):
                args, kwargs, _ = await next_item(q)
                assert_same(list(args), [1, "two", b"\x03"], "args")
                assert_same(kwargs, {"k": {"v": [None]}}, "kwargs")

    run(body())


def test_publish_acknowledge_returns_publication_id(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            pub = await s.open(serializer)
            p1 = await pub.publish("com.example.ack", 1, options=ACK)
            p2 = await pub.publish("com.example.ack", 2, options=ACK)
            for p in (p1, p2):
                assert p is not None, "acknowledged publish returned no Publication"
                assert isinstance(p.id, int) and 1 <= p.id <= 2**53, f"bad publication id {p.id!r}"
            assert p1.id != p2.id, "two publications got the same id"
            # without acknowledge nothing comes back
            assert pub.publish("com.example.ack", 3) is None

    run(body())


def test_unsubscribe_stops_events(router):
    async def body():
        async with sessions(router.url) as s:
            sub = await s.open("json")
            pub = await s.open("msgpack")
            q, subscription = await _subscribe_queue(sub, "com.example.unsub")
            await pub.publish("com.example.unsub", "before", options=ACK)
            args, _, _ = await next_item(q)
            assert args == ("before",)
            sentinel, _ = await _subscribe_queue(sub, "com.example.unsub.sentinel")
            await subscription.unsubscribe()
            await pub.publish("com.example.unsub", "after", options=ACK)
            await pub.publish("com.example.unsub.sentinel", "sentinel", options=ACK)
            # events from one publisher to one subscriber keep their order
            assert (await next_item(sentinel))[0] == ("sentinel",)
            assert q.empty(), f"event after unsubscribe: {q.get_nowait()!r}"

    run(body())


def test_prefix_subscription(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            sub = await s.open(serializer)
            pub = await s.open("json")
            q, _ = await _subscribe_queue(
                sub, "com.example.pfx", SubscribeOptions(match="prefix", details=True)
            )
            # non-matching first: publications from one publisher arrive in order,
            # so if it were (wrongly) delivered it would be the first event seen.
            await pub.publish("com.example.other.x", "no", options=ACK)
            await pub.publish("com.example.pfx.a.b", "yes1", options=ACK)
            await pub.publish("com.example.pfx", "yes2", options=ACK)
            args, _, details = await next_item(q)
            assert args == ("yes1",)
            assert details.topic == "com.example.pfx.a.b", f"details.topic={details.topic!r}"
            args, _, details = await next_item(q)
            assert args == ("yes2",)
            assert details.topic == "com.example.pfx", f"details.topic={details.topic!r}"
            await assert_empty(q)

    run(body())


def test_wildcard_subscription(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            sub = await s.open(serializer)
            pub = await s.open("cbor")
            q, _ = await _subscribe_queue(
                sub, "com.example..temp", SubscribeOptions(match="wildcard", details=True)
            )
            await pub.publish("com.example.kitchen.humidity", "no1", options=ACK)
            await pub.publish("com.example.a.b.temp", "no2", options=ACK)
            await pub.publish("com.example.temp", "no3", options=ACK)
            await pub.publish("com.example.kitchen.temp", 21.5, options=ACK)
            await pub.publish("com.example.garage.temp", 9.0, options=ACK)
            args, _, details = await next_item(q)
            assert args == (21.5,)
            assert details.topic == "com.example.kitchen.temp", f"details.topic={details.topic!r}"
            args, _, details = await next_item(q)
            assert args == (9.0,)
            assert details.topic == "com.example.garage.temp", f"details.topic={details.topic!r}"
            await assert_empty(q)

    run(body())


def test_exact_and_pattern_subscriptions_both_fire(router):
    async def body():
        async with sessions(router.url) as s:
            sub = await s.open("json")
            pub = await s.open("json")
            q_exact, _ = await _subscribe_queue(sub, "com.example.multi.x")
            q_prefix, _ = await _subscribe_queue(
                sub, "com.example.multi", SubscribeOptions(match="prefix", details=True)
            )
            await pub.publish("com.example.multi.x", 7, options=ACK)
            assert (await next_item(q_exact))[0] == (7,)
            args, _, details = await next_item(q_prefix)
            assert args == (7,) and details.topic == "com.example.multi.x"

    run(body())


def test_exclude_me_default_true(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            me = await s.open(serializer)
            other = await s.open("json")
            q_me, _ = await _subscribe_queue(me, "com.example.self")
            q_other, _ = await _subscribe_queue(other, "com.example.self")
            await me.publish("com.example.self", "default", options=ACK)
            await me.publish(
                "com.example.self", "included", options=PublishOptions(acknowledge=True, exclude_me=False)
            )
            assert (await next_item(q_other))[0] == ("default",)
            assert (await next_item(q_other))[0] == ("included",)
            # the publisher only gets the exclude_me=False event
            assert (await next_item(q_me))[0] == ("included",)
            await assert_empty(q_me)

    run(body())


def test_exclude_list(router):
    async def body():
        async with sessions(router.url) as s:
            subs = [await s.open(ser) for ser in ("json", "msgpack", "cbor")]
            queues = [(await _subscribe_queue(x, "com.example.excl"))[0] for x in subs]
            pub = await s.open("ubjson")
            excluded = subs[1].sid
            await pub.publish(
                "com.example.excl", "filtered", options=PublishOptions(acknowledge=True, exclude=[excluded])
            )
            await pub.publish("com.example.excl", "all", options=ACK)
            assert (await next_item(queues[0]))[0] == ("filtered",)
            assert (await next_item(queues[2]))[0] == ("filtered",)
            assert (await next_item(queues[1]))[0] == ("all",), "excluded session got the event"
            assert (await next_item(queues[0]))[0] == ("all",)

    run(body())


def test_eligible_list(router):
    async def body():
        async with sessions(router.url) as s:
            subs = [await s.open(ser) for ser in ("json", "msgpack", "cbor")]
            queues = [(await _subscribe_queue(x, "com.example.elig"))[0] for x in subs]
            pub = await s.open("json")
            await pub.publish(
                "com.example.elig", "only-b", options=PublishOptions(acknowledge=True, eligible=[subs[1].sid])
            )
            await pub.publish("com.example.elig", "all", options=ACK)
            assert (await next_item(queues[1]))[0] == ("only-b",)
            assert (await next_item(queues[0]))[0] == ("all",), "non-eligible session got the event"
            assert (await next_item(queues[2]))[0] == ("all",), "non-eligible session got the event"

    run(body())


def test_publisher_disclosure(router):
    """The role has disclose.publisher=true: events carry the publisher's session id."""

    async def body():
        async with sessions(router.url) as s:
            sub = await s.open("json")
            pub = await s.open("cbor")
            q, _ = await _subscribe_queue(sub, "com.example.disclose", SubscribeOptions(details=True))
            await pub.publish("com.example.disclose", options=ACK)
            _, _, details = await next_item(q)
            assert details.publisher == pub.sid, f"details.publisher={details.publisher!r}, want {pub.sid}"

    run(body())


def test_loose_uri_accepted(router):
    """Loose URIs (uppercase, dashes) are valid topics: Crossbar's default uri_check
    is "loose" (RouterFactory creates RouterOptions(uri_check=URI_CHECK_LOOSE))."""

    async def body():
        async with sessions(router.url) as s:
            sub = await s.open("msgpack")
            pub = await s.open("json")
            q, _ = await _subscribe_queue(sub, "com.Example.some-thing_1")
            p = await pub.publish("com.Example.some-thing_1", "x", options=ACK)
            assert p.id
            assert (await next_item(q))[0] == ("x",)

    run(body())


def test_uri_check_strict_realm_option(router_factory):
    """realm options.uri_check "strict" rejects what "loose" accepts."""
    r = router_factory(realm_options={"uri_check": "strict"})

    async def body():
        async with sessions(r.url) as s:
            a = await s.open("json")
            with pytest.raises(ApplicationError) as e:
                await a.subscribe(lambda *x: None, "com.Example.some-thing")
            assert e.value.error == "wamp.error.invalid_uri", e.value.error
            with pytest.raises(ApplicationError) as e:
                await a.publish("com.Example.x", options=ACK)
            assert e.value.error == "wamp.error.invalid_uri", e.value.error
            sub = await a.subscribe(lambda *x: None, "com.example.some_thing")
            assert sub.id

    run(body())
