// seedtab's service worker (served as /sw.js, scope /): answers HTTP requests for
// /stream/<info-hash>/<file path> from the torrent a page of this origin holds, so a plain
// <video src> can play a file while it downloads. It holds no torrent itself: for each request
// it asks a window of this origin over a MessageChannel (www/app/stream.mjs answers there),
// then pulls the body from that page in chunks of at most 1 MiB, a couple at a time, so memory
// stays bounded whatever the file's size. A new range (a seek) is a new request; the page
// re-prioritises the pieces under it. Copied into www/dist as it is (webpack.config.js).
'use strict';

const PREFIX = '/stream/';
const CHUNK = 1 << 20;
// A window that runs no seedtab client never answers: give up on it after this long.
const ANSWER_TIMEOUT_MS = 3000;
// Content types by extension: media elements refuse a stream whose type they cannot play.
const TYPES = {
  mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', webm: 'video/webm',
  mkv: 'video/x-matroska', ogv: 'video/ogg', mp3: 'audio/mpeg', m4a: 'audio/mp4',
  aac: 'audio/aac', ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', flac: 'audio/flac',
  wav: 'audio/wav', weba: 'audio/webm', txt: 'text/plain; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8', srt: 'text/plain; charset=utf-8',
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp',
};

self.addEventListener('install', () => self.skipWaiting());
// Take control of already open pages at once: the embed page plays right after registering.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// A page that is streaming sends one now and then (app/stream.mjs): the body of a response goes on
// being pulled after its fetch event ended, through a MessagePort, which alone does not keep an
// idle worker alive; every message event does.
self.addEventListener('message', () => {});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(PREFIX)) return;
  event.respondWith(serve(event, url).catch((err) => plain(500, `seedtab: ${err && err.message || err}`)));
});

function plain(status, text, headers = {}) {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers } });
}

function contentType(path) {
  const dot = path.lastIndexOf('.');
  const ext = dot >= 0 ? path.slice(dot + 1).toLowerCase() : '';
  return TYPES[ext] || 'application/octet-stream';
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → [start, end] (inclusive), null if absent, 'bad' if unsatisfiable. */
function parseRange(header, length) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // several ranges or junk: the whole file
  let start;
  let end;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'bad';
    start = Math.max(0, length - n);
    end = length - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
  }
  if (start >= length || end < start) return 'bad';
  return [start, end];
}

/** The windows to ask, the one that made the request first. */
async function candidates(event) {
  const out = [];
  if (event.clientId) {
    const c = await self.clients.get(event.clientId);
    if (c) out.push(c);
  }
  for (const c of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
    if (!out.some((o) => o.id === c.id)) out.push(c);
  }
  return out;
}

/** Posts requests on `port` one at a time and resolves each with the next answer. */
function channel(port) {
  let waiting = null;
  const queue = [];
  port.onmessage = (e) => {
    if (waiting) { const w = waiting; waiting = null; w(e.data); } else queue.push(e.data);
  };
  return {
    port,
    next(timeoutMs) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve) => {
        waiting = resolve;
        if (timeoutMs) setTimeout(() => { if (waiting === resolve) { waiting = null; resolve({ type: 'timeout' }); } }, timeoutMs);
      });
    },
    close() {
      try { port.postMessage({ type: 'close' }); } catch { /* closed already */ }
      port.close();
    },
  };
}

/** Asks `client` for the file; resolves to { ch, head } or null if it does not hold it. */
async function open(client, infoHash, path) {
  const mc = new MessageChannel();
  const ch = channel(mc.port1);
  client.postMessage({ seedtab: 'stream-open', infoHash, path }, [mc.port2]);
  let msg = await ch.next(ANSWER_TIMEOUT_MS);
  // The page holds the torrent but waits for its metadata: no time limit from here on.
  while (msg.type === 'wait') msg = await ch.next(0);
  if (msg.type === 'head' || msg.type === 'error') return { ch, head: msg };
  ch.close();
  return null;
}

async function serve(event, url) {
  const m = /^\/stream\/([0-9a-fA-F]{40})\/(.+)$/.exec(url.pathname);
  if (!m) return plain(400, 'seedtab: expected /stream/<info-hash>/<file path>');
  const infoHash = m[1].toLowerCase();
  let path;
  try {
    path = m[2].split('/').map(decodeURIComponent).join('/');
  } catch {
    return plain(400, 'seedtab: bad file path');
  }
  let found = null;
  for (const client of await candidates(event)) {
    found = await open(client, infoHash, path);
    if (found) break;
  }
  if (!found) return plain(404, 'seedtab: no open page of this site has this torrent');
  const { ch, head } = found;
  if (head.type === 'error') {
    ch.close();
    return plain(head.status || 404, `seedtab: ${head.message}`);
  }
  const length = head.length;
  const range = parseRange(event.request.headers.get('Range'), length);
  if (range === 'bad') {
    ch.close();
    return plain(416, 'seedtab: range not satisfiable', { 'Content-Range': `bytes */${length}` });
  }
  const [start, end] = range || [0, length - 1];
  let pos = start;
  const body = length === 0 ? null : new ReadableStream({
    async pull(controller) {
      if (pos > end) {
        ch.close();
        controller.close();
        return;
      }
      await ask(ch, controller, pos, Math.min(end + 1, pos + CHUNK)).then((n) => { pos += n; });
    },
    cancel() { ch.close(); },
  }, { highWaterMark: 2 }); // two chunks queued and one being read, at most
  const headers = {
    'Content-Type': contentType(path),
    'Accept-Ranges': 'bytes',
    'Content-Length': String(length === 0 ? 0 : end - start + 1),
    'Cache-Control': 'no-store',
  };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${length}`;
  return new Response(body, { status: range ? 206 : 200, headers });
}

/** Reads start..end (exclusive) from the page into the stream; resolves to the bytes read. */
async function ask(ch, controller, start, end) {
  ch.port.postMessage({ type: 'read', start, end });
  const msg = await ch.next(0);
  if (msg.type !== 'chunk' || !msg.data || msg.data.length === 0) {
    ch.close();
    controller.error(new Error(msg.message || 'the page stopped serving this file'));
    return 0;
  }
  controller.enqueue(msg.data);
  return msg.data.length;
}
