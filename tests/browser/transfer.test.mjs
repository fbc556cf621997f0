// End to end through the JS API of pkg/seedtab.js (www/harness.html): one tab seeds files
// it generated, another tab downloads them from the magnet link alone, through the
// `seedtab serve` tracker, over WebRTC. Checks every byte (SHA-256) and reports the speed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, log, openHarness, startServer } from './harness.mjs';

const TEST_TIMEOUT = 120_000;
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

/**
 * Tab A seeds `files` ([{name, size}]), tab B adds the magnet link and downloads.
 * `leecherTrackers` is the tracker list of B's Client (the magnet carries A's trackers too).
 * Returns what both tabs saw; fails the test with a clear message on any mismatch.
 */
async function transfer({ label, files, seedOpts, leecherTrackers, deadline }) {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const seeder = await openHarness(browser, server, { name: `${label}:A`, context: ctxA });
    const leecher = await openHarness(browser, server, { name: `${label}:B`, context: ctxB });

    const seeded = await seeder.evaluate(async ({ trackerUrl, files, seedOpts }) => {
      const { Client } = window.seedtab;
      window.client = new Client({ trackers: [trackerUrl], iceServers: [] });
      const input = files.map((f) => ({ name: f.name, data: testUtils.randomBytes(f.size) }));
      const hashes = [];
      for (const f of input) hashes.push(await testUtils.sha256Hex(f.data));
      const t0 = performance.now();
      window.torrent = seedOpts ? await client.seed(input, seedOpts) : await client.seed(input);
      const seedMs = performance.now() - t0;
      return {
        infoHash: torrent.infoHash,
        magnetURI: torrent.magnetURI,
        torrentFileLength: torrent.torrentFile.length,
        hashes,
        seedMs,
      };
    }, { trackerUrl: server.trackerUrl, files, seedOpts });
    log(`[${label}] seeded ${seeded.infoHash} in ${seeded.seedMs.toFixed(0)} ms: ${seeded.magnetURI}`);

    assert.match(seeded.infoHash, /^[0-9a-f]{40}$/, 'infoHash is 40 lower-case hex characters');
    assert.ok(seeded.magnetURI.startsWith('magnet:?'), 'magnetURI is a magnet link');
    assert.ok(seeded.magnetURI.toLowerCase().includes(`urn:btih:${seeded.infoHash}`), 'magnet carries the info hash');
    assert.ok(seeded.magnetURI.includes(`tr=${encodeURIComponent(server.trackerUrl)}`)
      || seeded.magnetURI.includes(`tr=${server.trackerUrl}`), 'magnet carries the tracker');
    assert.ok(seeded.torrentFileLength > 0, 'torrentFile is not empty');

    // B: the magnet link alone (no .torrent). Start, then poll so a stall shows its progress.
    await leecher.evaluate(({ trackers, magnetURI }) => {
      const { Client } = window.seedtab;
      window.client = new Client({ trackers, iceServers: [] });
      window.addedAt = performance.now();
      window.torrent = client.add(magnetURI);
      window.outcome = null;
      torrent.done.then(
        () => { window.outcome = { ok: true, ms: performance.now() - window.addedAt }; },
        (err) => { window.outcome = { ok: false, error: String((err && err.message) || err) }; },
      );
    }, { trackers: leecherTrackers, magnetURI: seeded.magnetURI });

    let outcome = null;
    let lastReport = 0;
    while (!outcome) {
      const s = await leecher.evaluate(() => {
        let stats = null;
        try { stats = torrent.stats(); } catch (e) { stats = { error: String(e) }; }
        return { outcome: window.outcome, progress: torrent.progress, stats };
      });
      outcome = s.outcome;
      if (!outcome && Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        log(`[${label}] progress ${(100 * (s.progress || 0)).toFixed(1)}% ${JSON.stringify(s.stats)}`);
      }
      if (!outcome && Date.now() > deadline) {
        const seederStats = await seeder.evaluate(() => { try { return torrent.stats(); } catch (e) { return String(e); } });
        assert.fail(`[${label}] not done in time: leecher at ${(100 * (s.progress || 0)).toFixed(1)}%, `
          + `leecher stats ${JSON.stringify(s.stats)}, seeder stats ${JSON.stringify(seederStats)}`);
      }
      if (!outcome) await new Promise((res) => setTimeout(res, 250));
    }
    assert.ok(outcome.ok, `[${label}] torrent.done rejected: ${outcome.error}`);

    const got = await leecher.evaluate(async () => {
      const files = [];
      for (const f of torrent.files) {
        const bytes = await f.bytes();
        const blob = await f.blob();
        files.push({
          name: f.name, path: f.path, length: f.length, bytesLength: bytes.length,
          blobSize: blob.size, hash: await testUtils.sha256Hex(bytes),
        });
      }
      return { files, progress: torrent.progress, stats: torrent.stats(), infoHash: torrent.infoHash };
    });
    const seederStats = await seeder.evaluate(() => torrent.stats());

    const totalBytes = files.reduce((n, f) => n + f.size, 0);
    const secs = outcome.ms / 1000;
    log(`TRANSFER ${label}: ${secs.toFixed(2)} s, ${(totalBytes / 1e6 / secs).toFixed(2)} MB/s `
      + `(${totalBytes} bytes, magnet to done)`);
    log(`[${label}] leecher stats ${JSON.stringify(got.stats)}; seeder stats ${JSON.stringify(seederStats)}`);

    assert.equal(got.infoHash, seeded.infoHash);
    assert.equal(got.progress, 1, 'progress is 1 when done');
    assert.equal(got.files.length, files.length, 'same number of files');
    files.forEach((want, i) => {
      const f = got.files[i];
      const wantName = want.name.split('/').pop();
      assert.equal(f.name, wantName, `file ${i} name`);
      assert.ok(f.path.endsWith(want.name), `file ${i} path ${JSON.stringify(f.path)} ends with ${want.name}`);
      assert.equal(f.length, want.size, `file ${i} length`);
      assert.equal(f.bytesLength, want.size, `file ${i} bytes().length`);
      assert.equal(f.blobSize, want.size, `file ${i} blob().size`);
      assert.equal(f.hash, seeded.hashes[i], `file ${i} (${want.name}) SHA-256 matches what was seeded`);
    });

    await seeder.evaluate(() => client.destroy());
    await leecher.evaluate(() => client.destroy());
    return { seeded, got, secs };
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
}

test('20 MiB single file: seed in tab A, magnet link to tab B', { timeout: TEST_TIMEOUT }, async () => {
  await transfer({
    label: '20MB',
    files: [{ name: 'random.bin', size: 20 * MiB }],
    leecherTrackers: [server.trackerUrl],
    deadline: Date.now() + TEST_TIMEOUT - 15_000,
  });
});

test('three files in a folder (3 MB, 1 byte, 5 MB), leecher knows only the magnet\'s tracker',
  { timeout: TEST_TIMEOUT }, async () => {
    const { got } = await transfer({
      label: '3files',
      files: [
        { name: 'alpha.bin', size: 3_000_000 },
        { name: 'nested/one-byte.txt', size: 1 },
        { name: 'omega.bin', size: 5_000_000 },
      ],
      seedOpts: { name: 'seedtab test folder' },
      leecherTrackers: [],
      deadline: Date.now() + TEST_TIMEOUT - 15_000,
    });
    for (const f of got.files) {
      assert.ok(f.path.includes('seedtab test folder'), `multi-file path ${JSON.stringify(f.path)} starts in the torrent's folder`);
    }
  });
