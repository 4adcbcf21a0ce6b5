// The catalog's upload form, sent with a progress bar: a plain form post shows nothing until
// the last byte has gone, which for many long files is minutes. Without this script the form
// still works; the answer is the upload's page either way.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-upload]");
  const bar = document.getElementById("upload-progress");
  const state = document.getElementById("upload-state");
  if (!form || !bar || !state) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      bar.max = progress.total;
      bar.value = progress.loaded;
      const percent = Math.floor((100 * progress.loaded) / progress.total);
      state.textContent = `Sending: ${percent} % of ${(progress.total / 1048576).toFixed(1)} MiB`;
    });
    request.addEventListener("load", () => window.location.assign(request.responseURL));
    request.addEventListener("error", () => {
      state.textContent = "The upload did not get through (the connection failed): nothing " +
        "was registered. Try again.";
      button.disabled = false;
    });
    bar.hidden = state.hidden = false;
    state.textContent = "Sending…";
    button.disabled = true;
    request.send(new FormData(form));
  });
});
