// A presigned POST form (`POST /api/v1/upload-form`, issue 16) in the browser: a file over the
// form's size range is refused by the store (400 EntityTooLarge, readable by the allowed
// origin), one inside it is stored. Needs the upload-form route and the embedded store's POST
// upload (issue 16, section 2).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launch, serveStatic, startGateway } from './harness.mjs';

const BLANK = { type: 'text/html; charset=utf-8', body: '<!doctype html><title>other origin</title>' };

let gateway;
let browser;
let allowed;

before(async () => {
  allowed = await serveStatic({ '/': BLANK });
  gateway = await startGateway({ DRAFTSTORE_CORS_ORIGINS: allowed.origin });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await allowed?.close();
});

test('a POST form refuses a file over its size range in the browser', async () => {
  const form = await api(gateway, 'upload-form', { object_name: 'form.bin', max_content_length: 1000 });
  assert.equal(form.status, 200, `upload-form (issue 16, form16's route): ${JSON.stringify(form.body)}`);
  const page = await browser.newPage();
  await page.goto(`${allowed.origin}/`);
  const post = (size) => page.evaluate(async ({ url, fields, size }) => {
    const body = new FormData();
    for (const [k, v] of Object.entries(fields)) body.set(k, v);
    body.set('file', new Blob([new Uint8Array(size).fill(7)]), 'form.bin');
    try {
      const res = await fetch(url, { method: 'POST', body });
      return { status: res.status, text: await res.text() };
    } catch (e) {
      return { status: 0, text: e.message };
    }
  }, { url: form.body.url, fields: form.body.fields, size });
  const over = await post(2000);
  assert.equal(over.status, 400, over.text);
  assert.match(over.text, /EntityTooLarge/);
  let listed = await api(gateway, 'list-drafts', { prefix: 'form' });
  assert.deepEqual(listed.body.drafts, [], 'nothing stored over the range');
  const inside = await post(600);
  assert.ok(inside.status >= 200 && inside.status < 300, `${inside.status} ${inside.text}`);
  listed = await api(gateway, 'list-drafts', { prefix: 'form' });
  assert.equal(listed.body.drafts[0]?.size, 600);
  await page.close();
});
