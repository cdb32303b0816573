// wamp.js: a small WAMP v2 client for junction's start page (no dependencies, ES module).
//
// Supports, over WebSocket with the `wamp.2.json` subprotocol:
//   - session: HELLO (anonymous) / WELCOME / ABORT, GOODBYE in both directions (clean leave)
//   - publisher:  publish(topic, args, kwargs, {acknowledge, exclude_me, ...})
//                 (acknowledge → Promise resolving to the publication id)
//   - subscriber: subscribe(topic, handler, {match: "exact"|"prefix"|"wildcard"}), unsubscribe
//   - caller:     call(procedure, args, kwargs, options) → Promise of {args, kwargs, details},
//                 rejected with a WampError {error, args, kwargs, details}
//   - callee:     register(procedure, handler, {match, invoke}), unregister; the handler returns a
//                 value, a Result(args, kwargs) or a Promise of either; a throw becomes an ERROR
//                 (a WampError keeps its URI, anything else is wamp.error.runtime_error)
//   - binary values as in the WAMP JSON convention: "\u0000" + base64 <-> Uint8Array
// Not supported: authentication other than anonymous, progressive results, call cancelling,
// other serializers and RawSocket (browsers cannot open raw TCP connections anyway).
//
//   import { connect } from "./wamp.js";
//   const session = await connect({ url: "ws://127.0.0.1:8080/ws", realm: "realm1" });
//   await session.subscribe("com.example.demo", (args, kwargs, details) => console.log(args));
//   session.publish("com.example.demo", ["hello"]);
//   const { args } = await session.call("com.example.add2", [2, 3]);
//   await session.leave();

const MSG = {
  HELLO: 1, WELCOME: 2, ABORT: 3, GOODBYE: 6, ERROR: 8,
  PUBLISH: 16, PUBLISHED: 17, SUBSCRIBE: 32, SUBSCRIBED: 33, UNSUBSCRIBE: 34, UNSUBSCRIBED: 35,
  EVENT: 36, CALL: 48, RESULT: 50, REGISTER: 64, REGISTERED: 65, UNREGISTER: 66,
  UNREGISTERED: 67, INVOCATION: 68, INTERRUPT: 69, YIELD: 70,
};

// The features this client implements, announced in HELLO.
const ROLES = {
  publisher: { features: { publisher_exclusion: true } },
  subscriber: { features: { pattern_based_subscription: true } },
  caller: { features: {} },
  callee: { features: { pattern_based_registration: true, shared_registration: true } },
};

/** An error reply from the router or a peer: `error` is the WAMP error URI. */
export class WampError extends Error {
  constructor(error, args = [], kwargs = {}, details = {}) {
    super(args.length && typeof args[0] === "string" ? `${error}: ${args[0]}` : error);
    this.name = "WampError";
    this.error = error;
    this.args = args;
    this.kwargs = kwargs;
    this.details = details;
  }
}

/** A callee handler may return a Result to yield several positional and keyword results. */
export class Result {
  constructor(args = [], kwargs = {}) {
    this.args = args;
    this.kwargs = kwargs;
  }
}

// ---- JSON with the WAMP binary convention ----------------------------------------------------

function bytesToBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function base64ToBytes(b64) {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

export function encode(msg) {
  return JSON.stringify(msg, (key, value) => {
    if (value instanceof ArrayBuffer) value = new Uint8Array(value);
    else if (ArrayBuffer.isView(value)) {
      value = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    }
    return value instanceof Uint8Array ? "\u0000" + bytesToBase64(value) : value;
  });
}

export function decode(text) {
  return JSON.parse(text, (key, value) =>
    typeof value === "string" && value.charCodeAt(0) === 0 ? base64ToBytes(value.slice(1)) : value,
  );
}

// ---- the session ----------------------------------------------------------------------------

/**
 * Open a WebSocket to `url`, join `realm` and resolve to a Session (reject on ABORT or when the
 * connection fails). Options: authid, WebSocket (constructor, for environments without a global).
 */
export function connect({ url, realm, authid, WebSocket: WS = globalThis.WebSocket }) {
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WS(url, ["wamp.2.json"]);
    } catch (e) {
      reject(e);
      return;
    }
    const session = new Session(ws, realm, resolve, reject);
    ws.onopen = () => {
      if (ws.protocol !== "wamp.2.json") {
        ws.close(1000);
        reject(new Error(`router did not accept the subprotocol wamp.2.json (got "${ws.protocol}")`));
        return;
      }
      const details = { roles: ROLES, agent: "junction-wamp.js" };
      if (authid) details.authid = authid;
      session._send([MSG.HELLO, realm, details]);
    };
  });
}

