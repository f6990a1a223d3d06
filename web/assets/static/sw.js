// Service worker of the certificate page: keeps the page shell and its
// scripts so the certificate (in IndexedDB) shows without network. Served
// as {prefix}/account/sw.js, scope {prefix}/account/. The shell holds
// nothing personal. Answers come from the cache at once when present and
// the cache is refreshed from the network behind them (a deploy reaches
// the device on its next visit); with no network the cached copy is it.
"use strict";
const CACHE = "trustid-certificate-v1";
const base = self.location.pathname.replace(/\/account\/sw\.js$/, "");
const SHELL = [
  base + "/account/certificate",
  base + "/assets/app.css",
  base + "/assets/common.js",
  base + "/assets/holder.js",
  base + "/assets/vendor/qrcode.js",
];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys()
    .then((ks) => Promise.all(ks.filter((k) => k.startsWith("trustid-certificate-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const u = new URL(e.request.url);
  if (e.request.method !== "GET" || u.origin !== self.location.origin || !SHELL.includes(u.pathname)) return;
  e.respondWith(caches.open(CACHE).then(async (c) => {
    const cached = await c.match(u.pathname);
    const fresh = fetch(e.request).then((r) => {
      if (r.ok) c.put(u.pathname, r.clone());
      return r;
    });
    if (cached) {
      e.waitUntil(fresh.catch(() => {}));
      return cached;
    }
    return fresh;
  }));
});
