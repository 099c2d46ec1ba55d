// What the browser tests share: the gateway binary started on 127.0.0.1 (embedded store or
// SeaweedFS), Chromium driven by playwright-core, small static servers for pages of other
// origins and for Uppy's ES modules, and test files. scripts/browser-test sets the variables
// read here; under CI=true a missing one is a failure, never a skip.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { deflateSync } from 'node:zlib';

/** A variable scripts/browser-test sets. */
export function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is unset: run the browser tests with scripts/browser-test`);
  return value;
}

const require = createRequire(join(setting('DRAFTSTORE_BROWSER_DEPS'), 'resolve-from-here.js'));
const { chromium } = require('playwright-core');

/** Where screenshots go (kept as test artifacts). */
export const ARTIFACTS = setting('DRAFTSTORE_BROWSER_ARTIFACTS');

export const MiB = 1024 * 1024;

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `gateway serve` on 127.0.0.1 with `env` added: the embedded store in a new folder,
 * or SeaweedFS with `{ s3: true }` (fresh buckets). Resolves once /health answers.
 */
export async function startGateway(env = {}, { s3 = false } = {}) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'draftstore-browser-'));
  const base = {
    HTTP_PORT: String(port),
    DRAFTSTORE_BIND: '127.0.0.1',
    DRAFTSTORE_LOG: 'info',
    PATH: process.env.PATH,
  };
  if (s3) {
    const bucket = `browser-${process.pid}-${Date.now() % 1e8}`;
    Object.assign(base, {
      DRAFTSTORE_STORAGE: 's3',
      DRAFTSTORE_AUTH: 'none',
      AWS_ENDPOINT_URL: setting('DRAFTSTORE_TEST_S3_ENDPOINT'),
      AWS_ACCESS_KEY_ID: setting('DRAFTSTORE_TEST_S3_ACCESS_KEY'),
      AWS_SECRET_ACCESS_KEY: setting('DRAFTSTORE_TEST_S3_SECRET_KEY'),
      AWS_REGION: process.env.DRAFTSTORE_TEST_S3_REGION || 'us-east-1',
      BUCKET_NAME: bucket,
    });
  } else {
    Object.assign(base, { DRAFTSTORE_STORAGE: 'local', DRAFTSTORE_DATA_DIR: data });
  }
  const child = spawn(setting('DRAFTSTORE_GATEWAY_BIN'), ['serve'], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch { /* not listening yet */ }
    if (i > 600) throw new Error(`gateway did not answer /health:\n${log}`);
    await sleep(100);
  }
  return {
    url,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** POSTs JSON to the gateway's API; `{ status, body }`. */
export async function api(gateway, path, body = {}, key) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${gateway.url}/api/v1/${path}`, {
    method: 'POST', headers, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** The bytes main holds under `name`, fetched through a presigned download URL. */
export async function mainBytes(gateway, name, key) {
  const made = await api(gateway, 'download-url', { object_name: name, source: 'main' }, key);
  if (made.status !== 200) throw new Error(`download-url ${name}: ${JSON.stringify(made.body)}`);
  const res = await fetch(made.body.download_url);
  if (!res.ok) throw new Error(`GET main ${name}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Chromium (the system's, from Debian), headless. */
export function launch() {
  return chromium.launch({
    executablePath: setting('DRAFTSTORE_CHROMIUM'),
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** Collects a page's errors and CSP violations (Chromium reports both on the console). */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.bin': 'application/octet-stream',
};

/**
 * A static server on 127.0.0.1: `routes` maps a path to `{ type?, body }` (a string or bytes)
 * or to a file path. Resolves to `{ origin, close }`.
 */
export async function serveStatic(routes) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const route = routes[path];
    if (path === '/favicon.ico' && !route) {
      res.writeHead(204).end(); // asked by Chromium for every origin: not a test failure
      return;
    }
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    const body = typeof route === 'string' ? readFileSync(route) : route.body;
    const type = typeof route === 'string' ? TYPES[extname(route)] : route.type;
    res.writeHead(200, { 'content-type': type ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A folder for test files, removed by `cleanup`. */
export function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'draftstore-files-'));
  return {
    /** Writes `bytes` as `name` in the folder; its path. */
    file(name, bytes) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const random = (n) => randomBytes(n);

/** The screenshot path for `name`, its folder made. */
export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

// A PNG of `width` x `height` (a colour gradient), so that a preview can be checked decoded.
const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
export function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([47 + x * 3, 111 + y * 2, 94], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
