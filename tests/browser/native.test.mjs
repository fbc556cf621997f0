// The native peer (issue 8): `seedtab create`, `seedtab seed` and `seedtab get` against seedtab's
// wasm client in Chromium tabs, against WebTorrent 3's browser bundle, and against each other,
// through `seedtab serve`'s tracker. Every transfer checks every byte (SHA-256 per file) and
// prints `NATIVE <case>: X.XX s, Y.YY MB/s`. Timings are reported, never asserted: deadlines are
// generous and only catch a stall. Child processes are killed in `finally` and in `after`.
//
// The native peer listens for WebRTC on all interfaces by default: inside the test namespace
// that is 10.213.0.x, which Chromium there reaches. `--bind 127.0.0.1` for native ↔ native.
//
//   ip netns exec seedtab-test node --test tests/browser/native.test.mjs
//   SEEDTAB_RESUME_MB=256 …   a bigger file for the kill-and-resume cases (default 128)

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  SEEDTAB_BIN, listFiles, launchBrowser, log, openInteropPage, runSeedtab, sha256File,
  spawnSeedtab, startServer, tempDir,
} from './harness.mjs';

const MiB = 1024 * 1024;
const CASE_TIMEOUT = 120_000;
const RESUME_MB = Number(process.env.SEEDTAB_RESUME_MB) || 128;

let server;
let browser;
let tmp;
const procs = new Set();

before(async () => {
  // A clear message while the binary has no native peer commands yet.
  const help = await runSeedtab(['seed', '--help'], { timeoutMs: 20_000, name: 'help' });
  if (help.code !== 0) {
    throw new Error(`${SEEDTAB_BIN} has no working \`seed\` subcommand (exit ${help.code}): `
      + `build it with \`cargo build --release --features native --bin seedtab\`\n${help.stderr}`);
  }
  server = await startServer();
  browser = await launchBrowser();
  tmp = tempDir('seedtab-native-');
  log(`[native] tracker ${server.trackerUrl}, files in ${tmp.dir}`);
});

after(async () => {
  for (const p of procs) {
    p.signal('SIGKILL');
    await p.exited.catch(() => {});
  }
  await browser?.close();
  await server?.stop();
  tmp?.cleanup();
});

/** `seedtab ARGS…`, remembered so `after` kills it whatever happens. */
function native(args, name) {
  const p = spawnSeedtab(args, { name });
  procs.add(p);
  p.exited.then(() => procs.delete(p));
  return p;
}

/** Stops a native peer if it still runs (SIGTERM, SIGKILL after 5 s). */
async function stopNative(p) {
  if (!p) return;
  await p.stop(5000).catch(() => {});
}

