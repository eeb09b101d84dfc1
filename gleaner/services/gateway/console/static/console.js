// Gleaner console: the element #live[data-live] is fetched again and replaced while the page is open, on each
// event of the stream named by data-events when there is one, else every few seconds. No inline script anywhere
// (the Content-Security-Policy forbids it): this file is all the console runs.
(function () {
  "use strict";
  var POLL_MS = 2000;
  // with a stream: what no event announces (workers, the scheduler's tick) is fetched this often anyway
  var SLOW_POLL_MS = 15000;
  // a busy stream refreshes the page at most this often
  var MIN_GAP_MS = 1000;
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
  var last = 0;
  var timer = null;

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
    if (document.hidden || finished() || timer !== null) {
      return;
    }
    var wait = last + MIN_GAP_MS - Date.now();
    timer = window.setTimeout(function () {
      timer = null;
      last = Date.now();
      refresh();
    }, Math.max(0, wait));
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
    source.onopen = tick; // what changed while the stream was (re)connecting
    // a stream refused (signed out) or that cannot stay open (a proxy that buffers) falls back to polling,
    // which notices a sign-out and goes to the sign-in page
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        window.setInterval(tick, POLL_MS);
      }
    };
    window.setInterval(tick, SLOW_POLL_MS);
  } else {
    window.setInterval(tick, POLL_MS);
  }
  document.addEventListener("visibilitychange", tick);
})();
