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
  errorCodes,
  exactBytes,
  heldLine,
  isPending,
  keyState,
  ledgerStateText,
  ledgerTotalText,
  ledgerUnreachableText,
  submitErrorLines,
  submitText,
  summarizeReceipts,
  throttle,
  toCount,
} from '../../www/app/earned.mjs';
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

// ---- earned (reward receipts) ---------------------------------------------------------------

const KEY = 'ab'.repeat(32);
const IH1 = '1'.repeat(40);
const IH2 = '2'.repeat(40);

/** A ReceiptRecord as client.receipts() gives it. */
function record(over = {}) {
  return {
    id: `${over.infoHash ?? IH1}:${over.downloader ?? 'd1'}:${over.session ?? 's1'}`,
    infoHash: IH1, uploader: KEY, downloader: 'd1', session: 's1', seq: 3, bytes: 1000,
    length: 5000, timestamp: 1, receipt: '00', submittedSeq: 0, ledger: null, ...over,
  };
}

test('toCount and exactBytes: exact, locale-independent byte counts', () => {
  assert.equal(toCount(5), 5);
  assert.equal(toCount(7n), 7);
  assert.equal(toCount('12'), 12);
  assert.equal(toCount(-3), 0);
  assert.equal(toCount(undefined), 0);
  assert.equal(toCount(NaN), 0);
  assert.equal(exactBytes(3_157_073), '3,157,073 bytes');
  assert.equal(exactBytes(999), '999 bytes');
  assert.equal(exactBytes(1000), '1,000 bytes');
  assert.equal(exactBytes(1), '1 byte');
  assert.equal(exactBytes(0), '0 bytes');
  assert.equal(exactBytes(12_345_678_901n), '12,345,678,901 bytes');
});

test('keyState: the key when enabled, else the core\'s reason', () => {
  assert.deepEqual(keyState({ enabled: true, publicKey: KEY, reason: null }), { enabled: true, key: KEY, text: '' });
  const why = 'This browser has no WebCrypto Ed25519 (NotSupportedError): reward receipts are off';
  assert.deepEqual(keyState({ enabled: false, publicKey: null, reason: why }), { enabled: false, key: '', text: why });
  assert.deepEqual(keyState({ enabled: false, publicKey: null, reason: null }),
    { enabled: false, key: '', text: 'Reward receipts are off in this browser.' });
  assert.equal(keyState({ enabled: true, publicKey: null }).enabled, false, 'enabled without a key is off');
  assert.equal(keyState(undefined).enabled, false);
});

test('summarizeReceipts groups per torrent: bytes, downloaders, sessions, pending', () => {
  const records = [
    record({ bytes: 1000 }),
    record({ session: 's2', bytes: 500, submittedSeq: 3, ledger: { status: 'stored', code: null } }),
    record({ downloader: 'd2', bytes: 250n, name: 'from-the-swarm.bin' }),
    record({ infoHash: IH2, bytes: 4000, length: 4000, submittedSeq: 3, ledger: { status: 'rejected', code: 'bad_signature' } }),
  ];
  const s = summarizeReceipts(records, (ih) => (ih === IH2 ? 'library name' : 'unused'));
  assert.equal(s.receipts, 4);
  assert.equal(s.bytes, 5750);
  assert.equal(s.pending, 2);
  assert.deepEqual(s.torrents.map((t) => t.infoHash), [IH2, IH1], 'most bytes first');
  const [two, one] = s.torrents;
  assert.deepEqual(
    { label: one.label, bytes: one.bytes, length: one.length, receipts: one.receipts, downloaders: one.downloaders, sessions: one.sessions, pending: one.pending },
    { label: 'from-the-swarm.bin', bytes: 1750, length: 5000, receipts: 3, downloaders: 2, sessions: 3, pending: 2 },
  );
  assert.equal(two.label, 'library name', 'a record without a name takes the Library\'s');
  assert.deepEqual(two.rejected, ['bad_signature']);
  assert.equal(ledgerStateText(one), '2 to send');
  assert.equal(ledgerStateText(two), 'rejected (bad_signature)');
  assert.equal(ledgerStateText({ pending: 0, rejected: [] }), 'sent');
});

test('summarizeReceipts: unnamed torrents show the info-hash; empty input', () => {
  const s = summarizeReceipts([record()]);
  assert.equal(s.torrents[0].label, IH1);
  assert.equal(s.torrents[0].name, '');
  assert.deepEqual(summarizeReceipts([]), { receipts: 0, bytes: 0, pending: 0, torrents: [] });
  assert.deepEqual(summarizeReceipts(undefined), { receipts: 0, bytes: 0, pending: 0, torrents: [] });
  // Names are data, never markup: kept exactly as they came.
  const evil = '<img src=x onerror=alert(1)>';
  assert.equal(summarizeReceipts([record({ name: evil })]).torrents[0].label, evil);
});

