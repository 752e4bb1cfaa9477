// The console's service worker: keeps the console's pages and assets so
// that it opens and its forms fill in without a network. Pages are asked of
// the network first and taken from the cache only when it does not answer;
// posts are never cached (the page's script queues them while offline).
const CACHE = 'jejak-console-v1';
const SHELL = ['/console', '/console/terima', '/console/status', '/console/style.css', '/console/app.js'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || !new URL(request.url).pathname.startsWith('/console')) {
    return;
  }
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(request, copy));
        }
        return response;
      })
      .catch(() => caches.match(request, { ignoreSearch: true }).then((hit) => hit || caches.match('/console'))),
  );
});
