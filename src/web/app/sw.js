// parley's service worker, served at /sw.js (a stable path, no-cache) by src/web/build.ts,
// which fills in the two values below: the app shell's URLs and a version made from their
// content hashes. It keeps the shell (the page, its script, style sheet and icons) so the app
// opens while the server is down, and nothing else: /ws, /files, /healthz, /metrics and every
// other request go to the network untouched, never into a cache.
const VERSION = "{{version}}";
const SHELL = JSON.parse("{{shell}}");
const CACHE = `parley-shell-${VERSION}`;

/** Pages (clients) that were given the saved page because the server could not be reached. */
const offline = new Set();

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  // A new build's worker drops the caches of the builds before it.
  event.waitUntil(
    caches.keys().then((keys) =>
      Promise.all(
        keys.filter((k) => k.startsWith("parley-shell-") && k !== CACHE).map((k) =>
          caches.delete(k)
        ),
      )
    ).then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/") {
    // The page: the server's when it answers (so a new build shows at once), else the saved one.
    event.respondWith(
      fetch(request).catch(async () => {
        const saved = await caches.match("/", { cacheName: CACHE });
        if (saved === undefined) throw new TypeError("offline, and no saved page");
        if (event.resultingClientId) offline.add(event.resultingClientId);
        return saved;
      }),
    );
    return;
  }
  if (!SHELL.includes(url.pathname) || url.pathname === "/") return;
  // Hashed files never change: the saved copy is the file.
  event.respondWith(
    caches.match(request, { cacheName: CACHE }).then((saved) => saved ?? fetch(request)),
  );
});

// The page asks whether it is the saved copy (to say "offline: showing the saved app").
self.addEventListener("message", (event) => {
  if (event.data?.type !== "served?" || event.source === null) return;
  const id = event.source.id;
  event.source.postMessage({ type: "served", offline: offline.has(id), version: VERSION });
  offline.delete(id);
});
