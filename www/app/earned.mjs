// Pure helpers for the Earned panel (reward receipts, docs/receipts.md): what the panel says
// about this browser's reward key, the receipts held per torrent, a ledger submission and the
// ledger's totals, plus a small throttle for refreshing on 'receipt' events. No DOM access, so
// `node --test tests/browser/app-unit.test.mjs` exercises them. Names, keys, codes and messages
// here come from the swarm or the ledger: the page shows these strings with textContent only.
import { formatBytes, plural } from './format.mjs';

/** A count or byte total from the core or the ledger (number, BigInt or string) as a number ≥ 0. */
export function toCount(value) {
  const n = Number(value); // Number(1n) is 1: u64 values from wasm may arrive as BigInt
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** 3157073 → "3,157,073 bytes": exact, and the same in every locale (the ledger counts bytes). */
export function exactBytes(value) {
  const n = toCount(value);
  const digits = String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${digits} ${n === 1 ? 'byte' : 'bytes'}`;
}

/**
 * What the panel says about the key, from client.rewardInfo(): { enabled, key, text }.
 * Enabled: `key` is the public key's hex. Off: `text` gives the core's reason (e.g. "This
 * browser has no WebCrypto Ed25519 (NotSupportedError): reward receipts are off").
 */
export function keyState(info) {
  const key = typeof info?.publicKey === 'string' ? info.publicKey : '';
  if (info?.enabled && key) {
    return { enabled: true, key, text: '' };
  }
  const reason = String(info?.reason ?? '').trim();
  return {
    enabled: false,
    key: '',
    text: reason || 'Reward receipts are off in this browser.',
  };
}

/** A record the ledger has not yet seen at its current seq (the core sends only those). */
export function isPending(record) {
  return toCount(record?.submittedSeq) !== toCount(record?.seq);
}

/**
 * Groups the receipts held (client.receipts(): one record per downloader, torrent and session,
 * the latest kept) by torrent. `nameOf(infoHash)` names torrents whose records carry no name
 * (e.g. from the Library). Returns { receipts, bytes, pending, torrents }, torrents sorted by
 * bytes attested (most first), each { infoHash, name, label, bytes, length, receipts,
 * downloaders, sessions, pending, rejected: [codes] }.
 */
export function summarizeReceipts(records, nameOf = () => '') {
  const byTorrent = new Map();
  let bytes = 0;
  let pending = 0;
  const list = Array.isArray(records) ? records : [];
  for (const r of list) {
    const infoHash = String(r?.infoHash ?? '');
    let t = byTorrent.get(infoHash);
    if (!t) {
      t = { infoHash, name: '', bytes: 0, length: 0, receipts: 0, downloaders: new Set(), sessions: 0, pending: 0, rejected: [] };
      byTorrent.set(infoHash, t);
    }
    if (!t.name && typeof r.name === 'string' && r.name) t.name = r.name;
    t.bytes += toCount(r.bytes);
    t.length = Math.max(t.length, toCount(r.length));
    t.receipts += 1;
    t.sessions += 1; // one record per (downloader, torrent, session)
    t.downloaders.add(String(r.downloader ?? ''));
    if (isPending(r)) t.pending += 1;
    else if (r.ledger?.status === 'rejected') t.rejected.push(String(r.ledger.code ?? 'rejected'));
    bytes += toCount(r.bytes);
    if (isPending(r)) pending += 1;
  }
  const torrents = [...byTorrent.values()].map((t) => {
    const name = t.name || String(nameOf(t.infoHash) ?? '') || '';
    return { ...t, name, label: name || t.infoHash || '(unknown torrent)', downloaders: t.downloaders.size };
  });
  torrents.sort((a, b) => b.bytes - a.bytes || a.label.localeCompare(b.label));
  return { receipts: list.length, bytes, pending, torrents };
}

/** The panel's summary line: "2 receipts held · 6.3 MB attested · 1 not yet sent to the ledger". */
export function heldLine(summary) {
  const s = summary || { receipts: 0, bytes: 0, pending: 0 };
  if (!s.receipts) return 'No receipts held yet: peers sign them as they download from this browser.';
  const pending = s.pending ? ` · ${s.pending} not yet sent to the ledger` : ' · all sent to the ledger';
  return `${plural(s.receipts, 'receipt')} held · ${formatBytes(s.bytes)} attested${pending}`;
}

/** A torrent row's ledger column: "2 to send", "rejected (bad_signature)", or "sent". */
export function ledgerStateText(torrent) {
  if (torrent.pending > 0) return `${torrent.pending} to send`;
  if (torrent.rejected.length > 0) return `rejected (${[...new Set(torrent.rejected)].join(', ')})`;
  return 'sent';
}

/** "bad_signature ×2, too_old": the rejection codes of a submission, counted. */
export function errorCodes(errors) {
  const counts = new Map();
  for (const e of Array.isArray(errors) ? errors : []) {
    const code = String(e?.code ?? '') || 'unknown';
    counts.set(code, (counts.get(code) ?? 0) + 1);
  }
  return [...counts].map(([code, n]) => (n > 1 ? `${code} ×${n}` : code)).join(', ');
}

/**
 * The status line after "Submit to ledger", from client.submitReceipts():
 * "Ledger: 1 stored, 0 duplicate, 0 rejected." (with the rejection codes), or that there was
 * nothing new to send.
 */
export function submitText(result) {
  const stored = toCount(result?.stored);
  const duplicate = toCount(result?.duplicate);
  const rejected = toCount(result?.rejected);
  if (stored + duplicate + rejected === 0) {
    return 'Nothing new to send: the ledger has every receipt held.';
  }
  const codes = rejected ? ` (${errorCodes(result?.errors) || 'no code given'})` : '';
  return `Ledger: ${stored} stored, ${duplicate} duplicate, ${rejected} rejected${codes}.`;
}

/** One line per refused receipt: "bad_signature: the signature does not verify (receipt ab12…)". */
export function submitErrorLines(errors, max = 5) {
  const list = Array.isArray(errors) ? errors : [];
  const lines = list.slice(0, max).map((e) => {
    const code = String(e?.code ?? '') || 'unknown';
    const message = String(e?.message ?? '').trim();
    const id = String(e?.id ?? '');
    const which = id ? ` (receipt ${id.length > 16 ? `${id.slice(0, 16)}…` : id})` : '';
    return `${code}${message ? `: ${message}` : ''}${which}`;
  });
  if (list.length > max) lines.push(`… and ${list.length - max} more`);
  return lines;
}

/**
 * "Ledger total for this key: 3.2 MB (3,157,073 bytes) from 1 receipt for 1 torrent", from
 * client.ledgerTotals(). `receipts` there counts sessions the ledger credits.
 */
export function ledgerTotalText(totals) {
  const bytes = toCount(totals?.bytes);
  const receipts = toCount(totals?.receipts);
  const torrents = Array.isArray(totals?.torrents) ? totals.torrents.length : 0;
  if (receipts === 0) return 'Ledger total for this key: nothing credited yet.';
  return `Ledger total for this key: ${formatBytes(bytes)} (${exactBytes(bytes)}) from ` +
    `${plural(receipts, 'receipt')} for ${plural(torrents, 'torrent')}`;
}

/** The quiet note when the ledger does not answer (not deployed, offline, HTTP error). */
export function ledgerUnreachableText(message) {
  const why = String(message ?? '').trim();
  return `Ledger total for this key: the ledger could not be reached${why ? ` (${why})` : ''}.`;
}

const REAL_CLOCK = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
};

/**
 * Calls `fn` at most once per `ms`: the first request runs at once, later ones within the window
 * are merged into one call at its end, so a burst of 'receipt' events costs two refreshes and
 * the last event is never lost. `clock` ({ now, setTimeout }) is injectable for tests.
 */
export function throttle(fn, ms, clock = REAL_CLOCK) {
  let last = -Infinity;
  let due = false;
  const run = () => {
    due = false;
    last = clock.now();
    fn();
  };
  return () => {
    if (due) return; // a call is already on its way
    const wait = last + ms - clock.now();
    if (wait <= 0) {
      run();
    } else {
      due = true;
      clock.setTimeout(run, wait);
    }
  };
}
