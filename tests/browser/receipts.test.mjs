// Reward receipts end to end through the JS API (docs/receipts.md): a downloader tab signs
// receipts with its WebCrypto key for what it got from a seeder tab; the seeder verifies and
// keeps them, submits them to the ledger of `seedtab serve` (Rust verifies every signature
// made in the browser), and the ledger credits the seeder's key with exactly the file's length.
// Also: the key survives a reload and cannot be exported; peers with rewards off are served
// and earn nobody anything.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, log, openHarness, startServer, tempDir } from './harness.mjs';

const TEST_TIMEOUT = 120_000;
const MiB = 1024 * 1024;

let server;
let browser;
let tmp;

before(async () => {
  // A real database file: the ledger as `seedtab serve` runs it by default.
  tmp = tempDir('seedtab-receipts-');
  server = await startServer({ args: ['--db', `${tmp.dir}/ledger.sqlite`] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  tmp?.cleanup();
});

async function poll(fn, what, ms = 30_000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = await fn();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: timed out; last seen ${JSON.stringify(last)}`);
}

/** A seeds `size` random bytes, B downloads them by magnet; both tabs stay open. */
async function seedAndFetch(label, size, { seederOpts = {}, leecherOpts = {} } = {}) {
  const A = await openHarness(browser, server, { name: `${label}:A`, context: await browser.newContext() });
  const B = await openHarness(browser, server, { name: `${label}:B`, context: await browser.newContext() });
  const seeded = await A.evaluate(async ({ trackerUrl, size, opts }) => {
    window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [], storage: 'memory', ...opts });
    window.receiptEvents = 0;
    window.torrent = await client.seed([{ name: 'earned.bin', data: testUtils.randomBytes(size) }]);
    torrent.on('receipt', () => { window.receiptEvents += 1; });
    return { infoHash: torrent.infoHash, magnetURI: torrent.magnetURI, key: (await client.rewardInfo()).publicKey };
  }, { trackerUrl: server.trackerUrl, size, opts: seederOpts });
  const fetched = await B.evaluate(async ({ trackerUrl, magnetURI, opts }) => {
    window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [], storage: 'memory', ...opts });
    const t = client.add(magnetURI);
    await t.done;
    return { length: t.length, key: (await client.rewardInfo()).publicKey };
  }, { trackerUrl: server.trackerUrl, magnetURI: seeded.magnetURI, opts: leecherOpts });
  return { A, B, seeded, fetched };
}

test('a seeder earns receipts for exactly the file, and the ledger totals them', { timeout: TEST_TIMEOUT }, async () => {
  const size = 9 * MiB + 12_345; // more than two 4 MiB receipt batches
  const { A, B, seeded, fetched } = await seedAndFetch('earn', size);
  assert.match(seeded.key, /^[0-9a-f]{64}$/);
  assert.match(fetched.key, /^[0-9a-f]{64}$/);
  assert.notEqual(seeded.key, fetched.key, 'two browser profiles, two keys');
  assert.equal(fetched.length, size);

  // The last receipt follows completion; it is kept asynchronously.
  const held = await poll(async () => {
    const recs = await A.evaluate((ih) => client.receipts().then((all) => all.filter((r) => r.infoHash === ih)), seeded.infoHash);
    const bytes = recs.reduce((n, r) => n + r.bytes, 0);
    return { ok: bytes === size, bytes, recs };
  }, 'receipts covering the file');
  const rec = held.recs[0];
  assert.equal(held.recs.length, 1, 'one connection, one session, the latest receipt kept');
  assert.equal(rec.uploader, seeded.key);
  assert.equal(rec.downloader, fetched.key);
  assert.equal(rec.length, size);
  assert.ok(rec.seq >= 3, `several receipts along the way (seq ${rec.seq})`);
  assert.ok(await A.evaluate(() => window.receiptEvents) >= 1, "the torrent fired 'receipt'");
  log(`[earn] seeder holds seq ${rec.seq}, ${rec.bytes} bytes attested by ${rec.downloader.slice(0, 16)}…`);

  // The downloader holds nothing: it uploaded nothing.
  assert.deepEqual(await B.evaluate(() => client.receipts()), []);

  const first = await A.evaluate(() => client.submitReceipts());
  assert.deepEqual({ stored: first.stored, rejected: first.rejected }, { stored: 1, rejected: 0 }, JSON.stringify(first));
  const totals = await A.evaluate(() => client.ledgerTotals());
  assert.equal(totals.uploader, seeded.key);
  assert.equal(totals.bytes, size, 'the ledger credits exactly the file length');
  assert.equal(totals.torrents.length, 1);
  assert.equal(totals.torrents[0].info_hash, seeded.infoHash);

  // Idempotent: nothing pending the second time; the same receipt sent again is a duplicate.
  const again = await A.evaluate(() => client.submitReceipts());
  assert.equal(again.stored, 0);
  const dup = await A.evaluate(async (hex) => {
    const r = await fetch('/api/receipts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ receipts: [hex] }) });
    return r.json();
  }, rec.receipt);
  assert.equal(dup.duplicate, 1, JSON.stringify(dup));
  assert.equal((await A.evaluate(() => client.ledgerTotals())).bytes, size);

  // A receipt altered in the page is refused by the ledger's Rust verification.
  const at = rec.receipt.indexOf(Buffer.from('3:sig64:').toString('hex')) + 16; // first signature byte
  assert.ok(at > 16);
  const flippedByte = (parseInt(rec.receipt.slice(at, at + 2), 16) ^ 1).toString(16).padStart(2, '0');
  const flipped = rec.receipt.slice(0, at) + flippedByte + rec.receipt.slice(at + 2);
  const bad = await A.evaluate(async (hex) => {
    const r = await fetch('/api/receipts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ receipts: [hex] }) });
    return r.json();
  }, flipped);
  assert.equal(bad.rejected, 1, JSON.stringify(bad));
  assert.equal(bad.results[0].code, 'bad_signature');
  await A.context().close();
  await B.context().close();
});

test('the reward key survives a reload and cannot be exported', { timeout: TEST_TIMEOUT }, async () => {
  const ctx = await browser.newContext();
  const page = await openHarness(browser, server, { name: 'key', context: ctx });
  const first = await page.evaluate(() => new window.seedtab.Client({ iceServers: [], storage: 'memory' }).rewardInfo());
  assert.equal(first.enabled, true, first.reason);
  await page.reload();
  await page.waitForFunction(() => window.seedtab, null, { timeout: 30_000 });
  const second = await page.evaluate(() => new window.seedtab.Client({ iceServers: [], storage: 'memory' }).rewardInfo());
  assert.equal(second.publicKey, first.publicKey, 'the same key after a reload');
  const probe = await page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('seedtab-rewards');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const pair = await new Promise((resolve, reject) => {
      const r = db.transaction('keys').objectStore('keys').get('reward');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const attempt = async (format) => {
      try {
        await crypto.subtle.exportKey(format, pair.privateKey);
        return 'exported';
      } catch (e) {
        return e.name;
      }
    };
    return {
      algorithm: pair.privateKey.algorithm.name,
      extractable: pair.privateKey.extractable,
      usages: pair.privateKey.usages,
      pkcs8: await attempt('pkcs8'),
      jwk: await attempt('jwk'),
      raw: await attempt('raw'),
    };
  });
  assert.equal(probe.algorithm, 'Ed25519');
  assert.equal(probe.extractable, false);
  assert.deepEqual(probe.usages, ['sign']);
  for (const f of ['pkcs8', 'jwk', 'raw']) assert.equal(probe[f], 'InvalidAccessError', `exportKey('${f}') must fail`);
  await ctx.close();
});

test('a peer with rewards off is served and nobody earns from it', { timeout: TEST_TIMEOUT }, async () => {
  const size = MiB + 7;
  const { A, B, seeded, fetched } = await seedAndFetch('off', size, {
    seederOpts: { requireReceipts: true },
    leecherOpts: { rewards: false },
  });
  assert.equal(fetched.length, size);
  assert.equal(fetched.key, null);
  const info = await B.evaluate(() => client.rewardInfo());
  assert.equal(info.enabled, false);
  assert.match(info.reason, /off/);
  await new Promise((r) => setTimeout(r, 500));
  const held = await A.evaluate((ih) => client.receipts().then((all) => all.filter((r) => r.infoHash === ih)), seeded.infoHash);
  assert.deepEqual(held, []);
  await A.context().close();
  await B.context().close();
});
