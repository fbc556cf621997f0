// Interoperability with WebTorrent itself (issue 3): WebTorrent 3's browser bundle
// (node_modules/webtorrent/dist/webtorrent.min.js) and seedtab's wasm package in real Chromium
// tabs, introduced by seedtab's own tracker (`seedtab serve`) or by bittorrent-tracker 11's
// server (the reference tracker, in this Node process). Every transfer checks every byte
// (SHA-256 per file) and prints `INTEROP <case>: X.XX s, Y.YY MB/s`.
//
// Timings are reported, never asserted: deadlines are generous and only catch a stall.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  launchBrowser, log, openInteropPage, startReferenceTracker, startServer,
} from './harness.mjs';

const MiB = 1024 * 1024;
const CASE_TIMEOUT = 90_000;

let server;
let reference;
let browser;

before(async () => {
  server = await startServer();
  reference = await startReferenceTracker();
  browser = await launchBrowser();
  log(`[interop] seedtab tracker ${server.trackerUrl}, reference tracker ${reference.url}`);
});

after(async () => {
  await browser?.close();
  await reference?.stop();
  await server?.stop();
});

const trackerUrl = (which) => (which === 'seedtab' ? server.trackerUrl : reference.url);

/**
 * Deterministic bytes: the same (n, seed) gives the same bytes in Node and in every page
 * (xorshift32, little-endian words), so two seeders can hold the same files.
 * Runs in pages as `window.prngBytes` (injected with its source).
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

/**
 * Page-side helpers (injected into every interop page; both clients share one page type):
 *   interop.makeInput(files)      -> [{ name, data }] (data random, or prngBytes when `seed` set)
 *   interop.wtClient()            -> a WebTorrent client that uses nothing but WebSocket trackers
 *   interop.wtFiles(input)        -> File objects for WebTorrent ("a/b" names set `fullPath`)
 *   interop.watch(kind, torrent)  -> records window.outcome when the download finishes
 *   interop.status(kind)          -> progress, for logs while waiting
 *   interop.readFiles(kind)       -> [{ name, path, length, hash }] of the downloaded torrent
 */
