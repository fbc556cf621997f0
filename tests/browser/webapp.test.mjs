// The web app (www/index.html + www/app.js), driven the way a person uses it:
// pick files to seed, copy the magnet link, paste it in another tab, save the download.
// Also: bad input shows a clear error and the page keeps working; the Library keeps torrents
// across reloads (seeding again without hashing, magnet copied from its row, Save, Pause/Resume,
// Re-check, Remove freeing storage); a full storage quota shows the message and Resume goes on.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, launchBrowser, log, openPage, startServer, tempDir } from './harness.mjs';

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

/**
 * A new tab on the web app, once it has made its client and listed what storage holds
 * (body[data-ready]). Its own context (own storage) unless `context` is given. Dialogs
 * (Remove's confirm) are answered with `tab.confirm` (true unless a test changes it).
 * Save never opens the File System Access picker here (a headless picker waits forever):
 * window.__seedtabNoPicker makes the page use <a download>, which playwright records.
 */
async function openApp(name, context) {
  const ctx = context || await browser.newContext({
    acceptDownloads: true,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  await ctx.addInitScript(() => { window.__seedtabNoPicker = true; });
  const page = await openPage(browser, null, { name, context: ctx });
  const tab = { page, context: ctx, confirm: true, dialogs: [] };
  page.on('dialog', (dialog) => {
    tab.dialogs.push(dialog.message());
    if (dialog.type() === 'confirm' && !tab.confirm) dialog.dismiss();
    else dialog.accept();
  });
  await page.goto(server.url, { waitUntil: 'load' });
  await waitReady(page);
  return tab;
}

/** Waits until app.js has made its client and the library shows what storage holds. */
async function waitReady(page) {
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });
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

test('names from the swarm stay text (HTML/JS file names), under a strict Content-Security-Policy', { timeout: TEST_TIMEOUT }, async () => {
  // What a hostile seeder would name its files: markup that runs script if it ever reaches
  // innerHTML. The downloader gets the name only from the swarm (the info dict).
  // (No '/': a browser File's name ends at the last one.)
  const evil = '<img src=x onerror="window.__pwned=1">"\'><svg onload=window.__pwned=2><b>bold.txt';
  const data = crypto.randomBytes(64 * 1024);
  const seeder = await openApp('csp:A');
  const leecher = await openApp('csp:B');
  const violations = [];
  for (const tab of [seeder, leecher]) {
    tab.page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text()); });
    await tab.page.evaluate(() => document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations = (window.__violations || []).concat(`${e.violatedDirective} ${e.blockedURI}`);
    }));
  }
  try {
    const res = await fetch(server.url);
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/, `a strict script-src: ${csp}`);
    assert.match(csp, /object-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    const embed = (await fetch(new URL('/embed', server.url))).headers.get('content-security-policy') || '';
    assert.match(embed, /script-src 'self' 'wasm-unsafe-eval'(;|$)/, `the player is strict too: ${embed}`);
    assert.match(embed, /frame-ancestors \*/, 'the player may be embedded anywhere');

    const magnet = await seedThroughUi(seeder.page, evil, data);
    await downloadThroughUi(leecher.page, magnet, 'csp:B');
    for (const tab of [seeder, leecher]) {
      const state = await tab.page.evaluate((name) => ({
        pwned: window.__pwned,
        injected: document.querySelectorAll('img[src="x"], svg[onload], b').length,
        shown: document.body.textContent.includes(name),
        violations: window.__violations || [],
      }), evil);
      assert.equal(state.pwned, undefined, 'no script from a file name ran');
      assert.equal(state.injected, 0, 'no element was made from a file name');
      assert.ok(state.shown, `the name is shown, as text: ${await tab.page.evaluate(() => document.body.textContent.replace(/\s+/g, ' ').slice(0, 1500))}`);
      assert.deepEqual(state.violations, [], 'the app itself needs nothing the policy forbids');
    }
    assert.deepEqual(violations, [], 'no CSP complaint in the console');
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

// ---- library --------------------------------------------------------------------------------

const MiB = 1024 * 1024;

function infoHashOf(magnet) {
  const m = /xt=urn:btih:([0-9a-fA-F]{40})/.exec(magnet);
  assert.ok(m, `a hex info-hash in ${magnet}`);
  return m[1].toLowerCase();
}

/** The library row of a torrent. */
function libraryRow(page, infoHash) {
  return page.locator(`#library .library-item[data-infohash="${infoHash}"]`);
}

/** Waits until the row's state label matches `re`; returns the label. */
async function waitRowState(page, infoHash, re, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    const row = libraryRow(page, infoHash);
    text = (await row.count()) ? ((await row.locator('.lib-state').textContent()) || '').trim() : '(no row)';
    if (re.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`library row ${infoHash.slice(0, 8)}: state ${JSON.stringify(text)}, want ${re}`);
    await page.waitForTimeout(100);
  }
}

