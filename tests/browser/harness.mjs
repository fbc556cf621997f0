// Helpers for the browser end-to-end tests (node --test tests/browser/).
//
// Everything here expects to run inside the test network namespace created by
// tests/browser/netns.sh (scripts/test.sh runs `ip netns exec seedtab-test node --test ...`):
// WebRTC in headless Chromium needs an interface with a default route, and the
// namespace gives it one that leads nowhere (DESIGN.md §5). All servers bind 127.0.0.1.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SEEDTAB_BIN = process.env.SEEDTAB_BIN || path.join(ROOT, 'target', 'release', 'seedtab');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const NETNS = process.env.SEEDTAB_NETNS || 'seedtab-test';

/** Chromium flags: DESIGN.md §5 (root, headless, closed network, WebRTC host candidates). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  // Real IP host candidates instead of mDNS `.local` names (nothing resolves mDNS here).
  // Chromium keeps only the LAST --disable-features switch, and playwright-core puts its own
  // list before ours: repeat its list (playwright-core 1.65.1, chromiumSwitches.ts) so both apply.
  `--disable-features=${[
    'WebRtcHideLocalIpsWithMdns',
    'AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose', 'HttpsUpgrades',
    'HttpsFirstBalancedModeAutoEnable', 'LensOverlay', 'MediaRouter', 'PaintHolding',
    'ThirdPartyStoragePartitioning', 'AvoidCorsURLLoaderRestartOnRedirect', 'OptimizationHints',
    'NetworkTimeServiceQuerying', 'AimEnabled', 'PreconnectToSearch',
  ].join(',')}`,
  // Chromium's own background lookups would otherwise send DNS queries; only 127.0.0.1 resolves.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  // Two tabs of one browser exchange data: neither may be throttled as "hidden".
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
];

const children = new Set();
function killChildren() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { killChildren(); process.exit(130); });
}

/** Prefix every line of a stream and write it to stderr (shown in the test output). */
function pipeLines(stream, prefix, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (onLine) onLine(line);
      if (!quiet()) process.stderr.write(`${prefix} ${line}\n`);
    }
  });
  stream.on('end', () => {
    if (buf) {
      if (onLine) onLine(buf);
      if (!quiet()) process.stderr.write(`${prefix} ${buf}\n`);
    }
  });
}
const quiet = () => process.env.SEEDTAB_TEST_QUIET === '1';

/** Warn loudly when not inside a namespace with a default route (WebRTC would not connect). */
export function checkNetwork() {
  const ifaces = os.networkInterfaces();
  const nonLoopback = Object.entries(ifaces)
    .filter(([, addrs]) => addrs.some((a) => !a.internal && a.family === 'IPv4'));
  if (nonLoopback.length === 0) {
    process.stderr.write(`WARNING: no non-loopback interface: WebRTC will gather no ICE candidates. `
      + `Run inside the namespace: bash tests/browser/netns.sh up && ip netns exec ${NETNS} node --test tests/browser/\n`);
  }
  return nonLoopback.map(([name]) => name);
}

/**
 * Start `seedtab serve` on an ephemeral port of 127.0.0.1.
 * Resolves when it prints `seedtab serving http://ADDR/ (tracker ws://ADDR/announce)`.
 * @returns {Promise<{url: string, trackerUrl: string, proc: import('node:child_process').ChildProcess,
 *   output: () => string, stop: () => Promise<void>}>}  url ends with "/".
 */