export class Session {
  constructor(ws, realm, onJoin, onAbort) {
    this.ws = ws;
    this.realm = realm;
    this.id = null;
    this.details = null; // WELCOME.Details
    this.isOpen = false;
    /** Called once when the session or its connection ends: ({reason, message, wasClean}). */
    this.onclose = null;
    this._joined = { resolve: onJoin, reject: onAbort };
    this._nextId = 1;
    this._requests = new Map(); // request id -> {type, resolve, reject, ...}
    this._subscriptions = new Map(); // subscription id -> Set of Subscription
    this._registrations = new Map(); // registration id -> Registration
    this._leaving = null;
    this._closed = false;
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) =>
      this._finish({ reason: event.reason || "wamp.close.connection_lost", code: event.code, wasClean: event.wasClean });
    ws.onerror = () => {}; // followed by onclose
  }

  _requestId() {
    const id = this._nextId;
    this._nextId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }

  _send(msg) {
    this.ws.send(encode(msg));
  }

  _request(msg, extra = {}) {
    if (!this.isOpen) return Promise.reject(new WampError("wamp.error.not_connected", ["session is not open"]));
    const id = this._requestId();
    msg.splice(1, 0, id);
    return new Promise((resolve, reject) => {
      this._requests.set(id, { type: msg[0], resolve, reject, ...extra });
      this._send(msg);
    });
  }

  _protocolViolation(why) {
    if (this._closed) return;
    try {
      this._send([MSG.ABORT, { message: why }, "wamp.error.protocol_violation"]);
    } catch (e) { /* connection already gone */ }
    this.ws.close(1000);
    this._finish({ reason: "wamp.error.protocol_violation", message: why, wasClean: false });
  }

  _finish(info) {
    if (this._closed) return;
    this._closed = true;
    const wasOpen = this.isOpen;
    this.isOpen = false;
    const err = new WampError(info.reason, info.message ? [info.message] : []);
    for (const req of this._requests.values()) req.reject(err);
    this._requests.clear();
    if (!wasOpen && this._joined) {
      this._joined.reject(info.abort || err);
      this._joined = null;
      return;
    }
    if (this._leaving) this._leaving.resolve(info);
    if (this.onclose) this.onclose(info);
  }

  _receive(data) {
    let msg;
    try {
      msg = typeof data === "string" ? decode(data) : null;
    } catch (e) {
      msg = null;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== "number") {
      this._protocolViolation("invalid message (wamp.2.json expects text frames with a JSON array)");
      return;
    }
    const [type, ...rest] = msg;
    if (!this.isOpen) {
      if (type === MSG.WELCOME && this._joined) {
        [this.id, this.details] = rest;
        this.isOpen = true;
        this._joined.resolve(this);
        this._joined = null;
      } else if (type === MSG.ABORT) {
        const [details, reason] = rest;
        const abort = new WampError(reason, details && details.message ? [details.message] : [], {}, details);
        this.ws.close(1000);
        this._finish({ reason, message: details && details.message, wasClean: true, abort });
      } else {
        this._protocolViolation(`unexpected message type ${type} before WELCOME`);
      }
      return;
    }
    switch (type) {
      case MSG.GOODBYE: {
        const [details, reason] = rest;
        if (!this._leaving) this._send([MSG.GOODBYE, {}, "wamp.close.goodbye_and_out"]);
        this.ws.close(1000);
        this._finish({ reason, message: details && details.message, wasClean: true });
        return;
      }
      case MSG.ABORT: {
        const [details, reason] = rest;
        this.ws.close(1000);
        this._finish({ reason, message: details && details.message, wasClean: false });
        return;
      }
      case MSG.EVENT:
        this._event(...rest);
        return;
      case MSG.INVOCATION:
        this._invocation(...rest);
        return;
      case MSG.INTERRUPT:
        return; // cancelling is not supported: the result (if any) is still sent
      case MSG.ERROR: {
        const [reqType, id, details, error, args = [], kwargs = {}] = rest;
        const req = this._requests.get(id);
        if (!req || req.type !== reqType) return this._protocolViolation(`ERROR for unknown request ${id}`);
        this._requests.delete(id);
        req.reject(new WampError(error, args, kwargs, details));
        return;
      }
      case MSG.PUBLISHED: case MSG.SUBSCRIBED: case MSG.UNSUBSCRIBED:
      case MSG.RESULT: case MSG.REGISTERED: case MSG.UNREGISTERED: {
        const id = rest[0];
        const req = this._requests.get(id);
        if (!req || req.type !== REPLY_TO[type]) return this._protocolViolation(`reply for unknown request ${id}`);
        this._requests.delete(id);
        this._reply(type, req, rest);
        return;
      }
      default:
        this._protocolViolation(`unexpected message type ${type}`);
    }
  }

  _reply(type, req, [, a, b = [], c = {}]) {
    switch (type) {
      case MSG.PUBLISHED: return req.resolve(a);
      case MSG.RESULT: return req.resolve({ args: b, kwargs: c, details: a });
      case MSG.SUBSCRIBED: {
        const sub = new Subscription(this, a, req.topic, req.handler, req.options);
        if (!this._subscriptions.has(a)) this._subscriptions.set(a, new Set());
        this._subscriptions.get(a).add(sub);
        return req.resolve(sub);
      }
      case MSG.REGISTERED: {
        const reg = new Registration(this, a, req.procedure, req.handler, req.options);
        this._registrations.set(a, reg);
        return req.resolve(reg);
      }
      default: // UNSUBSCRIBED, UNREGISTERED
        return req.resolve();
    }
  }

  _event(subscription, publication, details = {}, args = [], kwargs = {}) {
    const subs = this._subscriptions.get(subscription);
    if (!subs) return; // an event in flight while we unsubscribed
    for (const sub of subs) {
      const d = { ...details, publication, topic: details.topic || sub.topic };
      try {
        sub.handler(args, kwargs, d);
      } catch (e) {
        console.error("wamp.js: event handler failed", e);
      }
    }
  }

  async _invocation(request, registration, details = {}, args = [], kwargs = {}) {
    const reg = this._registrations.get(registration);
    let reply;
    if (!reg) {
      reply = [MSG.ERROR, MSG.INVOCATION, request, {}, "wamp.error.no_such_registration", [], {}];
    } else {
      try {
        const d = { ...details, procedure: details.procedure || reg.procedure };
        const value = await reg.handler(args, kwargs, d);
        if (value instanceof Result) reply = [MSG.YIELD, request, {}, value.args, value.kwargs];
        else if (value === undefined) reply = [MSG.YIELD, request, {}];
        else reply = [MSG.YIELD, request, {}, [value]];
      } catch (e) {
        reply = e instanceof WampError
          ? [MSG.ERROR, MSG.INVOCATION, request, {}, e.error, e.args, e.kwargs]
          : [MSG.ERROR, MSG.INVOCATION, request, {}, "wamp.error.runtime_error", [String(e && e.message ? e.message : e)], {}];
      }
    }
    if (this.isOpen) this._send(reply);
  }

  // ---- public API ----

  /** Subscribe; handler(args, kwargs, details). Resolves to a Subscription. */
  subscribe(topic, handler, options = {}) {
    return this._request([MSG.SUBSCRIBE, options, topic], { topic, handler, options });
  }

  /** Remove one Subscription (the router is told when the last local handler goes). */
  async unsubscribe(sub) {
    const subs = this._subscriptions.get(sub.id);
    if (!subs || !subs.delete(sub)) return;
    sub.active = false;
    if (subs.size > 0) return;
    this._subscriptions.delete(sub.id);
    await this._request([MSG.UNSUBSCRIBE, sub.id]);
  }

  /**
   * Publish. Without options.acknowledge it returns undefined (fire and forget); with it, a
   * Promise of the publication id that rejects with a WampError (e.g. not authorized).
   */
  publish(topic, args = [], kwargs = {}, options = {}) {
    const msg = [MSG.PUBLISH, options, topic, args, kwargs];
    if (options.acknowledge) return this._request(msg);
    if (!this.isOpen) throw new WampError("wamp.error.not_connected", ["session is not open"]);
    msg.splice(1, 0, this._requestId());
    this._send(msg);
    return undefined;
  }

  /** Call a procedure: resolves to {args, kwargs, details}, rejects with a WampError. */
  call(procedure, args = [], kwargs = {}, options = {}) {
    return this._request([MSG.CALL, options, procedure, args, kwargs]);
  }

  /** Register handler(args, kwargs, details) for a procedure. Resolves to a Registration. */
  register(procedure, handler, options = {}) {
    return this._request([MSG.REGISTER, options, procedure], { procedure, handler, options });
  }

  async unregister(reg) {
    if (this._registrations.get(reg.id) !== reg) return;
    this._registrations.delete(reg.id);
    reg.active = false;
    await this._request([MSG.UNREGISTER, reg.id]);
  }

  /** Leave the realm (GOODBYE), wait for the router's GOODBYE and close the connection. */
  leave(reason = "wamp.close.close_realm", message) {
    if (this._closed) return Promise.resolve({ reason: "wamp.close.already_closed" });
    if (this._leaving) return this._leaving.promise;
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    this._leaving = { promise, resolve };
    this._send([MSG.GOODBYE, message ? { message } : {}, reason]);
    // A router that does not answer within 2 s gets its connection closed anyway.
    const timer = setTimeout(() => this.ws.close(1000), 2000);
    return promise.finally(() => clearTimeout(timer));
  }
}

const REPLY_TO = {
  [MSG.PUBLISHED]: MSG.PUBLISH, [MSG.SUBSCRIBED]: MSG.SUBSCRIBE, [MSG.UNSUBSCRIBED]: MSG.UNSUBSCRIBE,
  [MSG.RESULT]: MSG.CALL, [MSG.REGISTERED]: MSG.REGISTER, [MSG.UNREGISTERED]: MSG.UNREGISTER,
};

export class Subscription {
  constructor(session, id, topic, handler, options) {
    Object.assign(this, { session, id, topic, handler, options, active: true });
  }
  unsubscribe() {
    return this.session.unsubscribe(this);
  }
}

export class Registration {
  constructor(session, id, procedure, handler, options) {
    Object.assign(this, { session, id, procedure, handler, options, active: true });
  }
  unregister() {
    return this.session.unregister(this);
  }
}
