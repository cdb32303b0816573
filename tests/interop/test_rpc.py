"""Remote procedure calls through junction with Autobahn|Python."""

import asyncio
import itertools

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, RegisterOptions

from payloads import PAYLOAD_ARGS, PAYLOAD_KWARGS
from wamp_client import SERIALIZERS, STEP_TIMEOUT, assert_same, run, sessions


def unpack(result):
    """Autobahn returns a CallResult for several results or kwargs, else the value."""
    if isinstance(result, CallResult):
        return list(result.results), dict(result.kwresults)
    return [result], {}


async def call(session, procedure, *args, **kwargs):
    return await asyncio.wait_for(session.call(procedure, *args, **kwargs), STEP_TIMEOUT)


async def call_error(session, procedure, *args, **kwargs):
    """Call and return the ApplicationError it must fail with."""
    try:
        result = await call(session, procedure, *args, **kwargs)
    except ApplicationError as e:
        return e
    raise AssertionError(f"call to {procedure} succeeded with {result!r}, expected an error")


async def register_error(session, endpoint, procedure, options=None):
    try:
        reg = await asyncio.wait_for(session.register(endpoint, procedure, options=options), STEP_TIMEOUT)
    except ApplicationError as e:
        return e
    raise AssertionError(f"register of {procedure} succeeded ({reg.id}), expected an error")


def echo(*args, **kwargs):
    return CallResult(*args, **kwargs)


@pytest.mark.parametrize("caller_ser,callee_ser", list(itertools.product(SERIALIZERS, SERIALIZERS)))
def test_call_roundtrip_all_types(router, caller_ser, callee_ser):
    """Args and kwargs of every type go to the callee and back unchanged."""

    async def body():
        received = []

        def endpoint(*args, **kwargs):
            received.append((list(args), kwargs))
            return CallResult(*args, **kwargs)

        async with sessions(router.url) as s:
            callee = await s.open(callee_ser)
            caller = await s.open(caller_ser)
            await callee.register(endpoint, "com.example.echo")
            results, kwresults = unpack(await call(caller, "com.example.echo", *PAYLOAD_ARGS, **PAYLOAD_KWARGS))
            assert len(received) == 1
            assert_same(received[0][0], PAYLOAD_ARGS, "invocation args")
            assert_same(received[0][1], PAYLOAD_KWARGS, "invocation kwargs")
            assert_same(results, PAYLOAD_ARGS, "result args")
            assert_same(kwresults, PAYLOAD_KWARGS, "result kwargs")

    run(body())


