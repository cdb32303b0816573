// The start page: node facts from /info?format=json and a live WAMP demo (see index.html).
//
// Query parameters (all optional): url (router WebSocket URL, default ws(s)://<this host>/ws),
// realm (default realm1), topic (default com.example.demo).
import { connect, Result, WampError } from "./wamp.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const PROCEDURES = ["com.example.demo.echo", "com.example.demo.add2"];
const MAX_EVENTS = 200;

// ---- formatting ------------------------------------------------------------------------------

/** Pretty JSON that shows binary values (Uint8Array) as <N bytes: hex>. */
function pretty(value) {
  return JSON.stringify(
    value,
    (key, v) => {
      if (v instanceof Uint8Array) {
        const hex = Array.from(v.subarray(0, 32), (b) => b.toString(16).padStart(2, "0")).join(" ");
        return `<${v.length} bytes: ${hex}${v.length > 32 ? " …" : ""}>`;
      }
      return v;
    },
    2,
  );
}

function formatPayload(args, kwargs) {
  const parts = [];
  if (args && args.length) parts.push(`args ${pretty(args)}`);
  if (kwargs && Object.keys(kwargs).length) parts.push(`kwargs ${pretty(kwargs)}`);
  return parts.length ? parts.join("\n") : "(no arguments)";
}

function formatDuration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d) return `${d} d ${h} h ${m} min`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

const clock = () => new Date().toLocaleTimeString([], { hour12: false });

/** Parse a JSON arguments field: empty → [], an array stays, any other value → [value]. */
function parseArgs(text) {
  text = text.trim();
  if (!text) return [];
  const v = JSON.parse(text);
  return Array.isArray(v) ? v : [v];
}

/** Parse a JSON keyword-arguments field: empty → {}, must be an object. */
function parseKwargs(text) {
  text = text.trim();
  if (!text) return {};
  const v = JSON.parse(text);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Error("keyword arguments must be a JSON object");
  }
  return v;
}

function showResult(el, outcome, text) {
  el.dataset.outcome = outcome;
  el.className = `result ${outcome}`;
  el.textContent = text;
}

// ---- node info -------------------------------------------------------------------------------

function describeTransport(t) {
  if (typeof t === "string") return t;
  if (!t || typeof t !== "object") return String(t);
  const kind = t.type || "transport";
  const where = t.endpoint
    ? (typeof t.endpoint === "object"
      ? [t.endpoint.interface, t.endpoint.port ?? t.endpoint.path].filter((x) => x !== undefined).join(":")
      : t.endpoint)
    : t.address || t.listen || t.port || t.url || "";
  const id = t.id ? ` (${t.id})` : "";
  return `${kind}${where !== "" ? " " + where : ""}${id}`;
}

