"""A second WAMP client for the start-page test: Autobahn|Python (target/pyenv).

    python peer.py ws://127.0.0.1:PORT/ws realm1

Joins the realm, subscribes to com.example.demo.reply, calls the page's procedure
com.example.demo.add2(20, 22), publishes to com.example.demo and prints one JSON line
{"ready": true, "session": ID, "add2": RESULT}. Then it waits (at most 30 s) for one event on
com.example.demo.reply (the page publishes it) and prints {"event": {"args": ..., "kwargs": ...}}.
Errors are printed as {"error": "..."} and exit with status 1.
"""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))

from wamp_client import close, connect  # noqa: E402


def say(obj):
    print(json.dumps(obj), flush=True)


async def main(url, realm):
    session = await connect(url, "json", realm=realm, name="peer")
    try:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()

        def on_reply(*args, **kwargs):
            if not reply.done():
                reply.set_result({"args": list(args), "kwargs": kwargs})

        await session.subscribe(on_reply, "com.example.demo.reply")
        total = await asyncio.wait_for(session.call("com.example.demo.add2", 20, 22), 5)
        from autobahn.wamp.types import PublishOptions

        await session.publish(
            "com.example.demo",
            "hello from autobahn-python",
            {"n": 7, "bytes": b"\x00\x01\xfe"},
            source="python",
            options=PublishOptions(acknowledge=True),
        )
        say({"ready": True, "session": session.sid, "add2": total})
        event = await asyncio.wait_for(reply, 30)
        say({"event": event})
    finally:
        await close(session)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "realm1"))
    except Exception as e:  # report to the test, which shows it
        say({"error": f"{type(e).__name__}: {e}"})
        sys.exit(1)
