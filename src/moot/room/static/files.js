import { fileExtras, setSlideFiles } from "./tools/slides.js";
import { setupUpload, showUpload } from "./upload.js";

// The meeting's files (the EMS sends the whole list whenever it changes). Each link goes
// to the EMS with a key it signed for this meeting: no second sign-in. Only pictures open
// in a tab of their own; everything else is downloaded.
const filesEl = document.getElementById("files");
const filesToggle = document.getElementById("files-toggle");
const filesPanel = document.getElementById("files-panel");

function fileSize(bytes) {
  if (bytes < 1024) return bytes + " bytes";
  let value = bytes;
  let unit = "";
  for (unit of ["KB", "MB", "GB"]) {
    value /= 1024;
    if (value < 1024) break;
  }
  return value.toFixed(1).replace(/\.0$/, "") + " " + unit;
}

let lastFiles = []; // the meeting's files as last listed (drawn again when the role changes)

export function renderFiles(files) {
  lastFiles = files;
  filesEl.replaceChildren(...files.map((f) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = f.url;
    a.textContent = f.name;
    if (f.content_type.startsWith("image/")) { a.target = "_blank"; a.rel = "noopener"; }
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = " (" + fileSize(f.size) + ")";
    li.append(a, size, ...fileExtras(f));
    return li;
  }));
  setSlideFiles(files);
  document.getElementById("files-count").textContent = String(files.length);
  document.getElementById("files-empty").hidden = files.length > 0;
}

function showFiles(open) {
  filesPanel.hidden = !open;
  filesToggle.setAttribute("aria-expanded", String(open));
  if (open) (filesEl.querySelector("a") || document.getElementById("files-close")).focus();
  else filesToggle.focus();
}

// The role changed: "Present" beside a PDF (presenters only), the upload form.
export function refreshFiles(role) {
  renderFiles(lastFiles);
  showUpload(role);
}

// `context`: { emsUrl, meetingId, token(), role } (the token is renewed after a move).
export function setupFiles(context) {
  setupUpload(context);
  showUpload(context.role);
  filesToggle.addEventListener("click", () => showFiles(filesPanel.hidden));
  document.getElementById("files-close").addEventListener("click", () => showFiles(false));
  filesPanel.addEventListener("keydown", (event) => { if (event.key === "Escape") showFiles(false); });
}
