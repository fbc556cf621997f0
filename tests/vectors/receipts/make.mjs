// Reward-receipt test vectors, made WITHOUT seedtab's Rust code: Node's own Ed25519 (OpenSSL) and a
// bencoder written here, following docs/receipts.md and src/receipt/mod.rs's doc comments only.
// tests/receipt_vectors.rs checks the Rust code against them, tests/browser/receipt-vectors.test.mjs
// checks Chromium's WebCrypto against them.
//
//   node tests/vectors/receipts/make.mjs        (Node 20+, no packages: node:crypto and node:fs)
//
// Writes valid.json and invalid.json next to this file. Deterministic: keys come from fixed seeds,
// Ed25519 signatures are deterministic, and nothing reads the clock or a random source, so running
// it again gives byte-identical files (CI does not run it; its outputs are committed).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const DOMAIN = 'seedtab-receipt';
const VERSION = 1;
const SIGNING_PREFIX = Buffer.from('seedtab-receipt/1\n');
const MAX_INT = 2n ** 53n - 1n;
const MAX_ENCODED_LEN = 512;

// ---- Ed25519 through node:crypto -----------------------------------------------------------

// PKCS#8 DER of an Ed25519 private key is this fixed prefix followed by the 32-byte seed (RFC 8410);
// the SPKI DER of a public key is its fixed prefix followed by the 32-byte key. WebCrypto imports
// the same PKCS#8 bytes (tests/browser/receipt-vectors.test.mjs).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const privateKey = (seed) => crypto.createPrivateKey({
  key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8',
});
const publicKeyOf = (seed) => {
  const der = crypto.createPublicKey(privateKey(seed)).export({ format: 'der', type: 'spki' });
  if (!der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX)) throw new Error('unexpected SPKI');
  return der.subarray(SPKI_PREFIX.length);
};
const sign = (seed, msg) => crypto.sign(null, msg, privateKey(seed));
const nodeVerifies = (pub, msg, sig) => crypto.verify(null, msg, crypto.createPublicKey({
  key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki',
}), sig);

function check(cond, what) {
  if (!cond) throw new Error(`self-check failed: ${what}`);
}

// Before trusting Node's Ed25519 for anything, it must reproduce RFC 8032 section 7.1, TEST 1 and 2.
{
  const t1 = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
  check(publicKeyOf(t1).toString('hex')
    === 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'RFC 8032 TEST 1 key');
  check(sign(t1, Buffer.alloc(0)).toString('hex')
    === 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b'
    + 'd25bf5f0595bbe24655141438e7a100b', 'RFC 8032 TEST 1 signature');
  const t2 = Buffer.from('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', 'hex');
  check(sign(t2, Buffer.from('72', 'hex')).toString('hex')
    === '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c'
    + '387b2eaeb4302aeeb00d291612bb0c00', 'RFC 8032 TEST 2 signature');
}

// ---- a tiny bencoder -----------------------------------------------------------------------
// Integers are BigInt (or Number), strings are Buffers (or JS strings, as UTF-8), lists are
// Arrays, dicts are Maps encoded in THEIR OWN insertion order, so an invalid vector can put keys
// out of order; `canonical()` sorts them by raw bytes as bencode requires. `Raw` is spliced in
// verbatim, for encodings no well-behaved encoder produces (leading zeros and the like).

class Raw {
  constructor(bytes) { this.bytes = Buffer.from(bytes); }
}

function bencode(v) {
  const out = [];
  const put = (x) => {
    if (x instanceof Raw) out.push(x.bytes);
    else if (typeof x === 'bigint' || typeof x === 'number') {
      if (typeof x === 'number' && !Number.isSafeInteger(x)) throw new Error(`unsafe number ${x}`);
      out.push(Buffer.from(`i${BigInt(x)}e`));
    } else if (typeof x === 'string' || Buffer.isBuffer(x)) {
      const b = Buffer.from(x);
      out.push(Buffer.from(`${b.length}:`), b);
    } else if (Array.isArray(x)) {
      out.push(Buffer.from('l'));
      x.forEach(put);
      out.push(Buffer.from('e'));
    } else if (x instanceof Map) {
      out.push(Buffer.from('d'));
      for (const [k, val] of x) { put(k); put(val); }
      out.push(Buffer.from('e'));
    } else throw new Error(`cannot bencode ${x}`);
  };
  put(v);
  return Buffer.concat(out);
}