/** A new directory under the test's temporary directory. */
function mkdir(...parts) {
  const dir = path.join(tmp.dir, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `size` random bytes (or prngBytes(size, seed)) to `file`; returns their SHA-256. */
function writeFile(file, size, seed) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    if (seed != null) {
      const data = Buffer.from(prngBytes(size, seed));
      fs.writeSync(fd, data);
      h.update(data);
    } else {
      const chunk = Buffer.alloc(Math.min(size, 4 * MiB));
      for (let off = 0; off < size; off += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - off));
        crypto.randomFillSync(part);
        fs.writeSync(fd, part);
        h.update(part);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Writes `files` ([{name: 'rel/path', size, seed?}]) under `dir`; returns Map(name → SHA-256). */
function writeFiles(dir, files) {
  const hashes = new Map();
  for (const f of files) hashes.set(f.name, writeFile(path.join(dir, f.name), f.size, f.seed));
  return hashes;
}

/**
 * Deterministic bytes: the same (n, seed) gives the same bytes in Node and in every page
 * (xorshift32, little-endian words; the same function as interop.test.mjs).
 */
function prngBytes(n, seed) {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = (seed * 2654435761) >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

const btihOf = (magnet) => /xt=urn:btih:([0-9a-fA-F]{40})/.exec(magnet)?.[1]?.toLowerCase();
const total = (files) => files.reduce((n, f) => n + f.size, 0);

function rateLine(label, bytes, ms, how) {
  const secs = ms / 1000;
  log(`NATIVE ${label}: ${secs.toFixed(2)} s, ${(bytes / 1e6 / secs).toFixed(2)} MB/s (${bytes} bytes${how ? `, ${how}` : ''})`);
}

/** Checks a native `ready` line against what was seeded. */
function checkReady(ready, { name, length }) {
  assert.match(ready.infoHash, /^[0-9a-f]{40}$/, 'ready: infoHash is 40 lower-case hex');
  assert.ok(typeof ready.magnet === 'string' && ready.magnet.startsWith('magnet:?'), 'ready: magnet link');
  assert.equal(btihOf(ready.magnet), ready.infoHash, 'ready: the magnet carries the info-hash');
  const trackers = new URLSearchParams(ready.magnet.slice('magnet:?'.length)).getAll('tr');
  assert.ok(trackers.includes(server.trackerUrl), `ready: the magnet carries the tracker: ${ready.magnet}`);
  assert.equal(ready.name, name, 'ready: name');
  assert.equal(ready.length, length, 'ready: length');
  assert.ok(ready.pieces > 0, 'ready: pieces > 0');
  assert.equal(ready.have, ready.pieces, 'ready: a seeder has every piece');
}

/** Seeds PATHS natively with --json; resolves to { p, ready }. */
async function nativeSeed(paths, name, extra = []) {
  const p = native(['seed', ...paths, '--tracker', server.trackerUrl, '--json', ...extra], name);
  const ready = await p.waitFor((e) => e.event === 'ready', 60_000, 'the seeder\'s ready line');
  return { p, ready };
}

/**
 * `seedtab get TORRENT -o DIR --json` to the end. Resolves to { p, metadata, done, ms, code }
 * (ms: spawn → done line, in this process). Fails on a non-zero exit.
 */
async function nativeGet(torrentId, outDir, name, { extra = [], timeoutMs = CASE_TIMEOUT - 20_000 } = {}) {
  const t0 = performance.now();
  const p = native(['get', torrentId, '-o', outDir, '--tracker', server.trackerUrl, '--json', ...extra], name);
  try {
    const metadata = await p.waitFor((e) => e.event === 'metadata', timeoutMs, 'the metadata line');
    const done = await p.waitFor((e) => e.event === 'done', timeoutMs, 'the done line');
    const ms = performance.now() - t0;
    const { code, signal } = await p.waitExit(20_000);
    assert.equal(code, 0, `get exits 0 when complete (signal ${signal})\n${p.describe()}`);
    return { p, metadata, done, ms, code };
  } finally {
    p.signal('SIGKILL');
  }
}

/** Checks a `get`'s output directory: exactly these files (relative paths) with these SHA-256. */
async function checkDisk(outDir, expected, label) {
  const want = [...expected.keys()].sort();
  assert.deepEqual(listFiles(outDir), want, `[${label}] the files in ${outDir}`);
  for (const rel of want) {
    assert.equal(await sha256File(path.join(outDir, rel)), expected.get(rel), `[${label}] ${rel}: SHA-256`);
  }
}

// ---- tabs -----------------------------------------------------------------------------------

/**
 * Page-side helpers (injected into every page; seedtab's JS API and WebTorrent in one page):
 *   nt.seed(kind, files, trackers, opts)  seeds generated bytes; -> { infoHash, magnetURI, torrentFile, name, hashes }
 *   nt.add(kind, torrentId)               starts a download (magnet link or .torrent bytes)
 *   nt.status(kind)                       { outcome, progress, stats }
 *   nt.readFiles(kind)                    { infoHash, name, files: [{ name, path, length, hash }] }
 */
function pageHelpers() {
  window.nt = {
    wtClient() {
      const client = new window.WebTorrent({
        dht: false, lsd: false, utp: false, webSeeds: false, natUpnp: false, natPmp: false,
        tracker: { rtcConfig: { iceServers: [] } },
      });
      client.on('error', (err) => console.error('webtorrent client error:', err && err.message));
      return client;
    },
    async input(files) {
      const out = [];
      for (const f of files) {
        const data = f.seed != null ? window.prngBytes(f.size, f.seed) : testUtils.randomBytes(f.size);
        out.push({ name: f.name, data, hash: await testUtils.sha256Hex(data) });
      }
      return out;
    },
    wtFiles(input) {
      return input.map((f) => {
        const file = new File([f.data], f.name.split('/').pop());
        if (f.name.includes('/')) file.fullPath = f.name; // create-torrent reads `fullPath || name`
        return file;
      });
    },
    async seed(kind, files, trackers, opts = {}) {
      const input = await nt.input(files);
      const hashes = input.map((f) => f.hash);
      let t;
      if (kind === 'seedtab') {
        window.stClient = window.stClient || new seedtab.Client({ trackers, iceServers: [] });
        t = await stClient.seed(input.map(({ name, data }) => ({ name, data })), opts);
      } else {
        window.wtClient = window.wtClient || nt.wtClient();
        const wtInput = nt.wtFiles(input);
        t = await new Promise((resolve, reject) => {
          const torrent = wtClient.seed(wtInput.length === 1 ? wtInput[0] : wtInput, { announce: trackers, ...opts }, resolve);
          torrent.on('error', reject);
        });
      }
      window.seeding = t;
      return { infoHash: t.infoHash, magnetURI: t.magnetURI, torrentFile: Array.from(t.torrentFile), name: t.name, hashes };
    },
    add(kind, torrentId) {
      const id = typeof torrentId === 'string' ? torrentId : new Uint8Array(torrentId);
      window.addedAt = performance.now();
      window.outcome = null;
      const ok = () => { window.outcome = window.outcome || { ok: true, ms: performance.now() - window.addedAt }; };
      const fail = (err) => { window.outcome = window.outcome || { ok: false, error: String((err && err.message) || err) }; };
      if (kind === 'seedtab') {
        window.stClient = window.stClient || new seedtab.Client({ trackers: [], iceServers: [] });
        window.downloading = stClient.add(id);
        downloading.done.then(ok, fail);
      } else {
        window.wtClient = window.wtClient || nt.wtClient();
        window.downloading = wtClient.add(id, { announce: [] });
        downloading.on('done', ok);
        downloading.on('error', fail);
      }
    },
    status(kind) {
      const t = window.downloading;
      if (!t) return { outcome: window.outcome };
      if (kind === 'seedtab') {
        let stats;
        try { stats = t.stats(); } catch (e) { stats = String(e); }
        return { outcome: window.outcome, progress: t.progress, stats };
      }
      return {
        outcome: window.outcome,
        progress: t.progress,
        stats: { numPeers: t.numPeers, downloaded: t.downloaded, ready: t.ready, downloadSpeed: t.downloadSpeed },
      };
    },
    async readFiles(kind) {
      const t = window.downloading;
      const out = [];
      for (const f of t.files) {
        const bytes = kind === 'seedtab' ? await f.bytes() : new Uint8Array(await f.arrayBuffer());
        out.push({ name: f.name, path: f.path, length: f.length, hash: await testUtils.sha256Hex(bytes) });
      }
      return { infoHash: t.infoHash, name: t.name, files: out };
    },
    destroy() {
      try { window.stClient?.destroy(); } catch { /* closing anyway */ }
      try { window.wtClient?.destroy(); } catch { /* closing anyway */ }
    },
  };
}

/** A tab in a context of its own with seedtab, WebTorrent and `nt` loaded. */
async function openTab(name) {
  const context = await browser.newContext();
  await context.addInitScript({ content: `window.prngBytes = ${prngBytes.toString()};\n(${pageHelpers.toString()})();` });
  const page = await openInteropPage(browser, server, { name, context });
  return { page, context, close: () => context.close().catch(() => {}) };
}

/** Starts a download in the tab and polls until it ends; resolves to add() → done in ms. */
async function tabDownload(page, kind, torrentId, label, deadline, onStall = async () => '') {
  await page.evaluate(({ kind, torrentId }) => nt.add(kind, torrentId), { kind, torrentId });
  let lastReport = Date.now();
  for (;;) {
    const s = await page.evaluate((kind) => nt.status(kind), kind);
    if (s.outcome) {
      assert.ok(s.outcome.ok, `[${label}] download failed: ${s.outcome.error}`);
      return s.outcome.ms;
    }
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      log(`[${label}] progress ${(100 * (s.progress || 0)).toFixed(1)}% ${JSON.stringify(s.stats)}`);
    }
    if (Date.now() > deadline) {
      assert.fail(`[${label}] not done in time: at ${(100 * (s.progress || 0)).toFixed(1)}%, ${JSON.stringify(s.stats)}; ${await onStall()}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Checks what the tab downloaded: info-hash, and exactly `expected` (Map path → SHA-256) with lengths. */
async function checkTabFiles(page, kind, label, infoHash, expected) {
  const got = await page.evaluate((kind) => nt.readFiles(kind), kind);
  assert.equal(got.infoHash, infoHash, `[${label}] info-hash`);
  const paths = got.files.map((f) => f.path).sort();
  assert.deepEqual(paths, [...expected.keys()].sort(), `[${label}] file paths`);
  for (const f of got.files) assert.equal(f.hash, expected.get(f.path), `[${label}] ${f.path}: SHA-256`);
  return got;
}

/** What a seeder was doing, for a stall's failure message. */
const lastProgress = (p) => () => Promise.resolve(
  `native seeder's last progress: ${JSON.stringify([...p.events].reverse().find((e) => e.event === 'progress') || null)}`,
);

// ---- a. native seed → seedtab tab -----------------------------------------------------------

test('a. native seed (32 MiB file, --json) → seedtab tab downloads from the magnet link', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'a native->tab 32MiB';
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const dir = mkdir('a1');
  const name = 'native-a.bin';
  const size = 32 * MiB;
  const sha = writeFile(path.join(dir, name), size);
  let seeder;
  let tab;
  try {
    ({ p: seeder } = await nativeSeed([path.join(dir, name)], 'a:seed'));
    const ready = seeder.events.find((e) => e.event === 'ready');
    checkReady(ready, { name, length: size });
    tab = await openTab('a:tab');
    const ms = await tabDownload(tab.page, 'seedtab', ready.magnet, label, deadline, lastProgress(seeder));
    rateLine(label, size, ms, 'magnet link to done in the tab');
    await checkTabFiles(tab.page, 'seedtab', label, ready.infoHash, new Map([[name, sha]]));
    // The seeder's own figures: it uploaded the whole file and saw the peer.
    const prog = await seeder.waitFor((e) => e.event === 'progress' && e.uploaded >= size, 15_000,
      'a progress line with uploaded >= the file length');
    assert.equal(prog.have, prog.pieces, 'the seeder has every piece');
    assert.equal(prog.length, size, 'progress: length');
    assert.ok(seeder.events.some((e) => e.event === 'peer' && e.op === 'connected' && /^[0-9a-f]{40}$/.test(e.peerId)),
      'a peer connected line with a 40-hex peer id');
    log(`[${label}] seeder: ${JSON.stringify(prog)}`);
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
    await stopNative(seeder);
  }
});

test('a. native seed of a folder (no --json: the first line is the magnet link) → seedtab tab', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'a native->tab folder';
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const root = mkdir('a2');
  const folder = 'native folder';
  const files = [
    { name: 'a.bin', size: 1_500_001 },
    { name: 'empty.txt', size: 0 },
    { name: 'sub/ñ.txt', size: 1 },
    { name: 'b.bin', size: 700_000 },
  ];
  const hashes = writeFiles(path.join(root, folder), files);
  const expected = new Map([...hashes].map(([rel, h]) => [`${folder}/${rel}`, h]));
  let seeder;
  let tab;
  try {
    seeder = native(['seed', path.join(root, folder), '--tracker', server.trackerUrl], 'a2:seed');
    const magnet = await seeder.waitForLine((l) => l.trim() !== '', 60_000, 'the magnet line');
    assert.ok(magnet.startsWith('magnet:?'), `the first stdout line is the magnet link: ${magnet}`);
    const infoHash = btihOf(magnet);
    assert.ok(infoHash, `the magnet link has a hex btih: ${magnet}`);
    // The tab knows the tracker from the magnet link alone: without it, it would wait for nothing.
    assert.ok(new URLSearchParams(magnet.slice('magnet:?'.length)).getAll('tr').includes(server.trackerUrl),
      `the magnet link carries the --tracker: ${magnet}`);
    tab = await openTab('a2:tab');
    const ms = await tabDownload(tab.page, 'seedtab', magnet, label, deadline);
    rateLine(label, total(files), ms, 'magnet link to done in the tab');
    const got = await checkTabFiles(tab.page, 'seedtab', label, infoHash, expected);
    assert.equal(got.name, folder, 'the torrent is named after the folder');
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
    await stopNative(seeder);
  }
});

// ---- b. seedtab tab seeds → native get ------------------------------------------------------

test('b. seedtab tab seeds 16 MiB → native get (magnet, --json) downloads, exit 0', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'b tab->native 16MiB';
  const files = [{ name: 'tab-b.bin', size: 16 * MiB }];
  let tab;
  try {
    tab = await openTab('b:tab');
    const seeded = await tab.page.evaluate(({ files, trackers }) => nt.seed('seedtab', files, trackers),
      { files, trackers: [server.trackerUrl] });
    const out = mkdir('b1-out');
    const r = await nativeGet(seeded.magnetURI, out, 'b:get');
    rateLine(label, files[0].size, r.ms, `spawn to done; its own figure ${r.done.seconds?.toFixed?.(2)} s`);
    assert.equal(r.metadata.infoHash, seeded.infoHash, 'metadata: infoHash');
    assert.equal(r.metadata.name, files[0].name, 'metadata: name');
    assert.equal(r.metadata.length, files[0].size, 'metadata: length');
    assert.equal(r.metadata.have, 0, 'metadata: nothing on disk yet');
    assert.equal(r.done.infoHash, seeded.infoHash, 'done: infoHash');
    assert.equal(r.done.length, files[0].size, 'done: length');
    await checkDisk(out, new Map([[files[0].name, seeded.hashes[0]]]), label);
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
  }
});

test('b. seedtab tab seeds a folder → native get --quiet writes DIR/<name>/<path>', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'b tab->native folder';
  const files = [
    { name: 'tab folder/héllo wörld.txt', size: 3_000_001 },
    { name: 'tab folder/empty.txt', size: 0 },
    { name: 'tab folder/日本.bin', size: 2_000_000 },
    { name: 'tab folder/sub/ñ.dat', size: 123_457 },
  ];
  let tab;
  let get;
  try {
    tab = await openTab('b2:tab');
    const seeded = await tab.page.evaluate(({ files, trackers }) => nt.seed('seedtab', files, trackers),
      { files, trackers: [server.trackerUrl] });
    assert.equal(seeded.name, 'tab folder');
    const out = mkdir('b2-out');
    const t0 = performance.now();
    get = native(['get', seeded.magnetURI, '-o', out, '--tracker', server.trackerUrl, '--quiet'], 'b2:get');
    const { code, signal } = await get.waitExit(CASE_TIMEOUT - 20_000);
    const ms = performance.now() - t0;
    assert.equal(code, 0, `get exits 0 (signal ${signal})\n${get.describe()}`);
    rateLine(label, total(files), ms, 'spawn to exit');
    assert.deepEqual(get.lines.filter((l) => l.trim()), [], '--quiet: nothing on stdout');
    await checkDisk(out, new Map(files.map((f, i) => [f.name, seeded.hashes[i]])), label);
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
    await stopNative(get);
  }
});

test('b. native get --seed keeps seeding: a second tab downloads from it after the first seeder left', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'b get --seed->tab 8MiB';
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const files = [{ name: 'relay.bin', size: 8 * MiB }];
  let seederTab;
  let tab;
  let get;
  try {
    seederTab = await openTab('b3:seed');
    const seeded = await seederTab.page.evaluate(({ files, trackers }) => nt.seed('seedtab', files, trackers),
      { files, trackers: [server.trackerUrl] });
    const out = mkdir('b3-out');
    get = native(['get', seeded.magnetURI, '-o', out, '--tracker', server.trackerUrl, '--json', '--seed'], 'b3:get');
    await get.waitFor((e) => e.event === 'done', CASE_TIMEOUT / 2, 'the done line');
    await checkDisk(out, new Map([[files[0].name, seeded.hashes[0]]]), label);
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(get.proc.exitCode, null, '--seed: get keeps running after done');
    await seederTab.page.evaluate(() => nt.destroy());
    await seederTab.close();
    seederTab = null;
    tab = await openTab('b3:tab');
    const ms = await tabDownload(tab.page, 'seedtab', seeded.magnetURI, label, deadline, lastProgress(get));
    rateLine(label, files[0].size, ms, 'magnet link to done in the tab, from the native get --seed');
    await checkTabFiles(tab.page, 'seedtab', label, seeded.infoHash, new Map([[files[0].name, seeded.hashes[0]]]));
    await tab.page.evaluate(() => nt.destroy());
    get.signal('SIGINT');
    const { code } = await get.waitExit(15_000);
    assert.equal(code, 0, `get --seed, complete, stopped by SIGINT exits 0 like a seeder\n${get.describe()}`);
  } finally {
    await tab?.close();
    await seederTab?.close();
    await stopNative(get);
  }
});

