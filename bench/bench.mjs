// The seedtab benchmark (issue 4): in one run, inside the test network namespace,
//   (a) a bare JavaScript data channel between two tabs,
//   (b) WebTorrent 3.0.21 seeder tab -> downloader tab,
//   (c) seedtab seeder tab -> downloader tab,
//   (d) one seedtab seeder -> four downloader tabs,
//   (r) (c) again with reward receipts turned off in both tabs (issue 6: receipts on vs off),
//   start-up: magnet link handed to a fresh tab -> 1 MiB file complete, WebTorrent vs seedtab,
//   hashing 1 GiB of pieces in a page: WebCrypto SHA-1 vs seedtab's SHA-1 in wasm.
// Every transfer checks the SHA-256 of what arrived. See bench/README.md; run with bench/run.sh.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ROOT, launchBrowser, openHarness, startServer, withTimeout,
} from '../tests/browser/harness.mjs';

const MiB = 1 << 20;
const PAGE_JS = path.join(ROOT, 'bench', 'page.js');
const WT_JS = path.join(ROOT, 'node_modules', 'webtorrent', 'dist', 'webtorrent.min.js');
const WT_VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'webtorrent', 'package.json'), 'utf8')).version;
const SECTIONS = ['a', 'b', 'c', 'r', 'd', 'startup', 'hash'];

const { values: opt } = parseArgs({
  options: {
    mb: { type: 'string', default: '100' },
    runs: { type: 'string', default: '1' },
    only: { type: 'string', default: SECTIONS.join(',') },
    'startup-runs': { type: 'string', default: '3' },
    'startup-kib': { type: 'string', default: '1024' },
    'startup-idle-ms': { type: 'string', default: '1000' },
    'hash-mib': { type: 'string', default: '1024' },
    'hash-buffer-mib': { type: 'string', default: '64' },
    'piece-kib': { type: 'string', default: '256' },
    downloaders: { type: 'string', default: '4' },
    'wt-tracker': { type: 'string', default: 'seedtab' },
    store: { type: 'string', default: 'memory' },
    'wt-ice': { type: 'string', default: 'none' },
    'bare-from': { type: 'string', default: 'answerer' },
    'bare-msg-kib': { type: 'string', default: '64' },
    'bare-high-kib': { type: 'string', default: '8192' },
    'bare-low-kib': { type: 'string', default: '1024' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'latest.json') },
    verbose: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'wait-quiet': { type: 'string', default: '0' },
    www: { type: 'string', default: 'www/dist' },
    help: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  process.stdout.write(`usage: node bench/bench.mjs [options]   (normally: bash bench/run.sh [--no-build] [options])
  --mb N               transfer size in MiB for a-d (default 100)
  --runs N             repeat everything N times; the summary gives medians (default 1)
  --only LIST          sections among ${SECTIONS.join(',')} (default all)
  --startup-runs N     start-up measurements per client (default 3; median reported)
  --startup-kib N      start-up file size in KiB (default 1024)
  --startup-idle-ms N  the fresh tab makes its client N ms before add(), like a page waiting for
                       the user (default 1000); the clock starts at add(). 0: made just before.
  --hash-mib N         bytes hashed per method, MiB (default 1024)
  --hash-buffer-mib N  random buffer hashed over and over (default 64)
  --piece-kib N        piece length for hashing (default 256)
  --downloaders N      downloader tabs in (d) (default 4)
  --wt-tracker T       tracker for WebTorrent: seedtab (default) | bittorrent-tracker
  --store S            where both clients keep pieces: memory (default; seedtab storage: 'memory',
                       WebTorrent an in-memory chunk store) | default (each one's default:
                       seedtab 'auto' = OPFS through a worker, WebTorrent fsa-chunk-store = OPFS)
  --wt-ice I           WebTorrent's ICE servers: none (default, like seedtab) | default (its public
                       STUN servers, unreachable here)
  --bare-from SIDE     (a) sends from the answerer (default; as a seeder answering an offer) | offerer
  --bare-msg-kib N     (a) message size (default 64)
  --bare-high-kib N    (a) stop writing above this bufferedAmount (default 8192)
  --bare-low-kib N     (a) resume at this bufferedAmount (default 1024)
  --out FILE           summary JSON (default bench/results/latest.json)
  --wait-quiet S       before each section wait up to S s until other jobs use < 0.15 cores
                       (a shared machine; default 0: do not wait)
  --www DIR            the built web app to serve (default www/dist; another build for A/B tests)
  --verbose            show page consoles and server logs
  --profile            CPU-profile the seeder and downloader main threads in (b), (c) and start-up;
                       prints the top functions, writes .cpuprofile files next to --out
`);
  process.exit(0);
}

const num = (name) => {
  const v = Number(opt[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, not ${opt[name]}`);
  return v;
};
const SIZE = Math.round(num('mb') * MiB);
const RUNS = num('runs');
const ONLY = new Set(opt.only.split(',').map((s) => s.trim()).filter(Boolean));
for (const s of ONLY) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s}`);
const STARTUP_RUNS = num('startup-runs');
const STARTUP_SIZE = Math.round(num('startup-kib') * 1024);
const STARTUP_IDLE_MS = Number(opt['startup-idle-ms']);
if (!(STARTUP_IDLE_MS >= 0)) throw new Error('--startup-idle-ms must be >= 0');
const HASH_MIB = num('hash-mib');
const HASH_BUF_MIB = num('hash-buffer-mib');
const PIECE_KIB = num('piece-kib');
const DOWNLOADERS = num('downloaders');
if (!['seedtab', 'bittorrent-tracker'].includes(opt['wt-tracker'])) throw new Error('--wt-tracker: seedtab | bittorrent-tracker');
if (!['memory', 'default'].includes(opt.store)) throw new Error('--store: memory | default');
const MEMORY_STORE = opt.store === 'memory';
if (!['none', 'default'].includes(opt['wt-ice'])) throw new Error('--wt-ice: none | default');
const WT_DEFAULT_ICE = opt['wt-ice'] === 'default';
if (!['answerer', 'offerer'].includes(opt['bare-from'])) throw new Error('--bare-from: answerer | offerer');
const BARE_FROM = opt['bare-from'];
const BARE_MSG = Math.round(num('bare-msg-kib') * 1024);
const BARE_HIGH = Math.round(num('bare-high-kib') * 1024);
const BARE_LOW = Math.round(num('bare-low-kib') * 1024);
if (!opt.verbose) process.env.SEEDTAB_TEST_QUIET = '1';

// A transfer may take this long before the benchmark calls it stuck (generous: ~1 MB/s).
const transferTimeoutMs = (bytes) => 60_000 + Math.ceil(bytes / 1e6) * 1000;
const STEP_MS = 60_000; // any single set-up step (open a tab, seed, signal)

const say = (line = '') => process.stdout.write(`${line}\n`);
const note = (line) => process.stderr.write(`  · ${line}\n`);
const mbps = (bytes, ms) => (bytes / 1e6) / (ms / 1000);
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (x, digits = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');

let server;
let browser;
let wtTracker; // { url, stop }

/** page.evaluate with a deadline and a name for the error. */
function ev(page, fn, arg, ms, what) {
  return withTimeout(page.evaluate(fn, arg), ms, what);
}

/** A tab in a context of its own (no shared storage), with bench/page.js and the harness loaded. */
async function newTab(name, { webtorrent = false } = {}) {
  const context = await browser.newContext();
  try {
    await context.addInitScript({ path: PAGE_JS });
    if (webtorrent) {
      await context.route('**/vendor/webtorrent.min.js',
        (route) => route.fulfill({ path: WT_JS, contentType: 'text/javascript' }));
    }
    const page = await openHarness(browser, server, { name, context });
    if (webtorrent) await ev(page, () => bench.loadWebTorrent(), null, STEP_MS, `${name}: load WebTorrent`);
    return { page, context, name, close: () => context.close().catch(() => {}) };
  } catch (err) {
    await context.close().catch(() => {});
    throw err;
  }
}

// --- CPU accounting: is a transfer limited by the CPU? ----------------------------------------

const CLK_TCK = 100; // Linux USER_HZ (getconf CLK_TCK)

/** utime+stime (seconds) of every descendant of this process, by kind, and the machine's totals. */
function cpuSnapshot() {
  const parent = new Map();
  const secs = new Map();
  const kind = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(rest[1]));
      secs.set(Number(d), (Number(rest[11]) + Number(rest[12])) / CLK_TCK);
      kind.set(Number(d), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    } catch { /* gone */ }
  }
  const mine = (pid) => {
    for (let p = pid, i = 0; p > 1 && i < 64; p = parent.get(p), i += 1) if (p === process.pid) return true;
    return false;
  };
  const out = { chromium: 0, seedtab: 0, node: secs.get(process.pid) || 0 };
  for (const [pid, s] of secs) {
    if (pid === process.pid || !mine(pid)) continue;
    if (/^seedtab/.test(kind.get(pid))) out.seedtab += s; else out.chromium += s;
  }
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  out.machineBusy = (cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7]) / CLK_TCK;
  out.machineAll = cpu.slice(0, 8).reduce((a, b) => a + b, 0) / CLK_TCK;
  out.at = Date.now();
  return out;
}

/** CPU seconds of each thread of process `pid`, by thread name (threads of one name summed). */
function threadTimes(pid) {
  const out = {};
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        // The main thread (JavaScript, wasm, DOM events) is the one whose id is the process id.
        const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] || 0) + (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return out;
}

