// Generates the reference torrents in tests/vectors/torrents/ with WebTorrent's own creator, so that
// tests/vectors.rs can check that seedtab parses them and re-creates byte-identical info dicts.
//
// Not run by CI: its outputs are committed. To regenerate, in a scratch directory outside the repo:
//   npm init -y && npm i create-torrent@6.1.3 parse-torrent@11 piece-length@2
//   cp /path/to/seedtab/tests/vectors/make-vectors.mjs . && node make-vectors.mjs /path/to/seedtab/tests/vectors/torrents
//
// Inputs are File objects (as a browser drop gives them), not Buffers: with Buffers, create-torrent
// 6.1.3 (through block-iterator) counts an empty file as one byte and hashes a stray zero byte.
// Content is reproducible anywhere: byte i of the torrent's concatenated stream is (i*31+7) % 251.
import createTorrent from 'create-torrent'
import parseTorrent from 'parse-torrent'
import calcPieceLength from 'piece-length'
import fs from 'fs'
import path from 'path'

const out = process.argv[2]
if (!out) throw new Error('usage: node make-vectors.mjs <output dir>')

function streamBytes (start, n) {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = ((start + i) * 31 + 7) % 251
  return b
}

// Each file: [path as dropped (folders separated by '/'), length].
const vectors = [
  { id: 'single', files: [['single.bin', 102400]], opts: { pieceLength: 16384 } },
  {
    id: 'multi',
    files: [['multi/héllo wörld.txt', 40000], ['multi/empty.txt', 0], ['multi/sub/日本.bin', 70000]],
    opts: { pieceLength: 32768 }
  },
  { id: 'small-default', files: [['small.txt', 5000]], opts: {} },
  { id: 'medium-default', files: [['medium.bin', 25000000]], opts: {} },
  {
    id: 'trackers-private',
    files: [['one.txt', 20000], ['two.txt', 30000]],
    opts: {
      name: 'private set',
      pieceLength: 16384,
      announceList: [['wss://tracker.example/a', 'wss://tracker.example/b'], ['udp://tracker.example:6969']],
      urlList: ['https://seed.example/files/'],
      private: true,
      comment: 'vector d',
      createdBy: 'make-vectors',
      creationDate: new Date(1700000000 * 1000)
    }
  },
  { id: 'no-common-prefix', files: [['x/1.bin', 3000], ['y/2.bin', 4000]], opts: {} }
]

function make (files, opts) {
  let offset = 0
  const input = files.map(([p, len]) => {
    const f = new File([streamBytes(offset, len)], p.split('/').pop())
    offset += len
    if (p.includes('/')) f.fullPath = '/' + p
    return f
  })
  // An empty announce list keeps create-torrent's default public trackers out of the vectors.
  const o = { announceList: [], creationDate: new Date(1600000000 * 1000), ...opts }
  return new Promise((resolve, reject) => createTorrent(input, o, (err, t) => err ? reject(err) : resolve(t)))
}

const expected = {
  generator: 'create-torrent 6.1.3 (see make-vectors.mjs)',
  content: 'byte i of the concatenated stream of all files = (i*31+7) % 251',
  vectors: [],
  // [total length, piece length create-torrent picks when none is given]
  default_piece_lengths: []
}

fs.mkdirSync(out, { recursive: true })
for (const v of vectors) {
  const t = await make(v.files, v.opts)
  const file = `${v.id}.torrent`
  fs.writeFileSync(path.join(out, file), t)
  const p = await parseTorrent(t)
  expected.vectors.push({
    file,
    input_files: v.files.map(([p, len]) => ({ path: p.split('/'), length: len })),
    options: {
      name: v.opts.name ?? null,
      piece_length: v.opts.pieceLength ?? null,
      announce_list: v.opts.announceList ?? [],
      url_list: v.opts.urlList ?? [],
      private: v.opts.private ?? false,
      comment: v.opts.comment ?? null,
      created_by: v.opts.createdBy ?? null,
      creation_date: Math.ceil(Number(v.opts.creationDate ?? new Date(1600000000 * 1000)) / 1000)
    },
    info_hash: p.infoHash,
    name: p.name,
    piece_length: p.pieceLength,
    last_piece_length: p.lastPieceLength,
    num_pieces: p.pieces.length,
    total_length: p.length,
    private: p.private ?? false,
    multi_file: Boolean(p.info.files),
    // Paths inside the torrent, without the torrent's name for multi-file torrents.
    files: p.files.map(f => ({
      path: p.info.files ? f.path.split(path.sep).slice(1) : [f.path],
      length: f.length,
      offset: f.offset
    })),
    trackers: p.announce,
    url_list: p.urlList,
    first_piece_hash: p.pieces[0],
    last_piece_hash: p.pieces[p.pieces.length - 1]
  })
}

const totals = new Set([1, 1023, 1024, 1025, 16383, 16384, 16385, 100000, 1 << 20, 5000000, 12000000])
for (let k = 0; k <= 31; k++) {
  const edge = Math.floor(Math.pow(2, k - 0.5) * 1024)
  for (const d of [-1, 0, 1, 2]) if (edge + d > 0) totals.add(edge + d)
  totals.add(Math.pow(2, k) * 1024)
}
for (const t of [...totals].sort((a, b) => a - b)) {
  if (t > 2 ** 40) continue
  expected.default_piece_lengths.push([t, Math.min(calcPieceLength(t), 4 * 1024 * 1024)])
}

fs.writeFileSync(path.join(out, 'expected.json'), JSON.stringify(expected, null, 2) + '\n')
console.log(`wrote ${vectors.length} torrents and expected.json to ${out}`)
