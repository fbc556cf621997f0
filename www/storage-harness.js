// Test page for tests/browser/storage.test.mjs: src/web/js/storage.js, imported directly (the
// same file the wasm package binds as a snippet), plus the wasm package for the Rust wrapper.
//   window.storageJs     = { PieceStorage, StorageError }
//   window.seedtab       = every export of pkg/seedtab.js (for __storageSelfTest)
//   window.storageReady  = true once both are loaded; window.storageError = why not
//   window.testUtils     = randomBytes(n), pattern(seed, n), pieceHashes(bytes, pieceLength)
//                          (WebCrypto), equal(a, b), sleep(ms)
import { PieceStorage, StorageError } from '../src/web/js/storage.js';

window.storageJs = { PieceStorage, StorageError };

const CHUNK = 65536; // crypto.getRandomValues fills at most 64 KiB per call

window.testUtils = {
  randomBytes(n) {
    const data = new Uint8Array(n);
    for (let off = 0; off < n; off += CHUNK) {
      crypto.getRandomValues(data.subarray(off, Math.min(n, off + CHUNK)));
    }
    return data;
  },
  /** SHA-1 of each pieceLength piece of bytes, concatenated (WebCrypto). */
  async pieceHashes(bytes, pieceLength) {
    const out = new Uint8Array(Math.ceil(bytes.length / pieceLength) * 20);
    for (let i = 0; i * pieceLength < bytes.length; i++) {
      const d = await crypto.subtle.digest('SHA-1', bytes.subarray(i * pieceLength, (i + 1) * pieceLength));
      out.set(new Uint8Array(d), i * 20);
    }
    return out;
  },
  /** `length` deterministic pseudo-random bytes for `seed` (xorshift32): regenerated to check. */
  pattern(seed, length) {
    const out = new Uint8Array(length);
    const words = new Uint32Array(out.buffer, 0, length >>> 2);
    let x = (seed * 2654435761 + 1) >>> 0 || 1;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      words[i] = x;
    }
    for (let i = words.length * 4; i < length; i++) out[i] = (seed + i) & 0xff;
    return out;
  },
  equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  },
  sleep(ms) {
    return new Promise((res) => setTimeout(res, ms));
  },
};

const status = document.getElementById('status');
import('../pkg/seedtab.js')
  .then((mod) => {
    window.seedtab = mod;
    window.storageReady = true;
    if (status) status.textContent = 'ready';
  })
  .catch((err) => {
    window.storageError = String((err && err.stack) || err);
    if (status) status.textContent = `failed: ${window.storageError}`;
    console.error('storage-harness: loading pkg/seedtab.js failed:', err);
  });
