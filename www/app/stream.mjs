// The page's half of streaming (the other half is the service worker, www/static/sw.js): answers
// the worker's requests for /stream/<info-hash>/<path> from the torrents of a seedtab Client.
// Each request comes with its own MessagePort; the worker then asks for one chunk at a time and
// `file.read()` moves the pieces under it to the front of the download, so a seek re-prioritises.

/** Media files a <video>/<audio> may play, by extension. */
const VIDEO = new Set(['mp4', 'm4v', 'webm', 'mov', 'mkv', 'ogv']);
const AUDIO = new Set(['mp3', 'm4a', 'aac', 'ogg', 'oga', 'opus', 'flac', 'wav', 'weba']);

function extension(name) {
  const dot = name.lastIndexOf('.');
  return dot >= 0 ? name.slice(dot + 1).toLowerCase() : '';
}

/** 'video', 'audio' or null. */
export function mediaKind(name) {
  const ext = extension(name);
  if (VIDEO.has(ext)) return 'video';
  if (AUDIO.has(ext)) return 'audio';
  return null;
}

/** The URL the service worker answers for `file` of `torrent` (each path segment escaped). */
export function streamUrl(torrent, file) {
  const path = file.path.split('/').map(encodeURIComponent).join('/');
  return `/stream/${torrent.infoHash}/${path}`;
}

/**
 * Registers /sw.js (scope /) and resolves once it controls this page, so media requests from
 * it reach the worker. Throws an Error saying why when the browser cannot.
 */
export async function registerStreamWorker(url = '/sw.js') {
  if (!('serviceWorker' in navigator)) {
    throw new Error('This browser cannot stream here: no service workers (private window, or not https?)');
  }
  await navigator.serviceWorker.register(url, { scope: '/' });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    // The worker calls clients.claim() when it activates; wait for that.
    await new Promise((resolve) => {
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
      if (navigator.serviceWorker.controller) resolve();
    });
  }
}

/** Answers the service worker's stream requests from `client`'s torrents, from now on. */
export function serveStreams(client) {
  const sw = navigator.serviceWorker;
  sw.addEventListener('message', (event) => {
    const msg = event.data;
    const port = event.ports && event.ports[0];
    if (!msg || msg.seedtab !== 'stream-open' || !port) return;
    answer(client, msg, port).catch((err) => {
      port.postMessage({ type: 'error', status: 500, message: String((err && err.message) || err) });
    });
  });
  sw.startMessages();
}

// While a stream is open, a message to the worker this often keeps it from being stopped as idle
// in the middle of a response (Chromium stops a worker after 30 s without events).
const KEEPALIVE_MS = 10_000;
let openStreams = 0;
let keepalive = null;

function streamOpened() {
  openStreams += 1;
  if (!keepalive) {
    keepalive = setInterval(() => {
      const worker = navigator.serviceWorker.controller;
      if (worker) worker.postMessage({ seedtab: 'keepalive' });
    }, KEEPALIVE_MS);
  }
}

function streamClosed() {
  openStreams -= 1;
  if (openStreams <= 0 && keepalive) {
    clearInterval(keepalive);
    keepalive = null;
    openStreams = 0;
  }
}

async function answer(client, { infoHash, path }, port) {
  const torrent = typeof infoHash === 'string' ? client.get(infoHash) : null;
  if (!torrent) {
    port.postMessage({ type: 'missing' });
    port.close();
    return;
  }
  if (torrent.length == null) port.postMessage({ type: 'wait' });
  await torrent.ready;
  const file = torrent.files.find((f) => f.path === path);
  if (!file) {
    port.postMessage({ type: 'error', status: 404, message: 'no such file in this torrent' });
    port.close();
    return;
  }
  let closed = false;
  streamOpened();
  port.onmessage = async (e) => {
    const m = e.data || {};
    if (m.type === 'close') {
      if (!closed) streamClosed();
      closed = true;
      port.close();
      return;
    }
    if (m.type !== 'read' || closed) return;
    try {
      const data = await file.read(m.start, m.end);
      if (!closed) port.postMessage({ type: 'chunk', data });
    } catch (err) {
      if (!closed) port.postMessage({ type: 'error', message: String((err && err.message) || err) });
    }
  };
  port.postMessage({ type: 'head', length: file.length, name: file.name });
}
