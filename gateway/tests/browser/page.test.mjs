// The upload page at / in Chromium, on the embedded store: two files to 100 %, a preview, a
// confirm, main holding the exact bytes; a 30 MiB multipart upload cut by a reload and resumed
// by picking the same file again, without sending a stored part twice (part PUTs counted at
// the store by a route listener); the API-key field when auth is on; a 1000-character name
// without spaces wrapping in the drafts table, the preview and the status line rather than
// widening the page. Screenshots go to the artifacts folder.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  MiB, api, artifact, launch, mainBytes, png, random, scratch, sha256, startGateway, watchErrors,
} from './harness.mjs';

let gateway;
let browser;
let files;

before(async () => {
  gateway = await startGateway();
  browser = await launch();
  files = scratch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  files?.cleanup();
});

/** Waits until the upload line of `name` says done or failed; its progress and text. */
async function finished(page, name) {
  const line = page.locator(`#uploads li[data-name="${name}"]`);
  await line.and(page.locator('.done, .failed')).waitFor({ timeout: 120_000 });
  return {
    ok: await line.evaluate((li) => li.classList.contains('done')),
    progress: await line.locator('progress').evaluate((p) => p.value),
    text: await line.locator('.state').textContent(),
  };
}

test('two files reach 100 %, preview and confirm; main holds the exact bytes', async () => {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gateway.url}/`);
  assert.equal(await page.title(), 'DraftStore uploads');
  const image = png(96, 64);
  const data = random(700 * 1024);
  await page.setInputFiles('#files', [
    files.file('cat.png', image),
    files.file('notes.bin', data),
  ]);
  for (const name of ['cat.png', 'notes.bin']) {
    const line = await finished(page, name);
    assert.ok(line.ok, `${name}: ${line.text}`);
    assert.equal(line.progress, 100, name);
  }
  // The drafts list shows both, with an expiry.
  const row = page.locator('#drafts tr[data-name="cat.png"]');
  await row.waitFor();
  assert.match(await row.locator('time').getAttribute('datetime'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  await page.locator('#drafts tr[data-name="notes.bin"]').waitFor();

  await page.getByRole('button', { name: 'Preview cat.png' }).click();
  const img = page.locator('#preview-body img');
  await img.waitFor();
  const size = await img.evaluate(async (el) => {
    await el.decode();
    return [el.naturalWidth, el.naturalHeight];
  });
  assert.deepEqual(size, [96, 64], 'the preview shows the uploaded image');
  await page.screenshot({ path: artifact('upload-page.png'), fullPage: true });

  for (const name of ['cat.png', 'notes.bin']) {
    await page.getByRole('button', { name: `Confirm ${name}` }).click();
    await page.locator('#drafts-status', { hasText: `${name} confirmed` }).waitFor();
  }
  await page.locator('#drafts tr[data-name]').first().waitFor({ state: 'detached' });
  assert.equal(sha256(await mainBytes(gateway, 'cat.png')), sha256(image));
  assert.equal(sha256(await mainBytes(gateway, 'notes.bin')), sha256(data));
  assert.deepEqual(errors, [], 'no script error and no CSP violation');
  await page.close();
});

test('a 30 MiB upload cut by a reload resumes without re-sending stored parts', async () => {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  const big = random(30 * MiB);
  const path = files.file('big.bin', big);
  const parts = { before: [], after: [] };
  let phase = 'before';
  let releaseHeld;
  const held = new Promise((r) => { releaseHeld = r; });
  // Every part PUT reaching the store, by phase; before the reload only parts 1 and 2 may go
  // through (the others wait, then are dropped with the page).
  await page.route((url) => url.pathname.startsWith('/_store/') && url.searchParams.has('partNumber'), async (route) => {
    const part = Number(new URL(route.request().url()).searchParams.get('partNumber'));
    if (phase === 'before' && part > 2) {
      await held;
      await route.abort().catch(() => {});
      return;
    }
    await route.continue();
  });
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (res.request().method() === 'PUT' && url.searchParams.has('partNumber') && res.status() === 200) {
      parts[phase].push(Number(url.searchParams.get('partNumber')));
    }
  });
  await page.goto(`${gateway.url}/`);
  await page.setInputFiles('#files', path);
  const line = page.locator('#uploads li[data-name="big.bin"]');
  for (let i = 0; parts.before.length < 2; i++) {
    assert.ok(i < 1200, `parts 1 and 2 stored before the reload (saw ${parts.before})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(await line.locator('progress').evaluate((p) => p.value < 100), 'cut in the middle');
  phase = 'after';
  await page.reload();
  releaseHeld();
  assert.equal(await page.locator('#uploads li').count(), 0, 'a fresh page');
  await page.setInputFiles('#files', path);
  const done = await finished(page, 'big.bin');
  assert.ok(done.ok, done.text);
  assert.equal(done.progress, 100);
  assert.match(done.text, /uploaded 30\.0 MiB/);
  assert.deepEqual(parts.before.sort(), [1, 2]);
  assert.deepEqual(parts.after.sort(), [3, 4, 5, 6], 'only the missing parts are sent again');
  const listed = await api(gateway, 'list-drafts', { prefix: 'big.bin' });
  assert.equal(listed.body.drafts[0].size, 30 * MiB);
  await page.getByRole('button', { name: 'Confirm big.bin' }).click();
  await page.locator('#drafts-status', { hasText: 'big.bin confirmed' }).waitFor();
  assert.equal(sha256(await mainBytes(gateway, 'big.bin')), sha256(big));
  assert.deepEqual(errors.filter((e) => !e.includes('net::ERR_FAILED')), [], 'no script error');
  await page.close();
});

