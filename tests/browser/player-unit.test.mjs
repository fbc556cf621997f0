// Unit tests for the player's pure parts, in plain Node (no browser): the embed page's hash
// options (www/app/embed-options.mjs), media kinds and stream URLs (www/app/stream.mjs), and the
// service worker's Range parsing and content types (www/static/sw.js, run in a vm sandbox).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';

import { parseEmbedHash, pickFile } from '../../www/app/embed-options.mjs';
import { mediaKind, streamUrl } from '../../www/app/stream.mjs';
import { ROOT } from './harness.mjs';

const MAGNET = 'magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=a b.mp4&tr=ws://127.0.0.1:1/announce';

test('embed hash: escaped magnet, torrent URL and flags', () => {
  assert.deepEqual(parseEmbedHash(`#magnet=${encodeURIComponent(MAGNET)}&file=${encodeURIComponent('d/é.mp4')}&autoplay&muted`), {
    magnet: MAGNET, torrent: null, file: 'd/é.mp4', autoplay: true, muted: true, storage: 'memory',
  });
  assert.deepEqual(parseEmbedHash('#torrent=https%3A%2F%2Fx%2Fa.torrent&autoplay=0&muted=false&storage=auto'), {
    magnet: null, torrent: 'https://x/a.torrent', file: null, autoplay: false, muted: false, storage: 'auto',
  });
  assert.deepEqual(parseEmbedHash(''), { magnet: null, torrent: null, file: null, autoplay: false, muted: false, storage: 'memory' });
});

test('embed hash: a magnet pasted without escaping is taken whole', () => {
  const raw = 'magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=clip&tr=ws%3A%2F%2Fh%2Fannounce';
  const o = parseEmbedHash(`#magnet=${raw}&file=clip.mp4&autoplay`);
  assert.equal(o.magnet, raw);
  assert.equal(o.file, 'clip.mp4');
  assert.equal(o.autoplay, true);
});

test('pickFile: by path, by name, else the first playable', () => {
  const files = [
    { name: 'readme.txt', path: 'f/readme.txt' },
    { name: 'b.webm', path: 'f/x/b.webm' },
    { name: 'a.mp4', path: 'f/a.mp4' },
  ];
  assert.equal(pickFile(files, null).name, 'b.webm');
  assert.equal(pickFile(files, 'f/a.mp4').name, 'a.mp4');
  assert.equal(pickFile(files, 'a.mp4').name, 'a.mp4');
  assert.equal(pickFile(files, 'nope.mp4'), null);
  assert.equal(pickFile([{ name: 'x.bin', path: 'x.bin' }], null), null);
});

test('mediaKind and streamUrl', () => {
  assert.equal(mediaKind('A.MP4'), 'video');
  assert.equal(mediaKind('song.mp3'), 'audio');
  assert.equal(mediaKind('x.webm'), 'video');
  assert.equal(mediaKind('noext'), null);
  const url = streamUrl({ infoHash: 'ab'.repeat(20) }, { path: 'my folder/sub/é #1?.mp4' });
  assert.equal(url, `/stream/${'ab'.repeat(20)}/my%20folder/sub/%C3%A9%20%231%3F.mp4`);
});

/** sw.js's top-level functions, from a sandbox that stands in for the worker's global scope. */
function loadWorker() {
  const listeners = {};
  const sandbox = {
    self: { addEventListener: (type, fn) => { listeners[type] = fn; }, location: { origin: 'http://s' } },
    URL, Response: class {}, ReadableStream: class {}, MessageChannel: class {}, setTimeout,
  };
  vm.createContext(sandbox);
  vm.runInContext(fs.readFileSync(path.join(ROOT, 'www', 'static', 'sw.js'), 'utf8'), sandbox);
  return { sandbox, listeners };
}

test('service worker: Range headers', () => {
  const { sandbox, listeners } = loadWorker();
  assert.deepEqual(Object.keys(listeners).sort(), ['activate', 'fetch', 'install', 'message']);
  const r = (h, len) => JSON.parse(JSON.stringify(sandbox.parseRange(h, len)));
  assert.equal(r(null, 100), null);
  assert.deepEqual(r('bytes=0-', 100), [0, 99]);
  assert.deepEqual(r('bytes=10-19', 100), [10, 19]);
  assert.deepEqual(r('bytes=90-500', 100), [90, 99]);
  assert.deepEqual(r('bytes=-30', 100), [70, 99]);
  assert.deepEqual(r('bytes=-300', 100), [0, 99]);
  assert.equal(r('bytes=100-', 100), 'bad');
  assert.equal(r('bytes=5-2', 100), 'bad');
  assert.equal(r('bytes=-0', 100), 'bad');
  assert.equal(r('bytes=0-1,5-6', 100), null, 'several ranges: the whole file');
  assert.equal(r('items=0-1', 100), null);
});

test('service worker: content types by extension', () => {
  const { sandbox } = loadWorker();
  assert.equal(sandbox.contentType('a/b.MP4'), 'video/mp4');
  assert.equal(sandbox.contentType('x.webm'), 'video/webm');
  assert.equal(sandbox.contentType('x.mp3'), 'audio/mpeg');
  assert.equal(sandbox.contentType('x.ogg'), 'audio/ogg');
  assert.equal(sandbox.contentType('x'), 'application/octet-stream');
});
