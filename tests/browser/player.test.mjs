// The streaming player and the embeddable widget (issue 7), end to end in Chromium: a seeder tab
// seeds a small media file (tests/media/, made by tests/media/make.sh); a page on ANOTHER origin
// (a Node server on its own 127.0.0.1 port) pastes the widget snippet pointing at `seedtab
// serve`; the widget's iframe (embed.html) downloads the file over WebRTC and plays it through
// the service worker (sw.js answering range requests for /stream/...). Checks that playback
// passes 3 s, that a seek to 80 % plays again, that the bytes came from the seeder, that the
// embedding page hears the player's postMessages as DOM events, and that a broken magnet link
// shows an error in the widget and reaches the embedding page as an 'error' event.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ROOT, bencode, launchBrowser, log, openHarness, openPage, startServer, startStaticServer, startWebSeed,
} from './harness.mjs';

const TEST_TIMEOUT = 120_000;
const MEDIA = path.join(ROOT, 'tests', 'media');

let server;
let browser;
let embedder;
// The embedding site's pages, filled in per test (startStaticServer looks routes up per request).
const routes = {};

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  embedder = await startStaticServer(routes);
  assert.notEqual(new URL(embedder.url).origin, new URL(server.url).origin, 'the embedding page is cross-origin');
});

after(async () => {
  await browser?.close();
  await embedder?.stop();
  await server?.stop();
});

const attr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** A page of the embedding site with the snippet a site pastes, recording the element's events. */
function embeddingPage(attributes) {
  const widget = new URL('widget.js', server.url).href;
  const attrs = Object.entries(attributes)
    .map(([k, v]) => (v === true ? k : `${k}="${attr(v)}"`)).join(' ');
  return `<!doctype html><meta charset="utf-8"><title>a site embedding seedtab</title>
<script src="${attr(widget)}"></script>
<seedtab-player id="player" ${attrs}></seedtab-player>
<script>
  window.events = [];
  const player = document.getElementById('player');
  for (const type of ['ready', 'progress', 'peers', 'playing', 'pause', 'ended', 'error']) {
    player.addEventListener(type, (e) => window.events.push({ type, detail: e.detail }));
  }
</script>`;
}

async function embedFrame(page, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = page.frames().find((f) => f.url().includes('/embed.html'));
    if (frame) return frame;
    if (Date.now() > deadline) throw new Error('the widget made no embed.html iframe');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `fn` in `frame` until it returns something truthy; fails with `what` and the last state. */
async function waitIn(frame, fn, arg, what, timeoutMs, state) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await frame.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) {
      const s = state ? await state() : '';
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; ${JSON.stringify(s)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Seeks the widget's video to 80 % and waits until it plays on from there. */
async function seekTo80(frame, state) {
  const target = await frame.evaluate(() => {
    const v = document.querySelector('video');
    v.currentTime = v.duration * 0.8;
    return v.duration * 0.8;
  });
  await waitIn(frame, (target) => {
    const v = document.querySelector('video');
    return !v.seeking && !v.paused && v.currentTime > target + 0.5;
  }, target, `playback to go on after a seek to ${target.toFixed(2)} s`, 30_000, state);
}

async function seedFile(name) {
  const ctx = await browser.newContext();
  const seeder = await openHarness(browser, server, { name: `seeder:${name}`, context: ctx });
  const b64 = fs.readFileSync(path.join(MEDIA, name)).toString('base64');
  const seeded = await seeder.evaluate(async ({ trackerUrl, name, b64 }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [] });
    // 16 KiB pieces: the clip spans tens of pieces, so where a read lands matters.
    window.torrent = await client.seed([{ name, data }], { pieceLength: 16384 });
    return { magnetURI: torrent.magnetURI, infoHash: torrent.infoHash, length: data.length };
  }, { trackerUrl: server.trackerUrl, name, b64 });
  return { ctx, seeder, ...seeded };
}

