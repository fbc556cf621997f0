// Player start-up benchmark (issue 7): how long a page takes to start playing a file streamed
// from one seeder tab, seedtab vs WebTorrent 3.0.21, on the same file in the same run.
//   seedtab:    www/static/sw.js + app/stream.mjs (TorrentFile.read), the widget's path
//   WebTorrent: torrent.createServer({ controller }) with its own service worker
//               (node_modules/webtorrent/dist/sw.min.js) and file.streamURL
// The seeder is one seedtab tab (WebTorrent downloads from seedtab: tests/browser/interop).
// Each measurement is a fresh browser context (no storage, no service worker yet): the page
// registers its worker (not timed), makes a client, then add(magnet) → metadata → <video>.src
// set to the stream URL → play() → 'playing', then a seek to 80 % → playing again. Reported:
// play()→playing, add()→playing and seek→playing, medians over --runs, the two clients taking
// turns to go first. A bigger --file (made with ffmpeg, see tests/media/make.sh) shows more.
// Run inside the test namespace: bash tests/browser/netns.sh up &&
//   ip netns exec seedtab-test node bench/player.mjs [--file tests/media/clip.mp4] [--runs 5]

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ROOT, launchBrowser, openHarness, startServer, tempDir, withTimeout,
} from '../tests/browser/harness.mjs';

const { values: opt } = parseArgs({
  options: {
    file: { type: 'string', default: path.join(ROOT, 'tests', 'media', 'clip.mp4') },
    runs: { type: 'string', default: '5' },
    // Where the seedtab player keeps pieces: 'memory' (the widget's default) or 'auto' (OPFS).
    'seedtab-storage': { type: 'string', default: 'memory' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results', 'player.json') },
  },
});
const RUNS = Math.max(1, Number(opt.runs) || 5);
const WT_DIR = path.join(ROOT, 'node_modules', 'webtorrent');
const WT_VERSION = JSON.parse(fs.readFileSync(path.join(WT_DIR, 'package.json'), 'utf8')).version;

// www/dist plus WebTorrent's bundle and worker, so both clients run on one origin as a site
// would serve them (the worker must come from the origin it controls).
const www = tempDir('seedtab-player-bench-');
fs.cpSync(path.join(ROOT, 'www', 'dist'), www.dir, { recursive: true });
fs.mkdirSync(path.join(www.dir, 'vendor'));
fs.copyFileSync(path.join(WT_DIR, 'dist', 'webtorrent.min.js'), path.join(www.dir, 'vendor', 'webtorrent.min.js'));
fs.copyFileSync(path.join(WT_DIR, 'dist', 'sw.min.js'), path.join(www.dir, 'wt-sw.js'));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(browser, server, kind, magnet, name) {
  const ctx = await browser.newContext();
  try {
    const page = await openHarness(browser, server, { name: `${kind}`, context: ctx });
    return await withTimeout(page.evaluate(async ({ kind, magnet, name, trackerUrl, storage }) => {
      const sw = navigator.serviceWorker;
      const controlled = () => sw.controller || new Promise((r) => sw.addEventListener('controllerchange', r, { once: true }));
      const video = document.createElement('video');
      video.muted = true;
      document.body.append(video);
      let client;
      let torrent;
      let url;
      let t0;
      let tMeta;
      if (kind === 'seedtab') {
        await window.seedtabStream.registerStreamWorker();
        client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [], storage });
        window.seedtabStream.serveStreams(client);
        t0 = performance.now();
        torrent = client.add(magnet);
        torrent.done.catch(() => {}); // rejected by destroy() below
        await torrent.ready;
        tMeta = performance.now();
        url = window.seedtabStream.streamUrl(torrent, torrent.files.find((f) => f.name === name));
      } else {
        const { default: WebTorrent } = await import('/vendor/webtorrent.min.js');
        const reg = await sw.register('/wt-sw.js', { scope: '/' });
        await sw.ready;
        await controlled();
        client = new WebTorrent({
          dht: false, lsd: false, utp: false, webSeeds: false, natUpnp: false, natPmp: false,
          tracker: { rtcConfig: { iceServers: [] } },
        });
        client.createServer({ controller: reg });
        t0 = performance.now();
        torrent = client.add(magnet);
        await new Promise((res, rej) => { torrent.once('ready', res); torrent.once('error', rej); });
        tMeta = performance.now();
        url = torrent.files.find((f) => f.name === name).streamURL;
      }
      const playing = new Promise((res, rej) => {
        video.addEventListener('playing', res, { once: true });
        video.addEventListener('error', () => rej(new Error(`media error: ${video.error && video.error.message}`)), { once: true });
      });
      video.src = url;
      const t1 = performance.now();
      await video.play();
      await playing;
      const t2 = performance.now();
      // A seek to 80 %: how soon playback resumes there (the pieces under it must come first).
      const progressAtSeek = torrent.progress;
      const seeked = new Promise((res) => video.addEventListener('seeked', res, { once: true }));
      const t3 = performance.now();
      video.currentTime = video.duration * 0.8;
      await seeked;
      if (video.paused || video.readyState < 3) {
        await new Promise((res) => video.addEventListener('playing', res, { once: true }));
      }
      const t4 = performance.now();
      client.destroy();
      return {
        addToMetadataMs: tMeta - t0, playToPlayingMs: t2 - t1, addToPlayingMs: t2 - t0,
        seekToPlayingMs: t4 - t3, progressAtSeek, url,
      };
    }, { kind, magnet, name, trackerUrl: server.trackerUrl, storage: opt['seedtab-storage'] }), 90_000, `${kind} to play`);
  } finally {
    await ctx.close();
  }
}