export async function startServer({ www = 'www/dist', args = [], env = {}, timeoutMs = 20_000 } = {}) {
  if (!fs.existsSync(SEEDTAB_BIN)) {
    throw new Error(`${SEEDTAB_BIN} does not exist: run scripts/build.sh first`);
  }
  const wwwDir = path.resolve(ROOT, www);
  // The ledger's database: in memory unless the test names a file (never the working dir's).
  const db = args.includes('--db') ? [] : ['--db', ':memory:'];
  const proc = spawn(SEEDTAB_BIN, ['serve', '--addr', '127.0.0.1:0', '--www', wwwDir, ...db, ...args], {
    cwd: ROOT,
    env: { RUST_LOG: 'info', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let log = '';
  let resolveReady;
  let rejectReady;
  const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
  const re = /seedtab serving (http:\/\/\S+?\/?)\s+\(tracker (ws:\/\/\S+?)\)/;
  const onLine = (line) => {
    log += `${line}\n`;
    const m = re.exec(line);
    if (m) resolveReady({ url: m[1].endsWith('/') ? m[1] : `${m[1]}/`, trackerUrl: m[2] });
  };
  pipeLines(proc.stdout, '[seedtab]', onLine);
  pipeLines(proc.stderr, '[seedtab]', onLine);
  proc.once('error', (err) => rejectReady(err));
  proc.once('exit', (code, sig) => {
    children.delete(proc);
    rejectReady(new Error(`seedtab serve exited early (code ${code}, signal ${sig}):\n${log}`));
  });
  const timer = setTimeout(() => rejectReady(new Error(
    `seedtab serve printed no "seedtab serving http://…" line within ${timeoutMs} ms:\n${log}`)), timeoutMs);
  let info;
  try {
    info = await ready;
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return { ...info, proc, output: () => log, stop };
}

/**
 * A tiny static/handler HTTP server on 127.0.0.1 for tests that need no seedtab binary.
 * `routes` maps a path ("/x.html") to {type, body}.
 */
export async function startStaticServer(routes) {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    const route = routes[pathname];
    if (!route && pathname === '/favicon.ico') { res.writeHead(204).end(); return; }
    if (!route) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': route.type || 'text/html; charset=utf-8' });
    res.end(route.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => new Promise((res) => { server.closeAllConnections?.(); server.close(() => res()); }),
  };
}

/**
 * Launch Debian's Chromium through playwright-core (never `npx playwright install`).
 * playwright-core gives each launch a fresh temporary profile (user-data-dir) and removes it on close.
 */
export async function launchBrowser({ args = [], headless = true, downloadsPath } = {}) {
  checkNetwork();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless,
    args: [...CHROMIUM_ARGS, ...args],
    downloadsPath,
    timeout: 60_000,
  });
  return browser;
}

/**
 * Open a page in a new context of `browser` (tabs of different contexts share no storage),
 * and pipe its console messages and page errors to the test output as `[name] ...`.
 * Pass `context` to open another tab in an existing context.
 */
export async function openPage(browser, url, { name = 'tab', context, acceptDownloads = true } = {}) {
  const ctx = context || await browser.newContext({ acceptDownloads });
  const page = await ctx.newPage();
  attachLogging(page, name);
  if (url) await page.goto(url, { waitUntil: 'load' });
  return page;
}

/** Pipe a page's console and errors to stderr, prefixed. */
export function attachLogging(page, name) {
  page.on('console', (msg) => {
    if (!quiet()) process.stderr.write(`[${name}] console.${msg.type()}: ${msg.text()}\n`);
  });
  page.on('pageerror', (err) => {
    process.stderr.write(`[${name}] PAGE ERROR: ${err.stack || err.message || err}\n`);
  });
  page.on('crash', () => process.stderr.write(`[${name}] PAGE CRASHED\n`));
  page.on('requestfailed', (req) => {
    if (!quiet()) process.stderr.write(`[${name}] request failed: ${req.url()} ${req.failure()?.errorText}\n`);
  });
}

/**
 * Open `harness.html` of a running seedtab server and wait until the wasm module is loaded
 * (`window.seedtabReady`), failing with the recorded import error otherwise.
 */
export async function openHarness(browser, server, { name = 'tab', context, timeoutMs = 30_000 } = {}) {
  const page = await openPage(browser, new URL('harness.html', server.url).href, { name, context });
  await page.waitForFunction(() => window.seedtabReady || window.seedtabError, null, { timeout: timeoutMs });
  const error = await page.evaluate(() => window.seedtabError ? String(window.seedtabError) : null);
  if (error) throw new Error(`[${name}] harness failed to load pkg/seedtab.js: ${error}`);
  return page;
}

/** Race a promise against a timeout with a clear message. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Print one line to the test output (stderr is passed through by node --test). */
export function log(line) {
  process.stderr.write(`${line}\n`);
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'seedtab-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * bittorrent-tracker 11's WebSocket tracker server (the reference implementation WebTorrent's
 * swarms use), in this Node process on an ephemeral port of 127.0.0.1: no HTTP or UDP tracker,
 * no stats page. `url` is `ws://127.0.0.1:PORT` (it answers on any path).
 * @returns {Promise<{url: string, server: object, stop: () => Promise<void>}>}
 */
export async function startReferenceTracker({ interval } = {}) {
  const { default: Server } = await import('bittorrent-tracker/server');
  const server = new Server({ udp: false, http: false, ws: true, stats: false, ...(interval ? { interval } : {}) });
  server.on('error', (err) => log(`[ref-tracker] error: ${err && err.message}`));
  server.on('warning', (err) => { if (!quiet()) log(`[ref-tracker] warning: ${err && err.message}`); });
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
    server.listen(0, '127.0.0.1');
  });
  const { port } = server.http.address();
  const stop = () => new Promise((resolve) => {
    server.http.closeAllConnections?.();
    server.close(() => resolve());
  });
  return { url: `ws://127.0.0.1:${port}`, server, stop };
}

/** WebTorrent's browser bundle (an ES module whose default export is the WebTorrent class). */
export const WEBTORRENT_BUNDLE = path.join(ROOT, 'node_modules', 'webtorrent', 'dist', 'webtorrent.min.js');

/**
 * Open `harness.html` (seedtab loaded, `window.testUtils`) and load WebTorrent's browser bundle
 * into the same page as `window.WebTorrent`. The bundle is served from node_modules through a
 * playwright route at `/vendor/webtorrent.min.js`, so it never ships in www/dist.
 */
export async function openInteropPage(browser, server, { name = 'tab', context, timeoutMs = 30_000 } = {}) {
  if (!fs.existsSync(WEBTORRENT_BUNDLE)) {
    throw new Error(`${WEBTORRENT_BUNDLE} does not exist: run scripts/setup.sh (npm ci) first`);
  }
  const ctx = context || await browser.newContext();
  await ctx.route('**/vendor/webtorrent.min.js', (route) => route.fulfill({
    path: WEBTORRENT_BUNDLE,
    contentType: 'text/javascript; charset=utf-8',
  }));
  const page = await openHarness(browser, server, { name, context: ctx, timeoutMs });
  await page.evaluate(async () => {
    const mod = await import('/vendor/webtorrent.min.js');
    if (typeof mod.default !== 'function') throw new Error('webtorrent.min.js has no default export');
    window.WebTorrent = mod.default;
  });
  return page;
}

// --- Hidden tabs (hidden-tab.test.mjs) ------------------------------------------------------
//
// Headless Chromium reports every page as visible, and so does any page playwright-core opens
// the usual way: it sends `Emulation.setFocusEmulationEnabled` to each page, and Chromium keeps
// a page with focus emulation "captured", i.e. visible, whatever tab is in front. A page is
// really hidden (visibilityState 'hidden', timers throttled to about one wake-up a second)
// only in a headful Chromium (under Xvfb) without the switches below, in the browser's default
// context reached with `connectOverCDP(…, { noDefaults: true })` (no focus emulation there),
// with another tab of the same window in front.

/** Chromium switches that keep background tabs at full speed (CHROMIUM_ARGS and playwright-core's defaults have them). */
export const BACKGROUNDING_SWITCHES = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
];

