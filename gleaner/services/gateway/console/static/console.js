// Gleaner console: the element #live[data-live] is fetched again and replaced while the page is open, on each
// event of the stream named by data-events when there is one, else every few seconds. No inline script anywhere
// (the Content-Security-Policy forbids it): this file is all the console runs.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var EVENTS = [
    "job.submitted", "job.started", "job.retrying", "job.succeeded", "job.partial", "job.failed", "job.cancelled",
    "job.dead_lettered", "schedule.fired", "schedule.skipped", "resync",
  ];
  var live = document.getElementById("live");
  if (!live || !live.dataset.live) {
    return;
  }
  var url = live.dataset.live;
  var busy = false;
  var again = false;

  function finished() {
    return live.querySelector("[data-final]") !== null;
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || response.status === 401) {
          window.location.reload(); // signed out (expired, or the key was revoked)
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html; // server-rendered and escaped, from this origin
          live.dispatchEvent(new CustomEvent("console:updated"));
        }
      })
      .catch(function () {
        // the next tick or event tries again
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function tick() {
    if (!document.hidden && !finished()) {
      refresh();
    }
  }

  var stream = live.dataset.events;
  if (stream && window.EventSource) {
    // each event only says that something changed: the page fetches its part again (a burst of events is one
    // fetch, plus one more if events came while it ran)
    var source = new EventSource(stream);
    EVENTS.forEach(function (name) {
      source.addEventListener(name, tick);
    });
    source.onmessage = tick;
    // a stream that cannot stay open (a proxy that buffers) falls back to polling
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        window.setInterval(tick, POLL_MS);
      }
    };
  } else {
    window.setInterval(tick, POLL_MS);
  }
  document.addEventListener("visibilitychange", tick);
})();
