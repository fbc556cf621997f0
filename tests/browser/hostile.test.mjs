// Hostile peers against a seedtab tab in real Chromium (issue 10): the hostile WebRTC peer
// (examples/hostile_peer.rs) joins the swarm through `seedtab serve`'s tracker while the victim
// tab is its only other member, so its one offer can only reach the victim (checked: the `open`
// line names the peer id that answered), and misbehaves once its channel is open. An honest peer
// then joins. Every case expects: the victim closes the hostile peer (its `closed` line, exit 0),
// the honest transfer completes with the right SHA-256, the tab's JS heap (CDP
// Runtime.getHeapUsage, after a GC) and its wasm memory stay within generous bounds, the tab
// does not crash, and its console names the engine's reason for dropping the peer.
//
//   downloading victim, honest native `seedtab seed`:  bad-data, huge-prefix, wrong-infohash
//   seeding victim, honest downloading tab:            flood, oversized-request
//
//   cargo build --release --features native --bin seedtab --example hostile_peer
//   ip netns exec seedtab-test node --test tests/browser/hostile.test.mjs

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  launchBrowser, log, openHarness, runSeedtab, spawnHostilePeer, spawnSeedtab, startServer, tempDir,
} from './harness.mjs';

const MiB = 1024 * 1024;
const SIZE = 12 * MiB;
const CASE_TIMEOUT = 150_000;
/** The hostile peer's own deadline: a victim that never closes it fails the case. */
const HOSTILE_TIMEOUT_S = 60;
/** Generous bounds: a victim that buffers what a hostile peer sends without limit goes far past them. */
const HEAP_GROWTH_LIMIT = 64 * MiB;
const HEAP_PEAK_LIMIT = 192 * MiB;
const WASM_GROWTH_LIMIT = SIZE + 128 * MiB;

let server;
let browser;
let tmp;
const procs = new Set();

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  tmp = tempDir('seedtab-hostile-');
  log(`[hostile] tracker ${server.trackerUrl}, files in ${tmp.dir}`);
});

after(async () => {
  for (const p of procs) await p.stop().catch(() => {});
  await browser?.close();
  await server?.stop();
  tmp?.cleanup();
});

/** Remember a child process so `after` kills it whatever happens. */
function track(p) {
  procs.add(p);
  p.exited.then(() => procs.delete(p));
  return p;
}

function writeRandomFile(file, size) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data);
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** A tab of its own context, with crash and page-error bookkeeping. */
async function openTab(name) {
  const context = await browser.newContext();
  const page = await openHarness(browser, server, { name, context });
  const state = { crashed: false, console: [] };
  page.on('crash', () => { state.crashed = true; });
  page.on('console', (msg) => { state.console.push(msg.text()); });
  const cdp = await context.newCDPSession(page);
  return { page, context, cdp, state, close: () => context.close().catch(() => {}) };
}

/** JS heap in use after a GC, and the wasm module's linear memory. */
async function memory(tab) {
  await tab.cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await tab.cdp.send('Runtime.getHeapUsage');
  const wasm = await tab.page.evaluate(() => window.seedtab.__wasmMemoryBytes());
  return { heap: usedSize, wasm };
}

/** Samples the JS heap (no GC) every 250 ms until stop(); resolves to the peak. */
function heapSampler(tab) {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { usedSize } = await tab.cdp.send('Runtime.getHeapUsage');
        peak = Math.max(peak, usedSize);
      } catch { /* page busy or gone: the crash check reports it */ }
      await new Promise((res) => setTimeout(res, 250));
    }
  })();
  return { stop: async () => { running = false; await loop; return peak; } };
}

const mb = (n) => `${(n / MiB).toFixed(1)} MiB`;

/** Polls the page's `window.outcome` (set by the download's `done`) until it is there or the deadline. */
async function waitDownload(page, label, deadline, describe) {
  let lastReport = 0;
  for (;;) {
    const s = await page.evaluate(() => {
      let stats;
      try { stats = window.torrent.stats(); } catch (e) { stats = String(e); }
      return { outcome: window.outcome, progress: window.torrent.progress, stats };
    });
    if (s.outcome) {
      assert.ok(s.outcome.ok, `[${label}] download failed: ${s.outcome.error}`);
      return s.outcome.ms;
    }
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      log(`[${label}] progress ${(100 * (s.progress || 0)).toFixed(1)}% ${JSON.stringify(s.stats)}`);
    }
    if (Date.now() > deadline) {
      assert.fail(`[${label}] not done in time: ${(100 * (s.progress || 0)).toFixed(1)}%, ${JSON.stringify(s.stats)}; ${describe()}`);
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** SHA-256 of every file the page's `window.torrent` holds. */
function tabHashes(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const f of window.torrent.files) out.push({ path: f.path, hash: await testUtils.sha256Hex(await f.bytes()) });
    return out;
  });
}

