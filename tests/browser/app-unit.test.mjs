// Unit tests for the web app's pure helpers (www/app/*.mjs). Plain `node --test`, no browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  defaultTrackerUrl,
  loadConfig,
  pickIceServers,
  pickTrackers,
} from '../../www/app/config.mjs';
import {
  errorText,
  escapeHtml,
  formatBytes,
  formatPercent,
  formatSpeed,
  multiFileName,
  parseTrackerList,
  plural,
  safeFileName,
} from '../../www/app/format.mjs';
import {
  formatRatio,
  recheckText,
  safePathParts,
  stateLabel,
  storageErrorText,
  storageLine,
  usePicker,
} from '../../www/app/library.mjs';

test('escapeHtml escapes markup and quotes', () => {
  assert.equal(escapeHtml('<img src=x onerror="alert(1)">'), '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
  assert.equal(escapeHtml("Tom & Jerry's"), 'Tom &amp; Jerry&#39;s');
  assert.equal(escapeHtml('&amp;'), '&amp;amp;');
  assert.equal(escapeHtml('plain name.mp4'), 'plain name.mp4');
  assert.equal(escapeHtml(null), '');
  assert.equal(escapeHtml(undefined), '');
  assert.equal(escapeHtml(42), '42');
});

test('formatBytes uses decimal units with sensible precision', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 KB');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(42_000_000), '42 MB');
  assert.equal(formatBytes(999_999), '1.0 MB'); // no "1000 KB"
  assert.equal(formatBytes(9_990), '10 KB'); // no "10.0 KB"
  assert.equal(formatBytes(1.5e12), '1.5 TB');
  assert.equal(formatBytes(3e18), '3000 PB');
  assert.equal(formatBytes(1048576n), '1.0 MB'); // u64 values from wasm arrive as BigInt
  assert.equal(formatBytes(-1), '—');
  assert.equal(formatBytes(NaN), '—');
  assert.equal(formatBytes('abc'), '—');
});

test('formatSpeed appends /s', () => {
  assert.equal(formatSpeed(0), '0 B/s');
  assert.equal(formatSpeed(2_500_000), '2.5 MB/s');
  assert.equal(formatSpeed(undefined), '—');
});

test('formatPercent rounds down and clamps', () => {
  assert.equal(formatPercent(0), '0%');
  assert.equal(formatPercent(0.29), '29%'); // 0.29 * 100 is 28.999…
  assert.equal(formatPercent(0.425), '42%');
  assert.equal(formatPercent(0.999), '99%');
  assert.equal(formatPercent(1), '100%');
  assert.equal(formatPercent(7), '100%');
  assert.equal(formatPercent(-1), '0%');
  assert.equal(formatPercent(NaN), '0%');
});

test('plural', () => {
  assert.equal(plural(0, 'peer'), '0 peers');
  assert.equal(plural(1, 'peer'), '1 peer');
  assert.equal(plural(2, 'active torrent'), '2 active torrents');
});

test('parseTrackerList splits on commas and new lines, keeps ws(s) URLs once', () => {
  const text = ' wss://a.example/announce,ws://b.example:8000/announce\n\nwss://a.example/announce \r\n';
  assert.deepEqual(parseTrackerList(text), {
    trackers: ['wss://a.example/announce', 'ws://b.example:8000/announce'],
    invalid: [],
  });
});

test('parseTrackerList reports entries that are not WebSocket URLs', () => {
  const { trackers, invalid } = parseTrackerList('udp://t.example:80, http://t.example/announce, nonsense, wss://ok.example');
  assert.deepEqual(trackers, ['wss://ok.example']);
  assert.deepEqual(invalid, ['udp://t.example:80', 'http://t.example/announce', 'nonsense']);
  assert.deepEqual(parseTrackerList(''), { trackers: [], invalid: [] });
  assert.deepEqual(parseTrackerList(undefined), { trackers: [], invalid: [] });
});

test('safeFileName strips separators, control and bidi characters', () => {
  assert.equal(safeFileName('movie.mp4'), 'movie.mp4');
  assert.equal(safeFileName('../../etc/passwd'), '_.._etc_passwd');
  assert.equal(safeFileName('dir\\sub\\file.txt'), 'dir_sub_file.txt');
  assert.equal(safeFileName('a\u0000b\nc\td.txt'), 'abcd.txt');
  assert.equal(safeFileName('evil\u202Etxt.exe'), 'eviltxt.exe');
  assert.equal(safeFileName('what?<is>:"this"|*.txt'), 'what__is___this___.txt');
  assert.equal(safeFileName('  .hidden  '), 'hidden');
  assert.equal(safeFileName('name. . '), 'name');
  assert.equal(safeFileName('日本語 ファイル.mkv'), '日本語 ファイル.mkv');
});

test('safeFileName falls back when nothing usable is left', () => {
  assert.equal(safeFileName(''), 'download');
  assert.equal(safeFileName('..'), 'download');
  assert.equal(safeFileName('\u0001\u0002'), 'download');
  assert.equal(safeFileName(null), 'download');
  assert.equal(safeFileName('', 'seedtab'), 'seedtab');
});

