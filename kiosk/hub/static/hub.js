// The staff page's only script: live list over server-sent events, the
// alert sound, waiting times, and the print button. No build step.
"use strict";

(function () {
  var live = document.getElementById("live");
  var printButton = document.getElementById("print-now");
  if (printButton) {
    printButton.addEventListener("click", function () { window.print(); });
  }
  if (!live) { return; }

  var connection = document.getElementById("connection");
  var soundButton = document.getElementById("sound-on");
  var chime = document.getElementById("chime");
  var known = null;          // alert ids already announced
  var source = null;
  var REPEAT_MS = 20000;     // ring again while an alert stays open
  var lastRing = 0;
  var soundWorks = false;

  function alertIds() {
    var box = live.querySelector("[data-alert-ids]");
    var text = box ? box.getAttribute("data-alert-ids") : "";
    return text ? text.split(" ") : [];
  }

  function ring() {
    lastRing = Date.now();
    chime.currentTime = 0;
    var played = chime.play();
    if (played && played.catch) {
      // Browsers refuse sound before the first click on the page: offer one.
      played.then(function () {
        soundWorks = true;
        soundButton.hidden = true;
        document.body.dataset.sound = "played";
      }, function (error) {
        // An interrupted replay is not a refusal; only a refusal needs the click.
        if (!soundWorks && error && error.name === "NotAllowedError") { soundButton.hidden = false; }
      });
    }
  }

  soundButton.addEventListener("click", function () {
    soundButton.hidden = true;
    if (alertIds().length) { ring(); } else { chime.play().then(function () { chime.pause(); }, function () {}); }
  });

  function announce() {
    var ids = alertIds();
    var fresh = ids.filter(function (id) { return !known || known.indexOf(id) < 0; });
    known = ids;
    if (fresh.length) { ring(); }
  }

  function setStatus(text, ok) {
    connection.textContent = text;
    connection.className = "connection " + (ok ? "ok" : "down");
  }

  function connect() {
    source = new EventSource(live.getAttribute("data-events"));
    source.addEventListener("open", function () { setStatus("● Live", true); });
    source.addEventListener("update", function (event) {
      live.innerHTML = event.data;
      setStatus("● Live", true);
      announce();
    });
    source.addEventListener("ended", function (event) {
      source.close();
      window.location.href = event.data + "?next=/";
    });
    source.addEventListener("error", function () {
      setStatus("○ Reconnecting to the hub…", false);
      if (source.readyState === EventSource.CLOSED) {
        // The hub answered with an error (restarting, or the session is
        // over): EventSource gives up then, so start again ourselves.
        setTimeout(function () {
          fetch("/whoami", { credentials: "same-origin", cache: "no-store" }).then(function (response) {
            if (response.status === 401) { window.location.href = "/login?next=/"; }
            else { connect(); }
          }, connect);
        }, 1000);
      }
    });
  }

  function tick() {
    var now = Date.now();
    live.querySelectorAll(".ago[data-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      if (isNaN(since)) { return; }
      var minutes = Math.max(0, Math.floor((now - since) / 60000));
      el.textContent = minutes < 60 ? minutes + " min" : Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
    });
    if (alertIds().length && now - lastRing > REPEAT_MS) { ring(); }
  }

  announce();
  connect();
  setInterval(tick, 5000);
})();