// ---- c. native ↔ WebTorrent tab --------------------------------------------------------------

test('c. native seed (16 MiB) → WebTorrent tab downloads from the magnet link', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'c native->webtorrent 16MiB';
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const dir = mkdir('c1');
  const name = 'native-c.bin';
  const size = 16 * MiB;
  const sha = writeFile(path.join(dir, name), size);
  let seeder;
  let tab;
  try {
    let ready;
    ({ p: seeder, ready } = await nativeSeed([path.join(dir, name)], 'c:seed'));
    checkReady(ready, { name, length: size });
    tab = await openTab('c:wt');
    const ms = await tabDownload(tab.page, 'webtorrent', ready.magnet, label, deadline, lastProgress(seeder));
    rateLine(label, size, ms, 'magnet link to done in WebTorrent');
    await checkTabFiles(tab.page, 'webtorrent', label, ready.infoHash, new Map([[name, sha]]));
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
    await stopNative(seeder);
  }
});

test('c. WebTorrent tab seeds 16 MiB → native get downloads', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'c webtorrent->native 16MiB';
  const files = [{ name: 'wt-c.bin', size: 16 * MiB }];
  let tab;
  try {
    tab = await openTab('c2:wt');
    const seeded = await tab.page.evaluate(({ files, trackers }) => nt.seed('webtorrent', files, trackers),
      { files, trackers: [server.trackerUrl] });
    const out = mkdir('c2-out');
    const r = await nativeGet(seeded.magnetURI, out, 'c2:get');
    rateLine(label, files[0].size, r.ms, `spawn to done; its own figure ${r.done.seconds?.toFixed?.(2)} s`);
    assert.equal(r.done.infoHash, seeded.infoHash, 'done: infoHash');
    await checkDisk(out, new Map([[files[0].name, seeded.hashes[0]]]), label);
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
  }
});

