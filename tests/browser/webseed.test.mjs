// Web seeds (BEP 19) end to end in Chromium: a Node HTTP server on 127.0.0.1 (another port than
// the page, so CORS applies) serves the torrent's files and honours Range; a tab downloads from
// it through the JS API of pkg/seedtab.js, checking every file's SHA-256.
//  1. magnet link with `ws=`: the only peer is a paused seeder tab, which gives the metadata
//     (a web seed cannot) but never a piece: every piece comes from the web seed;
//  2. a multi-file `.torrent` with `url-list`, no tracker and no peer at all;
//  3. a web seed serving corrupted bytes is dropped and a seeder tab completes the download;
//  4. a server that ignores Range (200) is sliced; a 206 with the wrong Content-Range is refused.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  bencode, launchBrowser, log, openHarness, startServer, startWebSeed,
} from './harness.mjs';

const TEST_TIMEOUT = 120_000;
const PIECE = 64 * 1024;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A multi-file v1 .torrent of `files` ([{ path: [..], data }]) named `name`. */
function makeTorrent(name, files, urlList) {
  const all = Buffer.concat(files.map((f) => f.data));
  const pieces = [];
  for (let i = 0; i < all.length; i += PIECE) {
    pieces.push(crypto.createHash('sha1').update(all.subarray(i, i + PIECE)).digest());
  }
  const info = {
    files: files.map((f) => ({ length: f.data.length, path: f.path })),
    name,
    'piece length': PIECE,
    pieces: Buffer.concat(pieces),
  };
  return bencode({ info, 'url-list': urlList });
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

/** Waits for torrent.done in `page`, logging progress, failing after `deadline`. */
async function waitDone(page, label, deadline) {
  for (let last = 0; ;) {
    const s = await page.evaluate(() => ({ outcome: window.outcome, stats: torrent.stats() }));
    if (s.outcome) {
      assert.ok(s.outcome.ok, `[${label}] torrent.done rejected: ${s.outcome.error}`);
      return s;
    }
    if (Date.now() > deadline) assert.fail(`[${label}] not done in time: ${JSON.stringify(s.stats)}`);
    if (Date.now() - last > 5000) { last = Date.now(); log(`[${label}] ${JSON.stringify(s.stats)}`); }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** In `page`: client.add(id) and record when torrent.done settles. */
async function startDownload(page, trackers, id) {
  await page.evaluate(({ trackers, id }) => {
    const { Client } = window.seedtab;
    window.client = new Client({ trackers, iceServers: [], storage: 'memory' });
    window.addedAt = performance.now();
    window.torrent = client.add(typeof id === 'string' ? id : new Uint8Array(id));
    window.outcome = null;
    torrent.done.then(
      () => { window.outcome = { ok: true, ms: performance.now() - window.addedAt }; },
      (e) => { window.outcome = { ok: false, error: String((e && e.message) || e) }; },
    );
  }, { trackers, id });
}

async function fileHashes(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const f of torrent.files) out.push({ path: f.path, hash: await testUtils.sha256Hex(await f.bytes()) });
    return out;
  });
}

/** Tab that seeds `name` (fetched from `url`) and returns its magnet link. */
async function seederTab(ctx, url, name) {
  const page = await openHarness(browser, server, { name: 'seeder', context: ctx });
  const magnet = await page.evaluate(async ({ trackerUrl, url, name }) => {
    const { Client } = window.seedtab;
    window.client = new Client({ trackers: [trackerUrl], iceServers: [], storage: 'memory' });
    const data = new Uint8Array(await (await fetch(url)).arrayBuffer());
    window.torrent = await client.seed([{ name, data }], { pieceLength: 65536 });
    return torrent.magnetURI;
  }, { trackerUrl: server.trackerUrl, url, name });
  return { page, magnet };
}

test('magnet link with ws=: every piece from the web seed, the only peer paused',
  { timeout: TEST_TIMEOUT }, async () => {
    const data = crypto.randomBytes(3 * 1024 * 1024 + 12345);
    const ws = await startWebSeed({ '/files/movie.bin': data });
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    try {
      const { page: seeder, magnet } = await seederTab(ctxA, `${ws.url}files/movie.bin`, 'movie.bin');
      await seeder.evaluate(() => torrent.pause());
      // Single-file web seed given as a folder URL: BEP 19 appends the name.
      const link = `${magnet}&ws=${encodeURIComponent(`${ws.url}files/`)}`;
      const leecher = await openHarness(browser, server, { name: 'leecher', context: ctxB });
      const rangedBefore = ws.stats.ranged;
      await startDownload(leecher, [server.trackerUrl], link);
      const s = await waitDone(leecher, 'ws', Date.now() + TEST_TIMEOUT - 20_000);
      const [file] = await fileHashes(leecher);
      assert.equal(file.hash, sha256(data), 'SHA-256 of the downloaded file');
      const seederStats = await seeder.evaluate(() => torrent.stats());
      assert.equal(seederStats.sessionUploaded, 0, 'the paused seeder sent no piece');
      const pieces = Math.ceil(data.length / PIECE);
      assert.ok(ws.stats.ranged - rangedBefore >= pieces, `at least ${pieces} ranged requests`);
      log(`WEBSEED magnet ws=: ${data.length} bytes in ${(s.outcome.ms / 1000).toFixed(2)} s `
        + `(${ws.stats.ranged - rangedBefore} ranged requests)`);
      assert.match(await leecher.evaluate(() => torrent.magnetURI), /&ws=http/, 'magnetURI keeps ws=');
    } finally {
      await ctxA.close();
      await ctxB.close();
      await ws.stop();
    }
  });

