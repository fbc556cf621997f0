// The embeddable player (embed.html, shown in an iframe by widget.js): reads what to play from
// the URL hash (#magnet=<percent-encoded magnet>|#torrent=<url> [&file=<name or path>]
// [&autoplay] [&muted] [&storage=auto], app/embed-options.mjs), downloads it with a seedtab
// Client (trackers and ICE servers from /config.json, as the web app does) and plays the file through the service worker
// (/sw.js answers /stream/..., see app/stream.mjs) while it downloads.
// Tells the embedding page what happens with postMessage({ source: 'seedtab', type, ... }) to
// window.parent: 'ready' (metadata), 'progress', 'peers', 'playing', 'pause', 'ended', 'error'.
// Everything from the link or the swarm is shown with textContent only.
import { Client } from '../pkg/seedtab.js';
import { loadConfig, pickIceServers, pickTrackers } from './app/config.mjs';
import { errorText, formatBytes, formatPercent, formatSpeed, plural } from './app/format.mjs';
import { parseEmbedHash, pickFile } from './app/embed-options.mjs';
import { mediaKind, registerStreamWorker, serveStreams, streamUrl } from './app/stream.mjs';

const $ = (id) => document.getElementById(id);
const stage = $('stage');
const poster = $('poster');

/** To the embedding page; `*` because anyone may embed us and nothing sent is secret. */
function tell(type, data = {}) {
  if (window.parent !== window) window.parent.postMessage({ source: 'seedtab', type, ...data }, '*');
}

let failed = false;
function fail(message) {
  if (failed) return;
  failed = true;
  poster.hidden = false;
  $('message').textContent = '';
  $('error').hidden = false;
  $('error').textContent = message;
  tell('error', { message });
}

async function start() {
  const opts = parseEmbedHash(location.hash);
  if (!opts.magnet && !opts.torrent) {
    fail('Nothing to play: the link needs #magnet=… or #torrent=…');
    return;
  }
  const config = await loadConfig();
  const client = new Client({
    trackers: pickTrackers(config, location),
    iceServers: pickIceServers(config),
    storage: opts.storage,
  });
  window.seedtabClient = client; // for tests and the curious
  let torrentId = opts.magnet;
  if (!torrentId) {
    $('message').textContent = 'Fetching the .torrent…';
    let res;
    try {
      res = await fetch(opts.torrent);
    } catch (err) {
      throw new Error(`Could not fetch the .torrent: ${errorText(err)}`);
    }
    if (!res.ok) throw new Error(`Could not fetch the .torrent: HTTP ${res.status}`);
    torrentId = new Uint8Array(await res.arrayBuffer());
  }
  // Throws with a clear message for a bad magnet or .torrent.
  const torrent = client.add(torrentId);
  window.seedtabTorrent = torrent;
  torrent.on('error', (err) => fail(errorText(err)));
  const worker = registerStreamWorker().then(() => serveStreams(client));
  // Said at once (no service worker: nothing can play), not only once the metadata is in.
  worker.catch((err) => fail(errorText(err)));

  $('message').textContent = 'Finding peers…';
  startStats(torrent);
  await torrent.ready;
  $('title').textContent = torrent.name || 'seedtab';
  const files = torrent.files;
  tell('ready', { infoHash: torrent.infoHash, name: torrent.name, files: files.map((f) => ({ name: f.name, path: f.path, length: f.length })) });
  const file = pickFile(files, opts.file);
  if (!file) {
    fail(opts.file ? `This torrent has no file "${opts.file}"` : 'This torrent has no file a browser can play');
    return;
  }
  await worker;
  $('message').textContent = 'Buffering…';
  const media = document.createElement(mediaKind(file.name) === 'audio' ? 'audio' : 'video');
  media.controls = true;
  media.playsInline = true;
  media.preload = 'auto';
  media.muted = opts.muted;
  media.addEventListener('playing', () => {
    poster.hidden = true;
    $('message').textContent = '';
    tell('playing', { currentTime: media.currentTime, file: file.path });
  });
  media.addEventListener('pause', () => tell('pause', { currentTime: media.currentTime }));
  media.addEventListener('ended', () => tell('ended', {}));
  media.addEventListener('loadedmetadata', () => { if (!opts.autoplay) poster.hidden = true; });
  media.addEventListener('error', () => {
    const e = media.error;
    fail(`The browser cannot play ${file.name}${e && e.message ? `: ${e.message}` : ''}`);
  });
  media.src = streamUrl(torrent, file);
  stage.appendChild(media);
  if (opts.autoplay) {
    media.play().catch((err) => {
      // Autoplay with sound is often refused: the controls are there for a click.
      poster.hidden = true;
      $('message').textContent = `Press play (${errorText(err)})`;
    });
  }
}

function startStats(torrent) {
  let lastPeers = -1;
  const update = () => {
    let s;
    try {
      s = torrent.stats();
    } catch {
      return;
    }
    $('progress').value = s.progress;
    $('stats').textContent = `${formatPercent(s.progress)} · ${plural(s.numPeers, 'peer')} · ↓ ${formatSpeed(s.downloadSpeed)} · ↑ ${formatSpeed(s.uploadSpeed)} · ${formatBytes(s.downloaded)}`;
    tell('progress', { progress: s.progress, downloaded: s.downloaded, uploaded: s.uploaded, downloadSpeed: s.downloadSpeed, uploadSpeed: s.uploadSpeed });
    if (s.numPeers !== lastPeers) {
      lastPeers = s.numPeers;
      tell('peers', { numPeers: s.numPeers });
    }
  };
  update();
  setInterval(update, 1000);
}

start().catch((err) => fail(errorText(err)));
