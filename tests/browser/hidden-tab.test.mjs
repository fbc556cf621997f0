// Seeding and downloading go on in a tab the user has left: a background tab, whose timers
// Chromium throttles to about one wake-up a second (issue 5, item 6).
//
// Headless Chromium never hides a page, and playwright-core's focus emulation keeps every page
// it opens visible. A really hidden tab needs a headful Chromium under Xvfb, without the
// "disable backgrounding" switches, driven over CDP with `noDefaults` (harness.mjs:
// startXvfb, launchHeadfulBrowser, hideTab). Each test proves the tab was hidden and throttled
// (visibilityState 'hidden' throughout, a setInterval(…, 10) firing about once a second) and
// that the 32 MiB arrive intact. It reports the speed next to the same transfer with the tab
// in front; it asserts no speed.
//
// The other peer runs in the usual headless browser, so the two never share storage.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  hideTab, launchBrowser, launchHeadfulBrowser, log, measureTimerRate, openHarness,
  startServer, startTimerProbe, startXvfb, visibilityOf, withTimeout,
} from './harness.mjs';

const WAIT = 120_000; // bound of every wait
const TEST_TIMEOUT = 300_000; // a test holds a few of them
const SIZE = 32 * 1024 * 1024;
// A 10 ms interval fires ~100×/s in a tab in front; Chromium's background throttling lets it
// wake up once a second. Anything under this counts as throttled, anything over this as not.
const THROTTLED_MAX_PER_SEC = 2.5;
const UNTHROTTLED_MIN_PER_SEC = 10;

let server;
let xvfb;
let headless;
const figures = [];

before(async () => {
  server = await startServer();
  xvfb = await startXvfb();
  headless = await launchBrowser();
});

after(async () => {
  await headless?.close();
  await xvfb?.stop();
  await server?.stop();
  if (figures.length) log(`HIDDEN TAB SUMMARY:\n  ${figures.join('\n  ')}`);
});

const fmtRate = (r) => `${r.perSec.toFixed(1)}/s (${r.fired} in ${(r.ms / 1000).toFixed(1)} s)`;

/**
 * Tab A seeds 32 MiB, tab B downloads it from the magnet link. `headfulRole` ('seeder' or
 * 'downloader') is the tab living in the headful browser; `hide` says whether that tab goes to
 * the background (the downloader before `client.add`, the seeder after `seed()` resolved and
 * before the downloader starts). Returns the figures.
 */