test('multi-file .torrent with url-list, no tracker and no peer', { timeout: TEST_TIMEOUT }, async () => {
  const files = [
    { path: ['a.bin'], data: crypto.randomBytes(200_000) },
    { path: ['sub dir', 'héllo wörld.txt'], data: crypto.randomBytes(70_001) },
    { path: ['empty'], data: Buffer.alloc(0) },
    { path: ['z.bin'], data: crypto.randomBytes(1_000_003) },
  ];
  const name = 'web seed folder';
  const routes = {};
  for (const f of files) routes[`/seed/${name}/${f.path.join('/')}`] = f.data;
  const ws = await startWebSeed(routes);
  const torrent = makeTorrent(name, files, [`${ws.url}seed`, 'ftp://ignored.example/']);
  const ctx = await browser.newContext();
  try {
    const page = await openHarness(browser, server, { name: 'url-list', context: ctx });
    await startDownload(page, [], [...torrent]);
    const s = await waitDone(page, 'url-list', Date.now() + TEST_TIMEOUT - 20_000);
    const got = await fileHashes(page);
    assert.equal(got.length, files.length);
    files.forEach((f, i) => {
      assert.ok(got[i].path.endsWith(f.path.join('/')), `${got[i].path} is ${f.path.join('/')}`);
      assert.equal(got[i].hash, sha256(f.data), `SHA-256 of ${f.path.join('/')}`);
    });
    assert.equal(s.stats.numPeers, 0);
    log(`WEBSEED url-list: ${files.reduce((n, f) => n + f.data.length, 0)} bytes in `
      + `${(s.outcome.ms / 1000).toFixed(2)} s (${ws.stats.ranged} ranged requests)`);
  } finally {
    await ctx.close();
    await ws.stop();
  }
});

test('a web seed serving corrupted bytes is dropped; a seeder tab completes the download',
  { timeout: TEST_TIMEOUT }, async () => {
    const data = crypto.randomBytes(2 * 1024 * 1024 + 777);
    const honest = await startWebSeed({ '/x.bin': data });
    const liar = await startWebSeed({ '/x.bin': data }, { corrupt: true });
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    try {
      const { magnet } = await seederTab(ctxA, `${honest.url}x.bin`, 'x.bin');
      const leecher = await openHarness(browser, server, { name: 'liar', context: ctxB });
      const dropped = new Promise((res) => leecher.on('console', (m) => {
        if (/web seed .* dropped: .*hash check/.test(m.text())) res(m.text());
      }));
      await startDownload(leecher, [server.trackerUrl], `${magnet}&ws=${encodeURIComponent(`${liar.url}x.bin`)}`);
      await waitDone(leecher, 'liar', Date.now() + TEST_TIMEOUT - 20_000);
      const [file] = await fileHashes(leecher);
      assert.equal(file.hash, sha256(data), 'SHA-256 of the downloaded file');
      assert.ok(liar.stats.ranged > 0, 'the corrupting web seed was asked');
      const why = await Promise.race([dropped, new Promise((res) => setTimeout(() => res(null), 5000))]);
      assert.ok(why, 'the corrupting web seed was dropped');
      log(`WEBSEED liar: ${why}; it answered ${liar.stats.ranged} ranged requests`);
      const after = liar.stats.ranged;
      await new Promise((res) => setTimeout(res, 1500));
      assert.equal(liar.stats.ranged, after, 'nothing asked of a dropped web seed');
    } finally {
      await ctxA.close();
      await ctxB.close();
      await honest.stop();
      await liar.stop();
    }
  });

test('a server that ignores Range (200) is sliced; one with a wrong Content-Range is refused',
  { timeout: TEST_TIMEOUT }, async () => {
    const files = [
      { path: ['one.bin'], data: crypto.randomBytes(150_000) },
      { path: ['two.bin'], data: crypto.randomBytes(90_000) },
    ];
    const routes = {};
    for (const f of files) routes[`/d/${f.path[0]}`] = f.data;
    const whole = await startWebSeed(routes, { ignoreRange: true });
    const wrong = await startWebSeed(routes, { wrongRange: true });
    const ctx = await browser.newContext();
    try {
      const page = await openHarness(browser, server, { name: '200', context: ctx });
      await startDownload(page, [], [...makeTorrent('d', files, [`${whole.url}`])]);
      await waitDone(page, '200', Date.now() + 30_000);
      const got = await fileHashes(page);
      files.forEach((f, i) => assert.equal(got[i].hash, sha256(f.data), `SHA-256 of ${f.path[0]}`));
      assert.equal(whole.stats.ranged, 0);
      assert.ok(whole.stats.full > 0);

      const bad = await openHarness(browser, server, { name: 'wrong-range', context: ctx });
      const refused = new Promise((res) => bad.on('console', (m) => {
        if (/HTTP 206 with Content-Range/.test(m.text())) res(m.text());
      }));
      await startDownload(bad, [], [...makeTorrent('d', files, [`${wrong.url}`])]);
      const why = await Promise.race([refused, new Promise((res) => setTimeout(() => res(null), 10_000))]);
      assert.ok(why, 'a 206 with the wrong Content-Range is refused');
      const stats = await bad.evaluate(() => torrent.stats());
      assert.equal(stats.verified, 0, 'nothing was taken from it');
      log(`WEBSEED wrong range: ${why}`);
    } finally {
      await ctx.close();
      await whole.stop();
      await wrong.stop();
    }
  });
