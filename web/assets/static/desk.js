// Verifier desk: authenticate the desk (its client credentials), read the QR (camera with BarcodeDetector, an uploaded photo
// decoded by the server, or pasted text), verify it online for the chosen
// purpose, show the released attributes, and run the counter face check.
"use strict";
(function () {
  const T = window.TrustID, $ = T.$;
  const desk = $("desk"), api = desk.dataset.certs;
  const windowS = parseInt(desk.dataset.window, 10) || 60, skewS = parseInt(desk.dataset.skew, 10) || 0;
  let verificationID = "", scanStream = null, challenge = "";

  // A desk code (the verifier's challenge): the holder types it before
  // showing the QR, which then answers this desk only.
  $("challenge-new").addEventListener("click", () => {
    challenge = window.TrustIDHolder.b64u(crypto.getRandomValues(new Uint8Array(6)));
    $("challenge").textContent = challenge;
  });

  // age shows how old the presentation is against the accepted window
  // (read from the QR itself, so a refused code still says why).
  async function age(payload) {
    const el = $("age");
    el.textContent = "";
    el.classList.remove("bad");
    const p = window.TrustIDHolder ? await window.TrustIDHolder.inspect(payload) : null;
    if (!p || typeof p.time !== "number") return;
    const n = Math.round(Date.now() / 1000 - p.time);
    const old = n > windowS + skewS;
    el.textContent = T.t(old ? "presentedTooOld" : "presentedAgo", { n: Math.max(0, n), w: windowS });
    el.classList.toggle("bad", old);
  }

  const verdict = (msg, ok) => {
    const v = $("verdict");
    v.textContent = msg;
    v.classList.toggle("ok", ok === true);
    v.classList.toggle("bad", ok === false);
  };

  // The certificate API authenticates the desk with its client
  // credentials (HTTP Basic, as at the token endpoint); they stay in this
  // page's memory only.
  function auth() {
    const id = $("client-id").value.trim(), secret = $("client-secret").value;
    if (!id || !secret) throw new Error("credentials");
    return "Basic " + btoa(encodeURIComponent(id) + ":" + encodeURIComponent(secret));
  }

  // Once the desk's credentials are in, offer only the purposes its role
  // may state (issue 20), and choose the purpose when there is one.
  async function loadPurposes() {
    let authz;
    try { authz = auth(); } catch (e) { return; }
    let res;
    try { res = await fetch(api + "/purposes", { credentials: "omit", headers: { Authorization: authz } }); } catch (e) { return; }
    if (!res.ok) return;
    const body = await res.json();
    const allowed = new Set(body.purposes || []);
    const sel = $("purpose");
    for (const g of sel.querySelectorAll("optgroup")) {
      let any = false;
      for (const o of g.querySelectorAll("option")) { o.hidden = o.disabled = !allowed.has(o.value); any = any || allowed.has(o.value); }
      g.hidden = !any;
    }
    if (allowed.size === 1) sel.value = [...allowed][0];
    else if (sel.value && !allowed.has(sel.value)) sel.value = "";
  }
  $("client-id").addEventListener("change", loadPurposes);
  $("client-secret").addEventListener("change", loadPurposes);

  // Camera scanning where the browser can detect QR codes itself.
  if ("BarcodeDetector" in window) {
    $("scan").hidden = false;
    $("scan").addEventListener("click", async () => {
      const det = new window.BarcodeDetector({ formats: ["qr_code"] });
      try {
        scanStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch (e) { return verdict(T.t("noCamera"), false); }
      $("scan-stage").hidden = false;
      $("scan-video").srcObject = scanStream;
      const loop = async () => {
        if (!scanStream) return;
        try {
          const codes = await det.detect($("scan-video"));
          if (codes.length) {
            $("qr-text").value = codes[0].rawValue;
            stopScan();
            return verify();
          }
        } catch (e) { /* frame not ready */ }
        setTimeout(loop, 200);
      };
      loop();
    });
  }
  function stopScan() {
    if (scanStream) scanStream.getTracks().forEach((t) => t.stop());
    scanStream = null;
    $("scan-stage").hidden = true;
  }

  $("qr-file").addEventListener("change", async () => {
    const f = $("qr-file").files[0];
    if (!f) return;
    verdict(T.t("decoding"));
    const fd = new FormData();
    fd.append("image", f);
    const res = await fetch(T.prefix + "/desk/decode", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": T.csrf }, body: fd });
    if (!res.ok) return verdict(T.t("noCode"), false);
    $("qr-text").value = (await res.json()).text;
    verify();
  });

  $("desk-form").addEventListener("submit", (e) => { e.preventDefault(); verify(); });

  async function verify() {
    const payload = $("qr-text").value.trim();
    if (!payload) return;
    if (!$("purpose").value) { $("purpose").focus(); return verdict(T.t("choosePurpose"), false); }
    verdict(T.t("verifying"));
    $("attrs").textContent = "";
    $("face").hidden = true;
    await age(payload);
    let authz;
    try { authz = auth(); } catch (e) { return verdict(T.t("tokenError"), false); }
    const res = await fetch(api + "/verify", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", Authorization: authz },
      body: JSON.stringify(Object.assign({ payload, purpose: $("purpose").value }, challenge ? { challenge } : {})),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      if (res.status === 401) return verdict(T.t("tokenError"), false);
      return verdict(T.t("refused") + ": " + (T.errorText(body) || res.status), false);
    }
    verdict(T.t("verified"), true);
    const dl = $("attrs");
    const add = (k, v) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v;
      dl.append(dt, dd);
    };
    for (const [k, v] of Object.entries(body.attributes || {})) add(T.t("attr." + k), v);
    add(T.t("holder"), body.holder);
    // Result only (issue 20): the holder has not allowed this desk to see
    // these; they can allow it on their account page, then show a new code.
    if ((body.withheld || []).length) {
      add(T.t("withheld"), body.withheld.map((k) => T.t("attr." + k)).join(", "));
      const help = document.createElement("dd");
      help.className = "wide help";
      help.textContent = T.t("withheldHelp");
      dl.append(help);
    }
    verificationID = body.verification_id;
    $("face").hidden = !body.face_check;
  }

  // Counter face check: one photo from the desk camera.
  $("face-take").addEventListener("click", async () => {
    let s;
    try { s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } } }); } catch (e) { return ($("face-result").textContent = T.t("noCamera")); }
    const v = document.createElement("video");
    v.muted = true; v.playsInline = true; v.srcObject = s;
    await v.play();
    await new Promise((r) => setTimeout(r, 500));
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0);
    s.getTracks().forEach((t) => t.stop());
    const jpeg = c.toDataURL("image/jpeg", 0.9).split(",")[1];
    const res = await fetch(api + "/face-check", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", Authorization: auth() },
      body: JSON.stringify({ verification_id: verificationID, photo: jpeg }),
    });
    const body = await res.json().catch(() => ({}));
    const r = $("face-result");
    r.textContent = res.ok ? T.t(body.match ? "match" : "noMatch") : T.t("refused");
    r.classList.toggle("ok", res.ok && body.match);
    r.classList.toggle("bad", !(res.ok && body.match));
  });
})();