/** SIGTERM a child process, SIGKILL it after `graceMs`, and wait for it to exit. */
async function stopProcess(proc, graceMs = 3000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * Start an Xvfb X server on a free display (Xvfb picks it: `-displayfd`); Debian package `xvfb`
 * (scripts/setup.sh). Run it inside the test namespace like everything else.
 * @returns {Promise<{display: string, proc: import('node:child_process').ChildProcess, stop: () => Promise<void>}>}
 *   display is like ":1", for Chromium's DISPLAY.
 */
export async function startXvfb({ screen = '1280x800x24', timeoutMs = 20_000 } = {}) {
  const bin = ['/usr/bin/Xvfb', '/usr/local/bin/Xvfb'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('Xvfb is not installed (Debian package xvfb): run scripts/setup.sh');
  const proc = spawn(bin, ['-displayfd', '3', '-screen', '0', screen, '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let errText = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { errText = (errText + d).slice(-4000); });
  let out = '';
  const display = await withTimeout(new Promise((resolve, reject) => {
    proc.stdio[3].setEncoding('utf8');
    proc.stdio[3].on('data', (d) => {
      out += d;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(`:${m[1]}`);
    });
    proc.once('error', reject);
    proc.once('exit', (code, sig) => reject(new Error(`Xvfb exited (code ${code}, signal ${sig}): ${errText}`)));
  }), timeoutMs, 'Xvfb to print its display number').catch(async (err) => {
    await stopProcess(proc);
    throw err;
  });
  return { display, proc, stop: () => stopProcess(proc) };
}

/**
 * Launch a headful Chromium on X display `display` (see startXvfb) where tabs in the background
 * are throttled like a user's: CHROMIUM_ARGS less BACKGROUNDING_SWITCHES, a fresh temporary
 * profile, and playwright-core attached over CDP with `noDefaults` (no focus emulation).
 * Open pages in `context` (the default context: the tabs of one window, sharing storage);
 * use a separate launch for a peer that must not share storage.
 * @returns {Promise<{browser: import('playwright-core').Browser, context: import('playwright-core').BrowserContext,
 *   proc: import('node:child_process').ChildProcess, close: () => Promise<void>}>}
 */
export async function launchHeadfulBrowser({ display, args = [], timeoutMs = 60_000 } = {}) {
  if (!display) throw new Error('launchHeadfulBrowser needs an X display (startXvfb())');
  checkNetwork();
  const profile = tempDir('seedtab-headful-');
  const drop = new Set(BACKGROUNDING_SWITCHES);
  const argv = [
    ...CHROMIUM_ARGS.filter((a) => !drop.has(a)),
    '--disable-extensions', '--disable-default-apps', '--disable-popup-blocking',
    '--disable-hang-monitor', '--disable-breakpad', '--password-store=basic',
    '--remote-debugging-port=0', `--user-data-dir=${profile.dir}`,
    '--window-position=0,0', '--window-size=1280,800',
    ...args,
    'about:blank',
  ];
  const proc = spawn(CHROMIUM, argv, {
    env: { ...process.env, DISPLAY: display },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let errText = '';
  proc.stderr.setEncoding('utf8');
  const wsEndpoint = withTimeout(new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      errText = (errText + d).slice(-8000);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(errText);
      if (m) resolve(m[1]);
    });
    proc.once('error', reject);
    proc.once('exit', (code, sig) => reject(new Error(
      `headful chromium exited (code ${code}, signal ${sig}):\n${errText}`)));
  }), timeoutMs, 'headful chromium to print "DevTools listening on ws://…"');
  let browser;
  try {
    browser = await chromium.connectOverCDP(await wsEndpoint, { noDefaults: true, timeout: timeoutMs });
  } catch (err) {
    await stopProcess(proc);
    profile.cleanup();
    throw err;
  }
  const context = browser.contexts()[0];
  const close = async () => {
    // Browser.close shuts Chromium down with its helper processes; signals if it does not.
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      const closed = browser.newBrowserCDPSession()
        .then((cdp) => cdp.send('Browser.close'))
        .then(() => exited);
      await withTimeout(closed, 10_000, 'headful chromium to close').catch(() => {});
    }
    await stopProcess(proc);
    await browser.close().catch(() => {});
    // Helper processes may still be writing into the profile for a moment.
    try {
      fs.rmSync(profile.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (err) {
      log(`[headful] could not remove ${profile.dir}: ${err.message}`);
    }
  };
  return { browser, context, proc, close };
}

/** The page's `document.visibilityState`. */
export function visibilityOf(page) {
  return page.evaluate(() => document.visibilityState);
}

/**
 * Hide `page` the way a user does: open another tab in its window and bring that one to front.
 * Resolves to the cover page once `page` reports visibilityState 'hidden'. Only works for pages
 * of launchHeadfulBrowser() (elsewhere every page stays 'visible': fails after `timeoutMs`).
 */
export async function hideTab(page, { timeoutMs = 10_000, name = 'cover' } = {}) {
  const cover = await page.context().newPage();
  attachLogging(cover, name);
  await cover.bringToFront();
  await withTimeout(page.evaluate(() => document.visibilityState === 'hidden' || new Promise((resolve) => {
    const onChange = () => {
      if (document.visibilityState === 'hidden') {
        document.removeEventListener('visibilitychange', onChange);
        resolve(true);
      }
    };
    document.addEventListener('visibilitychange', onChange);
  })), timeoutMs, 'the tab to become hidden (visibilityState "hidden") behind another tab');
  return cover;
}

/**
 * Start counting a `setInterval(…, intervalMs)` in `page` and count every change of
 * visibilityState. `stop()` resolves to `{ fired, ms, perSec, visibilityState, visibilityChanges }`.
 * In a visible tab a 10 ms interval fires ~100×/s; in a throttled background tab about 1×/s.
 */
export async function startTimerProbe(page, { intervalMs = 10 } = {}) {
  const key = `__timerProbe${Math.random().toString(36).slice(2)}`;
  await page.evaluate(({ key, intervalMs }) => {
    const probe = { fired: 0, t0: performance.now(), changes: [] };
    probe.id = setInterval(() => { probe.fired += 1; }, intervalMs);
    probe.onChange = () => probe.changes.push(document.visibilityState);
    document.addEventListener('visibilitychange', probe.onChange);
    window[key] = probe;
  }, { key, intervalMs });
  const stop = () => page.evaluate((key) => {
    const probe = window[key];
    clearInterval(probe.id);
    document.removeEventListener('visibilitychange', probe.onChange);
    delete window[key];
    const ms = performance.now() - probe.t0;
    return {
      fired: probe.fired, ms, perSec: (1000 * probe.fired) / ms,
      visibilityState: document.visibilityState, visibilityChanges: probe.changes,
    };
  }, key);
  return { stop };
}

/** Count a `setInterval(…, 10)` in `page` for `ms` milliseconds (see startTimerProbe). */
export async function measureTimerRate(page, ms = 3000, opts = {}) {
  const probe = await startTimerProbe(page, opts);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return probe.stop();
}

/**
 * An HTTP server for `files` ({ urlPath: Buffer }) that honours `Range: bytes=a-b` (206 with
 * Content-Range) and sends the CORS headers a page on another origin needs. `corrupt` flips a
 * byte in every 1000 of what it sends; `ignoreRange` answers 200 with the whole file;
 * `wrongRange` labels its 206 answers with a Content-Range one byte off. Counts the ranged
 * requests it answered.
 */
export async function startWebSeed(files, { corrupt = false, ignoreRange = false, wrongRange = false } = {}) {
  const stats = { ranged: 0, full: 0 };
  const srv = http.createServer((req, res) => {
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'Range',
      'Access-Control-Expose-Headers': 'Content-Range, Content-Length',
    };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors).end(); return; }
    const body = files[decodeURIComponent(new URL(req.url, 'http://x').pathname)];
    if (!body) { res.writeHead(404, cors).end('not found'); return; }
    const m = !ignoreRange && /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || '');
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    if (m) {
      start = Number(m[1]);
      end = Math.min(Number(m[2]), body.length - 1);
      if (start > end) { res.writeHead(416, cors).end(); return; }
      status = 206;
      stats.ranged += 1;
    } else {
      stats.full += 1;
    }
    let out = Buffer.from(body.subarray(start, end + 1));
    if (corrupt) for (let i = 0; i < out.length; i += 1000) out[i] ^= 0xff;
    const headers = { ...cors, 'Content-Type': 'application/octet-stream', 'Content-Length': out.length };
    if (status === 206) headers['Content-Range'] = `bytes ${start + (wrongRange ? 1 : 0)}-${end}/${body.length}`;
    res.writeHead(status, headers).end(out);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    url: `http://127.0.0.1:${srv.address().port}/`,
    stats,
    stop: () => new Promise((res) => { srv.closeAllConnections?.(); srv.close(() => res()); }),
  };
}

