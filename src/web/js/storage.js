// Piece storage for the browser: torrents' bytes on disk, never whole in memory.
//
// Bound from Rust by src/web/storage.rs (`#[wasm_bindgen(module = "/src/web/js/storage.js")]`);
// usable from plain JS as well (www/storage-harness.js).
//
// Backends, best first:
//   'opfs' — the Origin Private File System, written in place through FileSystemSyncAccessHandle
//            in a dedicated Worker (main-thread createWritable() copies the whole file on every
//            close: unusable for big files). The worker is made from a Blob URL of
//            `storageCore`'s source, so nothing extra needs serving or bundling.
//   'idb'  — IndexedDB, where OPFS or sync access handles are missing (older browsers, and
//            insecure contexts such as http://LAN-IP, where OPFS and WebCrypto do not exist).
//            Runs in the same kind of worker, or on the main thread when no worker can be made
//            (a Content-Security-Policy without `worker-src blob:`).
//
// OPFS layout, per torrent (info-hash in lower-case hex):
//   seedtab/<ih>/data               the torrent's bytes: one file, piece i at i*pieceLength (files
//                                   of a multi-file torrent concatenated). Grows as pieces land:
//                                   writing piece 900 first makes it 900 pieces long (sparse on
//                                   disk, counted at full size by the quota).
//   seedtab/<ih>/torrent            a record (below) holding u64 totalLength + the .torrent bytes
//   seedtab/<ih>/state.0, state.1   two record slots; the valid one with the higher sequence number
//                                   is the state. A save overwrites the older slot, so a save torn
//                                   by a crash or an error leaves the previous state readable.
// record = "STR1" | f64 seq | u32 len | u32 crc32(seq..payload) | payload   (little-endian)
//
// IndexedDB layout: database `seedtab`, object stores
//   blocks  key [ih, byteOffset] -> Blob of the bytes written there (one per writePiece, one per
//           piece imported; Blobs are stored as files by Chromium, and fileBlob() is built of
//           them without loading them). Blocks must not overlap: write whole pieces at their
//           offsets (rewriting a piece replaces its block).
//   meta    key ih -> { length, torrent: ArrayBuffer }
//   state   key ih -> ArrayBuffer (one transaction per save: never torn)

/** What went wrong: `kind` is 'quota' (QuotaExceededError), 'missing' (no such torrent, or a
 *  range that was never written), 'locked' (another tab holds the torrent's files open), or 'io'. */
export class StorageError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'StorageError';
    this.kind = kind;
  }
}