/** Our Chromium processes: pid -> type (browser, renderer, gpu-process, utility sub-type). */
function chromiumProcesses() {
  const out = new Map();
  const snap = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      snap.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  for (const [pid] of snap) {
    let mine = false;
    for (let p = snap.get(pid), i = 0; p > 1 && i < 64; p = snap.get(p), i += 1) if (p === process.pid) { mine = true; break; }
    if (!mine) continue;
    let cmd = '';
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (!cmd.includes('chromium')) continue;
    const type = /--type=([\w-]+)/.exec(cmd)?.[1] || 'browser';
    const sub = /--utility-sub-type=([\w.]+)/.exec(cmd)?.[1];
    out.set(pid, sub ? sub.replace(/\.mojom\./, ' ').split(' ').pop() : type);
  }
  return out;
}

/** Per-thread CPU of our Chromium processes (for `threadUse`). */
function threadSnapshot() {
  const procs = chromiumProcesses();
  const out = { at: Date.now(), procs: {} };
  for (const [pid, type] of procs) out.procs[pid] = { type, threads: threadTimes(pid) };
  return out;
}

/**
 * Cores used per process and thread between two thread snapshots; `names` maps renderer pids to
 * tab names. Returns [{ proc, cores, threads: [[name, cores], ...] }], busiest first.
 */
function threadUse(a, b, names = {}) {
  const wall = (b.at - a.at) / 1000;
  const out = [];
  for (const [pid, pb] of Object.entries(b.procs)) {
    const pa = a.procs[pid];
    if (!pa) continue;
    const threads = Object.entries(pb.threads)
      .map(([name, t]) => [name, (t - (pa.threads[name] || 0)) / wall])
      .filter(([, c]) => c >= 0.005)
      .sort((x, y) => y[1] - x[1]);
    const cores = threads.reduce((n, [, c]) => n + c, 0);
    if (cores < 0.02) continue;
    out.push({ proc: names[pid] || (pb.type === 'renderer' ? `renderer ${pid}` : pb.type), cores, threads });
  }
  return out.sort((x, y) => y.cores - x.cores);
}
const threadText = (use) => use.map((p) => `${p.proc} ${fmt(p.cores)} (${p.threads.slice(0, 3).map(([n, c]) => `${n} ${fmt(c)}`).join(', ')})`).join('; ');

/**
 * Which renderer process runs `tab`: the one whose main thread burns the CPU the page burns.
 * Only for labelling the per-thread CPU figures.
 */
async function rendererPid(tab) {
  const main = () => {
    const out = {};
    for (const [pid, type] of chromiumProcesses()) if (type === 'renderer') out[pid] = threadTimes(pid).main || 0;
    return out;
  };
  await new Promise((res) => setTimeout(res, 300)); // let freshly opened tabs settle
  const before = main();
  await ev(tab.page, () => { const t = performance.now(); while (performance.now() - t < 500) { /* burn */ } }, null, 10_000, 'burn');
  const after = main();
  const deltas = Object.entries(after).map(([pid, t]) => [pid, t - (before[pid] || 0)]).sort((x, y) => y[1] - x[1]);
  if (opt.verbose) note(`${tab.name}: renderer main-thread CPU during a 500 ms burn: ${JSON.stringify(deltas)}`);
  const [best, second] = deltas;
  return best && best[1] > 0.1 && (!second || best[1] > 1.5 * second[1]) ? best[0] : null;
}

/**
 * Cores used by our Chromium between two snapshots, how busy the whole machine was, and the
 * cores used by everything that is not this benchmark (other jobs: the noise).
 */
function cpuUse(a, b) {
  const wall = (b.at - a.at) / 1000;
  const ours = (b.chromium - a.chromium) + (b.seedtab - a.seedtab) + (b.node - a.node);
  return {
    chromiumCores: (b.chromium - a.chromium) / wall,
    machineBusyPct: (100 * (b.machineBusy - a.machineBusy)) / Math.max(1e-9, b.machineAll - a.machineAll),
    otherCores: Math.max(0, (b.machineBusy - a.machineBusy) - ours) / wall,
  };
}
const cpuText = (c) => (c
  ? `CPU: our Chromium ${fmt(c.chromiumCores)} cores, machine ${fmt(c.machineBusyPct, 0)}% busy (others ${fmt(c.otherCores)} cores)`
  : '');