// A minimal bencode encoder: enough for a .torrent (dict keys sorted as raw bytes).
export function bencode(v) {
  if (typeof v === 'number') return Buffer.from(`i${v}e`);
  if (typeof v === 'string') v = Buffer.from(v);
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k])]), Buffer.from('e')]);
}


// --- The native peer's commands (native.test.mjs, bench/native.mjs) ---------------------------

/**
 * Run `seedtab ARGS...` (the native CLI: create, seed, get) and follow its output. stdout is read
 * as lines; every line that parses as a JSON object (`--json`) is also kept in `events`. Output
 * is copied to the test output as `[name] …` (progress events only every 5th, to keep logs short;
 * SEEDTAB_TEST_QUIET=1 drops all of it). The process is killed when node exits.
 * @returns {{
 *   proc: import('node:child_process').ChildProcess,
 *   lines: string[], events: object[], stderr: () => string,
 *   exited: Promise<{code: number|null, signal: string|null}>,
 *   waitFor: (pred: (ev: object) => boolean, ms?: number, what?: string) => Promise<object>,
 *   waitForLine: (pred: (line: string) => boolean, ms?: number, what?: string) => Promise<string>,
 *   waitExit: (ms?: number) => Promise<{code: number|null, signal: string|null}>,
 *   signal: (sig?: string) => void, stop: (graceMs?: number) => Promise<{code, signal}>,
 * }}
 */
