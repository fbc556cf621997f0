// bittorrent-tracker 11's WebSocket tracker in a Node process of its own, for the tracker load
// benchmark (bench/tracker.sh, examples/tracker_load.rs): its RSS and CPU are then the tracker's
// alone. Started as `new Server({ udp: false, http: false, ws: true })` on 127.0.0.1:0, as
// tests/browser/harness.mjs `startReferenceTracker` does; prints
// `bittorrent-tracker listening on ws://127.0.0.1:PORT/announce` once listening.
//
// `GET /stats` on the same port gives counts in seedtab's /stats shape, counted from the server's
// own events: `announces` (every announce the server finished, `started` and updates), and
// `answers_forwarded` (answers it relayed; bittorrent-tracker runs an answer through the announce
// path as an `update` and emits it only once forwarded), `connections` (open WebSockets),
// `swarms`, `peers`, `warnings`, `rss`. Exits on SIGTERM/SIGINT, or when stdin's parent dies.
import Server from 'bittorrent-tracker/server'

const server = new Server({ udp: false, http: false, ws: true, stats: false })
const counts = { announces: 0, answers_forwarded: 0, warnings: 0, connections: 0 }
let warningsShown = 0

for (const ev of ['start', 'update', 'complete', 'stop', 'pause']) {
  server.on(ev, (_peerId, params) => {
    if (params && params.answer) counts.answers_forwarded++
    else counts.announces++
  })
}
server.on('warning', (err) => {
  counts.warnings++
  if (warningsShown++ < 20) console.error(`[bittorrent-tracker] warning: ${err && err.message}`)
})
server.on('error', (err) => console.error(`[bittorrent-tracker] error: ${err && err.message}`))
server.ws.on('connection', (socket) => {
  counts.connections++
  socket.once('close', () => { counts.connections-- })
})
server.http.prependListener('request', (req, res) => {
  if (req.url !== '/stats') return
  let peers = 0
  for (const swarm of Object.values(server.torrents)) peers += swarm.peers.size
  const body = JSON.stringify({
    swarms: Object.keys(server.torrents).length,
    peers,
    ...counts,
    rss: process.memoryUsage().rss,
  })
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(body)
})

server.once('listening', () => {
  const { port } = server.http.address()
  console.log(`bittorrent-tracker listening on ws://127.0.0.1:${port}/announce`)
})
server.listen(0, '127.0.0.1')

const stop = () => {
  server.http.closeAllConnections?.()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