// The widget keeps pieces in memory by default; storage="auto" reads them back from OPFS.
for (const [name, extra] of [['clip.mp4', {}], ['clip.webm', { storage: 'auto' }]]) {
  test(`widget on another origin streams ${name} from a seeder tab, and seeks (${extra.storage || 'memory'})`, { timeout: TEST_TIMEOUT }, async () => {
    const seeded = await seedFile(name);
    const ctx = await browser.newContext();
    try {
      log(`[player] seeded ${name}: ${seeded.magnetURI}`);
      routes[`/${name}.html`] = { body: embeddingPage({ magnet: seeded.magnetURI, file: name, autoplay: true, muted: true, ...extra }) };
      const page = await openPage(browser, new URL(`${name}.html`, embedder.url).href, { name: `embedder:${name}`, context: ctx });
      const frame = await embedFrame(page);
      const state = async () => ({
        frame: await frame.evaluate(() => {
          const v = document.querySelector('video, audio');
          return {
            error: document.getElementById('error').textContent,
            message: document.getElementById('message').textContent,
            stats: document.getElementById('stats').textContent,
            media: v && { t: v.currentTime, paused: v.paused, readyState: v.readyState, err: v.error && v.error.message, src: v.src },
            controlled: !!navigator.serviceWorker.controller,
            storage: window.seedtabTorrent && window.seedtabTorrent.storage,
          };
        }),
        events: await page.evaluate(() => window.events.filter((e) => e.type !== 'progress').map((e) => e.type)),
        seeder: await seeded.seeder.evaluate(() => torrent.stats()),
      });

      const t0 = Date.now();
      await waitIn(frame, () => {
        const v = document.querySelector('video');
        return v && v.currentTime > 3;
      }, null, 'playback to pass 3 s', 60_000, state);
      log(`PLAYER ${name}: playing past 3 s ${((Date.now() - t0) / 1000).toFixed(2)} s after the embedding page loaded`);

      // Seek to 80 %: a new range request; playback must go on from there.
      await seekTo80(frame, state);

      const s = await state();
      log(`[player] ${name}: ${JSON.stringify(s)}`);
      assert.equal(s.frame.controlled, true, 'the embed page is controlled by the service worker');
      assert.equal(s.frame.storage, extra.storage === 'auto' ? 'opfs' : 'memory', 'pieces kept where asked');
      assert.match(s.frame.media.src, new RegExp(`/stream/${seeded.infoHash}/`), 'the media comes from /stream/');
      assert.ok(s.seeder.uploaded >= seeded.length * 0.5, `the seeder uploaded the bytes (${s.seeder.uploaded} of ${seeded.length})`);
      // A message from anyone but the widget's own iframe is not re-dispatched.
      const forged = await page.evaluate(async () => {
        let heard = 0;
        document.getElementById('player').addEventListener('forged', () => { heard += 1; });
        window.postMessage({ source: 'seedtab', type: 'forged' }, '*');
        await new Promise((r) => setTimeout(r, 300));
        return heard;
      });
      assert.equal(forged, 0, 'a message from the embedding page itself is ignored');
      const events = await page.evaluate(() => window.events);
      const types = new Set(events.map((e) => e.type));
      for (const t of ['ready', 'progress', 'peers', 'playing']) assert.ok(types.has(t), `the embedding page heard '${t}'`);
      assert.ok(!types.has('error'), `no error: ${JSON.stringify(events.find((e) => e.type === 'error'))}`);
      assert.ok(events.every((e) => e.detail && e.detail.source === 'seedtab'), 'events carry the message as detail');
      assert.ok(events.some((e) => e.type === 'peers' && e.detail.numPeers >= 1), 'a peer was reported');
      const downloaded = Math.max(...events.filter((e) => e.type === 'progress').map((e) => e.detail.downloaded));
      assert.ok(downloaded > 0, 'the widget reported downloaded bytes');
    } finally {
      await ctx.close();
      await seeded.ctx.close();
    }
  });
}

