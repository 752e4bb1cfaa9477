// The console in the browser: the service worker, the offline queue of
// captures, and label scanning with the camera where BarcodeDetector exists.
'use strict';

const QUEUE = 'jejak-console-queue';

function load() {
  try { return JSON.parse(localStorage.getItem(QUEUE) || '[]'); } catch (_) { return []; }
}

function save(items) {
  localStorage.setItem(QUEUE, JSON.stringify(items));
  show(items);
}

function show(items) {
  const box = document.getElementById('pending');
  const list = document.getElementById('pending-list');
  if (!box || !list) return;
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement('li');
    li.textContent = item.label + (item.refused ? ' — ' + item.refused : '');
    li.dataset.commandId = item.id;
    if (item.refused) li.className = 'refused';
    list.appendChild(li);
  }
  box.hidden = items.length === 0;
}

// Sends every queued capture once, in order. A command id makes a retry
// safe: one already recorded comes back as a replay, never twice; one
// recorded and voided since comes back naming its void, and stays listed.
let flushing = false;
async function flush() {
  if (flushing || !navigator.onLine) return;
  flushing = true;
  try {
    let items = load();
    for (const item of items.filter((i) => !i.refused)) {
      let reply;
      try {
        reply = await fetch(item.action, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
          body: item.body,
        });
      } catch (_) {
        break; // still offline
      }
      const body = await reply.json().catch(() => ({}));
      items = load();
      const at = items.findIndex((i) => i.id === item.id);
      if (at < 0) continue;
      if (reply.ok && body.recorded && body.voidedBy) {
        // Recorded before (its answer lost) and voided since: it does not
        // stand, and sending it again changes nothing; the operator is told.
        items[at].refused = body.message || ('voided by ' + body.voidedBy);
      } else if (reply.ok && body.recorded) {
        items.splice(at, 1);
      } else if (reply.status === 422 || reply.status === 403) {
        items[at].refused = body.message || ('HTTP ' + reply.status);
      } else {
        break;
      }
      save(items);
    }
  } finally {
    flushing = false;
  }
}

function newId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return 'c-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function queueForm(form) {
  const data = new URLSearchParams(new FormData(form));
  // Each capture made offline is a command of its own.
  const id = newId();
  data.set('command_id', id);
  const label = (form.querySelector('h1') || document.querySelector('h1') || {}).textContent || form.action;
  const items = load();
  items.push({ id, action: form.action, body: data.toString(), label: label + ' ' + (data.get('lot_id') || '') });
  save(items);
  form.reset();
  const idField = form.querySelector('input[name=command_id]');
  if (idField) idField.value = newId();
}

function offlineForms() {
  for (const form of document.querySelectorAll('form[data-offline]')) {
    form.addEventListener('submit', (event) => {
      if (!navigator.onLine) {
        event.preventDefault();
        queueForm(form);
      }
    });
  }
}

async function scanInto(input, submit) {
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices) return;
  const detector = new window.BarcodeDetector({ formats: ['qr_code', 'data_matrix'] });
  const video = document.createElement('video');
  video.className = 'scanner';
  video.setAttribute('playsinline', '');
  input.insertAdjacentElement('afterend', video);
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  video.srcObject = stream;
  await video.play();
  const stop = () => { stream.getTracks().forEach((t) => t.stop()); video.remove(); };
  const tick = async () => {
    const codes = await detector.detect(video).catch(() => []);
    if (codes.length > 0) {
      input.value = codes[0].rawValue;
      stop();
      if (submit) input.form.requestSubmit();
      return;
    }
    requestAnimationFrame(tick);
  };
  tick();
}

function scanners() {
  if (!('BarcodeDetector' in window)) return;
  for (const [button, input, submit] of [['scan', 'q', true], ['scan-token', 'token', false]]) {
    const b = document.getElementById(button);
    const i = document.getElementById(input);
    if (b && i) {
      b.hidden = false;
      b.addEventListener('click', () => scanInto(i, submit));
    }
  }
}

// A document's photo or scan is read into the form (base64): the server
// records its blake3 fingerprint with the receipt.
function documentFiles() {
  for (const input of document.querySelectorAll('input.document-file')) {
    input.addEventListener('change', () => {
      const f = input.files && input.files[0];
      const into = document.getElementById(input.dataset.into);
      if (!f || !into) return;
      f.arrayBuffer().then((b) => {
        let s = '';
        const bytes = new Uint8Array(b);
        for (let i = 0; i < bytes.length; i += 0x8000) {
          s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        into.value = btoa(s);
      });
    });
  }
}

// A chosen CSV file is read into the form's text box.
function csvUpload() {
  const file = document.getElementById('csv-file');
  const text = document.getElementById('csv');
  if (!file || !text) return;
  file.addEventListener('change', () => {
    const f = file.files && file.files[0];
    if (f) f.text().then((t) => { text.value = t; });
  });
}

document.addEventListener('DOMContentLoaded', () => {
  csvUpload();
  documentFiles();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/console/sw.js', { scope: '/console' }).catch(() => {});
  }
  offlineForms();
  scanners();
  show(load());
  flush();
});
window.addEventListener('online', flush);
