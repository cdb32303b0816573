// Autobahn|JS (npm `autobahn`) as a second real WAMP client against a junction node, plus the
// start page's own client (static/wamp.js) talking to Autobahn|JS through the router.
//
//   cd tests/js && npm ci && node --test      (tests/run does this)
//
// Transports: WebSocket with json, msgpack and cbor (Autobahn|JS has no ubjson), and RawSocket
// (Autobahn|JS's RawSocket transport speaks json only) on a standalone `rawsocket` transport and
// on the RawSocket side of a `universal` transport (whose /ws path is tested too).
//
// Autobahn|JS 26 uses the global WebSocket (Node >= 22); on Node 20 the `ws` package stands in.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import WebSocket from "ws";

import {
  checkConfig,
  freePort,
  nodeConfig,
  rawsocketTransport,
  startNode,
  universalTransport,
  websocketTransport,
} from "./junction_node.mjs";
import { connect as wampjsConnect, Result as WampjsResult, WampError } from "../../static/wamp.js";

if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WebSocket;

// Autobahn|JS binds console.warn when it loads and warns on every closed connection: keep those
// lines, and show them only when a test fails.
const autobahnLog = [];
const consoleWarn = console.warn;
console.warn = (...args) => autobahnLog.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
const autobahn = createRequire(import.meta.url)("autobahn");
console.warn = consoleWarn;

const TIMEOUT = 5000;
const REALM = "realm1";

function withTimeout(promise, what, ms = TIMEOUT) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const SERIALIZERS = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};

/** Autobahn|JS transport options for a variant {kind: "websocket"|"rawsocket", port, serializer}. */
function transportOptions(v) {
  if (v.kind === "rawsocket") return { type: "rawsocket", host: "127.0.0.1", port: v.port };
  return { type: "websocket", url: `ws://127.0.0.1:${v.port}/ws`, serializers: [SERIALIZERS[v.serializer]()] };
}

/** Open an Autobahn|JS connection and join REALM; resolves to {connection, session, closed}. */
function open(variant) {
  const connection = new autobahn.Connection({
    transports: [transportOptions(variant)],
    realm: REALM,
    max_retries: 0,
    retry_if_unreachable: false,
    // Errors thrown by our handlers on purpose: logged, not printed.
    on_user_error: (error, message) => autobahnLog.push(`${message} ${JSON.stringify(error)}`),
  });
  let closedResolve;
  const closed = new Promise((r) => (closedResolve = r));
  const joined = new Promise((resolve, reject) => {
    connection.onopen = (session) => resolve({ connection, session, closed });
    connection.onclose = (reason, details) => {
      reject(new Error(`connection closed before joining: ${reason} ${JSON.stringify(details)}`));
      closedResolve({ reason, details });
      return true; // no retry
    };
  });
  connection.open();
  return withTimeout(joined, `join over ${describeVariant(variant)}`);
}

async function close(client) {
  if (!client) return;
  if (client.connection.isOpen) client.connection.close();
  await withTimeout(client.closed, "connection close");
}

const describeVariant = (v) => (v.kind === "rawsocket" ? `rawsocket json (${v.where})` : `websocket ${v.serializer} (${v.where})`);

