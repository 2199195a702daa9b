// The upload forms (form[data-upload], on /upload and /upload-flist): the file is sent to
// the API route in the form's action with XMLHttpRequest, whose upload events give the
// byte progress, and the session's CSRF token in the X-Flisthub-Csrf header (the hub then
// acts as the logged-in browser: web/src/bridge.rs). An archive's answer is a job, followed
// with flisthub.followJob (jobs.js) to the new flist's page; an flist's answer is the
// published flist, whose page is opened. Every refusal is shown in the hub's own words.
(() => {
  "use strict";
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  const size = (bytes) => {
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit + 1 < UNITS.length) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " B" : value.toFixed(1) + " " + UNITS[unit];
  };

  function wire(form) {
    const part = (selector) => form.querySelector(selector);
    const input = part("input[type=file]");
    const fieldset = part("fieldset");
    const transfer = part("[data-transfer]");
    const bar = part("[data-transfer-progress]");
    const said = part("[data-transfer-message]");
    const error = part("[data-upload-error]");
    const missing = document.querySelector("[data-missing]");
    const panel = document.querySelector("[data-job-panel]");

    const show = (text) => {
      error.textContent = text;
      error.hidden = false;
    };
    const explainMissing = (payload) => {
      if (!missing || !payload || typeof payload.missing !== "number") return;
      missing.querySelector("[data-missing-count]").textContent = String(payload.missing);
      missing.querySelector("[data-missing-checked]").textContent = String(payload.checked);
      const list = missing.querySelector("[data-missing-first]");
      list.replaceChildren();
      for (const key of Array.isArray(payload.first) ? payload.first : []) {
        const item = document.createElement("li");
        item.textContent = String(key);
        list.appendChild(item);
      }
      missing.hidden = false;
    };
    const failed = (status, answer) => {
      fieldset.disabled = false;
      transfer.hidden = true;
      let text;
      if (answer && typeof answer.message === "string") {
        text = answer.message;
      } else if (status === 0) {
        text = "the connection to the hub was lost while sending the file";
      } else if (status === 413) {
        text = "the file is larger than the hub accepts";
      } else {
        text = "the hub answered " + status + " without saying why";
      }
      show(text);
      if (answer) explainMissing(answer.payload);
    };
    const done = (answer) => {
      if (form.dataset.upload === "archive") {
        said.textContent = "Sent: the hub is converting it";
        panel.hidden = false;
        window.flisthub.followJob(String(answer.jobid), panel, {
          onError: () => {
            fieldset.disabled = false;
          },
        });
      } else {
        const name = answer.payload && answer.payload.name;
        said.textContent = "Published";
        window.location.assign(form.dataset.result.split("{name}").join(encodeURIComponent(name)));
      }
    };

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = input.files[0];
      if (!file) return;
      error.hidden = true;
      if (missing) missing.hidden = true;
      const max = Number(form.dataset.max);
      if (max && file.size > max) {
        show("this file is " + size(file.size) + ": the hub takes at most " + size(max));
        return;
      }
      const body = new FormData(form);
      fieldset.disabled = true;
      transfer.hidden = false;
      bar.value = 0;
      said.textContent = "Sending " + size(file.size);
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-Flisthub-Csrf", form.dataset.csrf);
      request.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        bar.value = Math.round((e.loaded * 100) / e.total);
        said.textContent = size(e.loaded) + " of " + size(e.total) + " sent";
      };
      request.upload.onload = () => {
        bar.value = 100;
        said.textContent = "Sent: the hub is checking it";
      };
      request.onload = () => {
        let answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch (_) {
          answer = null;
        }
        if (request.status === 200 && answer) done(answer);
        else failed(request.status, answer);
      };
      request.onerror = () => failed(0, null);
      request.send(body);
    });
  }

  for (const form of document.querySelectorAll("form[data-upload]")) wire(form);
})();
