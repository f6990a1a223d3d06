// Account page: the live net-certificate QR, refreshed before it expires
// with a visible countdown; revoking a connected app asks the server with
// the CSRF token.
"use strict";
(function () {
  const T = window.TrustID, $ = T.$;
  const img = $("qr");
  if (!img) return;
  let left = 0, total = 1, timer = 0;

  async function load() {
    clearInterval(timer);
    $("qr-status").textContent = "";
    let res;
    try { res = await fetch(T.prefix + "/account/qr", { credentials: "same-origin", cache: "no-store" }); } catch (e) { res = null; }
    if (!res || !res.ok) {
      let code = "";
      try { code = (await res.json()).error; } catch (e) { /* no body */ }
      img.hidden = true;
      $("qr-status").textContent = T.t(code === "fresh_login_required" || code === "login_required" ? "qrNeedLogin" : "qrError");
      return;
    }
    const q = await res.json();
    img.src = q.png;
    img.dataset.payload = q.text;
    img.hidden = false;
    total = left = q.refresh_in;
    tick();
    timer = setInterval(tick, 1000);
  }
  function tick() {
    $("qr-status").textContent = T.t("secondsLeft", { n: left });
    $("qr-meter").style.width = Math.max(0, (left / total) * 100) + "%";
    if (left-- <= 0) load();
  }
  $("qr-refresh").addEventListener("click", load);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
  load();
})();