// ---------------------------------------------------------------------------------------------
// The storage core. Runs inside the worker (made from this function's source text), or on the
// main thread for the IndexedDB fallback when no worker can be made. It must stay self-contained:
// it may not refer to anything outside its own body.
// ---------------------------------------------------------------------------------------------
function storageCore(scope, inWorker) {
  'use strict';

  const IH_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
  const MAGIC = 0x31525453; // "STR1" little-endian
  const HEADER = 20;
  /** Bytes read from Files per step of importFiles (rounded to whole pieces). */
  const IMPORT_BATCH = 8 << 20;
  /** A sync access handle still held by a page that is going away (reload): retry this long. */
  const LOCK_RETRY_MS = 3000;

  class CoreError extends Error {
    constructor(kind, message) {
      super(message);
      this.name = 'StorageError';
      this.kind = kind;
    }
  }

  function describe(err) {
    if (err && err.kind && typeof err.kind === 'string') {
      return { kind: err.kind, name: err.name || 'StorageError', message: String(err.message) };
    }
    const name = (err && err.name) || 'Error';
    let kind = 'io';
    if (name === 'QuotaExceededError') kind = 'quota';
    else if (name === 'NotFoundError') kind = 'missing';
    else if (name === 'NoModificationAllowedError') kind = 'locked';
    return { kind, name, message: `${name}: ${(err && err.message) || err}` };
  }

  function checkIh(ih) {
    if (typeof ih !== 'string' || !IH_RE.test(ih)) {
      throw new CoreError('io', `bad info-hash ${JSON.stringify(String(ih)).slice(0, 80)} (want lower-case hex)`);
    }
  }

  function checkRange(offset, length) {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new CoreError('io', `bad range: offset ${offset}, length ${length}`);
    }
  }

  // --- CRC-32 and the record format ---------------------------------------------------------
  const CRC_TABLE = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    CRC_TABLE[n] = c;
  }
  function crc32(bytes, crc = 0) {
    let c = ~crc;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  }

  function encodeRecord(seq, payload) {
    const out = new Uint8Array(HEADER + payload.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setFloat64(4, seq, true);
    dv.setUint32(12, payload.length, true);
    out.set(payload, HEADER);
    const crc = crc32(out.subarray(HEADER), crc32(out.subarray(4, 16)));
    dv.setUint32(16, crc, true);
    return out;
  }

  /** { seq, payload } or null when absent, short, torn or damaged. */
  function decodeRecord(bytes) {
    if (!bytes || bytes.length < HEADER) return null;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint32(0, true) !== MAGIC) return null;
    const seq = dv.getFloat64(4, true);
    const len = dv.getUint32(12, true);
    if (HEADER + len > bytes.length || !Number.isSafeInteger(seq)) return null;
    const payload = bytes.subarray(HEADER, HEADER + len);
    if (crc32(payload, crc32(bytes.subarray(4, 16))) !== dv.getUint32(16, true)) return null;
    return { seq, payload };
  }

  /** The torrent record's payload: u64 totalLength, then the .torrent bytes. */
  function encodeTorrent(length, torrent) {
    const p = new Uint8Array(8 + torrent.length);
    new DataView(p.buffer).setFloat64(0, length, true);
    p.set(torrent, 8);
    return p;
  }
  function decodeTorrent(payload) {
    if (payload.length < 8) return null;
    const length = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true);
    if (!Number.isSafeInteger(length) || length < 0) return null;
    return { length, torrent: payload.slice(8) };
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  // --- SHA-1: WebCrypto, or plain JS where there is none (insecure contexts) -----------------
  function sha1js(data) {
    const H = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
    const W = new Int32Array(80);
    const block = (buf, off) => {
      for (let i = 0; i < 16; i++) {
        const j = off + 4 * i;
        W[i] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
      }
      for (let i = 16; i < 80; i++) {
        const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
        W[i] = (x << 1) | (x >>> 31);
      }
      let a = H[0]; let b = H[1]; let c = H[2]; let d = H[3]; let e = H[4];
      for (let i = 0; i < 80; i++) {
        let f;
        let k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
        else { f = b ^ c ^ d; k = 0xca62c1d6; }
        const t = (((a << 5) | (a >>> 27)) + f + e + k + W[i]) | 0;
        e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e;
    };
    const n = data.length;
    const full = n - (n % 64);
    for (let off = 0; off < full; off += 64) block(data, off);
    const rest = n - full;
    const tail = new Uint8Array(rest < 56 ? 64 : 128);
    tail.set(data.subarray(full));
    tail[rest] = 0x80;
    const tv = new DataView(tail.buffer);
    tv.setUint32(tail.length - 8, Math.floor(n / 0x20000000), false); // bits >> 32
    tv.setUint32(tail.length - 4, (n * 8) >>> 0, false);
    for (let off = 0; off < tail.length; off += 64) block(tail, off);
    const out = new Uint8Array(20);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 5; i++) ov.setInt32(4 * i, H[i], false);
    return out;
  }

  let forceJsSha1 = false;
  async function sha1(view) {
    const subtle = scope.crypto && scope.crypto.subtle;
    if (subtle && !forceJsSha1) return new Uint8Array(await subtle.digest('SHA-1', view));
    return sha1js(view);
  }

  // --- per-torrent write queues: writes of one torrent in order, reads never wait ------------
  const tails = new Map();
  function serialize(ih, fn) {
    const prev = tails.get(ih) || Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.then(() => {}, () => {});
    tails.set(ih, settled);
    settled.then(() => { if (tails.get(ih) === settled) tails.delete(ih); });
    return run;
  }

  /** Fault injection (tests): { what: 'piece'|'state', afterBytes } for the next such write. */
  let failNext = null;
  function takeFault(what) {
    if (failNext && failNext.what === what) {
      const f = failNext;
      failNext = null;
      return f;
    }
    return null;
  }
  function injected(f) {
    return new CoreError('io', `injected failure after ${f.afterBytes} bytes (testFailNextWrite)`);
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // =========================================================================================
  // OPFS through sync access handles (worker only)
  // =========================================================================================
  class OpfsBackend {
    static async open() {
      if (!inWorker) throw new CoreError('io', 'sync access handles exist only in workers');
      const nav = scope.navigator;
      if (!nav || !nav.storage || typeof nav.storage.getDirectory !== 'function') {
        throw new CoreError('io', 'no OPFS (navigator.storage.getDirectory)');
      }
      if (typeof scope.FileSystemFileHandle === 'undefined'
        || typeof scope.FileSystemFileHandle.prototype.createSyncAccessHandle !== 'function') {
        throw new CoreError('io', 'no FileSystemSyncAccessHandle');
      }
      const root = await (await nav.storage.getDirectory()).getDirectoryHandle('seedtab', { create: true });
      // Prove that a handle can be made here (some browsers list the method but refuse).
      const probeName = `.probe-${Math.random().toString(36).slice(2)}`;
      const probe = await root.getFileHandle(probeName, { create: true });
      const h = await probe.createSyncAccessHandle();
      h.close();
      await root.removeEntry(probeName).catch(() => {});
      return new OpfsBackend(root);
    }

    constructor(root) {
      this.name = 'opfs';
      this.root = root;
      /** ih -> { dir, dataFh, handle, length, stateSeq, removed } for torrents opened this session */
      this.entries = new Map();
    }

    async dir(ih, create = false) {
      try {
        return await this.root.getDirectoryHandle(ih, { create });
      } catch (e) {
        if (e && (e.name === 'NotFoundError' || e.name === 'TypeMismatchError')) {
          throw new CoreError('missing', `no stored torrent ${ih}`);
        }
        throw e;
      }
    }

    static async readFile(dir, name) {
      let fh;
      try {
        fh = await dir.getFileHandle(name);
      } catch (e) {
        if (e && e.name === 'NotFoundError') return null;
        throw e;
      }
      return new Uint8Array(await (await fh.getFile()).arrayBuffer());
    }

    static async syncHandle(fh) {
      const deadline = Date.now() + LOCK_RETRY_MS;
      for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
        try {
          return await fh.createSyncAccessHandle();
        } catch (e) {
          if (!e || e.name !== 'NoModificationAllowedError' || Date.now() > deadline) {
            if (e && e.name === 'NoModificationAllowedError') {
              throw new CoreError('locked', `${fh.name} is open elsewhere (another tab?): ${e.message}`);
            }
            throw e;
          }
          await sleep(wait);
        }
      }
    }

    /** Writes a whole small file through a short-lived sync handle; `fault` tears it. */
    static async writeFile(dir, name, bytes, fault) {
      const fh = await dir.getFileHandle(name, { create: true });
      const h = await OpfsBackend.syncHandle(fh);
      try {
        if (fault) {
          h.write(bytes.subarray(0, Math.min(fault.afterBytes, bytes.length)), { at: 0 });
          h.flush();
          throw injected(fault);
        }
        OpfsBackend.writeAll(h, bytes, 0);
        h.truncate(bytes.length);
        h.flush();
      } finally {
        h.close();
      }
    }

    static writeAll(h, bytes, at) {
      let done = 0;
      while (done < bytes.length) {
        const n = h.write(bytes.subarray(done), { at: at + done });
        if (!(n > 0)) throw new CoreError('io', `write returned ${n} at ${at + done}`);
        done += n;
      }
    }

    /** The torrent's entry with its data file open, from memory or from disk. */
    async entry(ih) {
      let e = this.entries.get(ih);
      if (e) return e;
      const dir = await this.dir(ih);
      const rec = decodeRecord(await OpfsBackend.readFile(dir, 'torrent'));
      const t = rec && decodeTorrent(rec.payload);
      if (!t) throw new CoreError('missing', `torrent ${ih} has no (intact) torrent record: create() it`);
      e = { dir, dataFh: null, handle: null, length: t.length, stateSeq: null, removed: false };
      await this.openData(e);
      this.entries.set(ih, e);
      return e;
    }

    async openData(e) {
      e.dataFh = await e.dir.getFileHandle('data', { create: true });
      e.handle = await OpfsBackend.syncHandle(e.dataFh);
    }

    async create(ih, torrent, length, opts) {
      const dir = await this.dir(ih, true);
      const payload = encodeTorrent(length, torrent);
      const old = decodeRecord(await OpfsBackend.readFile(dir, 'torrent'));
      if (!old || !sameBytes(old.payload, payload)) {
        await OpfsBackend.writeFile(dir, 'torrent', encodeRecord(0, payload), null);
      }
      let e = this.entries.get(ih);
      if (!e) {
        e = { dir, dataFh: null, handle: null, length, stateSeq: null, removed: false };
        await this.openData(e);
        this.entries.set(ih, e);
      }
      e.length = length;
      // Reserve the whole length now: the quota is checked once, here, rather than piece by piece.
      if (opts && opts.preallocate && e.handle.getSize() < length) {
        e.handle.truncate(length);
        e.handle.flush();
      }
    }

    async writePiece(ih, offset, data) {
      const e = await this.entry(ih);
      if (offset + data.length > e.length) {
        throw new CoreError('io', `write of ${data.length} at ${offset} passes the end (${e.length})`);
      }
      const fault = takeFault('piece');
      if (fault) {
        OpfsBackend.writeAll(e.handle, data.subarray(0, Math.min(fault.afterBytes, data.length)), offset);
        e.handle.flush();
        throw injected(fault);
      }
      OpfsBackend.writeAll(e.handle, data, offset);
      e.handle.flush();
    }

    async readRange(ih, offset, length) {
      const e = this.entries.get(ih);
      if (e && e.handle) {
        const buf = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const n = e.handle.read(buf.subarray(done), { at: offset + done });
          if (!(n > 0)) break;
          done += n;
        }
        if (done < length) throw new CoreError('missing', `only ${done} of ${length} bytes at ${offset} exist`);
        return buf;
      }
      const file = await this.dataFile(ih);
      if (offset + length > file.size) {
        throw new CoreError('missing', `range ${offset}+${length} passes the data's end (${file.size})`);
      }
      return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
    }

    async dataFile(ih) {
      const dir = await this.dir(ih);
      try {
        return await (await dir.getFileHandle('data')).getFile();
      } catch (e) {
        if (e && e.name === 'NotFoundError') throw new CoreError('missing', `torrent ${ih} has no data`);
        throw e;
      }
    }

    async fileBlob(ih, offset, length, type) {
      const file = await this.dataFile(ih);
      if (offset + length > file.size) {
        throw new CoreError('missing', `range ${offset}+${length} passes the data's end (${file.size})`);
      }
      return file.slice(offset, offset + length, type || '');
    }

    async readSlots(dir) {
      const slots = [];
      for (const i of [0, 1]) slots.push(decodeRecord(await OpfsBackend.readFile(dir, `state.${i}`)));
      return slots;
    }

    async saveState(ih, state) {
      const e = this.entries.get(ih);
      const dir = e ? e.dir : await this.dir(ih);
      let seq = e ? e.stateSeq : null;
      if (seq === null) {
        const slots = await this.readSlots(dir);
        seq = Math.max(-1, ...slots.filter(Boolean).map((s) => s.seq));
      }
      const next = seq + 1;
      await OpfsBackend.writeFile(dir, `state.${next % 2}`, encodeRecord(next, state), takeFault('state'));
      if (e) e.stateSeq = next;
    }

    async loadState(ih) {
      let dir;
      try {
        dir = await this.dir(ih);
      } catch (e) {
        if (e.kind === 'missing') return null;
        throw e;
      }
      const slots = (await this.readSlots(dir)).filter(Boolean);
      if (slots.length === 0) return null;
      slots.sort((a, b) => b.seq - a.seq);
      return slots[0].payload.slice();
    }

    async loadTorrent(ih) {
      let dir;
      try {
        dir = await this.dir(ih);
      } catch (e) {
        if (e.kind === 'missing') return null;
        throw e;
      }
      const rec = decodeRecord(await OpfsBackend.readFile(dir, 'torrent'));
      const t = rec && decodeTorrent(rec.payload);
      return t ? t.torrent : null;
    }

    async storedLength(ih) {
      return (await this.entry(ih)).length;
    }

    async writeImport(ih, offset, bytes, _pieceLength) {
      const e = await this.entry(ih);
      if (e.removed) throw new CoreError('missing', `torrent ${ih} was removed during the import`);
      OpfsBackend.writeAll(e.handle, bytes, offset);
    }

    async flushImport(ih) {
      const e = await this.entry(ih);
      e.handle.flush();
    }

    async list() {
      const out = [];
      for await (const [name, handle] of this.root.entries()) {
        if (handle.kind === 'directory' && IH_RE.test(name)) out.push(name);
      }
      return out.sort();
    }

    closeEntry(ih) {
      const e = this.entries.get(ih);
      if (!e) return;
      e.removed = true;
      try { if (e.handle) e.handle.close(); } catch { /* already closed */ }
      this.entries.delete(ih);
    }

    async remove(ih) {
      this.closeEntry(ih);
      try {
        await this.root.removeEntry(ih, { recursive: true });
      } catch (e) {
        if (!e || e.name !== 'NotFoundError') throw e;
      }
    }

    close() {
      for (const ih of [...this.entries.keys()]) this.closeEntry(ih);
    }
  }

  // =========================================================================================
  // IndexedDB
  // =========================================================================================
  function req(r) {
    return new Promise((res, rej) => {
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
  }

  class IdbBackend {
    static async open() {
      const idb = scope.indexedDB;
      if (!idb) throw new CoreError('io', 'no IndexedDB');
      const r = idb.open('seedtab', 1);
      r.onupgradeneeded = () => {
        const db = r.result;
        for (const s of ['blocks', 'meta', 'state']) {
          if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
        }
      };
      const db = await req(r);
      db.onversionchange = () => db.close();
      return new IdbBackend(db);
    }

    constructor(db) {
      this.name = 'idb';
      this.db = db;
      /** ih -> length, for torrents seen this session */
      this.lengths = new Map();
      this.removed = new Set();
    }

    /** Runs `fn(stores...)` in one transaction; resolves with fn's result once it commits. */
    tx(names, mode, fn, durability) {
      return new Promise((res, rej) => {
        let t;
        try {
          t = this.db.transaction(names, mode, durability ? { durability } : undefined);
        } catch (e) {
          rej(e);
          return;
        }
        let out;
        let failure = null;
        t.oncomplete = () => res(out);
        t.onabort = () => rej(failure || t.error || new CoreError('io', 'transaction aborted'));
        try {
          out = fn(...names.map((n) => t.objectStore(n)), t, (err) => { failure = err; });
        } catch (e) {
          failure = e;
          try { t.abort(); } catch { /* already finished */ }
        }
      });
    }

    async create(ih, torrent, length, _opts) {
      const value = { length, torrent: torrent.slice().buffer };
      await this.tx(['meta'], 'readwrite', (meta) => { meta.put(value, ih); }, 'strict');
      this.lengths.set(ih, length);
      this.removed.delete(ih);
    }

    async length(ih) {
      let len = this.lengths.get(ih);
      if (len !== undefined) return len;
      const m = await this.tx(['meta'], 'readonly', (meta) => {
        const box = {};
        meta.get(ih).onsuccess = (ev) => { box.v = ev.target.result; };
        return box;
      });
      if (!m.v) throw new CoreError('missing', `no stored torrent ${ih}: create() it`);
      len = m.v.length;
      this.lengths.set(ih, len);
      return len;
    }

    async writePiece(ih, offset, data) {
      const len = await this.length(ih);
      if (offset + data.length > len) {
        throw new CoreError('io', `write of ${data.length} at ${offset} passes the end (${len})`);
      }
      const fault = takeFault('piece');
      const blob = new Blob([data]);
      await this.tx(['blocks'], 'readwrite', (blocks, t, fail) => {
        blocks.put(blob, [ih, offset]);
        if (fault) {
          fail(injected(fault));
          t.abort();
        }
      }, 'strict');
    }

    /** The [start, Blob] blocks covering [offset, offset+length), or a 'missing' error. */
    async blocks(ih, offset, length) {
      const end = offset + length;
      const got = await this.tx(['blocks'], 'readonly', (blocks) => {
        const box = { keys: null, values: null, first: null };
        // The last block starting at or before `offset`, then every block starting before `end`.
        const c = blocks.openCursor(IDBKeyRange.bound([ih, -Infinity], [ih, offset]), 'prev');
        c.onsuccess = () => {
          const cur = c.result;
          box.first = cur ? [cur.key[1], cur.value] : null;
        };
        if (end > offset) {
          const range = IDBKeyRange.bound([ih, offset], [ih, end], true, true);
          blocks.getAllKeys(range).onsuccess = (ev) => { box.keys = ev.target.result; };
          blocks.getAll(range).onsuccess = (ev) => { box.values = ev.target.result; };
        }
        return box;
      });
      const list = [];
      if (got.first) list.push(got.first);
      if (got.keys) got.keys.forEach((k, i) => list.push([k[1], got.values[i]]));
      const parts = [];
      let pos = offset;
      for (const [start, blob] of list) {
        if (pos >= end) break;
        const stop = start + blob.size;
        if (stop <= pos) continue;
        if (start > pos) break;
        const upto = Math.min(stop, end);
        parts.push(blob.slice(pos - start, upto - start));
        pos = upto;
      }
      if (pos < end) {
        if (!got.first && !(got.keys && got.keys.length) && !(await this.exists(ih))) {
          throw new CoreError('missing', `no stored torrent ${ih}`);
        }
        throw new CoreError('missing', `bytes ${pos}..${end} of ${ih} were never written`);
      }
      return parts;
    }

    async exists(ih) {
      const r = await this.tx(['meta'], 'readonly', (meta) => {
        const box = {};
        meta.getKey(ih).onsuccess = (ev) => { box.k = ev.target.result; };
        return box;
      });
      return r.k !== undefined;
    }

    async readRange(ih, offset, length) {
      const parts = await this.blocks(ih, offset, length);
      return new Uint8Array(await new Blob(parts).arrayBuffer());
    }

    async fileBlob(ih, offset, length, type) {
      return new Blob(await this.blocks(ih, offset, length), { type: type || '' });
    }

    async saveState(ih, state) {
      const fault = takeFault('state');
      const value = state.slice().buffer;
      await this.tx(['meta', 'state'], 'readwrite', (meta, st, t, fail) => {
        const g = meta.getKey(ih);
        g.onsuccess = () => {
          if (g.result === undefined) {
            fail(new CoreError('missing', `no stored torrent ${ih}`));
            t.abort();
            return;
          }
          st.put(value, ih);
          if (fault) {
            fail(injected(fault));
            t.abort();
          }
        };
      }, 'strict');
    }

    async loadState(ih) {
      const r = await this.tx(['state'], 'readonly', (st) => {
        const box = {};
        st.get(ih).onsuccess = (ev) => { box.v = ev.target.result; };
        return box;
      });
      return r.v ? new Uint8Array(r.v) : null;
    }

    async loadTorrent(ih) {
      const r = await this.tx(['meta'], 'readonly', (meta) => {
        const box = {};
        meta.get(ih).onsuccess = (ev) => { box.v = ev.target.result; };
        return box;
      });
      return r.v ? new Uint8Array(r.v.torrent) : null;
    }

    async storedLength(ih) {
      return this.length(ih);
    }

    async writeImport(ih, offset, bytes, pieceLength) {
      if (this.removed.has(ih)) throw new CoreError('missing', `torrent ${ih} was removed during the import`);
      // One block per piece, as writePiece makes them: blocks never overlap.
      const blobs = [];
      for (let at = 0; at < bytes.length; at += pieceLength) {
        blobs.push([offset + at, new Blob([bytes.subarray(at, Math.min(bytes.length, at + pieceLength))])]);
      }
      await this.tx(['blocks'], 'readwrite', (blocks) => {
        for (const [off, blob] of blobs) blocks.put(blob, [ih, off]);
      }, 'relaxed');
    }

    async flushImport(ih) {
      // A strict commit (rewriting the meta record as it is) flushes the relaxed ones before it.
      await this.tx(['meta'], 'readwrite', (meta) => {
        const g = meta.get(ih);
        g.onsuccess = () => { if (g.result) meta.put(g.result, ih); };
      }, 'strict');
    }

    async list() {
      const r = await this.tx(['meta'], 'readonly', (meta) => {
        const box = {};
        meta.getAllKeys().onsuccess = (ev) => { box.v = ev.target.result; };
        return box;
      });
      return r.v.filter((k) => typeof k === 'string').sort();
    }

    async remove(ih) {
      this.removed.add(ih);
      this.lengths.delete(ih);
      await this.tx(['blocks', 'meta', 'state'], 'readwrite', (blocks, meta, st) => {
        blocks.delete(IDBKeyRange.bound([ih, -Infinity], [ih, Infinity]));
        meta.delete(ih);
        st.delete(ih);
      }, 'strict');
    }

    close() {
      this.db.close();
    }
  }

  // =========================================================================================
  // importFiles: read Files in batches of whole pieces, write them, hash every piece
  // =========================================================================================
  async function importFiles(backend, ih, files, pieceLength, onProgress) {
    if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) {
      throw new CoreError('io', `bad pieceLength ${pieceLength}`);
    }
    const list = files.map((f) => ({ blob: f.file, offset: f.offset }))
      .filter((f) => f.blob.size > 0)
      .sort((a, b) => a.offset - b.offset);
    if (list.length === 0) return new Uint8Array(0);
    for (const f of list) checkRange(f.offset, f.blob.size);
    const start = list[0].offset;
    if (start % pieceLength !== 0) {
      throw new CoreError('io', `the first file starts at ${start}, not at a piece boundary`);
    }
    for (let i = 1; i < list.length; i++) {
      const prevEnd = list[i - 1].offset + list[i - 1].blob.size;
      if (list[i].offset !== prevEnd) {
        throw new CoreError('io', `files must be contiguous: one ends at ${prevEnd}, the next starts at ${list[i].offset}`);
      }
    }
    const end = list[list.length - 1].offset + list[list.length - 1].blob.size;
    const total = await backend.storedLength(ih);
    if (end > total) throw new CoreError('io', `files end at ${end}, past the torrent's length ${total}`);

    const nPieces = Math.ceil((end - start) / pieceLength);
    const out = new Uint8Array(nPieces * 20);
    const perBatch = Math.max(1, Math.floor(IMPORT_BATCH / pieceLength));
    let fileIdx = 0;
    let pending = null;
    const collect = async (p) => {
      const { first, digests } = p;
      const ds = await Promise.all(digests);
      ds.forEach((d, i) => out.set(d, (first + i) * 20));
    };
    for (let piece = 0; piece < nPieces; piece += perBatch) {
      const bStart = start + piece * pieceLength;
      const bEnd = Math.min(end, bStart + perBatch * pieceLength);
      const buf = new Uint8Array(bEnd - bStart);
      // Fill buf from the files overlapping [bStart, bEnd).
      while (fileIdx < list.length && list[fileIdx].offset + list[fileIdx].blob.size <= bStart) fileIdx++;
      const reads = [];
      for (let i = fileIdx; i < list.length && list[i].offset < bEnd; i++) {
        const f = list[i];
        const from = Math.max(bStart, f.offset);
        const to = Math.min(bEnd, f.offset + f.blob.size);
        reads.push(f.blob.slice(from - f.offset, to - f.offset).arrayBuffer()
          .then((ab) => buf.set(new Uint8Array(ab), from - bStart)));
      }
      await Promise.all(reads);
      await backend.writeImport(ih, bStart, buf, pieceLength);
      const digests = [];
      for (let off = 0; off < buf.length; off += pieceLength) {
        digests.push(sha1(buf.subarray(off, Math.min(buf.length, off + pieceLength))));
      }
      if (pending) await collect(pending);
      pending = { first: piece, digests };
      if (onProgress) onProgress(bEnd - start);
    }
    if (pending) await collect(pending);
    await backend.flushImport(ih);
    return out;
  }

  // =========================================================================================
  // The dispatcher: one method per operation; returns { value, transfer }
  // =========================================================================================
  let backend = null;

  async function init(opts) {
    const force = opts && opts.forceBackend;
    forceJsSha1 = !!(opts && opts.testForceJsSha1);
    let opfsError = null;
    if (force !== 'idb') {
      try {
        backend = await OpfsBackend.open();
      } catch (e) {
        opfsError = e;
        if (force === 'opfs') throw e;
      }
    }
    if (!backend) backend = await IdbBackend.open();
    return { value: { backend: backend.name, opfsError: opfsError ? describe(opfsError).message : null } };
  }

  function handle(op, args, onProgress) {
    if (op === 'init') return init(args[0]);
    if (op === 'testFail') {
      failNext = args[0];
      return Promise.resolve({ value: undefined });
    }
    if (!backend) return Promise.reject(new CoreError('io', 'storage is not open'));
    const b = backend;
    const ih = args[0];
    // Argument checks and the write queue are entered synchronously, so operations keep the
    // order in which they were posted.
    try {
      if (op !== 'list' && op !== 'close') checkIh(ih);
    } catch (e) {
      return Promise.reject(e);
    }
    const bytes = (v) => ({ value: v, transfer: v && v.buffer ? [v.buffer] : [] });
    switch (op) {
      case 'create':
        try { checkRange(0, args[2]); } catch (e) { return Promise.reject(e); }
        return serialize(ih, () => b.create(ih, args[1], args[2], args[3])).then(() => ({}));
      case 'writePiece':
        try { checkRange(args[1], args[2].length); } catch (e) { return Promise.reject(e); }
        return serialize(ih, () => b.writePiece(ih, args[1], args[2])).then(() => ({}));
      case 'readRange':
        try { checkRange(args[1], args[2]); } catch (e) { return Promise.reject(e); }
        return b.readRange(ih, args[1], args[2]).then(bytes);
      case 'fileBlob':
        try { checkRange(args[1], args[2]); } catch (e) { return Promise.reject(e); }
        return b.fileBlob(ih, args[1], args[2], args[3]).then((v) => ({ value: v }));
      case 'saveState':
        return serialize(ih, () => b.saveState(ih, args[1])).then(() => ({}));
      case 'loadState':
        return b.loadState(ih).then(bytes);
      case 'loadTorrent':
        return b.loadTorrent(ih).then(bytes);
      case 'importFiles':
        return serialize(ih, () => importFiles(b, ih, args[1], args[2], onProgress)).then(bytes);
      case 'remove':
        // Stop an import in progress at its next batch, then wait for the queue.
        if (b.name === 'opfs') { const e = b.entries.get(ih); if (e) e.removed = true; } else b.removed.add(ih);
        return serialize(ih, () => b.remove(ih)).then(() => ({}));
      case 'list':
        return b.list().then((v) => ({ value: v }));
      case 'close':
        b.close();
        backend = null;
        return Promise.resolve({});
      default:
        return Promise.reject(new CoreError('io', `unknown operation ${op}`));
    }
  }

  if (inWorker) {
    scope.onmessage = (ev) => {
      const { id, op, args } = ev.data;
      const progress = (done) => scope.postMessage({ id, progress: done });
      let p;
      try {
        p = handle(op, args, progress);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (r) => scope.postMessage({ id, ok: true, value: r.value }, r.transfer || []),
        (e) => scope.postMessage({ id, ok: false, error: describe(e) }),
      );
    };
  }
  return { handle, describe };
}

