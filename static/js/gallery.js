// studio/gallery/gallery.html: moved out of the page so the Content-Security-Policy needs no inline script.
// "Select all on this page" and the live count of selected images.
(function () {
  "use strict";
  var form = document.getElementById("gallery-selection");
  if (!form) return;
  var all = document.getElementById("select-all");
  var count = document.getElementById("selected-count");
  function picks() { return Array.prototype.slice.call(form.querySelectorAll("input[name=ids]")); }
  function update() {
    var boxes = picks(), chosen = boxes.filter(function (b) { return b.checked; }).length;
    count.textContent = chosen ? chosen + " selected" : "None selected";
    all.checked = chosen > 0 && chosen === boxes.length;
    all.indeterminate = chosen > 0 && chosen < boxes.length;
  }
  all.addEventListener("change", function () {
    picks().forEach(function (b) { b.checked = all.checked; });
    update();
  });
  form.addEventListener("change", function (event) { if (event.target.name === "ids") update(); });
  update();
})();