function pageHelpers() {
  window.interop = {
    async makeInput(files) {
      const out = [];
      for (const f of files) {
        const data = f.seed != null ? window.prngBytes(f.size, f.seed) : testUtils.randomBytes(f.size);
        out.push({ name: f.name, data, hash: await testUtils.sha256Hex(data) });
      }
      return out;
    },
    wtClient() {
      const client = new window.WebTorrent({
        dht: false, lsd: false, utp: false, webSeeds: false, natUpnp: false, natPmp: false,
        tracker: { rtcConfig: { iceServers: [] } },
      });
      client.on('error', (err) => console.error('webtorrent client error:', err && err.message));
      return client;
    },
    wtFiles(input) {
      return input.map((f) => {
        const file = new File([f.data], f.name.split('/').pop());
        if (f.name.includes('/')) file.fullPath = f.name; // create-torrent reads `fullPath || name`
        return file;
      });
    },
    watch(kind, torrent) {
      window.addedAt = performance.now();
      window.outcome = null;
      window.downloading = torrent;
      const ok = () => { window.outcome = window.outcome || { ok: true, ms: performance.now() - window.addedAt }; };
      const fail = (err) => { window.outcome = window.outcome || { ok: false, error: String((err && err.message) || err) }; };
      if (kind === 'seedtab') {
        torrent.done.then(ok, fail);
      } else {
        torrent.on('done', ok);
        torrent.on('error', fail);
        // What happened to its connections, for the failure message.
        window.wtEvents = [];
        const note = (what) => { if (window.wtEvents.length < 200) window.wtEvents.push(`${Math.round(performance.now() - window.addedAt)}ms ${what}`); };
        torrent.on('warning', (err) => note(`warning ${err && err.message}`));
        let chunks = 0;
        torrent.on('download', (n) => { if (chunks++ < 3) note(`received ${n} bytes`); });
        torrent.on('wire', (wire) => {
          note(`wire ${wire.peerId}`);
          wire.on('close', () => note(`wire close ${wire.peerId}`));
          wire.on('error', (err) => note(`wire error ${err && err.message}`));
          wire.on('have-all', () => note('have-all'));
          wire.on('bitfield', () => note('bitfield'));
          wire.on('unchoke', () => note('unchoke'));
        });
        torrent.on('peer', (p) => {
          const id = typeof p === 'string' ? p : p.id;
          note(`peer ${id} (we ${p && p.initiator ? 'offered' : 'answered'})`);
          const peer = torrent._peers && torrent._peers.get(id);
          if (!peer) return;
          const destroy = peer.destroy.bind(peer);
          peer.destroy = (err) => {
            const w = peer.wire;
            note(`peer ${id} destroyed (${err ? err.message : 'no error'}), connected ${peer.connected}, `
              + `handshake ${w && w.peerId ? 'received' : 'not received'}`);
            destroy(err);
          };
        });
        if (torrent.done) ok();
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
        events: window.wtEvents,
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
  };
}

async function openPage(name, context) {
  await context.addInitScript({ content: `window.prngBytes = ${prngBytes.toString()};\n(${pageHelpers.toString()})();` });
  // WEBTORRENT_DEBUG=webtorrent*,bittorrent-tracker* (the `debug` module's syntax) logs WebTorrent's
  // internals to the page console, which the harness copies to the test output.
  if (process.env.WEBTORRENT_DEBUG) {
    await context.addInitScript({ content: `localStorage.debug = ${JSON.stringify(process.env.WEBTORRENT_DEBUG)};` });
  }
  return openInteropPage(browser, server, { name, context });
}

/**
 * Seeds `files` in `page` with `kind` ('seedtab' | 'webtorrent') announcing to `trackers`.
 * Returns { infoHash, magnetURI, torrentFile (number[]), hashes, name }.
 */
async function seed(page, kind, { files, trackers, opts = {} }) {
  return page.evaluate(async ({ kind, files, trackers, opts }) => {
    const input = await interop.makeInput(files);
    const hashes = input.map((f) => f.hash);
    if (kind === 'seedtab') {
      window.stClient = new seedtab.Client({ trackers, iceServers: [] });
      const t = await stClient.seed(input.map(({ name, data }) => ({ name, data })), opts);
      window.seeding = t;
      return { infoHash: t.infoHash, magnetURI: t.magnetURI, torrentFile: Array.from(t.torrentFile), hashes, name: t.name };
    }
    window.wtClient = interop.wtClient();
    const wtInput = interop.wtFiles(input);
    const t = await new Promise((resolve, reject) => {
      const torrent = wtClient.seed(wtInput.length === 1 ? wtInput[0] : wtInput, { announce: trackers, ...opts }, resolve);
      torrent.on('error', reject);
    });
    window.seeding = t;
    return { infoHash: t.infoHash, magnetURI: t.magnetURI, torrentFile: Array.from(t.torrentFile), hashes, name: t.name };
  }, { kind, files, trackers, opts });
}

/** Starts a download in `page` with `kind`; `torrentId` is a magnet link or .torrent bytes (number[]). */
async function startDownload(page, kind, { torrentId, trackers }) {
  await page.evaluate(({ kind, torrentId, trackers }) => {
    const id = typeof torrentId === 'string' ? torrentId : new Uint8Array(torrentId);
    if (kind === 'seedtab') {
      window.stClient = window.stClient || new seedtab.Client({ trackers, iceServers: [] });
      interop.watch(kind, stClient.add(id));
    } else {
      window.wtClient = window.wtClient || interop.wtClient();
      interop.watch(kind, wtClient.add(id, { announce: trackers }));
    }
  }, { kind, torrentId, trackers });
}

/** Polls until the download in `page` ends; logs progress every 5 s; fails at `deadline`. */
async function waitDone(page, kind, label, deadline) {
  let lastReport = Date.now();
  for (;;) {
    const s = await page.evaluate((kind) => interop.status(kind), kind);
    if (s.outcome) {
      assert.ok(s.outcome.ok, `[${label}] download failed: ${s.outcome.error}`);
      return s.outcome.ms;
    }
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      log(`[${label}] progress ${(100 * (s.progress || 0)).toFixed(1)}% ${JSON.stringify(s.stats)}`);
    }
    if (Date.now() > deadline) {
      assert.fail(`[${label}] not done in time: at ${(100 * (s.progress || 0)).toFixed(1)}%, ${JSON.stringify(s.stats)}`
        + `${s.events ? `; WebTorrent events: ${s.events.join(' | ')}` : ''}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Checks the downloaded files against what was seeded: names, paths, lengths, SHA-256. */
async function checkFiles(page, kind, label, files, seeded) {
  const got = await page.evaluate((kind) => interop.readFiles(kind), kind);
  assert.equal(got.infoHash, seeded.infoHash, `[${label}] info-hash`);
  assert.equal(got.files.length, files.length, `[${label}] number of files`);
  const multi = files.length > 1;
  files.forEach((want, i) => {
    const f = got.files[i];
    // Inside the torrent, both clients drop a shared top folder and name the torrent after it.
    const inner = multi && want.name.includes('/') ? want.name.split('/').slice(1).join('/') : want.name;
    const wantPath = multi ? `${seeded.name}/${inner}` : want.name;
    assert.equal(f.name, want.name.split('/').pop(), `[${label}] file ${i} name`);
    assert.equal(f.path, wantPath, `[${label}] file ${i} path`);
    assert.equal(f.length, want.size, `[${label}] file ${i} length`);
    assert.equal(f.hash, seeded.hashes[i], `[${label}] file ${i} (${want.name}) SHA-256`);
  });
  return got;
}

function rateLine(label, bytes, ms, how) {
  const secs = ms / 1000;
  log(`INTEROP ${label}: ${secs.toFixed(2)} s, ${(bytes / 1e6 / secs).toFixed(2)} MB/s (${bytes} bytes, ${how} to done)`);
}

/** One seeder tab, one downloader tab. */
async function transferCase({ label, seeder, leecher, tracker, files, via, seedOpts }) {
  const deadline = Date.now() + CASE_TIMEOUT - 15_000;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await openPage(`${label}:${seeder}-seed`, ctxA);
    const b = await openPage(`${label}:${leecher}-get`, ctxB);
    const trackers = [trackerUrl(tracker)];
    const seeded = await seed(a, seeder, { files, trackers, opts: seedOpts });
    log(`[${label}] ${seeder} seeds ${seeded.infoHash} (${seeded.name})`);
    assert.match(seeded.infoHash, /^[0-9a-f]{40}$/);
    const torrentId = via === 'magnet' ? seeded.magnetURI : seeded.torrentFile;
    if (via === 'magnet') assert.ok(seeded.magnetURI.includes(encodeURIComponent(trackers[0])) || seeded.magnetURI.includes(trackers[0]));
    // The downloader knows the tracker only from the magnet link or the .torrent.
    await startDownload(b, leecher, { torrentId, trackers: [] });
    const ms = await waitDone(b, leecher, label, deadline);
    const total = files.reduce((n, f) => n + f.size, 0);
    rateLine(label, total, ms, via === 'magnet' ? 'magnet link' : '.torrent');
    await checkFiles(b, leecher, label, files, seeded);
    await b.evaluate(() => { window.stClient?.destroy(); window.wtClient?.destroy(); });
    await a.evaluate(() => { window.stClient?.destroy(); window.wtClient?.destroy(); });
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
}

const ONE_FILE = [{ name: 'interop.bin', size: 16 * MiB }];
// Multi-file, magnet only: a folder with an empty file, non-ASCII names and a sub-folder.
const FOLDER = [
  { name: 'interop folder/héllo wörld.txt', size: 3_000_001 },
  { name: 'interop folder/empty.txt', size: 0 },
  { name: 'interop folder/日本.bin', size: 5_000_000 },
  { name: 'interop folder/sub/ñ.dat', size: 123_457 },
];

for (const tracker of ['seedtab', 'reference']) {
  test(`WebTorrent seeds, seedtab downloads (.torrent, ${tracker} tracker)`, { timeout: CASE_TIMEOUT }, () => transferCase({
    label: `wt->st torrent ${tracker}-tracker 16MiB`, seeder: 'webtorrent', leecher: 'seedtab', tracker, files: ONE_FILE, via: 'torrent',
  }));
  test(`seedtab seeds, WebTorrent downloads (.torrent, ${tracker} tracker)`, { timeout: CASE_TIMEOUT }, () => transferCase({
    label: `st->wt torrent ${tracker}-tracker 16MiB`, seeder: 'seedtab', leecher: 'webtorrent', tracker, files: ONE_FILE, via: 'torrent',
  }));
}

for (const tracker of ['seedtab', 'reference']) {
  test(`magnet only: WebTorrent seeds a folder, seedtab downloads (${tracker} tracker)`, { timeout: CASE_TIMEOUT }, () => transferCase({
    label: `wt->st magnet ${tracker}-tracker 8MB-folder`, seeder: 'webtorrent', leecher: 'seedtab', tracker, files: FOLDER, via: 'magnet',
  }));
  test(`magnet only: seedtab seeds a folder, WebTorrent downloads (${tracker} tracker)`, { timeout: CASE_TIMEOUT }, () => transferCase({
    label: `st->wt magnet ${tracker}-tracker 8MB-folder`, seeder: 'seedtab', leecher: 'webtorrent', tracker, files: FOLDER, via: 'magnet',
  }));
}

// ---- the same info-hash from the same files ---------------------------------------------------

test('same files and piece length give the same info-hash in seedtab and WebTorrent', { timeout: 60_000 }, async () => {
  const cases = [
    { label: 'one file, 16 KiB pieces', files: [{ name: 'one.bin', size: 1_000_003, seed: 11 }], pieceLength: 16384 },
    { label: 'one file, non-ASCII name', files: [{ name: 'héllo wörld.txt', size: 70_000, seed: 12 }], pieceLength: 32768 },
    { label: 'one file, default piece length', files: [{ name: '日本.bin', size: 6_000_000, seed: 13 }] },
    {
      label: 'folder with an empty file and non-ASCII names, 16 KiB pieces',
      files: [
        { name: 'dossier/héllo wörld.txt', size: 100_000, seed: 21 },
        { name: 'dossier/empty.txt', size: 0, seed: 22 },
        { name: 'dossier/日本.bin', size: 50_001, seed: 23 },
        { name: 'dossier/sub dir/ñ.dat', size: 16384, seed: 24 },
      ],
      pieceLength: 16384,
    },
    {
      label: 'folder starting with an empty file, default piece length',
      files: [
        { name: 'Ωmega/a-empty', size: 0, seed: 31 },
        { name: 'Ωmega/b.bin', size: 3_000_000, seed: 32 },
        { name: 'Ωmega/c/ü.txt', size: 1, seed: 33 },
      ],
    },
  ];
  const ctx = await browser.newContext();
  try {
    const page = await openPage('infohash', ctx);
    const results = await page.evaluate(async (cases) => {
      const st = new seedtab.Client({ trackers: [], iceServers: [] });
      const wt = new window.WebTorrent({ tracker: false, dht: false, lsd: false, webSeeds: false, utp: false });
      const out = [];
      for (const c of cases) {
        const input = await interop.makeInput(c.files);
        const opts = c.pieceLength ? { pieceLength: c.pieceLength } : {};
        const ours = await st.seed(input.map(({ name, data }) => ({ name, data })), opts);
        const files = interop.wtFiles(input);
        const theirs = await new Promise((resolve, reject) => {
          const t = wt.seed(files.length === 1 ? files[0] : files, { ...opts, announce: [] }, resolve);
          t.on('error', reject);
        });
        out.push({
          label: c.label,
          seedtab: { infoHash: ours.infoHash, name: ours.name, files: ours.files.map((f) => [f.path, f.length]) },
          webtorrent: {
            infoHash: theirs.infoHash,
            name: theirs.name,
            pieceLength: theirs.pieceLength,
            files: theirs.files.map((f) => [f.path, f.length]),
          },
        });
      }
      st.destroy();
      await new Promise((res) => wt.destroy(res));
      return out;
    }, cases);
    for (const r of results) {
      log(`[infohash] ${r.label}: seedtab ${r.seedtab.infoHash} webtorrent ${r.webtorrent.infoHash} `
        + `(${r.webtorrent.name}, piece length ${r.webtorrent.pieceLength})`);
      assert.equal(r.seedtab.name, r.webtorrent.name, `${r.label}: torrent name`);
      assert.deepEqual(r.seedtab.files, r.webtorrent.files, `${r.label}: file paths and lengths`);
      assert.equal(r.seedtab.infoHash, r.webtorrent.infoHash, `${r.label}: info-hash`);
    }
  } finally {
    await ctx.close();
  }
});

// ---- a mixed swarm ------------------------------------------------------------------------------

/** Minimal bencoding of a single-file info dict (keys in order) and its SHA-1, in Node. */
function singleFileInfoHash(name, data, pieceLength) {
  const pieces = [];
  for (let off = 0; off < data.length; off += pieceLength) {
    pieces.push(crypto.createHash('sha1').update(data.subarray(off, off + pieceLength)).digest());
  }
  const str = (b) => Buffer.concat([Buffer.from(`${b.length}:`), b]);
  const info = Buffer.concat([
    Buffer.from('d'),
    str(Buffer.from('length')), Buffer.from(`i${data.length}e`),
    str(Buffer.from('name')), str(Buffer.from(name)),
    str(Buffer.from('piece length')), Buffer.from(`i${pieceLength}e`),
    str(Buffer.from('pieces')), str(Buffer.concat(pieces)),
    Buffer.from('e'),
  ]);
  return crypto.createHash('sha1').update(info).digest('hex');
}

test('mixed swarm: WebTorrent and seedtab seeders, two seedtab and one WebTorrent downloader, started together',
  { timeout: 120_000 }, async () => {
    const label = 'mixed swarm 12MiB';
    const file = { name: 'mixed.bin', size: 12 * MiB, seed: 4242 };
    const pieceLength = 65536;
    const data = prngBytes(file.size, file.seed);
    const infoHash = singleFileInfoHash(file.name, data, pieceLength);
    const wantHash = crypto.createHash('sha256').update(data).digest('hex');
    // Both trackers, as real swarms list several: peers may meet through either or both.
    const trackers = [reference.url, server.trackerUrl];
    const magnet = `magnet:?xt=urn:btih:${infoHash}&dn=${encodeURIComponent(file.name)}`
      + trackers.map((t) => `&tr=${encodeURIComponent(t)}`).join('');
    const roles = [
      { name: 'wt-seed', kind: 'webtorrent', seeds: true },
      { name: 'st-seed', kind: 'seedtab', seeds: true },
      { name: 'st-get-1', kind: 'seedtab' },
      { name: 'st-get-2', kind: 'seedtab' },
      { name: 'wt-get', kind: 'webtorrent' },
    ];
    const contexts = [];
    try {
      for (const r of roles) {
        const ctx = await browser.newContext();
        contexts.push(ctx);
        r.page = await openPage(`mixed:${r.name}`, ctx);
      }
      const deadline = Date.now() + 120_000 - 20_000;
      // Everyone at once: the seeders hash while the downloaders announce.
      await Promise.all(roles.map(async (r) => {
        if (r.seeds) {
          const seeded = await seed(r.page, r.kind, { files: [file], trackers, opts: { pieceLength } });
          assert.equal(seeded.infoHash, infoHash, `${r.name} seeds the expected info-hash`);
        } else {
          await startDownload(r.page, r.kind, { torrentId: magnet, trackers: [] });
        }
      }));
      const downloaders = roles.filter((r) => !r.seeds);
      const times = await Promise.all(downloaders.map((r) => waitDone(r.page, r.kind, `${label}:${r.name}`, deadline)));
      downloaders.forEach((r, i) => rateLine(`${label} ${r.name}`, file.size, times[i], 'magnet link'));
      for (const r of downloaders) {
        await checkFiles(r.page, r.kind, `${label}:${r.name}`, [file], { infoHash, hashes: [wantHash], name: file.name });
      }
      // Who uploaded what (informational: any peer may serve any other).
      const up = await Promise.all(roles.map((r) => r.page.evaluate((kind) => {
        const t = window.seeding || window.downloading;
        return kind === 'seedtab' ? t.stats().uploaded : t.uploaded;
      }, r.kind)));
      log(`[${label}] uploaded: ${roles.map((r, i) => `${r.name} ${(up[i] / 1e6).toFixed(1)} MB`).join(', ')}`);
      // Which clients the WebTorrent downloader talked to (peer ids: -ST… seedtab, -WW… WebTorrent).
      const wires = await roles.find((r) => r.name === 'wt-get').page.evaluate(
        () => (window.wtEvents || []).filter((e) => / wire [0-9a-f]{40}$/.test(e)).map((e) => e.slice(-40)),
      );
      const clientOf = (hex) => Buffer.from(hex, 'hex').toString('latin1').slice(0, 8);
      log(`[${label}] wt-get had wires to: ${wires.map(clientOf).join(', ') || 'none recorded'}`);
    } finally {
      for (const ctx of contexts) await ctx.close();
    }
  });