// ---------------------------------------------------------------------------------------------
// Main thread
// ---------------------------------------------------------------------------------------------

function toError(d) {
  const err = new StorageError(d.kind, d.message);
  err.cause = d.name;
  return err;
}

/** Calls into the core running in a dedicated worker. */
class WorkerLink {
  constructor() {
    const src = `(${storageCore.toString()})(self, true);\n//# sourceURL=seedtab-storage-worker.js`;
    this.url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
    this.worker = new Worker(this.url, { name: 'seedtab-storage' });
    this.nextId = 1;
    this.pending = new Map();
    this.dead = null;
    this.worker.onmessage = (ev) => {
      const m = ev.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.progress !== undefined) {
        if (p.onProgress) try { p.onProgress(m.progress); } catch { /* the caller's problem */ }
        return;
      }
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(toError(m.error));
    };
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      this.fail(new StorageError('io', `storage worker failed: ${ev.message || 'could not start (CSP worker-src?)'}`));
    };
    this.worker.onmessageerror = () => this.fail(new StorageError('io', 'storage worker: message could not be decoded'));
  }

  fail(err) {
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  call(op, args, transfer = [], onProgress = null) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.worker.postMessage({ id, op, args }, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(new StorageError('io', `could not send to the storage worker: ${e && e.message}`));
      }
    });
  }

  terminate() {
    this.worker.terminate();
    URL.revokeObjectURL(this.url);
    this.fail(new StorageError('io', 'storage is closed'));
  }
}