/** Publish/subscribe, register/call, errors, patterns, unsubscribe/unregister over `variant`. */
async function roundTrips(variant, other = variant) {
  const tag = `${variant.kind}.${variant.serializer || "json"}.${variant.where}`.replace(/[^a-z0-9.]/g, "_");
  const topic = `com.example.js.${tag}.topic`;
  const procedure = `com.example.js.${tag}.add2`;
  let a, b;
  try {
    a = await open(variant); // publisher, caller
    b = await open(other); // subscriber, callee
    assert.notEqual(a.session.id, b.session.id);

    // publish → event, with positional and keyword arguments and the disclosed publisher
    const events = [];
    let gotEvent;
    const eventSeen = new Promise((r) => (gotEvent = r));
    const sub = await b.session.subscribe(topic, (args, kwargs, details) => {
      events.push({ args, kwargs, details });
      gotEvent();
    });
    const pub = await a.session.publish(topic, [1, "two", { three: [3] }], { k: "v", n: -1.5 }, { acknowledge: true });
    assert.ok(pub.id > 0, "publication id");
    await withTimeout(eventSeen, "event");
    assert.deepEqual(events[0].args, [1, "two", { three: [3] }]);
    assert.deepEqual(events[0].kwargs, { k: "v", n: -1.5 });
    assert.equal(events[0].details.publisher, a.session.id);

    // a prefix subscription sees the concrete topic
    let gotPrefix;
    const prefixSeen = new Promise((r) => (gotPrefix = r));
    const prefixSub = await b.session.subscribe(`com.example.js.${tag}.`, (args, kwargs, details) => gotPrefix({ args, details }), { match: "prefix" });
    await a.session.publish(`com.example.js.${tag}.other`, ["p"], {}, { acknowledge: true });
    const prefixEvent = await withTimeout(prefixSeen, "prefix event");
    assert.deepEqual(prefixEvent.args, ["p"]);
    assert.equal(prefixEvent.details.topic, `com.example.js.${tag}.other`);

    // register → call → result; the callee sees the disclosed caller
    let callerSeen = null;
    const reg = await b.session.register(procedure, (args, kwargs, details) => {
      callerSeen = details.caller;
      return args[0] + args[1];
    });
    assert.equal(await withTimeout(a.session.call(procedure, [2, 3]), "call"), 5);
    assert.equal(callerSeen, a.session.id);

    // several results: autobahn.Result
    await b.session.register(`${procedure}.many`, (args, kwargs) => new autobahn.Result(["x", args.length], { echo: kwargs }));
    const many = await withTimeout(a.session.call(`${procedure}.many`, [1, 2, 3], { q: true }), "call with Result");
    assert.deepEqual(many.args, ["x", 3]);
    assert.deepEqual(many.kwargs, { echo: { q: true } });

    // an application error travels back with its URI, args and kwargs
    await b.session.register(`${procedure}.fail`, () => {
      throw new autobahn.Error("com.example.error.js", ["it failed"], { code: 42 });
    });
    await assert.rejects(withTimeout(a.session.call(`${procedure}.fail`), "failing call"), (e) => {
      assert.equal(e.error, "com.example.error.js");
      assert.deepEqual(e.args, ["it failed"]);
      assert.deepEqual(e.kwargs, { code: 42 });
      return true;
    });

    // binary payloads (msgpack and cbor carry bytes natively)
    if (variant.serializer === "msgpack" || variant.serializer === "cbor") {
      await b.session.register(`${procedure}.bytes`, (args) => Buffer.from(args[0]).reverse());
      const out = await withTimeout(a.session.call(`${procedure}.bytes`, [Buffer.from([0, 1, 2, 255])]), "bytes call");
      assert.deepEqual([...out], [255, 2, 1, 0]);
    }

    // unregister → no_such_procedure; unsubscribe → no more events
    await b.session.unregister(reg);
    await assert.rejects(withTimeout(a.session.call(procedure, [1, 1]), "call after unregister"), (e) => e.error === "wamp.error.no_such_procedure");
    await b.session.unsubscribe(sub);
    await b.session.unsubscribe(prefixSub);
    await a.session.publish(topic, ["late"], {}, { acknowledge: true });
    // an acknowledged publish to b's own (still registered) procedure orders the check
    assert.equal(await a.session.call(`${procedure}.many`, []).then((r) => r.args[1]), 0);
    assert.equal(events.length, 1, "no event after unsubscribe");

    // a URI the router refuses
    await assert.rejects(a.session.call("com.example..bad#uri"), (e) => e.error === "wamp.error.invalid_uri");
  } catch (e) {
    e.message += `\nAutobahn|JS log:\n${autobahnLog.slice(-20).join("\n")}`;
    throw e;
  } finally {
    await close(a);
    await close(b);
  }
}

// ---- the node --------------------------------------------------------------------------------