// ---- d. native ↔ native ----------------------------------------------------------------------

for (const bind of ['127.0.0.1', null]) {
  const size = bind ? 32 * MiB : 8 * MiB;
  test(`d. native seed → native get, ${bind ? `both --bind ${bind}, magnet` : 'default bind, .torrent from create'} (${size / MiB} MiB)`, { timeout: CASE_TIMEOUT }, async () => {
    const label = `d native->native ${bind ? 'bind-127' : 'default-bind'} ${size / MiB}MiB`;
    const dir = mkdir(`d-${bind ? 'lo' : 'any'}`);
    const name = 'native-d.bin';
    const sha = writeFile(path.join(dir, name), size);
    const bindArgs = bind ? ['--bind', bind] : [];
    let seeder;
    try {
      let ready;
      ({ p: seeder, ready } = await nativeSeed([path.join(dir, name)], 'd:seed', bindArgs));
      checkReady(ready, { name, length: size });
      // With the default bind, `get` starts from a .torrent that `create` made of the same file.
      let torrentId = ready.magnet;
      if (!bind) {
        torrentId = path.join(tmp.dir, 'd.torrent');
        const c = await runSeedtab(['create', path.join(dir, name), '-o', torrentId, '--tracker', server.trackerUrl], { name: 'd:create' });
        assert.equal(c.code, 0, `create exits 0: ${c.stderr}`);
        assert.equal(btihOf(c.lines.find((l) => l.trim()) || ''), ready.infoHash, 'create and seed agree on the info-hash');
      }
      const out = mkdir(`d-${bind ? 'lo' : 'any'}-out`);
      const r = await nativeGet(torrentId, out, 'd:get', { extra: bindArgs });
      rateLine(label, size, r.ms, `spawn to done; its own figure ${r.done.seconds?.toFixed?.(2)} s`);
      assert.equal(r.done.infoHash, ready.infoHash);
      assert.ok(r.p.events.some((e) => e.event === 'progress'), 'at least one progress line');
      await checkDisk(out, new Map([[name, sha]]), label);
    } finally {
      await stopNative(seeder);
    }
  });
}