/** Page side: start `window.torrent` = client.add(id) and record its outcome in `window.outcome`. */
function addInPage({ id, trackers }) {
  window.client = new window.seedtab.Client({ trackers, iceServers: [] });
  window.outcome = null;
  const t0 = performance.now();
  window.torrent = client.add(Array.isArray(id) ? new Uint8Array(id) : id);
  window.torrent.done.then(
    () => { window.outcome = { ok: true, ms: performance.now() - t0 }; },
    (err) => { window.outcome = { ok: false, error: String((err && err.message) || err) }; },
  );
}

/** The hostile peer joins and opens a channel with the victim (and no one else). */
async function hostileJoins(attack, infoHash, victimPeerId, label) {
  const hostile = track(spawnHostilePeer({ tracker: server.trackerUrl, infoHash, attack, timeoutS: HOSTILE_TIMEOUT_S }));
  const open = await hostile.waitFor((e) => e.event === 'open', 45_000, 'the hostile peer\'s open line');
  assert.equal(open.peerId, victimPeerId, `[${label}] the hostile peer's channel is with the victim tab`);
  return hostile;
}

/**
 * Why the victim should drop each attacker: the engine's reason, which the web driver logs as
 * `seedtab: dropping peer: <reason>` (tests/hostile_peers.rs checks the same reasons).
 */
const WHY = {
  'bad-data': /failed \d+ hash checks/,
  'huge-prefix': /protocol error: message of 4294967295 bytes/,
  flood: /requests queued|floods requests/,
  'oversized-request': /bad request/,
  'wrong-infohash': /another torrent/,
};

/** The common ending: the hostile peer was closed by the victim (for the expected reason); memory bounded; no crash. */
async function checkVictim(label, attack, tab, hostile, before, peak) {
  const closed = await hostile.waitFor((e) => e.event === 'closed', HOSTILE_TIMEOUT_S * 1000,
    'the victim to close the hostile peer');
  const { code } = await hostile.exited;
  assert.equal(code, 0, `[${label}] the hostile peer exits 0 once closed\n${hostile.describe()}`);
  assert.equal(tab.state.crashed, false, `[${label}] the victim tab did not crash`);
  assert.equal(await tab.page.evaluate(() => 1 + 1), 2, `[${label}] the victim tab still runs script`);
  const afterMem = await memory(tab);
  log(`HOSTILE ${label}: closed after ${closed.afterMs} ms (${closed.bytesSent} bytes sent, `
    + `${closed.bytesReceived} received, ${closed.reason}); heap ${mb(before.heap)} -> ${mb(afterMem.heap)} `
    + `(peak ${mb(peak)}), wasm ${mb(before.wasm)} -> ${mb(afterMem.wasm)}`);
  assert.ok(afterMem.heap - before.heap < HEAP_GROWTH_LIMIT,
    `[${label}] JS heap grew by ${mb(afterMem.heap - before.heap)} (limit ${mb(HEAP_GROWTH_LIMIT)})`);
  assert.ok(peak < HEAP_PEAK_LIMIT, `[${label}] JS heap peaked at ${mb(peak)} (limit ${mb(HEAP_PEAK_LIMIT)})`);
  const dropped = tab.state.console.filter((t) => t.includes('dropping peer:'));
  assert.ok(dropped.some((t) => WHY[attack].test(t)),
    `[${label}] the victim logged dropping the peer for ${WHY[attack]}; it logged: ${JSON.stringify(dropped)}`);
  assert.ok(afterMem.wasm - before.wasm < WASM_GROWTH_LIMIT,
    `[${label}] wasm memory grew by ${mb(afterMem.wasm - before.wasm)} (limit ${mb(WASM_GROWTH_LIMIT)})`);
  return closed;
}

/**
 * The victim downloads: it adds the `.torrent` (tracker only), the hostile peer joins, then an
 * honest native seeder does; the victim must finish from the seeder.
 */
