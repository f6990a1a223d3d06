// Face + liveness login (the "face" method of the OIDC provider):
// ID number -> camera and microphone -> a challenge (four digits to read,
// or two or three facial actions to do, one at a time, where no recogniser
// serves the page's language) -> record -> upload the recording (WebM from
// MediaRecorder) -> result, retry with a new challenge.
"use strict";
(function () {
  const T = window.TrustID, $ = T.$;
  const root = $("login");
  const method = root.dataset.face || "face";
  const seconds = parseFloat(root.dataset.seconds || "4");
  const base = T.prefix + "/oauth2/login/";
  let idNumber = "", challengeID = "", stream = null, feedbackTimer = 0, busy = false;
  // The citizen's answer on the face consent screen (issue 20): nothing
  // is sent for face processing without it.
  let faceConsent = false;
  // The action challenge: the actions in order and the recording's pace
  // (a lead-in, then one slot per action; the server checks the order,
  // not the slots).
  let actions = [];
  const leadIn = 1.0, perAction = 2.5;
  const icons = { blink: "\u{1F441}", turn_left: "\u2B05", turn_right: "\u27A1", nod: "\u2B07", open_mouth: "\u{1F62E}" };
  const recordSeconds = () => (actions.length ? leadIn + perAction * actions.length : seconds);
  // A random id this browser keeps, so the server counts failures per
  // device: a stranger's failures never lock this device out.
  const deviceId = (() => {
    try {
      let d = localStorage.getItem("trustid_device");
      if (!d || !/^[A-Za-z0-9_-]{16,64}$/.test(d)) {
        const b = crypto.getRandomValues(new Uint8Array(18));
        d = btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        localStorage.setItem("trustid_device", d);
      }
      return d;
    } catch (e) { return ""; }
  })();

  const status = (msg) => { $("status").textContent = msg; };
  const feedback = (msg, ok) => { $("feedback").textContent = msg; document.querySelector(".outline").classList.toggle("ok", !!ok); };
  const step = (name) => {
    for (const s of ["step-id", "step-consent", "step-noface", "step-camera", "step-result"]) T.show($(s), s === name);
  };

  // Step 1: the ID number (18 characters, the last may be X).
  $("step-id").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("id-number").value.trim().toUpperCase();
    const err = $("id-error");
    if (!/^[0-9]{17}[0-9X]$/.test(v)) {
      err.textContent = T.t("idInvalid"); err.hidden = false;
      $("id-number").setAttribute("aria-invalid", "true"); $("id-number").focus();
      return;
    }
    err.hidden = true; $("id-number").removeAttribute("aria-invalid");
    idNumber = v;
    step("step-consent");
    $("face-agree").focus();
  });

  // The face consent screen: agree goes on to the camera, refuse to the
  // ways in without a face.
  $("face-agree").addEventListener("click", () => {
    faceConsent = true;
    step("step-camera");
    $("allow").focus();
  });
  function noFace(msg) {
    faceConsent = false;
    closeCamera();
    $("noface-why").textContent = msg;
    step("step-noface");
    const pkb = $("noface-passkey");
    (pkb && !pkb.hidden ? pkb : $("noface-back")).focus();
  }
  $("face-refuse").addEventListener("click", () => noFace(T.t("noConsent")));
  $("noface-back").addEventListener("click", () => { step("step-id"); $("id-number").focus(); });

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) throw new Error("noCamera");
    const s = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: true },
    });
    $("preview").srcObject = s;
    await $("preview").play().catch(() => {});
    return s;
  }
  function closeCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
  }

  // Live feedback from simple cues: brightness of the face area and, where
  // the browser has the Shape Detection API, the face box size and place.
  const canvas = document.createElement("canvas");
  canvas.width = 80; canvas.height = 60;
  const detector = ("FaceDetector" in window) ? new window.FaceDetector({ fastMode: true, maxDetectedFaces: 1 }) : null;
  async function checkFrame() {
    const v = $("preview");
    if (!v.videoWidth) return;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, 80, 60);
    const px = ctx.getImageData(20, 10, 40, 40).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    const lum = sum / (px.length / 4);
    if (lum < 45) return feedback(T.t("tooDark"));
    if (lum > 225) return feedback(T.t("tooBright"));
    if (detector) {
      try {
        const faces = await detector.detect(v);
        if (!faces.length) return feedback(T.t("noFace"));
        const b = faces[0].boundingBox, w = b.width / v.videoWidth;
        if (w < 0.22) return feedback(T.t("tooFar"));
        if (w > 0.8) return feedback(T.t("tooClose"));
        const cx = (b.x + b.width / 2) / v.videoWidth;
        if (Math.abs(cx - 0.5) > 0.2) return feedback(T.t("centre"));
        feedback(T.t("faceOK"), true); // a face really is in view
        return;
      } catch (e) { /* detector unavailable on this device: brightness only */ }
    }
    // Without a face detector the page cannot tell that a face is in view:
    // it says only that the light is good (issue 20).
    feedback(T.t("lightOK"));
  }
  function startFeedback() {
    stopFeedback();
    feedbackTimer = setInterval(checkFrame, 300);
  }
  function stopFeedback() { clearInterval(feedbackTimer); }

  async function post(path, body, json) {
    if (faceConsent) {
      if (json) body = Object.assign({ face_consent: true }, body);
      else body.append("face_consent", "yes");
    }
    return fetch(base + method + "/" + path, {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: json ? { "Content-Type": "application/json", "X-CSRF-Token": T.csrf } : { "X-CSRF-Token": T.csrf },
      body: json ? JSON.stringify(body) : body,
    });
  }

  async function begin() {
    $("challenge").hidden = false;
    $("record").hidden = false;
    $("digits").textContent = "····";
    $("start").disabled = true;
    status(T.t("preparing"));
    const body = { id_number: idNumber, lang: document.documentElement.lang || "" };
    if (deviceId) body.device = deviceId;
    const res = await post("begin", body, true);
    if (!res.ok) return fail(res);
    const ch = await res.json();
    challengeID = String(ch.challenge_id || "");
    actions = ch.kind === "actions" && Array.isArray(ch.actions) ? ch.actions.map(String) : [];
    showChallenge(String(ch.digits || ""));
    $("start").disabled = false;
    status(T.t("ready"));
    $("start").focus();
  }

  // showChallenge shows the digits, or the actions with an icon, the
  // instruction in the page's language and in the other one, and a
  // progress bar each.
  function showChallenge(digits) {
    const list = $("actions");
    list.textContent = "";
    T.show($("digits"), !actions.length);
    T.show(list, actions.length > 0);
    $("digits-label").textContent = T.t(actions.length ? "actionsTitle" : "digitsTitle");
    $("challenge-help").textContent = T.t(actions.length ? "actionsHelp" : "digitsHelp");
    if (!actions.length) {
      $("digits").textContent = digits;
      $("digits").setAttribute("aria-label", digits.split("").join(" "));
      return;
    }
    const other = document.documentElement.lang.startsWith("zh") ? "en" : "zh-CN";
    actions.forEach((a, i) => {
      const li = document.createElement("li");
      li.className = "action";
      li.dataset.action = a;
      const icon = document.createElement("span");
      icon.className = "icon"; icon.setAttribute("aria-hidden", "true"); icon.textContent = icons[a] || "?";
      const text = document.createElement("span");
      text.className = "text"; text.textContent = T.t("act." + a);
      const alt = document.createElement("span");
      alt.className = "other"; alt.lang = other; alt.textContent = T.t("actOther." + a);
      const state = document.createElement("span");
      state.className = "state";
      const bar = document.createElement("div");
      bar.className = "bar"; bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0"); bar.setAttribute("aria-valuemax", "100"); bar.setAttribute("aria-valuenow", "0");
      bar.setAttribute("aria-label", (i + 1) + ". " + text.textContent);
      const fill = document.createElement("div");
      fill.className = "fill";
      bar.appendChild(fill);
      li.append(icon, text, alt, state, bar);
      list.appendChild(li);
    });
  }

  // actionProgress lights the action whose slot the recording is in.
  function actionProgress(elapsed) {
    const items = $("actions").children;
    for (let i = 0; i < items.length; i++) {
      const from = leadIn + i * perAction;
      const p = Math.max(0, Math.min(1, (elapsed - from) / perAction));
      const li = items[i], fill = li.querySelector(".fill"), bar = li.querySelector(".bar");
      fill.style.width = Math.round(p * 100) + "%";
      bar.setAttribute("aria-valuenow", String(Math.round(p * 100)));
      const now = p > 0 && p < 1, done = p >= 1;
      if (now && !li.classList.contains("now")) status((i + 1) + ". " + li.querySelector(".text").textContent);
      li.classList.toggle("now", now);
      li.classList.toggle("done", done);
      li.querySelector(".state").textContent = done ? T.t("actDone") : now ? T.t("actNow") : "";
    }
  }

  $("allow").addEventListener("click", async () => {
    try {
      stream = await openCamera();
    } catch (e) {
      feedback(T.t(e && e.name === "NotAllowedError" ? "denied" : "noCamera"));
      return;
    }
    $("allow").hidden = true;
    $("cam-help").hidden = true;
    startFeedback();
    begin().catch(() => showResult(T.t("busy"), false));
  });

  // Record: the camera is opened afresh so the recording starts with the
  // stream (the preview stream may have run for a while).
  $("start").addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    $("start").disabled = true;
    closeCamera();
    try { stream = await openCamera(); } catch (e) { busy = false; return feedback(T.t("denied")); }
    const types = ["video/webm;codecs=vp8,opus", "video/webm", "video/mp4"];
    const type = types.find((t) => MediaRecorder.isTypeSupported(t)) || "";
    const rec = new MediaRecorder(stream, type ? { mimeType: type, videoBitsPerSecond: 1200000 } : undefined);
    const chunks = [];
    rec.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    const done = new Promise((r) => { rec.onstop = r; });
    rec.start(250);
    $("rec-dot").hidden = false;
    $("progress-wrap").hidden = false;
    const recMsg = T.t(actions.length ? "actionsRec" : "recording");
    status(recMsg);
    feedback(recMsg, true);
    const t0 = performance.now();
    const total = recordSeconds();
    const tick = setInterval(() => {
      const elapsed = (performance.now() - t0) / 1000;
      const p = Math.min(100, (elapsed / total) * 100);
      $("progress").style.width = p + "%";
      $("progress").setAttribute("aria-valuenow", String(Math.round(p)));
      if (actions.length) actionProgress(elapsed);
    }, 100);
    await new Promise((r) => setTimeout(r, total * 1000));
    if (actions.length) actionProgress(total);
    rec.stop();
    await done;
    clearInterval(tick);
    $("rec-dot").hidden = true;
    stopFeedback();
    closeCamera();
    const blob = new Blob(chunks, { type: (rec.mimeType || "video/webm").split(";")[0] });
    await upload(blob);
    busy = false;
  });

  async function upload(blob) {
    step("step-result");
    showResult(T.t("uploading"), null);
    const fd = new FormData();
    fd.append("challenge_id", challengeID);
    fd.append("id_number", idNumber);
    if (deviceId) fd.append("device", deviceId);
    fd.append("video", blob, blob.type === "video/mp4" ? "clip.mp4" : "clip.webm");
    let res;
    try { res = await post("finish", fd, false); } catch (e) { return showResult(T.t("busy"), false); }
    return finished(res);
  }

  function finished(res) {
    if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
      showResult(T.t("success"), true);
      window.location.assign(T.prefix + "/oauth2/auth/resume");
      return;
    }
    return fail(res);
  }

  async function fail(res) {
    const code = await T.errorCode(res); // "" for an HTML page
    step("step-result");
    if (code === "login_expired") return showResult(T.t("expired"), false, false);
    if (code === "guardian_required") return noFace(T.t("guardian"));
    if (code === "face_consent_required") return noFace(T.t("noConsent"));
    if (code === "digits_unavailable") return showResult(T.t("digitsUnavailable"), false, false);
    if (res.status === 429 || res.status === 423 || code === "locked_out" || code === "locked") {
      const secs = parseInt(res.headers.get("Retry-After") || "", 10);
      const msg = secs > 0 ? T.t("lockedFor").replace("{n}", String(Math.ceil(secs / 60))) : T.t("locked");
      return showResult(msg, false, false);
    }
    if (res.status === 400) return showResult(T.t("again"), false, true);
    if (res.status === 401 || res.status === 403) return showResult(T.t("failed"), false, true);
    return showResult(T.t("busy"), false, true);
  }

  function showResult(msg, ok, retry) {
    const r = $("result");
    r.textContent = msg;
    r.classList.toggle("ok", ok === true);
    r.classList.toggle("bad", ok === false);
    $("retry").hidden = !retry;
    if (ok !== null) r.focus();
  }

  $("retry").addEventListener("click", async () => {
    $("retry").hidden = true;
    $("result").textContent = "";
    step("step-camera");
    $("progress-wrap").hidden = true;
    $("progress").style.width = "0";
    try { stream = await openCamera(); startFeedback(); } catch (e) { return feedback(T.t("denied")); }
    begin().catch(() => showResult(T.t("busy"), false, true));
  });

  // Passkeys (WebAuthn) for returning citizens, when the browser has them
  // and the provider offers the method.
  const pk = $("passkey");
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const npk = $("noface-passkey");
  if (npk && !(root.dataset.passkey && window.PublicKeyCredential)) npk.hidden = true;
  if (npk) npk.addEventListener("click", () => pk.click());
  if (pk && root.dataset.passkey && window.PublicKeyCredential) {
    pk.hidden = false; $("passkey-or").hidden = false;
    pk.addEventListener("click", async () => {
      const pkBase = base + root.dataset.passkey + "/";
      try {
        const r = await fetch(pkBase + "begin", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": T.csrf }, body: "{}" });
        if (!r.ok) throw new Error("begin");
        const opts = (await r.json()).publicKey;
        opts.challenge = unb64u(opts.challenge);
        (opts.allowCredentials || []).forEach((c) => { c.id = unb64u(c.id); });
        const cred = await navigator.credentials.get({ publicKey: opts });
        const body = JSON.stringify({
          id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
          response: { clientDataJSON: b64u(cred.response.clientDataJSON), authenticatorData: b64u(cred.response.authenticatorData),
            signature: b64u(cred.response.signature), userHandle: cred.response.userHandle ? b64u(cred.response.userHandle) : null },
        });
        const res = await fetch(pkBase + "finish", { method: "POST", credentials: "same-origin", redirect: "manual", headers: { "Content-Type": "application/json", "X-CSRF-Token": T.csrf }, body });
        return finished(res);
      } catch (e) {
        step("step-result");
        showResult(T.t("passkeyFailed"), false, false);
      }
    });
  }
})();
