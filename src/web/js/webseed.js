// Web seed HTTP (BEP 19) for src/web/webseed.rs: one ranged GET, checked and bounded. It decides
// nothing about which piece to fetch (the engine does) and never trusts the server: the body must
// be exactly the range asked for, and the engine verifies the piece's SHA-1 afterwards.

/** Largest file a server that ignores Range (200) may make us read up to the range's end. */
const MAX_WHOLE_BODY = 64 * 1024 * 1024;

/**
 * GET `url` with `Range: bytes=start-end` (end inclusive) and resolve to exactly those bytes.
 * Accepts 206 with the matching Content-Range, or 200 with the whole file (sliced). Rejects with
 * an Error for anything else: other statuses, other sizes, time-out.
 */
export async function fetchRange(url, start, end, fileLength, timeoutMs) {
  const want = end - start + 1;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const r = await fetch(url, {
      headers: { Range: `bytes=${start}-${end}` },
      signal: ctrl.signal,
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
    if (r.status === 206) {
      const cr = r.headers.get('content-range') || '';
      const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(cr.trim());
      if (!m || Number(m[1]) !== start || Number(m[2]) !== end
          || (m[3] !== '*' && Number(m[3]) !== fileLength)) {
        throw new Error(`HTTP 206 with Content-Range "${cr}", wanted bytes ${start}-${end}/${fileLength}`);
      }
      const body = await readUpTo(r, want, true);
      if (body.length !== want) throw new Error(`HTTP 206 body of ${body.length} bytes, wanted ${want}`);
      return body;
    }
    if (r.status === 200) {
      const len = r.headers.get('content-length');
      if (len !== null && Number(len) !== fileLength) {
        throw new Error(`HTTP 200 of ${len} bytes, the file has ${fileLength}`);
      }
      if (end + 1 > MAX_WHOLE_BODY) throw new Error('server ignores Range and the file is too large');
      const body = await readUpTo(r, end + 1, false);
      if (body.length !== end + 1) throw new Error(`HTTP 200 body too short (${body.length} bytes)`);
      return body.slice(start, end + 1);
    }
    throw new Error(`HTTP ${r.status}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads at most `limit` bytes of the body; with `strict`, a longer body is an error. */
async function readUpTo(r, limit, strict) {
  const out = new Uint8Array(limit);
  let at = 0;
  const reader = r.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = limit - at;
      if (value.length > room) {
        if (strict) throw new Error(`body longer than the ${limit} bytes asked for`);
        out.set(value.subarray(0, room), at);
        at = limit;
        break;
      }
      out.set(value, at);
      at += value.length;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return at === limit ? out : out.subarray(0, at);
}
