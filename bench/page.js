// In-page helpers for bench/bench.mjs, installed in every benchmark tab before the page's own
// scripts run (playwright addInitScript). Defines window.bench. Plain browser JavaScript: no
// imports, no seedtab code (the harness page loads pkg/seedtab.js as window.seedtab).
(() => {
  const CHUNK = 65536; // crypto.getRandomValues fills at most 64 KiB per call

  const bench = {
    /** Wall-clock milliseconds with sub-millisecond resolution, comparable across tabs. */
    now() {
      return performance.timeOrigin + performance.now();
    },

    /** n random bytes, generated in 64 KiB chunks. */
    randomBytes(n) {
      const data = new Uint8Array(n);
      for (let off = 0; off < n; off += CHUNK) {
        crypto.getRandomValues(data.subarray(off, Math.min(n, off + CHUNK)));
      }
      return data;
    },

    hex(bytes) {
      return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    },

    /** SHA-256 of bytes (Uint8Array, ArrayBuffer or Blob), lower-case hex. */
    async sha256Hex(bytes) {
      let buf = bytes;
      if (bytes instanceof Blob) buf = await bytes.arrayBuffer();
      return bench.hex(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)));
    },

    /** Loads WebTorrent's browser bundle (an ES module served by the benchmark's route). */
    async loadWebTorrent() {
      if (!window.WebTorrent) {
        window.WebTorrent = (await import('/vendor/webtorrent.min.js')).default;
      }
      return window.WebTorrent.VERSION || 'unknown';
    },

    /**
     * Asks a WebSocket tracker for the swarm of `infoHashHex` (a scrape) until it lists at least
     * `want` complete peers: "the seeder has announced". Returns the milliseconds it took.
     */
    async waitSeeded(trackerUrl, infoHashHex, { want = 1, timeoutMs = 15000 } = {}) {
      const t0 = performance.now();
      const ih = String.fromCharCode(...infoHashHex.match(/../g).map((h) => parseInt(h, 16)));
      const ws = new WebSocket(trackerUrl);
      try {
        await new Promise((res, rej) => {
          ws.onopen = res;
          ws.onerror = () => rej(new Error(`cannot open ${trackerUrl}`));
          setTimeout(() => rej(new Error(`timed out opening ${trackerUrl}`)), timeoutMs);
        });
        for (;;) {
          const reply = await new Promise((res, rej) => {
            ws.onmessage = (e) => {
              try { res(JSON.parse(e.data)); } catch (err) { rej(err); }
            };
            ws.send(JSON.stringify({ action: 'scrape', info_hash: [ih] }));
            setTimeout(() => rej(new Error('scrape reply timed out')), 5000);
          });
          const entry = reply.files && reply.files[ih];
          if (entry && entry.complete >= want) return performance.now() - t0;
          if (performance.now() - t0 > timeoutMs) {
            throw new Error(`tracker lists no seeder for ${infoHashHex} after ${timeoutMs} ms: ${JSON.stringify(reply)}`);
          }
          await new Promise((res) => setTimeout(res, 50));
        }
      } finally {
        ws.close();
      }
    },

    /**
     * An in-memory chunk store (the abstract-chunk-store interface WebTorrent takes as `store`),
     * so WebTorrent keeps pieces in memory like seedtab does (its browser default is OPFS).
     */
    MemStore: class MemStore {
      constructor(chunkLength, opts = {}) {
        this.chunkLength = Number(chunkLength);
        this.chunks = [];
        this.closed = false;
        this.length = Number(opts.length) || Infinity;
      }
      put(index, buf, cb = () => {}) {
        if (this.closed) { queueMicrotask(() => cb(new Error('Storage is closed'))); return; }
        this.chunks[index] = buf;
        queueMicrotask(() => cb(null));
      }
      get(index, opts, cb = () => {}) {
        if (typeof opts === 'function') { cb = opts; opts = null; }
        if (this.closed) { queueMicrotask(() => cb(new Error('Storage is closed'))); return; }
        let buf = this.chunks[index];
        if (!buf) {
          const err = new Error('Chunk not found');
          err.notFound = true;
          queueMicrotask(() => cb(err));
          return;
        }
        const offset = (opts && opts.offset) || 0;
        const len = (opts && opts.length) || (buf.length - offset);
        if (offset !== 0 || len !== buf.length) buf = buf.subarray(offset, offset + len);
        queueMicrotask(() => cb(null, buf));
      }
      close(cb = () => {}) {
        this.closed = true;
        this.chunks = [];
        queueMicrotask(() => cb(null));
      }
      destroy(cb = () => {}) {
        this.close(cb);
      }
    },

    /**
     * WebTorrent client options: nothing a browser tab on a closed network cannot use. With
     * `defaultIce`, WebTorrent keeps its own rtcConfig (public STUN servers, unreachable here).
     */
    webTorrentOptions({ defaultIce = false } = {}) {
      const opts = { dht: false, lsd: false, utp: false, webSeeds: false, natUpnp: false, natPmp: false };
      if (!defaultIce) opts.tracker = { rtcConfig: { iceServers: [] } };
      return opts;
    },

    // --- a bare data channel between two tabs, signalled by the test -------------------------

    rtc: {
      /** Waits for complete ICE gathering (as WebTorrent and seedtab do: no trickle). */
      async gathered(pc) {
        if (pc.iceGatheringState !== 'complete') {
          await new Promise((res) => {
            const t = setTimeout(res, 10000);
            pc.addEventListener('icegatheringstatechange', () => {
              if (pc.iceGatheringState === 'complete') { clearTimeout(t); res(); }
            });
          });
        }
        return pc.localDescription.toJSON();
      },
      open(dc) {
        return dc.readyState === 'open' ? Promise.resolve() : new Promise((res, rej) => {
          dc.addEventListener('open', () => res());
          dc.addEventListener('error', (e) => rej(new Error(`data channel error ${e.error && e.error.message}`)));
          dc.addEventListener('close', () => rej(new Error('data channel closed before opening')));
        });
      },
      /** Sends `data` in `msgSize` messages, writing only while bufferedAmount < high. */
      async send(dc, data, msgSize, high, low) {
        dc.bufferedAmountLowThreshold = low;
        for (let off = 0; off < data.length; off += msgSize) {
          if (dc.bufferedAmount > high) {
            await new Promise((res, rej) => {
              dc.onbufferedamountlow = () => { dc.onbufferedamountlow = null; res(); };
              dc.onclose = () => rej(new Error('channel closed while sending'));
            });
          }
          if (dc.readyState !== 'open') throw new Error(`channel ${dc.readyState} while sending`);
          dc.send(data.subarray(off, Math.min(data.length, off + msgSize)));
        }
      },
      /** Receives exactly `total` bytes into one buffer; resolves with {data, firstAt, doneAt}. */
      receive(dc, total) {
        dc.binaryType = 'arraybuffer';
        const data = new Uint8Array(total);
        let got = 0;
        let firstAt = 0;
        return new Promise((res, rej) => {
          dc.onmessage = (e) => {
            if (!firstAt) firstAt = bench.now();
            const b = new Uint8Array(e.data);
            if (got + b.length > total) { rej(new Error('received more than sent')); return; }
            data.set(b, got);
            got += b.length;
            if (got === total) res({ data, firstAt, doneAt: bench.now() });
          };
          dc.onclose = () => { if (got < total) rej(new Error(`channel closed at ${got}/${total} bytes`)); };
        });
      },
    },
  };

  // seedtab's start-up timeline (Client option `debug: true`) goes to console.log as
  // "seedtab +N ms <hash>: ..."; keep each line with the moment it was logged.
  bench.trace = [];
  const log = console.log;
  console.log = function benchLog(...args) {
    if (typeof args[0] === 'string' && args[0].startsWith('seedtab +') && bench.trace.length < 10000) {
      bench.trace.push({ at: bench.now(), text: args[0] });
    }
    return log.apply(this, args);
  };

  window.bench = bench;
})();
