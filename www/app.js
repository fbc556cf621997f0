// seedtab web app: wires the page (download panel, seed panel, library, earned reward receipts,
// storage line, tracker list, errors, status line) to the WebAssembly core. Everything from the swarm or the user is
// shown with textContent/value, never as HTML.
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
import {
  exactBytes,
  heldLine,
  keyState,
  ledgerStateText,
  ledgerTotalText,
  ledgerUnreachableText,
  submitErrorLines,
  submitText,
  summarizeReceipts,
  throttle,
} from './app/earned.mjs';
import {
  formatRatio,
  recheckText,
  safePathParts,
  stateLabel,
  storageErrorText,
  storageLine,
  usePicker,
} from './app/library.mjs';

const TICK_MS = 500; // download and seed panels
const LIBRARY_MS = 1000; // library rows
const STORAGE_MS = 5000; // storage line
const EARNED_MS = 10_000; // receipts held: the slow timer (other tabs of this site add some too)
const RECEIPT_GAP_MS = 1000; // at most one refresh a second while 'receipt' events stream in
const SAVE_GAP_MS = 400; // pause between files so the browser accepts several downloads
const MAX_TORRENT_FILE = 16 * 1024 * 1024;

const $ = (id) => document.getElementById(id);

const state = {
  client: null, // the page's one Client (see startClient)
  iceServers: [],
  trackers: [], // the Trackers field's list, given to each new torrent
  download: null, // { torrent, infoHash, done, failed, filesShown }: shown in the Download panel
  seed: null, // the torrent shown in the Seed panel
  seedRun: 0, // guards against an older, slower seed() overwriting a newer one
  ticker: 0,
  seedUrl: null, // object URL of the shown .torrent file
  library: new Map(), // infoHash -> { torrent, infoHash, error, busy, els }
  storageBusy: false,
  earned: {
    key: null, // keyState() of client.rewardInfo(), once known
    rows: new Map(), // infoHash -> the row's elements
    busy: false, // reading client.receipts()
    again: false, // another read was asked for meanwhile
    submitting: false,
  },
};

// ---- errors ---------------------------------------------------------------------------------

function showError(doing, err) {
  showErrorText(`${doing}: ${errorText(err)}`);
  console.error(doing, err);
}

/** Shows `text` in #error; `source` (an info-hash) lets Resume clear that torrent's message. */
function showErrorText(text, source = '') {
  const box = $('error');
  box.textContent = text;
  box.dataset.source = source;
  box.hidden = false;
}

function clearError(source) {
  const box = $('error');
  if (source !== undefined && box.dataset.source !== source) return;
  box.textContent = '';
  box.dataset.source = '';
  box.hidden = true;
}

// ---- the client -----------------------------------------------------------------------------
// One Client for the page, made at start (restore() needs it before anything else happens) with
// the trackers from /config.json and the Trackers field. The core takes its tracker list when a
// Client is made, so when the user edits the field later, new torrents still go to this Client
// and get the edited list through the per-torrent `announce` option of seed()/add(). A tracker
// removed from the field stays in use until the page is reloaded; torrents already running keep
// the trackers they started with.

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

function newTorrentOptions() {
  readTrackers();
  return { announce: state.trackers };
}

/**
 * The client, once start-up is done (restore() included, so a torrent added now is never
 * started twice from storage); throws if it could not be made.
 */
async function getClient() {
  await restored;
  if (!state.client) throw new Error('seedtab could not start (see the message above)');
  return state.client;
}

// ---- download -------------------------------------------------------------------------------

async function addDownload(input, doing) {
  clearError();
  let torrent;
  try {
    const client = await getClient();
    torrent = client.add(input, newTorrentOptions());
  } catch (err) {
    showError(doing, err);
    return;
  }
  const infoHash = torrent.infoHash;
  addToLibrary(torrent, { first: true });
  if (state.download && state.download.infoHash === infoHash) return; // already on display
  // An earlier download goes on in the Library; the panel shows the new one.
  const d = { torrent, infoHash, done: false, failed: false, filesShown: false };
  state.download = d;
  watchDownload(d);
  $('download-files').replaceChildren();
  $('download-save').disabled = true;
  $('download-details').hidden = false;
  renderDownload();
  startTicker();
}

