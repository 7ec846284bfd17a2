// studio/compose.html: moved out of the page so the Content-Security-Policy needs no inline script.
// The prompt's note follows the chosen preset: models that do not read prompts say so.
(() => {
  const hint = document.getElementById("prompt-hint");
  document.querySelectorAll("input[name=preset]").forEach((radio) => {
    radio.addEventListener("change", () => { if (radio.checked) hint.textContent = radio.dataset.promptNote; });
  });
})();
