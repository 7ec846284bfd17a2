// Settings page: the "Copy" button next to a new API key (shown once) copies it and says so.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const input = document.querySelector(button.dataset.copy);
    const status = document.getElementById(button.getAttribute("aria-describedby"));
    const say = function (text) { if (status) status.textContent = text; };
    input.focus();
    input.select();
    const fallback = function () {
      // Plain http on another host is not a secure context: no Clipboard API there.
      say(document.execCommand("copy") ? "Copied to the clipboard." : "Press Ctrl+C (⌘C) to copy the selected key.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { say("Copied to the clipboard."); }, fallback);
    } else {
      fallback();
    }
  });
})();
