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
