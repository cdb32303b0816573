// Headless Chromium test of the node's start page (static/index.html, app.js, wamp.js).
//
//   cd tests/browser && npm ci && node --test      (tests/run does this)
//
// Starts a junction node whose universal transport serves this repo's static/ at / and WAMP on
// /ws, loads the page in Chromium (/usr/bin/chromium, or $CHROMIUM) and checks that it joins
// realm1, shows the node info, receives an event that Autobahn|Python publishes (target/pyenv,
// or $JUNCTION_PYTHON), that its publish form reaches the Python client, and that its call form
// shows results and errors. Saves a screenshot to target/browser/start-page.png.
//
// On the sample config (node-config/config.json) it also publishes with the real mosquitto_pub
// (Debian mosquitto-clients) to the universal port and checks that the page's `sensor.`
// subscription shows the MQTT message as a WAMP event (payload_mapping "" → native json), and
// that a payload which is not JSON is dropped without hurting the page. Screenshot:
// target/browser/mqtt-sensor.png.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

import { chromium } from "playwright-core";

import {
  REPO,
  checkConfig,
  freePort,
  junctionVersion,
  nodeConfig,
  startNode,
  universalTransport,
} from "../js/junction_node.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PYTHON = process.env.JUNCTION_PYTHON || path.join(REPO, "target", "pyenv", "bin", "python");
const OUT_DIR = path.join(REPO, "target", "browser");
const SCREENSHOT = path.join(OUT_DIR, "start-page.png");
const MQTT_SCREENSHOT = path.join(OUT_DIR, "mqtt-sensor.png");
const TIMEOUT = 10000;

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Start a node serving static/ and WAMP on one universal port; returns {node, pageUrl, wsUrl}. */
async function startSite({ info = true } = {}) {
  const port = await freePort();
  const config = nodeConfig([universalTransport(port, { info })]);
  const check = checkConfig(config);
  assert.ok(check.ok, `junction check rejects the universal transport config:\n${check.output}`);
  const node = await startNode(config, { name: "browser" });
  return { node, config, wsUrl: `ws://127.0.0.1:${port}/ws`, pageUrl: `http://127.0.0.1:${port}/` };
}

/**
 * The sample node (node-config/config.json) on a free port: its universal transport's static
 * directory (relative to node-config/) made absolute, since the node runs from a temp dir.
 */
async function startSampleNode() {
  const config = JSON.parse(fs.readFileSync(path.join(REPO, "node-config", "config.json"), "utf8"));
  const port = await freePort();
  const universal = config.workers[0].transports.find((t) => t.type === "universal");
  assert.ok(universal, "node-config/config.json has a universal transport");
  universal.endpoint = { ...universal.endpoint, port, interface: "127.0.0.1" };
  // Other TCP transports of the sample (the authenticated example) get free ports of their own.
  for (const t of config.workers[0].transports) {
    if (t !== universal && t.endpoint?.type === "tcp") {
      t.endpoint = { ...t.endpoint, port: await freePort(), interface: "127.0.0.1" };
      if (t.url) t.url = `ws://127.0.0.1:${t.endpoint.port}/ws`;
    }
  }
  const root = universal.web.paths["/"];
  assert.equal(root.type, "static");
  root.directory = path.resolve(REPO, "node-config", root.directory);
  assert.equal(root.directory, path.join(REPO, "static"), "the sample node serves this repo's static/");
  const node = await startNode(config, { name: "sample" });
  return { node, port, pageUrl: `http://127.0.0.1:${port}/` };
}

/** The full path of `name` if it is an executable on $PATH, else null. */
function onPath(name) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** `mosquitto_pub -h 127.0.0.1 -p port -t topic -m message`; rejects unless it exits 0 within 10 s. */
function mosquittoPub(bin, port, topic, message) {
  const argv = ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-m", message];
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { timeout: 10000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`mosquitto_pub ${argv.join(" ")} failed (${err.code ?? err.signal}): ${stdout}${stderr}`));
      } else {
        resolve();
      }
    });
  });
}

