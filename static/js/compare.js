// Before/after: the original photo over the generated scene, revealed by a range input.
(function () {
  "use strict";
  function update(range) {
    const before = range.parentElement.querySelector(".compare-before");
    if (before) before.style.clipPath = "inset(0 " + (100 - Number(range.value)) + "% 0 0)";
  }
  function initAll() { document.querySelectorAll(".compare-range").forEach(update); }
  document.addEventListener("input", function (event) {
    if (event.target.classList && event.target.classList.contains("compare-range")) update(event.target);
  });
  document.addEventListener("DOMContentLoaded", initAll);
  document.addEventListener("htmx:afterSettle", initAll);
})();