const server = await startServer({ www: www.dir });
const browser = await launchBrowser();
try {
  const name = path.basename(opt.file);
  const seederCtx = await browser.newContext();
  const seeder = await openHarness(browser, server, { name: 'seeder', context: seederCtx });
  const magnet = await seeder.evaluate(async ({ trackerUrl, name, b64 }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [] });
    window.torrent = await client.seed([{ name, data }]);
    return torrent.magnetURI;
  }, { trackerUrl: server.trackerUrl, name, b64: fs.readFileSync(opt.file).toString('base64') });
  const results = { seedtab: [], webtorrent: [] };
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? ['seedtab', 'webtorrent'] : ['webtorrent', 'seedtab'];
    for (const kind of order) {
      const r = await measure(browser, server, kind, magnet, name);
      results[kind].push(r);
      process.stderr.write(`PLAYER-BENCH run ${i + 1} ${kind}: play()→playing ${r.playToPlayingMs.toFixed(0)} ms, `
        + `add()→metadata ${r.addToMetadataMs.toFixed(0)} ms, add()→playing ${r.addToPlayingMs.toFixed(0)} ms, `
        + `seek to 80 % (at ${(100 * r.progressAtSeek).toFixed(0)} % downloaded)→playing ${r.seekToPlayingMs.toFixed(0)} ms\n`);
    }
  }
  const summary = {};
  for (const kind of Object.keys(results)) {
    summary[kind] = {
      playToPlayingMs: median(results[kind].map((r) => r.playToPlayingMs)),
      addToMetadataMs: median(results[kind].map((r) => r.addToMetadataMs)),
      addToPlayingMs: median(results[kind].map((r) => r.addToPlayingMs)),
      seekToPlayingMs: median(results[kind].map((r) => r.seekToPlayingMs)),
    };
  }
  const size = fs.statSync(opt.file).size;
  console.log(`\nplayer start-up, ${name} (${size} bytes), one seedtab seeder tab, medians of ${RUNS}:`);
  console.log('client                 play()->playing  add()->metadata  add()->playing  seek 80%->playing');
  for (const [kind, label] of [['seedtab', 'seedtab'], ['webtorrent', `WebTorrent ${WT_VERSION}`]]) {
    const s = summary[kind];
    console.log(`${label.padEnd(22)} ${`${s.playToPlayingMs.toFixed(0)} ms`.padStart(15)}  ${`${s.addToMetadataMs.toFixed(0)} ms`.padStart(15)}  ${`${s.addToPlayingMs.toFixed(0)} ms`.padStart(14)}  ${`${s.seekToPlayingMs.toFixed(0)} ms`.padStart(17)}`);
  }
  fs.writeFileSync(opt.out, `${JSON.stringify({
    when: new Date().toISOString(), file: name, bytes: size, runs: RUNS, webtorrent: WT_VERSION,
    seedtabStorage: opt['seedtab-storage'], summary, results,
  }, null, 2)}\n`);
  console.log(`written to ${path.relative(ROOT, opt.out)}`);
} finally {
  await browser.close();
  await server.stop();
  www.cleanup();
}
