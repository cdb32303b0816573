// Start and stop a junction node for the JavaScript tests (tests/js and tests/browser).
// Only Node built-ins: both test folders import it.
//
// The binary is $JUNCTION_BIN (tests/run sets it) or target/release/junction.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const JUNCTION = process.env.JUNCTION_BIN || path.join(REPO, "target", "release", "junction");
export const STATIC_DIR = path.join(REPO, "static");

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

export const ALL_PERMISSIONS = [
  {
    uri: "",
    match: "prefix",
    allow: { call: true, register: true, publish: true, subscribe: true },
    disclose: { caller: true, publisher: true },
    cache: true,
  },
];

/** A free TCP port on 127.0.0.1 (bound and released: good enough for a test). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const tcp = (port) => ({ type: "tcp", port, interface: "127.0.0.1" });

export function websocketTransport(port) {
  return {
    type: "websocket",
    endpoint: tcp(port),
    url: `ws://127.0.0.1:${port}/ws`,
    serializers: ["json", "msgpack", "cbor", "ubjson"],
  };
}

export function rawsocketTransport(port) {
  return { type: "rawsocket", endpoint: tcp(port), serializers: ["json", "msgpack", "cbor", "ubjson"] };
}

/**
 * A universal transport: WAMP-over-WebSocket on /ws, RawSocket, and (unless web is false) the
 * static/ directory at / plus the nodeinfo service at /info.
 */
export function universalTransport(port, { web = true, info = true, rawsocket = true } = {}) {
  const t = {
    type: "universal",
    endpoint: tcp(port),
    websocket: { ws: { serializers: ["json", "msgpack", "cbor", "ubjson"] } },
  };
  if (rawsocket) t.rawsocket = { serializers: ["json", "msgpack", "cbor", "ubjson"] };
  if (web) {
    const paths = { "/": { type: "static", directory: STATIC_DIR } };
    if (info) paths.info = { type: "nodeinfo" };
    t.web = { paths };
  }
  return t;
}

/** A node config with one router worker, realm `realm` (all permissions) and `transports`. */
export function nodeConfig(transports, { realm = "realm1", title = "junction test node" } = {}) {
  return {
    version: 2,
    controller: { options: { title } },
    workers: [
      {
        type: "router",
        realms: [{ name: realm, roles: [{ name: "anonymous", permissions: ALL_PERMISSIONS }] }],
        transports,
      },
    ],
  };
}

function writeNodeDir(config, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `junction-${name}-`));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2));
  return dir;
}

function requireBinary() {
  if (!fs.existsSync(JUNCTION)) {
    throw new Error(`junction binary not found at ${JUNCTION} (run \`cargo build --release\`)`);
  }
}

/** `junction check` on a config: {ok, output}. */
export function checkConfig(config) {
  requireBinary();
  const dir = writeNodeDir(config, "check");
  try {
    const r = spawnSync(JUNCTION, ["check", "--cbdir", dir], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.setTimeout(500);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `junction start --cbdir <tmp>` with `config`; resolves once every TCP endpoint accepts
 * connections. Returns {dir, log(), stop()}; stop() sends SIGTERM and resolves to the exit code.
 */
export async function startNode(config, { name = "node" } = {}) {
  requireBinary();
  const dir = writeNodeDir(config, name);
  const logPath = path.join(dir, "node.log");
  const logFd = fs.openSync(logPath, "w");
  const proc = spawn(JUNCTION, ["start", "--cbdir", dir, "--loglevel", "debug"], {
    stdio: ["ignore", logFd, logFd],
    env: { ...process.env, NO_COLOR: "1" },
  });
  fs.closeSync(logFd);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const log = () => {
    try {
      return fs.readFileSync(logPath, "utf8");
    } catch {
      return "<no log>";
    }
  };
  const node = {
    dir,
    proc,
    log,
    async stop() {
      if (exited) return exited.code;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const { code, signal } = await exitPromise;
      clearTimeout(timer);
      if (signal === "SIGKILL") throw new Error(`junction did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM; log:\n${log()}`);
      return code;
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const ports = config.workers
    .flatMap((w) => w.transports)
    .filter((t) => t.endpoint && t.endpoint.type === "tcp")
    .map((t) => t.endpoint.port);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (const port of ports) {
    for (;;) {
      if (exited) throw new Error(`junction exited (${exited.code ?? exited.signal}) before listening on ${port}; log:\n${log()}`);
      if (await canConnect(port)) break;
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`junction did not listen on ${port} within ${START_TIMEOUT_MS} ms; log:\n${log()}`);
      }
      await sleep(50);
    }
  }
  return node;
}

/** The version `junction version` prints (e.g. "0.1.0"). */
export function junctionVersion() {
  requireBinary();
  const r = spawnSync(JUNCTION, ["version"], { encoding: "utf8" });
  const m = /(\d+\.\d+\.\d+\S*)/.exec(r.stdout || "");
  return m ? m[1] : null;
}
