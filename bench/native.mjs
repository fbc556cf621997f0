// Native seeder benchmark (issue 8): how fast a browser tab downloads from the native peer
// (`seedtab seed`, Rust + the webrtc crate) compared with from another browser tab (seedtab's
// wasm client), the same file in the same run. Each run measures both, taking turns to go first;
// the downloader is always a fresh seedtab tab (its own browser context, pieces in memory as in
// bench.mjs section c), the clock runs from add(magnet) to torrent.done, and the SHA-256 of what
// arrived must equal the file's. One seeder at a time: the native seeder is stopped (SIGINT, so
// it announces `stopped`) before the tab seeder starts and the other way round, since both seed
// the same bytes under the same name and may well have the same info-hash.
// Run inside the test namespace after a build (scripts/build.sh and
// `cargo build --release --features native --bin seedtab`):
//   bash tests/browser/netns.sh up && ip netns exec seedtab-test node bench/native.mjs [--runs 3] [--mb 100]

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ROOT, launchBrowser, openHarness, runSeedtab, spawnSeedtab, startServer, startWebSeed, tempDir, withTimeout,
} from '../tests/browser/harness.mjs';

const MiB = 1 << 20;
const PAGE_JS = path.join(ROOT, 'bench', 'page.js');

const { values: opt } = parseArgs({
  options: {
    mb: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    bind: { type: 'string' },
    rewards: { type: 'string', default: 'on' },
    only: { type: 'string' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'native.json') },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(`usage: ip netns exec seedtab-test node bench/native.mjs [options]
  --mb N        file size in MiB (default 100)
  --runs N      runs; each measures native seeder -> tab and tab seeder -> tab, alternating which
                goes first; the summary gives medians (default 3)
  --bind IP     pass --bind IP to the native seeder (default: none, it listens on all interfaces)
  --rewards R   on (default) | off: reward receipts in the tabs (the native seeder has no key)
  --only K      native | tab: measure only that seeder (for profiling one side)
  --out FILE    results JSON (default bench/results/native.json)
  --verbose     show page consoles and the seeder's output
`);
  process.exit(0);
}
const SIZE = Math.round(Number(opt.mb) * MiB);
const RUNS = Math.max(1, Math.round(Number(opt.runs)));
if (!(SIZE > 0)) throw new Error(`--mb must be a positive number, not ${opt.mb}`);
if (!['on', 'off'].includes(opt.rewards)) throw new Error('--rewards: on | off');
const REWARDS = opt.rewards === 'on';
if (!opt.verbose) process.env.SEEDTAB_TEST_QUIET = '1';

const transferTimeoutMs = (bytes) => 60_000 + Math.ceil(bytes / 1e6) * 1000; // ~1 MB/s: stuck
const STEP_MS = 60_000;
const NAME = 'bench.bin';
const say = (line = '') => process.stdout.write(`${line}\n`);
const note = (line) => process.stderr.write(`  · ${line}\n`);
const mbps = (bytes, ms) => (bytes / 1e6) / (ms / 1000);
const fmt = (x, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—');
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const ev = (page, fn, arg, ms, what) => withTimeout(page.evaluate(fn, arg), ms, what);

/** utime+stime of a process in seconds (Linux USER_HZ 100), or null once it is gone. */
function cpuSecs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch { return null; }
}

const help = await runSeedtab(['seed', '--help'], { timeoutMs: 20_000, name: 'help' });
if (help.code !== 0) {
  process.stderr.write(`the seedtab binary has no working \`seed\` subcommand (exit ${help.code}): `
    + `cargo build --release --features native --bin seedtab\n${help.stderr}`);
  process.exit(1);
}

const tmp = tempDir('seedtab-native-bench-');
const file = path.join(tmp.dir, NAME);
let sha;
{
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4 * MiB);
  for (let off = 0; off < SIZE; off += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, SIZE - off));
    crypto.randomFillSync(part);
    fs.writeSync(fd, part);
    h.update(part);
  }
  fs.closeSync(fd);
  sha = h.digest('hex');
}

const server = await startServer();
// The tab seeder fetches the file from here (a playwright route would push 100 MiB through CDP).
const fileServer = await startWebSeed({ [`/${NAME}`]: fs.readFileSync(file) });
const browser = await launchBrowser();
const chromiumVersion = browser.version();