def test_call_simple_results(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            callee = await s.open(serializer)
            caller = await s.open("json")
            await callee.register(lambda a, b: a + b, "com.example.add2")
            await callee.register(lambda: None, "com.example.nothing")
            assert await call(caller, "com.example.add2", 2, 3) == 5
            assert await call(caller, "com.example.add2", "a", "b") == "ab"
            assert await call(caller, "com.example.nothing") is None

    run(body())


def test_callee_application_error(router, serializer):
    async def body():
        def fail(*args, **kwargs):
            raise ApplicationError("com.example.error.custom", 1, 2, foo="bar")

        async with sessions(router.url) as s:
            callee = await s.open("json")
            caller = await s.open(serializer)
            await callee.register(fail, "com.example.fail")
            e = await call_error(caller, "com.example.fail", 1)
            assert e.error == "com.example.error.custom", e.error
            assert list(e.args) == [1, 2], e.args
            assert e.kwargs == {"foo": "bar"}, e.kwargs
            # the callee and the caller are still fine
            await callee.register(lambda: "ok", "com.example.after_fail")
            assert await call(caller, "com.example.after_fail") == "ok"

    run(body())


def test_no_such_procedure(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            caller = await s.open(serializer)
            e = await call_error(caller, "com.example.not.registered")
            assert e.error == "wamp.error.no_such_procedure", e.error
            assert caller.is_attached()

    run(body())


def test_procedure_already_exists(router, serializer):
    async def body():
        async with sessions(router.url) as s:
            a = await s.open("json")
            b = await s.open(serializer)
            await a.register(lambda: "a", "com.example.dup")
            e = await register_error(b, lambda: "b", "com.example.dup")
            assert e.error == "wamp.error.procedure_already_exists", e.error
            e = await register_error(a, lambda: "a2", "com.example.dup")
            assert e.error == "wamp.error.procedure_already_exists", e.error
            # the original registration still serves calls
            assert await call(b, "com.example.dup") == "a"

    run(body())


def test_unregister(router):
    async def body():
        async with sessions(router.url) as s:
            callee = await s.open("cbor")
            caller = await s.open("msgpack")
            reg = await callee.register(lambda: 1, "com.example.unreg")
            assert await call(caller, "com.example.unreg") == 1
            await reg.unregister()
            e = await call_error(caller, "com.example.unreg")
            assert e.error == "wamp.error.no_such_procedure", e.error
            # the URI is free again
            await callee.register(lambda: 2, "com.example.unreg")
            assert await call(caller, "com.example.unreg") == 2

    run(body())


def test_registration_removed_when_callee_leaves(router):
    async def body():
        async with sessions(router.url) as s:
            callee = await s.open("json")
            caller = await s.open("json")
            await callee.register(lambda: 1, "com.example.gone")
            callee.leave()
            await asyncio.wait_for(asyncio.shield(callee.disconnected), STEP_TIMEOUT)
            e = await call_error(caller, "com.example.gone")
            assert e.error == "wamp.error.no_such_procedure", e.error

    run(body())


def test_shared_roundrobin(router):
    async def body():
        async with sessions(router.url) as s:
            a = await s.open("json")
            b = await s.open("msgpack")
            caller = await s.open("cbor")
            opts = RegisterOptions(invoke="roundrobin")
            await a.register(lambda: "a", "com.example.rr", options=opts)
            await b.register(lambda: "b", "com.example.rr", options=opts)
            results = [await call(caller, "com.example.rr") for _ in range(6)]
            assert set(results) == {"a", "b"}, results
            assert all(x != y for x, y in zip(results, results[1:])), f"not alternating: {results}"

    run(body())


@pytest.mark.parametrize("policy,expected", [("first", "a"), ("last", "b")])
def test_shared_first_last(router, policy, expected):
    async def body():
        async with sessions(router.url) as s:
            a = await s.open("json")
            b = await s.open("json")
            caller = await s.open("ubjson")
            opts = RegisterOptions(invoke=policy)
            await a.register(lambda: "a", f"com.example.{policy}", options=opts)
            await b.register(lambda: "b", f"com.example.{policy}", options=opts)
            results = [await call(caller, f"com.example.{policy}") for _ in range(4)]
            assert results == [expected] * 4, results
            # the chosen callee leaves: the other one takes over
            gone = a if expected == "a" else b
            gone.leave()
            await asyncio.wait_for(asyncio.shield(gone.disconnected), STEP_TIMEOUT)
            other = "b" if expected == "a" else "a"
            assert await call(caller, f"com.example.{policy}") == other

    run(body())


def test_shared_random(router):
    async def body():
        async with sessions(router.url) as s:
            a = await s.open("json")
            b = await s.open("json")
            caller = await s.open("json")
            opts = RegisterOptions(invoke="random")
            await a.register(lambda: "a", "com.example.random", options=opts)
            await b.register(lambda: "b", "com.example.random", options=opts)
            results = [await call(caller, "com.example.random") for _ in range(40)]
            assert set(results) == {"a", "b"}, f"40 random calls all went to one callee: {results}"

    run(body())


def test_shared_registration_policy_mismatch(router):
    async def body():
        async with sessions(router.url) as s:
            a = await s.open("json")
            b = await s.open("json")
            await a.register(lambda: "a", "com.example.mix", options=RegisterOptions(invoke="roundrobin"))
            for opts in (None, RegisterOptions(invoke="first")):
                e = await register_error(b, lambda: "b", "com.example.mix", options=opts)
                assert e.error in (
                    "wamp.error.procedure_exists_with_different_invocation_policy",
                    "wamp.error.procedure_already_exists",
                ), e.error

    run(body())


def test_prefix_registration(router, serializer):
    async def body():
        def proc(*args, details=None):
            return details.procedure

        async with sessions(router.url) as s:
            callee = await s.open(serializer)
            caller = await s.open("json")
            await callee.register(proc, "com.example.rpcpfx", options=RegisterOptions(match="prefix", details=True))
            await callee.register(
                lambda *a, details=None: "long:" + details.procedure,
                "com.example.rpcpfx.long",
                options=RegisterOptions(match="prefix", details=True),
            )
            await callee.register(lambda: "exact", "com.example.rpcpfx.exact")
            assert await call(caller, "com.example.rpcpfx.a.b") == "com.example.rpcpfx.a.b"
            assert await call(caller, "com.example.rpcpfx") == "com.example.rpcpfx"
            # exact beats prefix, the longest prefix beats a shorter one
            assert await call(caller, "com.example.rpcpfx.exact") == "exact"
            assert await call(caller, "com.example.rpcpfx.long.x") == "long:com.example.rpcpfx.long.x"
            e = await call_error(caller, "com.example.rpcpf")
            assert e.error == "wamp.error.no_such_procedure", e.error

    run(body())


def test_wildcard_registration(router, serializer):
    async def body():
        def proc(*args, details=None):
            return details.procedure

        async with sessions(router.url) as s:
            callee = await s.open(serializer)
            caller = await s.open("cbor")
            await callee.register(proc, "com.example..rpcw", options=RegisterOptions(match="wildcard", details=True))
            assert await call(caller, "com.example.z.rpcw") == "com.example.z.rpcw"
            for bad in ("com.example.z.y.rpcw", "com.example.rpcw", "com.example.z.other"):
                e = await call_error(caller, bad)
                assert e.error == "wamp.error.no_such_procedure", f"{bad}: {e.error}"
            # prefix beats wildcard
            await callee.register(
                lambda *a, details=None: "prefix", "com.example.z", options=RegisterOptions(match="prefix", details=True)
            )
            assert await call(caller, "com.example.z.rpcw") == "prefix"

    run(body())


def test_caller_disclosure(router):
    """The role has disclose.caller=true: invocations carry the caller's session id."""

    async def body():
        async with sessions(router.url) as s:
            callee = await s.open("json")
            caller = await s.open("msgpack")
            await callee.register(
                lambda details=None: details.caller, "com.example.whocalls", options=RegisterOptions(details=True)
            )
            assert await call(caller, "com.example.whocalls") == caller.sid

    run(body())


@pytest.mark.parametrize("how", ["goodbye", "transport_drop"])
def test_callee_leaves_with_call_pending(router, how):
    """The caller of a pending call gets an error when the callee goes away."""

    async def body():
        loop = asyncio.get_running_loop()
        invoked = loop.create_future()
        never = loop.create_future()

        async def slow(*args):
            if not invoked.done():
                invoked.set_result(True)
            await never
            return "never"

        async with sessions(router.url) as s:
            callee = await s.open("json")
            caller = await s.open("cbor")
            await callee.register(slow, "com.example.slow")
            pending = asyncio.ensure_future(caller.call("com.example.slow"))
            await asyncio.wait_for(invoked, STEP_TIMEOUT)
            if how == "goodbye":
                callee.leave()
            else:
                callee._transport.transport.abort()
            try:
                result = await asyncio.wait_for(pending, STEP_TIMEOUT)
            except ApplicationError as e:
                print(f"pending call failed with {e.error!r} args={e.args!r}")
                assert e.error.startswith("wamp."), e.error
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"caller got no answer within {STEP_TIMEOUT} s after the callee went away ({how})"
                ) from None
            else:
                raise AssertionError(f"pending call returned {result!r} after the callee left")
            assert caller.is_attached()
            e = await call_error(caller, "com.example.slow")
            assert e.error == "wamp.error.no_such_procedure", e.error

    run(body())