async function transfer({ label, headfulRole, hide }) {
  const headful = await launchHeadfulBrowser({ display: xvfb.display });
  const headlessCtx = await headless.newContext();
  try {
    const open = (role) => (role === headfulRole
      ? openHarness(headful.browser, server, { name: `${label}:${role}(headful)`, context: headful.context })
      : openHarness(headless, server, { name: `${label}:${role}`, context: headlessCtx }));
    const seeder = await open('seeder');
    const downloader = await open('downloader');
    const watched = headfulRole === 'seeder' ? seeder : downloader;
    assert.equal(await visibilityOf(watched), 'visible', `the headful ${headfulRole} tab starts in front`);

    const seeded = await withTimeout(seeder.evaluate(async ({ trackerUrl, size }) => {
      window.client = new window.seedtab.Client({ trackers: [trackerUrl] });
      const data = testUtils.randomBytes(size);
      const hash = await testUtils.sha256Hex(data);
      const t0 = performance.now();
      window.torrent = await client.seed([{ name: 'hidden-tab.bin', data }]);
      return { magnetURI: torrent.magnetURI, infoHash: torrent.infoHash, hash, seedMs: performance.now() - t0 };
    }, { trackerUrl: server.trackerUrl, size: SIZE }), WAIT, `[${label}] seed() of 32 MiB`);
    log(`[${label}] seeded ${seeded.infoHash} in ${seeded.seedMs.toFixed(0)} ms`);

    // Into the background (or not), and check what that did to the tab's timers.
    let cover = null;
    if (hide) cover = await hideTab(watched, { name: `${label}:cover` });
    const timerCheck = await measureTimerRate(watched, 4000);
    log(`[${label}] ${headfulRole} tab ${timerCheck.visibilityState}: setInterval(10 ms) fired ${fmtRate(timerCheck)}`);
    if (hide) {
      assert.equal(timerCheck.visibilityState, 'hidden', 'the tab behind the cover tab is hidden');
      assert.ok(timerCheck.perSec <= THROTTLED_MAX_PER_SEC,
        `a hidden tab's timers are throttled: setInterval(10 ms) fired ${fmtRate(timerCheck)}`);
    } else {
      assert.equal(timerCheck.visibilityState, 'visible');
      assert.ok(timerCheck.perSec >= UNTHROTTLED_MIN_PER_SEC,
        `control: a tab in front is not throttled: setInterval(10 ms) fired ${fmtRate(timerCheck)}`);
    }
    const probe = await startTimerProbe(watched);

    await downloader.evaluate(({ trackerUrl, magnetURI }) => {
      window.client = new window.seedtab.Client({ trackers: [trackerUrl] });
      window.addedAt = performance.now();
      window.torrent = client.add(magnetURI);
      window.outcome = null;
      torrent.done.then(
        () => { window.outcome = { ok: true, ms: performance.now() - window.addedAt }; },
        (err) => { window.outcome = { ok: false, error: String((err && err.message) || err) }; },
      );
    }, { trackerUrl: server.trackerUrl, magnetURI: seeded.magnetURI });

    // Poll from Node (page.evaluate runs at once even in a throttled tab).
    const deadline = Date.now() + WAIT;
    let outcome = null;
    let lastReport = Date.now();
    while (!outcome) {
      const s = await downloader.evaluate(() => {
        let stats;
        try { stats = torrent.stats(); } catch (e) { stats = { error: String(e) }; }
        return { outcome: window.outcome, progress: torrent.progress, stats };
      });
      outcome = s.outcome;
      if (outcome) break;
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        log(`[${label}] progress ${(100 * (s.progress || 0)).toFixed(1)}% ${JSON.stringify(s.stats)}`);
      }
      if (Date.now() > deadline) {
        const seederStats = await seeder.evaluate(() => { try { return torrent.stats(); } catch (e) { return String(e); } });
        assert.fail(`[${label}] not done within ${WAIT / 1000} s: downloader at ${(100 * (s.progress || 0)).toFixed(1)}%, `
          + `downloader stats ${JSON.stringify(s.stats)}, seeder stats ${JSON.stringify(seederStats)}, `
          + `${headfulRole} tab ${await visibilityOf(watched)}`);
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(outcome.ok, `[${label}] torrent.done rejected: ${outcome.error}`);
    const during = await probe.stop();

    // Read the file back and hash it in the downloader (still hidden, when it is the one hidden).
    const got = await withTimeout(downloader.evaluate(async () => {
      const f = torrent.files[0];
      const bytes = await f.bytes();
      return {
        name: f.name, length: f.length, bytesLength: bytes.length,
        hash: await testUtils.sha256Hex(bytes), progress: torrent.progress, stats: torrent.stats(),
        visibilityState: document.visibilityState, errors: window.seedtabErrors,
      };
    }), WAIT, `[${label}] reading the downloaded file`);
    const seederInfo = await seeder.evaluate(() => ({ stats: torrent.stats(), errors: window.seedtabErrors }));
    const endState = await visibilityOf(watched);

    const secs = outcome.ms / 1000;
    const mbps = SIZE / 1e6 / secs;
    const state = hide ? 'HIDDEN' : 'VISIBLE';
    const who = headfulRole === 'seeder' ? 'SEEDER' : 'TAB';
    const line = `${state} ${who} 32MB: ${secs.toFixed(2)} s, ${mbps.toFixed(2)} MB/s `
      + `(${headfulRole} ${hide ? 'hidden' : 'in front'}; its setInterval(10 ms) fired ${fmtRate(during)} during the transfer)`;
    log(line);
    figures.push(line);
    log(`[${label}] downloader stats ${JSON.stringify(got.stats)}; seeder stats ${JSON.stringify(seederInfo.stats)}`);
    for (const [who2, errs] of [['downloader', got.errors], ['seeder', seederInfo.errors]]) {
      if (errs && errs.length) log(`[${label}] ${who2} page errors: ${errs.join(' | ')}`);
    }

    assert.equal(got.progress, 1, 'progress is 1 when done');
    assert.equal(got.length, SIZE, 'file length');
    assert.equal(got.bytesLength, SIZE, 'bytes().length');
    assert.equal(got.hash, seeded.hash, 'SHA-256 of the downloaded file matches what was seeded');
    if (hide) {
      assert.deepEqual(during.visibilityChanges, [], `the ${headfulRole} tab stayed hidden during the transfer`);
      assert.equal(during.visibilityState, 'hidden');
      assert.equal(endState, 'hidden');
      assert.ok(during.perSec <= THROTTLED_MAX_PER_SEC,
        `the ${headfulRole} tab's timers stayed throttled during the transfer: ${fmtRate(during)}`);
    } else {
      assert.equal(endState, 'visible');
    }

    await seeder.evaluate(() => client.destroy());
    await downloader.evaluate(() => client.destroy());
    await cover?.close();
    return { secs, mbps, timerBefore: timerCheck, timerDuring: during };
  } finally {
    await headlessCtx.close().catch(() => {});
    await headful.close();
  }
}

test('baseline: 32 MiB to a downloader tab in front (headful browser)', { timeout: TEST_TIMEOUT }, async () => {
  await transfer({ label: 'visible-downloader', headfulRole: 'downloader', hide: false });
});

test('32 MiB to a downloader tab hidden before client.add(magnet)', { timeout: TEST_TIMEOUT }, async () => {
  const r = await transfer({ label: 'hidden-downloader', headfulRole: 'downloader', hide: true });
  log(`HIDDEN TAB timer rate: setInterval(10 ms) fired ${fmtRate(r.timerBefore)} while hidden before the transfer, `
    + `${fmtRate(r.timerDuring)} during it`);
});

test('baseline: 32 MiB from a seeder tab in front (headful browser)', { timeout: TEST_TIMEOUT }, async () => {
  await transfer({ label: 'visible-seeder', headfulRole: 'seeder', hide: false });
});

test('32 MiB from a seeder tab hidden after seed(), to a downloader in front', { timeout: TEST_TIMEOUT }, async () => {
  const r = await transfer({ label: 'hidden-seeder', headfulRole: 'seeder', hide: true });
  log(`HIDDEN SEEDER timer rate: setInterval(10 ms) fired ${fmtRate(r.timerBefore)} while hidden before the transfer, `
    + `${fmtRate(r.timerDuring)} during it`);
});
