// Drag-and-drop upload of many photos: one request per file to the API (the same rules as
// every other client), a few at a time, each with its own progress bar and its own error.
(function () {
  "use strict";
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("photo-input");
  const list = document.getElementById("uploads");
  const productSelect = document.getElementById("upload-product");
  if (!zone || !input || !list) return;
  const url = zone.dataset.uploadUrl;
  const PARALLEL = 3;
  const queue = [];
  let running = 0;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function refreshGrid() {
    const grid = document.getElementById("photo-grid");
    if (grid && window.htmx) window.htmx.trigger(grid, "refresh");
  }

  function row(file) {
    const li = document.createElement("li");
    li.className = "upload";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress for " + file.name);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "Waiting…";
    li.append(name, bar, state);
    list.prepend(li);
    return { li, bar, state };
  }

  function finish(item, ok, message) {
    item.ui.li.classList.add(ok ? "done" : "failed");
    item.ui.state.textContent = message;
    item.ui.bar.value = ok ? 100 : item.ui.bar.value;
    running -= 1;
    if (ok) refreshGrid();
    pump();
  }

  function send(item) {
    running += 1;
    const form = new FormData();
    form.append("file", item.file, item.file.name);
    if (productSelect && productSelect.value) form.append("product", productSelect.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    item.ui.state.textContent = "Uploading…";
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) item.ui.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = function () {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (xhr.status === 201) return finish(item, true, "Uploaded");
      if (xhr.status === 200) return finish(item, true, "Already uploaded (same file)");
      const message = body && body.error ? body.error.message
        : xhr.status === 413 ? "This file is too large for the server." : "Upload failed (" + xhr.status + "). Try again.";
      finish(item, false, message);
    };
    xhr.onerror = function () { finish(item, false, "The connection dropped. Check your network and try again."); };
    xhr.send(form);
  }

  function pump() {
    while (running < PARALLEL && queue.length) send(queue.shift());
  }

  function add(files) {
    for (const file of files) queue.push({ file: file, ui: row(file) });
    pump();
  }

  input.addEventListener("change", function () { add(Array.from(input.files)); input.value = ""; });
  // Files chosen before this script ran (it is deferred) would otherwise be ignored.
  if (input.files && input.files.length) { add(Array.from(input.files)); input.value = ""; }
  zone.dataset.ready = "1";
  // The whole page is a drop target, as merchants expect from the storefront admin.
  document.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  document.addEventListener("dragleave", function (e) { if (e.target === document.documentElement) zone.classList.remove("dragging"); });
  document.addEventListener("drop", function (e) {
    e.preventDefault();
    zone.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) add(Array.from(e.dataTransfer.files));
  });
})();