export function spawnSeedtab(args, { name = 'native', cwd = ROOT, env = {} } = {}) {
  const proc = spawn(SEEDTAB_BIN, args, {
    cwd,
    // No RUST_LOG=info here (startServer sets it): the webrtc crate would log every state change.
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  const lines = [];
  const events = [];
  let errText = '';
  const waiters = new Set();
  let exit = null;
  let resolveExit;
  const exited = new Promise((resolve) => { resolveExit = resolve; });
  const finish = (how) => {
    if (exit) return;
    exit = how;
    for (const w of waiters) w.check();
    resolveExit(exit);
  };
  // 'close' comes after the last stdout/stderr data, so waiters see every line first.
  proc.once('close', (code, signal) => { children.delete(proc); finish({ code, signal }); });
  proc.once('error', (err) => {
    errText += `spawn error: ${err.message}\n`;
    children.delete(proc);
    finish({ code: null, signal: null, error: err });
  });
  let progressSeen = 0;
  const onStdout = (line) => {
    lines.push(line);
    let ev = null;
    if (line.startsWith('{')) {
      try { ev = JSON.parse(line); } catch { /* not JSON */ }
    }
    if (ev && typeof ev === 'object') events.push(ev);
    for (const w of waiters) w.check();
    if (!quiet() && (!ev || ev.event !== 'progress' || progressSeen++ % 5 === 0)) {
      process.stderr.write(`[${name}] ${line}\n`);
    }
  };
  const onStderr = (line) => {
    errText = `${errText}${line}\n`.slice(-20_000);
    if (!quiet()) process.stderr.write(`[${name}!] ${line}\n`);
  };
  // Our own line splitting (pipeLines logs every line; progress events would flood the output).
  for (const [stream, fn] of [[proc.stdout, onStdout], [proc.stderr, onStderr]]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        fn(line);
      }
    });
    stream.on('end', () => { if (buf) fn(buf); buf = ''; });
  }
  const describe = () => `seedtab ${args.join(' ')}\n  stdout (last 10): ${lines.slice(-10).join('\n    ')}\n  stderr (end): ${errText.slice(-3000)}`;
  const wait = (list, pred, ms, what) => new Promise((resolve, reject) => {
    let seen = 0;
    const w = {
      check() {
        for (; seen < list.length; seen += 1) {
          if (pred(list[seen])) { done(); resolve(list[seen]); return; }
        }
        if (exit) {
          done();
          reject(new Error(`seedtab exited (code ${exit.code}, signal ${exit.signal}) before ${what}:\n${describe()}`));
        }
      },
    };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${ms} ms waiting for ${what}:\n${describe()}`)); }, ms);
    const done = () => { clearTimeout(timer); waiters.delete(w); };
    waiters.add(w);
    w.check();
  });
  const waitExit = (ms = 30_000) => withTimeout(exited, ms, `seedtab ${args[0]} to exit\n${describe()}`);
  return {
    proc,
    lines,
    events,
    stderr: () => errText,
    exited,
    waitFor: (pred, ms = 60_000, what = 'an event') => wait(events, pred, ms, what),
    waitForLine: (pred, ms = 60_000, what = 'a line') => wait(lines, pred, ms, what),
    waitExit,
    describe,
    signal: (sig = 'SIGINT') => { if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig); },
    /** SIGTERM (or `sig`), SIGKILL after graceMs; resolves to how it exited. */
    stop: async (graceMs = 5000, sig = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(sig);
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      return exited;
    },
  };
}

/** Run `seedtab ARGS...` to the end; resolves to { code, signal, stdout, stderr }. */
export async function runSeedtab(args, { timeoutMs = 60_000, ...opts } = {}) {
  const p = spawnSeedtab(args, opts);
  try {
    const { code, signal } = await p.waitExit(timeoutMs);
    return { code, signal, stdout: p.lines.join('\n'), lines: p.lines, events: p.events, stderr: p.stderr() };
  } finally {
    p.signal('SIGKILL');
  }
}

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(file) {
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

/** Every regular file under `dir` (relative paths with '/', sorted), skipping `skip` names (e.g. '.seedtab'). */
export function listFiles(dir, { skip = ['.seedtab'] } = {}) {
  const out = [];
  const walk = (rel) => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (skip.includes(ent.name)) continue;
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) walk(r);
      else if (ent.isFile()) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

// --- Hostile peers (hostile.test.mjs) --------------------------------------------------------

/** The hostile WebRTC peer: `cargo build --release --features native --example hostile_peer`. */
export const HOSTILE_PEER_BIN = process.env.HOSTILE_PEER_BIN
  || path.join(ROOT, 'target', 'release', 'examples', 'hostile_peer');

/**
 * Start the hostile peer (examples/hostile_peer.rs) against the swarm of `infoHash` on `tracker`.
 * Its stdout JSON lines (`open`, `closed`) are kept in `events`; stderr is copied to the test
 * output as `[name!] …`. Killed when node exits.
 * @returns {{ proc, events: object[], stderr: () => string,
 *   exited: Promise<{code: number|null, signal: string|null}>,
 *   waitFor: (pred: (ev: object) => boolean, ms?: number, what?: string) => Promise<object>,
 *   stop: () => Promise<{code, signal}> }}
 */
export function spawnHostilePeer({ tracker, infoHash, attack, bind, timeoutS = 60, name = `hostile:${attack}` }) {
  if (!fs.existsSync(HOSTILE_PEER_BIN)) {
    throw new Error(`${HOSTILE_PEER_BIN} does not exist: run `
      + '`cargo build --release --features native --example hostile_peer`');
  }
  const args = ['--tracker', tracker, '--info-hash', infoHash, '--attack', attack, '--timeout-s', String(timeoutS)];
  if (bind) args.push('--bind', bind);
  const proc = spawn(HOSTILE_PEER_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const events = [];
  let errText = '';
  const waiters = new Set();
  let exit = null;
  let resolveExit;
  const exited = new Promise((resolve) => { resolveExit = resolve; });
  proc.once('close', (code, signal) => {
    children.delete(proc);
    exit = { code, signal };
    for (const w of waiters) w();
    resolveExit(exit);
  });
  proc.once('error', (err) => { errText += `spawn error: ${err.message}\n`; });
  pipeLines(proc.stdout, `[${name}]`, (line) => {
    try { events.push(JSON.parse(line)); } catch { /* not JSON */ }
    for (const w of waiters) w();
  });
  pipeLines(proc.stderr, `[${name}!]`, (line) => { errText = `${errText}${line}\n`.slice(-20_000); });
  const describe = () => `hostile_peer ${args.join(' ')}\n  events: ${JSON.stringify(events)}\n  stderr (end): ${errText.slice(-3000)}`;
  const waitFor = (pred, ms = 60_000, what = 'an event') => new Promise((resolve, reject) => {
    let timer;
    const check = () => {
      const ev = events.find(pred);
      if (ev) { done(); resolve(ev); } else if (exit) {
        done();
        reject(new Error(`hostile_peer exited (code ${exit.code}, signal ${exit.signal}) before ${what}:\n${describe()}`));
      }
    };
    const done = () => { clearTimeout(timer); waiters.delete(check); };
    timer = setTimeout(() => { done(); reject(new Error(`timed out after ${ms} ms waiting for ${what}:\n${describe()}`)); }, ms);
    waiters.add(check);
    check();
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  };
  return { proc, events, stderr: () => errText, exited, waitFor, describe, stop };
}
