// Test page for tests/browser/: loads the wasm package and exposes it to Playwright.
//   window.seedtab       = { Client, ...every export of pkg/seedtab.js }
//   window.seedtabReady  = true once loaded
//   window.seedtabError  = the error text when loading failed
//   window.seedtabErrors = uncaught errors and unhandled rejections seen since (strings)
//   window.testUtils     = small helpers the tests call inside the page
//   window.seedtabStream = { registerStreamWorker, serveStreams, streamUrl } (app/stream.mjs)
import { registerStreamWorker, serveStreams, streamUrl } from './app/stream.mjs';

// Streaming through the service worker (www/static/sw.js), for player tests and bench/player.mjs.
window.seedtabStream = { registerStreamWorker, serveStreams, streamUrl };
window.seedtabErrors = [];
window.addEventListener('error', (e) => {
  window.seedtabErrors.push(String((e.error && e.error.stack) || e.message));
});
window.addEventListener('unhandledrejection', (e) => {
  window.seedtabErrors.push(String((e.reason && e.reason.stack) || e.reason));
});

const CHUNK = 65536; // crypto.getRandomValues fills at most 64 KiB per call

window.testUtils = {
  /** n random bytes. */
  randomBytes(n) {
    const data = new Uint8Array(n);
    for (let off = 0; off < n; off += CHUNK) {
      crypto.getRandomValues(data.subarray(off, Math.min(n, off + CHUNK)));
    }
    return data;
  },
  /** SHA-256 of bytes (Uint8Array, ArrayBuffer or Blob) as lower-case hex. */
  async sha256Hex(bytes) {
    let buf = bytes;
    if (typeof Blob !== 'undefined' && bytes instanceof Blob) buf = await bytes.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', buf);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  },
  sleep(ms) {
    return new Promise((res) => setTimeout(res, ms));
  },
};

const status = document.getElementById('status');
import('../pkg/seedtab.js')
  .then((mod) => {
    if (typeof mod.Client !== 'function') {
      throw new Error('pkg/seedtab.js has no exported class Client');
    }
    window.seedtab = { ...mod, Client: mod.Client };
    window.seedtabReady = true;
    if (status) status.textContent = 'ready';
  })
  .catch((err) => {
    window.seedtabError = String((err && err.stack) || err);
    if (status) status.textContent = `failed: ${window.seedtabError}`;
    console.error('harness: loading pkg/seedtab.js failed:', err);
  });