/** A one-page PDF saying `text`, with a correct cross-reference table. */
function pdf(text) {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${`BT /F1 24 Tf 30 60 Td (${text}) Tj ET`.length} >>\nstream\nBT /F1 24 Tf 30 60 Td (${text}) Tj ET\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets = objects.map((body, i) => {
    const at = out.length;
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return at;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  out += offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

test('PDF and video previews load from the store under the page\'s CSP', async () => {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gateway.url}/`);
  await page.evaluate(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.setInputFiles('#files', [
    files.file('doc.pdf', pdf('DraftStore preview')),
    files.file('clip.webm', random(4096)),
  ]);
  for (const name of ['doc.pdf', 'clip.webm']) assert.ok((await finished(page, name)).ok, name);
  await page.getByRole('button', { name: 'Preview doc.pdf' }).click();
  const frame = page.locator('#preview-body iframe');
  await frame.waitFor();
  const src = await frame.getAttribute('src');
  assert.ok(src.startsWith(`${gateway.url}/_store/`), src);
  await page.waitForFunction((url) => [...document.querySelectorAll('iframe')].some((f) => f.src === url), src);
  // The attribute is set before the frame commits its navigation: wait for the frame itself
  // (a loaded machine took longer than the DOM check above).
  let loaded;
  for (let i = 0; i < 150 && !loaded; i += 1) {
    loaded = page.frames().find((f) => f.url() === src);
    if (!loaded) await page.waitForTimeout(100);
  }
  assert.ok(loaded, `the PDF frame navigated to the draft (frames: ${page.frames().map((f) => f.url())})`);
  await page.waitForTimeout(2000); // for the screenshot only: the viewer draws the page
  await page.screenshot({ path: artifact('pdf-preview.png'), fullPage: true });
  await page.getByRole('button', { name: 'Preview clip.webm' }).click();
  const video = page.locator('#preview-body video[controls]');
  await video.waitFor();
  assert.ok((await video.getAttribute('src')).startsWith(`${gateway.url}/_store/`));
  // The bytes are not a real video: the element fetches them and reports a decode error,
  // which the CSP must not have blocked first.
  await page.waitForFunction(() => document.querySelector('video').networkState !== 0);
  assert.deepEqual(await page.evaluate(() => window.violations), [], 'no CSP violation');
  assert.deepEqual(errors.filter((e) => !/media|video|DEMUXER/i.test(e)), []);
  await page.close();
});

test('with auth on, the page asks for an API key and works with it', async () => {
  const key = 'browser-test-key';
  const hash = sha256(Buffer.from(key));
  const locked = await startGateway({
    DRAFTSTORE_AUTH: 'api-keys',
    DRAFTSTORE_API_KEYS: `acme ${hash}`,
    DRAFTSTORE_PUBLIC_PATHS: '/health',
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${locked.url}/`);
    const field = page.getByLabel('API key (kept in this tab only)');
    await field.waitFor();
    await field.fill(key);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.locator('#drafts-status', { hasText: 'No drafts yet.' }).waitFor();
    await page.setInputFiles('#files', files.file('keyed.txt', Buffer.from('with a key')));
    const line = await finished(page, 'keyed.txt');
    assert.ok(line.ok, line.text);
    await page.locator('#drafts tr[data-name="keyed.txt"]').waitFor();
    const listed = await api(locked, 'list-drafts', {}, key);
    assert.deepEqual(listed.body.drafts.map((d) => d.object_name), ['keyed.txt']);
    const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
    assert.deepEqual(stored, [1, 0], 'the key is kept in sessionStorage only');
    await page.close();
  } finally {
    await locked.stop();
  }
});

test('a 1000-character draft name without spaces wraps instead of widening the page', async () => {
  // One segment of 1009 bytes: the embedded store takes 1024-byte keys (SeaweedFS does not).
  const name = `long-${'x'.repeat(1000)}.txt`;
  const made = await api(gateway, 'upload-url', { object_name: name });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const put = await fetch(made.body.upload_url, { method: 'PUT', body: 'long' });
  assert.equal(put.status, 200);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${gateway.url}/`);
  await page.locator(`#drafts tr[data-name="${name}"]`).waitFor();
  await page.getByRole('button', { name: `Preview ${name}` }).click();
  await page.locator('#preview-body a', { hasText: name }).waitFor();
  const widths = () => page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    viewport: document.documentElement.clientWidth,
    table: document.querySelector('#drafts').getBoundingClientRect().width,
    card: document.querySelector('#drafts').parentElement.clientWidth,
    preview: document.querySelector('#preview').scrollWidth,
    previewBox: document.querySelector('#preview').clientWidth,
  }));
  const listed = await widths();
  assert.ok(listed.page <= listed.viewport, `no horizontal scroll: ${JSON.stringify(listed)}`);
  assert.ok(listed.table <= listed.card, `the table fits its card: ${JSON.stringify(listed)}`);
  assert.ok(listed.preview <= listed.previewBox, `the preview fits: ${JSON.stringify(listed)}`);
  await page.screenshot({ path: artifact('long-name.png'), fullPage: true });
  await page.getByRole('button', { name: `Confirm ${name}` }).click();
  await page.locator('#drafts-status', { hasText: 'confirmed' }).waitFor();
  const confirmed = await widths();
  assert.ok(confirmed.page <= confirmed.viewport, `the status line wraps: ${JSON.stringify(confirmed)}`);
  assert.deepEqual(errors, [], 'no script error');
  await page.close();
});
