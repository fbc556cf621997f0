// Piece storage (src/web/js/storage.js, bound from Rust by src/web/storage.rs), in headless
// Chromium, for both backends: OPFS through sync access handles in a worker, and IndexedDB.
//
// The browser runs with a persistent profile in a temporary directory (launchPersistentContext),
// not an incognito context: storage then lives on disk as it does for users, and one test
// restarts the browser on the same profile to show that the data survives.
//
// Page: www/storage-harness.html (window.storageJs = { PieceStorage, StorageError },
// window.seedtab = the wasm package, window.testUtils).
//
//   ip netns exec seedtab-test node --test --test-concurrency=1 tests/browser/storage.test.mjs
// STORAGE_BIG_MB (default 64) sizes the fileBlob/import memory test.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, attachLogging, log, startServer } from './harness.mjs';

const BIG_MB = Number(process.env.STORAGE_BIG_MB || 64);
const MiB = 1 << 20;

let server;
let profileDir;
let context;

async function launch() {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

async function openPage(ctx, name) {
  const page = await ctx.newPage();
  attachLogging(page, name);
  await page.goto(new URL('storage-harness.html', server.url).href, { waitUntil: 'load' });
  await page.waitForFunction(() => window.storageReady || window.storageError, null, { timeout: 30_000 });
  const err = await page.evaluate(() => window.storageError || null);
  if (err) throw new Error(`[${name}] storage-harness failed to load: ${err}`);
  return page;
}

/** A distinct info-hash (hex) per test. */
const ihOf = (name) => crypto.createHash('sha1').update(name).digest('hex');

async function cdpFor(page) {
  return page.context().newCDPSession(page);
}

/** JS heap in use by the page (after a GC), in bytes. */
async function heapUsed(cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  return (await cdp.send('Runtime.getHeapUsage')).usedSize;
}

before(async () => {
  server = await startServer();
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seedtab-storage-profile-'));
  context = await launch();
});

after(async () => {
  await context?.close().catch(() => {});
  await server?.stop();
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
});

for (const backend of ['opfs', 'idb']) {
  describe(`storage (${backend})`, () => {
    test('Rust wrapper self-test (bindings checked at run time)', { timeout: 60_000 }, async () => {
      const page = await openPage(context, `${backend}-rust`);
      try {
        const report = await page.evaluate((b) => window.seedtab.__storageSelfTest(b), backend);
        assert.equal(report.backend, backend);
        assert.ok(report.quota > 0, 'estimate gives a quota');
      } finally {
        await page.close();
      }
    });

    test('create, write pieces out of order, read back exact bytes, state, torrent, list', { timeout: 60_000 }, async () => {
      const ih = ihOf(`${backend}-basic`);
      const page = await openPage(context, `${backend}-basic`);
      try {
        const r = await page.evaluate(async ({ b, ih }) => {
          const { PieceStorage } = window.storageJs;
          const u = window.testUtils;
          const err = async (p) => { try { await p; return null; } catch (e) { return { kind: e.kind, name: e.name, message: e.message }; } };
          const s = await PieceStorage.open({ forceBackend: b });
          const out = { backend: s.backend, fallbackReason: s.fallbackReason };
          const pl = 262144;
          const total = 5 * pl - 12345; // last piece short
          const torrent = u.randomBytes(777);
          const pieces = [];
          for (let i = 0; i < 5; i++) pieces.push(u.pattern(i + 1, Math.min(pl, total - i * pl)));
          await s.remove(ih);
          out.missingBeforeCreate = await err(s.writePiece(ih, 0, pieces[0]));
          await s.create(ih, torrent, total);
          await s.create(ih, torrent, total); // idempotent
          // Out of order, and concurrently (writes of one torrent are queued in order).
          await Promise.all([4, 1, 3].map((i) => s.writePiece(ih, i * pl, pieces[i])));
          // A hole: IndexedDB knows it was never written; OPFS reads a sparse file's zeros.
          out.holeRead = await s.readRange(ih, 0, 10).then((x) => Array.from(x), (e) => e.kind);
          await s.writePiece(ih, 0, pieces[0]);
          await s.writePiece(ih, 2 * pl, pieces[2]);
          const all = new Uint8Array(total);
          pieces.forEach((p, i) => all.set(p, i * pl));
          // Concurrent reads: whole pieces, a range across three pieces, the whole torrent.
          const [p3, across, whole] = await Promise.all([
            s.readRange(ih, 3 * pl, pieces[3].length),
            s.readRange(ih, pl - 5, pl + 10),
            s.readRange(ih, 0, total),
          ]);
          out.p3 = u.equal(p3, pieces[3]);
          out.across = u.equal(across, all.subarray(pl - 5, 2 * pl + 5));
          out.whole = u.equal(whole, all);
          out.readIsFresh = whole.byteOffset === 0 && whole.buffer.byteLength === total;
          out.pastEnd = await err(s.readRange(ih, total - 1, 2));
          out.pastEndWrite = await err(s.writePiece(ih, total - 1, new Uint8Array(2)));
          out.badIh = await err(s.readRange('../x', 0, 1));
          // The caller's buffer may change right after the call: writePiece copied it.
          const scratch = u.pattern(99, 1000);
          const w = s.writePiece(ih, 0, scratch);
          scratch.fill(0);
          await w;
          out.copiedAtCall = u.equal(await s.readRange(ih, 0, 1000), u.pattern(99, 1000));
          await s.writePiece(ih, 0, pieces[0]);

          out.stateNone = await s.loadState(ih);
          await s.saveState(ih, new TextEncoder().encode('{"have":"AAA"}'));
          await s.saveState(ih, new TextEncoder().encode('{"have":"BBB","uploaded":12}'));
          out.state = new TextDecoder().decode(await s.loadState(ih));
          out.torrent = u.equal(await s.loadTorrent(ih), torrent);
          out.listed = (await s.list()).includes(ih);
          out.unknownState = await s.loadState('0'.repeat(40));
          out.unknownTorrent = await s.loadTorrent('0'.repeat(40));
          out.unknownRead = await err(s.readRange('0'.repeat(40), 0, 1));
          await s.close();
          out.afterClose = await err(s.list());

          // A new instance (as after a reload) reads and writes without create().
          const s2 = await PieceStorage.open({ forceBackend: b });
          out.reopenWhole = u.equal(await s2.readRange(ih, 0, total), all);
          out.reopenState = new TextDecoder().decode(await s2.loadState(ih));
          await s2.writePiece(ih, pl, pieces[0].subarray(0, pl));
          out.reopenWrite = u.equal(await s2.readRange(ih, pl, pl), pieces[0].subarray(0, pl));
          await s2.remove(ih);
          out.listedAfterRemove = (await s2.list()).includes(ih);
          out.stateAfterRemove = await s2.loadState(ih);
          out.readAfterRemove = await err(s2.readRange(ih, 0, 1));
          await s2.close();
          return out;
        }, { b: backend, ih });
        assert.equal(r.backend, backend, `backend (fallback reason: ${r.fallbackReason})`);
        assert.equal(r.missingBeforeCreate?.kind, 'missing', 'write before create()');
        assert.deepEqual(r.holeRead, backend === 'idb' ? 'missing' : new Array(10).fill(0), 'reading a piece never written');
        assert.ok(r.p3, 'one piece');
        assert.ok(r.across, 'a range across three pieces');
        assert.ok(r.whole, 'the whole torrent');
        assert.ok(r.readIsFresh, 'readRange returns a buffer of its own');
        assert.equal(r.pastEnd?.kind, 'missing', 'read past the end');
        assert.equal(r.pastEndWrite?.kind, 'io', 'write past the end');
        assert.equal(r.badIh?.kind, 'io', 'bad info-hash');
        assert.ok(r.copiedAtCall, 'writePiece copies its data at the call');
        assert.equal(r.stateNone, null);
        assert.equal(r.state, '{"have":"BBB","uploaded":12}');
        assert.ok(r.torrent, 'torrent bytes');
        assert.ok(r.listed, 'list() has the torrent');
        assert.equal(r.unknownState, null);
        assert.equal(r.unknownTorrent, null);
        assert.equal(r.unknownRead?.kind, 'missing');
        assert.ok(r.afterClose, 'calls after close() fail');
        assert.ok(r.reopenWhole, 'data after reopening');
        assert.equal(r.reopenState, '{"have":"BBB","uploaded":12}');
        assert.ok(r.reopenWrite, 'write after reopening, without create()');
        assert.equal(r.listedAfterRemove, false);
        assert.equal(r.stateAfterRemove, null);
        assert.equal(r.readAfterRemove?.kind, 'missing');
      } finally {
        await page.close();
      }
    });

    test('remove() frees the space (estimate().usage drops)', { timeout: 90_000 }, async () => {
      const ih = ihOf(`${backend}-remove`);
      const page = await openPage(context, `${backend}-remove`);
      try {
        const r = await page.evaluate(async ({ b, ih }) => {
          const { PieceStorage } = window.storageJs;
          const u = window.testUtils;
          const s = await PieceStorage.open({ forceBackend: b });
          const size = 24 << 20;
          const before = (await s.estimate()).usage;
          await s.create(ih, new Uint8Array(10), size);
          for (let off = 0; off < size; off += 1 << 20) await s.writePiece(ih, off, u.pattern(off, 1 << 20));
          await s.saveState(ih, new Uint8Array(100));
          const full = (await s.estimate()).usage;
          await s.remove(ih);
          // Browsers may account deletions a little later: poll.
          let removed = (await s.estimate()).usage;
          const t0 = performance.now();
          while (removed > full - (size * 3) / 4 && performance.now() - t0 < 20_000) {
            await u.sleep(250);
            removed = (await s.estimate()).usage;
          }
          const est = await s.estimate();
          await s.close();
          return { before, full, removed, waited: Math.round(performance.now() - t0), est, persist: typeof (await s.persist()) };
        }, { b: backend, ih });
        log(`STORAGE ${backend} usage: before ${r.before}, after writing 24 MiB ${r.full}, after remove ${r.removed} (waited ${r.waited} ms); persisted ${r.est.persisted}, quota ${r.est.quota}`);
        assert.ok(r.full - r.before >= 20 * MiB, `usage grew by the data (${r.before} -> ${r.full})`);
        assert.ok(r.full - r.removed >= 18 * MiB, `usage dropped after remove (${r.full} -> ${r.removed})`);
        assert.equal(typeof r.est.persisted, 'boolean');
        assert.equal(r.persist, 'boolean');
      } finally {
        await page.close();
      }
    });

    test('importFiles: two files, pieces across the boundary, SHA-1s and stored bytes', { timeout: 60_000 }, async () => {
      const ih = ihOf(`${backend}-import`);
      const page = await openPage(context, `${backend}-import`);
      try {
        const r = await page.evaluate(async ({ b, ih }) => {
          const { PieceStorage } = window.storageJs;
          const u = window.testUtils;
          const s = await PieceStorage.open({ forceBackend: b });
          const pl = 65536;
          const a = u.randomBytes(1_000_003);
          const c = u.randomBytes(777_777);
          const all = new Uint8Array(a.length + c.length);
          all.set(a, 0);
          all.set(c, a.length);
          const fa = new File([a], 'a.bin');
          const fc = new File([c], 'c.bin');
          await s.remove(ih);
          await s.create(ih, new Uint8Array([1]), all.length);
          const progress = [];
          // Given in reverse order on purpose: placement is by offset.
          const hashes = await s.importFiles(ih, [{ file: fc, offset: a.length }, { file: fa, offset: 0 }], pl,
            { onProgress: (n) => progress.push(n) });
          const want = await u.pieceHashes(all, pl);
          const out = {
            backend: s.backend,
            nHashes: hashes.length / 20,
            hashesOk: u.equal(hashes, want),
            bytesOk: u.equal(await s.readRange(ih, 0, all.length), all),
            progressLast: progress[progress.length - 1],
            total: all.length,
          };
          // Rewriting one imported piece (as after a failed check) replaces exactly that piece.
          const fresh = u.randomBytes(pl);
          await s.writePiece(ih, 7 * pl, fresh);
          all.set(fresh, 7 * pl);
          out.rewriteOk = u.equal(await s.readRange(ih, 6 * pl + 100, 2 * pl), all.subarray(6 * pl + 100, 8 * pl + 100));
          // A file of the torrent as a Blob, for saving.
          const blob = await s.fileBlob(ih, a.length, c.length, 'application/octet-stream');
          out.blobOk = u.equal(new Uint8Array(await blob.arrayBuffer()), all.subarray(a.length)) && blob.type === 'application/octet-stream';
          // Bad layouts are refused.
          const err = async (p) => { try { await p; return null; } catch (e) { return e.kind; } };
          out.gap = await err(s.importFiles(ih, [{ file: fa, offset: 0 }, { file: fc, offset: a.length + 1 }], pl));
          out.unaligned = await err(s.importFiles(ih, [{ file: fc, offset: a.length }], pl));
          out.tooLong = await err(s.importFiles(ih, [{ file: fa, offset: pl * 20 }], pl));
          await s.remove(ih);
          await s.close();
          return out;
        }, { b: backend, ih });
        assert.equal(r.backend, backend);
        assert.equal(r.nHashes, Math.ceil(r.total / 65536));
        assert.ok(r.hashesOk, 'SHA-1 of every piece, across the file boundary');
        assert.ok(r.bytesOk, 'stored bytes');
        assert.equal(r.progressLast, r.total, 'progress reaches the total');
        assert.ok(r.rewriteOk, 'a rewritten piece reads back, its neighbours unchanged');
        assert.ok(r.blobOk, 'fileBlob of the second file');
        assert.equal(r.gap, 'io');
        assert.equal(r.unaligned, 'io');
        assert.equal(r.tooLong, 'io');
      } finally {
        await page.close();
      }
    });

    test(`fileBlob of ${BIG_MB} MiB: exact bytes, JS heap does not grow by it`, { timeout: 180_000 }, async () => {
      const ih = ihOf(`${backend}-blob`);
      const page = await openPage(context, `${backend}-blob`);
      const cdp = await cdpFor(page);
      try {
        const w = await page.evaluate(async ({ b, ih, size }) => {
          const { PieceStorage } = window.storageJs;
          const s = await PieceStorage.open({ forceBackend: b });
          await s.remove(ih);
          await s.create(ih, new Uint8Array(1), size);
          // One at a time, each flushed before the next, as the client would write verified pieces.
          let write = 0;
          for (let i = 0; i < size >>> 20; i++) {
            const piece = window.testUtils.pattern(i, 1 << 20);
            const t = performance.now();
            await s.writePiece(ih, i << 20, piece);
            write += performance.now() - t;
          }
          const t1 = performance.now();
          for (let i = 0; i < size >>> 20; i++) await s.readRange(ih, i << 20, 1 << 20);
          const t2 = performance.now();
          window.bigStorage = s;
          return { write, read: t2 - t1 };
        }, { b: backend, ih, size: BIG_MB * MiB });
        const rate = (ms) => `${(BIG_MB / (ms / 1000)).toFixed(0)} MiB/s`;
        log(`STORAGE ${backend} ${BIG_MB} MiB in 1 MiB pieces: writePiece ${rate(w.write)} (flushed each), readRange ${rate(w.read)}`);
        const heap0 = await heapUsed(cdp);
        // A slice that starts and ends inside pieces: a file of a multi-file torrent.
        const start = MiB + 12345;
        const length = (BIG_MB - 2) * MiB + 777;
        await page.evaluate(async ({ ih, start, length }) => {
          window.bigBlob = await window.bigStorage.fileBlob(ih, start, length, 'video/mp4');
        }, { ih, start, length });
        const heap1 = await heapUsed(cdp);
        // Read it back 1 MiB at a time, comparing with the regenerated pattern.
        const check = await page.evaluate(async ({ start, length }) => {
          const u = window.testUtils;
          const blob = window.bigBlob;
          let bad = -1;
          for (let pos = 0; pos < length && bad < 0; pos += 1 << 20) {
            const n = Math.min(1 << 20, length - pos);
            const got = new Uint8Array(await blob.slice(pos, pos + n).arrayBuffer());
            // Expected bytes: torrent offset start+pos .. +n, from the 1 MiB patterns.
            const want = new Uint8Array(n);
            let filled = 0;
            while (filled < n) {
              const t = start + pos + filled;
              const p = u.pattern(t >>> 20, 1 << 20);
              const from = t & ((1 << 20) - 1);
              const k = Math.min(n - filled, (1 << 20) - from);
              want.set(p.subarray(from, from + k), filled);
              filled += k;
            }
            if (!u.equal(got, want)) bad = pos;
          }
          return { size: blob.size, type: blob.type, bad };
        }, { start, length });
        const heap2 = await heapUsed(cdp);
        log(`STORAGE ${backend} fileBlob ${BIG_MB} MiB: JS heap ${(heap0 / MiB).toFixed(1)} -> ${(heap1 / MiB).toFixed(1)} MiB with the Blob, ${(heap2 / MiB).toFixed(1)} MiB after reading it through`);
        assert.equal(check.size, length);
        assert.equal(check.type, 'video/mp4');
        assert.equal(check.bad, -1, `bytes differ in the MiB at ${check.bad}`);
        assert.ok(heap1 - heap0 < 4 * MiB, `JS heap grew by ${heap1 - heap0} bytes for the Blob`);
        assert.ok(heap2 - heap0 < 16 * MiB, `JS heap grew by ${heap2 - heap0} bytes after reading`);
      } finally {
        await page.evaluate(async (ih) => {
          await window.bigStorage?.remove(ih);
          await window.bigStorage?.close();
        }, ih).catch(() => {});
        await page.close();
      }
    });

    test('testFailNextWrite: a failed piece write or a torn state save keeps the saved state', { timeout: 60_000 }, async () => {
      const ih = ihOf(`${backend}-fault`);
      const page = await openPage(context, `${backend}-fault`);
      try {
        const r = await page.evaluate(async ({ b, ih }) => {
          const { PieceStorage, StorageError } = window.storageJs;
          const u = window.testUtils;
          const enc = (t) => new TextEncoder().encode(t);
          const dec = (x) => (x ? new TextDecoder().decode(x) : null);
          const s = await PieceStorage.open({ forceBackend: b });
          await s.remove(ih);
          const pl = 65536;
          await s.create(ih, new Uint8Array([9]), 4 * pl);
          await s.writePiece(ih, 0, u.pattern(0, pl));
          await s.saveState(ih, enc('S1 have=1000'));
          const out = {};
          s.testFailNextWrite(1000);
          try {
            await s.writePiece(ih, pl, u.pattern(1, pl));
            out.pieceFailed = false;
          } catch (e) {
            out.pieceFailed = true;
            out.pieceError = { kind: e.kind, isStorageError: e instanceof StorageError };
          }
          out.afterPiece = dec(await s.loadState(ih));
          out.piece0 = u.equal(await s.readRange(ih, 0, pl), u.pattern(0, pl));
          // The next write works again.
          await s.writePiece(ih, pl, u.pattern(1, pl));
          out.piece1 = u.equal(await s.readRange(ih, pl, pl), u.pattern(1, pl));
          // A state save torn after 5 bytes (OPFS: mid-header; IndexedDB: transaction aborted).
          s.testFailNextWrite(5, 'state');
          out.stateFailed = await s.saveState(ih, enc('S2 have=1100')).then(() => false, (e) => e.kind);
          out.afterTornState = dec(await s.loadState(ih));
          // Torn after most of the record (past the header).
          await s.saveState(ih, enc('S3 have=1100'));
          s.testFailNextWrite(25, 'state');
          out.stateFailed2 = await s.saveState(ih, enc('S4 have=1110 and a longer tail')).then(() => false, (e) => e.kind);
          out.afterTornState2 = dec(await s.loadState(ih));
          await s.saveState(ih, enc('S5 have=1111'));
          out.last = dec(await s.loadState(ih));
          await s.close();
          const s2 = await PieceStorage.open({ forceBackend: b });
          out.reopened = dec(await s2.loadState(ih));
          await s2.remove(ih);
          await s2.close();
          return out;
        }, { b: backend, ih });
        assert.ok(r.pieceFailed, 'writePiece rejected');
        assert.deepEqual(r.pieceError, { kind: 'io', isStorageError: true });
        assert.equal(r.afterPiece, 'S1 have=1000');
        assert.ok(r.piece0, 'earlier piece intact');
        assert.ok(r.piece1, 'a later write of the piece works');
        assert.equal(r.stateFailed, 'io');
        assert.equal(r.afterTornState, 'S1 have=1000', 'a torn save leaves the previous state');
        assert.equal(r.stateFailed2, 'io');
        assert.equal(r.afterTornState2, 'S3 have=1100');
        assert.equal(r.last, 'S5 have=1111');
        assert.equal(r.reopened, 'S5 have=1111');
      } finally {
        await page.close();
      }
    });

    test('quota: writePiece rejects with kind "quota" and the state stays intact', { timeout: 90_000 }, async () => {
      // Its own browser on a fresh profile, the quota set before the page touches storage:
      // Chromium applies Storage.overrideQuotaForOrigin to IndexedDB only if the origin's
      // IndexedDB was not opened earlier in the browser's life.
      const ih = ihOf(`${backend}-quota`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seedtab-storage-quota-'));
      const ctx = await chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
      });
      const origin = new URL(server.url).origin;
      const quotaSize = 8 * MiB;
      try {
        const blank = ctx.pages()[0] || await ctx.newPage();
        const cdp = await ctx.newCDPSession(blank);
        await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize });
        const page = await openPage(ctx, `${backend}-quota`);
        const r = await page.evaluate(async ({ b, ih }) => {
          const { PieceStorage } = window.storageJs;
          const u = window.testUtils;
          const s = await PieceStorage.open({ forceBackend: b });
          const out = {};
          const pl = 1 << 20;
          const other = 'f'.repeat(40);
          out.prealloc = await s.create(other, new Uint8Array(1), 32 * pl, { preallocate: true }).then(() => 'ok', (e) => e.kind);
          await s.remove(other);
          await s.create(ih, new Uint8Array(100), 32 * pl);
          await s.saveState(ih, new TextEncoder().encode('before the quota'));
          let written = 0;
          out.error = null;
          for (let i = 0; i < 32; i++) {
            try {
              await s.writePiece(ih, i * pl, u.pattern(i, pl));
              written++;
            } catch (e) {
              out.error = { kind: e.kind, message: e.message };
              break;
            }
          }
          out.written = written;
          out.usage = (await s.estimate()).usage;
          out.state = new TextDecoder().decode(await s.loadState(ih));
          let ok = true;
          for (let i = 0; i < written; i++) ok = ok && u.equal(await s.readRange(ih, i * pl, pl), u.pattern(i, pl));
          out.writtenIntact = ok;
          // A state save at the quota limit: saved, or refused with the old one kept.
          out.saveAtLimit = await s.saveState(ih, new TextEncoder().encode('after the quota')).then(() => 'ok', (e) => e.kind);
          out.stateAfterSave = new TextDecoder().decode(await s.loadState(ih));
          window.quotaStorage = s;
          return out;
        }, { b: backend, ih });
        log(`STORAGE ${backend} quota ${quotaSize}: ${r.written} pieces of 1 MiB written (usage ${r.usage}), then ${JSON.stringify(r.error)}; state save at the limit: ${r.saveAtLimit}`);
        assert.equal(r.prealloc, backend === 'opfs' ? 'quota' : 'ok', 'create with preallocate beyond the quota');
        assert.ok(r.error, 'a write failed');
        assert.equal(r.error.kind, 'quota', `kind of ${r.error.message}`);
        assert.ok(r.written >= 4 && r.written < 8, `${r.written} pieces fit in 8 MiB`);
        assert.equal(r.state, 'before the quota', 'state intact after the failed write');
        assert.ok(r.writtenIntact, 'pieces written before the failure read back');
        if (r.saveAtLimit === 'ok') assert.equal(r.stateAfterSave, 'after the quota');
        else {
          assert.equal(r.saveAtLimit, 'quota');
          assert.equal(r.stateAfterSave, 'before the quota');
        }
        // Once space is freed (remove), writing works again. IndexedDB (Chromium) frees a removed
        // Blob's file only once no Blob read from it may be alive, and then on a timer: close
        // (ending the worker that read them), reopen, and retry for a while.
        const again = await page.evaluate(async ({ b, ih, i }) => {
          const u = window.testUtils;
          await window.quotaStorage.remove(ih);
          await window.quotaStorage.close();
          const s = await window.storageJs.PieceStorage.open({ forceBackend: b });
          await s.create(ih, new Uint8Array(100), 32 << 20);
          const t0 = performance.now();
          let res;
          for (;;) {
            res = await s.writePiece(ih, 0, u.pattern(i, 1 << 20)).then(() => 'ok', (e) => e.kind);
            if (res !== 'quota' || performance.now() - t0 > 20_000) break;
            await u.sleep(250);
          }
          const ok = res === 'ok' && u.equal(await s.readRange(ih, 0, 1 << 20), u.pattern(i, 1 << 20));
          await s.remove(ih);
          await s.close();
          return { ok, res, ms: Math.round(performance.now() - t0) };
        }, { b: backend, ih, i: r.written });
        log(`STORAGE ${backend} quota: after remove, a write succeeded after ${again.ms} ms (${again.res})`);
        assert.ok(again.ok, `writes work again once there is room (${again.res})`);
      } finally {
        await ctx.close().catch(() => {});
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    test('persistence: a new tab, then a restarted browser, read what an earlier tab wrote', { timeout: 120_000 }, async () => {
      const ih = ihOf(`${backend}-persist`);
      const pl = 131072;
      const write = async (page, pieces, state) => page.evaluate(async ({ b, ih, pl, pieces, state, total }) => {
        const s = await window.storageJs.PieceStorage.open({ forceBackend: b });
        await s.create(ih, new TextEncoder().encode('torrent bytes'), total);
        for (const i of pieces) await s.writePiece(ih, i * pl, window.testUtils.pattern(i, pl));
        await s.saveState(ih, new TextEncoder().encode(state));
        window.keep = s; // stays open, as the client would keep it
        return s.backend;
      }, { b: backend, ih, pl, pieces, state, total: 4 * pl });
      const read = async (page) => page.evaluate(async ({ b, ih, pl }) => {
        const s = await window.storageJs.PieceStorage.open({ forceBackend: b });
        const out = {
          state: new TextDecoder().decode(await s.loadState(ih) || new Uint8Array()),
          torrent: new TextDecoder().decode(await s.loadTorrent(ih) || new Uint8Array()),
          listed: (await s.list()).includes(ih),
          pieces: [],
        };
        for (let i = 0; i < 4; i++) {
          try {
            out.pieces.push(window.testUtils.equal(await s.readRange(ih, i * pl, pl), window.testUtils.pattern(i, pl)));
          } catch (e) {
            out.pieces.push(e.kind);
          }
        }
        window.keep = s;
        return out;
      }, { b: backend, ih, pl });

      const pageA = await openPage(context, `${backend}-persist-A`);
      assert.equal(await write(pageA, [0, 2], 'have 0,2'), backend);
      await pageA.close(); // closing the tab releases its files (OPFS locks)
      const pageB = await openPage(context, `${backend}-persist-B`);
      const b1 = await read(pageB);
      // Piece 1 was never written: IndexedDB says so, OPFS reads the hole as zeros (the saved
      // state, not the storage, says which pieces are there). Piece 3 is past the data's end.
      const hole = backend === 'idb' ? 'missing' : false;
      assert.deepEqual(b1, { state: 'have 0,2', torrent: 'torrent bytes', listed: true, pieces: [true, hole, true, 'missing'] });
      // Tab B takes over writing (for OPFS: gets the exclusive handle tab A held).
      await write(pageB, [1], 'have 0,1,2');
      await pageB.close();

      // Restart the browser on the same profile.
      await context.close();
      context = await launch();
      const pageC = await openPage(context, `${backend}-persist-C`);
      try {
        const c1 = await read(pageC);
        assert.deepEqual(c1, { state: 'have 0,1,2', torrent: 'torrent bytes', listed: true, pieces: [true, true, true, 'missing'] });
      } finally {
        await pageC.evaluate(async (ih) => { await window.keep.remove(ih); await window.keep.close(); }, ih).catch(() => {});
        await pageC.close();
      }
    });
  });
}

describe('storage (both)', () => {
  test('OPFS: a second tab can read a torrent another tab writes, and writing it fails with kind "locked"', { timeout: 60_000 }, async () => {
    const ih = ihOf('opfs-two-tabs');
    const pageA = await openPage(context, 'tabs-A');
    const pageB = await openPage(context, 'tabs-B');
    try {
      await pageA.evaluate(async (ih) => {
        const s = await window.storageJs.PieceStorage.open({ forceBackend: 'opfs' });
        await s.remove(ih);
        await s.create(ih, new Uint8Array(1), 1 << 20);
        await s.writePiece(ih, 0, window.testUtils.pattern(7, 1 << 16));
        window.keep = s;
      }, ih);
      const r = await pageB.evaluate(async (ih) => {
        const s = await window.storageJs.PieceStorage.open({ forceBackend: 'opfs' });
        const out = { read: window.testUtils.equal(await s.readRange(ih, 0, 1 << 16), window.testUtils.pattern(7, 1 << 16)) };
        const t0 = performance.now();
        out.write = await s.writePiece(ih, 1 << 16, new Uint8Array(10)).then(() => 'ok', (e) => e.kind);
        out.ms = Math.round(performance.now() - t0);
        await s.close();
        return out;
      }, ih);
      log(`STORAGE two tabs: read ${r.read}, write ${r.write} after ${r.ms} ms`);
      assert.ok(r.read, 'tab B reads');
      assert.equal(r.write, 'locked');
    } finally {
      await pageA.evaluate(async (ih) => { await window.keep.remove(ih); await window.keep.close(); }, ih).catch(() => {});
      await pageA.close();
      await pageB.close();
    }
  });

  test('no worker (blocked by CSP, or it fails to start): IndexedDB on the main thread', { timeout: 60_000 }, async () => {
    const page = await openPage(context, 'no-worker');
    try {
      const r = await page.evaluate(async () => {
        const { PieceStorage, StorageError } = window.storageJs;
        const RealWorker = window.Worker;
        const out = {};
        const ih = 'e'.repeat(40);
        const use = async (s) => {
          await s.create(ih, new Uint8Array(1), 100);
          await s.writePiece(ih, 0, new Uint8Array(100).fill(3));
          const ok = (await s.readRange(ih, 0, 100)).every((x) => x === 3);
          await s.remove(ih);
          await s.close();
          return ok;
        };
        try {
          // The constructor throws.
          window.Worker = function Blocked() { throw new DOMException('blocked', 'SecurityError'); };
          let s = await PieceStorage.open();
          out.thrown = { backend: s.backend, reason: s.fallbackReason, works: await use(s) };
          // The worker is made but never starts (what a CSP without worker-src blob: does).
          window.Worker = function Dead() { return new RealWorker('data:text/javascript,throw new Error("no")'); };
          s = await PieceStorage.open();
          out.failed = { backend: s.backend, reason: s.fallbackReason, works: await use(s) };
          // forceBackend 'opfs' says why it cannot be had.
          out.forced = await PieceStorage.open({ forceBackend: 'opfs' }).then(() => 'opened', (e) => e instanceof StorageError && e.kind);
        } finally {
          window.Worker = RealWorker;
        }
        return out;
      });
      log(`STORAGE no worker: ${JSON.stringify(r)}`);
      assert.deepEqual([r.thrown.backend, r.thrown.works], ['idb', true]);
      assert.match(r.thrown.reason, /worker/);
      assert.deepEqual([r.failed.backend, r.failed.works], ['idb', true]);
      assert.equal(r.forced, 'io');
    } finally {
      await page.close();
    }
  });

  test('IndexedDB on the main thread (worker: false) and SHA-1 in JS (no WebCrypto)', { timeout: 60_000 }, async () => {
    const ih = ihOf('idb-main-thread');
    const page = await openPage(context, 'idb-main');
    try {
      const r = await page.evaluate(async (ih) => {
        const { PieceStorage } = window.storageJs;
        const u = window.testUtils;
        const s = await PieceStorage.open({ worker: false, testForceJsSha1: true });
        await s.remove(ih);
        // Lengths around the SHA-1 padding edges (55, 56, 64 bytes) and a short last piece.
        const data = u.randomBytes(16384 * 3 + 56);
        await s.create(ih, new Uint8Array(1), data.length + 200);
        const hashes = [];
        for (const n of [1, 55, 56, 63, 64, 65, 119, 120]) {
          const f = new File([data.subarray(0, n)], 'x');
          const h = await s.importFiles(ih, [{ file: f, offset: 0 }], 16384);
          hashes.push(u.equal(h, await u.pieceHashes(data.subarray(0, n), 16384)));
        }
        const h = await s.importFiles(ih, [{ file: new File([data], 'x'), offset: 0 }], 16384);
        const out = {
          backend: s.backend,
          small: hashes,
          hashes: u.equal(h, await u.pieceHashes(data, 16384)),
          bytes: u.equal(await s.readRange(ih, 0, data.length), data),
        };
        await s.remove(ih);
        await s.close();
        return out;
      }, ih);
      assert.equal(r.backend, 'idb');
      assert.ok(r.small.every(Boolean), `JS SHA-1 of short inputs: ${r.small}`);
      assert.ok(r.hashes, 'JS SHA-1 of pieces');
      assert.ok(r.bytes, 'stored bytes');
    } finally {
      await page.close();
    }
  });

  test(`importFiles of a ${BIG_MB * 4} MiB file from disk into OPFS: throughput, page heap stays small`, { timeout: 600_000 }, async () => {
    const ih = ihOf('opfs-big-import');
    const size = BIG_MB * 4 * MiB;
    const pl = 1 << 18;
    // A real file on disk, picked through an <input type=file> as a user would: the File is
    // disk-backed, never in the page's memory.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'seedtab-storage-file-'));
    const file = path.join(tmp, 'big.bin');
    {
      const fd = fs.openSync(file, 'w');
      const chunk = crypto.randomBytes(4 * MiB);
      for (let off = 0; off < size; off += chunk.length) {
        chunk.writeUInt32LE(off >>> 0, 0); // every chunk differs
        fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - off));
      }
      fs.closeSync(fd);
    }
    const page = await openPage(context, 'big-import');
    const cdp = await cdpFor(page);
    try {
      await page.evaluate(() => {
        const input = document.createElement('input');
        input.type = 'file';
        input.id = 'pick';
        document.body.append(input);
      });
      await page.setInputFiles('#pick', file);
      const heap0 = await heapUsed(cdp);
      const spots = [0, 1234 % (size / pl), size / pl - 1];
      const r = await page.evaluate(async ({ ih, size, pl, spots }) => {
        const f = document.getElementById('pick').files[0];
        const s = await window.storageJs.PieceStorage.open({ forceBackend: 'opfs' });
        await s.remove(ih);
        await s.create(ih, new Uint8Array(1), size, { preallocate: true });
        const t0 = performance.now();
        const hashes = await s.importFiles(ih, [{ file: f, offset: 0 }], pl);
        const ms = performance.now() - t0;
        const out = { ms, fileSize: f.size, n: hashes.length / 20, spotHashes: [], spotBytes: [] };
        for (const i of spots) {
          out.spotHashes.push(Array.from(hashes.subarray(i * 20, i * 20 + 20), (b) => b.toString(16).padStart(2, '0')).join(''));
          const piece = await s.readRange(ih, i * pl, pl);
          const src = new Uint8Array(await f.slice(i * pl, (i + 1) * pl).arrayBuffer());
          out.spotBytes.push(window.testUtils.equal(piece, src));
        }
        await s.remove(ih);
        await s.close();
        return out;
      }, { ih, size, pl, spots });
      const heap1 = await heapUsed(cdp);
      log(`STORAGE importFiles ${size / MiB} MiB file into OPFS: ${(r.ms / 1000).toFixed(2)} s, ${((size / MiB) / (r.ms / 1000)).toFixed(0)} MiB/s; page heap ${(heap0 / MiB).toFixed(1)} -> ${(heap1 / MiB).toFixed(1)} MiB`);
      assert.equal(r.fileSize, size);
      assert.equal(r.n, size / pl);
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(pl);
      spots.forEach((i, k) => {
        fs.readSync(fd, buf, 0, pl, i * pl);
        assert.equal(r.spotHashes[k], crypto.createHash('sha1').update(buf).digest('hex'), `SHA-1 of piece ${i}`);
        assert.ok(r.spotBytes[k], `bytes of piece ${i}`);
      });
      fs.closeSync(fd);
      assert.ok(heap1 - heap0 < 8 * MiB, `page heap grew by ${heap1 - heap0}`);
    } finally {
      await page.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
