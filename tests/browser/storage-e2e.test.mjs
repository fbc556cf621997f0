// Torrents kept in browser storage, end to end through the JS API (issue 5): a reload in the
// middle of a download resumes without fetching verified pieces again; a closed tab reopens and
// seeds from storage; a full quota pauses the download and leaves the stored state intact; a
// write that fails in the middle of a piece does the same; a big file moves with the wasm memory
// staying small. Every byte is checked (SHA-256).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, launchBrowser, log, openHarness, startServer, tempDir } from './harness.mjs';

const TEST_TIMEOUT = 180_000;
const MiB = 1024 * 1024;

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

/** Seeds `size` random bytes from a tab of `context`; returns { magnetURI, sha256, page }. */
async function seedRandom(context, name, size, pieceLength) {
  const page = await openHarness(browser, server, { name, context });
  const seeded = await page.evaluate(async ({ url, size, pieceLength }) => {
    const data = testUtils.randomBytes(size);
    const sha256 = await testUtils.sha256Hex(data);
    window.client = new window.seedtab.Client({ trackers: [url] });
    const opts = pieceLength ? { pieceLength } : undefined;
    window.torrent = await client.seed([{ name: 'data.bin', data }], opts);
    return { magnetURI: torrent.magnetURI, sha256, storage: torrent.storage };
  }, { url: server.trackerUrl, size, pieceLength });
  return { ...seeded, page };
}

/** In the page: waits until the torrent's progress reaches `p` (or it is done/paused). */
function waitProgress(page, p, timeoutMs = 120_000) {
  return page.waitForFunction((p) => {
    const t = window.torrent;
    return t && (t.progress >= p || t.paused);
  }, p, { timeout: timeoutMs, polling: 50 });
}

async function fileSha(page) {
  return page.evaluate(async () => {
    const f = window.torrent.files[0];
    return testUtils.sha256Hex(await f.blob());
  });
}

test('a reload in the middle of a download resumes without fetching verified pieces again', { timeout: TEST_TIMEOUT }, async () => {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const pieceLength = 256 * 1024;
    const size = 24 * MiB;
    const a = await seedRandom(ctxA, 'resume:A', size, pieceLength);
    assert.notEqual(a.storage, 'memory', 'the seed is kept in browser storage');
    const b = await openHarness(browser, server, { name: 'resume:B', context: ctxB });
    await b.evaluate(({ url, magnet }) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      window.torrent = client.add(magnet);
    }, { url: server.trackerUrl, magnet: a.magnetURI });
    await waitProgress(b, 0.3);
    const before = await b.evaluate(() => torrent.stats());
    // A hard reload: whatever was in flight or in memory is lost.
    await b.reload();
    await b.waitForFunction(() => window.seedtabReady === true, null, { timeout: 30_000 });
    const restored = await b.evaluate(async (url) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      const list = await client.restore();
      window.torrent = list[0];
      return { count: list.length, stats: torrent.stats(), storage: torrent.storage };
    }, server.trackerUrl);
    assert.equal(restored.count, 1, 'the download is found in storage');
    const restoredVerified = restored.stats.verified;
    assert.ok(restoredVerified > 0, 'verified pieces survived the reload');
    await b.evaluate(() => torrent.done);
    const end = await b.evaluate(() => torrent.stats());
    const missing = size - restoredVerified;
    log(`RESUME 24MB: verified before reload ${before.verified}, restored ${restoredVerified}, `
      + `downloaded after reopening ${end.sessionDownloaded} (missing ${missing}, limit ${missing + pieceLength})`);
    assert.ok(end.sessionDownloaded <= missing + pieceLength,
      `re-downloaded ${end.sessionDownloaded} bytes for ${missing} missing`);
    assert.equal(await fileSha(b), a.sha256, 'the resumed file has the right bytes');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('a closed tab reopens and seeds what it stored, without hashing it again', { timeout: TEST_TIMEOUT }, async () => {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await seedRandom(ctxA, 'reopen:A', 8 * MiB);
    await a.page.close();
    const a2 = await openHarness(browser, server, { name: 'reopen:A2', context: ctxA });
    const back = await a2.evaluate(async (url) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      const t0 = performance.now();
      const list = await client.restore();
      window.torrent = list[0];
      return { count: list.length, progress: torrent.progress, magnetURI: torrent.magnetURI, ms: performance.now() - t0 };
    }, server.trackerUrl);
    assert.equal(back.count, 1);
    assert.equal(back.progress, 1, 'the reopened seed has every piece');
    log(`REOPEN: restored an 8 MB seed in ${back.ms.toFixed(0)} ms`);
    const b = await openHarness(browser, server, { name: 'reopen:B', context: ctxB });
    await b.evaluate(({ url, magnet }) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      window.torrent = client.add(magnet);
      return torrent.done;
    }, { url: server.trackerUrl, magnet: back.magnetURI });
    assert.equal(await fileSha(b), a.sha256, 'downloaded from the reopened seed');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

