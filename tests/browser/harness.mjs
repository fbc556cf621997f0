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
  const proc = spawn(SEEDTAB_BIN, ['serve', '--addr', '127.0.0.1:0', '--www', wwwDir, ...args], {
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