/** With --wait-quiet S: wait up to S seconds for other jobs to leave the CPU (< 0.15 cores). */
async function waitQuiet(what) {
  const limitMs = Number(opt['wait-quiet']) * 1000;
  if (!(limitMs > 0)) return null;
  const t0 = Date.now();
  let use;
  for (;;) {
    const a = cpuSnapshot();
    await new Promise((res) => setTimeout(res, 2000));
    use = cpuUse(a, cpuSnapshot());
    if (use.otherCores < 0.15) break;
    if (Date.now() - t0 > limitMs) {
      note(`${what}: other jobs still use ${fmt(use.otherCores)} cores after ${limitMs / 1000} s: measuring anyway`);
      break;
    }
  }
  const waited = (Date.now() - t0) / 1000;
  if (waited > 3) note(`${what}: waited ${waited.toFixed(0)} s for a quiet machine`);
  return use.otherCores;
}

// --- (a) a bare data channel between two tabs ------------------------------------------------

async function bareChannel(size) {
  const O = await newTab('a:offerer');
  const N = await newTab('a:answerer');
  // BitTorrent over WebRTC sends pieces from the answerer (the seeder, which answers the
  // newcomer's offer) to the offerer; --bare-from offerer sends the other way.
  const [S, R] = BARE_FROM === 'answerer' ? [N, O] : [O, N];
  try {
    const { sha } = await ev(S.page, async (n) => {
      window.data = bench.randomBytes(n);
      return { sha: await bench.sha256Hex(window.data) };
    }, size, STEP_MS, 'a: generate');
    // Whichever side receives starts receiving as soon as it has the channel: nothing is missed.
    const offer = await ev(O.page, async ({ n, receiving }) => {
      window.pc = new RTCPeerConnection({ iceServers: [] });
      window.dc = pc.createDataChannel('bench', { ordered: true });
      if (receiving) window.recvP = bench.rtc.receive(dc, n);
      window.t0 = bench.now();
      dc.addEventListener('open', () => { window.openAt = bench.now(); });
      await pc.setLocalDescription(await pc.createOffer());
      return bench.rtc.gathered(pc);
    }, { n: size, receiving: R === O }, STEP_MS, 'a: offer');
    const answer = await ev(N.page, async ({ offer, n, receiving }) => {
      window.pc = new RTCPeerConnection({ iceServers: [] });
      let received;
      window.recvP = new Promise((res) => { received = res; });
      window.dcP = new Promise((res) => {
        pc.ondatachannel = (e) => {
          window.dc = e.channel;
          if (receiving) received(bench.rtc.receive(e.channel, n));
          res(e.channel);
        };
      });
      await pc.setRemoteDescription(offer);
      await pc.setLocalDescription(await pc.createAnswer());
      return bench.rtc.gathered(pc);
    }, { offer, n: size, receiving: R === N }, STEP_MS, 'a: answer');
    await ev(O.page, (answer) => pc.setRemoteDescription(answer), answer, STEP_MS, 'a: set answer');
    await ev(R.page, () => { window.recvDone = (async () => { const r = await window.recvP; return { firstAt: r.firstAt, doneAt: r.doneAt, sha: await bench.sha256Hex(r.data) }; })(); }, null, STEP_MS, 'a: receiver');
    const names = {};
    for (const [tab, role] of [[S, 'sender'], [R, 'receiver']]) {
      const pid = await rendererPid(tab);
      if (pid) names[pid] = role;
    }
    const cpu0 = cpuSnapshot();
    const threads0 = threadSnapshot();
    const sent = await ev(S.page, async ({ msg, high, low }) => {
      const dc = window.dc || await window.dcP;
      await bench.rtc.open(dc);
      const openAt = bench.now();
      await bench.rtc.send(dc, window.data, msg, high, low);
      return { openAt, queuedAt: bench.now() };
    }, { msg: BARE_MSG, high: BARE_HIGH, low: BARE_LOW }, transferTimeoutMs(size), 'a: send');
    const got = await ev(R.page, () => window.recvDone, null, transferTimeoutMs(size), 'a: receive');
    const cpu = cpuUse(cpu0, cpuSnapshot());
    cpu.threads = threadUse(threads0, threadSnapshot(), names);
    const connectMs = await ev(O.page, () => window.openAt - window.t0, null, STEP_MS, 'a: connect time');
    if (got.sha !== sha) throw new Error(`a: SHA-256 mismatch: sent ${sha}, received ${got.sha}`);
    const ms = got.doneAt - sent.openAt;
    return {
      bytes: size, ms, mbps: mbps(size, ms), from: BARE_FROM, messageBytes: BARE_MSG, highWater: BARE_HIGH,
      firstByteMs: got.firstAt - sent.openAt, queuedMs: sent.queuedAt - sent.openAt,
      connectMs, sha256Ok: true, cpu,
    };
  } finally {
    await O.close();
    await N.close();
  }
}

// --- seeding and downloading, WebTorrent or seedtab ------------------------------------------

function trackerFor(kind) {
  return kind === 'webtorrent' ? wtTracker.url : server.trackerUrl;
}

/** Seeds `size` random bytes in `tab`; returns {magnet, infoHash, sha, seedMs, announcedMs}. */
async function seed(tab, kind, size, { debug = false } = {}) {
  const tracker = trackerFor(kind);
  const seeded = await ev(tab.page, async ({ kind, n, tracker, memStore, defaultIce, debug }) => {
    const data = bench.randomBytes(n);
    const sha = await bench.sha256Hex(data);
    const t0 = performance.now();
    let magnet; let infoHash; let pieceLength;
    if (kind === 'webtorrent') {
      window.client = new WebTorrent(bench.webTorrentOptions({ defaultIce }));
      client.on('error', (e) => console.error(`WebTorrent client error: ${e}`));
      const opts = { announce: [tracker], name: 'random.bin' };
      if (memStore) Object.assign(opts, { store: bench.MemStore, storeCacheSlots: 0 });
      const file = new File([data], 'random.bin');
      window.torrent = await new Promise((res) => client.seed(file, opts, res));
      ({ magnetURI: magnet, infoHash, pieceLength } = torrent);
    } else {
      window.client = new seedtab.Client({ trackers: [tracker], iceServers: [], debug, storage: memStore ? 'memory' : 'auto', rewards: kind !== 'seedtab-off' });
      window.torrent = await client.seed([{ name: 'random.bin', data }]);
      ({ magnetURI: magnet, infoHash } = torrent);
      pieceLength = null;
    }
    return { magnet, infoHash, sha, seedMs: performance.now() - t0, pieceLength };
  }, { kind, n: size, tracker, memStore: MEMORY_STORE, defaultIce: WT_DEFAULT_ICE, debug }, STEP_MS + size / 1e5, `${tab.name}: seed`);
  seeded.announcedMs = await ev(tab.page, ({ tracker, ih }) => bench.waitSeeded(tracker, ih),
    { tracker, ih: seeded.infoHash }, 20_000, `${tab.name}: wait until the tracker lists the seeder`);
  return seeded;
}