test('safeFileName limits length and keeps the extension', () => {
  const long = `${'x'.repeat(500)}.tar.gz`;
  const safe = safeFileName(long);
  assert.equal(safe.length, 200);
  assert.ok(safe.endsWith('x.gz'));
  const emoji = safeFileName('😀'.repeat(300));
  assert.equal(Array.from(emoji).length, 200);
  assert.ok(!/[\uD800-\uDBFF]$/.test(emoji), 'no split surrogate pair');
});

test('multiFileName names a multi-file torrent after its first file', () => {
  assert.equal(multiFileName(['holiday.jpg', 'b.jpg', 'c.jpg']), 'holiday and 2 more');
  assert.equal(multiFileName(['.bashrc', 'x']), '.bashrc and 1 more');
  assert.equal(multiFileName(['single.txt']), 'single');
  assert.equal(multiFileName([]), 'files');
});

test('errorText gives plain words for anything thrown', () => {
  assert.equal(errorText(new Error('invalid magnet link')), 'invalid magnet link');
  assert.equal(errorText('Error: bad bencode at byte 3'), 'bad bencode at byte 3');
  assert.equal(errorText(new TypeError('x is not a function')), 'x is not a function');
  assert.equal(errorText({ message: '  spaced  ' }), 'spaced');
  assert.equal(errorText(null), 'unknown error');
  assert.equal(errorText(''), 'unknown error');
  assert.equal(errorText(17), '17');
});

test('defaultTrackerUrl follows the page scheme and host', () => {
  assert.equal(defaultTrackerUrl({ protocol: 'http:', host: '10.213.0.1:8080' }), 'ws://10.213.0.1:8080/announce');
  assert.equal(defaultTrackerUrl({ protocol: 'https:', host: 'seedtab.example' }), 'wss://seedtab.example/announce');
  assert.equal(defaultTrackerUrl({ protocol: 'file:', host: '' }), null);
  assert.equal(defaultTrackerUrl(undefined), null);
});

test('pickTrackers prefers the config list, else the local tracker', () => {
  const loc = { protocol: 'http:', host: 'localhost:8000' };
  assert.deepEqual(pickTrackers({ trackers: ['wss://t.example/announce'] }, loc), ['wss://t.example/announce']);
  assert.deepEqual(pickTrackers({ trackers: [] }, loc), ['ws://localhost:8000/announce']);
  assert.deepEqual(pickTrackers({ trackers: ['', 7, null] }, loc), ['ws://localhost:8000/announce']);
  assert.deepEqual(pickTrackers({}, loc), ['ws://localhost:8000/announce']);
  assert.deepEqual(pickTrackers({}, { protocol: 'file:', host: '' }), []);
});

test('pickIceServers keeps only RTCIceServer-like entries', () => {
  const stun = { urls: 'stun:stun.example:3478' };
  assert.deepEqual(pickIceServers({ iceServers: [stun, null, 'x', {}] }), [stun]);
  assert.deepEqual(pickIceServers({}), []);
  assert.deepEqual(pickIceServers({ iceServers: 'stun:x' }), []);
});

test('loadConfig returns the JSON body, or {} on any failure', async () => {
  const config = { iceServers: [], trackers: ['ws://x/announce'] };
  const ok = async (url) => {
    assert.equal(url, '/config.json');
    return { ok: true, json: async () => config };
  };
  assert.deepEqual(await loadConfig(ok), config);
  assert.deepEqual(await loadConfig(async () => ({ ok: false, json: async () => config })), {});
  assert.deepEqual(await loadConfig(async () => { throw new TypeError('Failed to fetch'); }), {});
  assert.deepEqual(await loadConfig(async () => ({ ok: true, json: async () => { throw new SyntaxError('bad'); } })), {});
  assert.deepEqual(await loadConfig(async () => ({ ok: true, json: async () => [1, 2] })), {});
});

test('formatRatio is uploaded / size with 2 decimals', () => {
  assert.equal(formatRatio(0, 1000), '0.00');
  assert.equal(formatRatio(1000, 1000), '1.00');
  assert.equal(formatRatio(2500, 1000), '2.50');
  assert.equal(formatRatio(1, 3), '0.33');
  assert.equal(formatRatio(2, 3), '0.67');
  assert.equal(formatRatio(123_456_789, 1000), '123456.79');
  assert.equal(formatRatio(10n, 4n), '2.50'); // BigInt from wasm
  assert.equal(formatRatio(undefined, 1000), '0.00');
  assert.equal(formatRatio(-5, 1000), '0.00');
  assert.equal(formatRatio(100, 0), '—'); // size unknown (no metadata yet)
  assert.equal(formatRatio(100, undefined), '—');
  assert.equal(formatRatio(100, NaN), '—');
});