const canonical = (map) => new Map([...map].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

// ---- keys and fixed inputs -----------------------------------------------------------------

// Seeds: the first three are RFC 8032's TEST 1-3 secret keys (their public keys are published
// there too), the fourth is 32 bytes of 0x42. Uploaders' seeds are listed only so every key here
// has a known owner; receipts are signed by downloaders.
const KEYS = Object.fromEntries([
  ['alice', '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'],
  ['bob', '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'],
  ['carol', 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7'],
  ['dave', '42'.repeat(32)],
].map(([name, hex]) => {
  const seed = Buffer.from(hex, 'hex');
  return [name, { seed, pub: publicKeyOf(seed) }];
}));

// Info-hashes and session ids are fixed byte patterns; some deliberately contain bytes that mean
// something in bencode ('e', ':', digits, 'd', 'i') or are 0x00/0xff, to catch a parser that
// scans for delimiters inside strings.
const IH_A = Buffer.from('c12fe1c06bba254a9dc9f519b335aa7c1367a88a', 'hex');
const IH_B = Buffer.from('65653a3a30313939646c69650000ffff7f80e9e9', 'hex'); // "ee::0199dlie" ...
const SID_1 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const SID_2 = Buffer.from('3a65643369313a6500ff80fe7f01652d', 'hex'); // ":ed3i1:e" ...
const SID_3 = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex');

/** The unsigned fields of a receipt, canonically ordered, as the signer would sign them. */
function unsignedFields(r) {
  return canonical(new Map([
    ['bytes', r.bytes], ['dl', r.dl], ['dom', DOMAIN], ['ih', r.ih], ['len', r.len],
    ['seq', r.seq], ['sid', r.sid], ['ts', r.ts], ['ul', r.ul], ['v', VERSION],
  ]));
}
const signingMessage = (fields) => Buffer.concat([SIGNING_PREFIX, bencode(fields)]);
const withSig = (fields, sig) => canonical(new Map([...fields, ['sig', sig]]));

// ---- valid vectors -------------------------------------------------------------------------

const VALID = [
  {
    name: 'first-receipt', why: 'seq 1: the first receipt of a session, one 16 KiB block',
    dl: 'alice', ul: 'bob', ih: IH_A, len: 1048576n, sid: SID_1, seq: 1n, bytes: 16384n, ts: 1790000000000n,
  },
  {
    name: 'later-receipt', why: 'the same session further on: seq 7, more bytes, later timestamp',
    dl: 'alice', ul: 'bob', ih: IH_A, len: 1048576n, sid: SID_1, seq: 7n, bytes: 655360n, ts: 1790000004321n,
  },
  {
    name: 'bytes-zero', why: 'bytes 0 is allowed (nothing verified yet); other signer and uploader',
    dl: 'bob', ul: 'carol', ih: IH_B, len: 5000n, sid: SID_2, seq: 1n, bytes: 0n, ts: 1790000000001n,
  },
  {
    name: 'bytes-equal-length', why: 'bytes == len: the whole torrent came from this uploader',
    dl: 'carol', ul: 'alice', ih: IH_B, len: 123456789n, sid: SID_3, seq: 42n, bytes: 123456789n,
    ts: 1800000000000n,
  },
  {
    name: 'one-byte-torrent', why: 'smallest non-empty torrent, complete',
    dl: 'dave', ul: 'alice', ih: IH_A, len: 1n, sid: SID_2, seq: 1n, bytes: 1n, ts: 1790000000000n,
  },
  {
    name: 'max-values', why: 'every integer at its largest, 2^53 - 1 (what a JavaScript number holds exactly)',
    dl: 'dave', ul: 'carol', ih: IH_A, len: MAX_INT, sid: SID_3, seq: MAX_INT, bytes: MAX_INT, ts: MAX_INT,
  },
  {
    name: 'small-values', why: 'single-digit integers everywhere (shortest encodings)',
    dl: 'bob', ul: 'dave', ih: IH_A, len: 9n, sid: SID_1, seq: 2n, bytes: 8n, ts: 1n,
  },
];

const hex = (b) => Buffer.from(b).toString('hex');

const validOut = [];
const bases = {};
for (const v of VALID) {
  const r = { ...v, dl: KEYS[v.dl].pub, ul: KEYS[v.ul].pub };
  const fields = unsignedFields(r);
  const message = signingMessage(fields);
  const sig = sign(KEYS[v.dl].seed, message);
  check(nodeVerifies(r.dl, message, sig), `${v.name} verifies`);
  const encoded = bencode(withSig(fields, sig));
  check(encoded.length <= MAX_ENCODED_LEN, `${v.name} fits in ${MAX_ENCODED_LEN} bytes`);
  bases[v.name] = { r, fields, message, sig, seed: KEYS[v.dl].seed };
  // JSON numbers: every integer here is at most 2^53 - 1, so a JSON reader's doubles hold it exactly.
  validOut.push({
    name: v.name,
    why: v.why,
    downloader_seed: hex(KEYS[v.dl].seed),
    uploader_seed: hex(KEYS[v.ul].seed),
    fields: {
      bytes: Number(r.bytes), dl: hex(r.dl), dom: DOMAIN, ih: hex(r.ih), len: Number(r.len),
      seq: Number(r.seq), sid: hex(r.sid), ts: Number(r.ts), ul: hex(r.ul), v: VERSION,
    },
    message: hex(message),
    signature: hex(sig),
    encoded: hex(encoded),
  });
}

// ---- invalid vectors -----------------------------------------------------------------------
// Each has ONE defect where that is possible, and is signed correctly over whatever unsigned
// fields it carries, so the expected error is the one its defect calls for and not an accident
// of a broken signature.

const invalidOut = [];
function invalid(name, expect, why, encoded) {
  check(!invalidOut.some((x) => x.name === name), `unique name ${name}`);
  invalidOut.push({ name, expect, why, encoded: hex(encoded) });
}

/**
 * A receipt derived from valid vector `base`: `edit(fields)` changes the unsigned-field Map
 * (kept in insertion order: call canonical() to re-sort), the result is signed by `signer`
 * (the base's downloader by default) over SIGNING_PREFIX + the bencoding of those fields, and
 * `finish(fullMap, sig)` may change the signed dict or signature before encoding.
 */
function derive(base, { edit = (f) => f, signer, message, finish } = {}) {
  const b = bases[base];
  const fields = edit(new Map(b.fields));
  const msg = message ? message(fields) : signingMessage(fields);
  const sig = sign(signer || b.seed, msg);
  const full = finish ? finish(new Map(fields), sig) : withSig(fields, sig);
  return bencode(full);
}
const set = (key, value) => (f) => canonical(new Map(f).set(key, value));
const del = (key) => (f) => { const m = new Map(f); m.delete(key); return m; };
const good = bencode(withSig(bases['first-receipt'].fields, bases['first-receipt'].sig));

// malformed: structure
invalid('extra-field', 'malformed', 'a 12th key "x" (signed along with the rest)', derive('first-receipt', { edit: set('x', 0n) }));
invalid('missing-field-ts', 'malformed', 'no ts', derive('first-receipt', { edit: del('ts') }));
invalid('missing-field-sig', 'malformed', 'no sig', bencode(bases['first-receipt'].fields));
invalid('missing-field-dom', 'malformed', 'no dom', derive('first-receipt', { edit: del('dom') }));
invalid('missing-field-v', 'malformed', 'no v', derive('first-receipt', { edit: del('v') }));
invalid('unsorted-keys', 'malformed', '"dl" before "bytes"; the signature is over the canonical message',
  derive('first-receipt', {
    finish: (f, sig) => {
      const m = withSig(f, sig);
      const dl = m.get('dl');
      m.delete('dl');
      return new Map([['dl', dl], ...m]);
    },
  }));
invalid('leading-zero-integer', 'malformed', 'seq written i01e (seq 1 signed)',
  derive('first-receipt', { finish: (f, sig) => withSig(f.set('seq', new Raw('i01e')), sig) }));
invalid('leading-zero-length', 'malformed', 'dl\'s length written 032:',
  derive('first-receipt', {
    finish: (f, sig) => withSig(f.set('dl', new Raw(Buffer.concat([Buffer.from('032:'), f.get('dl')]))), sig),
  }));
invalid('negative-zero', 'malformed', 'bytes written i-0e',
  derive('bytes-zero', { finish: (f, sig) => withSig(f.set('bytes', new Raw('i-0e')), sig) }));
invalid('duplicate-key', 'malformed', 'sig twice',
  Buffer.concat([good.subarray(0, good.length - 1), bencode('sig'), bencode(bases['first-receipt'].sig), Buffer.from('e')]));
invalid('trailing-bytes', 'malformed', 'one byte after the dict', Buffer.concat([good, Buffer.from('x')]));
invalid('two-receipts', 'malformed', 'a receipt followed by another', Buffer.concat([good, good]));
invalid('truncated', 'malformed', 'the final "e" missing', good.subarray(0, good.length - 1));
invalid('empty', 'malformed', 'no bytes at all', Buffer.alloc(0));
invalid('not-a-dict', 'malformed', 'a list holding the receipt', bencode([new Raw(good)]));
{
  // A valid receipt is about 330 bytes, so nothing longer than 512 can be one without a second
  // defect: this one pads with an extra field.
  const long = derive('first-receipt', {
    edit: set('zz', ['a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60), 'd'.repeat(60)]),
  });
  check(long.length > MAX_ENCODED_LEN, 'over-512 is over 512');
  invalid('over-512-bytes', 'malformed', `${long.length} bytes (an extra field pads it)`, long);
}
{
  const padded = Buffer.concat([good, Buffer.alloc(MAX_ENCODED_LEN + 1 - good.length, 0x20)]);
  invalid('exactly-513-bytes', 'malformed', 'a valid receipt then spaces to 513 bytes', padded);
}

// malformed: field types and sizes
const pub = (n) => KEYS[n].pub;
invalid('dl-31-bytes', 'malformed', 'downloader key one byte short', derive('first-receipt', { edit: set('dl', pub('alice').subarray(0, 31)) }));
invalid('ul-33-bytes', 'malformed', 'uploader key one byte long', derive('first-receipt', { edit: set('ul', Buffer.concat([pub('bob'), Buffer.from([0])])) }));
invalid('ih-32-bytes', 'malformed', 'a 32-byte (v2-style) info-hash', derive('first-receipt', { edit: set('ih', crypto.createHash('sha256').update('ih').digest()) }));
invalid('sid-15-bytes', 'malformed', 'session id one byte short', derive('first-receipt', { edit: set('sid', SID_1.subarray(1)) }));
invalid('sig-63-bytes', 'malformed', 'signature one byte short',
  derive('first-receipt', { finish: (f, sig) => withSig(f, sig.subarray(0, 63)) }));
invalid('sig-65-bytes', 'malformed', 'signature one byte long',
  derive('first-receipt', { finish: (f, sig) => withSig(f, Buffer.concat([sig, Buffer.from([0])])) }));
invalid('dl-is-integer', 'malformed', 'dl an integer', derive('first-receipt', { edit: set('dl', 5n) }));
invalid('len-is-string', 'malformed', 'len the string "1048576"', derive('first-receipt', { edit: set('len', '1048576') }));
invalid('v-is-string', 'malformed', 'v the string "1"', derive('first-receipt', { edit: set('v', '1') }));
invalid('dom-is-integer', 'malformed', 'dom an integer', derive('first-receipt', { edit: set('dom', 1n) }));
invalid('negative-bytes', 'malformed', 'bytes -1', derive('first-receipt', { edit: set('bytes', -1n) }));
invalid('negative-ts', 'malformed', 'ts -1', derive('first-receipt', { edit: set('ts', -1n) }));
invalid('seq-zero', 'malformed', 'seq starts at 1', derive('first-receipt', { edit: set('seq', 0n) }));
invalid('ts-above-max', 'malformed', 'ts 2^53', derive('first-receipt', { edit: set('ts', MAX_INT + 1n) }));
invalid('seq-above-max', 'malformed', 'seq 2^53', derive('first-receipt', { edit: set('seq', MAX_INT + 1n) }));
invalid('len-and-bytes-above-max', 'malformed', 'len and bytes 2^53 (so bytes <= len still holds)',
  derive('max-values', { edit: (f) => set('bytes', MAX_INT + 1n)(set('len', MAX_INT + 1n)(f)) }));
invalid('ts-above-i64', 'malformed', 'ts 2^63, beyond a signed 64-bit integer',
  derive('first-receipt', { edit: set('ts', 2n ** 63n) }));

// wrong_domain and unsupported_version (signed over exactly what they say)
invalid('wrong-domain', 'wrong_domain', 'dom "seedtab-ledger"', derive('first-receipt', { edit: set('dom', 'seedtab-ledger') }));
invalid('wrong-domain-case', 'wrong_domain', 'dom "Seedtab-receipt"', derive('first-receipt', { edit: set('dom', 'Seedtab-receipt') }));
invalid('wrong-domain-empty', 'wrong_domain', 'dom ""', derive('first-receipt', { edit: set('dom', '') }));
invalid('version-2', 'unsupported_version', 'v 2', derive('first-receipt', { edit: set('v', 2n) }));
invalid('version-0', 'unsupported_version', 'v 0', derive('first-receipt', { edit: set('v', 0n) }));

// bad_signature
const flip = (byte, bit) => (f, sig) => {
  const s = Buffer.from(sig);
  s[byte] ^= 1 << bit;
  return withSig(f, s);
};
invalid('sig-bit-flip-r', 'bad_signature', 'bit 0 of signature byte 0 (in R) flipped', derive('first-receipt', { finish: flip(0, 0) }));
invalid('sig-bit-flip-s', 'bad_signature', 'bit 3 of signature byte 40 (in S) flipped', derive('later-receipt', { finish: flip(40, 3) }));
invalid('sig-zero', 'bad_signature', 'all-zero signature', derive('first-receipt', { finish: (f) => withSig(f, Buffer.alloc(64)) }));
invalid('signed-by-other-key', 'bad_signature', 'names alice as downloader, signed by bob',
  derive('first-receipt', { signer: KEYS.bob.seed }));
invalid('signed-without-prefix', 'bad_signature', 'signature over the bencoded fields alone, no "seedtab-receipt/1\\n"',
  derive('first-receipt', { message: (f) => bencode(f) }));
invalid('signed-with-other-prefix', 'bad_signature', 'signature over "seedtab-receipt/1" without the newline',
  derive('first-receipt', { message: (f) => Buffer.concat([Buffer.from('seedtab-receipt/1'), bencode(f)]) }));
invalid('bytes-changed-after-signing', 'bad_signature', 'bytes 16385 under a signature for 16384',
  derive('first-receipt', { finish: (f, sig) => withSig(f.set('bytes', 16385n), sig) }));
invalid('uploader-changed-after-signing', 'bad_signature', 'ul replaced by carol under a signature naming bob',
  derive('first-receipt', { finish: (f, sig) => withSig(f.set('ul', pub('carol')), sig) }));
{
  // s + L: the same signature with a non-reduced scalar. Lax verifiers that reduce s accept it;
  // it would give one receipt two encodings.
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  const leToBig = (b) => BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
  const bigToLe = (n) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();
  invalid('sig-s-not-reduced', 'bad_signature', 'S replaced by S + L (non-canonical scalar)',
    derive('first-receipt', {
      finish: (f, sig) => {
        const s = leToBig(sig.subarray(32)) + L;
        check(s < 2n ** 256n, 'S + L fits');
        return withSig(f, Buffer.concat([sig.subarray(0, 32), bigToLe(s)]));
      },
    }));
}
{
  // The identity point (order 1) as the downloader key, with R = identity and S = 0: the
  // cofactorless equation [S]B = R + [k]A holds for EVERY message, so a verifier that accepts
  // small-order keys accepts this forgery. verify_strict must refuse it.
  const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);
  invalid('small-order-key', 'bad_signature', 'dl is the identity point; signature R = identity, S = 0, valid for any message under a lax verifier',
    bencode(withSig(set('dl', identity)(bases['first-receipt'].fields), Buffer.concat([identity, Buffer.alloc(32)]))));
  // The point of order 2 (y = -1): [k]A is the identity when the challenge k is even and A when
  // it is odd, so R = identity, S = 0 passes a lax verifier for half of all messages. Pick the
  // first ts that makes k even, so this too is a forgery a lax verifier (OpenSSL's) accepts.
  const p = 2n ** 255n - 19n;
  const order2 = Buffer.from((p - 1n).toString(16).padStart(64, '0'), 'hex').reverse();
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  const leToBig = (b) => BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
  const R = identity;
  let found;
  for (let ts = 1790000000000n; !found; ts += 1n) {
    const f = set('ts', ts)(set('dl', order2)(bases['first-receipt'].fields));
    const h = crypto.createHash('sha512').update(Buffer.concat([R, order2, signingMessage(f)])).digest();
    if ((leToBig(h) % L) % 2n === 0n) found = f;
  }
  invalid('small-order-key-order-2', 'bad_signature', 'dl is the point of order 2 (y = -1); R = identity, S = 0 and an even challenge, so a lax verifier accepts',
    bencode(withSig(found, Buffer.concat([R, Buffer.alloc(32)]))));
}
{
  // A 32-byte string that is no curve point: the smallest y whose x^2 = (y^2 - 1) / (d y^2 + 1)
  // has no square root mod p (Euler's criterion).
  const p = 2n ** 255n - 19n;
  const pow = (b, e) => {
    let r = 1n; b %= p;
    for (; e > 0n; e >>= 1n, b = (b * b) % p) if (e & 1n) r = (r * b) % p;
    return r;
  };
  const d = (((-121665n * pow(121666n, p - 2n)) % p) + p) % p;
  let y = 2n;
  for (; ; y += 1n) {
    const x2 = ((y * y - 1n) % p) * pow((d * y * y + 1n) % p, p - 2n) % p;
    if (x2 !== 0n && pow(x2, (p - 1n) / 2n) === p - 1n) break;
  }
  const notPoint = Buffer.from(y.toString(16).padStart(64, '0'), 'hex').reverse();
  invalid('key-not-a-point', 'bad_signature', `dl is y = ${y}, not on the curve`,
    derive('first-receipt', { edit: set('dl', notPoint) }));
}

// exceeds_length and self_receipt (signed by the downloader they name)
invalid('bytes-above-length', 'exceeds_length', 'bytes = len + 1', derive('first-receipt', { edit: set('bytes', 1048577n) }));
invalid('bytes-above-length-max', 'exceeds_length', 'bytes 2^53 - 1, len 2^53 - 2', derive('max-values', { edit: set('len', MAX_INT - 1n) }));
invalid('self-receipt', 'self_receipt', 'ul == dl', derive('first-receipt', { edit: set('ul', pub('alice')) }));

// The bad-signature vectors whose defect any Ed25519 verifier must catch: Node must refuse them too
// (the small-order and non-reduced ones depend on how strict a verifier is, so are not asserted).
for (const name of ['sig-bit-flip-r', 'sig-bit-flip-s', 'sig-zero', 'signed-by-other-key', 'signed-without-prefix',
  'signed-with-other-prefix', 'bytes-changed-after-signing', 'uploader-changed-after-signing']) {
  const v = invalidOut.find((x) => x.name === name);
  const enc = Buffer.from(v.encoded, 'hex');
  // Pull dl, sig and the unsigned part back out with plain string searches: this vector has the
  // canonical layout, so "3:sig64:" is followed by the signature and the closing "e".
  const at = enc.indexOf('3:sig64:');
  const sig = enc.subarray(at + 8, at + 72);
  const unsigned = Buffer.concat([enc.subarray(0, at), enc.subarray(at + 72)]);
  const dlAt = enc.indexOf('2:dl32:') + 7;
  check(!nodeVerifies(enc.subarray(dlAt, dlAt + 32), Buffer.concat([SIGNING_PREFIX, unsigned]), sig),
    `node refuses ${name}`);
}

// ---- output --------------------------------------------------------------------------------

const header = {
  generator: 'tests/vectors/receipts/make.mjs (node:crypto Ed25519, own bencoder)',
  domain: DOMAIN,
  version: VERSION,
  signing_prefix: hex(SIGNING_PREFIX),
  max_int: Number(MAX_INT),
  max_encoded_len: MAX_ENCODED_LEN,
  pkcs8_prefix: hex(PKCS8_PREFIX),
};
const keys = Object.fromEntries(Object.entries(KEYS).map(([n, k]) => [n, { seed: hex(k.seed), public: hex(k.pub) }]));
const write = (file, obj) => fs.writeFileSync(path.join(HERE, file), `${JSON.stringify(obj, null, 2)}\n`);
write('valid.json', {
  ...header,
  note: 'Each receipt must decode, verify, and re-encode to exactly "encoded"; signing "message" with the downloader seed gives "signature".',
  keys,
  vectors: validOut,
});
write('invalid.json', {
  ...header,
  note: 'Each "encoded" must be refused with the error code "expect" (docs/receipts.md, "Error codes").',
  keys,
  vectors: invalidOut,
});
process.stdout.write(`wrote ${validOut.length} valid and ${invalidOut.length} invalid receipt vectors to ${path.relative(process.cwd(), HERE) || '.'}\n`);