function watchDownload(d) {
  const t = d.torrent;
  const isShown = () => state.download === d;
  const markDone = () => {
    if (d.done || d.failed) return;
    d.done = true;
    if (isShown()) renderDownload();
  };
  // `done` rejects when the torrent stops before it completes (Remove hides the panel first).
  // Storage failures come as "error" events and only pause it: the Library reports those.
  const markFailed = (err) => {
    if (d.done || d.failed || !isShown()) return;
    d.failed = true;
    showError('Download failed', err);
    renderDownload();
  };
  if (typeof t.on === 'function') t.on('metadata', () => isShown() && renderDownload());
  if (t.done && typeof t.done.then === 'function') t.done.then(markDone, markFailed);
}

function hideDownload() {
  state.download = null;
  $('download-details').hidden = true;
  $('download-files').replaceChildren();
}

function renderDownload() {
  const d = state.download;
  if (!d) return;
  const t = d.torrent;
  const stats = readStats(t);
  const files = readFiles(t);
  const progress = Number(stats.progress ?? t.progress) || 0;
  const entry = state.library.get(d.infoHash);

  $('download-name').textContent = t.name || t.infoHash || 'Unknown torrent';
  $('download-progress').value = d.done ? 1 : Math.min(Math.max(progress, 0), 1);
  let status;
  if (d.failed) status = 'Failed';
  else if (d.done) status = 'Done';
  else if (entry?.error) status = 'Paused: storage failed (see the message above)';
  else if (stats.paused) status = `Paused at ${formatPercent(progress)}`;
  else if (files.length === 0) status = 'Fetching metadata…';
  else status = `Downloading ${formatPercent(progress)}`;
  setText($('download-status'), status);
  setText($('download-speed'),
    `↓ ${formatSpeed(stats.downloadSpeed ?? 0)} · ↑ ${formatSpeed(stats.uploadSpeed ?? 0)}`);
  setText($('download-peers'), String(Number(stats.numPeers ?? 0)));

  if (!d.filesShown && files.length > 0) {
    d.filesShown = true;
    $('download-files').replaceChildren(...files.map(fileItem));
    $('download-save').textContent = files.length === 1 ? 'Save file' : `Save ${files.length} files`;
  }
  if (!d.saving) $('download-save').disabled = !(d.done && !d.failed && files.length > 0);
}

function fileItem(file) {
  const li = document.createElement('li');
  li.append(
    el('span', 'file-name', file.path || file.name || '(unnamed)'),
    el('span', 'file-size', formatBytes(file.length)),
  );
  return li;
}

