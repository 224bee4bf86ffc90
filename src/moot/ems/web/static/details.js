// Copy the meeting's link; where the clipboard is not allowed, select it for Ctrl-C.
const button = document.getElementById("copy-link");
const field = document.getElementById("join-link");
const said = document.getElementById("copied");
button?.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(button.dataset.link);
    said.textContent = "Link copied.";
  } catch {
    field.focus();
    field.select();
    said.textContent = "Press Ctrl-C (or ⌘-C) to copy the selected link.";
  }
});
