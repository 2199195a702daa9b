// flisthub's job follower: follows one of the hub's background jobs (an upload's
// conversion, an image conversion, ...) through its server-sent events at /listen/<id>,
// shows its progress and phases, and on success goes to the page of what it made, on
// failure shows the hub's error in words. Bundled into the page's one script (see
// assets.rs); it does nothing on a page without a job.
//
// Interface (stable):
//
//   flisthub.followJob(id, root, options) -> { close() }
//     id      the job's id: the `jobid` answered by POST /upload, the `id` of /api/v1/jobs.
//     root    an element; the follower fills those of its descendants that are present:
//               [data-job-progress]  a <progress>: its value, 0 to 100
//               [data-job-message]   the current phase, in words
//               [data-job-log]       a list (<ol>/<ul>): one <li> per phase, in order
//               [data-job-state]     "running", "succeeded" or "failed"
//               [data-job-error]     unhidden, with the hub's error message, on failure
//             and sets root.dataset.jobState to the same state.
//     options, all optional:
//       result(info)   the URL to go to on success (info: the hub's `info` object, with
//                      `filename`); default: root's data-job-result with "{name}"
//                      replaced by the encoded filename; nothing (stay) if neither.
//       onUpdate(progress, message), onDone(info), onError(message): called as it goes.
//
//   Declarative use, no script of the page's own (the CSP forbids inline script): every
//   element with data-job="<id>" is followed when the page loads, with its
//   data-job-result as above.
//
// Text is only ever set with textContent: a job's messages carry file names.
(() => {
  "use strict";
  // Consecutive connection errors tolerated before giving up (the browser reconnects
  // between them; a finished job replays its outcome to a new connection).
  const RETRIES = 5;

  function followJob(id, root, options) {
    options = options || {};
    const part = (name) => root.querySelector("[data-job-" + name + "]");
    const progress = part("progress");
    const message = part("message");
    const log = part("log");
    const stateShown = part("state");
    const errorShown = part("error");
    let lastLogged = null;
    let finished = false;
    let errors = 0;

    const setState = (state) => {
      root.dataset.jobState = state;
      if (stateShown) stateShown.textContent = state;
    };
    const say = (text) => {
      if (message) message.textContent = text;
      if (log && text && text !== lastLogged) {
        const item = document.createElement("li");
        item.textContent = text;
        log.appendChild(item);
        lastLogged = text;
      }
    };
    const fail = (text) => {
      finished = true;
      source.close();
      setState("failed");
      if (errorShown) {
        errorShown.textContent = text;
        errorShown.hidden = false;
      }
      if (options.onError) options.onError(text);
    };
    const resultUrl = (info) => {
      if (options.result) return options.result(info);
      const template = root.dataset.jobResult;
      if (!template || !info || typeof info.filename !== "string") return null;
      return template.split("{name}").join(encodeURIComponent(info.filename));
    };

    setState("running");
    const source = new EventSource("/listen/" + encodeURIComponent(id));
    source.onmessage = (event) => {
      errors = 0;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (data.status === "update") {
        const value = Math.max(0, Math.min(100, Number(data.progress) || 0));
        if (progress) progress.value = value;
        say(String(data.message || ""));
        if (options.onUpdate) options.onUpdate(value, String(data.message || ""));
      } else if (data.status === "info") {
        finished = true;
        source.close();
        if (progress) progress.value = 100;
        setState("succeeded");
        if (options.onDone) options.onDone(data.info);
        const url = resultUrl(data.info);
        if (url) window.location.assign(url);
      } else if (data.status === "error") {
        fail(String(data.message || "the job failed"));
      }
    };
    source.onerror = () => {
      if (finished) return;
      // CLOSED: the hub did not answer with events (an unknown or expired job).
      if (source.readyState === EventSource.CLOSED) {
        fail("the hub does not know this job (it may have finished long ago): see your jobs page");
      } else if (++errors > RETRIES) {
        fail("lost the connection to the hub; the job may still be running: see your jobs page");
      }
    };
    return {
      close() {
        finished = true;
        source.close();
      },
    };
  }

  window.flisthub = Object.assign(window.flisthub || {}, { followJob });
  const start = () => {
    for (const root of document.querySelectorAll("[data-job]")) {
      if (root.dataset.job) followJob(root.dataset.job, root);
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