async function downloaderCase(attack) {
  const label = `${attack} (downloading tab)`;
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const dir = path.join(tmp.dir, attack);
  const file = path.join(dir, `${attack}.bin`);
  const sha = writeRandomFile(file, SIZE);
  const torrentFile = path.join(tmp.dir, `${attack}.torrent`);
  const created = await runSeedtab(['create', file, '-o', torrentFile, '--tracker', server.trackerUrl], { name: `${attack}:create` });
  assert.equal(created.code, 0, `create exits 0: ${created.stderr}`);
  const infoHash = /xt=urn:btih:([0-9a-fA-F]{40})/.exec(created.stdout)?.[1]?.toLowerCase();
  assert.ok(infoHash, `create prints the magnet link: ${created.stdout}`);

  const tab = await openTab(`${attack}:victim`);
  let hostile;
  let seeder;
  try {
    await tab.page.evaluate(addInPage, { id: [...fs.readFileSync(torrentFile)], trackers: [] });
    await tab.page.evaluate(() => window.torrent.ready);
    const victimPeerId = await tab.page.evaluate(() => window.client.peerId);
    const before = await memory(tab);
    const sampler = heapSampler(tab);
    hostile = await hostileJoins(attack, infoHash, victimPeerId, label);
    log(`[${label}] hostile open; victim numPeers ${await tab.page.evaluate(() => window.torrent.numPeers)}`);

    seeder = track(spawnSeedtab(['seed', torrentFile, '--dir', dir, '--tracker', server.trackerUrl, '--json'],
      { name: `${attack}:seed` }));
    await seeder.waitFor((e) => e.event === 'ready', 60_000, 'the seeder\'s ready line');
    const ms = await waitDownload(tab.page, label, deadline, () => hostile.describe());
    log(`[${label}] download done ${(ms / 1000).toFixed(2)} s after add`);
    const peak = await sampler.stop();
    await checkVictim(label, attack, tab, hostile, before, peak);
    assert.deepEqual(await tabHashes(tab.page), [{ path: path.basename(file), hash: sha }],
      `[${label}] the downloaded file's SHA-256`);
    await tab.page.evaluate(() => window.client.destroy());
  } finally {
    await tab.close();
    await hostile?.stop();
    await seeder?.stop(5000).catch(() => {});
  }
}

/**
 * The victim seeds: the hostile peer joins while it is alone in the swarm, then an honest tab
 * downloads from the magnet link while the attack goes on.
 */
async function seederCase(attack) {
  const label = `${attack} (seeding tab)`;
  const deadline = Date.now() + CASE_TIMEOUT - 20_000;
  const victim = await openTab(`${attack}:victim`);
  const honest = await openTab(`${attack}:honest`);
  let hostile;
  try {
    const seeded = await victim.page.evaluate(async ({ trackerUrl, size, name }) => {
      window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [] });
      const data = testUtils.randomBytes(size);
      const hash = await testUtils.sha256Hex(data);
      window.torrent = await client.seed([{ name, data }]);
      return { infoHash: torrent.infoHash, magnetURI: torrent.magnetURI, hash, peerId: client.peerId };
    }, { trackerUrl: server.trackerUrl, size: SIZE, name: `${attack}.bin` });
    const before = await memory(victim);
    const sampler = heapSampler(victim);
    hostile = await hostileJoins(attack, seeded.infoHash, seeded.peerId, label);
    log(`[${label}] hostile open; victim numPeers ${await victim.page.evaluate(() => window.torrent.numPeers)}`);

    await honest.page.evaluate(addInPage, { id: seeded.magnetURI, trackers: [] });
    const ms = await waitDownload(honest.page, label, deadline, () => hostile.describe());
    log(`[${label}] honest download done ${(ms / 1000).toFixed(2)} s after add`);
    const peak = await sampler.stop();
    await checkVictim(label, attack, victim, hostile, before, peak);
    assert.deepEqual(await tabHashes(honest.page), [{ path: `${attack}.bin`, hash: seeded.hash }],
      `[${label}] the honest download's SHA-256`);
    await honest.page.evaluate(() => window.client.destroy());
    await victim.page.evaluate(() => window.client.destroy());
  } finally {
    await honest.close();
    await victim.close();
    await hostile?.stop();
  }
}

test('bad-data: a peer claiming every piece and sending garbage is closed; the download completes from the honest seeder',
  { timeout: CASE_TIMEOUT }, () => downloaderCase('bad-data'));

test('huge-prefix: a 4 GiB length prefix closes the peer without the tab allocating it',
  { timeout: CASE_TIMEOUT }, () => downloaderCase('huge-prefix'));

test('flood: Interested and ~40,000 Requests a second, never read, against a seeding tab; the honest tab is served',
  { timeout: CASE_TIMEOUT }, () => seederCase('flood'));

test('oversized-request: a 256 KiB Request to a seeding tab closes the peer',
  { timeout: CASE_TIMEOUT }, () => seederCase('oversized-request'));

test('wrong-infohash: a handshake for another torrent closes the peer',
  { timeout: CASE_TIMEOUT }, () => downloaderCase('wrong-infohash'));
