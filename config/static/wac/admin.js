/*
 * Loaded on every admin page after htmx. htmx requests are POSTs through Django's CSRF
 * check like any form: send the page's token as the X-CSRFToken header (the token sits
 * in a <meta> tag because the admin's <body> cannot carry hx-headers without
 * overriding all of admin/base.html).
 */
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) {
    event.detail.headers["X-CSRFToken"] = meta.content;
  }
});

/*
 * The campaign page's "Pause updates" button: the polled panel's hx-trigger checks
 * window.wacUpdatesPaused before each poll.
 */
window.wacUpdatesPaused = false;
document.addEventListener("click", function (event) {
  var button = event.target.closest("#wac-live-toggle");
  if (!button) {
    return;
  }
  window.wacUpdatesPaused = !window.wacUpdatesPaused;
  button.setAttribute("aria-pressed", window.wacUpdatesPaused ? "true" : "false");
  button.textContent = window.wacUpdatesPaused ? "Resume updates" : "Pause updates";
  var note = document.getElementById("wac-live-note");
  if (note) {
    note.textContent = window.wacUpdatesPaused
      ? "Updates paused: the figures below are not changing."
      : "Updates every 3 seconds.";
  }
});

/* A finished campaign answers 286 (htmx stops polling): say so instead of the toggle. */
document.addEventListener("htmx:afterRequest", function (event) {
  if (event.detail.xhr && event.detail.xhr.status === 286) {
    var control = document.querySelector(".wac-live-control");
    if (control) {
      control.innerHTML = '<span class="wac-help">The campaign has finished: these are its final figures.</span>';
    }
  }
});