test('torrent="URL": the widget fetches the .torrent from the embedding site (CORS) and plays', { timeout: TEST_TIMEOUT }, async () => {
  const seeded = await seedFile('clip.webm');
  const ctx = await browser.newContext();
  // The embedding site serves the .torrent itself, with CORS, as a site would.
  const torrentBytes = Buffer.from(await seeded.seeder.evaluate(() => btoa(String.fromCharCode(...torrent.torrentFile))), 'base64');
  const cors = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-bittorrent', 'access-control-allow-origin': '*' });
    res.end(torrentBytes);
  });
  cors.listen(0, '127.0.0.1');
  await once(cors, 'listening');
  try {
    const torrentUrl = `http://127.0.0.1:${cors.address().port}/clip.torrent`;
    routes['/by-torrent.html'] = { body: embeddingPage({ torrent: torrentUrl, autoplay: true, muted: true }) };
    const page = await openPage(browser, new URL('by-torrent.html', embedder.url).href, { name: 'embedder:torrent', context: ctx });
    const frame = await embedFrame(page);
    await waitIn(frame, () => {
      const v = document.querySelector('video');
      return v && v.currentTime > 1;
    }, null, 'playback from a .torrent URL', 60_000, async () => page.evaluate(() => window.events.filter((e) => e.type !== 'progress')));
    const ready = await page.evaluate(() => window.events.find((e) => e.type === 'ready'));
    assert.equal(ready.detail.infoHash, seeded.infoHash);
    assert.deepEqual(ready.detail.files.map((f) => f.name), ['clip.webm']);
  } finally {
    cors.closeAllConnections?.();
    cors.close();
    await ctx.close();
    await seeded.ctx.close();
  }
});

/** A single-file v1 .torrent of `data` named `name`, with `url-list`. */
function singleFileTorrent(name, data, pieceLength, urlList) {
  const pieces = [];
  for (let i = 0; i < data.length; i += pieceLength) {
    pieces.push(crypto.createHash('sha1').update(data.subarray(i, i + pieceLength)).digest());
  }
  const info = { length: data.length, name, 'piece length': pieceLength, pieces: Buffer.concat(pieces) };
  return bencode({ info, 'url-list': urlList });
}

test('with no seeder at all, the widget plays from a web seed (url-list), and seeks', { timeout: TEST_TIMEOUT }, async () => {
  const name = 'clip.mp4';
  const data = fs.readFileSync(path.join(MEDIA, name));
  const webSeed = await startWebSeed({ [`/media/${name}`]: data });
  const torrent = singleFileTorrent(name, data, 16384, `${webSeed.url}media/`);
  const host = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-bittorrent', 'access-control-allow-origin': '*' });
    res.end(torrent);
  });
  host.listen(0, '127.0.0.1');
  await once(host, 'listening');
  const ctx = await browser.newContext();
  try {
    const torrentUrl = `http://127.0.0.1:${host.address().port}/clip.torrent`;
    routes['/by-webseed.html'] = { body: embeddingPage({ torrent: torrentUrl, autoplay: true, muted: true }) };
    const page = await openPage(browser, new URL('by-webseed.html', embedder.url).href, { name: 'embedder:webseed', context: ctx });
    const frame = await embedFrame(page);
    const state = async () => ({
      events: await page.evaluate(() => window.events.filter((e) => e.type !== 'progress')),
      webSeed: webSeed.stats,
    });
    await waitIn(frame, () => {
      const v = document.querySelector('video');
      return v && v.currentTime > 3;
    }, null, 'playback from the web seed to pass 3 s', 60_000, state);
    await seekTo80(frame, state);
    const events = await page.evaluate(() => window.events);
    assert.ok(!events.some((e) => e.type === 'error'), JSON.stringify(events.find((e) => e.type === 'error')));
    assert.ok(webSeed.stats.ranged > 0, 'the bytes came from the web seed, by ranged requests');
    const peers = events.filter((e) => e.type === 'peers').map((e) => e.detail.numPeers);
    assert.ok(peers.every((n) => n === 0), `no peer took part (${peers})`);
    log(`PLAYER web seed: ${webSeed.stats.ranged} ranged requests, played and seeked`);
  } finally {
    host.closeAllConnections?.();
    host.close();
    await ctx.close();
    await webSeed.stop();
  }
});

