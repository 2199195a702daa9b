// The image conversion's job page (/docker-convert/<id>): follows the job with the
// shared follower (jobs.js) and goes to the new flist's page, whose URL the page gives
// (an image job's outcome names its file as `file`, not `filename`). The Cancel button
// goes away once the job has ended.
(() => {
  "use strict";
  for (const root of document.querySelectorAll("[data-convert-job]")) {
    const cancel = root.querySelector("[data-job-cancel]");
    const ended = () => {
      if (cancel) cancel.hidden = true;
    };
    window.flisthub.followJob(root.dataset.convertJob, root, {
      result: () => root.dataset.convertResult || null,
      onDone: ended,
      onError: ended,
    });
  }
})();
