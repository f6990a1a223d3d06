// Account page: adding a passkey (WebAuthn registration with
// authn/passkey's endpoints) and removing one (with the CSRF token); sign-in
// requests from desks. The net certificate is holder.js.
"use strict";
// Passkeys: "Add a passkey" (only where the browser has WebAuthn) and
// "Remove" per passkey without leaving the page.
(function () {
  const T = window.TrustID, $ = T.$;
  const status = $("pk-status");
  if (!status) return;
  const say = (k) => { status.textContent = T.t(k); };
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const errCode = T.errorCode;

  const box = $("pk-add-box");
  if (box && window.PublicKeyCredential && navigator.credentials) {
    box.hidden = false;
    const btn = $("pk-add");
    const base = box.dataset.register;
    const post = (path, body) => fetch(base + path, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": T.csrf }, body: body,
    });
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      say("pkCreating");
      try {
        const res = await post("/register/begin", "{}");
        if (!res.ok) {
          const code = await errCode(res);
          return say(code === "login_required" ? "pkNeedLogin" : res.status === 404 ? "pkUnavailable" : "pkFailed");
        }
        const opts = (await res.json()).publicKey;
        opts.challenge = unb64u(opts.challenge);
        opts.user.id = unb64u(opts.user.id);
        (opts.excludeCredentials || []).forEach((c) => { c.id = unb64u(c.id); });
        let cred;
        try {
          cred = await navigator.credentials.create({ publicKey: opts });
        } catch (e) {
          return say(e && e.name === "InvalidStateError" ? "pkExists" : "pkCancelled");
        }
        if (!cred) return say("pkCancelled");
        const r = cred.response;
        const body = JSON.stringify({
          id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: b64u(r.clientDataJSON), attestationObject: b64u(r.attestationObject),
            transports: typeof r.getTransports === "function" ? r.getTransports() : [],
          },
          clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
          authenticatorAttachment: cred.authenticatorAttachment || undefined,
        });
        const name = ($("pk-name").value || "").trim().slice(0, 64);
        const fin = await post("/register/finish" + (name ? "?name=" + encodeURIComponent(name) : ""), body);
        if (fin.status === 201) {
          say("pkAdded");
          setTimeout(() => location.reload(), 1200);
          return;
        }
        const code = await errCode(fin);
        say(code === "already_registered" ? "pkExists" : code === "login_required" ? "pkNeedLogin" : "pkFailed");
      } catch (e) {
        say("pkFailed");
      } finally {
        btn.disabled = false;
      }
    });
  }

  document.querySelectorAll("form.pk-remove").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector("button");
      btn.disabled = true;
      say("pkRemoving");
      try {
        const res = await fetch(form.action, {
          method: "POST", credentials: "same-origin", cache: "no-store",
          headers: { "X-CSRF-Token": T.csrf }, body: new URLSearchParams(new FormData(form)),
        });
        if (res.ok) {
          form.closest("li").remove();
          say("pkRemoved");
          return;
        }
        say("pkRemoveFailed");
      } catch (e) {
        say("pkRemoveFailed");
      }
      btn.disabled = false;
    });
  });
})();

// Sign-in requests (OpenID CIBA): a desk asks for the citizen's login; the
// list refreshes every 5 s while the page is visible, and each request can
// be approved or denied (the provider checks the session and its assurance).
(function () {
  const T = window.TrustID, $ = T.$;
  const list = $("requests"), status = $("req-status");
  if (!list) return;
  const say = (k) => { status.textContent = k ? T.t(k) : ""; };
  async function load() {
    if (document.hidden) return;
    let res;
    try { res = await fetch(T.prefix + "/oauth2/bc/pending", { credentials: "same-origin", cache: "no-store" }); } catch (e) { return; }
    if (!res.ok) return;
    const items = (await res.json()).pending || [];
    list.replaceChildren();
    if (!items.length) { const li = document.createElement("li"); li.className = "help"; li.textContent = T.t("reqNone"); list.append(li); return; }
    for (const q of items) {
      const li = document.createElement("li");
      li.dataset.id = q.id;
      const info = document.createElement("div");
      const who = document.createElement("strong"); who.textContent = q.client;
      const code = document.createElement("span"); code.className = "binding"; code.textContent = q.binding_message || "";
      const scopes = document.createElement("span"); scopes.className = "help"; scopes.textContent = (q.scopes || []).join(" ");
      info.append(who, document.createElement("br"), code, document.createElement("br"), scopes);
      const yes = document.createElement("button"); yes.type = "button"; yes.className = "primary small-btn req-approve"; yes.textContent = T.t("reqApprove");
      const no = document.createElement("button"); no.type = "button"; no.className = "secondary small-btn req-deny"; no.textContent = T.t("reqDeny");
      yes.addEventListener("click", () => decide(q.id, "approve"));
      no.addEventListener("click", () => decide(q.id, "deny"));
      li.append(info, yes, no);
      list.append(li);
    }
  }
  async function decide(id, decision) {
    say("");
    let res;
    try {
      res = await fetch(T.prefix + "/oauth2/bc/decision", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ id: id, decision: decision }),
      });
    } catch (e) { res = null; }
    const code = res && !res.ok ? await T.errorCode(res) : "";
    if (res && res.ok) say(decision === "approve" ? "reqApproved" : "reqDenied");
    else say(code === "fresh_login_required" ? "reqFresh" : code === "login_required" ? "reqStronger" : "reqError");
    load();
  }
  setInterval(load, 5000);
  document.addEventListener("visibilitychange", load);
  load();
})();