test('a broken magnet link shows an error in the widget and tells the embedding page', { timeout: TEST_TIMEOUT }, async () => {
  const ctx = await browser.newContext();
  try {
    routes['/broken.html'] = { body: embeddingPage({ magnet: 'magnet:?xt=urn:btih:<b>not-a-hash</b>', autoplay: true }) };
    const page = await openPage(browser, new URL('broken.html', embedder.url).href, { name: 'embedder:broken', context: ctx });
    const frame = await embedFrame(page);
    const shown = await waitIn(frame, () => {
      const e = document.getElementById('error');
      return !e.hidden && e.textContent && { text: e.textContent, children: e.childElementCount };
    }, null, 'the widget to show an error', 20_000);
    log(`[player] broken magnet: ${shown.text}`);
    assert.match(shown.text, /magnet/i, 'the error names the magnet link');
    assert.equal(shown.children, 0, 'the error is text, never HTML');
    const event = await waitIn(page, () => window.events.find((e) => e.type === 'error'), null,
      "an 'error' event on the embedding page", 10_000);
    assert.equal(event.detail.message, shown.text);
  } finally {
    await ctx.close();
  }
});

test('file.read() fetches the pieces under the read position first, and returns the right bytes', { timeout: TEST_TIMEOUT }, async () => {
  const SIZE = 16 * 1024 * 1024;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const seeder = await openHarness(browser, server, { name: 'read:seeder', context: ctxA });
    const magnetURI = await seeder.evaluate(async ({ trackerUrl, size }) => {
      window.data = testUtils.randomBytes(size);
      window.client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [] });
      window.torrent = await client.seed([{ name: 'big.bin', data }], { pieceLength: 16384 });
      return torrent.magnetURI;
    }, { trackerUrl: server.trackerUrl, size: SIZE });
    const leecher = await openHarness(browser, server, { name: 'read:leecher', context: ctxB });
    // Both storage paths: browser storage (the default: read back from OPFS) and memory.
    for (const storage of ['auto', 'memory']) {
      const r = await leecher.evaluate(async ({ trackerUrl, magnetURI, storage }) => {
        const client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [], storage });
        const torrent = client.add(magnetURI);
        await torrent.ready;
        const file = torrent.files[0];
        const at = Math.floor(file.length * 0.8) + 12345; // inside a piece, far from the start
        const first = await file.read(at, at + 100000);
        const progressAtRead = torrent.progress;
        // A read across pieces that are not all there yet returns a prefix (at least one byte).
        const next = await file.read(at + first.length, at + first.length + 1);
        await torrent.done;
        const whole = await file.read(0);          // at most 1 MiB per read
        const tail = await file.read(file.length - 10, file.length + 50);
        const empty = await file.read(file.length);
        const result = {
          progressAtRead, firstLength: first.length, nextLength: next.length,
          wholeLength: whole.length, tailLength: tail.length, emptyLength: empty.length,
          first: Array.from(first.subarray(0, 64)), at, firstEndBytes: Array.from(first.subarray(-16)),
          tail: Array.from(tail), whole: Array.from(whole.subarray(1048576 - 16)),
        };
        client.destroy();
        return result;
      }, { trackerUrl: server.trackerUrl, magnetURI, storage });
      log(`[player] read (${storage}): piece at 80 % read when the torrent was at ${(100 * r.progressAtRead).toFixed(1)} %; `
        + `first read gave ${r.firstLength} bytes`);
      const expect = await seeder.evaluate(({ at, firstLength }) => ({
        first: Array.from(data.subarray(at, at + 64)),
        firstEnd: Array.from(data.subarray(at + firstLength - 16, at + firstLength)),
        tail: Array.from(data.subarray(data.length - 10)),
        whole: Array.from(data.subarray(1048576 - 16, 1048576)),
      }), r);
      assert.ok(r.progressAtRead < 0.5, `the piece at 80 % came early (torrent at ${r.progressAtRead})`);
      assert.ok(r.firstLength >= 1 && r.firstLength <= 100000, 'a read returns between 1 byte and what was asked');
      assert.equal(r.nextLength, 1);
      assert.deepEqual(r.first, expect.first, 'the bytes at the read position are the seeded ones');
      assert.deepEqual(r.firstEndBytes, expect.firstEnd);
      assert.equal(r.wholeLength, 1048576, 'one read returns at most 1 MiB');
      assert.deepEqual(r.whole, expect.whole);
      assert.equal(r.tailLength, 10, 'a read past the end stops at the end');
      assert.deepEqual(r.tail, expect.tail);
      assert.equal(r.emptyLength, 0, 'a read at the end is empty');
    }
  } finally {
    await ctxB.close();
    await ctxA.close();
  }
});

