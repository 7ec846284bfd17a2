// The touch-up brush: paint the lock mask over the photo, undo/redo, save as a new cutout
// revision through the API (the same endpoint any client uses). Saving queues a touch-up job;
// its progress line (#touch-up-status, an htmx poll) replaces the cutout panel once it is done.
(function () {
  "use strict";
  const OVERLAY = "rgba(45, 91, 209, 0.5)";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function init(root) {
    if (!root || root.dataset.ready) return;
    root.dataset.ready = "1";
    const width = Number(root.dataset.width);
    const height = Number(root.dataset.height);
    const view = root.querySelector("#mask-canvas");
    const viewCtx = view.getContext("2d");
    // The mask itself: opaque white = product, transparent = background.
    const mask = document.createElement("canvas");
    mask.width = width;
    mask.height = height;
    const maskCtx = mask.getContext("2d", { willReadFrequently: true });
    const status = root.querySelector("#editor-status");
    const sizeInput = root.querySelector("#brush-size");
    const sizeOut = root.querySelector("#brush-size-value");
    const undoBtn = root.querySelector("#undo");
    const redoBtn = root.querySelector("#redo");
    const saveBtn = root.querySelector("#save-mask");
    const resetBtn = root.querySelector("#reset-auto");
    let base = null; // ImageData of the revision being edited
    const strokes = [];
    const undone = [];
    let current = null;
    let saving = false;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error", Boolean(isError));
    }

    function render() {
      viewCtx.clearRect(0, 0, width, height);
      viewCtx.globalCompositeOperation = "source-over";
      viewCtx.drawImage(mask, 0, 0);
      viewCtx.globalCompositeOperation = "source-in";
      viewCtx.fillStyle = OVERLAY;
      viewCtx.fillRect(0, 0, width, height);
      viewCtx.globalCompositeOperation = "source-over";
      undoBtn.disabled = strokes.length === 0;
      redoBtn.disabled = undone.length === 0;
      saveBtn.disabled = strokes.length === 0 || saving || touchUpRunning();
    }

    // A touch-up of this photo is queued or running (also after a reload): one at a time.
    function touchUpRunning() {
      const line = root.querySelector("#touch-up-status");
      return Boolean(line && line.dataset.state === "active");
    }

    function paint(stroke, from, to) {
      maskCtx.globalCompositeOperation = stroke.mode === "add" ? "source-over" : "destination-out";
      maskCtx.strokeStyle = "#fff";
      maskCtx.fillStyle = "#fff";
      maskCtx.lineWidth = stroke.size;
      maskCtx.lineCap = "round";
      maskCtx.lineJoin = "round";
      maskCtx.beginPath();
      maskCtx.moveTo(from[0], from[1]);
      maskCtx.lineTo(to[0], to[1]);
      maskCtx.stroke();
      maskCtx.globalCompositeOperation = "source-over";
    }

    function replay() {
      maskCtx.putImageData(base, 0, 0);
      for (const stroke of strokes) {
        for (let i = 0; i < stroke.points.length; i++) paint(stroke, stroke.points[Math.max(0, i - 1)], stroke.points[i]);
      }
      render();
    }

    function toImage(event) {
      const rect = view.getBoundingClientRect();
      return [((event.clientX - rect.left) / rect.width) * width, ((event.clientY - rect.top) / rect.height) * height];
    }

    view.addEventListener("pointerdown", function (event) {
      if (!base) return;
      view.setPointerCapture(event.pointerId);
      const mode = root.querySelector("input[name=brush-mode]:checked").value;
      current = { mode: mode, size: Number(sizeInput.value), points: [toImage(event)] };
      paint(current, current.points[0], current.points[0]);
      render();
    });
    view.addEventListener("pointermove", function (event) {
      if (!current) return;
      const point = toImage(event);
      paint(current, current.points[current.points.length - 1], point);
      current.points.push(point);
      render();
    });
    function endStroke() {
      if (!current) return;
      strokes.push(current);
      undone.length = 0;
      current = null;
      render();
      say("Unsaved changes: save them as a new revision.");
    }
    view.addEventListener("pointerup", endStroke);
    view.addEventListener("pointercancel", endStroke);

    sizeInput.addEventListener("input", function () { sizeOut.textContent = sizeInput.value; });
    undoBtn.addEventListener("click", function () { if (strokes.length) { undone.push(strokes.pop()); replay(); } });
    redoBtn.addEventListener("click", function () { if (undone.length) { strokes.push(undone.pop()); replay(); } });
    document.addEventListener("keydown", function (event) {
      if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
      event.preventDefault();
      (event.shiftKey ? redoBtn : undoBtn).click();
    });

    function reloadPanel() {
      const panel = document.getElementById("cutout-panel");
      if (window.htmx && panel) {
        window.htmx.ajax("GET", window.location.pathname + "cutout/", { target: panel, swap: "outerHTML" });
      } else {
        window.location.reload();
      }
    }

    function post(url, body, headers) {
      return fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: Object.assign({ "X-CSRFToken": csrfToken(), Accept: "application/json" }, headers || {}),
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      });
    }

    function followTouchUp() {
      const line = root.querySelector("#touch-up-status");
      if (window.htmx && line) {
        window.htmx.ajax("GET", root.dataset.touchUpUrl, { target: line, swap: "outerHTML" });
      } else {
        window.location.reload();
      }
    }

    // The progress line was swapped: when the job failed, the strokes are still here to try again.
    root.addEventListener("htmx:afterSettle", function (event) {
      if (event.target.id !== "touch-up-status") return;
      saving = false; // the job's own line speaks for it from here on
      say("");
      render();
    });

    function saveFailed(text) {
      saving = false;
      say(text, true);
      render();
    }

    saveBtn.addEventListener("click", function () {
      saving = true;
      render();
      say("Sending your mask…");
      const out = document.createElement("canvas");
      out.width = width;
      out.height = height;
      const ctx = out.getContext("2d");
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, width, height);
      ctx.drawImage(mask, 0, 0);
      out.toBlob(function (blob) {
        const form = new FormData();
        form.append("photo", root.dataset.photoId);
        form.append("base", root.dataset.cutoutId);
        form.append("mask", blob, "mask.png");
        post(root.dataset.saveUrl, form).then(function (result) {
          if (!result.ok) { saveFailed(result.data.error ? result.data.error.message : "Saving failed. Try again."); return; }
          say("Mask received; the new revision is being made.");
          followTouchUp();
        }, function () { saveFailed("The connection dropped; your changes are still here. Try again."); });
      }, "image/png");
    });

    resetBtn.addEventListener("click", function () {
      if (strokes.length && !window.confirm("Discard your unsaved brush strokes and go back to the automatic cutout?")) return;
      say("Resetting…");
      post(root.dataset.resetUrl, JSON.stringify({ photo: Number(root.dataset.photoId) }), { "Content-Type": "application/json" }).then(function (result) {
        if (!result.ok) { say(result.data.error ? result.data.error.message : "Reset failed. Try again.", true); return; }
        say("Back to the automatic cutout (revision " + result.data.revision + ").");
        reloadPanel();
      });
    });

    const tabs = root.querySelectorAll("[role=tab]");
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function () {
        tabs.forEach(function (other) {
          const selected = other === tab;
          other.setAttribute("aria-selected", String(selected));
          document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
        });
      });
    });

    const image = new Image();
    image.onload = function () {
      maskCtx.drawImage(image, 0, 0);
      // The stored mask is greyscale (255 = product): turn it into coverage in the alpha channel.
      const data = maskCtx.getImageData(0, 0, width, height);
      const px = data.data;
      for (let i = 0; i < px.length; i += 4) {
        const product = px[i] >= 128;
        px[i] = px[i + 1] = px[i + 2] = 255;
        px[i + 3] = product ? 255 : 0;
      }
      base = data;
      maskCtx.putImageData(base, 0, 0);
      render();
      root.dataset.loaded = "1";
    };
    image.onerror = function () { say("The mask could not be loaded. Reload the page.", true); };
    image.src = root.dataset.maskUrl;
  }

  function initAll() { init(document.getElementById("mask-editor")); }
  document.addEventListener("DOMContentLoaded", initAll);
  document.addEventListener("htmx:afterSettle", initAll);
  if (document.readyState !== "loading") initAll();
})();
