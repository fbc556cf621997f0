// Start-up configuration for the seedtab page: fetches /config.json from `seedtab serve` and picks
// the ICE servers and trackers new torrents use. Pure apart from the injected fetch.

/** ws(s)://<this host>/announce, the tracker served next to the page; null when there is no host. */
export function defaultTrackerUrl(loc) {
  if (!loc || !loc.host) return null;
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${loc.host}/announce`;
}

/** config.trackers when it lists any, else the tracker served next to the page. */
export function pickTrackers(config, loc) {
  const listed = Array.isArray(config?.trackers)
    ? config.trackers.filter((t) => typeof t === 'string' && t.trim() !== '').map((t) => t.trim())
    : [];
  if (listed.length > 0) return listed;
  const fallback = defaultTrackerUrl(loc);
  return fallback ? [fallback] : [];
}

/** config.iceServers, keeping only entries that look like RTCIceServer objects. */
export function pickIceServers(config) {
  if (!Array.isArray(config?.iceServers)) return [];
  return config.iceServers.filter((s) => s && typeof s === 'object' && s.urls);
}

/** Fetches the config; any failure (network, HTTP status, bad JSON) gives {}. */
export async function loadConfig(fetchFn = globalThis.fetch, url = '/config.json') {
  try {
    const response = await fetchFn(url, { cache: 'no-store' });
    if (!response.ok) return {};
    const body = await response.json();
    return body && typeof body === 'object' && !Array.isArray(body) ? body : {};
  } catch {
    return {};
  }
}