/** Run peer.py; lines() yields its JSON output lines one at a time. */
function startPeer(wsUrl) {
  const proc = spawn(PYTHON, [path.join(import.meta.dirname, "peer.py"), wsUrl, "realm1"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  return {
    proc,
    async next(what, ms = 20000) {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`peer.py: no ${what} within ${ms} ms; stderr:\n${stderr}`)), ms);
      });
      try {
        const { value, done } = await Promise.race([lines.next(), timeout]);
        if (done) throw new Error(`peer.py ended before ${what}; stderr:\n${stderr}`);
        const msg = JSON.parse(value);
        if (msg.error) throw new Error(`peer.py: ${msg.error}\n${stderr}`);
        return msg;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const stateOf = (page) => page.locator("#status").getAttribute("data-state");

// Waits poll every 50 ms: the default (requestAnimationFrame) crawls in a background tab.
function until(page, fn, arg) {
  return page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 50 });
}

const waitForState = (page, state) =>
  until(page, (s) => document.getElementById("status").dataset.state === s, state);

/** Wait for an element matching `selector` whose text contains `text`; returns its text. */
async function waitForText(page, selector, text) {
  const handle = await until(
    page,
    ([sel, t]) => [...document.querySelectorAll(sel)].find((e) => e.textContent.includes(t))?.textContent,
    [selector, text],
  );
  return handle.jsonValue();
}

/** Wait until a result element has data-outcome `outcome`; returns its text. */
async function waitForResult(page, selector, outcome) {
  await until(page, ([sel, o]) => document.querySelector(sel).dataset.outcome === o, [selector, outcome]);
  return page.locator(selector).textContent();
}

