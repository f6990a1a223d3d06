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
    show: (el, on) => { el.hidden = !on; },
  };
})();