async function loadNodeInfo() {
  const status = $("node-info-status");
  try {
    const response = await fetch(new URL("/info?format=json", location.href), {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const info = await response.json();
    $("node-name").textContent = info.title || "(untitled)";
    $("node-version").textContent = info.version ? `junction ${info.version}` : "unknown";
    const realms = (info.realms || []).map((r) => (typeof r === "string" ? r : r.name || pretty(r)));
    $("node-realms").textContent = realms.length ? realms.join(", ") : "none";
    const transports = (info.transports || []).map(describeTransport);
    $("node-transports").textContent = transports.length ? transports.join("; ") : "none";
    if (typeof info.uptime_seconds === "number") {
      const loaded = performance.now();
      const tick = () => {
        $("node-uptime").textContent = formatDuration(info.uptime_seconds + (performance.now() - loaded) / 1000);
      };
      tick();
      setInterval(tick, 1000);
    } else {
      $("node-uptime").textContent = "unknown";
    }
    if (info.title) document.title = `${info.title} · junction`;
    document.body.dataset.nodeinfo = "loaded";
    status.textContent = "";
  } catch (e) {
    for (const id of ["node-name", "node-version", "node-realms", "node-uptime", "node-transports"]) {
      $(id).textContent = "unknown";
    }
    status.textContent =
      `Node information is not available here (${e.message}): this server has no nodeinfo ` +
      "service at /info. The live demo below still works if a router is reachable.";
    document.body.dataset.nodeinfo = "unavailable";
    $("info-link").hidden = true;
  }
}

// ---- the WAMP demo ---------------------------------------------------------------------------

let session = null; // the open Session, or null
let subscription = null; // the current Subscription
let wanted = false; // the user wants to be connected (reconnect on loss)
let retryTimer = null;
let retryDelay = 1000;
let attempt = 0; // bumps on every connect/disconnect so stale attempts are ignored

function setState(state, detail = "") {
  const status = $("status");
  status.textContent = state;
  status.dataset.state = state;
  $("status-dot").dataset.state = state;
  $("status-detail").textContent = detail;
  $("session-id").textContent = session ? String(session.id) : "–";
  $("connect").disabled = state === "connecting";
  $("disconnect").disabled = state === "disconnected";
  for (const form of ["publish-form", "call-form"]) {
    for (const button of $(form).querySelectorAll("button")) button.disabled = state !== "connected";
  }
}

function defaultUrl() {
  if (location.protocol !== "http:" && location.protocol !== "https:") return "";
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

async function registerDemoProcedures(s) {
  const handlers = {
    "com.example.demo.echo": (args, kwargs) => new Result(args, kwargs),
    "com.example.demo.add2": ([a, b]) => {
      if (typeof a !== "number" || typeof b !== "number") {
        throw new WampError("wamp.error.invalid_argument", ["add2 expects two numbers"]);
      }
      return a + b;
    },
  };
  const notes = [];
  for (const procedure of PROCEDURES) {
    try {
      // roundrobin: every open tab registers; calls are spread over them.
      await s.register(procedure, handlers[procedure], { invoke: "roundrobin" });
      notes.push(`${procedure} registered`);
    } catch (e) {
      if (e.error === "wamp.error.procedure_already_exists") {
        notes.push(`${procedure} is provided by another session`);
      } else {
        notes.push(`${procedure} not registered (${e.error || e.message})`);
      }
    }
  }
  if (s === session) $("procedures").textContent = notes.join(" · ");
}

async function subscribe() {
  const topic = $("subscribe-topic").value.trim();
  const match = $("subscribe-match").value;
  const note = $("subscription");
  if (!session) {
    note.textContent = "not subscribed (not connected)";
    return;
  }
  const s = session;
  if (subscription) {
    const old = subscription;
    subscription = null;
    try {
      await old.unsubscribe();
    } catch (e) {
      /* the session may be gone already */
    }
  }
  try {
    const options = match === "exact" ? {} : { match };
    const sub = await s.subscribe(topic, (args, kwargs, details) => addEvent(args, kwargs, details), options);
    if (s !== session) return;
    subscription = sub;
    note.textContent = `subscribed to ${topic}${match === "exact" ? "" : ` (${match} match)`}, subscription ${sub.id}`;
    note.dataset.topic = topic;
  } catch (e) {
    note.textContent = `subscribing to ${topic} failed: ${e.error || e.message}`;
    delete note.dataset.topic;
  }
}

/** The mosquitto_pub hint names the port this page came from. */
function fillMqttHint() {
  const hint = document.getElementById("mqtt-hint");
  const port = location.port || (location.protocol === "https:" ? "443" : "80");
  if (hint) hint.textContent = `mosquitto_pub -h ${location.hostname} -p ${port} -t sensor/1/temp -m '{"args":[21.5]}'`;
}
fillMqttHint();

/** MQTT sensors publish under sensor/...; the page always listens there (prefix `sensor.`). */
async function subscribeSensors(s) {
  const note = $("sensor-subscription");
  try {
    const sub = await s.subscribe("sensor.", (args, kwargs, details) => addEvent(args, kwargs, details), {
      match: "prefix",
    });
    if (s === session) note.textContent = `MQTT sensors: subscribed to sensor. (prefix match), subscription ${sub.id}`;
  } catch (e) {
    if (s === session) note.textContent = `MQTT sensors: subscribing failed: ${e.error || e.message}`;
  }
}

function addEvent(args, kwargs, details) {
  const list = $("events");
  const li = document.createElement("li");
  const head = document.createElement("div");
  head.className = "event-head";
  const time = document.createElement("time");
  time.dateTime = new Date().toISOString();
  time.textContent = clock();
  const topic = document.createElement("code");
  topic.className = "topic";
  topic.textContent = details.topic || $("subscribe-topic").value.trim();
  head.append(time, " ", topic);
  if (details.publisher !== undefined) {
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = details.publisher === session?.id ? "from this page" : `from session ${details.publisher}`;
    head.append(" ", from);
  }
  const body = document.createElement("pre");
  body.textContent = formatPayload(args, kwargs);
  li.append(head, body);
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  $("events-empty").hidden = true;
}

function scheduleReconnect(reason) {
  if (!wanted) return;
  const seconds = Math.round(retryDelay / 1000);
  setState("reconnecting", `${reason}; retrying in ${seconds} s`);
  retryTimer = setTimeout(open, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 15000);
}

async function open() {
  clearTimeout(retryTimer);
  const url = $("url").value.trim();
  const realm = $("realm").value.trim();
  if (!url) {
    wanted = false;
    setState("disconnected", "No router URL: open this page from a junction node, or give ?url=ws://HOST:PORT/ws.");
    return;
  }
  wanted = true;
  const mine = ++attempt;
  setState("connecting", `${url}, realm ${realm}`);
  let s;
  try {
    s = await connect({ url, realm });
  } catch (e) {
    if (mine !== attempt) return;
    const why = e.error ? `${e.error}${e.args && e.args[0] ? `: ${e.args[0]}` : ""}` : e.message;
    if (e.error && e.error !== "wamp.close.connection_lost") {
      // The router refused the session (ABORT, e.g. no such realm): retrying will not help.
      wanted = false;
      setState("disconnected", `The router refused to join realm ${realm}: ${why}`);
    } else {
      scheduleReconnect(`cannot connect to ${url}`);
    }
    return;
  }
  if (mine !== attempt) {
    s.leave();
    return;
  }
  session = s;
  retryDelay = 1000;
  s.onclose = (info) => {
    if (session !== s) return;
    session = null;
    subscription = null;
    $("subscription").textContent = "not subscribed (not connected)";
    $("procedures").textContent = "";
    if (wanted) scheduleReconnect(`connection lost (${info.reason})`);
    else setState("disconnected", `left realm ${realm} (${info.reason})`);
  };
  setState("connected", `${url}, realm ${realm}, authrole ${s.details.authrole || "?"}`);
  await Promise.all([subscribe(), subscribeSensors(s), registerDemoProcedures(s)]);
}

async function close() {
  wanted = false;
  attempt++;
  clearTimeout(retryTimer);
  const s = session;
  if (s) await s.leave();
  session = null;
  subscription = null;
  $("subscription").textContent = "not subscribed (not connected)";
  $("procedures").textContent = "";
  setState("disconnected", "disconnected by you");
}

async function publish(event) {
  event.preventDefault();
  const out = $("publish-result");
  const topic = $("publish-topic").value.trim();
  let args, kwargs;
  try {
    args = parseArgs($("publish-args").value);
    kwargs = parseKwargs($("publish-kwargs").value);
  } catch (e) {
    showResult(out, "error", `not valid JSON: ${e.message}`);
    return;
  }
  if (!session) {
    showResult(out, "error", "not connected");
    return;
  }
  try {
    const id = await session.publish(topic, args, kwargs, { acknowledge: true, exclude_me: false });
    showResult(out, "ok", `${clock()} published to ${topic} (publication ${id})`);
  } catch (e) {
    showResult(out, "error", `${clock()} publish failed: ${e.error || e.message}${e.args?.[0] ? ` (${e.args[0]})` : ""}`);
  }
}

async function call(event) {
  event.preventDefault();
  const out = $("call-result");
  const procedure = $("call-procedure").value.trim();
  let args, kwargs;
  try {
    args = parseArgs($("call-args").value);
    kwargs = parseKwargs($("call-kwargs").value);
  } catch (e) {
    showResult(out, "error", `not valid JSON: ${e.message}`);
    return;
  }
  if (!session) {
    showResult(out, "error", "not connected");
    return;
  }
  showResult(out, "pending", `calling ${procedure} …`);
  const t0 = performance.now();
  try {
    const result = await session.call(procedure, args, kwargs);
    const ms = (performance.now() - t0).toFixed(1);
    let text;
    if (result.args.length === 1 && !Object.keys(result.kwargs).length) text = pretty(result.args[0]);
    else text = formatPayload(result.args, result.kwargs);
    showResult(out, "ok", `result (${ms} ms): ${text}`);
  } catch (e) {
    const detail = e.error ? formatPayload(e.args, e.kwargs) : "";
    showResult(out, "error", `error: ${e.error || e.message}${detail && detail !== "(no arguments)" ? `\n${detail}` : ""}`);
  }
}

// ---- wiring ----------------------------------------------------------------------------------

function init() {
  $("url").value = params.get("url") || defaultUrl();
  if (params.get("realm")) $("realm").value = params.get("realm");
  if (params.get("topic")) {
    $("subscribe-topic").value = params.get("topic");
    $("publish-topic").value = params.get("topic");
  }
  $("connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (session) session.leave(); // a realm change: leave the old one first
    session = null;
    retryDelay = 1000;
    open();
  });
  $("disconnect").addEventListener("click", close);
  $("subscribe-form").addEventListener("submit", (e) => {
    e.preventDefault();
    subscribe();
  });
  $("clear-events").addEventListener("click", () => {
    $("events").replaceChildren();
    $("events-empty").hidden = false;
  });
  $("publish-form").addEventListener("submit", publish);
  $("call-form").addEventListener("submit", call);
  window.addEventListener("pagehide", () => {
    wanted = false;
    if (session) session.leave();
  });
  setState("disconnected");
  loadNodeInfo();
  open();
}

init();
