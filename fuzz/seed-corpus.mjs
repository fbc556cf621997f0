// Adds test-vector inputs to the working corpus of a fuzz target (fuzz/README.md),
// fuzz/corpus/TARGET/, beyond the committed seeds in fuzz/seeds/TARGET/ (which bench/fuzz.sh
// passes to every run directly; they are written by tests/fuzz_seeds.rs `regenerate_seeds` and
// capped in number and size, so not every vector is among them).
//
//   node fuzz/seed-corpus.mjs TARGET        (bench/fuzz.sh runs it before every run)
//
// Idempotent: a seed file is named after its vector and rewritten with the same bytes; whatever
// libFuzzer added to the directory stays. A target with no entry below starts from its committed
// seeds alone.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FUZZ = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(FUZZ, '..');

const vectors = (file) => JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')).vectors;

// target -> () => [[seed name, bytes], ...]. Add an entry with each new target.
const SEEDS = {
  receipt_decode: () => [
    ...vectors('tests/vectors/receipts/valid.json').map((v) => [`valid-${v.name}`, v.encoded]),
    ...vectors('tests/vectors/receipts/invalid.json').map((v) => [`invalid-${v.name}`, v.encoded]),
  ].map(([name, hex]) => [name, Buffer.from(hex, 'hex')]),
};

const target = process.argv[2];
if (!target) {
  process.stderr.write(`usage: node fuzz/seed-corpus.mjs TARGET   (targets with seeds: ${Object.keys(SEEDS).join(', ')})\n`);
  process.exit(2);
}
const dir = path.join(FUZZ, 'corpus', target);
fs.mkdirSync(dir, { recursive: true });
const seeds = SEEDS[target] ? SEEDS[target]() : [];
for (const [name, bytes] of seeds) fs.writeFileSync(path.join(dir, name), bytes);
const committed = path.join(FUZZ, 'seeds', target);
const nCommitted = fs.existsSync(committed) ? fs.readdirSync(committed).length : 0;
process.stdout.write(
  `${target}: ${nCommitted} committed seeds in fuzz/seeds/${target}/, ${seeds.length} vector inputs in ${path.relative(ROOT, dir)}/\n`,
);