/** Calls into the core on this thread (IndexedDB only). */
class LocalLink {
  constructor() {
    this.core = storageCore(globalThis, false);
    this.closed = false;
  }

  async call(op, args, _transfer, onProgress = null) {
    if (this.closed) throw new StorageError('io', 'storage is closed');
    try {
      return (await this.core.handle(op, args, onProgress)).value;
    } catch (e) {
      throw toError(this.core.describe(e));
    }
  }

  terminate() {
    this.closed = true;
  }
}

function u8(data, what) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what} must be a Uint8Array`);
}

/**
 * Where a torrent's pieces, its .torrent and its resume state live. All methods but `backend`,
 * `testFailNextWrite` and `close` return Promises; failures are StorageErrors.
 */
export class PieceStorage {
  constructor(link, backend, info) {
    this._link = link;
    this._backend = backend;
    /** Why OPFS was not used, when it was not (a string), for diagnostics. */
    this.fallbackReason = info.opfsError || null;
  }

  /**
   * Opens the storage: OPFS in a worker where it works, IndexedDB otherwise.
   * options.forceBackend: 'opfs' (fail if unavailable) | 'idb';  options.worker: false keeps
   * IndexedDB on this thread (what happens anyway when no worker can be made).
   */
  static async open(options = {}) {
    const opts = options || {};
    const force = opts.forceBackend;
    if (force !== undefined && force !== null && force !== 'opfs' && force !== 'idb') {
      throw new TypeError(`forceBackend must be 'opfs' or 'idb', not ${force}`);
    }
    const initArgs = [{ forceBackend: force, testForceJsSha1: !!opts.testForceJsSha1 }];
    let workerError = null;
    if (opts.worker !== false && typeof Worker !== 'undefined') {
      let link = null;
      try {
        link = new WorkerLink();
        const info = await link.call('init', initArgs);
        return new PieceStorage(link, info.backend, info);
      } catch (e) {
        if (link) link.terminate();
        if (force === 'opfs') throw e instanceof StorageError ? e : new StorageError('io', String(e));
        workerError = e;
      }
    }
    if (force === 'opfs') throw new StorageError('io', 'OPFS needs a worker, and none could be made');
    const link = new LocalLink();
    const info = await link.call('init', [{ ...initArgs[0], forceBackend: 'idb' }]);
    if (workerError && !info.opfsError) info.opfsError = `no storage worker: ${workerError.message || workerError}`;
    return new PieceStorage(link, info.backend, info);
  }

  /** 'opfs' | 'idb' */
  get backend() {
    return this._backend;
  }

  /**
   * Makes (or opens) the torrent's entry: stores the .torrent and its total length. Idempotent.
   * options.preallocate (OPFS): size the data file to totalLength now, so that a lack of quota
   * shows here (kind 'quota') and not in the middle of a download; the quota counts the whole
   * length from then on. IndexedDB ignores it.
   */
  create(ih, torrentBytes, totalLength, options = {}) {
    const t = u8(torrentBytes, 'torrentBytes').slice();
    const opts = { preallocate: !!(options && options.preallocate) };
    return this._link.call('create', [ih, t, totalLength, opts], [t.buffer]);
  }

  /**
   * Writes `data` at byte `offset` of the torrent; resolves once flushed to disk. `data` is copied
   * before this returns, so it may be a view of wasm memory. Rejects with kind 'quota' when the
   * origin's quota is full. A failed write may leave part of the piece written: only pieces whose
   * write resolved may be marked as had in the saved state.
   */
  writePiece(ih, offset, data) {
    const copy = u8(data, 'data').slice();
    return this._link.call('writePiece', [ih, offset, copy], [copy.buffer]);
  }

  /** `length` bytes at `offset`, in a fresh Uint8Array; kind 'missing' if never written. */
  readRange(ih, offset, length) {
    return this._link.call('readRange', [ih, offset, length]);
  }

  /** Replaces the saved state; a failed or torn save leaves the previous one in place. */
  saveState(ih, state) {
    const copy = u8(state, 'state').slice();
    return this._link.call('saveState', [ih, copy], [copy.buffer]);
  }

  /** The last saved state, or null. */
  loadState(ih) {
    return this._link.call('loadState', [ih]);
  }

  /** The .torrent bytes given to create(), or null. */
  loadTorrent(ih) {
    return this._link.call('loadTorrent', [ih]);
  }

  /** Info-hashes (hex) of the stored torrents, sorted. */
  list() {
    return this._link.call('list', []);
  }

  /** Deletes the torrent's data, .torrent and state; stops an import of it. No error if absent. */
  remove(ih) {
    return this._link.call('remove', [ih]);
  }

  /**
   * A Blob of `length` bytes at `offset` (e.g. one file of the torrent) that is backed by the
   * stored data, not by memory: save it with an <a download> of URL.createObjectURL(blob).
   * OPFS: the Blob is a snapshot; Chromium refuses to read it (NotReadableError) once the
   * torrent's data is written again, so take it when the range is complete.
   */
  fileBlob(ih, offset, length, mimeType) {
    return this._link.call('fileBlob', [ih, offset, length, mimeType || '']);
  }

  /**
   * Stores files for seeding and hashes them in one pass, in the worker: `files` is a list of
   * { file: File|Blob, offset } placing each file in the torrent (contiguous, the first at a piece
   * boundary, usually 0). Returns the SHA-1s of the pieces from the first file's piece on, 20
   * bytes each, concatenated; pieces spanning two files are hashed across the boundary.
   * create() the torrent first (its total length bounds the writes).
   * options.onProgress(bytesDone) is called after each batch (8 MiB).
   */
  importFiles(ih, files, pieceLength, options = {}) {
    const list = Array.from(files, (f) => ({ file: f.file, offset: f.offset }));
    return this._link.call('importFiles', [ih, list, pieceLength], [], (options && options.onProgress) || null);
  }

  /** importFiles with one file. */
  importFile(ih, file, offset, pieceLength, options) {
    return this.importFiles(ih, [{ file, offset }], pieceLength, options);
  }

  /** { usage, quota, persisted } of this origin (zeros and false where navigator.storage is missing). */
  async estimate() {
    const s = globalThis.navigator && globalThis.navigator.storage;
    if (!s || typeof s.estimate !== 'function') return { usage: 0, quota: 0, persisted: false };
    const [e, persisted] = await Promise.all([
      s.estimate(),
      typeof s.persisted === 'function' ? s.persisted().catch(() => false) : false,
    ]);
    return { usage: e.usage || 0, quota: e.quota || 0, persisted: !!persisted };
  }

  /** Asks the browser not to evict this origin's storage; true when granted. */
  async persist() {
    const s = globalThis.navigator && globalThis.navigator.storage;
    if (!s || typeof s.persist !== 'function') return false;
    try {
      return !!(await s.persist());
    } catch {
      return false;
    }
  }

  /**
   * Tests only: the next writePiece (what = 'piece') or saveState ('state') writes `afterBytes`
   * bytes and then fails with kind 'io', as a crash or a full disk mid-write would.
   */
  testFailNextWrite(afterBytes, what = 'piece') {
    this._link.call('testFail', [{ afterBytes: Math.max(0, afterBytes | 0), what }]).catch(() => {});
  }

  /** Closes the files (releasing their locks) and stops the worker. */
  async close() {
    try {
      await this._link.call('close', []);
    } catch { /* already closed or dead */ }
    this._link.terminate();
  }
}