// ---- e. kill, interrupt, resume ------------------------------------------------------------

let bigFile = null;
/** One big random file for the resume cases, written once. */
function big() {
  if (!bigFile) {
    const dir = mkdir('e-seed');
    const name = 'resume.bin';
    const size = RESUME_MB * MiB;
    bigFile = { dir, name, size, sha: writeFile(path.join(dir, name), size) };
  }
  return bigFile;
}

/**
 * Starts `get` and waits for the first progress line with some but not all pieces (a download
 * under way). Fails clearly when it completes first (the file is too small for this machine).
 */
async function getUntilPartial(magnet, out, name, bindArgs) {
  const p = native(['get', magnet, '-o', out, '--tracker', server.trackerUrl, '--json', ...bindArgs], name);
  const metadata = await p.waitFor((e) => e.event === 'metadata', 60_000, 'the metadata line');
  const ev = await p.waitFor((e) => (e.event === 'progress' && e.have > 0 && e.have < e.pieces) || e.event === 'done',
    90_000, 'a progress line with 0 < have < pieces');
  if (ev.event === 'done') {
    assert.fail(`${name}: the ${RESUME_MB} MiB download completed before any progress line showed it part-way; `
      + 'set SEEDTAB_RESUME_MB higher');
  }
  return { p, metadata, partial: ev };
}