/**
 * In a downloader tab: make a client and add the magnet link. The clock starts at add(); with
 * `idleMs` the client is made that long before (a page waiting for the user), otherwise just
 * before. Sets window.result when done (or failed); returns the moment of add().
 */
async function startDownload(tab, kind, magnet, { idleMs = 0, debug = false } = {}) {
  return ev(tab.page, async ({ kind, magnet, tracker, memStore, idleMs, defaultIce, debug }) => {
    window.result = null;
    let metadataAt = 0;
    const fail = (e) => { window.result = window.result || { ok: false, error: String((e && e.message) || e) }; };
    let addAt;
    if (kind === 'webtorrent') {
      window.client = new WebTorrent(bench.webTorrentOptions({ defaultIce }));
      client.on('error', fail);
      const opts = { announce: [tracker] };
      if (memStore) Object.assign(opts, { store: bench.MemStore, storeCacheSlots: 0 });
      if (idleMs) await new Promise((res) => setTimeout(res, idleMs));
      addAt = bench.now();
      window.torrent = client.add(magnet, opts);
      torrent.on('metadata', () => { metadataAt = metadataAt || bench.now(); });
      torrent.on('done', () => { window.result = { ok: true, addAt, metadataAt, doneAt: bench.now() }; });
      torrent.on('error', fail);
    } else {
      window.client = new seedtab.Client({ trackers: [tracker], iceServers: [], debug, storage: memStore ? 'memory' : 'auto', rewards: kind !== 'seedtab-off' });
      if (idleMs) await new Promise((res) => setTimeout(res, idleMs));
      addAt = bench.now();
      window.torrent = client.add(magnet);
      torrent.on('metadata', () => { metadataAt = metadataAt || bench.now(); });
      torrent.done.then(
        () => { window.result = { ok: true, addAt, metadataAt, doneAt: bench.now() }; },
        fail,
      );
    }
    window.addAt = addAt;
    return addAt;
  }, { kind, magnet, tracker: trackerFor(kind), memStore: MEMORY_STORE, idleMs, defaultIce: WT_DEFAULT_ICE, debug },
  STEP_MS + idleMs, `${tab.name}: add`);
}

function progressOf(kind) {
  return kind === 'webtorrent'
    ? () => ({ progress: torrent.progress, peers: torrent.numPeers, speed: torrent.downloadSpeed })
    : () => { const s = torrent.stats(); return { progress: s.progress, peers: s.numPeers, speed: s.downloadSpeed }; };
}

/** Polls every downloader until all are done; fails with their progress at the deadline. */
async function waitDone(tabs, kind, deadlineMs, label) {
  const deadline = Date.now() + deadlineMs;
  const results = new Array(tabs.length).fill(null);
  let lastReport = Date.now();
  for (;;) {
    for (let i = 0; i < tabs.length; i += 1) {
      if (results[i]) continue;
      results[i] = await ev(tabs[i].page, () => window.result, null, 10_000, `${tabs[i].name}: poll`);
      if (results[i] && !results[i].ok) throw new Error(`${tabs[i].name}: ${results[i].error}`);
    }
    if (results.every(Boolean)) return results;
    if (Date.now() > deadline || Date.now() - lastReport > 10_000) {
      const states = [];
      for (let i = 0; i < tabs.length; i += 1) {
        if (!results[i]) states.push(`${tabs[i].name} ${JSON.stringify(await ev(tabs[i].page, progressOf(kind), null, 10_000, 'progress'))}`);
      }
      if (Date.now() > deadline) throw new Error(`${label}: not done after ${deadlineMs / 1000} s: ${states.join('; ')}`);
      note(`${label}: waiting: ${states.join('; ')}`);
      lastReport = Date.now();
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** SHA-256 of the downloaded file in `tab`. */
function downloadedSha(tab, kind) {
  return ev(tab.page, async (kind) => {
    const f = torrent.files[0];
    const bytes = kind === 'webtorrent' ? new Uint8Array(await f.arrayBuffer()) : await f.bytes();
    return { sha: await bench.sha256Hex(bytes), length: bytes.length };
  }, kind, STEP_MS, `${tab.name}: read the file back`);
}

/** With receipts on: what the receipts `tab` holds for this torrent attest. */
function tabReceipts(tab, infoHash) {
  return ev(tab.page, async (infoHash) => {
    const held = (await client.receipts()).filter((r) => r.infoHash === infoHash);
    return { sessions: held.length, seq: held.reduce((n, r) => n + r.seq, 0), bytes: held.reduce((n, r) => n + r.bytes, 0) };
  }, infoHash, 10_000, `${tab.name}: receipts`);
}

/**
 * The receipts every tab holds, summed: every downloaded byte is attested once, to whoever sent
 * it (the seeder, or another downloader in (d)). Waits up to 5 s for the last ones (signed at
 * completion, kept asynchronously). Proves receipts flowed.
 */
async function allReceipts(tabs, infoHash, want) {
  const until = Date.now() + 5000;
  for (;;) {
    const each = await Promise.all(tabs.map((t) => tabReceipts(t, infoHash)));
    const sum = each.reduce((a, r) => ({ sessions: a.sessions + r.sessions, seq: a.seq + r.seq, bytes: a.bytes + r.bytes }),
      { sessions: 0, seq: 0, bytes: 0 });
    if (sum.bytes >= want || Date.now() > until) return { ...sum, seeder: each[0].bytes };
    await new Promise((res) => setTimeout(res, 100));
  }
}

function seederUploaded(tab, kind) {
  return ev(tab.page, (kind) => (kind === 'webtorrent' ? torrent.uploaded : torrent.stats().uploaded),
    kind, 10_000, `${tab.name}: stats`);
}

async function destroyClient(tab) {
  await ev(tab.page, () => { try { window.client && client.destroy(); } catch { /* closing anyway */ } },
    null, 10_000, `${tab.name}: destroy`).catch(() => {});
}

/** Starts the V8 sampling profiler of `tab` (with --profile); returns a stop function. */
async function startProfile(tab) {
  if (!opt.profile) return async () => null;
  const cdp = await tab.context.newCDPSession(tab.page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  return async (label) => {
    const { profile } = await cdp.send('Profiler.stop');
    await cdp.detach().catch(() => {});
    const file = path.join(path.dirname(opt.out), `profile-${label}.cpuprofile`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(profile));
    const top = topFunctions(profile);
    note(`profile ${label} (${path.relative(process.cwd(), file)}): ${top.map((t) => `${t.name} ${t.pct.toFixed(1)}%`).join(', ')}`);
    return top;
  };
}

/** Self time per function of a V8 CPU profile, largest first (idle and GC included). */
function topFunctions(profile, n = 14) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const dt = profile.timeDeltas || [];
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const f = node.callFrame;
    const where = f.url ? f.url.split('/').pop().replace(/\?.*$/, '') : '';
    const name = `${f.functionName || '(anonymous)'}${where ? ` [${where}]` : ''}`;
    const d = dt[i] || 0;
    total += d;
    self.set(name, (self.get(name) || 0) + d);
  });
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, pct: (100 * us) / Math.max(1, total) }));
}

