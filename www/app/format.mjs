// Pure helpers for the seedtab page: HTML escaping, human-readable sizes, speeds and counts,
// tracker-list parsing, safe download file names and error text. No DOM access, so
// `node --test tests/browser/app-unit.test.mjs` can exercise them.

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes a value for use inside HTML text or a quoted attribute. */
export function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** 1536 → "1.5 KB" (decimal units; one decimal below 10, none above). Accepts numbers or BigInts. */
export function formatBytes(bytes) {
  let value = Number(bytes);
  if (!Number.isFinite(value) || value < 0) return '—';
  let unit = 0;
  while (unit < UNITS.length - 1 && value >= 999.5) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return value < 9.95 ? `${value.toFixed(1)} ${UNITS[unit]}` : `${Math.round(value)} ${UNITS[unit]}`;
}

/** Bytes per second → "1.5 MB/s". */
export function formatSpeed(bytesPerSecond) {
  const text = formatBytes(bytesPerSecond);
  return text === '—' ? text : `${text}/s`;
}

/** 0..1 → "42%", rounded down so 100% only shows when really complete. */
export function formatPercent(fraction) {
  const p = Number(fraction);
  if (!Number.isFinite(p) || p <= 0) return '0%';
  if (p >= 1) return '100%';
  return `${Math.floor(p * 100 + 1e-9)}%`;
}

/** plural(1, 'peer') → "1 peer", plural(3, 'peer') → "3 peers". */
export function plural(count, word) {
  const n = Number(count) || 0;
  return `${n} ${n === 1 ? word : `${word}s`}`;
}

function isTrackerUrl(text) {
  try {
    const url = new URL(text);
    return (url.protocol === 'ws:' || url.protocol === 'wss:') && url.host !== '';
  } catch {
    return false;
  }
}

/**
 * Splits a comma-, space- or newline-separated list of tracker URLs.
 * Returns { trackers: unique ws:// and wss:// URLs in order, invalid: the other entries }.
 */
export function parseTrackerList(text) {
  const trackers = [];
  const invalid = [];
  for (const entry of String(text ?? '').split(/[\s,]+/)) {
    if (!entry) continue;
    if (!isTrackerUrl(entry)) invalid.push(entry);
    else if (!trackers.includes(entry)) trackers.push(entry);
  }
  return { trackers, invalid };
}

// Control characters, zero-width and bidirectional-override characters (which can disguise
// "evil\u202Etxt.exe" as "evilexe.txt").
const INVISIBLE = /[\p{Cc}\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/gu;
const MAX_NAME = 200;

/**
 * Makes a name from the swarm safe for an <a download> attribute: no control or bidi characters,
 * path separators and Windows-reserved characters become "_", no leading or trailing dots or
 * spaces, at most 200 characters (the extension is kept). Falls back to `fallback`.
 */
export function safeFileName(name, fallback = 'download') {
  let safe = String(name ?? '')
    .replace(INVISIBLE, '')
    .replace(/[/\\<>:"|?*]/g, '_')
    .replace(/^[\s.]+/, '')
    .replace(/[\s.]+$/, '');
  const chars = Array.from(safe);
  if (chars.length > MAX_NAME) {
    const dot = safe.lastIndexOf('.');
    const ext = dot > 0 && safe.length - dot <= 16 ? Array.from(safe.slice(dot)) : [];
    safe = chars.slice(0, MAX_NAME - ext.length).join('') + ext.join('');
  }
  return safe || fallback;
}

/** A name for a multi-file torrent made from its files: "holiday and 3 more". */
export function multiFileName(names) {
  const list = Array.from(names ?? [], (n) => String(n ?? ''));
  const first = list[0] || 'files';
  const dot = first.lastIndexOf('.');
  const stem = dot > 0 ? first.slice(0, dot) : first;
  return list.length > 1 ? `${stem} and ${list.length - 1} more` : stem;
}

/** Plain words from anything thrown: Error objects, strings from wasm, or other values. */
export function errorText(err) {
  let text = '';
  if (typeof err === 'string') text = err;
  else if (err && typeof err.message === 'string') text = err.message;
  else if (err != null) text = String(err);
  text = text.trim().replace(/^(Error|TypeError|RangeError):\s*/, '');
  return text || 'unknown error';
}
