// Environment sanity: WebRTC data channels connect in headless Chromium inside the
// test namespace, with no STUN/TURN and nothing leaving the machine.
// If this fails, every other browser test will too: look at netns.sh and the Chromium flags.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, log, openPage, startStaticServer } from './harness.mjs';

// Page-side helpers, shared by both tests (installed as window.rtc).
const PAGE = `<!doctype html><meta charset="utf-8"><title>webrtc smoke</title>
<script>
window.rtc = {
  // Offer/answer with complete ICE gathering (as WebTorrent does: no trickle).
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
  candidates(sdp) {
    return sdp.split(/\\r?\\n/).filter((l) => l.startsWith('a=candidate:')).map((l) => l.slice(2));
  },
  open(dc) {
    return dc.readyState === 'open' ? Promise.resolve() : new Promise((res, rej) => {
      dc.onopen = () => res();
      dc.onerror = (e) => rej(new Error('data channel error ' + (e.error && e.error.message)));
    });
  },
  // Send total bytes in msgSize messages, respecting bufferedAmount. Returns a checksum.
  async send(dc, total, msgSize) {
    dc.bufferedAmountLowThreshold = 1 << 20;
    let sum = 0, sent = 0;
    while (sent < total) {
      const n = Math.min(msgSize, total - sent);
      const buf = new Uint8Array(n);
      crypto.getRandomValues(buf);
      for (let i = 0; i < n; i += 1) sum = (sum + buf[i]) >>> 0;
      if (dc.bufferedAmount > 4 << 20) {
        await new Promise((res) => { dc.onbufferedamountlow = () => res(); });
      }
      dc.send(buf);
      sent += n;
    }
    return sum;
  },
  receive(dc, total) {
    dc.binaryType = 'arraybuffer';
    return new Promise((res) => {
      let got = 0, sum = 0;
      dc.onmessage = (e) => {
        const b = new Uint8Array(e.data);
        for (let i = 0; i < b.length; i += 1) sum = (sum + b[i]) >>> 0;
        got += b.length;
        if (got >= total) res({ got, sum });
      };
    });
  },
};
</script>`;

let server;
let browser;

before(async () => {
  server = await startStaticServer({ '/smoke.html': { body: PAGE } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('two RTCPeerConnections in one page connect and move bytes', { timeout: 60_000 }, async () => {
  const page = await openPage(browser, `${server.url}smoke.html`, { name: 'smoke' });
  const TOTAL = (Number(process.env.SMOKE_MB) || 4) << 20;
  const result = await page.evaluate(async (total) => {
    const t0 = performance.now();
    const a = new RTCPeerConnection({ iceServers: [] });
    const b = new RTCPeerConnection({ iceServers: [] });
    const dcA = a.createDataChannel('smoke', { ordered: true });
    await a.setLocalDescription(await a.createOffer());
    const offer = await rtc.gathered(a);
    await b.setRemoteDescription(offer);
    await b.setLocalDescription(await b.createAnswer());
    const answer = await rtc.gathered(b);
    await a.setRemoteDescription(answer);
    const dcB = await new Promise((res) => { b.ondatachannel = (e) => res(e.channel); });
    await Promise.all([rtc.open(dcA), rtc.open(dcB)]);
    const tOpen = performance.now();
    const recv = rtc.receive(dcB, total);
    const sentSum = await rtc.send(dcA, total, 64 * 1024);
    const { got, sum } = await recv;
    const tDone = performance.now();
    const maxMessageSize = a.sctp && a.sctp.maxMessageSize;
    a.close(); b.close();
    return {
      offerCandidates: rtc.candidates(offer.sdp),
      answerCandidates: rtc.candidates(answer.sdp),
      got, sum, sentSum, maxMessageSize,
      connectMs: tOpen - t0,
      mbps: (total / 1e6) / ((tDone - tOpen) / 1000),
    };
  }, TOTAL);
  log(`offer candidates: ${JSON.stringify(result.offerCandidates)}`);
  log(`WEBRTC SMOKE one page: connected in ${result.connectMs.toFixed(0)} ms, `
    + `${(TOTAL / 1e6).toFixed(1)} MB at ${result.mbps.toFixed(2)} MB/s, max-message-size ${result.maxMessageSize}`);
  assert.ok(result.offerCandidates.length > 0, 'offer has ICE candidates (is the netns default route there?)');
  assert.ok(result.offerCandidates.some((c) => / 10\.213\.0\.\d+ /.test(c)),
    'host candidates must be the namespace address 10.213.0.x (not the machine\'s own address, not an mDNS '
    + '.local name): run inside the test namespace, `bash tests/browser/netns.sh up && '
    + 'ip netns exec seedtab-test node --test tests/browser/`');
  assert.equal(result.got, TOTAL);
  assert.equal(result.sum, result.sentSum);
});

test('two tabs connect through signalling relayed by the test', { timeout: 60_000 }, async () => {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const pageA = await openPage(browser, `${server.url}smoke.html`, { name: 'A', context: ctxA });
    const pageB = await openPage(browser, `${server.url}smoke.html`, { name: 'B', context: ctxB });
    const TOTAL = (Number(process.env.SMOKE_MB) || 4) << 20;
    const t0 = Date.now();
    const offer = await pageA.evaluate(async () => {
      window.pc = new RTCPeerConnection({ iceServers: [] });
      window.dc = pc.createDataChannel('smoke');
      await pc.setLocalDescription(await pc.createOffer());
      return rtc.gathered(pc);
    });
    const answer = await pageB.evaluate(async ({ offer, total }) => {
      window.pc = new RTCPeerConnection({ iceServers: [] });
      // Start receiving synchronously in the event handler: no message can be missed.
      window.recvP = new Promise((res) => { pc.ondatachannel = (e) => res(rtc.receive(e.channel, total)); });
      await pc.setRemoteDescription(offer);
      await pc.setLocalDescription(await pc.createAnswer());
      return rtc.gathered(pc);
    }, { offer, total: TOTAL });
    await pageA.evaluate((answer) => pc.setRemoteDescription(answer), answer);
    const recv = pageB.evaluate(() => recvP);
    await pageA.evaluate(() => rtc.open(dc));
    const tOpen = Date.now();
    const sentSum = await pageA.evaluate((total) => rtc.send(dc, total, 64 * 1024), TOTAL);
    const { got, sum } = await recv;
    const secs = (Date.now() - tOpen) / 1000;
    log(`WEBRTC SMOKE two tabs: connected in ${tOpen - t0} ms, ${(TOTAL / 1e6).toFixed(1)} MB at `
      + `${(TOTAL / 1e6 / secs).toFixed(2)} MB/s`);
    assert.equal(got, TOTAL);
    assert.equal(sum, sentSum);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