/** Downloads from a seed in `browser` into a tab of a second browser on a profile of its own
 *  (quota overrides apply only to real profiles, not incognito contexts); `setup(page,
 *  context)` runs before the download starts. */
async function downloadInOwnBrowser(name, magnet, setup) {
  const profile = tempDir('seedtab-quota-');
  const ctx = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
  });
  const blank = ctx.pages()[0] || await ctx.newPage();
  await setup?.(blank, ctx);
  const page = await openHarness(null, server, { name, context: ctx });
  await page.evaluate(({ url, magnet }) => {
    window.errors = [];
    window.client = new window.seedtab.Client({ trackers: [url] });
    window.torrent = client.add(magnet);
    torrent.on('error', (e) => window.errors.push(String(e && e.message)));
  }, { url: server.trackerUrl, magnet });
  return { page, close: async () => { await ctx.close(); profile.cleanup(); } };
}

test('a full quota pauses the download, says so, and keeps the stored state intact', { timeout: TEST_TIMEOUT }, async () => {
  const ctxA = await browser.newContext();
  let dl;
  try {
    const a = await seedRandom(ctxA, 'quota:A', 24 * MiB, 256 * 1024);
    // The quota is per origin for a whole browser: the downloader gets a browser of its own.
    dl = await downloadInOwnBrowser('quota:B', a.magnetURI, async (page, ctx) => {
      const cdp = await ctx.newCDPSession(page);
      const origin = new URL(server.url).origin;
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 6 * MiB });
    });
    const b = dl.page;
    await b.waitForFunction(() => window.torrent.paused, null, { timeout: 120_000, polling: 100 });
    const s = await b.evaluate(() => ({ stats: torrent.stats(), errors: window.errors }));
    log(`QUOTA: paused at ${s.stats.verified} of ${s.stats.length} bytes; error: ${s.errors[0]}`);
    assert.ok(s.errors.some((e) => /full/i.test(e)), `an error says storage is full: ${JSON.stringify(s.errors)}`);
    assert.ok(s.stats.verified < s.stats.length);
    // What is stored is exactly what the state claims: a fresh page finds it and re-checks clean.
    await b.reload();
    await b.waitForFunction(() => window.seedtabReady === true, null, { timeout: 30_000 });
    const again = await b.evaluate(async (url) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      const [t] = await client.restore();
      window.torrent = t;
      const verified = t.stats().verified;
      t.pause();
      const bad = await t.recheck();
      return { verified, bad, paused: t.paused };
    }, server.trackerUrl);
    log(`QUOTA: after reload ${again.verified} bytes restored, ${again.bad} damaged pieces`);
    assert.equal(again.bad, 0, 'no stored piece is damaged');
    assert.ok(again.verified <= s.stats.verified, 'the stored state claims nothing more than was written');
    assert.equal(again.paused, true, 'it is still paused after the reload');
  } finally {
    await dl?.close();
    await ctxA.close();
  }
});