/** One seeder tab, `n` downloader tabs (each its own context), `size` bytes. */
async function swarmTransfer(kind, size, n, label) {
  const tabs = [];
  try {
    const webtorrent = kind === 'webtorrent';
    const S = await newTab(`${label}:seeder`, { webtorrent });
    tabs.push(S);
    const seeded = await seed(S, kind, size);
    const D = [];
    for (let i = 0; i < n; i += 1) {
      const tab = await newTab(`${label}:dl${n > 1 ? i + 1 : ''}`, { webtorrent });
      tabs.push(tab);
      D.push(tab);
    }
    const profiling = n === 1 ? [await startProfile(S), await startProfile(D[0])] : [];
    const names = {};
    for (const tab of [S, ...D]) {
      const pid = await rendererPid(tab);
      if (pid) names[pid] = tab.name.split(':').pop();
    }
    const cpu0 = cpuSnapshot();
    const threads0 = threadSnapshot();
    await Promise.all(D.map((tab) => startDownload(tab, kind, seeded.magnet)));
    const results = await waitDone(D, kind, transferTimeoutMs(size * n), label);
    const cpu = cpuUse(cpu0, cpuSnapshot());
    cpu.threads = threadUse(threads0, threadSnapshot(), names);
    const profiles = profiling.length
      ? { seeder: await profiling[0](`${label}-seeder`), downloader: await profiling[1](`${label}-downloader`) }
      : undefined;
    for (const tab of D) {
      const got = await downloadedSha(tab, kind);
      if (got.length !== size || got.sha !== seeded.sha) {
        throw new Error(`${tab.name}: wrong bytes: ${got.length} bytes, SHA-256 ${got.sha}, seeded ${seeded.sha}`);
      }
    }
    const uploaded = await seederUploaded(S, kind);
    const receipts = kind === 'seedtab' ? await allReceipts(tabs, seeded.infoHash, size * n) : null;
    if (receipts && receipts.bytes !== size * n) {
      throw new Error(`${label}: receipts attest ${receipts.bytes} bytes, not ${size * n}`);
    }
    for (const tab of tabs) await destroyClient(tab);
    const per = results.map((r) => ({
      ms: r.doneAt - r.addAt,
      mbps: mbps(size, r.doneAt - r.addAt),
      metadataMs: r.metadataAt ? r.metadataAt - r.addAt : null,
      dataMbps: r.metadataAt ? mbps(size, r.doneAt - r.metadataAt) : null,
    }));
    const first = Math.min(...results.map((r) => r.addAt));
    const last = Math.max(...results.map((r) => r.doneAt));
    return {
      bytes: size,
      downloaders: n,
      seedMs: seeded.seedMs,
      announcedMs: seeded.announcedMs,
      pieceLength: seeded.pieceLength,
      seederUploaded: uploaded,
      receipts,
      sha256Ok: true,
      per,
      ms: last - first,
      mbps: mbps(size * n, last - first),
      dataMbps: n === 1 ? per[0].dataMbps : null,
      cpu,
      profiles,
    };
  } finally {
    for (const tab of tabs) await tab.close();
  }
}

// --- start-up --------------------------------------------------------------------------------

async function startup(kind, size, label) {
  const tabs = [];
  try {
    const webtorrent = kind === 'webtorrent';
    const S = await newTab(`${label}:seeder`, { webtorrent });
    tabs.push(S);
    const seeded = await seed(S, kind, size, { debug: !webtorrent });
    const D = await newTab(`${label}:fresh`, { webtorrent });
    tabs.push(D);
    const stopS = await startProfile(S);
    const stopD = await startProfile(D);
    await startDownload(D, kind, seeded.magnet, { idleMs: STARTUP_IDLE_MS, debug: !webtorrent });
    const [r] = await waitDone([D], kind, 60_000, label);
    // seedtab's start-up timeline (Client option debug: true), both tabs on one clock.
    const timeline = [];
    for (const [tab, who] of [[S, 'seeder'], [D, 'fresh']]) {
      const lines = await ev(tab.page, () => bench.trace, null, 10_000, 'trace');
      for (const l of lines) if (l.at >= r.addAt) timeline.push({ at: l.at, who, text: l.text.replace(/^seedtab \+\d+ ms \w+: /, '') });
    }
    timeline.sort((x, y) => x.at - y.at);
    await stopS(`${label}-seeder`);
    await stopD(`${label}-fresh`);
    const got = await downloadedSha(D, kind);
    if (got.length !== size || got.sha !== seeded.sha) throw new Error(`${label}: wrong bytes`);
    for (const tab of tabs) await destroyClient(tab);
    return {
      ms: r.doneAt - r.addAt,
      metadataMs: r.metadataAt ? r.metadataAt - r.addAt : null,
      sha256Ok: true,
      timeline: webtorrent ? undefined : timeline.map((e) => ({ ms: Math.round(e.at - r.addAt), who: e.who, what: e.text })),
    };
  } finally {
    for (const tab of tabs) await tab.close();
  }
}

// --- hashing ---------------------------------------------------------------------------------