test('stateLabel: error over paused over the rest', () => {
  assert.deepEqual(stateLabel({ progress: 1 }), { kind: 'seeding', text: 'Seeding' });
  assert.deepEqual(stateLabel({ progress: 0.425 }), { kind: 'downloading', text: 'Downloading 42%' });
  assert.deepEqual(stateLabel({ progress: 0.999 }), { kind: 'downloading', text: 'Downloading 99%' });
  assert.deepEqual(stateLabel({ progress: 0 }), { kind: 'downloading', text: 'Downloading 0%' });
  assert.deepEqual(stateLabel({ hasMetadata: false }), { kind: 'metadata', text: 'Fetching metadata…' });
  assert.deepEqual(stateLabel({ paused: true, progress: 1 }), { kind: 'paused', text: 'Paused' });
  assert.deepEqual(stateLabel({ paused: true, progress: 0.5 }), { kind: 'paused', text: 'Paused at 50%' });
  assert.deepEqual(stateLabel({ paused: true, hasMetadata: false }), { kind: 'paused', text: 'Paused' });
  assert.deepEqual(stateLabel({ error: 'Storage failed', paused: true, progress: 0.2 }),
    { kind: 'error', text: 'Error · paused' });
  assert.deepEqual(stateLabel({ error: 'x', progress: 1 }), { kind: 'error', text: 'Error · paused' });
  assert.deepEqual(stateLabel(), { kind: 'downloading', text: 'Downloading 0%' });
  assert.deepEqual(stateLabel({ progress: NaN }), { kind: 'downloading', text: 'Downloading 0%' });
});

test('storageLine says backend, usage, quota and persistence', () => {
  assert.equal(
    storageLine({ backend: 'opfs', usage: 120_000_000, quota: 10_000_000_000, persisted: true }),
    'Storage: OPFS, 120 MB used of 10 GB (persistent)',
  );
  assert.equal(
    storageLine({ backend: 'idb', usage: 0, quota: 2e9, persisted: false, fallbackReason: 'no OPFS worker' }),
    'Storage: IndexedDB (no OPFS worker), 0 B used of 2.0 GB (the browser may clear it when space runs low)',
  );
  assert.equal(storageLine({ backend: 'opfs', usage: 5, quota: 0, persisted: true }), 'Storage: OPFS, 5 B used (persistent)');
  const memory = storageLine({ backend: 'memory', usage: 0, quota: 0, persisted: false });
  assert.match(memory, /^Storage: memory only\. Pieces are not kept/);
  assert.match(storageLine({ backend: 'memory', fallbackReason: 'private window' }), /^Storage: memory only \(private window\)\./);
  assert.match(storageLine(undefined), /memory only/);
});

test('storageErrorText: full storage, another tab, other failures', () => {
  const full = storageErrorText('movie.mkv',
    'Storage failed, torrent paused: browser storage is full (QuotaExceededError: no space)');
  assert.equal(full, 'Storage is full: "movie.mkv" could not be written. The torrent is paused; '
    + 'free space (remove torrents from the Library) and press Resume.');
  assert.match(storageErrorText('x', 'Storage failed, torrent paused: another tab is using this torrent\'s storage'),
    /^Storage failed: "x" could not be written \(another tab is using this torrent's storage\)\. .*close the other seedtab tab/);
  assert.equal(storageErrorText('x', 'Storage failed, torrent paused: disk on fire'),
    'Storage failed: "x" could not be written (disk on fire). The torrent is paused; press Resume to try again.');
  assert.match(storageErrorText('', ''), /^Storage failed: "a torrent" could not be written \(unknown error\)/);
});

test('recheckText', () => {
  assert.equal(recheckText(0), 'Re-check: intact');
  assert.equal(recheckText(1), 'Re-check: 1 damaged piece re-fetched');
  assert.equal(recheckText(7), 'Re-check: 7 damaged pieces re-fetched');
  assert.equal(recheckText(undefined), 'Re-check: intact');
});

test('usePicker: only when the browser has it and the page was not told otherwise', () => {
  assert.equal(usePicker({ showSaveFilePicker() {} }), true);
  assert.equal(usePicker({ showSaveFilePicker() {}, __seedtabNoPicker: true }), false);
  assert.equal(usePicker({}), false);
  assert.equal(usePicker(undefined), false);
  assert.equal(usePicker({ showDirectoryPicker() {} }, 'showDirectoryPicker'), true);
  assert.equal(usePicker({ showSaveFilePicker() {} }, 'showDirectoryPicker'), false);
});

test('safePathParts keeps folders but never leaves the picked folder', () => {
  assert.deepEqual(safePathParts('album/cd1/track 01.flac'), ['album', 'cd1', 'track 01.flac']);
  assert.deepEqual(safePathParts('../../etc/passwd'), ['etc', 'passwd']);
  assert.deepEqual(safePathParts('a\\..\\b.txt'), ['a', 'b.txt']);
  assert.deepEqual(safePathParts('/abs/./x'), ['abs', 'x']);
  assert.deepEqual(safePathParts('dir/evil\u202Etxt.exe'), ['dir', 'eviltxt.exe']);
  assert.deepEqual(safePathParts('dir/...'), ['dir', '_']);
  assert.deepEqual(safePathParts(''), ['download']);
  assert.deepEqual(safePathParts(undefined), ['download']);
});
