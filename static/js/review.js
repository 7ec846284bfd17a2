// The review queue, keyboard first: j/k move, a approve, r reject (comment then Enter),
// c comment, x select, z 1:1 zoom, ? the keys. Decisions are htmx form posts; when one
// succeeds the server sends HX-Trigger "review-decided" and the queue moves on.
(function () {
  "use strict";
  let current = null;
  let pending = null; // "reject" or "comment" while the comment box is open for it

  const items = () => Array.from(document.querySelectorAll("#queue .queue-item"));
  const detail = () => document.getElementById("review-detail");

  function select(item) {
    if (!item) return;
    items().forEach((li) => li.removeAttribute("aria-current"));
    item.setAttribute("aria-current", "true");
    item.scrollIntoView({ block: "nearest" });
    current = item;
    pending = null;
    htmx.ajax("GET", item.dataset.panelUrl, { target: "#review-detail", swap: "innerHTML" });
  }

  function move(step) {
    const list = items();
    if (!list.length) return;
    const at = list.indexOf(current);
    select(list[Math.min(list.length - 1, Math.max(0, at + step))] || list[0]);
  }

  function button(action) {
    return detail().querySelector('.decision button[value="' + action + '"]');
  }

  function act(action) {
    const target = button(action);
    pending = null;
    if (target) target.click();
  }

  function openComment(action) {
    const box = detail().querySelector("#review-comment");
    if (!box || !button(action)) return;
    pending = action;
    box.placeholder = action === "reject" ? "Why is it rejected? Enter rejects, Esc cancels" : "Your comment; Enter posts it, Esc cancels";
    box.focus();
  }

  function toggleZoom(show) {
    const panel = detail();
    const zoom = panel.querySelector(".view-zoom");
    const compare = panel.querySelector(".view-compare");
    if (!zoom || !compare) return;
    const on = show === undefined ? zoom.hidden : show;
    zoom.hidden = !on;
    compare.hidden = on;
    panel.querySelectorAll(".view-toggle").forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.view === "zoom") === on)));
    if (on) {
      zoom.scrollLeft = Number(zoom.dataset.x) - zoom.clientWidth / 2;
      zoom.scrollTop = Number(zoom.dataset.y) - zoom.clientHeight / 2;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("queue")) return;
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (typing) {
      if (event.target.id === "review-comment" && event.key === "Enter" && !event.shiftKey && pending) {
        event.preventDefault();
        act(pending);
      } else if (event.key === "Escape") {
        pending = null;
        event.target.blur();
      }
      return;
    }
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    const keys = {
      j: () => move(1),
      k: () => move(-1),
      a: () => act("approve"),
      r: () => openComment("reject"),
      c: () => openComment("comment"),
      x: () => { if (current) { const box = current.querySelector("input[type=checkbox]"); box.checked = !box.checked; } },
      z: () => toggleZoom(),
      "?": () => document.getElementById("review-keys").showModal(),
    };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  });

  document.addEventListener("click", function (event) {
    const item = event.target.closest && event.target.closest("#queue .queue-item");
    if (item && !event.target.matches("input")) select(item);
    const toggle = event.target.closest && event.target.closest(".view-toggle");
    if (toggle) toggleZoom(toggle.dataset.view === "zoom");
  });

  // htmx gives focus back to an element with the same id after a swap; a fresh panel must not
  // start with the keys going into its comment box.
  document.addEventListener("htmx:afterSettle", function (event) {
    const panel = detail();
    if (panel && event.target === panel && panel.contains(document.activeElement) && !pending) document.activeElement.blur();
  });

  document.body.addEventListener("review-decided", function (event) {
    const id = String(event.detail.id);
    const list = items();
    const gone = list.find((li) => li.dataset.assetId === id);
    if (!gone) return;
    const next = list[list.indexOf(gone) + 1] || list[list.indexOf(gone) - 1];
    gone.remove();
    if (next) {
      // Leave the decided image's confirmation visible for a moment, then move on.
      setTimeout(() => select(next), 400);
    } else {
      current = null;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    const first = items()[0];
    if (first) select(first);
  });
})();
