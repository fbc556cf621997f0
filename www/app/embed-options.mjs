// What the embeddable player (www/embed.js) is asked to play, read from its URL hash, and which
// file of the torrent that is. Pure functions (tests/browser/player-unit.test.mjs).

import { mediaKind } from './stream.mjs';

/**
 * `#magnet=<percent-encoded magnet>` or `#torrent=<url>`, with `&file=<name or path>`,
 * `&autoplay`, `&muted` (present, or anything but 0/false), `&storage=auto` (keep pieces in
 * browser storage; default `memory`: nothing is left on the visitor's disk, as with WebTorrent,
 * and playback starts sooner). A magnet pasted without escaping
 * (`#magnet=magnet:?xt=...&dn=...&tr=...`) is taken whole up to the next option of ours.
 */
export function parseEmbedHash(hash) {
  const text = String(hash || '').replace(/^#/, '');
  const params = new URLSearchParams(text);
  let magnet = params.get('magnet');
  const raw = /(?:^|&)magnet=(magnet:\?.*?)(?=&(?:file|autoplay|muted|torrent)(?:=|&|$)|$)/.exec(text);
  // Only an unescaped magnet matches (an escaped one starts `magnet%3A`): its `&`s split it.
  // Its values stay escaped as they are: the magnet parser decodes them.
  if (raw) magnet = raw[1];
  const flag = (name) => params.has(name) && params.get(name) !== '0' && params.get(name) !== 'false';
  return {
    magnet: magnet || null,
    torrent: params.get('torrent') || null,
    file: params.get('file') || null,
    autoplay: flag('autoplay'),
    muted: flag('muted'),
    storage: params.get('storage') === 'auto' ? 'auto' : 'memory',
  };
}

/** The file asked for (by path, then by name), else the first one a browser may play; or null. */
export function pickFile(files, wanted) {
  if (wanted) return files.find((f) => f.path === wanted) || files.find((f) => f.name === wanted) || null;
  return files.find((f) => mediaKind(f.name)) || null;
}