describe("Autobahn|JS against junction", { timeout: 60000 }, () => {
  let node;
  const ports = {};

  before(async () => {
    ports.websocket = await freePort();
    ports.rawsocket = await freePort();
    ports.universal = await freePort();
    const config = nodeConfig([
      websocketTransport(ports.websocket),
      rawsocketTransport(ports.rawsocket),
      universalTransport(ports.universal),
    ]);
    const check = checkConfig(config);
    assert.ok(check.ok, `junction check rejects the test config:\n${check.output}`);
    node = await startNode(config, { name: "js" });
  });

  after(async () => {
    if (!node) return;
    const rc = await node.stop();
    assert.equal(rc, 0, `junction exit code after SIGTERM; log:\n${node.log().slice(-4000)}`);
    node.remove();
  });

  for (const serializer of Object.keys(SERIALIZERS)) {
    test(`websocket ${serializer}: pub/sub and RPC round trips`, () =>
      roundTrips({ kind: "websocket", serializer, port: ports.websocket, where: "websocket" }));
  }

  test("rawsocket json (rawsocket transport): pub/sub and RPC round trips", () =>
    roundTrips({ kind: "rawsocket", port: ports.rawsocket, where: "rawsocket" }));

  test("rawsocket json (universal transport): pub/sub and RPC round trips", () =>
    roundTrips({ kind: "rawsocket", port: ports.universal, where: "universal" }));

  test("websocket msgpack (universal transport, /ws): pub/sub and RPC round trips", () =>
    roundTrips({ kind: "websocket", serializer: "msgpack", port: ports.universal, where: "universal" }));

  test("rawsocket publisher/caller ↔ websocket cbor subscriber/callee", () =>
    roundTrips(
      { kind: "rawsocket", port: ports.rawsocket, where: "rawsocket" },
      { kind: "websocket", serializer: "cbor", port: ports.websocket, where: "websocket" },
    ));

  test("static/wamp.js ↔ Autobahn|JS msgpack: events, calls both ways, binary, shared registration", async () => {
    const url = `ws://127.0.0.1:${ports.websocket}/ws`;
    const js = await withTimeout(wampjsConnect({ url, realm: REALM, WebSocket }), "wamp.js join");
    let ab;
    try {
      ab = await open({ kind: "websocket", serializer: "msgpack", port: ports.websocket, where: "websocket" });

      // Autobahn publishes bytes (msgpack bin) → wamp.js gets a Uint8Array (JSON "\0" + base64).
      let gotEvent;
      const eventSeen = new Promise((r) => (gotEvent = r));
      await js.subscribe("com.example.wampjs.", (args, kwargs, details) => gotEvent({ args, kwargs, details }), { match: "prefix" });
      await ab.session.publish("com.example.wampjs.bytes", [Buffer.from([0, 1, 2, 254, 255]), "text"], { n: 1 }, { acknowledge: true });
      const ev = await withTimeout(eventSeen, "event at wamp.js");
      assert.ok(ev.args[0] instanceof Uint8Array, "binary arrives as Uint8Array");
      assert.deepEqual([...ev.args[0]], [0, 1, 2, 254, 255]);
      assert.equal(ev.args[1], "text");
      assert.deepEqual(ev.kwargs, { n: 1 });
      assert.equal(ev.details.topic, "com.example.wampjs.bytes");
      assert.equal(ev.details.publisher, ab.session.id);

      // Autobahn calls wamp.js: plain value, Result, Promise, WampError, runtime error.
      await js.register("com.example.wampjs.add2", ([x, y]) => x + y);
      await js.register("com.example.wampjs.echo", async (args, kwargs) => new WampjsResult(args, kwargs));
      await js.register("com.example.wampjs.fail", () => {
        throw new WampError("com.example.error.wampjs", ["nope"], { why: 1 });
      });
      await js.register("com.example.wampjs.crash", () => {
        throw new TypeError("boom");
      });
      assert.equal(await ab.session.call("com.example.wampjs.add2", [40, 2]), 42);
      const echo = await ab.session.call("com.example.wampjs.echo", [Buffer.from([7, 8]), 1], { k: [true, null] });
      assert.deepEqual([...echo.args[0]], [7, 8]);
      assert.equal(echo.args[1], 1);
      assert.deepEqual(echo.kwargs, { k: [true, null] });
      await assert.rejects(ab.session.call("com.example.wampjs.fail"), (e) => {
        assert.equal(e.error, "com.example.error.wampjs");
        assert.deepEqual(e.args, ["nope"]);
        assert.deepEqual(e.kwargs, { why: 1 });
        return true;
      });
      await assert.rejects(ab.session.call("com.example.wampjs.crash"), (e) => e.error === "wamp.error.runtime_error" && /boom/.test(e.args[0]));

      // wamp.js calls Autobahn, bytes both ways.
      await ab.session.register("com.example.autobahn.sum", (args) => new autobahn.Result([args[0].length], { first: args[0][0] }));
      const r = await js.call("com.example.autobahn.sum", [new Uint8Array([9, 9, 9])]);
      assert.deepEqual(r.args, [3]);
      assert.deepEqual(r.kwargs, { first: 9 });
      await ab.session.register("com.example.autobahn.bytes", () => Buffer.from("bytes"));
      const bytes = await js.call("com.example.autobahn.bytes");
      assert.equal(new TextDecoder().decode(bytes.args[0]), "bytes");
      await assert.rejects(js.call("com.example.autobahn.missing"), (e) => e instanceof WampError && e.error === "wamp.error.no_such_procedure");

      // Shared registration (roundrobin) between the two clients: calls alternate.
      const hits = { js: 0, ab: 0 };
      await js.register("com.example.shared.who", () => (hits.js++, "js"), { invoke: "roundrobin" });
      await ab.session.register("com.example.shared.who", () => (hits.ab++, "ab"), { invoke: "roundrobin" });
      for (let i = 0; i < 4; i++) await ab.session.call("com.example.shared.who");
      assert.deepEqual(hits, { js: 2, ab: 2 });
      // A "single" registration of the same procedure conflicts.
      await assert.rejects(js.register("com.example.shared.who", () => 0), (e) => e.error === "wamp.error.procedure_already_exists");

      // Publish from wamp.js with acknowledge; Autobahn receives it.
      let gotAb;
      const abSeen = new Promise((r) => (gotAb = r));
      await ab.session.subscribe("com.example.fromwampjs", (args, kwargs) => gotAb({ args, kwargs }));
      const pubId = await js.publish("com.example.fromwampjs", ["hi", new Uint8Array([1])], { x: 1 }, { acknowledge: true });
      assert.equal(typeof pubId, "number");
      const got = await withTimeout(abSeen, "event at Autobahn");
      assert.equal(got.args[0], "hi");
      assert.deepEqual([...got.args[1]], [1]);
      assert.deepEqual(got.kwargs, { x: 1 });
      await assert.rejects(js.publish("com.example..bad#", [], {}, { acknowledge: true }), (e) => e.error === "wamp.error.invalid_uri");
    } finally {
      const left = await withTimeout(js.leave(), "wamp.js leave");
      assert.equal(left.reason, "wamp.close.goodbye_and_out");
      await close(ab);
    }
  });
});