test(`e. SIGKILL a native get part-way, run it again on the same -o: it resumes (${RESUME_MB} MiB)`, { timeout: 180_000 }, async () => {
  const label = `e resume-after-SIGKILL ${RESUME_MB}MiB`;
  const { dir, name, size, sha } = big();
  const bindArgs = ['--bind', '127.0.0.1'];
  let seeder;
  let first;
  try {
    let ready;
    ({ p: seeder, ready } = await nativeSeed([path.join(dir, name)], 'e1:seed', bindArgs));
    const out = mkdir('e1-out');
    const t0 = performance.now();
    const run1 = await getUntilPartial(ready.magnet, out, 'e1:get-1', bindArgs);
    first = run1.p;
    first.signal('SIGKILL');
    const killed = await first.waitExit(10_000);
    assert.equal(killed.signal, 'SIGKILL');
    const ms1 = performance.now() - t0;
    log(`[${label}] killed after ${(ms1 / 1000).toFixed(2)} s at ${run1.partial.have}/${run1.partial.pieces} pieces`);

    const r = await nativeGet(ready.magnet, out, 'e1:get-2', { extra: bindArgs, timeoutMs: 150_000 });
    log(`[${label}] second run: metadata ${JSON.stringify(r.metadata)}, done ${JSON.stringify(r.done)}`);
    assert.ok(r.metadata.have > 0, `the second run found verified pieces on disk (have ${r.metadata.have})`);
    assert.ok(r.metadata.have < r.metadata.pieces, 'but not all of them');
    if (typeof r.done.downloaded === 'number') {
      assert.ok(r.done.downloaded < size, `the second run did not download everything again (${r.done.downloaded} of ${size})`);
    }
    rateLine(label, size, ms1 + r.ms, `both runs, spawn to kill plus spawn to done; resumed from ${r.metadata.have}/${r.metadata.pieces} pieces`);
    await checkDisk(out, new Map([[name, sha]]), label);
  } finally {
    await stopNative(first);
    await stopNative(seeder);
  }
});

