// Shared helpers of the TrustID pages (no third-party code).
"use strict";
window.TrustID = (function () {
  const msgs = JSON.parse(document.body.dataset.msgs || "{}");
  const meta = (n) => (document.querySelector('meta[name="' + n + '"]') || {}).content || "";
  return {
    t: (k, vars) => {
      let s = msgs[k] || k;
      for (const [n, v] of Object.entries(vars || {})) s = s.replace("{" + n + "}", v);
      return s;
    },
    prefix: meta("trustid-prefix"),
    csrf: meta("csrf-token"),
    $: (id) => document.getElementById(id),
    // errorCode reads the machine code of an error answer: the JSON APIs'
    // {"error":{"code":...}} or OAuth's {"error":"..."}; "" for no JSON.
    errorCode: async (res) => {
      try {
        const e = (await res.clone().json()).error;
        return (e && typeof e === "object" ? e.code : e) || "";
      } catch (e) { return ""; }
    },
    // errorText is the error's message for people, else its code.
    errorText: (body) => {
      const e = (body || {}).error;
      return e && typeof e === "object" ? e.message || e.code || "" : body.error_description || e || "";
    },
    show: (el, on) => { el.hidden = !on; },
  };
})();
