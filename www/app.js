// seedtab web app: wires the page (download panel, seed panel, tracker list, errors, status line)
// to the WebAssembly core. Everything from the swarm or the user is shown with textContent/value.
import { Client } from '../pkg/seedtab.js';
import { loadConfig, pickIceServers, pickTrackers } from './app/config.mjs';
import {
  errorText,
  formatBytes,
  formatPercent,
  formatSpeed,
  multiFileName,
  parseTrackerList,
  plural,
  safeFileName,
} from './app/format.mjs';

const TICK_MS = 500;
const SAVE_GAP_MS = 400; // pause between files so the browser accepts several downloads
const MAX_TORRENT_FILE = 16 * 1024 * 1024;

const $ = (id) => document.getElementById(id);

const state = {
  iceServers: [],
  trackers: [],
  owner: null, // { key, client, torrents: Set } — the client new torrents go to
  download: null, // { torrent, owner, shared, done, failed, filesShown }
  seeds: [], // [{ torrent, owner }], the last one is on display
  seedRun: 0, // guards against an older, slower seed() overwriting a newer one
  ticker: 0,
  seedUrl: null, // object URL of the shown .torrent file
};

// ---- errors ---------------------------------------------------------------------------------

function showError(doing, err) {
  const box = $('error');
  box.textContent = `${doing}: ${errorText(err)}`;
  box.hidden = false;
  console.error(doing, err);
}

function clearError() {
  const box = $('error');
  box.textContent = '';
  box.hidden = true;
}

// ---- clients --------------------------------------------------------------------------------
// The core takes its tracker list when a Client is made, so a changed list gets a new Client.
// An older Client lives on while it still has torrents and is destroyed with its last one.

function readTrackers() {
  const { trackers, invalid } = parseTrackerList($('trackers-input').value);
  state.trackers = trackers;
  const note = $('trackers-note');
  note.textContent = invalid.length
    ? `Ignored (not a ws:// or wss:// URL): ${invalid.join(', ')}`
    : '';
  note.hidden = invalid.length === 0;
  renderStatus();
}

function acquireOwner() {
  readTrackers();
  const key = JSON.stringify(state.trackers);
  if (!state.owner || state.owner.key !== key) {
    const client = new Client({ trackers: state.trackers, iceServers: state.iceServers });
    const old = state.owner;
    state.owner = { key, client, torrents: new Set() };
    if (old && old.torrents.size === 0) old.client.destroy();
  }
  return state.owner;
}

function release(owner, torrent) {
  owner.torrents.delete(torrent);
  if (owner !== state.owner && owner.torrents.size === 0) owner.client.destroy();
}

// ---- download -------------------------------------------------------------------------------

async function addDownload(input, doing) {
  clearError();
  await ready;
  let owner;
  let torrent;
  try {
    owner = acquireOwner();
    torrent = await owner.client.add(input);
  } catch (err) {
    showError(doing, err);
    return;
  }
  const current = state.download;
  const same = (other) => other.owner === owner && other.torrent.infoHash === torrent.infoHash;
  if (current && same(current)) return; // already on display
  const shared = state.seeds.some(same); // downloading what this tab seeds: show, don't own
  if (current) stopDownload(current);
  if (!shared) owner.torrents.add(torrent);
  const d = { torrent, owner, shared, done: false, failed: false, filesShown: false };
  state.download = d;
  watchDownload(d);
  $('download-files').replaceChildren();
  $('download-save').disabled = true;
  $('download-details').hidden = false;
  renderDownload();
  startTicker();
}

function stopDownload(d) {
  if (d.shared) return; // belongs to a seed: keep it running
  try {
    d.torrent.destroy();
  } catch (err) {
    console.warn('destroy failed', err);
  }
  release(d.owner, d.torrent);
}

function watchDownload(d) {
  const t = d.torrent;
  const isShown = () => state.download === d;
  const markDone = () => {
    if (d.done || d.failed) return;
    d.done = true;
    if (isShown()) renderDownload();
  };
  const markFailed = (err) => {
    if (d.done || d.failed || !isShown()) return;
    d.failed = true;
    showError('Download failed', err);
    renderDownload();
  };
  if (typeof t.on === 'function') {
    t.on('metadata', () => isShown() && renderDownload());
    t.on('done', markDone);
    t.on('error', markFailed);
  }
  if (t.done && typeof t.done.then === 'function') t.done.then(markDone, markFailed);
}

