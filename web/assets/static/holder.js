// The net certificate held by this browser (account page and the offline
// certificate page). The device key is an ECDSA P-256 WebCrypto key created
// non-extractable and kept in IndexedDB: the page can sign with it but no
// script (ours included) can read it out, and it never reaches the server.
// Issuance: the certificate API gives a nonce, the key signs
// "trustid-pop-v1.<nonce>.<JWK thumbprint>" (proof of possession) and only
// the public JWK is sent (certs/device.go). Presentation: the page builds
// the COSE_Sign1 of certs/present.go itself (certificate, time, nonce,
// optional desk challenge and purpose), signs it with the key, encodes it
// as "TID1:" + Base45 (RFC 9285) and draws the QR (vendor/qrcode.js), anew
// every data-refresh seconds. Nothing here needs the network once the
// certificate is stored, so the certificate page works offline (sw.js).
"use strict";
window.TrustIDHolder = (function () {
  const DB = "trustid-holder", STORE = "holder", REC = "current";

  // IndexedDB: one record {key: CryptoKeyPair, cert: Uint8Array, serial,
  // expires_at, name, level, thumbprint, status_index}.
  function idb() {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  async function tx(mode, fn) {
    const db = await idb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode), req = fn(t.objectStore(STORE));
      t.oncomplete = () => { db.close(); resolve(req.result); };
      t.onerror = t.onabort = () => { db.close(); reject(t.error); };
    });
  }
  const load = () => tx("readonly", (s) => s.get(REC));
  const save = (rec) => tx("readwrite", (s) => s.put(rec, REC));
  const forget = () => tx("readwrite", (s) => s.delete(REC));

  // Bytes and text.
  const utf8 = (s) => new TextEncoder().encode(s);
  const b64u = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };

  // CBOR (RFC 8949), the definite-length shortest forms the Go side's
  // core deterministic decoder accepts.
  function head(major, n) {
    const m = major << 5;
    if (n < 24) return Uint8Array.of(m | n);
    if (n < 0x100) return Uint8Array.of(m | 24, n);
    if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 255);
    if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
    const hi = Math.floor(n / 0x100000000), lo = n >>> 0;
    return Uint8Array.of(m | 27, hi >>> 24, (hi >> 16) & 255, (hi >> 8) & 255, hi & 255, lo >>> 24, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255);
  }
  const cbor = {
    uint: (n) => head(0, n),
    int: (n) => (n >= 0 ? head(0, n) : head(1, -1 - n)),
    bytes: (b) => concat([head(2, b.length), b]),
    text: (s) => { const b = utf8(s); return concat([head(3, b.length), b]); },
    array: (items) => concat([head(4, items.length), ...items]),
    // map of small non-negative integer keys in ascending order (the
    // deterministic order for such keys) to encoded values.
    intMap: (entries) => concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [head(0, k), v])]),
  };

  // A decoder for the desk page (presentation time and purpose).
  function decode(buf) {
    let i = 0;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    function len(ai) {
      if (ai < 24) return ai;
      if (ai === 24) return buf[i++];
      if (ai === 25) { const v = dv.getUint16(i); i += 2; return v; }
      if (ai === 26) { const v = dv.getUint32(i); i += 4; return v; }
      if (ai === 27) { const v = dv.getUint32(i) * 0x100000000 + dv.getUint32(i + 4); i += 8; return v; }
      throw new Error("cbor: indefinite or reserved length");
    }
    function item() {
      if (i >= buf.length) throw new Error("cbor: truncated");
      const b = buf[i++], major = b >> 5, n = len(b & 31);
      switch (major) {
        case 0: return n;
        case 1: return -1 - n;
        case 2: { const v = buf.subarray(i, i + n); if (v.length !== n) throw new Error("cbor: truncated"); i += n; return v; }
        case 3: { const v = new TextDecoder().decode(buf.subarray(i, i + n)); i += n; return v; }
        case 4: { const a = []; for (let k = 0; k < n; k++) a.push(item()); return a; }
        case 5: { const m = new Map(); for (let k = 0; k < n; k++) { const key = item(); m.set(key, item()); } return m; }
        case 6: return item(); // tag: the content
        default: if ((b & 31) === 20) return false; if ((b & 31) === 21) return true; return null;
      }
    }
    return item();
  }

  // Base45 (RFC 9285).
  const B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  function base45(b) {
    let s = "";
    for (let k = 0; k + 1 < b.length; k += 2) {
      let n = b[k] * 256 + b[k + 1];
      s += B45[n % 45]; n = Math.floor(n / 45);
      s += B45[n % 45]; s += B45[Math.floor(n / 45)];
    }
    if (b.length % 2) { const n = b[b.length - 1]; s += B45[n % 45] + B45[Math.floor(n / 45)]; }
    return s;
  }
  function unbase45(s) {
    const out = [];
    for (let k = 0; k < s.length; k += 3) {
      const c = [...s.slice(k, k + 3)].map((ch) => { const v = B45.indexOf(ch); if (v < 0) throw new Error("base45"); return v; });
      if (c.length === 3) { const n = c[0] + c[1] * 45 + c[2] * 2025; if (n > 0xffff) throw new Error("base45"); out.push(n >> 8, n & 255); }
      else if (c.length === 2) { const n = c[0] + c[1] * 45; if (n > 0xff) throw new Error("base45"); out.push(n); }
      else throw new Error("base45");
    }
    return Uint8Array.from(out);
  }

  // COSE_Sign1 (RFC 9052) with ES256 and no kid, as certs.sign1 makes
  // for presentations: protected {1: -7}.
  const PROTECTED = cbor.intMap([[1, cbor.int(-7)]]);
  async function sign1(key, payload) {
    const toSign = cbor.array([cbor.text("Signature1"), cbor.bytes(PROTECTED), cbor.bytes(new Uint8Array(0)), cbor.bytes(payload)]);
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, toSign));
    // Tag 18 (0xd2), [protected, {}, payload, signature].
    return concat([Uint8Array.of(0xd2), cbor.array([cbor.bytes(PROTECTED), Uint8Array.of(0xa0), cbor.bytes(payload), cbor.bytes(sig)])]);
  }

  // present signs a presentation of rec's certificate: keys 1 certificate,
  // 2 time, 3 nonce, 4 challenge (if any), 5 purpose (if any).
  async function present(rec, challenge, purpose) {
    const entries = [
      [1, cbor.bytes(rec.cert)],
      [2, cbor.uint(Math.floor(Date.now() / 1000))],
      [3, cbor.bytes(crypto.getRandomValues(new Uint8Array(8)))],
    ];
    if (challenge && challenge.length) entries.push([4, cbor.bytes(challenge)]);
    if (purpose) entries.push([5, cbor.text(purpose)]);
    return "TID1:" + base45(await sign1(rec.key.privateKey, cbor.intMap(entries)));
  }

  // presentedAt reads a QR text's presentation time (Unix seconds) and
  // purpose, for the desk page; null when it cannot be read.
  async function inspect(text) {
    try {
      text = text.trim();
      if (!text.startsWith("TID1:")) return null;
      let raw = unbase45(text.slice(5));
      if (raw[0] === 0x78) { // zlib (certs.EncodePayload compresses when it helps)
        const ds = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate"));
        raw = new Uint8Array(await new Response(ds).arrayBuffer());
        if (raw.length > 4096) return null;
      }
      const outer = decode(raw);
      const p = decode(outer[2]);
      return { time: p.get(2), purpose: p.get(5) || "" };
    } catch (e) { return null; }
  }

  // RFC 7638 thumbprint of a P-256 public JWK.
  async function thumbprint(jwk) {
    const canon = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    return b64u(await crypto.subtle.digest("SHA-256", utf8(canon)));
  }

  // enrol puts a certificate on this device: a new non-extractable key
  // (or, with reuseKey, the device's key of the same citizen, so a renewal
  // supersedes its own certificate), proof of possession over the API's
  // nonce, issue.
  async function enrol(api, name, reuseKey) {
    const post = (path, body) => fetch(api + path, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const old = reuseKey ? await load().catch(() => null) : null;
    const key = old && old.key ? old.key : await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const full = await crypto.subtle.exportKey("jwk", key.publicKey);
    const jwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
    const tp = await thumbprint(jwk);
    let res = await post("/devices/challenge", {});
    if (!res.ok) return { res };
    const nonce = (await res.json()).nonce;
    const proof = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, utf8("trustid-pop-v1." + nonce + "." + tp));
    res = await post("/issue", { device_key: jwk, nonce, proof: b64u(proof), name });
    if (!res.ok) return { res };
    const is = await res.json();
    const rec = { key, cert: unb64u(is.certificate), serial: is.serial, expires_at: is.expires_at, name: is.name, level: is.level, thumbprint: tp, status_index: is.status_index };
    await save(rec);
    return { res, rec };
  }

  return { load, save, forget, present, inspect, enrol, b64u, unb64u };
})();