async function hashing() {
  const tab = await newTab('hash');
  try {
    const cpu0 = cpuSnapshot();
    const out = await ev(tab.page, async ({ totalMiB, bufMiB, pieceKiB }) => {
      const M = 1 << 20;
      const buf = bench.randomBytes(bufMiB * M);
      const pl = pieceKiB * 1024;
      const nPieces = Math.ceil(buf.length / pl);
      const iters = Math.max(1, Math.round(totalMiB / bufMiB));
      const mibps = (ms) => (iters * bufMiB) / (ms / 1000);

      async function webcrypto(inFlight) {
        const out = new Uint8Array(nPieces * 20);
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < nPieces; i = next++) {
            const d = await crypto.subtle.digest('SHA-1', buf.subarray(i * pl, Math.min(buf.length, (i + 1) * pl)));
            out.set(new Uint8Array(d), i * 20);
          }
        };
        await Promise.all(Array.from({ length: inFlight }, worker));
        return out;
      }
      const streamed = (chunk) => {
        const h = new seedtab.PieceHasher(pl);
        for (let off = 0; off < buf.length; off += chunk) h.update(buf.subarray(off, off + chunk));
        const out = h.finish();
        h.free();
        return out;
      };
      const methods = [
        ['webcrypto x1', () => webcrypto(1)],
        ['webcrypto x4', () => webcrypto(4)],
        ['webcrypto x8', () => webcrypto(8)],
        ['webcrypto x32', () => webcrypto(32)],
        ['seedtab creation (sha1PiecesWebCrypto)', () => seedtab.sha1PiecesWebCrypto(buf, pl)],
        ['seedtab sha1Pieces (SIMD, 64 MiB calls)', () => seedtab.sha1Pieces(buf, pl)],
        ['seedtab PieceHasher (SIMD, 1 MiB updates)', () => streamed(M)],
        ['seedtab sha1PiecesScalar (sha1 crate)', () => seedtab.sha1PiecesScalar(buf, pl)],
      ];
      // Reference digests, and a warm-up of every method (wasm tiers up, WebCrypto's threads start).
      const want = bench.hex(await webcrypto(8));
      const results = {};
      for (const [name, fn] of methods) {
        const got = bench.hex(await fn());
        if (got !== want) throw new Error(`${name}: digests differ from WebCrypto's`);
      }
      // Rounds, each method in turn, so a burst of load elsewhere hits every method alike.
      const ROUNDS = Math.min(4, iters);
      const ms = Object.fromEntries(methods.map(([name]) => [name, 0]));
      const rounds = Object.fromEntries(methods.map(([name]) => [name, []]));
      let done = 0;
      for (let r = 0; r < ROUNDS; r += 1) {
        const n = Math.round((iters * (r + 1)) / ROUNDS) - done;
        done += n;
        for (const [name, fn] of methods) {
          const t0 = performance.now();
          for (let i = 0; i < n; i += 1) await fn();
          const dt = performance.now() - t0;
          ms[name] += dt;
          rounds[name].push((n * bufMiB) / (dt / 1000));
        }
      }
      for (const [name] of methods) results[name] = mibps(ms[name]);
      return { mib: iters * bufMiB, pieceLength: pl, results, rounds, digestsOk: true };
    }, { totalMiB: HASH_MIB, bufMiB: HASH_BUF_MIB, pieceKiB: PIECE_KIB }, 300_000, 'hashing');
    out.cpu = cpuUse(cpu0, cpuSnapshot());
    return out;
  } finally {
    await tab.close();
  }
}

// --- one run ---------------------------------------------------------------------------------

