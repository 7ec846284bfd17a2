// The touch-up brush: paint the lock mask over the photo, undo/redo, save as a new cutout
// revision through the API (the same endpoint any client uses). Saving queues a touch-up job;
// its progress line (#touch-up-status, an htmx poll) replaces the cutout panel once it is done.
//
// The mask lives in an offscreen canvas at the photo's resolution. What is on screen is drawn
// at the screen's resolution: the photo is an <img> moved and scaled by a CSS transform, and
// the overlay canvas (the viewport's size in device pixels) gets the tint and a one-pixel
// outline of the mask computed per screen pixel, so the outline stays crisp at any zoom.
// "Snap to edges", "Fill holes" and "Open holes" are done by the touch-up job on the worker
// (generation/segmentation/touch_up.py): the saved revision is what counts.
(function () {
  "use strict";
  const TINT = [45, 91, 209, 110]; // accent blue, ~43 % opaque
  const INNER = [29, 63, 153, 255]; // outline inside the product...
  const OUTER = [255, 255, 255, 255]; // ...and just outside it: visible on dark and light photos
  const MAX_ZOOM = 32;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
      (target.tagName === "INPUT" && !/^(radio|checkbox|range|button)$/.test(target.type)));
  }

  function init(root) {
    if (!root || root.dataset.ready) return;
    root.dataset.ready = "1";
    const width = Number(root.dataset.width);
    const height = Number(root.dataset.height);
    const stage = root.querySelector("#view-mask");
    const photo = stage.querySelector(".stage-photo");
    const view = root.querySelector("#mask-canvas");
    const viewCtx = view.getContext("2d");
    const cursor = stage.querySelector(".brush-cursor");
    // The mask itself: opaque white = product, transparent = background.
    const mask = document.createElement("canvas");
    mask.width = width;
    mask.height = height;
    const maskCtx = mask.getContext("2d", { willReadFrequently: true });
    // The mask resampled to the screen, read back to draw tint and outline.
    const scratch = document.createElement("canvas");
    const scratchCtx = scratch.getContext("2d", { willReadFrequently: true });
    const status = root.querySelector("#editor-status");
    const sizeInput = root.querySelector("#brush-size");
    const sizeOut = root.querySelector("#brush-size-value");
    const snapInput = root.querySelector("#snap-edges");
    const undoBtn = root.querySelector("#undo");
    const redoBtn = root.querySelector("#redo");
    const saveBtn = root.querySelector("#save-mask");
    const fillBtn = root.querySelector("#fill-holes");
    const openBtn = root.querySelector("#open-holes");
    const resetBtn = root.querySelector("#reset-auto");
    const zoomOut = root.querySelector("#zoom-level");
    const zoomInBtn = root.querySelector("#zoom-in");
    const zoomOutBtn = root.querySelector("#zoom-out");
    const fitBtn = root.querySelector("#zoom-fit");
    let base = null; // ImageData of the revision being edited
    const strokes = [];
    const undone = [];
    let current = null;
    let saving = false;
    // View: screen (CSS px) = image px * zoom + pan.
    let zoom = 1;
    let panX = 0;
    let panY = 0;
    let fitted = true;
    let spaceHeld = false;
    let drag = null; // a pan in progress: {x, y, panX, panY}
    let pointer = null; // last pointer position in viewport CSS px, for the brush cursor
    let frame = 0;

    photo.style.width = width + "px";
    photo.style.height = height + "px";

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error", Boolean(isError));
    }

    function viewport() {
      const rect = stage.getBoundingClientRect();
      return { w: Math.max(1, rect.width), h: Math.max(1, rect.height), rect: rect };
    }

    // The stage takes the height left under the toolbar, so brush and buttons share one screen.
    function sizeStage() {
      const top = stage.getBoundingClientRect().top + window.scrollY;
      root.style.setProperty("--stage-height", Math.max(240, Math.floor(window.innerHeight - top - 16)) + "px");
    }

    function fitZoom() {
      const vp = viewport();
      return Math.min(vp.w / width, vp.h / height);
    }

    function fit() {
      const vp = viewport();
      zoom = fitZoom();
      panX = (vp.w - width * zoom) / 2;
      panY = (vp.h - height * zoom) / 2;
      fitted = true;
      schedule();
    }

    // Zoom to `next` keeping the image point under (sx, sy) (viewport CSS px) where it is.
    function zoomAt(next, sx, sy) {
      const min = fitZoom() / 2;
      next = Math.min(MAX_ZOOM, Math.max(min, next));
      panX = sx - (sx - panX) * (next / zoom);
      panY = sy - (sy - panY) * (next / zoom);
      zoom = next;
      fitted = false;
      schedule();
    }

    function zoomCentre(factor) {
      const vp = viewport();
      zoomAt(zoom * factor, vp.w / 2, vp.h / 2);
    }

    function controls() {
      const busy = saving || touchUpRunning();
      undoBtn.disabled = strokes.length === 0;
      redoBtn.disabled = undone.length === 0;
      saveBtn.disabled = strokes.length === 0 || busy;
      fillBtn.disabled = openBtn.disabled = !base || busy;
      fitBtn.disabled = fitted;
      zoomOut.textContent = Math.round(zoom * 100) + " %";
    }

    function schedule() {
      if (!frame) frame = window.requestAnimationFrame(draw);
    }

    function draw() {
      frame = 0;
      const vp = viewport();
      const dpr = window.devicePixelRatio || 1;
      const w = Math.round(vp.w * dpr);
      const h = Math.round(vp.h * dpr);
      if (view.width !== w || view.height !== h) {
        view.width = scratch.width = w;
        view.height = scratch.height = h;
      }
      photo.style.transform = "translate(" + panX + "px, " + panY + "px) scale(" + zoom + ")";
      photo.classList.toggle("pixelated", zoom >= 3);
      scratchCtx.setTransform(1, 0, 0, 1, 0, 0);
      scratchCtx.clearRect(0, 0, w, h);
      scratchCtx.imageSmoothingEnabled = false;
      scratchCtx.setTransform(zoom * dpr, 0, 0, zoom * dpr, panX * dpr, panY * dpr);
      scratchCtx.drawImage(mask, 0, 0);
      const src = scratchCtx.getImageData(0, 0, w, h).data;
      const out = viewCtx.createImageData(w, h);
      const px = out.data;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = (y * w + x) * 4;
          const inside = src[i + 3] >= 128;
          const edge =
            (x > 0 && (src[i - 1] >= 128) !== inside) || (x < w - 1 && (src[i + 7] >= 128) !== inside) ||
            (y > 0 && (src[i - w * 4 + 3] >= 128) !== inside) || (y < h - 1 && (src[i + w * 4 + 3] >= 128) !== inside);
          const colour = edge ? (inside ? INNER : OUTER) : inside ? TINT : null;
          if (colour) { px[i] = colour[0]; px[i + 1] = colour[1]; px[i + 2] = colour[2]; px[i + 3] = colour[3]; }
        }
      }
      viewCtx.putImageData(out, 0, 0);
      moveCursor();
      controls();
    }

    function moveCursor() {
      const show = pointer && !spaceHeld && !drag;
      cursor.hidden = !show;
      if (!show) return;
      const d = Math.max(2, Number(sizeInput.value) * zoom);
      cursor.style.width = cursor.style.height = d + "px";
      cursor.style.transform = "translate(" + (pointer[0] - d / 2) + "px, " + (pointer[1] - d / 2) + "px)";
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
      schedule();
    }

    function local(event) {
      const rect = stage.getBoundingClientRect();
      return [event.clientX - rect.left, event.clientY - rect.top];
    }

    function toImage(event) {
      const p = local(event);
      return [(p[0] - panX) / zoom, (p[1] - panY) / zoom];
    }

    function setMode(mode) {
      root.querySelector("input[name=brush-mode][value=" + mode + "]").checked = true;
    }

    function setSize(size) {
      sizeInput.value = String(Math.round(Math.min(Number(sizeInput.max), Math.max(Number(sizeInput.min), size))));
      sizeOut.textContent = sizeInput.value;
      moveCursor();
    }

    view.addEventListener("pointerdown", function (event) {
      if (!base) return;
      view.setPointerCapture(event.pointerId);
      if (spaceHeld || event.button === 1) {
        event.preventDefault();
        drag = { x: event.clientX, y: event.clientY, panX: panX, panY: panY };
        stage.classList.add("dragging");
        moveCursor();
        return;
      }
      if (event.button !== 0) return;
      const mode = root.querySelector("input[name=brush-mode]:checked").value;
      current = { mode: mode, size: Number(sizeInput.value), points: [toImage(event)] };
      paint(current, current.points[0], current.points[0]);
      schedule();
    });
    view.addEventListener("pointermove", function (event) {
      pointer = local(event);
      if (drag) {
        panX = drag.panX + event.clientX - drag.x;
        panY = drag.panY + event.clientY - drag.y;
        fitted = false;
        schedule();
        return;
      }
      if (!current) { moveCursor(); return; }
      const point = toImage(event);
      paint(current, current.points[current.points.length - 1], point);
      current.points.push(point);
      schedule();
    });
    view.addEventListener("pointerleave", function () { pointer = null; moveCursor(); });
    function endStroke() {
      if (drag) {
        drag = null;
        stage.classList.remove("dragging");
        moveCursor();
        return;
      }
      if (!current) return;
      strokes.push(current);
      undone.length = 0;
      current = null;
      schedule();
      say("Unsaved changes: save them as a new revision.");
    }
    view.addEventListener("pointerup", endStroke);
    view.addEventListener("pointercancel", endStroke);
    view.addEventListener("wheel", function (event) {
      event.preventDefault();
      const p = local(event);
      const lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      zoomAt(zoom * Math.exp(-event.deltaY * lines * 0.0015), p[0], p[1]);
    }, { passive: false });
    zoomInBtn.addEventListener("click", function () { zoomCentre(1.5); });
    zoomOutBtn.addEventListener("click", function () { zoomCentre(1 / 1.5); });
    fitBtn.addEventListener("click", fit);
    window.addEventListener("resize", function () { if (root.isConnected) sizeStage(); });
    if (window.ResizeObserver) {
      new ResizeObserver(function () { if (fitted) fit(); else schedule(); }).observe(stage);
    }

    sizeInput.addEventListener("input", function () { sizeOut.textContent = sizeInput.value; });
    undoBtn.addEventListener("click", function () { if (strokes.length) { undone.push(strokes.pop()); replay(); } });
    redoBtn.addEventListener("click", function () { if (undone.length) { strokes.push(undone.pop()); replay(); } });
    function onKeyDown(event) {
      if (!root.isConnected) { document.removeEventListener("keydown", onKeyDown); document.removeEventListener("keyup", onKeyUp); return; }
      if (stage.hidden || typing(event.target)) return;
      if (event.ctrlKey || event.metaKey) {
        if (event.key.toLowerCase() !== "z") return;
        event.preventDefault();
        (event.shiftKey ? redoBtn : undoBtn).click();
        return;
      }
      if (event.altKey) return;
      if (event.key === " ") {
        event.preventDefault(); // no page scroll, no click on a focused button
        if (!spaceHeld) { spaceHeld = true; stage.classList.add("panning"); moveCursor(); }
      } else if (event.key === "[") {
        setSize(Math.min(Number(sizeInput.value) - 1, Number(sizeInput.value) / 1.25));
      } else if (event.key === "]") {
        setSize(Math.max(Number(sizeInput.value) + 1, Number(sizeInput.value) * 1.25));
      } else if (event.key === "x" || event.key === "X") {
        setMode(root.querySelector("input[name=brush-mode]:checked").value === "add" ? "erase" : "add");
      }
    }
    function onKeyUp(event) {
      if (event.key !== " ") return;
      spaceHeld = false;
      stage.classList.remove("panning");
      moveCursor();
    }
    document.addEventListener("keydown", onKeyDown);
    document.addEventListener("keyup", onKeyUp);

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
      controls();
    });

    function saveFailed(text) {
      saving = false;
      say(text, true);
      controls();
    }

    // Send the mask as it is now; `holes` ("fill" / "open") asks the job to act on its holes too.
    function save(holes) {
      saving = true;
      controls();
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
        form.append("snap_edges", snapInput.checked ? "true" : "false");
        if (holes) form.append("holes", holes);
        post(root.dataset.saveUrl, form).then(function (result) {
          if (!result.ok) { saveFailed(result.data.error ? result.data.error.message : "Saving failed. Try again."); return; }
          say("Mask received; the new revision is being made.");
          followTouchUp();
        }, function () { saveFailed("The connection dropped; your changes are still here. Try again."); });
      }, "image/png");
    }
    saveBtn.addEventListener("click", function () { save(null); });
    fillBtn.addEventListener("click", function () { save("fill"); });
    openBtn.addEventListener("click", function () { save("open"); });

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
        if (!stage.hidden && fitted) fit();
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
      fit();
      draw();
      root.dataset.loaded = "1";
    };
    image.onerror = function () { say("The mask could not be loaded. Reload the page.", true); };
    image.src = root.dataset.maskUrl;
    sizeStage();
    fit();
  }

  function initAll() { init(document.getElementById("mask-editor")); }
  document.addEventListener("DOMContentLoaded", initAll);
  document.addEventListener("htmx:afterSettle", initAll);
  if (document.readyState !== "loading") initAll();
})();
