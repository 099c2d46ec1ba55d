// DraftStore's upload page. It talks to the REST API on this origin (/api/v1/…) and sends
// the bytes straight to the store's presigned URLs: one PUT for a small file, a multipart
// upload for a large one, which resumes after a reload when the same file is picked again.

const MiB = 1024 * 1024;
const PART_SIZE = 5 * MiB; // S3's smallest part (all but the last)
const MULTIPART_FROM = 8 * MiB; // larger files go in parts
const PARALLEL = 3; // parts of one file in flight at once
const KEY = 'draftstore-api-key'; // sessionStorage: this tab only
const RESUME = 'draftstore-upload:'; // localStorage: [name, size] → the upload in progress

const $ = (id) => document.getElementById(id);

/** An element with a class and text. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

/** POSTs `body` to /api/v1/`path`; the JSON reply, or an Error with the API's code and message. */
async function api(path, body = {}) {
  const headers = { 'content-type': 'application/json' };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`/api/v1/${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const reply = await res.json().catch(() => ({}));
  if (res.ok) return reply;
  const error = new Error(reply.error ? `${reply.error.code}: ${reply.error.message}` : `HTTP ${res.status}`);
  error.status = res.status;
  if (res.status === 401) askForKey(key ? 'That API key was refused.' : 'This DraftStore needs an API key.');
  throw error;
}

/** PUTs `body` to a presigned URL with `headers`, reporting bytes sent to `onProgress`. */
function put(url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      const code = /<Code>([^<]*)<\/Code>/.exec(xhr.responseText)?.[1] ?? '';
      reject(new Error(`the store refused the upload: ${xhr.status} ${code}`));
    };
    xhr.onerror = () => reject(new Error(
      `the store at ${new URL(url).origin} could not be reached (open this page at that address)`));
    xhr.send(body);
  });
}

/** One line of the upload list: the file's name, a progress bar and what is happening. */
function uploadRow(file) {
  const li = el('li');
  li.dataset.name = file.name;
  const bar = el('progress');
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute('aria-label', `Upload of ${file.name}`);
  const state = el('span', 'state', 'starting');
  li.append(el('span', 'name', file.name), bar, state);
  $('uploads').append(li);
  return {
    progress(fraction, text) {
      bar.value = Math.min(100, Math.floor(fraction * 100));
      if (text) state.textContent = text;
    },
    done(text) { bar.value = 100; state.textContent = text; li.classList.add('done'); },
    failed(error) { li.classList.add('failed'); state.textContent = error.message; },
  };
}

async function uploadSmall(file, row) {
  const made = await api('upload-url', { object_name: file.name, content_type: file.type || null });
  await put(made.upload_url, file, made.required_headers, (sent) => row.progress(sent / file.size, 'uploading'));
}

/** The upload in progress for this file (same name and size) that the store still has, if any. */
async function findUpload(file, resumeKey) {
  const saved = JSON.parse(localStorage.getItem(resumeKey) ?? 'null');
  if (!saved) return null;
  const { uploads } = await api('multipart-upload/list', { object_name: file.name });
  if (uploads.some((u) => u.upload_id === saved.upload_id)) return saved;
  localStorage.removeItem(resumeKey);
  return null;
}

async function uploadLarge(file, row) {
  const object_name = file.name;
  const resumeKey = RESUME + JSON.stringify([file.name, file.size]);
  let upload = await findUpload(file, resumeKey);
  const stored = new Map();
  if (upload) {
    const { parts } = await api('multipart-upload/parts', { object_name, upload_id: upload.upload_id });
    for (const part of parts) stored.set(part.part_number, part.size);
  } else {
    const created = await api('multipart-upload', {
      object_name, content_type: file.type || null, content_length: file.size, part_size: PART_SIZE,
    });
    upload = { upload_id: created.upload_id, part_size: created.part_size };
    localStorage.setItem(resumeKey, JSON.stringify(upload));
  }
  const { upload_id, part_size } = upload;
  const count = Math.max(1, Math.ceil(file.size / part_size));
  const sizeOf = (n) => Math.min(part_size, file.size - (n - 1) * part_size);
  const todo = [];
  let sent = 0;
  for (let n = 1; n <= count; n++) {
    if (stored.get(n) === sizeOf(n)) sent += sizeOf(n);
    else todo.push(n);
  }
  const resumed = count - todo.length;
  const sending = new Map();
  const show = () => {
    const inFlight = [...sending.values()].reduce((a, b) => a + b, 0);
    const note = resumed ? `, ${resumed} resumed` : '';
    row.progress((sent + inFlight) / file.size, `${count - todo.length - sending.size}/${count} parts${note}`);
  };
  show();
  const worker = async () => {
    while (todo.length) {
      const n = todo.shift();
      const { parts: [signed] } = await api('multipart-upload/part-urls', { object_name, upload_id, part_numbers: [n] });
      const start = (n - 1) * part_size;
      sending.set(n, 0);
      await put(signed.url, file.slice(start, start + sizeOf(n)), signed.required_headers, (bytesSent) => {
        sending.set(n, bytesSent);
        show();
      });
      sending.delete(n);
      sent += sizeOf(n);
      show();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  row.progress(1, 'assembling');
  await api('multipart-upload/complete', { object_name, upload_id });
  localStorage.removeItem(resumeKey);
}

async function uploadAll(files) {
  await Promise.all([...files].map(async (file) => {
    const row = uploadRow(file);
    try {
      if (file.size > MULTIPART_FROM) await uploadLarge(file, row);
      else await uploadSmall(file, row);
      row.done(`uploaded ${bytes(file.size)}`);
    } catch (error) {
      row.failed(error);
    }
    await refresh();
  }));
}

const IMAGE = /\.(png|jpe?g|gif|webp|avif|svg)$/i;
const VIDEO = /\.(mp4|webm|ogv|mov|m4v)$/i;
const PDF = /\.pdf$/i;

async function preview(name) {
  const { download_url } = await api('download-url', { object_name: name });
  let view;
  if (IMAGE.test(name)) {
    view = el('img');
    view.alt = `Preview of ${name}`;
  } else if (VIDEO.test(name)) {
    view = el('video');
    view.controls = true;
  } else if (PDF.test(name)) {
    view = el('iframe');
    view.title = `Preview of ${name}`;
  } else {
    view = el('a', '', `Download ${name}`);
    view.href = download_url;
  }
  if (view.tagName !== 'A') view.src = download_url;
  $('preview-title').textContent = `Preview: ${name}`;
  $('preview-body').replaceChildren(view);
  $('preview').hidden = false;
}

async function confirmDraft(name) {
  const done = await api('confirm-upload', { object_name: name });
  $('drafts-status').textContent = `${name} confirmed: ${done.final_location} (${bytes(done.size)})`;
  await refresh(false);
}

/** Runs `action`, showing its failure in the drafts' status line. */
function reporting(action) {
  return () => action().catch((e) => {
    $('drafts-status').textContent = e.message;
    $('drafts-status').classList.add('error');
  });
}

async function refresh(clearStatus = true) {
  let listed;
  try {
    listed = await api('list-drafts', {});
  } catch (e) {
    $('drafts-status').textContent = e.message;
    return;
  }
  if (clearStatus) $('drafts-status').textContent = '';
  $('drafts-status').classList.remove('error');
  const rows = listed.drafts.map((draft) => {
    const tr = el('tr');
    tr.dataset.name = draft.object_name;
    const expires = el('time', '', new Date(draft.expires_at).toLocaleString());
    expires.dateTime = draft.expires_at;
    const show = el('button', 'secondary', 'Preview');
    show.type = 'button';
    show.setAttribute('aria-label', `Preview ${draft.object_name}`);
    show.addEventListener('click', reporting(() => preview(draft.object_name)));
    const confirm = el('button', '', 'Confirm');
    confirm.type = 'button';
    confirm.setAttribute('aria-label', `Confirm ${draft.object_name}`);
    confirm.addEventListener('click', reporting(() => confirmDraft(draft.object_name)));
    const cells = [el('td', '', draft.object_name), el('td', '', bytes(draft.size)), el('td'), el('td')];
    cells[2].append(expires);
    cells[3].append(show, confirm);
    tr.append(...cells);
    return tr;
  });
  $('drafts').tBodies[0].replaceChildren(...rows);
  if (!rows.length && clearStatus) $('drafts-status').textContent = 'No drafts yet.';
  if (listed.truncated) $('drafts-status').textContent = 'Showing the first 1000 drafts.';
}

function askForKey(why) {
  $('key').hidden = false;
  $('key-why').textContent = why;
}

function start() {
  const drop = $('drop');
  const input = $('files');
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = ''; // so that picking the same file again (to resume) fires `change`
    uploadAll(files);
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    uploadAll(e.dataTransfer.files);
  });
  $('refresh').addEventListener('click', () => refresh());
  $('key-save').addEventListener('click', () => {
    sessionStorage.setItem(KEY, $('api-key').value.trim());
    $('api-key').value = '';
    $('key-why').textContent = 'Key set for this tab.';
    refresh();
  });
  if (sessionStorage.getItem(KEY)) {
    $('key').hidden = false;
    $('key-why').textContent = 'Key set for this tab.';
  }
  refresh();
}

start();