async function saveDownload() {
  const d = state.download;
  if (!d || !d.done) return;
  const button = $('download-save');
  d.saving = true;
  button.disabled = true;
  try {
    await saveTorrent(d.torrent);
  } finally {
    d.saving = false;
    if (state.download === d) renderDownload();
  }
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

// ---- saving files ---------------------------------------------------------------------------
// Where the browser has the File System Access API, the file streams from storage to the file
// the user picks (a folder for multi-file torrents); otherwise an object URL of the blob goes to
// an <a download>. For stored torrents file.blob() is disk-backed (an OPFS file slice), so
// neither way builds the file in memory. Take the blob once the download is complete: an OPFS
// blob becomes unreadable once the torrent's data is written again.

async function saveTorrent(torrent) {
  clearError();
  const files = readFiles(torrent);
  if (files.length === 0) return;
  try {
    // The picker must open straight from the click (user activation): nothing is awaited first.
    if (files.length === 1 && usePicker(window, 'showSaveFilePicker')) {
      await saveWithPicker(files[0]);
    } else if (files.length > 1 && usePicker(window, 'showDirectoryPicker')) {
      await saveToFolder(files);
    } else {
      await saveAsDownloads(files);
    }
  } catch (err) {
    if (err && err.name === 'AbortError') return; // the user closed the picker
    showError('Could not save the files', err);
  }
}

function baseName(file) {
  return safeFileName(String(file.name || file.path || '').split(/[/\\]/).pop());
}

async function fileBlob(file) {
  return typeof file.blob === 'function' ? file.blob() : new Blob([await file.bytes()]);
}

async function saveWithPicker(file) {
  const handle = await window.showSaveFilePicker({ suggestedName: baseName(file) });
  const writable = await handle.createWritable();
  const blob = await fileBlob(file);
  await blob.stream().pipeTo(writable); // closes the file when done, aborts it on failure
}

async function saveToFolder(files) {
  const root = await window.showDirectoryPicker({ mode: 'readwrite' });
  for (const file of files) {
    const parts = safePathParts(file.path || file.name);
    let dir = root;
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
    const handle = await dir.getFileHandle(parts[parts.length - 1], { create: true });
    const writable = await handle.createWritable();
    await (await fileBlob(file)).stream().pipeTo(writable);
  }
}

async function saveAsDownloads(files) {
  for (let i = 0; i < files.length; i += 1) {
    if (i > 0) await sleep(SAVE_GAP_MS);
    saveBlob(await fileBlob(files[i]), baseName(files[i]));
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

// ---- seed -----------------------------------------------------------------------------------

async function seedFiles(fileList) {
  const files = Array.from(fileList);
  if (files.length === 0) return;
  clearError();
  const run = ++state.seedRun;
  const status = $('seed-status');
  status.textContent = `Hashing ${plural(files.length, 'file')}…`;
  status.hidden = false;
  let torrent;
  try {
    const client = await getClient();
    const options = newTorrentOptions();
    if (files.length > 1) options.name = multiFileName(files.map((f) => f.name));
    torrent = await client.seed(files, options);
  } catch (err) {
    if (run === state.seedRun) status.hidden = true;
    showError('Could not seed the files', err);
    return;
  }
  addToLibrary(torrent, { first: true });
  refreshStorage();
  if (run === state.seedRun) {
    status.hidden = true;
    showSeed(torrent);
  }
  startTicker();
}

function showSeed(torrent) {
  state.seed = torrent;
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

function hideSeed() {
  state.seed = null;
  $('seed-details').hidden = true;
  if (state.seedUrl) URL.revokeObjectURL(state.seedUrl);
  state.seedUrl = null;
}

function renderSeed() {
  const t = state.seed;
  if (!t || $('seed-details').hidden) return;
  const stats = readStats(t);
  const paused = stats.paused ? ' · paused' : '';
  setText($('seed-stats'),
    `Uploaded ${formatBytes(stats.uploaded ?? 0)} · ${formatSpeed(stats.uploadSpeed ?? 0)} · ` +
    `${plural(Number(stats.numPeers ?? 0), 'peer')}${paused}`);
}

async function copySeedMagnet() {
  const field = $('seed-magnet');
  const copied = await copyText(field.value, field);
  flashLabel($('seed-copy'), copied ? 'Copied' : 'Selected: press Ctrl+C to copy');
}

/** Clipboard API, else select `field` (or a temporary one) and execCommand('copy'). */
async function copyText(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (insecure origin) or no permission: select the text instead.
  }
  const temporary = !field;
  const box = field || Object.assign(document.createElement('textarea'), { value: text });
  if (temporary) {
    box.setAttribute('readonly', '');
    box.className = 'offscreen';
    document.body.append(box);
  }
  box.focus();
  box.select();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  if (temporary) box.remove();
  return copied;
}

function flashLabel(button, text) {
  if (!button.dataset.label) button.dataset.label = button.textContent;
  button.textContent = text;
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(
    setTimeout(() => {
      button.textContent = button.dataset.label;
      delete button.dataset.label;
    }, 2000),
  );
}

// ---- library --------------------------------------------------------------------------------
// Every torrent of the client: restored at start, seeded or downloaded since. One row each.

function addToLibrary(torrent, { first = false } = {}) {
  const infoHash = torrent.infoHash;
  const known = state.library.get(infoHash);
  if (known) return known;
  const entry = { torrent, infoHash, error: null, busy: false, els: null };
  entry.els = libraryRow(entry);
  state.library.set(infoHash, entry);
  const list = $('library-list');
  if (first) list.prepend(entry.els.item);
  else list.append(entry.els.item);
  if (typeof torrent.on === 'function') {
    torrent.on('error', (err) => onTorrentError(entry, err));
    torrent.on('metadata', () => renderEntry(entry));
    torrent.on('done', () => renderEntry(entry));
    // A peer's new receipt for our upload has been verified and kept.
    torrent.on('receipt', () => earnedSoon());
  }
  renderEntry(entry);
  renderLibraryEmpty();
  renderStatus();
  return entry;
}

function libraryRow(entry) {
  const item = el('li', 'library-item');
  item.dataset.infohash = entry.infoHash;
  const name = el('h3', 'lib-name name');
  name.id = `lib-name-${entry.infoHash}`; // hex: a safe id
  const stateBadge = el('span', 'lib-state');
  const head = el('div', 'lib-head');
  head.append(name, stateBadge);

  const progress = el('progress', 'lib-progress');
  progress.max = 1;
  progress.value = 0;
  progress.setAttribute('aria-label', 'Progress');

  const { stats, stat } = statList('stats lib-stats');
  const size = stat('Size', 'lib-size');
  const percent = stat('Progress', 'lib-percent');
  const ratio = stat('Ratio', 'lib-ratio');
  const peers = stat('Peers', 'lib-peers');
  const upload = stat('Upload', 'lib-upload');

  const button = (className, text, handler, title) => {
    const b = el('button', className, text);
    b.type = 'button';
    if (title) b.title = title;
    b.addEventListener('click', () => handler(entry, b));
    return b;
  };
  const pause = button('lib-pause secondary', 'Pause', togglePause);
  const save = button('lib-save', 'Save', saveEntry, 'Save the file(s) to disk');
  const copy = button('lib-copy secondary', 'Copy magnet', copyEntryMagnet);
  const recheck = button('lib-recheck secondary', 'Re-check', recheckEntry,
    'Hash every stored piece again; damaged ones are downloaded again');
  const remove = button('lib-remove danger', 'Remove', removeEntry,
    'Stop this torrent and delete it from browser storage');
  const actions = el('div', 'row lib-actions');
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-labelledby', name.id); // "Pause" of which torrent
  actions.append(pause, save, copy, recheck, remove);

  const body = el('div', 'lib-body');
  body.append(stats, actions);

  const note = el('p', 'lib-note');
  note.hidden = true;
  note.setAttribute('role', 'status');

  item.append(head, progress, body, note);
  return { item, name, state: stateBadge, progress, size, percent, ratio, peers, upload, pause, save, copy, recheck, remove, note };
}

function renderEntry(entry) {
  const { torrent: t, els } = entry;
  if (!state.library.has(entry.infoHash)) return;
  const stats = readStats(t);
  const length = t.length ?? undefined; // undefined until the metadata is known
  const hasMetadata = length !== undefined && length !== null;
  const progress = Math.min(Math.max(Number(stats.progress ?? t.progress) || 0, 0), 1);
  const paused = Boolean(stats.paused ?? t.paused);
  const label = stateLabel({ error: entry.error, paused, progress, hasMetadata });
  const complete = hasMetadata && progress >= 1;

  setText(els.name, t.name || t.infoHash);
  setText(els.state, label.text);
  els.state.className = `lib-state state-${label.kind}`;
  els.item.dataset.state = label.kind;
  if (els.progress.value !== progress) els.progress.value = progress;
  setText(els.size, hasMetadata ? formatBytes(length) : '—');
  setText(els.percent, hasMetadata ? formatPercent(progress) : '—');
  setText(els.ratio, formatRatio(stats.uploaded, hasMetadata ? length : stats.length));
  setText(els.peers, String(Number(stats.numPeers ?? 0)));
  setText(els.upload, formatSpeed(stats.uploadSpeed ?? 0));
  setText(els.pause, paused ? 'Resume' : 'Pause');
  els.pause.disabled = entry.busy;
  els.save.disabled = entry.busy || !complete;
  els.recheck.disabled = entry.busy || !hasMetadata;
  els.remove.disabled = entry.removing === true;
}

function renderLibrary() {
  for (const entry of state.library.values()) renderEntry(entry);
}

function renderLibraryEmpty() {
  const empty = $('library-empty');
  empty.hidden = state.library.size > 0;
}

function setNote(entry, text, kind = '') {
  const { note } = entry.els;
  note.textContent = text;
  note.className = kind ? `lib-note ${kind}` : 'lib-note';
  note.hidden = !text;
}

function entryName(entry) {
  return entry.torrent.name || entry.infoHash;
}

function togglePause(entry) {
  const t = entry.torrent;
  try {
    if (t.paused) {
      t.resume();
      if (entry.error) {
        entry.error = null;
        setNote(entry, '');
        clearError(entry.infoHash);
      }
    } else {
      t.pause();
    }
  } catch (err) {
    showError(`Could not ${t.paused ? 'resume' : 'pause'} "${entryName(entry)}"`, err);
  }
  renderEntry(entry);
  if (state.download?.infoHash === entry.infoHash) renderDownload();
}

async function saveEntry(entry) {
  entry.busy = true;
  renderEntry(entry);
  try {
    await saveTorrent(entry.torrent);
  } finally {
    entry.busy = false;
    renderEntry(entry);
  }
}

async function copyEntryMagnet(entry, button) {
  const copied = await copyText(entry.torrent.magnetURI);
  if (copied) flashLabel(button, 'Copied');
  else window.prompt('Copy this magnet link:', entry.torrent.magnetURI);
}

async function recheckEntry(entry) {
  entry.busy = true;
  setNote(entry, 'Re-checking every stored piece…');
  renderEntry(entry);
  try {
    const damaged = await entry.torrent.recheck();
    setNote(entry, recheckText(damaged), Number(damaged) > 0 ? 'warn' : 'ok');
  } catch (err) {
    setNote(entry, `Re-check failed: ${errorText(err)}`, 'warn');
  } finally {
    entry.busy = false;
    renderEntry(entry);
  }
}

async function removeEntry(entry) {
  const name = entryName(entry);
  const sure = window.confirm(
    `Remove "${name}"?\n\nIt stops seeding and its data is deleted from this browser's storage.`,
  );
  if (!sure || !state.library.has(entry.infoHash)) return;
  entry.removing = true;
  // Forget it everywhere first, so the torrent stopping is not reported as a failed download.
  state.library.delete(entry.infoHash);
  entry.els.item.remove();
  if (state.download?.infoHash === entry.infoHash) hideDownload();
  if (state.seed && state.seed.infoHash === entry.infoHash) hideSeed();
  clearError(entry.infoHash);
  renderLibraryEmpty();
  renderStatus();
  try {
    await entry.torrent.remove();
  } catch (err) {
    showError(`Could not free the storage of "${name}"`, err);
  }
  refreshStorage();
}

function onTorrentError(entry, err) {
  const message = errorText(err);
  entry.error = message;
  console.warn('torrent error', entry.infoHash, message);
  if (!state.library.has(entry.infoHash)) return;
  showErrorText(storageErrorText(entryName(entry), message), entry.infoHash);
  setNote(entry, message, 'warn');
  renderEntry(entry);
  if (state.download?.infoHash === entry.infoHash) renderDownload();
  refreshStorage();
}

// ---- earned (reward receipts) ----------------------------------------------------------------
// Receipts peers signed for what this browser uploaded, grouped per torrent, and the ledger's
// total for this browser's key. They live in IndexedDB shared by every tab of this site, so the
// list is re-read (on 'receipt' events, throttled, and on a slow timer) rather than kept here.

/** Shows this browser's key, or why there is none; turns Submit on when there is a key. */
function renderKey(key) {
  state.earned.key = key;
  $('earned-key-box').hidden = !key.enabled;
  setText($('earned-key'), key.key);
  const off = $('earned-off');
  setText(off, key.text);
  off.hidden = key.enabled;
  $('earned').dataset.rewards = key.enabled ? 'on' : 'off';
  renderSubmitButton();
}

function renderSubmitButton() {
  const { key, submitting } = state.earned;
  $('earned-submit').disabled = !key?.enabled || submitting;
}

/** A torrent's name from the Library, for receipts that carry none. */
function libraryName(infoHash) {
  return state.library.get(infoHash)?.torrent.name || '';
}

/** Re-reads the receipts held and redraws the list; overlapping calls become one more read. */
async function refreshEarned() {
  const client = state.client;
  const earned = state.earned;
  if (!client) return;
  if (earned.busy) {
    earned.again = true;
    return;
  }
  earned.busy = true;
  try {
    renderEarned(summarizeReceipts(await client.receipts(), libraryName));
  } catch (err) {
    setText($('earned-held'), `Could not read the receipts held: ${errorText(err)}`);
  } finally {
    earned.busy = false;
  }
  if (earned.again) {
    earned.again = false;
    refreshEarned();
  }
}

const earnedSoon = throttle(refreshEarned, RECEIPT_GAP_MS);

function renderEarned(summary) {
  const held = $('earned-held');
  setText(held, heldLine(summary));
  held.dataset.receipts = String(summary.receipts);
  const { rows } = state.earned;
  const list = $('earned-list');
  const seen = new Set();
  summary.torrents.forEach((t, i) => {
    seen.add(t.infoHash);
    let row = rows.get(t.infoHash);
    if (!row) {
      row = earnedRow(t.infoHash);
      rows.set(t.infoHash, row);
    }
    if (list.children[i] !== row.item) list.insertBefore(row.item, list.children[i] || null);
    renderEarnedRow(row, t);
  });
  for (const [infoHash, row] of rows) {
    if (!seen.has(infoHash)) {
      row.item.remove();
      rows.delete(infoHash);
    }
  }
}

function earnedRow(infoHash) {
  const item = el('li', 'earned-item');
  item.dataset.infohash = infoHash;
  const name = el('h3', 'earned-name name');
  const { stats, stat } = statList('stats earned-stats');
  const bytes = stat('Attested', 'earned-bytes');
  const size = stat('Size', 'earned-size');
  const downloaders = stat('Downloaders', 'earned-downloaders');
  const sessions = stat('Sessions', 'earned-sessions');
  const ledger = stat('Ledger', 'earned-ledger-state');
  item.append(name, stats);
  return { item, name, bytes, size, downloaders, sessions, ledger };
}

function renderEarnedRow(row, t) {
  setText(row.name, t.label);
  row.name.title = t.name ? t.infoHash : ''; // the info-hash stays at hand when a name is shown
  setText(row.bytes, formatBytes(t.bytes));
  row.bytes.title = exactBytes(t.bytes);
  row.item.dataset.bytes = String(t.bytes);
  setText(row.size, t.length ? formatBytes(t.length) : '—');
  setText(row.downloaders, String(t.downloaders));
  setText(row.sessions, String(t.sessions));
  setText(row.ledger, ledgerStateText(t));
}

/** Asks the ledger what it credits to this key; a quiet note when it cannot be reached. */
async function refreshLedger() {
  const client = state.client;
  if (!client || !state.earned.key?.enabled) return;
  const line = $('earned-ledger');
  try {
    const totals = await client.ledgerTotals();
    setText(line, ledgerTotalText(totals));
    line.dataset.bytes = String(Number(totals?.bytes) || 0);
    line.classList.remove('warn');
  } catch (err) {
    setText(line, ledgerUnreachableText(errorText(err)));
    delete line.dataset.bytes;
    console.warn('ledger totals', err);
  }
}

async function submitEarned() {
  const client = state.client;
  const earned = state.earned;
  if (!client || !earned.key?.enabled || earned.submitting) return;
  earned.submitting = true;
  renderSubmitButton();
  const status = $('earned-status');
  const errors = $('earned-errors');
  status.className = 'status-line';
  setText(status, 'Sending the receipts to the ledger…');
  status.hidden = false;
  errors.hidden = true;
  try {
    const result = await client.submitReceipts();
    setText(status, submitText(result));
    status.classList.toggle('warn', Number(result?.rejected) > 0);
    const lines = submitErrorLines(result?.errors);
    errors.replaceChildren(...lines.map((line) => el('li', '', line)));
    errors.hidden = lines.length === 0;
  } catch (err) {
    setText(status, `Could not send the receipts: ${errorText(err)}`);
    status.classList.add('warn');
  } finally {
    earned.submitting = false;
    renderSubmitButton();
  }
  refreshEarned();
  await refreshLedger();
}

async function copyEarnedKey() {
  const key = state.earned.key?.key;
  if (!key) return;
  const copied = await copyText(key);
  if (copied) flashLabel($('earned-key-copy'), 'Copied');
  else window.prompt('Copy this reward key:', key);
}

/** Once the client exists: the key (or why there is none), the receipts held, the ledger total. */
async function startEarned() {
  await ready;
  const client = state.client;
  if (!client) {
    renderKey(keyState({ enabled: false, reason: 'seedtab could not start (see the message above).' }));
    setText($('earned-held'), 'No receipts: seedtab is not running.');
    setText($('earned-ledger'), '');
    return;
  }
  let info;
  try {
    info = await client.rewardInfo();
  } catch (err) {
    info = { enabled: false, reason: `Reward receipts are off: ${errorText(err)}` };
  }
  const key = keyState(info);
  renderKey(key);
  if (!key.enabled) setText($('earned-ledger'), 'Ledger total for this key: no key, nothing to credit.');
  await refreshEarned();
  setInterval(refreshEarned, EARNED_MS);
  await refreshLedger();
}

// ---- storage line ---------------------------------------------------------------------------

async function refreshStorage() {
  const client = state.client;
  if (!client || state.storageBusy) return;
  state.storageBusy = true;
  const line = $('storage');
  try {
    const estimate = await client.storageEstimate();
    setText(line, storageLine(estimate));
    line.dataset.backend = estimate.backend;
    line.dataset.usage = String(Number(estimate.usage) || 0);
    line.classList.toggle('warn', estimate.backend === 'memory');
  } catch (err) {
    setText(line, `Storage: unknown (${errorText(err)})`);
  } finally {
    state.storageBusy = false;
  }
}

// ---- display loop and status line ------------------------------------------------------------

function startTicker() {
  renderStatus();
  if (!state.ticker) state.ticker = setInterval(tick, TICK_MS);
}

function tick() {
  renderDownload();
  renderSeed();
  if (!state.download && !state.seed) {
    clearInterval(state.ticker);
    state.ticker = 0;
  }
}

function renderStatus() {
  const trackers = state.trackers.length ? state.trackers.join(', ') : 'none';
  setText($('status'),
    `Trackers: ${trackers} · ${plural(state.library.size, 'torrent')} in the library`);
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

/** A new element with an optional class and text (textContent: never parsed as HTML). */
/** A `<dl>` of label/value pairs; `stat(label, className)` adds one and returns its `<dd>`. */
function statList(className) {
  const stats = el('dl', className);
  const stat = (label, valueClass) => {
    const dd = el('dd', valueClass, '—');
    const div = el('div');
    div.append(el('dt', '', label), dd);
    stats.append(div);
    return dd;
  };
  return { stats, stat };
}

function el(tag, className = '', text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** Sets textContent only when it changes (keeps text selections and screen readers calm). */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
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

/** Config, then the Client; resolves once the client exists (`ready`). */
async function startClient() {
  const config = await configLoaded;
  state.iceServers = pickIceServers(config);
  const field = $('trackers-input');
  if (!field.value.trim()) field.value = pickTrackers(config, window.location).join('\n');
  readTrackers();
  try {
    state.client = new Client({
      trackers: state.trackers, iceServers: state.iceServers, requireReceipts: readRequireReceipts(),
    });
    showRequireLimit();
  } catch (err) {
    showError('seedtab could not start', err);
  }
}

const REQUIRE_KEY = 'seedtab.requireReceipts';

/** The "require receipts" choice, kept in this browser between visits (off by default). */
function readRequireReceipts() {
  try { return localStorage.getItem(REQUIRE_KEY) === '1'; } catch { return false; }
}

function setRequireReceipts(on) {
  try { localStorage.setItem(REQUIRE_KEY, on ? '1' : '0'); } catch { /* not kept: fine */ }
  if (state.client) state.client.setRequireReceipts(on);
  showRequireLimit();
}

/** What the client actually applies, for tests and the curious: bytes, or "off". */
function showRequireLimit() {
  const limit = state.client ? state.client.requireReceipts : null;
  $('earned-require').dataset.limit = limit == null ? 'off' : String(limit);
}

/** Brings back every torrent kept in this browser, then keeps the library and storage line fresh. */
async function restoreLibrary() {
  await ready;
  const client = state.client;
  if (!client) {
    $('library-loading').hidden = true;
    renderLibraryEmpty();
    setText($('storage'), 'Storage: unavailable');
    return;
  }
  // Ask once not to be evicted under storage pressure; the storage line shows the answer.
  client.persist().catch((err) => console.warn('persist() failed', err)).finally(refreshStorage);
  let restored = [];
  try {
    restored = await client.restore();
  } catch (err) {
    showError('Could not open the torrents kept in this browser', err);
  }
  for (const torrent of restored) addToLibrary(torrent);
  $('library-loading').hidden = true;
  renderLibraryEmpty();
  refreshStorage();
  setInterval(renderLibrary, LIBRARY_MS);
  setInterval(refreshStorage, STORAGE_MS);
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
  $('download-save').addEventListener('click', saveDownload);
  $('seed-input').addEventListener('change', (event) => {
    const files = Array.from(event.target.files);
    event.target.value = '';
    seedFiles(files);
  });
  $('seed-copy').addEventListener('click', copySeedMagnet);
  $('earned-submit').addEventListener('click', submitEarned);
  $('earned-require').checked = readRequireReceipts();
  $('earned-require').addEventListener('change', (e) => setRequireReceipts(e.target.checked));
  $('earned-key-copy').addEventListener('click', copyEarnedKey);
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

let ready; // resolves once the Client is made
let restored; // resolves once the stored torrents are back; actions wait for it

function main() {
  ready = startClient();
  restored = restoreLibrary().catch((err) => showError('seedtab could not start', err));
  const earned = startEarned().catch((err) => console.error('Earned panel', err));
  wire();
  restored.finally(() => {
    document.body.dataset.ready = 'true'; // for tests: the library shows what storage held
  });
  earned.finally(() => {
    $('earned').dataset.ready = 'true'; // for tests: key, receipts held and ledger total shown
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