/** A tab of its own context with bench/page.js. */
async function newTab(name) {
  const context = await browser.newContext();
  try {
    await context.addInitScript({ path: PAGE_JS });
    const page = await openHarness(browser, server, { name, context });
    return { page, name, close: () => context.close().catch(() => {}) };
  } catch (err) {
    await context.close().catch(() => {});
    throw err;
  }
}

/** The downloader tab: add(magnet) → done; returns { ms, dataMs, sha, length }. */
async function download(label, magnet, infoHash) {
  const tab = await newTab(`${label}:dl`);
  try {
    await ev(tab.page, ({ tracker, ih }) => bench.waitSeeded(tracker, ih),
      { tracker: server.trackerUrl, ih: infoHash }, 20_000, `${label}: the tracker lists the seeder`);
    await ev(tab.page, ({ magnet, tracker, rewards }) => {
      window.result = null;
      window.client = new seedtab.Client({ trackers: [tracker], iceServers: [], storage: 'memory', rewards });
      let metadataAt = 0;
      const addAt = bench.now();
      window.torrent = client.add(magnet);
      torrent.on('metadata', () => { metadataAt = metadataAt || bench.now(); });
      torrent.done.then(
        () => { window.result = { ok: true, addAt, metadataAt, doneAt: bench.now() }; },
        (e) => { window.result = { ok: false, error: String((e && e.message) || e) }; },
      );
    }, { magnet, tracker: server.trackerUrl, rewards: REWARDS }, STEP_MS, `${label}: add`);
    const deadline = Date.now() + transferTimeoutMs(SIZE);
    let lastNote = Date.now();
    let r;
    for (;;) {
      r = await ev(tab.page, () => window.result, null, 10_000, `${label}: poll`);
      if (r) break;
      if (Date.now() > deadline || Date.now() - lastNote > 10_000) {
        const s = await ev(tab.page, () => { const s = torrent.stats(); return { progress: s.progress, peers: s.numPeers, speed: s.downloadSpeed }; },
          null, 10_000, 'progress');
        if (Date.now() > deadline) throw new Error(`${label}: not done after ${transferTimeoutMs(SIZE) / 1000} s: ${JSON.stringify(s)}`);
        note(`${label}: waiting: ${JSON.stringify(s)}`);
        lastNote = Date.now();
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    if (!r.ok) throw new Error(`${label}: ${r.error}`);
    const got = await ev(tab.page, async () => {
      const bytes = await torrent.files[0].bytes();
      return { sha: await bench.sha256Hex(bytes), length: bytes.length };
    }, null, STEP_MS, `${label}: read back`);
    if (got.sha !== sha || got.length !== SIZE) {
      throw new Error(`${label}: SHA-256 mismatch: ${got.length} bytes ${got.sha}, want ${SIZE} bytes ${sha}`);
    }
    await ev(tab.page, () => client.destroy(), null, 10_000, 'destroy').catch(() => {});
    return { ms: r.doneAt - r.addAt, dataMs: r.metadataAt ? r.doneAt - r.metadataAt : null, addAt: r.addAt, doneAt: r.doneAt };
  } finally {
    await tab.close();
  }
}

/** native seeder → tab. */
async function nativeRun(label) {
  const args = ['seed', file, '--tracker', server.trackerUrl, '--json', ...(opt.bind ? ['--bind', opt.bind] : [])];
  const seeder = spawnSeedtab(args, { name: `${label}:seed` });
  try {
    const t0 = performance.now();
    const ready = await seeder.waitFor((e) => e.event === 'ready', STEP_MS + SIZE / 1e5, `${label}: the seeder's ready line`);
    const hashMs = performance.now() - t0;
    const cpu0 = cpuSecs(seeder.proc.pid);
    const w0 = Date.now();
    const r = await download(label, ready.magnet, ready.infoHash);
    const cpu1 = cpuSecs(seeder.proc.pid);
    const seederCores = cpu0 != null && cpu1 != null ? (cpu1 - cpu0) / ((Date.now() - w0) / 1000) : null;
    seeder.signal('SIGINT');
    const { code } = await seeder.waitExit(15_000);
    if (code !== 0) note(`${label}: the native seeder exited ${code} on SIGINT (want 0)`);
    return { ...r, infoHash: ready.infoHash, pieces: ready.pieces, seederReadyMs: hashMs, seederCores };
  } finally {
    await seeder.stop(3000);
  }
}

/** tab seeder → tab (the file fetched into the seeder tab from a Node server on 127.0.0.1, seeded from memory). */
async function tabRun(label) {
  const S = await newTab(`${label}:seed`);
  try {
    const seeded = await ev(S.page, async ({ tracker, name, rewards, url }) => {
      const data = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const t0 = performance.now();
      window.client = new seedtab.Client({ trackers: [tracker], iceServers: [], storage: 'memory', rewards });
      window.torrent = await client.seed([{ name, data }]);
      return { magnet: torrent.magnetURI, infoHash: torrent.infoHash, seedMs: performance.now() - t0, length: data.length };
    }, { tracker: server.trackerUrl, name: NAME, rewards: REWARDS, url: `${fileServer.url}${NAME}` }, STEP_MS + SIZE / 1e5, `${label}: seed`);
    if (seeded.length !== SIZE) throw new Error(`${label}: the seeder tab got ${seeded.length} bytes of the file`);
    const r = await download(label, seeded.magnet, seeded.infoHash);
    await ev(S.page, () => client.destroy(), null, 10_000, 'destroy').catch(() => {});
    return { ...r, infoHash: seeded.infoHash, seederReadyMs: seeded.seedMs };
  } finally {
    await S.close();
  }
}

const results = { native: [], tab: [] };
let failed = false;
say(`native seeder vs tab seeder → one seedtab tab, ${fmt(SIZE / MiB, 0)} MiB, ${RUNS} run(s)`
  + `${opt.bind ? `, native --bind ${opt.bind}` : ''}, receipts ${opt.rewards}`);
try {
  for (let i = 0; i < RUNS; i += 1) {
    const order = i % 2 === 0 ? ['native', 'tab'] : ['tab', 'native'];
    for (const kind of order.filter((k) => !opt.only || k === opt.only)) {
      const label = `run ${i + 1} ${kind}`;
      try {
        const r = kind === 'native' ? await nativeRun(label) : await tabRun(label);
        r.mbps = mbps(SIZE, r.ms);
        r.dataMbps = r.dataMs ? mbps(SIZE, r.dataMs) : null;
        results[kind].push(r);
        say(`NATIVE-BENCH run ${i + 1} ${kind === 'native' ? 'native seeder → tab' : 'tab seeder → tab   '}: `
          + `${fmt(r.ms / 1000)} s, ${fmt(r.mbps)} MB/s (data phase ${fmt(r.dataMbps)} MB/s)`
          + `${r.seederCores != null ? `, native seeder CPU ${fmt(r.seederCores)} cores` : ''}`);
      } catch (err) {
        failed = true;
        results[kind].push({ error: String(err.message || err) });
        say(`NATIVE-BENCH run ${i + 1} ${kind}: FAILED: ${err.message || err}`);
      }
    }
  }
} finally {
  await browser.close();
  await server.stop();
  await fileServer.stop();
  tmp.cleanup();
}

const med = (kind, key) => median(results[kind].map((r) => r[key]));
const summary = {
  nativeMBps: med('native', 'mbps'),
  tabMBps: med('tab', 'mbps'),
  nativeDataMBps: med('native', 'dataMbps'),
  tabDataMBps: med('tab', 'dataMbps'),
  nativeSeederCores: med('native', 'seederCores'),
};
summary.ratio = summary.nativeMBps && summary.tabMBps ? summary.nativeMBps / summary.tabMBps : null;
say('');
say(`medians of ${RUNS}: native seeder → tab ${fmt(summary.nativeMBps)} MB/s (data phase ${fmt(summary.nativeDataMBps)}), `
  + `tab seeder → tab ${fmt(summary.tabMBps)} MB/s (data phase ${fmt(summary.tabDataMBps)}); native/tab ${fmt(summary.ratio)}`);
fs.mkdirSync(path.dirname(opt.out), { recursive: true });
fs.writeFileSync(opt.out, `${JSON.stringify({
  when: new Date().toISOString(), mib: SIZE / MiB, bytes: SIZE, runs: RUNS, bind: opt.bind || null,
  rewards: opt.rewards, chromium: chromiumVersion, summary, results,
}, null, 2)}\n`);
say(`written to ${path.relative(process.cwd(), opt.out)}`);
process.exit(failed ? 1 : 0);