async function section(run, key, title, fn) {
  if (!ONLY.has(key)) return;
  await waitQuiet(title);
  const t0 = Date.now();
  process.stderr.write(`run ${run.index}: ${title} ...\n`);
  try {
    run[key] = await fn();
  } catch (err) {
    run[key] = { error: String((err && err.stack) || err) };
    process.stderr.write(`run ${run.index}: ${title} FAILED: ${run[key].error}\n`);
  }
  process.stderr.write(`run ${run.index}: ${title} took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

async function oneRun(index) {
  const run = { index };
  const mib = SIZE / MiB;
  await section(run, 'a', `(a) bare data channel, ${mib} MiB`, () => bareChannel(SIZE));
  await section(run, 'b', `(b) WebTorrent ${WT_VERSION}, ${mib} MiB`, () => swarmTransfer('webtorrent', SIZE, 1, 'b'));
  // (c) and (r) take turns going first, so neither always runs on a warmer or busier machine.
  const c = () => section(run, 'c', `(c) seedtab, ${mib} MiB`, () => swarmTransfer('seedtab', SIZE, 1, 'c'));
  const r = () => section(run, 'r', `(r) seedtab, receipts off, ${mib} MiB`, () => swarmTransfer('seedtab-off', SIZE, 1, 'r'));
  if (index % 2) { await c(); await r(); } else { await r(); await c(); }
  await section(run, 'd', `(d) seedtab 1 -> ${DOWNLOADERS}, ${mib} MiB`, () => swarmTransfer('seedtab', SIZE, DOWNLOADERS, 'd'));
  await section(run, 'startup', `start-up x${STARTUP_RUNS}`, async () => {
    const out = { webtorrent: [], seedtab: [] };
    for (let i = 0; i < STARTUP_RUNS; i += 1) {
      for (const kind of ['webtorrent', 'seedtab']) {
        out[kind].push(await startup(kind, STARTUP_SIZE, `startup-${kind}-${i + 1}`));
      }
    }
    return {
      ...out,
      webtorrentMs: median(out.webtorrent.map((r) => r.ms)),
      seedtabMs: median(out.seedtab.map((r) => r.ms)),
    };
  });
  await section(run, 'hash', `hashing ${HASH_MIB} MiB`, hashing);
  run.figures = figures(run);
  return run;
}

/** The headline numbers of one run (null where a section did not run or failed). */
function figures(run) {
  const ok = (k) => run[k] && !run[k].error;
  const f = {
    a_bare_mbps: ok('a') ? run.a.mbps : null,
    b_webtorrent_mbps: ok('b') ? run.b.mbps : null,
    c_seedtab_mbps: ok('c') ? run.c.mbps : null,
    r_seedtab_receipts_off_mbps: ok('r') ? run.r.mbps : null,
    c_receipts_signed: ok('c') ? run.c.receipts : null,
    d_aggregate_mbps: ok('d') ? run.d.mbps : null,
    d_per_downloader_mbps: ok('d') ? median(run.d.per.map((p) => p.mbps)) : null,
    b_webtorrent_data_mbps: ok('b') ? run.b.dataMbps : null,
    c_seedtab_data_mbps: ok('c') ? run.c.dataMbps : null,
    startup_webtorrent_s: ok('startup') ? run.startup.webtorrentMs / 1000 : null,
    startup_seedtab_s: ok('startup') ? run.startup.seedtabMs / 1000 : null,
    hash_webcrypto_mibps: null,
    hash_webcrypto_best: null,
    hash_seedtab_mibps: null,
    hash_seedtab_wasm_mibps: null,
    hash_seedtab_oneshot_mibps: null,
    hash_seedtab_scalar_mibps: null,
  };
  if (ok('hash')) {
    const r = run.hash.results;
    const wc = Object.entries(r).filter(([k]) => k.startsWith('webcrypto')).sort((x, y) => y[1] - x[1])[0];
    f.hash_webcrypto_mibps = wc[1];
    f.hash_webcrypto_best = wc[0];
    // The figure: the hashing torrent creation does (the core driving WebCrypto, 16 digests in
    // flight, straight from the JS buffer); the wasm SHA-1 is kept for comparison.
    f.hash_seedtab_mibps = r['seedtab creation (sha1PiecesWebCrypto)'];
    f.hash_seedtab_wasm_mibps = r['seedtab PieceHasher (SIMD, 1 MiB updates)'];
    f.hash_seedtab_oneshot_mibps = r['seedtab sha1Pieces (SIMD, 64 MiB calls)'];
    f.hash_seedtab_scalar_mibps = r['seedtab sha1PiecesScalar (sha1 crate)'];
  }
  return withRatios(f);
}

function withRatios(f) {
  const div = (x, y) => (typeof x === 'number' && typeof y === 'number' && y > 0 ? x / y : null);
  return {
    ...f,
    ratio_c_over_b: div(f.c_seedtab_mbps, f.b_webtorrent_mbps),
    ratio_c_over_a: div(f.c_seedtab_mbps, f.a_bare_mbps),
    ratio_receipts_on_over_off: div(f.c_seedtab_mbps, f.r_seedtab_receipts_off_mbps),
    ratio_startup_seedtab_over_webtorrent: div(f.startup_seedtab_s, f.startup_webtorrent_s),
    ratio_hash_seedtab_over_webcrypto: div(f.hash_seedtab_mibps, f.hash_webcrypto_mibps),
  };
}

// --- output ----------------------------------------------------------------------------------

function printRun(run) {
  const mib = SIZE / MiB;
  say('');
  say(`== run ${run.index} ==`);
  const row = (k, what, value, extra = '') => say(`  ${k.padEnd(8)} ${what.padEnd(44)} ${value.padStart(14)}  ${extra}`);
  const err = (k, what) => row(k, what, 'FAILED', run[k].error.split('\n')[0]);
  const threads = (cpu) => { if (cpu && cpu.threads && cpu.threads.length) say(`  ${''.padEnd(8)}   cores by process (threads): ${threadText(cpu.threads)}`); };
  if (run.a) {
    if (run.a.error) err('a', 'bare data channel');
    else row('a', `bare data channel, 2 tabs, ${mib} MiB`, `${fmt(run.a.mbps)} MB/s`, `connect ${fmt(run.a.connectMs, 0)} ms; first byte after ${fmt(run.a.firstByteMs, 0)} ms, all queued after ${fmt(run.a.queuedMs, 0)} ms; from the ${run.a.from}, ${run.a.messageBytes / 1024} KiB messages, high-water ${run.a.highWater / 1024} KiB; SHA-256 ok; ${cpuText(run.a.cpu)}`);
    if (!run.a.error) threads(run.a.cpu);
  }
  for (const [k, what] of [['b', `WebTorrent ${WT_VERSION} tab -> tab`], ['c', 'seedtab tab -> tab'], ['r', 'seedtab, receipts off']]) {
    const r = run[k];
    if (!r) continue;
    if (r.error) { err(k, what); continue; }
    const p = r.per[0];
    row(k, `${what}, ${mib} MiB (add -> done)`, `${fmt(r.mbps)} MB/s`,
      `${fmt(p.ms / 1000)} s; metadata at ${fmt(p.metadataMs, 0)} ms, then ${fmt(p.dataMbps)} MB/s; `
      + `seeding took ${fmt(r.seedMs, 0)} ms; SHA-256 ok; `
      + `${r.receipts ? `receipts: ${r.receipts.seq} signed, ${fmt(r.receipts.bytes / MiB, 1)} MiB attested; ` : ''}${cpuText(r.cpu)}`);
    threads(r.cpu);
  }
  if (run.d) {
    if (run.d.error) err('d', `seedtab 1 -> ${DOWNLOADERS}`);
    else {
      row('d', `seedtab 1 -> ${run.d.downloaders}, ${mib} MiB each (aggregate)`, `${fmt(run.d.mbps)} MB/s`,
        `${fmt(run.d.ms / 1000)} s for all; per downloader ${run.d.per.map((p) => fmt(p.mbps)).join(', ')} MB/s; `
        + `seeder uploaded ${fmt(run.d.seederUploaded / MiB, 0)} MiB; SHA-256 ok; ${cpuText(run.d.cpu)}`);
      threads(run.d.cpu);
    }
  }
  if (run.startup) {
    if (run.startup.error) err('startup', 'start-up');
    else {
      for (const kind of ['webtorrent', 'seedtab']) {
        const rs = run.startup[kind];
        row('startup', `${kind === 'webtorrent' ? `WebTorrent ${WT_VERSION}` : 'seedtab'}: magnet -> ${STARTUP_SIZE / 1024} KiB done (median)`,
          `${fmt(run.startup[`${kind}Ms`] / 1000, 3)} s`,
          `runs ${rs.map((r) => fmt(r.ms / 1000, 3)).join(', ')} s; metadata at ${rs.map((r) => fmt(r.metadataMs, 0)).join(', ')} ms`);
      }
      const rs = run.startup.seedtab;
      const mid = [...rs].sort((x, y) => x.ms - y.ms)[rs.length >> 1];
      if (mid && mid.timeline && mid.timeline.length) {
        say(`  ${''.padEnd(8)} seedtab start-up timeline of the median run (ms after the clock started):`);
        say(`  ${''.padEnd(8)}   ${mid.timeline.map((e) => `${e.ms} ${e.who}: ${e.what}`).join(' | ')}`);
      }
    }
  }
  if (run.hash) {
    if (run.hash.error) err('hash', 'hashing');
    else {
      for (const [name, v] of Object.entries(run.hash.results)) {
        row('hash', `${name}`, `${fmt(v, 0)} MiB/s`, `rounds ${run.hash.rounds[name].map((x) => fmt(x, 0)).join(', ')}`);
      }
      say(`  ${''.padEnd(8)} (${run.hash.mib} MiB in ${run.hash.pieceLength / 1024} KiB pieces each, in 4 rounds; every method's digests equal WebCrypto's; ${cpuText(run.hash.cpu)})`);
    }
  }
}

function summarize(runs) {
  const keys = Object.keys(runs[0].figures).filter((k) => k !== 'hash_webcrypto_best');
  const s = {};
  for (const k of keys) s[k] = median(runs.map((r) => r.figures[k]));
  // Ratios of medians (not medians of ratios), so they agree with the figures printed above.
  Object.assign(s, withRatios(s));
  s.hash_webcrypto_best = runs.map((r) => r.figures.hash_webcrypto_best).filter(Boolean).join(', ') || null;
  return s;
}

function printSummary(s, runs) {
  say('');
  say(`== summary: median of ${runs.length} run(s), ${SIZE / MiB} MiB transfers ==`);
  const line = (what, v, unit, digits = 2) => say(`  ${what.padEnd(48)} ${fmt(v, digits).padStart(9)} ${unit}`);
  line('a  bare data channel', s.a_bare_mbps, 'MB/s');
  line(`b  WebTorrent ${WT_VERSION}`, s.b_webtorrent_mbps, 'MB/s');
  line('c  seedtab', s.c_seedtab_mbps, 'MB/s');
  line(`d  seedtab 1 -> ${DOWNLOADERS} aggregate`, s.d_aggregate_mbps, 'MB/s');
  line(`d  seedtab 1 -> ${DOWNLOADERS} per downloader`, s.d_per_downloader_mbps, 'MB/s');
  line('c/b  seedtab / WebTorrent           (target >= 2.0)', s.ratio_c_over_b, 'x');
  line('c/a  seedtab / bare channel         (target >= 0.8)', s.ratio_c_over_a, 'x');
  line('r  seedtab, receipts off', s.r_seedtab_receipts_off_mbps, 'MB/s');
  line('c/r  receipts on / off              (target >= 0.97)', s.ratio_receipts_on_over_off, 'x');
  line('data phase (metadata -> done): WebTorrent', s.b_webtorrent_data_mbps, 'MB/s');
  line('data phase (metadata -> done): seedtab', s.c_seedtab_data_mbps, 'MB/s');
  line(`start-up WebTorrent (${STARTUP_SIZE / 1024} KiB)`, s.startup_webtorrent_s, 's', 3);
  line(`start-up seedtab    (target <= 1 s)`, s.startup_seedtab_s, 's', 3);
  line('start-up seedtab / WebTorrent       (target <= 0.25)', s.ratio_startup_seedtab_over_webtorrent, 'x', 3);
  line(`hash WebCrypto SHA-1 (best: ${s.hash_webcrypto_best || '—'})`, s.hash_webcrypto_mibps, 'MiB/s', 0);
  line('hash seedtab torrent creation (WebCrypto via core)', s.hash_seedtab_mibps, 'MiB/s', 0);
  line('hash seedtab wasm (PieceHasher, SIMD, 1 MiB slices)', s.hash_seedtab_wasm_mibps, 'MiB/s', 0);
  line('hash seedtab wasm (sha1Pieces, SIMD, 64 MiB calls)', s.hash_seedtab_oneshot_mibps, 'MiB/s', 0);
  line('hash seedtab wasm (sha1 crate, scalar)', s.hash_seedtab_scalar_mibps, 'MiB/s', 0);
  line('hash seedtab / WebCrypto            (target >= 0.9)', s.ratio_hash_seedtab_over_webcrypto, 'x');
  const targets = [
    ['seedtab tab-to-tab >= 2.0x WebTorrent', s.ratio_c_over_b, (v) => v >= 2.0],
    ['seedtab tab-to-tab >= 0.8x bare channel', s.ratio_c_over_a, (v) => v >= 0.8],
    ['receipts on >= 0.97x receipts off', s.ratio_receipts_on_over_off, (v) => v >= 0.97],
    ['start-up <= 1 s', s.startup_seedtab_s, (v) => v <= 1.0],
    ['start-up <= 0.25x WebTorrent', s.ratio_startup_seedtab_over_webtorrent, (v) => v <= 0.25],
    ['hashing >= 0.9x WebCrypto', s.ratio_hash_seedtab_over_webcrypto, (v) => v >= 0.9],
  ];
  say('  targets (measured, not asserted):');
  const met = {};
  for (const [what, v, test] of targets) {
    met[what] = typeof v === 'number' ? test(v) : null;
    say(`    ${met[what] === null ? '  -  ' : met[what] ? ' met ' : ' MISS'}  ${what}`);
  }
  return met;
}

// --- main ------------------------------------------------------------------------------------

async function startWtTracker() {
  if (opt['wt-tracker'] === 'seedtab') return { url: server.trackerUrl, stop: async () => {} };
  const { default: Server } = await import('bittorrent-tracker/server');
  const srv = new Server({ udp: false, http: false, ws: true, stats: false });
  srv.on('error', (e) => process.stderr.write(`bittorrent-tracker: ${e}\n`));
  srv.on('warning', (e) => { if (opt.verbose) process.stderr.write(`bittorrent-tracker: ${e}\n`); });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.ws.address();
  return { url: `ws://127.0.0.1:${port}`, stop: () => new Promise((res) => srv.close(res)) };
}

async function main() {
  const t0 = Date.now();
  // Bound the whole run: a stuck browser must not hold CI (defaults finish well inside this).
  const budgetMs = Number(process.env.SEEDTAB_BENCH_BUDGET_S || 1200) * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: over the ${budgetMs / 1000} s budget, giving up\n`);
    process.exit(3);
  }, budgetMs);
  watchdog.unref();

  server = await startServer({ www: opt.www });
  wtTracker = await startWtTracker();
  browser = await launchBrowser();
  const chromium = browser.version();
  say(`seedtab benchmark: ${SIZE / MiB} MiB transfers, ${RUNS} run(s), sections ${[...ONLY].join(',')}`);
  say(`  Chromium ${chromium}; WebTorrent ${WT_VERSION} (ICE servers: ${opt['wt-ice']}, tracker: ${opt['wt-tracker']} ${wtTracker.url}); `
    + `seedtab tracker ${server.trackerUrl}; pieces stored: ${opt.store}; ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const runs = [];
  try {
    for (let i = 1; i <= RUNS; i += 1) {
      const run = await oneRun(i);
      runs.push(run);
      printRun(run);
    }
  } finally {
    await browser.close().catch(() => {});
    await wtTracker.stop().catch(() => {});
    await server.stop().catch(() => {});
  }
  const summary = summarize(runs);
  const met = printSummary(summary, runs);
  const failed = runs.flatMap((r) => SECTIONS.filter((k) => r[k] && r[k].error).map((k) => `run ${r.index} ${k}`));
  const report = {
    date: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    environment: {
      chromium, webtorrent: WT_VERSION, node: process.version, cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model, loadavgAtEnd: os.loadavg(),
    },
    options: {
      mib: SIZE / MiB, runs: RUNS, only: [...ONLY], startupRuns: STARTUP_RUNS, startupBytes: STARTUP_SIZE, startupIdleMs: STARTUP_IDLE_MS,
      hashMiB: HASH_MIB, hashBufferMiB: HASH_BUF_MIB, pieceKiB: PIECE_KIB, downloaders: DOWNLOADERS,
      wtTracker: opt['wt-tracker'], store: opt.store, wtIce: opt['wt-ice'], www: opt.www,
    },
    summary,
    targetsMet: met,
    failed,
    runs,
  };
  fs.mkdirSync(path.dirname(opt.out), { recursive: true });
  fs.writeFileSync(opt.out, `${JSON.stringify(report, null, 2)}\n`);
  say('');
  say(`wrote ${path.relative(process.cwd(), opt.out) || opt.out} (${report.seconds.toFixed(0)} s in all)`);
  if (failed.length) {
    say(`FAILED sections: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err && err.stack) || err}\n`);
  process.exit(1);
});
