// Reward receipts in the browser (docs/receipts.md): the Ed25519 key, the receipts this tab's
// uploads earned, and the ledger's HTTP API.
//
// The private key is made by WebCrypto as non-extractable and kept in IndexedDB as a CryptoKey:
// no script, ours included, can read its bytes; it only signs. This file never exports it,
// never signs anything but a receipt message handed over by the engine, and keeps only
// receipts the engine has verified.

const DB_NAME = 'seedtab-rewards';
const DB_VERSION = 1;
const KEYS = 'keys';
const RECEIPTS = 'receipts';
const KEY_ID = 'reward';
/** The ledger takes at most this many receipts per request (docs/ledger.md). */
const BATCH = 1000;

let dbPromise = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
  });
}

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains(KEYS)) db.createObjectStore(KEYS);
        if (!db.objectStoreNames.contains(RECEIPTS)) db.createObjectStore(RECEIPTS, { keyPath: 'id' });
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error('the rewards database is blocked by another tab'));
    });
    dbPromise.catch(() => { dbPromise = null; });
  }
  return dbPromise;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * This browser's reward key, made on first use: `{ publicKey: Uint8Array(32), privateKey:
 * CryptoKey }`. Throws an Error that says why when the browser cannot (no WebCrypto Ed25519,
 * no IndexedDB).
 */
export async function loadRewardKey() {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error('WebCrypto is not available here (the page is not a secure context): reward receipts are off');
  }
  const db = await openDb();
  let pair = await req(db.transaction(KEYS).objectStore(KEYS).get(KEY_ID));
  if (!pair) {
    let made;
    try {
      made = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    } catch (e) {
      throw new Error(`This browser has no WebCrypto Ed25519 (${e && e.name}): reward receipts are off`);
    }
    // add(), not put(): when two tabs make a key at once, the first one kept wins for both.
    const tx = db.transaction(KEYS, 'readwrite');
    tx.objectStore(KEYS).add(made, KEY_ID);
    try {
      await done(tx);
    } catch (e) {
      if (!e || e.name !== 'ConstraintError') throw e;
    }
    pair = await req(db.transaction(KEYS).objectStore(KEYS).get(KEY_ID));
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { publicKey: raw, privateKey: pair.privateKey };
}

/** Signs one receipt message (docs/receipts.md, "Signing"); resolves to the 64-byte signature. */
export async function signReceipt(privateKey, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, message));
}

/** Receipts waiting to be written: one transaction for a burst, the newest per session. */
const queue = new Map();
let flushing = null;
/** How long a burst may gather before it is written: short, so a closing tab loses little. */
const FLUSH_MS = 100;

/**
 * Keeps a verified receipt, replacing an older one of the same session (higher `seq` wins) and
 * keeping what the ledger said about earlier ones. Resolves once it is written.
 */
export function keepReceipt(rec) {
  const queued = queue.get(rec.id);
  if (!queued || queued.seq < rec.seq) queue.set(rec.id, rec);
  if (!flushing) {
    flushing = new Promise((resolve) => { setTimeout(resolve, FLUSH_MS); }).then(flushReceipts);
  }
  return flushing;
}

async function flushReceipts() {
  const batch = [...queue.values()];
  queue.clear();
  flushing = null;
  const db = await openDb();
  const tx = db.transaction(RECEIPTS, 'readwrite');
  const store = tx.objectStore(RECEIPTS);
  for (const rec of batch) {
    const r = store.get(rec.id);
    r.onsuccess = () => {
      const old = r.result;
      if (!old || old.seq < rec.seq) {
        store.put({ ...rec, submittedSeq: old ? old.submittedSeq : 0, ledger: old ? old.ledger : null });
      }
    };
  }
  await done(tx);
}

/** Every receipt held, oldest session first. */
export async function listReceipts() {
  if (flushing) await flushing;
  const db = await openDb();
  const all = await req(db.transaction(RECEIPTS).objectStore(RECEIPTS).getAll());
  return all.sort((a, b) => a.timestamp - b.timestamp);
}

function apiBase(ledger) {
  const base = ledger || new URL('/api', globalThis.location.href).href;
  return base.replace(/\/+$/, '');
}

async function postJson(url, body) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json = null;
  try { json = await r.json(); } catch { /* reported below */ }
  if (!r.ok || !json) {
    const msg = json && json.error ? `${json.error.code}: ${json.error.message}` : `HTTP ${r.status}`;
    throw new Error(`The ledger refused the receipts (${msg})`);
  }
  return json;
}

/**
 * Sends every receipt the ledger has not seen at its current `seq` to the ledger at `ledger`
 * (default: this site's /api), in batches. Resolves to `{ stored, duplicate, rejected, errors }`
 * where errors lists `{ id, code, message }` of refused ones; refused receipts are marked so
 * they are not resent until a newer one replaces them.
 */
export async function submitReceipts(ledger) {
  const base = apiBase(ledger);
  const pending = (await listReceipts()).filter((r) => r.submittedSeq !== r.seq);
  const out = { stored: 0, duplicate: 0, rejected: 0, errors: [] };
  for (let i = 0; i < pending.length; i += BATCH) {
    const batch = pending.slice(i, i + BATCH);
    const res = await postJson(`${base}/receipts`, { receipts: batch.map((r) => r.receipt) });
    const results = Array.isArray(res.results) ? res.results : [];
    const db = await openDb();
    const tx = db.transaction(RECEIPTS, 'readwrite');
    const store = tx.objectStore(RECEIPTS);
    batch.forEach((rec, j) => {
      const r = results[j] || { status: 'rejected', code: 'no_result', message: 'the ledger gave no result' };
      if (r.status === 'stored') out.stored += 1;
      else if (r.status === 'duplicate') out.duplicate += 1;
      else {
        out.rejected += 1;
        out.errors.push({ id: rec.id, code: String(r.code), message: String(r.message || '') });
      }
      store.put({ ...rec, submittedSeq: rec.seq, ledger: { status: String(r.status), code: r.code ? String(r.code) : null } });
    });
    await done(tx);
  }
  return out;
}

/** The ledger's totals for an uploader key (hex): `{ uploader, bytes, receipts, torrents }`. */
export async function ledgerTotals(ledger, keyHex) {
  const r = await fetch(`${apiBase(ledger)}/uploaders/${encodeURIComponent(keyHex)}`);
  if (!r.ok) throw new Error(`The ledger answered HTTP ${r.status}`);
  return r.json();
}