test('the service worker answers ranges (206, 416, 404), and waits for the metadata when asked early', { timeout: TEST_TIMEOUT }, async () => {
  const seeded = await seedFile('clip.mp4');
  const ctx = await browser.newContext();
  try {
    const page = await openHarness(browser, server, { name: 'sw:leecher', context: ctx });
    const got = await page.evaluate(async ({ trackerUrl, magnetURI, infoHash }) => {
      await window.seedtabStream.registerStreamWorker();
      const client = new window.seedtab.Client({ trackers: [trackerUrl], iceServers: [], storage: 'memory' });
      window.seedtabStream.serveStreams(client);
      const torrent = client.add(magnetURI);
      const url = `/stream/${infoHash}/clip.mp4`;
      const hadMetadata = torrent.length != null;
      const get = async (u, range) => {
        const res = await fetch(u, range ? { headers: { Range: range } } : {});
        const body = new Uint8Array(await res.arrayBuffer());
        return {
          status: res.status,
          type: res.headers.get('content-type'),
          range: res.headers.get('content-range'),
          accept: res.headers.get('accept-ranges'),
          length: res.headers.get('content-length'),
          size: body.length,
          sha: await testUtils.sha256Hex(body),
        };
      };
      const out = { hadMetadata };
      out.early = await get(url, 'bytes=100-199'); // sent before the metadata is known
      out.suffix = await get(url, 'bytes=-10');
      out.whole = await get(url);
      out.open = await get(url, 'bytes=400000-');
      out.beyond = await get(url, 'bytes=999999999-');
      out.noFile = await get(`/stream/${infoHash}/nope.mp4`);
      out.noTorrent = await get(`/stream/${'0'.repeat(40)}/x.mp4`);
      out.badPath = await get('/stream/xyz');
      client.destroy();
      return out;
    }, { trackerUrl: server.trackerUrl, magnetURI: seeded.magnetURI, infoHash: seeded.infoHash });
    const want = await seeded.seeder.evaluate(async () => {
      const f = torrent.files[0];
      const all = await f.bytes();
      return {
        early: await testUtils.sha256Hex(all.subarray(100, 200)),
        suffix: await testUtils.sha256Hex(all.subarray(all.length - 10)),
        whole: await testUtils.sha256Hex(all),
        open: await testUtils.sha256Hex(all.subarray(400000)),
      };
    });
    log(`[player] service worker answers: ${JSON.stringify(got)}`);
    const len = seeded.length;
    assert.equal(got.hadMetadata, false, 'the first request went out before the metadata was known');
    assert.deepEqual(
      { ...got.early, sha: got.early.sha === want.early },
      { status: 206, type: 'video/mp4', range: `bytes 100-199/${len}`, accept: 'bytes', length: '100', size: 100, sha: true },
    );
    assert.equal(got.suffix.status, 206);
    assert.equal(got.suffix.range, `bytes ${len - 10}-${len - 1}/${len}`);
    assert.equal(got.suffix.sha, want.suffix);
    assert.equal(got.whole.status, 200, 'no Range: the whole file');
    assert.equal(got.whole.size, len);
    assert.equal(got.whole.sha, want.whole);
    assert.equal(got.open.status, 206);
    assert.equal(got.open.size, len - 400000, 'an open range is served to the end, over several reads');
    assert.equal(got.open.sha, want.open);
    assert.equal(got.beyond.status, 416);
    assert.equal(got.beyond.range, `bytes */${len}`);
    assert.equal(got.noFile.status, 404);
    assert.equal(got.noTorrent.status, 404);
    assert.equal(got.badPath.status, 400);
  } finally {
    await ctx.close();
    await seeded.ctx.close();
  }
});