test('a write failing in the middle of a piece pauses, corrupts nothing, and the download resumes', { timeout: TEST_TIMEOUT }, async () => {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const pieceLength = 256 * 1024;
    const a = await seedRandom(ctxA, 'fault:A', 16 * MiB, pieceLength);
    const b = await openHarness(browser, server, { name: 'fault:B', context: ctxB });
    await b.evaluate(({ url, magnet }) => {
      window.errors = [];
      window.client = new window.seedtab.Client({ trackers: [url] });
      window.torrent = client.add(magnet);
      torrent.on('error', (e) => window.errors.push(String(e && e.message)));
    }, { url: server.trackerUrl, magnet: a.magnetURI });
    await waitProgress(b, 0.2);
    await b.evaluate(() => client.__testFailNextWrite(100_000));
    await b.waitForFunction(() => window.torrent.paused, null, { timeout: 60_000, polling: 50 });
    const atFailure = await b.evaluate(() => ({ stats: torrent.stats(), errors: window.errors }));
    log(`FAULT: paused at ${atFailure.stats.verified} bytes: ${atFailure.errors[0]}`);
    assert.ok(atFailure.errors.length > 0, 'the failure is reported');
    await b.reload();
    await b.waitForFunction(() => window.seedtabReady === true, null, { timeout: 30_000 });
    const after = await b.evaluate(async (url) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      const [t] = await client.restore();
      window.torrent = t;
      const bad = await t.recheck();
      const paused = t.paused;
      t.resume();
      await t.done;
      return { bad, paused };
    }, server.trackerUrl);
    assert.equal(after.bad, 0, 'the torn piece was never claimed');
    assert.equal(after.paused, true, 'it stays paused across the reload until resumed');
    assert.equal(await fileSha(b), a.sha256);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

const BIG_MB = Number(process.env.SEEDTAB_BIG_MB || 128);
const CHECK_CHUNK = 64 * MiB;

test('a big file moves with the wasm memory and JS heap staying small', { timeout: 300_000 + BIG_MB * 1000 }, async () => {
  const mb = BIG_MB;
  const size = mb * MiB;
  const tmp = tempDir('seedtab-big-');
  const file = path.join(tmp.dir, 'big.bin');
  // Written from node in chunks, so the seeder picks a disk-backed File. The result is checked
  // 64 MiB at a time (a SHA-256 per chunk), so checking never holds the whole file either.
  const chunkHashes = [];
  const fd = fs.openSync(file, 'w');
  for (let off = 0; off < size; off += CHECK_CHUNK) {
    const hash = crypto.createHash('sha256');
    for (let o = off; o < Math.min(size, off + CHECK_CHUNK); o += 4 * MiB) {
      const chunk = crypto.randomBytes(Math.min(4 * MiB, size - o, off + CHECK_CHUNK - o));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
    }
    chunkHashes.push(hash.digest('hex'));
  }
  fs.closeSync(fd);
  // Real profiles on disk: an incognito context keeps OPFS in memory, with a small quota.
  const profileA = tempDir('seedtab-bigA-');
  const profileB = tempDir('seedtab-bigB-');
  const launch = (dir) => chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, '--enable-precise-memory-info'], timeout: 60_000,
  });
  const ctxA = await launch(profileA.dir);
  const ctxB = await launch(profileB.dir);
  try {
    const a = await openHarness(null, server, { name: 'big:A', context: ctxA });
    await a.evaluate(() => {
      const input = document.createElement('input');
      input.type = 'file';
      input.id = 'pick';
      document.body.append(input);
    });
    await a.setInputFiles('#pick', file);
    const seeded = await a.evaluate(async (url) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      const t0 = performance.now();
      window.torrent = await client.seed([...document.getElementById('pick').files]);
      return { magnetURI: torrent.magnetURI, ms: performance.now() - t0, wasm: window.seedtab.__wasmMemoryBytes(), heap: performance.memory?.usedJSHeapSize };
    }, server.trackerUrl);
    const b = await openHarness(null, server, { name: 'big:B', context: ctxB });
    const got = await b.evaluate(async ({ url, magnet, chunk }) => {
      window.client = new window.seedtab.Client({ trackers: [url] });
      window.torrent = client.add(magnet);
      let peakHeap = 0;
      const timer = setInterval(() => { peakHeap = Math.max(peakHeap, performance.memory?.usedJSHeapSize || 0); }, 100);
      const t0 = performance.now();
      await torrent.done;
      clearInterval(timer);
      const ms = performance.now() - t0;
      const blob = await torrent.files[0].blob();
      const hashes = [];
      for (let off = 0; off < blob.size; off += chunk) {
        hashes.push(await testUtils.sha256Hex(blob.slice(off, Math.min(blob.size, off + chunk))));
      }
      return { ms, hashes, wasm: window.seedtab.__wasmMemoryBytes(), peakHeap };
    }, { url: server.trackerUrl, magnet: seeded.magnetURI, chunk: CHECK_CHUNK });
    const seederAfter = await a.evaluate(() => ({ wasm: window.seedtab.__wasmMemoryBytes(), heap: performance.memory?.usedJSHeapSize }));
    log(`BIG ${mb}MB: seeded (import + hash) in ${(seeded.ms / 1000).toFixed(2)} s; downloaded in ${(got.ms / 1000).toFixed(2)} s `
      + `(${(size / 1e6 / (got.ms / 1000)).toFixed(2)} MB/s); wasm memory: seeder ${(seederAfter.wasm / MiB).toFixed(1)} MiB, `
      + `downloader ${(got.wasm / MiB).toFixed(1)} MiB; JS heap: seeder ${(seederAfter.heap / MiB).toFixed(1)} MiB, downloader peak ${(got.peakHeap / MiB).toFixed(1)} MiB`);
    assert.deepEqual(got.hashes, chunkHashes, 'the big file arrived intact');
    assert.ok(got.wasm <= 64 * MiB, `downloader wasm memory ${got.wasm} > 64 MiB`);
    assert.ok(seederAfter.wasm <= 64 * MiB, `seeder wasm memory ${seederAfter.wasm} > 64 MiB`);
  } finally {
    await ctxA.close();
    await ctxB.close();
    tmp.cleanup();
    profileA.cleanup();
    profileB.cleanup();
  }
});