test('e. SIGINT a native get part-way: a stopped line, exit 130; the next run resumes with what it had', { timeout: 180_000 }, async () => {
  const label = `e resume-after-SIGINT ${RESUME_MB}MiB`;
  const { dir, name, size, sha } = big();
  const bindArgs = ['--bind', '127.0.0.1'];
  let seeder;
  let first;
  try {
    let ready;
    ({ p: seeder, ready } = await nativeSeed([path.join(dir, name)], 'e2:seed', bindArgs));
    const out = mkdir('e2-out');
    const run1 = await getUntilPartial(ready.magnet, out, 'e2:get-1', bindArgs);
    first = run1.p;
    first.signal('SIGINT');
    const { code, signal } = await first.waitExit(20_000);
    assert.equal(code, 130, `get interrupted by SIGINT exits 130 (signal ${signal})\n${first.describe()}`);
    assert.ok(first.events.some((e) => e.event === 'stopped'), 'a stopped line');
    assert.ok(!first.events.some((e) => e.event === 'done'), 'no done line');
    const lastHave = Math.max(...first.events.filter((e) => e.event === 'progress').map((e) => e.have));
    log(`[${label}] interrupted at ${lastHave}/${run1.partial.pieces} pieces (last progress line)`);

    const r = await nativeGet(ready.magnet, out, 'e2:get-2', { extra: bindArgs, timeoutMs: 150_000 });
    log(`[${label}] second run: metadata ${JSON.stringify(r.metadata)}`);
    assert.ok(r.metadata.have >= lastHave,
      `a clean stop keeps every piece it reported verified: have ${r.metadata.have} >= ${lastHave}`);
    rateLine(label, size, r.ms, `second run only, from ${r.metadata.have}/${r.metadata.pieces} pieces`);
    await checkDisk(out, new Map([[name, sha]]), label);
  } finally {
    await stopNative(first);
    await stopNative(seeder);
  }
});

test('e. SIGINT a native get that found no peer: a stopped line, exit 130', { timeout: 60_000 }, async () => {
  const ih = crypto.randomBytes(20).toString('hex');
  const magnet = `magnet:?xt=urn:btih:${ih}&dn=nobody.bin&tr=${encodeURIComponent(server.trackerUrl)}`;
  const get = native(['get', magnet, '-o', mkdir('e3-out'), '--tracker', server.trackerUrl, '--json'], 'e3:get');
  try {
    await new Promise((res) => setTimeout(res, 2000));
    assert.equal(get.proc.exitCode, null, `get waits for peers instead of exiting\n${get.describe()}`);
    get.signal('SIGINT');
    const { code } = await get.waitExit(15_000);
    assert.equal(code, 130, `exit code 130\n${get.describe()}`);
    assert.ok(get.events.some((e) => e.event === 'stopped'), `a stopped line\n${get.describe()}`);
  } finally {
    await stopNative(get);
  }
});