/** Clicks the row's Save and returns { name, bytes } of the download it makes. */
async function saveFromRow(page, infoHash) {
  const button = libraryRow(page, infoHash).locator('.lib-save');
  assert.ok(await button.isEnabled(), 'Save is enabled for a complete torrent');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 30_000 }),
    button.click(),
  ]);
  return { name: download.suggestedFilename(), bytes: fs.readFileSync(await download.path()) };
}

/** Bytes of browser storage in use, as the storage line last read them. */
async function storageUsage(page) {
  return page.$eval('#storage', (el) => Number(el.dataset.usage ?? NaN));
}

/** Polls `read()` until `ok(value)`, up to `timeoutMs`; returns the last value. */
async function pollUntil(page, read, ok, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await page.waitForTimeout(200);
  }
}

test('the library keeps a seed across a reload, and a second tab downloads it from the row\'s magnet link',
  { timeout: TEST_TIMEOUT }, async () => {
    const data = crypto.randomBytes(1536 * 1024 + 123);
    const seeder = await openApp('lib:A');
    const leecher = await openApp('lib:B');
    try {
      const magnet = await seedThroughUi(seeder.page, 'library.bin', data);
      const ih = infoHashOf(magnet);
      await waitRowState(seeder.page, ih, /^Seeding$/);
      assert.match(await seeder.page.textContent('#storage'), /^Storage: (OPFS|IndexedDB), /);

      // A reload: the library lists it as seeding, complete, without the files being picked
      // (or hashed) again.
      const t0 = Date.now();
      await seeder.page.reload({ waitUntil: 'load' });
      await waitReady(seeder.page);
      await waitRowState(seeder.page, ih, /^Seeding$/, 10_000);
      log(`[lib:A] after reload: seeding again in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
      const row = libraryRow(seeder.page, ih);
      assert.equal(await seeder.page.locator('#library .library-item').count(), 1, 'one row');
      assert.equal(await row.locator('.lib-name').textContent(), 'library.bin');
      assert.equal(await row.locator('.lib-size').textContent(), '1.6 MB');
      assert.equal(await row.locator('.lib-percent').textContent(), '100%');
      assert.equal(await row.locator('.lib-ratio').textContent(), '0.00');
      assert.equal(await row.locator('.lib-pause').textContent(), 'Pause');
      assert.ok(await seeder.page.locator('#seed-status').isHidden(), 'no "Hashing…" after the reload');
      assert.equal(await visibleError(seeder.page), '', 'no error after the reload');

      await row.locator('.lib-copy').click();
      const copied = (await seeder.page.evaluate(() => navigator.clipboard.readText())).trim();
      log(`[lib:A] copied from the library: ${copied}`);
      assert.ok(copied.startsWith(`magnet:?xt=urn:btih:${ih}`), 'the row copies the torrent\'s magnet link');
      assert.equal(await row.locator('.lib-copy').textContent(), 'Copied');

      const secs = await downloadThroughUi(leecher.page, copied, 'lib:B');
      log(`TRANSFER webapp library 1.5MB: ${secs.toFixed(2)} s (restored seed, paste to Done)`);
      await waitRowState(leecher.page, ih, /^Seeding$/, 10_000);

      // The seeder's ratio counts what it uploaded.
      const ratio = await pollUntil(seeder.page,
        () => row.locator('.lib-ratio').textContent(), (r) => Number(r) >= 0.99, 5000);
      log(`[lib:A] ratio after the download: ${ratio}`);
      assert.ok(Number(ratio) >= 0.99, `ratio ${ratio} counts the upload`);

      // Save from the library, in both tabs: the downloader's stored copy and the restored seed.
      for (const [tab, label] of [[leecher, 'lib:B'], [seeder, 'lib:A']]) {
        const saved = await saveFromRow(tab.page, ih);
        log(`[${label}] library Save: ${saved.name} (${saved.bytes.length} bytes)`);
        assert.equal(saved.name, 'library.bin');
        assert.ok(saved.bytes.equals(data), `[${label}] the saved file has the seeded bytes`);
      }
      assert.equal(await visibleError(leecher.page), '', 'no error shown');
    } finally {
      await seeder.context.close();
      await leecher.context.close();
    }
  });

test('library: Pause/Resume (kept across a reload), Re-check, and Remove frees the storage',
  { timeout: TEST_TIMEOUT }, async () => {
    const data = crypto.randomBytes(2 * MiB);
    const tab = await openApp('lib:C');
    const { page } = tab;
    try {
      const ih = infoHashOf(await seedThroughUi(page, 'pause-me.bin', data));
      const row = libraryRow(page, ih);
      await waitRowState(page, ih, /^Seeding$/);

      await row.locator('.lib-pause').click();
      await waitRowState(page, ih, /^Paused$/, 5000);
      assert.equal(await row.locator('.lib-pause').textContent(), 'Resume');
      await page.reload({ waitUntil: 'load' });
      await waitReady(page);
      await waitRowState(page, ih, /^Paused$/, 10_000);
      log('[lib:C] still paused after a reload');
      await row.locator('.lib-pause').click();
      await waitRowState(page, ih, /^Seeding$/, 5000);
      assert.equal(await row.locator('.lib-pause').textContent(), 'Pause');

      await row.locator('.lib-recheck').click();
      const note = row.locator('.lib-note');
      await pollUntil(page, () => note.textContent(), (t) => t.includes('intact'), 30_000);
      assert.equal(await note.textContent(), 'Re-check: intact');

      const before = await pollUntil(page, () => storageUsage(page), (u) => u >= data.length, 15_000);
      log(`[lib:C] storage line: ${await page.textContent('#storage')} (usage ${before})`);
      assert.ok(before >= data.length, `storage usage ${before} counts the seeded file`);

      tab.confirm = false; // "Cancel": nothing happens
      await row.locator('.lib-remove').click();
      await page.waitForTimeout(300);
      assert.equal(await row.count(), 1, 'the row stays when Remove is cancelled');
      tab.confirm = true;
      await row.locator('.lib-remove').click();
      await pollUntil(page, () => row.count(), (n) => n === 0, 5000);
      assert.equal(await row.count(), 0, 'the row is gone');
      assert.ok(tab.dialogs.every((m) => m.includes('pause-me.bin')), 'the question names the torrent');
      assert.ok(await page.locator('#library-empty').isVisible(), 'the library says it is empty');
      const afterRemove = await pollUntil(page, () => storageUsage(page), (u) => u < before - data.length / 2, 15_000);
      log(`[lib:C] after Remove: ${await page.textContent('#storage')} (usage ${afterRemove})`);
      assert.ok(afterRemove < before - data.length / 2, `storage usage went down (${before} -> ${afterRemove})`);

      await page.reload({ waitUntil: 'load' });
      await waitReady(page);
      assert.equal(await page.locator('#library .library-item').count(), 0, 'nothing comes back after a reload');
      assert.equal(await visibleError(page), '', 'no error shown');
    } finally {
      await tab.context.close();
    }
  });

// The core reserves a download's whole length when its metadata arrives, so a small quota fails
// there. After that failure, resume() does not retry the reservation (the download then stalls at
// 0%) and a reload does not bring the torrent back: the "Resume goes on" part is a TODO of the
// core (src/web/persist.rs create_entry), reported as such rather than failing this file.
const RESUME_AFTER_FULL_TODO = false;

test('a full storage quota pauses the download with a clear message and the row shows it',
  { timeout: TEST_TIMEOUT }, async (t) => {
    const data = crypto.randomBytes(3 * MiB);
    const seeder = await openApp('quota:A');
    // Quota overrides apply to real profiles only (not incognito contexts), so the downloader is
    // a browser of its own on a temporary profile.
    const profile = tempDir('seedtab-webapp-quota-');
    const ctx = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000, acceptDownloads: true,
    });
    try {
      const magnet = await seedThroughUi(seeder.page, 'too-big.bin', data);
      const ih = infoHashOf(magnet);
      const blank = ctx.pages()[0] || await ctx.newPage();
      const cdp = await ctx.newCDPSession(blank);
      const origin = new URL(server.url).origin;
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1 * MiB });

      const tab = await openApp('quota:B', ctx);
      const { page } = tab;
      await page.fill('#magnet-input', magnet);
      await page.click('#magnet-add');
      const message = await pollUntil(page, () => visibleError(page), (t) => t !== '', 60_000);
      log(`[quota:B] #error: ${message}`);
      assert.match(message, /^Storage is full: "too-big\.bin" could not be written\./);
      assert.match(message, /The torrent is paused; free space .* and press Resume\.$/);
      await waitRowState(page, ih, /^Error/, 5000);
      const row = libraryRow(page, ih);
      assert.equal(await row.locator('.lib-pause').textContent(), 'Resume');
      assert.match(await row.locator('.lib-note').textContent(), /full/, 'the row keeps the browser\'s words');
      assert.match(await page.textContent('#download-status'), /^Paused/);
      assert.ok(await row.locator('.lib-save').isDisabled(), 'no Save while incomplete');

      await t.test('Resume goes on once there is room', { todo: RESUME_AFTER_FULL_TODO }, async () => {
        await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 512 * MiB }); // space freed
        await row.locator('.lib-pause').click();
        assert.equal(await visibleError(page), '', 'Resume clears the message');
        await waitRowState(page, ih, /^(Downloading|Seeding)/, 5000);
        const status = await pollUntil(page, () => page.textContent('#download-status'), (s) => s === 'Done', 20_000);
        assert.equal(status, 'Done', 'the download finishes after Resume');
        await waitRowState(page, ih, /^Seeding$/, 10_000);
        const saved = await saveFromRow(page, ih);
        assert.ok(saved.bytes.equals(data), 'the file saved after the pause has the seeded bytes');
      });
    } finally {
      await ctx.close();
      profile.cleanup();
      await seeder.context.close();
    }
  });