// The QR block: shows this device's certificate, refreshed every
// data-refresh seconds, on the account page (with set-up and the device
// list) and on the offline certificate page.
(function () {
  const T = window.TrustID, $ = T.$, H = window.TrustIDHolder;
  const box = $("holder");
  if (!box) return;
  const api = box.dataset.certs, refresh = Math.max(5, parseInt(box.dataset.refresh, 10) || 30);
  const offlinePage = !!$("cert").dataset.offline;
  const img = $("qr"), status = $("qr-status");
  let rec = null, left = 0, timer = 0;
  const say = (k, vars) => { status.textContent = k ? T.t(k, vars) : ""; };
  const supported = window.crypto && crypto.subtle && window.indexedDB;

  function draw(text) {
    const q = window.qrcode(0, "M");
    q.addData(text, "Alphanumeric");
    q.make();
    const n = q.getModuleCount(), cell = 4, quiet = 4, size = (n + 2 * quiet) * cell;
    const c = document.createElement("canvas");
    c.width = c.height = size;
    const g = c.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, size, size); g.fillStyle = "#000";
    for (let r = 0; r < n; r++) for (let k = 0; k < n; k++) if (q.isDark(r, k)) g.fillRect((k + quiet) * cell, (r + quiet) * cell, cell, cell);
    img.src = c.toDataURL("image/png");
    img.dataset.payload = text;
    img.dataset.version = String((n - 17) / 4);
    img.hidden = false;
  }

  function challengeBytes() {
    const v = ($("qr-challenge").value || "").trim();
    if (!v) return null;
    try { return H.unb64u(v); } catch (e) { return utf8(v); }
  }
  const utf8 = (s) => new TextEncoder().encode(s);

  async function show() {
    clearInterval(timer);
    if (!rec) { img.hidden = true; $("qr-options").hidden = true; return; }
    if (Date.parse(rec.expires_at) <= Date.now()) { img.hidden = true; say("certExpired"); return; }
    const name = $("holder-name");
    if (name) name.textContent = rec.name || "";
    $("qr-options").hidden = false;
    draw(await H.present(rec, challengeBytes(), $("qr-purpose").value));
    left = refresh;
    tick();
    timer = setInterval(tick, 1000);
  }
  function tick() {
    say("secondsLeft", { n: left });
    $("qr-meter").style.width = Math.max(0, (left / refresh) * 100) + "%";
    if (left-- <= 0) show();
  }
  $("qr-refresh").addEventListener("click", show);
  $("qr-purpose").addEventListener("change", show);
  $("qr-challenge").addEventListener("change", show);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && rec) show(); });

  // Account page: the devices holding the citizen's certificate.
  const list = $("devices"), devStatus = $("dev-status");
  const devSay = (k, vars) => { if (devStatus) devStatus.textContent = k ? T.t(k, vars) : ""; };
  const when = (s) => new Date(s).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  async function devices() {
    let res;
    try { res = await fetch(api + "/devices", { credentials: "same-origin", cache: "no-store" }); } catch (e) { return null; }
    if (!res.ok) return null;
    return (await res.json()).devices || [];
  }
  async function renderDevices(ds) {
    list.replaceChildren();
    const active = ds.filter((d) => d.status === "active");
    if (!active.length) { const li = document.createElement("li"); li.className = "help"; li.textContent = T.t("devNone"); list.append(li); }
    for (const d of active) {
      const li = document.createElement("li");
      li.dataset.serial = d.serial;
      const info = document.createElement("div");
      const nm = document.createElement("strong");
      nm.textContent = (d.name || T.t("devUnnamed")) + (rec && d.key_thumbprint === rec.thumbprint ? " (" + T.t("devThis") + ")" : "");
      const meta = document.createElement("span");
      meta.className = "help";
      meta.textContent = T.t("devIssued", { t: when(d.issued_at) }) + " · " + (d.last_used_at ? T.t("devUsed", { t: when(d.last_used_at) }) : T.t("devNeverUsed"));
      info.append(nm, document.createElement("br"), meta);
      const btn = document.createElement("button");
      btn.type = "button"; btn.className = "secondary small-btn dev-revoke"; btn.textContent = T.t("devRevoke");
      btn.addEventListener("click", () => revoke(d, btn));
      li.append(info, btn);
      list.append(li);
    }
  }
  async function revoke(d, btn) {
    if (!window.confirm(T.t("devRevokeConfirm", { n: d.name || T.t("devUnnamed") }))) return;
    btn.disabled = true;
    let res;
    try {
      res = await fetch(api + "/devices/revoke", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ serial: d.serial }),
      });
    } catch (e) { res = null; }
    if (!res || !res.ok) { btn.disabled = false; return devSay("devRevokeFailed"); }
    devSay("devRevokedOK");
    if (rec && d.key_thumbprint === rec.thumbprint) { await H.forget(); rec = null; show(); say("certRevokedHere"); }
    await sync();
  }

  // sync (account page, online): the device list, and whether this
  // device's certificate is one of the signed-in citizen's, still active.
  let ownKey = false;
  async function sync() {
    const ds = await devices();
    if (!ds) return;
    await renderDevices(ds);
    if (rec) {
      const mine = ds.find((d) => d.key_thumbprint === rec.thumbprint && d.serial === rec.serial);
      ownKey = !!mine;
      if (!mine || mine.status !== "active") {
        // Another account's certificate (not shown to this one; the
        // offline page shows what is stored), or this one revoked.
        rec = null; show();
        say(mine ? "certRevokedHere" : "certOtherAccount");
      }
    }
    $("cert-setup-box").hidden = !!rec;
  }

  async function setup() {
    const btn = $("cert-setup");
    btn.disabled = true;
    say("certSetting");
    try {
      const { res, rec: r } = await H.enrol(api, ($("device-name").value || "").trim().slice(0, 64), ownKey);
      if (!r) {
        const code = await T.errorCode(res);
        return say(code === "stale_authentication" || code === "insufficient_assurance" || code === "not_signed_in" ? "certNeedLogin"
          : code === "too_many_devices" ? "certTooMany" : "certFailed");
      }
      rec = r;
      await show();
      devSay("certIssued");
      await sync();
    } catch (e) {
      say("certFailed");
    } finally {
      btn.disabled = false;
    }
  }

  (async function start() {
    if (!supported) return say("certNoCrypto");
    try { rec = (await H.load()) || null; } catch (e) { rec = null; }
    if (offlinePage) {
      if (!rec) return say("certNoneOffline");
      return show();
    }
    // Account page: the offline page's worker, the list, set-up.
    if ("serviceWorker" in navigator) navigator.serviceWorker.register(T.prefix + "/account/sw.js", { scope: T.prefix + "/account/" }).catch(() => {});
    $("cert-setup").addEventListener("click", setup);
    if (!rec) { say("certNone"); $("cert-setup-box").hidden = false; }
    else await show();
    await sync();
  })();
})();
