// The web app (www/index.html + www/app.js), driven the way a person uses it:
// pick files to seed, copy the magnet link, paste it in another tab, save the download.
// Also: bad input shows a clear error and the page keeps working.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { launchBrowser, log, openPage, startServer } from './harness.mjs';

const TEST_TIMEOUT = 120_000;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new tab (own context: own storage) on the web app, once the app has wired its controls. */
async function openApp(name) {
  const context = await browser.newContext({
    acceptDownloads: true,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = await openPage(browser, server.url, { name, context });
  // app.js runs after the wasm module loaded; it fills the tracker list once it is set up.
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true'
    || document.body.dataset.ready === 'true'
    || (document.getElementById('trackers-input')?.value || '').trim() !== '', null, { timeout: 30_000 });
  return { page, context };
}

/** Seed `buffer` as `fileName` from the Seed panel; returns the magnet link it shows. */
async function seedThroughUi(page, fileName, buffer) {
  await page.setInputFiles('#seed-input', { name: fileName, mimeType: 'application/octet-stream', buffer });
  await page.waitForFunction(() => {
    const el = document.getElementById('seed-magnet');
    return (el.value || el.textContent || '').trim().startsWith('magnet:?xt=urn:btih:');
  }, null, { timeout: 60_000 });
  return page.$eval('#seed-magnet', (el) => (el.value || el.textContent).trim());
}

/** Paste a magnet link in the Download panel and wait for "Done". Returns seconds taken. */
async function downloadThroughUi(page, magnet, label) {
  const t0 = Date.now();
  await page.fill('#magnet-input', magnet);
  await page.click('#magnet-add');
  let last = '';
  let lastLog = 0;
  for (;;) {
    const status = await page.$eval('#download-status', (el) => el.textContent || '');
    if (status.includes('Done')) break;
    if (status !== last || Date.now() - lastLog > 5000) {
      const progress = await page.$eval('#download-progress', (el) => el.value);
      log(`[${label}] download-status: ${status.trim()} (progress ${progress})`);
      last = status;
      lastLog = Date.now();
    }
    const error = await visibleError(page);
    if (error) assert.fail(`[${label}] the page shows an error while downloading: ${error}`);
    if (Date.now() - t0 > 90_000) assert.fail(`[${label}] no "Done" in 90 s; last status: ${status}`);
    await page.waitForTimeout(250);
  }
  return (Date.now() - t0) / 1000;
}

/** The text of #error if it is visible, else ''. */
async function visibleError(page) {
  const box = page.locator('#error');
  if (!(await box.isVisible())) return '';
  return ((await box.textContent()) || '').trim();
}

/** Wait until #error is visible with a non-empty text different from `previous`. */
async function waitForError(page, previous = '') {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await visibleError(page);
    if (text && text !== previous) return text;
    if (Date.now() > deadline) {
      assert.fail(`#error shows no new message (visible text: ${JSON.stringify(text)})`);
    }
    await page.waitForTimeout(100);
  }
}

test('seed a file in one tab, download it in another through the page', { timeout: TEST_TIMEOUT }, async () => {
  const data = crypto.randomBytes(2 * 1024 * 1024);
  const seeder = await openApp('app:A');
  const leecher = await openApp('app:B');
  try {
    const magnet = await seedThroughUi(seeder.page, 'two-megs.bin', data);
    log(`[app:A] seed-magnet: ${magnet}`);
    assert.ok(await seeder.page.locator('#seed-torrent').isVisible(), '#seed-torrent link is shown');

    await seeder.page.click('#seed-copy');
    const copied = await seeder.page.evaluate(() => navigator.clipboard.readText().catch((e) => `ERR ${e}`));
    if (copied.startsWith('ERR ')) log(`[app:A] clipboard not readable here (${copied}); copy not checked`);
    else assert.equal(copied.trim(), magnet, '#seed-copy put the magnet link on the clipboard');

    const secs = await downloadThroughUi(leecher.page, magnet, 'app:B');
    log(`TRANSFER webapp 2MB: ${secs.toFixed(2)} s, ${(data.length / 1e6 / secs).toFixed(2)} MB/s (paste to Done)`);

    assert.ok(await leecher.page.locator('#download-save').isEnabled(), '#download-save is enabled when done');
    const [download] = await Promise.all([
      leecher.page.waitForEvent('download', { timeout: 30_000 }),
      leecher.page.click('#download-save'),
    ]);
    const file = await download.path();
    const saved = fs.readFileSync(file);
    log(`[app:B] saved ${download.suggestedFilename()} (${saved.length} bytes)`);
    assert.equal(download.suggestedFilename(), 'two-megs.bin');
    assert.equal(saved.length, data.length, 'saved file has the seeded length');
    assert.ok(saved.equals(data), 'saved file has the seeded bytes');
    assert.equal(await visibleError(leecher.page), '', 'no error shown');
  } finally {
    await seeder.context.close();
    await leecher.context.close();
  }
});

test('bad magnet link and bad .torrent show an error, then a good link still works',
  { timeout: TEST_TIMEOUT }, async () => {
    const data = crypto.randomBytes(300 * 1024 + 17);
    const seeder = await openApp('bad:A');
    const tab = await openApp('bad:B');
    try {
      const { page } = tab;
      await page.fill('#magnet-input', 'magnet:?xt=urn:btih:xyz');
      await page.click('#magnet-add');
      const magnetError = await waitForError(page);
      log(`[bad:B] bad magnet -> error: ${magnetError}`);
      assert.match(magnetError, /magnet/i, 'the error message talks about the magnet link');
      assert.ok(page.url().startsWith(server.url), 'the page did not navigate away');

      const garbage = Buffer.concat([Buffer.from('d8:announce'), crypto.randomBytes(2000)]);
      await page.setInputFiles('#torrent-input', { name: 'bad.torrent', mimeType: 'application/x-bittorrent', buffer: garbage });
      const torrentError = await waitForError(page, magnetError);
      log(`[bad:B] bad .torrent -> error: ${torrentError}`);

      // The page still works: a real magnet link downloads.
      const magnet = await seedThroughUi(seeder.page, 'after-errors.bin', data);
      await downloadThroughUi(page, magnet, 'bad:B');
      assert.equal(await visibleError(page), '', 'the old error is gone after a good download starts');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 30_000 }),
        page.click('#download-save'),
      ]);
      const saved = fs.readFileSync(await download.path());
      assert.ok(saved.equals(data), 'the download after the errors has the seeded bytes');
    } finally {
      await seeder.context.close();
      await tab.context.close();
    }
  });
