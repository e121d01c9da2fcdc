// Progressive enhancement only: every page works without it. Pages marked data-refresh="N" reload their
// <main> every N seconds (not while a form field has focus); data-countdown shows time left to a run_at.
(function () {
  function countdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round((Number(el.dataset.countdown) - Date.now()) / 1000);
      el.title = el.title || el.textContent;
      el.textContent = left > 0 ? "in " + left + " s" : "due";
    });
  }
  function refresh(main, seconds) {
    setTimeout(function () {
      var busy = document.activeElement && ["INPUT", "SELECT", "TEXTAREA"].indexOf(document.activeElement.tagName) >= 0;
      if (busy) return refresh(main, seconds);
      fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
            if (fresh) { main.innerHTML = fresh.innerHTML; countdowns(); }
          }
          refresh(main, seconds);
        }, function () { refresh(main, seconds); });
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    setInterval(countdowns, 1000);
    var main = document.querySelector("main[data-refresh]");
    if (main) refresh(main, Number(main.dataset.refresh));
  });
})();