test('e. SIGINT a native seeder: a stopped line, exit 0, the tracker forgets it', { timeout: 60_000 }, async () => {
  // A tracker of its own, so that no other case's peers are counted.
  const own = await startServer();
  const dir = mkdir('e4');
  writeFile(path.join(dir, 'stop.bin'), 1 * MiB);
  const seeder = native(['seed', path.join(dir, 'stop.bin'), '--tracker', own.trackerUrl, '--json'], 'e4:seed');
  const stats = async () => (await fetch(new URL('stats', own.url))).json();
  const until = async (pred, ms, what) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await stats();
      if (pred(s)) return s;
      if (Date.now() > end) assert.fail(`tracker stats: ${what}: ${JSON.stringify(s)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  try {
    await seeder.waitFor((e) => e.event === 'ready', 30_000, 'the ready line');
    const before = await until((s) => s.peers === 1, 10_000, 'the seeder announced');
    seeder.signal('SIGINT');
    const { code, signal } = await seeder.waitExit(15_000);
    assert.equal(code, 0, `a seeder stopped by SIGINT exits 0 (signal ${signal})\n${seeder.describe()}`);
    assert.ok(seeder.events.some((e) => e.event === 'stopped'), 'a stopped line');
    const afterStop = await until((s) => s.peers === 0, 5000, 'the seeder left the swarm');
    log(`[e seeder SIGINT] tracker announces ${before.announces} -> ${afterStop.announces} `
      + `(a stopped announce adds one; closing the socket alone also drops the peer)`);
  } finally {
    await stopNative(seeder);
    await own.stop();
  }
});

// ---- f. create ------------------------------------------------------------------------------

/** The info-hash WebTorrent computes for `files` (prng bytes) with `opts`, in `page`. */
function webtorrentInfoHashes(page, cases) {
  return page.evaluate(async (cases) => {
    const wt = new window.WebTorrent({ tracker: false, dht: false, lsd: false, webSeeds: false, utp: false });
    const out = [];
    for (const c of cases) {
      const input = await nt.input(c.files);
      const files = nt.wtFiles(input);
      const t = await new Promise((resolve, reject) => {
        const torrent = wt.seed(files.length === 1 ? files[0] : files, { ...c.opts, announce: [] }, resolve);
        torrent.on('error', reject);
      });
      out.push({ infoHash: t.infoHash, name: t.name, pieceLength: t.pieceLength, files: t.files.map((f) => [f.path, f.length]) });
    }
    await new Promise((res) => wt.destroy(res));
    return out;
  }, cases);
}

test('f. seedtab create → seed FILE.torrent --dir → a tab downloads the .torrent; same info-hash as WebTorrent', { timeout: CASE_TIMEOUT }, async () => {
  const label = 'f create+seed .torrent->tab';
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const dir = mkdir('f1');
  const name = 'native créé.bin';
  const size = 3_000_001;
  const pieceLength = 32768;
  const sha = writeFile(path.join(dir, name), size, 41);
  const torrentFile = path.join(tmp.dir, 'f1.torrent');
  const created = await runSeedtab(['create', path.join(dir, name), '-o', torrentFile,
    '--piece-length', String(pieceLength), '--tracker', server.trackerUrl], { name: 'f:create' });
  assert.equal(created.code, 0, `create exits 0: ${created.stderr}`);
  const magnet = created.lines.find((l) => l.trim())?.trim();
  assert.ok(magnet?.startsWith('magnet:?'), `create prints the magnet link: ${created.stdout}`);
  const infoHash = btihOf(magnet);
  const bytes = fs.readFileSync(torrentFile);
  assert.ok(bytes.includes(Buffer.from(server.trackerUrl)), 'the .torrent names the tracker');
  assert.ok(bytes.includes(Buffer.from(`12:piece lengthi${pieceLength}e`)), 'the .torrent has the piece length');
  let seeder;
  let tab;
  try {
    seeder = native(['seed', torrentFile, '--dir', dir, '--tracker', server.trackerUrl, '--json'], 'f:seed');
    const ready = await seeder.waitFor((e) => e.event === 'ready', 60_000, 'the ready line');
    assert.equal(ready.infoHash, infoHash, 'seeding the .torrent: the info-hash create printed');
    assert.equal(ready.have, ready.pieces, 'the data in --dir checks out');
    tab = await openTab('f:tab');
    const ms = await tabDownload(tab.page, 'seedtab', [...bytes], label, deadline, lastProgress(seeder));
    rateLine(label, size, ms, '.torrent to done in the tab');
    await checkTabFiles(tab.page, 'seedtab', label, infoHash, new Map([[name, sha]]));
    const [wt] = await webtorrentInfoHashes(tab.page, [{ files: [{ name, size, seed: 41 }], opts: { pieceLength } }]);
    log(`[${label}] native ${infoHash}, WebTorrent ${wt.infoHash} (${wt.name}, piece length ${wt.pieceLength})`);
    assert.equal(infoHash, wt.infoHash, 'same info-hash as WebTorrent for the same file, name and piece length');
    await tab.page.evaluate(() => nt.destroy());
  } finally {
    await tab?.close();
    await stopNative(seeder);
  }
});

test('f. seedtab create of a folder, with --webseed, and of a file with --name: same info-hash as WebTorrent', { timeout: 60_000 }, async () => {
  const root = mkdir('f2');
  const folder = 'dossier natif';
  // Sorted by path, the order a directory walk gives (WebTorrent keeps the order it is given).
  const inner = [
    { name: 'empty.txt', size: 0, seed: 51 },
    { name: 'héllo wörld.txt', size: 100_000, seed: 52 },
    { name: 'sub dir/ñ.dat', size: 16384, seed: 53 },
    { name: '日本.bin', size: 50_001, seed: 54 },
  ];
  writeFiles(path.join(root, folder), inner);
  const webseed = 'http://127.0.0.1:9/webseed/';
  const t2 = path.join(tmp.dir, 'f2.torrent');
  const c2 = await runSeedtab(['create', path.join(root, folder), '-o', t2, '--piece-length', '16384',
    '--webseed', webseed], { name: 'f2:create' });
  assert.equal(c2.code, 0, `create exits 0: ${c2.stderr}`);
  const t2bytes = fs.readFileSync(t2);
  assert.ok(t2bytes.includes(Buffer.from('8:url-list')) && t2bytes.includes(Buffer.from(webseed)), 'the .torrent lists the web seed');

  writeFile(path.join(root, 'plain.bin'), 6_000_000, 61);
  const t3 = path.join(tmp.dir, 'f3.torrent');
  const c3 = await runSeedtab(['create', path.join(root, 'plain.bin'), '-o', t3, '--name', 'renamed.bin'], { name: 'f3:create' });
  assert.equal(c3.code, 0, `create exits 0: ${c3.stderr}`);

  const ctx = await openTab('f2:wt');
  try {
    const [wtFolder, wtRenamed] = await webtorrentInfoHashes(ctx.page, [
      { files: inner.map((f) => ({ ...f, name: `${folder}/${f.name}` })), opts: { pieceLength: 16384 } },
      { files: [{ name: 'plain.bin', size: 6_000_000, seed: 61 }], opts: { name: 'renamed.bin' } },
    ]);
    const ours2 = btihOf(c2.lines.find((l) => l.trim()) || '');
    const ours3 = btihOf(c3.lines.find((l) => l.trim()) || '');
    log(`[f folder] native ${ours2}, WebTorrent ${wtFolder.infoHash} ${JSON.stringify(wtFolder.files)}`);
    log(`[f --name] native ${ours3}, WebTorrent ${wtRenamed.infoHash} (default piece length: WebTorrent ${wtRenamed.pieceLength})`);
    assert.equal(ours2, wtFolder.infoHash, 'folder: same info-hash as WebTorrent');
    assert.equal(ours3, wtRenamed.infoHash, '--name and default piece length: same info-hash as WebTorrent');
  } finally {
    await ctx.close();
  }
});
