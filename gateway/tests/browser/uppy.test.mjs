// Uppy 6 (npm `uppy`, pinned by scripts/browser-test, its ES module bundle served by a static
// server of another origin) with @uppy/aws-s3's `companionEndpoint` set to the gateway: a
// 100 KB file (Companion's /s3/params: a presigned POST form) and a 12 MiB file (multipart,
// 5 MiB parts), each confirmed with POST /s3/confirm?key=…; main then holds the exact bytes.
// Once on the embedded store, once on SeaweedFS with the draft bucket's CORS rules set by
// CreateDraftBucket; and with auth on, through an upload token's `/s3-token/<token>` endpoint,
// into the tenant's folder. Needs issue 16's Companion endpoints (/s3/*) and, on the embedded
// store, its POST form upload.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  MiB, api, launch, mainBytes, random, serveStatic, setting, sha256, startGateway, watchErrors,
} from './harness.mjs';

const SMALL = random(100 * 1000);
const LARGE = random(12 * MiB);

let browser;
let site;

before(async () => {
  site = await serveStatic({
    '/': { type: 'text/html; charset=utf-8', body: '<!doctype html><title>Uppy</title>' },
    '/uppy.min.mjs': join(setting('DRAFTSTORE_BROWSER_DEPS'), 'node_modules/uppy/dist/uppy.min.mjs'),
    '/files/small.bin': { body: SMALL },
    '/files/large.bin': { body: LARGE },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

const FILES = { 'small.bin': SMALL, 'large.bin': LARGE };

/**
 * Uploads `names` with Uppy through the Companion endpoints at `endpoint` (the gateway's URL,
 * or an upload token's `companion_endpoint`) and confirms them; checks main holds their
 * bytes (read with the API `key` of `tenant`, when given). The storage keys.
 */
async function uppyUploads(gateway, { endpoint = gateway.url, names = Object.keys(FILES), key, tenant } = {}) {
  const companion = await fetch(`${gateway.url}/s3/params?filename=probe.bin&type=application/octet-stream`);
  assert.notEqual(companion.status, 404, "the gateway serves Companion's /s3/* endpoints (issue 16)");
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${site.origin}/`);
  const outcome = await page.evaluate(async ({ companionEndpoint, names }) => {
    const { Uppy, AwsS3 } = await import('/uppy.min.mjs');
    const uppy = new Uppy().use(AwsS3, {
      companionEndpoint,
      shouldUseMultipart: (file) => file.size > 10 * 1024 * 1024,
      getChunkSize: () => 5 * 1024 * 1024,
    });
    const parts = [];
    uppy.on('s3-multipart:part-uploaded', (_file, part) => parts.push(part.PartNumber));
    for (const name of names) {
      const data = await (await fetch(`/files/${name}`)).blob();
      uppy.addFile({ name, type: 'application/octet-stream', data });
    }
    const result = await uppy.upload();
    const keys = Object.fromEntries(result.successful.map((f) => [f.name, f.response?.body?.key]));
    const confirms = {};
    for (const [name, key] of Object.entries(keys)) {
      const res = await fetch(`${companionEndpoint}/s3/confirm?${new URLSearchParams({ key })}`, { method: 'POST' });
      confirms[name] = res.status;
    }
    return {
      keys,
      failed: result.failed.map((f) => `${f.name}: ${f.error}`),
      parts: parts.sort((a, b) => a - b),
      confirms,
    };
  }, { companionEndpoint: endpoint, names });
  await page.close();
  assert.deepEqual(outcome.failed, []);
  assert.deepEqual(outcome.parts, names.includes('large.bin') ? [1, 2, 3] : [], '12 MiB in 5 MiB parts');
  assert.deepEqual(outcome.confirms, Object.fromEntries(names.map((n) => [n, 200])));
  for (const name of names) {
    const stored = outcome.keys[name];
    assert.ok(stored?.endsWith(name), `DraftStore chose a key ending in the file name: ${stored}`);
    const folder = tenant ? `${tenant}/` : '';
    assert.ok(stored.startsWith(folder), `${stored} lies in the tenant's folder`);
    const bytes = await mainBytes(gateway, stored.slice(folder.length), key);
    assert.equal(sha256(bytes), sha256(FILES[name]), name);
  }
  assert.deepEqual(errors, []);
  return outcome.keys;
}

test('Uppy through the Companion endpoints on the embedded store', async () => {
  const gateway = await startGateway({ DRAFTSTORE_CORS_ORIGINS: site.origin });
  try {
    await uppyUploads(gateway);
  } finally {
    await gateway.stop();
  }
});

test('Uppy through the Companion endpoints on SeaweedFS, CORS set by CreateDraftBucket', async () => {
  const gateway = await startGateway({ DRAFTSTORE_CORS_ORIGINS: site.origin }, { s3: true });
  try {
    const made = await api(gateway, 'draft-bucket');
    assert.equal(made.status, 200, JSON.stringify(made.body));
    await uppyUploads(gateway);
  } finally {
    await gateway.stop();
  }
});

test("Uppy with auth on, through an upload token's Companion endpoint, into the tenant's folder", async () => {
  const key = 'uppy-test-key';
  const gateway = await startGateway({
    DRAFTSTORE_CORS_ORIGINS: site.origin,
    DRAFTSTORE_AUTH: 'api-keys',
    DRAFTSTORE_API_KEYS: `acme ${sha256(Buffer.from(key))}`,
    DRAFTSTORE_UPLOAD_TOKEN_SECRET: random(32).toString('hex'),
  });
  try {
    const minted = await api(gateway, 'upload-token', {}, key);
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    const endpoint = minted.body.companion_endpoint;
    assert.ok(endpoint.startsWith(`${gateway.url}/s3-token/`), endpoint);
    // Multipart only: the small file's POST form is the test above's.
    await uppyUploads(gateway, { endpoint, names: ['large.bin'], key, tenant: 'acme' });
  } finally {
    await gateway.stop();
  }
});