test('isPending: the ledger has not seen this seq', () => {
  assert.equal(isPending(record({ seq: 3, submittedSeq: 0 })), true);
  assert.equal(isPending(record({ seq: 4, submittedSeq: 3 })), true);
  assert.equal(isPending(record({ seq: 3, submittedSeq: 3 })), false);
});

test('heldLine summarises the receipts held', () => {
  assert.match(heldLine({ receipts: 0, bytes: 0, pending: 0 }), /^No receipts held yet/);
  assert.equal(heldLine({ receipts: 2, bytes: 6_300_000, pending: 1 }),
    '2 receipts held · 6.3 MB attested · 1 not yet sent to the ledger');
  assert.equal(heldLine({ receipts: 1, bytes: 1000, pending: 0 }),
    '1 receipt held · 1.0 KB attested · all sent to the ledger');
  assert.match(heldLine(undefined), /^No receipts/);
});

test('submitText and errorCodes report what the ledger did', () => {
  assert.equal(submitText({ stored: 1, duplicate: 0, rejected: 0, errors: [] }), 'Ledger: 1 stored, 0 duplicate, 0 rejected.');
  assert.equal(submitText({ stored: 0, duplicate: 2, rejected: 0, errors: [] }), 'Ledger: 0 stored, 2 duplicate, 0 rejected.');
  assert.equal(submitText({ stored: 0, duplicate: 0, rejected: 0, errors: [] }),
    'Nothing new to send: the ledger has every receipt held.');
  const errors = [
    { id: 'a', code: 'bad_signature', message: 'x' },
    { id: 'b', code: 'bad_signature', message: 'x' },
    { id: 'c', code: 'too_old', message: 'y' },
  ];
  assert.equal(errorCodes(errors), 'bad_signature ×2, too_old');
  assert.equal(submitText({ stored: 1, duplicate: 0, rejected: 3, errors }),
    'Ledger: 1 stored, 0 duplicate, 3 rejected (bad_signature ×2, too_old).');
  assert.equal(submitText({ stored: 0, duplicate: 0, rejected: 1 }), 'Ledger: 0 stored, 0 duplicate, 1 rejected (no code given).');
  assert.equal(errorCodes([{}]), 'unknown');
  assert.equal(errorCodes(undefined), '');
});

test('submitErrorLines: code, message and a short receipt id per refusal', () => {
  const id = `${IH1}:d1:s1`;
  assert.deepEqual(submitErrorLines([{ id, code: 'bad_signature', message: 'the signature does not verify' }]),
    ['bad_signature: the signature does not verify (receipt 1111111111111111…)']);
  assert.deepEqual(submitErrorLines([{ id: 'x', code: 'c', message: '' }]), ['c (receipt x)']);
  const many = Array.from({ length: 8 }, (_, i) => ({ id: String(i), code: 'c' }));
  const lines = submitErrorLines(many, 5);
  assert.equal(lines.length, 6);
  assert.equal(lines[5], '… and 3 more');
  assert.deepEqual(submitErrorLines(undefined), []);
});

test('ledgerTotalText and ledgerUnreachableText', () => {
  assert.equal(
    ledgerTotalText({ uploader: KEY, bytes: 3_157_073, receipts: 1, torrents: [{ info_hash: IH1, length: 3_157_073, bytes: 3_157_073, receipts: 1 }] }),
    'Ledger total for this key: 3.2 MB (3,157,073 bytes) from 1 receipt for 1 torrent',
  );
  assert.equal(ledgerTotalText({ uploader: KEY, bytes: 0, receipts: 0, torrents: [] }),
    'Ledger total for this key: nothing credited yet.');
  assert.equal(ledgerTotalText(undefined), 'Ledger total for this key: nothing credited yet.');
  assert.equal(ledgerUnreachableText('The ledger answered HTTP 404'),
    'Ledger total for this key: the ledger could not be reached (The ledger answered HTTP 404).');
  assert.equal(ledgerUnreachableText(''), 'Ledger total for this key: the ledger could not be reached.');
});

test('throttle: once at once, a burst merged into one call at the end of the window', () => {
  let now = 0;
  const due = [];
  const clock = { now: () => now, setTimeout: (fn, ms) => due.push({ fn, at: now + ms }) };
  let calls = 0;
  const poke = throttle(() => { calls += 1; }, 1000, clock);
  const advance = (to) => {
    now = to;
    for (const t of due.splice(0).sort((a, b) => a.at - b.at)) {
      if (t.at <= now) t.fn();
      else due.push(t);
    }
  };
  poke();
  assert.equal(calls, 1, 'the first call runs at once');
  advance(100); poke(); poke(); poke();
  assert.equal(calls, 1, 'calls within the window wait');
  assert.equal(due.length, 1, 'and are merged into one');
  advance(999);
  assert.equal(calls, 1);
  advance(1000);
  assert.equal(calls, 2, 'the merged call runs when the window ends');
  advance(1500); poke();
  assert.equal(calls, 2, 'a window starts again after the merged call');
  advance(2000);
  assert.equal(calls, 3);
  advance(5000); poke();
  assert.equal(calls, 4, 'after a quiet spell a call runs at once');
});