describe("start page in headless Chromium", { timeout: 120000 }, () => {
  let context;
  let userDataDir;
  const pageErrors = [];

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "junction-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 900 },
      timeout: 30000,
    });
  });

  after(async () => {
    if (context) await context.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  async function openPage(url) {
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      // Without the nodeinfo service, the /info fetch 404s: that is the graceful degradation.
      if (m.type() === "error" && !/status of 404/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });
    await page.goto(url);
    return page;
  }

  test("joins realm1, shows events from Autobahn|Python, publishes and calls", async () => {
    const site = await startSite();
    let page;
    let peer;
    try {
      page = await openPage(site.pageUrl);
      await waitForState(page, "connected");
      assert.match(await page.locator("#session-id").textContent(), /^\d+$/);
      await waitForText(page, "#subscription", "subscribed to com.example.demo, subscription");
      await waitForText(page, "#procedures", "com.example.demo.add2 registered");

      // Node facts from /info?format=json.
      await until(page, () => document.body.dataset.nodeinfo === "loaded");
      assert.equal(await page.locator("#node-version").textContent(), `junction ${junctionVersion()}`);
      assert.match(await page.locator("#node-realms").textContent(), /\brealm1\b/);
      assert.equal(await page.locator("#node-name").textContent(), "junction test node");
      assert.match(await page.locator("#node-uptime").textContent(), /\d+ s/);
      assert.match(await page.locator("#node-transports").textContent(), /universal/);
      assert.equal(await page.title(), "junction test node · junction");

      // Autobahn|Python calls the page's procedure and publishes an event the page shows.
      peer = startPeer(site.wsUrl);
      const ready = await peer.next("ready line");
      assert.equal(ready.add2, 42);
      const text = await waitForText(page, "#events li", "hello from autobahn-python");
      assert.match(text, /com\.example\.demo/);
      assert.match(text, /"source": "python"/);
      assert.match(text, /"n": 7/);
      assert.match(text, /<3 bytes: 00 01 fe>/);
      assert.match(text, new RegExp(`from session ${ready.session}`));
      assert.match(text, /\d\d:\d\d:\d\d/);

      // Invalid JSON is reported, nothing is sent.
      await page.fill("#publish-args", "[1, 2");
      await page.click("#publish-form button[type=submit]");
      assert.match(await waitForResult(page, "#publish-result", "error"), /not valid JSON/);

      // The publish form reaches the Python subscriber.
      await page.fill("#publish-topic", "com.example.demo.reply");
      await page.fill("#publish-args", '["pong from the page", 1]');
      await page.fill("#publish-kwargs", '{"ok": true}');
      await page.click("#publish-form button[type=submit]");
      assert.match(await waitForResult(page, "#publish-result", "ok"), /published to com\.example\.demo\.reply \(publication \d+\)/);
      const reply = await peer.next("event from the page");
      assert.deepEqual(reply.event, { args: ["pong from the page", 1], kwargs: { ok: true } });

      // ... and the page sees its own events on the subscribed topic (exclude_me: false).
      await page.fill("#publish-topic", "com.example.demo");
      await page.fill("#publish-args", '"a single value"');
      await page.fill("#publish-kwargs", "");
      await page.click("#publish-form button[type=submit]");
      await waitForText(page, "#events li", "a single value");
      assert.match(await page.locator("#events li").first().textContent(), /from this page/);

      // The call form: an error, the echo procedure, then add2 (left on screen).
      await page.fill("#call-procedure", "com.example.nothing.here");
      await page.fill("#call-args", "[]");
      await page.click("#call-form button[type=submit]");
      assert.match(await waitForResult(page, "#call-result", "error"), /wamp\.error\.no_such_procedure/);

      await page.fill("#call-procedure", "com.example.demo.add2");
      await page.fill("#call-args", '["two", 3]');
      await page.click("#call-form button[type=submit]");
      assert.match(await waitForResult(page, "#call-result", "error"), /wamp\.error\.invalid_argument[\s\S]*add2 expects two numbers/);

      await page.fill("#call-procedure", "com.example.demo.echo");
      await page.fill("#call-args", '["x", {"a": [1, 2]}]');
      await page.fill("#call-kwargs", '{"k": "v"}');
      await page.click("#call-form button[type=submit]");
      const echo = await waitForResult(page, "#call-result", "ok");
      assert.match(echo, /args \[\s*"x",\s*\{\s*"a": \[\s*1,\s*2\s*\]\s*\}\s*\]/);
      assert.match(echo, /kwargs \{\s*"k": "v"\s*\}/);

      await page.fill("#call-procedure", "com.example.demo.add2");
      await page.fill("#call-args", "[2, 3]");
      await page.fill("#call-kwargs", "");
      await page.click("#call-form button[type=submit]");
      assert.match(await waitForResult(page, "#call-result", "ok"), /^result \([\d.]+ ms\): 5$/);

      fs.mkdirSync(OUT_DIR, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      assert.deepEqual(pageErrors, []);
    } catch (e) {
      e.message += `\n--- junction log (${site.node.dir}) ---\n${site.node.log().slice(-6000)}`;
      throw e;
    } finally {
      if (peer) peer.proc.kill();
      if (page) await page.close();
      const rc = await site.node.stop();
      assert.equal(rc, 0, `junction exit code after SIGTERM; log:\n${site.node.log().slice(-6000)}`);
      site.node.remove();
    }
  });

  test("the sample node-config serves the page and the demo works there", async () => {
    const site = await startSampleNode();
    let page;
    try {
      page = await openPage(site.pageUrl);
      await waitForState(page, "connected");
      await until(page, () => document.body.dataset.nodeinfo === "loaded");
      assert.match(await page.locator("#node-realms").textContent(), /\brealm1\b/);
      await waitForText(page, "#procedures", "com.example.demo.add2 registered");
      await waitForText(page, "#subscription", "subscribed to com.example.demo");
      await page.click("#call-form button[type=submit]");
      assert.match(await waitForResult(page, "#call-result", "ok"), /: 5$/);
      await page.click("#publish-form button[type=submit]");
      await waitForText(page, "#events li", "Hello from the browser");
      assert.deepEqual(pageErrors, []);
    } finally {
      if (page) await page.close();
      assert.equal(await site.node.stop(), 0);
      site.node.remove();
    }
  });

  test("the sample node-config: an MQTT sensor reading (mosquitto_pub) shows as a sensor. event", async () => {
    const mosquitto = onPath("mosquitto_pub");
    assert.ok(
      mosquitto,
      "mosquitto_pub is not on PATH: install Debian's mosquitto-clients (apt-get install mosquitto-clients; tests/run does)",
    );
    const site = await startSampleNode();
    let page;
    try {
      page = await openPage(site.pageUrl);
      await waitForState(page, "connected");
      await waitForText(page, "#sensor-subscription", "MQTT sensors: subscribed to sensor. (prefix match), subscription");
      // The demo subscription is up too, so the events list starts empty.
      await waitForText(page, "#subscription", "subscribed to com.example.demo");
      assert.equal(await page.locator("#events li").count(), 0);
      const sensorEvents = () =>
        page.evaluate(() =>
          [...document.querySelectorAll("#events li")]
            .filter((li) => li.querySelector(".topic")?.textContent.startsWith("sensor."))
            .map((li) => li.textContent),
        );

      // A reading on sensor/1/temp reaches the page as sensor.1.temp with args [21.5], within 5 s.
      const t0 = Date.now();
      await mosquittoPub(mosquitto, site.port, "sensor/1/temp", '{"args":[21.5]}');
      const first = await page.waitForFunction(
        () =>
          [...document.querySelectorAll("#events li")].find(
            (li) => li.querySelector(".topic")?.textContent === "sensor.1.temp" && li.textContent.includes("21.5"),
          )?.textContent,
        undefined,
        { timeout: 5000, polling: 50 },
      );
      const firstText = await first.jsonValue();
      const firstMs = Date.now() - t0;
      assert.match(firstText, /sensor\.1\.temp/);
      assert.match(firstText, /args \[\s*21\.5\s*\]/);
      assert.match(firstText, /\d\d:\d\d:\d\d/);

      // A payload that is not JSON cannot be mapped (native json): no event, the page keeps its
      // session, and the next valid reading still shows (the MQTT side is not wedged either).
      await mosquittoPub(mosquitto, site.port, "sensor/1/temp", "not json");
      const t1 = Date.now();
      await mosquittoPub(mosquitto, site.port, "sensor/2/temp", '{"args":[22.75]}');
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll("#events li")].some(
            (li) => li.querySelector(".topic")?.textContent === "sensor.2.temp" && li.textContent.includes("22.75"),
          ),
        undefined,
        { timeout: 5000, polling: 50 },
      );
      const secondMs = Date.now() - t1;
      // The bad publish went first (its mosquitto_pub had exited); allow a moment for stragglers
      // from its separate MQTT connection anyway.
      await page.waitForTimeout(300);
      const events = await sensorEvents();
      assert.equal(events.length, 2, `exactly the two valid readings, got:\n${events.join("\n")}`);
      assert.ok(!events.some((e) => /not json/.test(e)), `the non-JSON payload became an event:\n${events.join("\n")}`);
      // ... and the node says why (debug log of the bridge: the payload does not decode).
      const dropped = site.node
        .log()
        .split("\n")
        .find((l) => /does not cross between MQTT and WAMP/.test(l) && /uri=sensor\.1\.temp\b/.test(l));
      assert.ok(dropped, "no 'publication does not cross between MQTT and WAMP' log line for sensor.1.temp");
      console.log(`# ${dropped.replace(/^\S+\s+/, "")}`);
      assert.equal(await stateOf(page), "connected");
      assert.match(await page.locator("#sensor-subscription").textContent(), /subscribed to sensor\./);
      console.log(`# mqtt → page: first reading ${firstMs} ms, reading after the bad payload ${secondMs} ms`);

      fs.mkdirSync(OUT_DIR, { recursive: true });
      await page.screenshot({ path: MQTT_SCREENSHOT, fullPage: true });
      assert.deepEqual(pageErrors, []);
    } catch (e) {
      e.message += `\n--- junction log (${site.node.dir}) ---\n${site.node.log().slice(-6000)}`;
      throw e;
    } finally {
      if (page) await page.close();
      const rc = await site.node.stop();
      assert.equal(rc, 0, `junction exit code after SIGTERM; log:\n${site.node.log().slice(-6000)}`);
      site.node.remove();
    }
  });

  test("two tabs share the demo procedures; disconnect, reconnect, unknown realm", async () => {
    const site = await startSite({ info: false });
    const pages = [];
    try {
      for (let i = 0; i < 2; i++) {
        const page = await openPage(site.pageUrl);
        pages.push(page);
        await waitForState(page, "connected");
        // roundrobin registrations: the second tab registers too instead of failing.
        await waitForText(page, "#procedures", "com.example.demo.echo registered");
      }
      const [a, b] = pages;
      assert.notEqual(await a.locator("#session-id").textContent(), await b.locator("#session-id").textContent());
      // Without the nodeinfo service the page says so and works anyway.
      await until(a, () => document.body.dataset.nodeinfo === "unavailable");
      assert.match(await a.locator("#node-info-status").textContent(), /not available/);
      assert.ok(await a.locator("#info-link").isHidden());

      // An event published in tab a shows up in tab b. (Playwright's clicks wait for animation
      // frames, which a background tab hardly gets: bring the tab in use to the front.)
      await a.bringToFront();
      await a.fill("#publish-args", '["from tab a"]');
      await a.click("#publish-form button[type=submit]");
      await waitForText(b, "#events li", "from tab a");

      // Calls from b work, whichever tab the router picks.
      await b.bringToFront();
      for (let i = 0; i < 3; i++) {
        await b.fill("#call-args", `[${i}, 100]`);
        await b.click("#call-form button[type=submit]");
        await until(b, (want) => document.getElementById("call-result").textContent.endsWith(`: ${want}`), `${i + 100}`);
      }

      // Disconnect and connect again.
      await a.bringToFront();
      await a.click("#disconnect");
      await waitForState(a, "disconnected");
      assert.equal(await a.locator("#session-id").textContent(), "–");
      await a.click("#connect");
      await waitForState(a, "connected");

      // A realm the node does not have: ABORT, shown, no retry loop.
      await a.fill("#realm", "no.such.realm");
      await a.click("#connect");
      await waitForState(a, "disconnected");
      assert.match(await a.locator("#status-detail").textContent(), /refused.*no\.such\.realm.*wamp\.error\.no_such_realm/);
      assert.equal(await stateOf(a), "disconnected");

      // The node goes away (GOODBYE wamp.close.system_shutdown): the page retries, and joins
      // again, re-subscribing and re-registering, once a node is back on the port.
      await b.bringToFront();
      const before = await b.locator("#session-id").textContent();
      assert.equal(await site.node.stop(), 0);
      site.node.remove();
      await waitForState(b, "reconnecting");
      // By the time we look, the first retry may already have failed ("cannot connect").
      assert.match(
        await b.locator("#status-detail").textContent(),
        /(connection lost|cannot connect).*retrying in \d+ s/,
      );
      site.node = await startNode(site.config, { name: "browser-again" });
      await waitForState(b, "connected");
      assert.notEqual(await b.locator("#session-id").textContent(), before);
      await waitForText(b, "#procedures", "com.example.demo.add2 registered");
      await waitForText(b, "#subscription", "subscribed to com.example.demo");
      await b.fill("#call-args", "[7, 8]");
      await b.click("#call-form button[type=submit]");
      await until(b, () => document.getElementById("call-result").textContent.endsWith(": 15"));
      assert.deepEqual(pageErrors.filter((e) => !/WebSocket/.test(e)), []);
    } finally {
      for (const page of pages) await page.close();
      await site.node.stop();
      site.node.remove();
    }
  });
});