function renderDownload() {
  const d = state.download;
  if (!d) return;
  const t = d.torrent;
  const stats = readStats(t);
  const files = readFiles(t);
  const progress = Number(stats.progress ?? t.progress) || 0;

  $('download-name').textContent = t.name || t.infoHash || 'Unknown torrent';
  $('download-progress').value = d.done ? 1 : Math.min(Math.max(progress, 0), 1);
  let status;
  if (d.failed) status = 'Failed';
  else if (d.done) status = 'Done';
  else if (files.length === 0) status = 'Fetching metadata…';
  else status = `Downloading ${formatPercent(progress)}`;
  $('download-status').textContent = status;
  $('download-speed').textContent =
    `↓ ${formatSpeed(stats.downloadSpeed ?? 0)} · ↑ ${formatSpeed(stats.uploadSpeed ?? 0)}`;
  $('download-peers').textContent = String(Number(stats.numPeers ?? 0));

  if (!d.filesShown && files.length > 0) {
    d.filesShown = true;
    $('download-files').replaceChildren(...files.map(fileItem));
    $('download-save').textContent = files.length === 1 ? 'Save file' : `Save ${files.length} files`;
  }
  $('download-save').disabled = !(d.done && !d.failed && files.length > 0);
}

function fileItem(file) {
  const li = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'file-name';
  name.textContent = file.path || file.name || '(unnamed)';
  const size = document.createElement('span');
  size.className = 'file-size';
  size.textContent = formatBytes(file.length);
  li.append(name, size);
  return li;
}

async function saveFiles() {
  const d = state.download;
  if (!d || !d.done) return;
  clearError();
  const button = $('download-save');
  button.disabled = true;
  try {
    const files = readFiles(d.torrent);
    for (let i = 0; i < files.length; i += 1) {
      if (i > 0) await sleep(SAVE_GAP_MS);
      const file = files[i];
      const blob =
        typeof file.blob === 'function' ? await file.blob() : new Blob([await file.bytes()]);
      const base = String(file.name || file.path || '').split(/[/\\]/).pop();
      saveBlob(blob, safeFileName(base));
    }
  } catch (err) {
    showError('Could not save the files', err);
  } finally {
    if (state.download === d) button.disabled = false;
  }
}

function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function addMagnet() {
  const field = $('magnet-input');
  const magnet = field.value.trim();
  if (!magnet) {
    showError('Could not add the magnet link', 'paste a magnet link first.');
    return;
  }
  addDownload(magnet, 'Could not add the magnet link');
}

async function openTorrentFile(file) {
  const doing = 'Could not open the .torrent file';
  clearError();
  if (file.size > MAX_TORRENT_FILE) {
    showError(doing, `${file.name} is too large to be a .torrent file (to share it, use the Seed panel).`);
    return;
  }
  let bytes;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch (err) {
    showError(doing, err);
    return;
  }
  await addDownload(bytes, doing);
}

// ---- seed -----------------------------------------------------------------------------------

async function seedFiles(fileList) {
  const files = Array.from(fileList);
  if (files.length === 0) return;
  clearError();
  await ready;
  const run = ++state.seedRun;
  const status = $('seed-status');
  status.textContent = `Hashing ${plural(files.length, 'file')}…`;
  status.hidden = false;
  let owner;
  let torrent;
  try {
    owner = acquireOwner();
    const options = files.length > 1 ? { name: multiFileName(files.map((f) => f.name)) } : {};
    torrent = await owner.client.seed(files, options);
  } catch (err) {
    if (run === state.seedRun) status.hidden = true;
    showError('Could not seed the files', err);
    return;
  }
  owner.torrents.add(torrent);
  state.seeds.push({ torrent, owner });
  if (run === state.seedRun) {
    status.hidden = true;
    showSeed(torrent);
  }
  startTicker();
}

function showSeed(torrent) {
  const name = torrent.name || torrent.infoHash || 'seed';
  $('seed-name').textContent = name;
  const magnet = $('seed-magnet');
  magnet.textContent = torrent.magnetURI || ''; // default value, so .value and text agree
  magnet.value = torrent.magnetURI || '';

  const link = $('seed-torrent');
  if (state.seedUrl) URL.revokeObjectURL(state.seedUrl);
  state.seedUrl = null;
  const bytes = torrent.torrentFile;
  if (bytes && bytes.length) {
    state.seedUrl = URL.createObjectURL(new Blob([bytes], { type: 'application/x-bittorrent' }));
    link.href = state.seedUrl;
    link.download = `${safeFileName(name, 'seedtab')}.torrent`;
    link.hidden = false;
  } else {
    link.removeAttribute('href');
    link.hidden = true;
  }
  $('seed-details').hidden = false;
  renderSeed();
}

