// Cross-origin requests in the browser, from pages of two other origins (static servers on
// 127.0.0.1): a page of an origin not in DRAFTSTORE_CORS_ORIGINS can neither call the API nor
// PUT to a presigned URL (Chromium blocks both after the preflight), while the allowed
// origin can.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launch, serveStatic, startGateway } from './harness.mjs';

const BLANK = { type: 'text/html; charset=utf-8', body: '<!doctype html><title>other origin</title>' };

let gateway;
let browser;
let allowed;
let refused;

before(async () => {
  allowed = await serveStatic({ '/': BLANK });
  refused = await serveStatic({ '/': BLANK });
  gateway = await startGateway({ DRAFTSTORE_CORS_ORIGINS: allowed.origin });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await allowed?.close();
  await refused?.close();
});

/** In a page of `origin`: the API call and the PUT, each `status N` or `blocked: …`. */
async function tryFrom(origin, name) {
  const made = await api(gateway, 'upload-url', { object_name: name });
  assert.equal(made.status, 200);
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const outcome = await page.evaluate(async ({ base, url }) => {
    const attempt = (request) => request.then((r) => `status ${r.status}`, (e) => `blocked: ${e.message}`);
    return {
      api: await attempt(fetch(`${base}/api/v1/upload-url`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"object_name":"x"}',
      })),
      put: await attempt(fetch(url, { method: 'PUT', body: 'from the browser' })),
    };
  }, { base: gateway.url, url: made.body.upload_url });
  await page.close();
  return outcome;
}

test('a page of a disallowed origin can neither call the API nor upload', async () => {
  const ok = await tryFrom(allowed.origin, 'allowed.txt');
  assert.deepEqual(ok, { api: 'status 200', put: 'status 200' });
  const no = await tryFrom(refused.origin, 'refused.txt');
  assert.match(no.api, /^blocked: Failed to fetch/);
  assert.match(no.put, /^blocked: Failed to fetch/);
  const listed = await api(gateway, 'list-drafts', {});
  const names = listed.body.drafts.map((d) => d.object_name);
  assert.deepEqual(names, ['allowed.txt'], 'the refused PUT stored nothing');
});
