// studio/brand/kit.html: moved out of the page so the Content-Security-Policy needs no inline script.
// Each colour picker shows its hex value as text beside it, kept in step while it moves.
document.querySelectorAll("input[type=color]").forEach((input) => {
  const output = document.querySelector(`output[data-hex-of="${input.id}"]`);
  if (output) input.addEventListener("input", () => { output.textContent = input.value; });
});