function renderSeed() {
  const seed = state.seeds[state.seeds.length - 1];
  if (!seed || $('seed-details').hidden) return;
  const stats = readStats(seed.torrent);
  $('seed-stats').textContent =
    `Uploaded ${formatBytes(stats.uploaded ?? 0)} · ${formatSpeed(stats.uploadSpeed ?? 0)} · ` +
    `${plural(Number(stats.numPeers ?? 0), 'peer')}`;
}

async function copyMagnet() {
  const field = $('seed-magnet');
  const button = $('seed-copy');
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch {
    // No clipboard API (insecure origin) or no permission: select the text instead.
    field.focus();
    field.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  flashLabel(button, copied ? 'Copied' : 'Selected: press Ctrl+C to copy');
}

function flashLabel(button, text) {
  if (!button.dataset.label) button.dataset.label = button.textContent;
  button.textContent = text;
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(
    setTimeout(() => {
      button.textContent = button.dataset.label;
    }, 2000),
  );
}

// ---- display loop and status line ------------------------------------------------------------

function activeCount() {
  return state.seeds.length + (state.download && !state.download.shared ? 1 : 0);
}

function startTicker() {
  renderStatus();
  if (!state.ticker) state.ticker = setInterval(tick, TICK_MS);
}

function tick() {
  renderDownload();
  renderSeed();
  renderStatus();
  if (activeCount() === 0) {
    clearInterval(state.ticker);
    state.ticker = 0;
  }
}

function renderStatus() {
  const trackers = state.trackers.length ? state.trackers.join(', ') : 'none';
  $('status').textContent = `Trackers: ${trackers} · ${plural(activeCount(), 'active torrent')}`;
}

function readStats(torrent) {
  try {
    return torrent.stats() || {};
  } catch {
    return {};
  }
}

function readFiles(torrent) {
  try {
    return Array.from(torrent.files || []);
  } catch {
    return [];
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- drag and drop ---------------------------------------------------------------------------

function dropZone(zone, onDrop) {
  const inside = (event) => event.relatedTarget && zone.contains(event.relatedTarget);
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dragover');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!inside(event)) zone.classList.remove('dragover');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    event.stopPropagation();
    zone.classList.remove('dragover');
    onDrop(event.dataTransfer);
  });
}

function onDownloadDrop(data) {
  const files = Array.from(data.files || []);
  if (files.length > 0) {
    const file = files.find((f) => /\.torrent$/i.test(f.name)) || files[0];
    openTorrentFile(file);
    return;
  }
  const text = (data.getData('text/uri-list') || data.getData('text/plain') || '').trim();
  if (text) {
    $('magnet-input').value = text.split(/\s+/)[0];
    addMagnet();
  }
}

function onSeedDrop(data) {
  const items = Array.from(data.items || []);
  const folder = items.some((item) => item.webkitGetAsEntry?.()?.isDirectory);
  if (folder) {
    showError('Could not seed the files', 'folders cannot be dropped; select the files inside instead.');
    return;
  }
  seedFiles(data.files || []);
}

// ---- start ----------------------------------------------------------------------------------

const configLoaded = loadConfig(); // start fetching before the DOM is ready

async function init() {
  const config = await configLoaded;
  state.iceServers = pickIceServers(config);
  const field = $('trackers-input');
  if (!field.value.trim()) field.value = pickTrackers(config, window.location).join('\n');
  readTrackers();
}

function wire() {
  $('magnet-form').addEventListener('submit', (event) => {
    event.preventDefault();
    addMagnet();
  });
  $('torrent-input').addEventListener('change', (event) => {
    const [file] = event.target.files;
    event.target.value = ''; // picking the same file again still fires change
    if (file) openTorrentFile(file);
  });
  $('download-save').addEventListener('click', saveFiles);
  $('seed-input').addEventListener('change', (event) => {
    const files = Array.from(event.target.files);
    event.target.value = '';
    seedFiles(files);
  });
  $('seed-copy').addEventListener('click', copyMagnet);
  $('trackers-input').addEventListener('input', readTrackers);
  dropZone($('download-drop'), onDownloadDrop);
  dropZone($('seed-drop'), onSeedDrop);
  // A file dropped outside the panels must not make the browser navigate away from the tab.
  const blockFiles = (event) => {
    if (event.dataTransfer?.types.includes('Files')) event.preventDefault();
  };
  window.addEventListener('dragover', blockFiles);
  window.addEventListener('drop', blockFiles);

  // Links like https://host/#magnet:?xt=… start that download straight away.
  const hash = decodeURIComponent(window.location.hash.slice(1));
  if (hash.startsWith('magnet:')) {
    $('magnet-input').value = hash;
    addMagnet();
  }
}

let ready; // resolves once the config is in; actions wait for it

function main() {
  ready = init();
  wire();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
