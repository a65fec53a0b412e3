// Live refresh for the overview: poll the small JSON endpoint and update the rollout facts.
// No inline script (the CSP forbids it); pages work without this file (they are plain HTML).
(function () {
  "use strict";
  var base = document.currentScript ? document.currentScript.src.replace(/\/static\/admin\.js.*$/, "") : "";
  function refresh() {
    fetch(base + "/api/overview", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.rollout) { return; }
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var key = el.getAttribute("data-live");
          if (Object.prototype.hasOwnProperty.call(data.rollout, key)) {
            el.textContent = data.rollout[key];
          }
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }
  setInterval(refresh, 5000);
})();
