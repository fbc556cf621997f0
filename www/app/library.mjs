// Pure helpers for the Library panel and the storage line: ratio, state label, storage summary,
// storage error text, re-check result, save-method choice, safe save paths. No DOM access, so
// `node --test tests/browser/app-unit.test.mjs` exercises them.
import { formatBytes, formatPercent, safeFileName } from './format.mjs';

/** Share ratio: uploaded / size with 2 decimals ("0.00", "1.25"); "—" while the size is unknown. */
export function formatRatio(uploaded, length) {
  const up = Number(uploaded);
  const size = Number(length);
  if (!Number.isFinite(size) || size <= 0) return '—';
  const ratio = Number.isFinite(up) && up > 0 ? up / size : 0;
  return ratio.toFixed(2);
}

/**
 * What a library row says about a torrent: { kind, text }. kind is one of 'error', 'paused',
 * 'seeding', 'downloading', 'metadata' (also used as a CSS class and data-state); an error wins
 * over paused (a storage failure pauses the torrent), paused over the rest.
 */
export function stateLabel({ error = null, paused = false, progress = 0, hasMetadata = true } = {}) {
  const p = Number(progress) || 0;
  const complete = hasMetadata && p >= 1;
  if (error) return { kind: 'error', text: 'Error · paused' };
  if (paused) {
    return { kind: 'paused', text: complete || !hasMetadata ? 'Paused' : `Paused at ${formatPercent(p)}` };
  }
  if (!hasMetadata) return { kind: 'metadata', text: 'Fetching metadata…' };
  if (complete) return { kind: 'seeding', text: 'Seeding' };
  return { kind: 'downloading', text: `Downloading ${formatPercent(p)}` };
}

const BACKENDS = { opfs: 'OPFS', idb: 'IndexedDB', memory: 'memory' };

/**
 * The storage line from client.storageEstimate():
 * "Storage: OPFS, 120 MB used of 10 GB (persistent)". For 'memory' it says pieces are not kept.
 */
export function storageLine(estimate) {
  const e = estimate || {};
  const why = e.fallbackReason ? ` (${e.fallbackReason})` : '';
  if (e.backend === 'memory' || !e.backend) {
    return `Storage: memory only${why}. Pieces are not kept: torrents stop when this tab closes.`;
  }
  const name = BACKENDS[e.backend] || String(e.backend);
  const quota = Number(e.quota) > 0 ? ` of ${formatBytes(e.quota)}` : '';
  const kept = e.persisted ? 'persistent' : 'the browser may clear it when space runs low';
  return `Storage: ${name}${why}, ${formatBytes(e.usage ?? 0)} used${quota} (${kept})`;
}

/**
 * The message shown in #error when a torrent's storage fails (the core pauses the torrent and
 * reports e.g. "Storage failed, torrent paused: browser storage is full (QuotaExceededError …)");
 * `name` is the torrent's name (from the swarm: the caller shows the text with textContent).
 */
export function storageErrorText(name, message) {
  const detail = String(message ?? '').trim().replace(/^Storage failed, torrent paused:\s*/i, '')
    || 'unknown error';
  const torrent = `"${name || 'a torrent'}"`;
  const what = `${torrent} could not be written (${detail})`;
  if (/full|quota/i.test(detail)) {
    // The browser's own words ("QuotaExceededError: …") stay in the library row's note.
    return `Storage is full: ${torrent} could not be written. The torrent is paused; free space (remove torrents from the Library) and press Resume.`;
  }
  if (/another tab/i.test(detail)) {
    return `Storage failed: ${what}. The torrent is paused; close the other seedtab tab and press Resume.`;
  }
  return `Storage failed: ${what}. The torrent is paused; press Resume to try again.`;
}

/** What Re-check found: "intact", "1 damaged piece re-fetched", "3 damaged pieces re-fetched". */
export function recheckText(damaged) {
  const n = Math.max(0, Math.floor(Number(damaged) || 0));
  if (n === 0) return 'Re-check: intact';
  return `Re-check: ${n} damaged ${n === 1 ? 'piece' : 'pieces'} re-fetched`;
}

/**
 * Whether Save should use the File System Access picker (streams to disk). Tests set
 * window.__seedtabNoPicker, since a picker in a headless browser waits forever.
 */
export function usePicker(win, kind = 'showSaveFilePicker') {
  return Boolean(win) && kind in win && !win.__seedtabNoPicker;
}

/**
 * A torrent file's path ("folder/sub/a.txt", from the swarm) as safe path segments for writing
 * into a folder the user picked: no empty, "." or ".." segments, no separators or control
 * characters in a segment.
 */
export function safePathParts(path, fallback = 'download') {
  const parts = String(path ?? '')
    .split(/[/\\]/)
    .filter((p) => p !== '' && p !== '.' && p !== '..')
    .map((p) => safeFileName(p, '_'));
  return parts.length ? parts : [safeFileName('', fallback)];
}
