// Presentations: a PDF of the meeting's files, drawn page by page with pdf.js (vendored
// under static/vendor/pdfjs-dist). The room server keeps which file and the presenter's
// page (`tool_state`, tool "slides"); every page follows it, unless its reader browses
// ahead on their own (never sent anywhere) and snaps back with "Back to presenter's page".
// The PDF is read straight from the EMS with the file's link (its key is the permission).
// A page is drawn on a canvas of its own, off screen, and shown as the whiteboard's
// background (board.js showSlide): what anyone draws there are notes on that slide.
import { showSlide } from "./board.js";

// pdf.js (420 KB) is loaded the first time a presentation is shown, not with every page.
let pdfjs = null;
async function readPdf(url) {
  if (!pdfjs) {
    pdfjs = await import("../vendor/pdfjs-dist/pdf.min.js");
    pdfjs.GlobalWorkerOptions.workerSrc = new URL("../vendor/pdfjs-dist/pdf.worker.min.js", import.meta.url).href;
  }
  return pdfjs.getDocument({ url, isEvalSupported: false, disableRange: true }).promise;
}

const BOARD_W = 1600;
const BOARD_H = 900;
const OFFICE = /\.(pptx?|ppsx?|odp|docx?|odt|xlsx?|ods|rtf)$/i;
let ctx;
let area;
let canvas;
let files = []; // the meeting's files, as the EMS listed them last
let state = { open: false };
let mine = 0; // the page this reader looks at
let browsing = false; // looking at another page than the presenter's
let wanted = null; // the page this presenter turned to, until the room server's state has it
let doc = null; // { fileId, pdf } of the open presentation
let loading = null; // file id being read
let drawing = Promise.resolve();
let drawnKey = null; // "<file id>:<page>" on the board now

function el(id) { return document.getElementById(id); }

// Whether this person drives the presentation now: a moderator or a presenter (the role
// follows a moderator's grant; the room server decides anyway).
function presents() { return ctx.role !== "participant"; }

function status(text) { el("slides-status").textContent = text; }

async function load(fileId) {
  if (doc && doc.fileId === fileId) return doc.pdf;
  const file = files.find((f) => f.id === fileId);
  if (!file) throw new Error("the presented file is no longer attached to the meeting");
  loading = fileId;
  const pdf = await readPdf(file.url);
  if (loading !== fileId) return pdf; // another presentation opened meanwhile
  doc?.pdf.destroy();
  doc = { fileId, pdf };
  return pdf;
}

// Draw the page this reader looks at; a PDF that cannot be read or drawn is said, and the
// board goes back to its own pages rather than keep another slide.
async function draw() {
  try {
    await paint();
  } catch (err) {
    status(`This presentation cannot be shown: ${err.message || err}.`);
    drawnKey = null;
    showSlide(null);
  }
}

async function paint() {
  if (!state.open) return;
  const fileId = state.file_id;
  const pdf = await load(fileId);
  if (!state.open || state.file_id !== fileId) return;
  const shown = mine;
  const key = `${fileId}:${shown}`;
  if (key === drawnKey) return; // drawn already: a state that did not turn the page
  const page = await pdf.getPage(Math.min(shown, pdf.numPages - 1) + 1);
  // As sharp as the board's 1600 x 900 units on this screen (at most twice).
  const base = page.getViewport({ scale: 1 });
  const fit = Math.min(BOARD_W / base.width, BOARD_H / base.height);
  const viewport = page.getViewport({ scale: fit * Math.min(2, window.devicePixelRatio || 1) });
  // Drawn aside, then shown whole: the page's canvas never holds half a slide.
  const work = document.createElement("canvas");
  work.width = Math.floor(viewport.width);
  work.height = Math.floor(viewport.height);
  const context = work.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, work.width, work.height);
  await page.render({ canvasContext: context, canvas: work, viewport }).promise;
  if (!state.open || state.file_id !== fileId) return;
  canvas.width = work.width;
  canvas.height = work.height;
  canvas.getContext("2d").drawImage(work, 0, 0);
  canvas.dataset.page = String(shown + 1);
  drawnKey = key;
  showSlide(key, work.toDataURL("image/png"), `page ${shown + 1} of ${state.name}`);
  status("");
}

function show() {
  const presenter = state.page + 1;
  el("slides-name").textContent = state.name;
  el("slides-page").textContent = browsing
    ? `You are on page ${mine + 1} of ${state.pages}; the presenter is on page ${presenter}`
    : `Page ${mine + 1} of ${state.pages}`;
  canvas.setAttribute("aria-label", `${state.name}, page ${mine + 1} of ${state.pages}`);
  const follow = el("slides-follow");
  follow.hidden = !browsing;
  follow.textContent = `Back to presenter's page (${presenter})`;
  el("slides-prev").disabled = mine <= 0;
  el("slides-next").disabled = mine + 1 >= state.pages;
  drawing = drawing.then(draw);
}

export function renderSlides(view) {
  if (!area) return;
  const opened = view.open && (!state.open || state.file_id !== view.file_id);
  state = view;
  area.hidden = !view.open;
  if (!view.open) {
    doc?.pdf.destroy();
    doc = null;
    browsing = false;
    drawnKey = null;
    showSlide(null);
    return;
  }
  if (opened) browsing = false;
  if (opened || view.page === wanted) wanted = null;
  if (!browsing && wanted === null) mine = view.page;
  if (browsing && mine === view.page) browsing = false;
  show();
}

// The files changed (a new list, new links after a move): the presentation reads on.
export function setSlideFiles(list) {
  files = list;
  if (doc && !files.some((f) => f.id === doc.fileId)) { doc.pdf.destroy(); doc = null; }
  if (state.open && !doc) show();
}

function turn(to) {
  if (!state.open || to < 0 || to >= state.pages) return;
  mine = to;
  if (presents()) {
    // Shown at once, so that a second click goes one further (until the room server's
    // state says this page, it keeps the presenter's); back to its page if refused.
    wanted = to;
    ctx.send({ kind: "slides.page", page: to }, () => { wanted = null; mine = state.page; show(); });
  } else {
    browsing = mine !== state.page; // on one's own: nobody else is told
  }
  show();
}

async function present(file) {
  ctx.say(`Opening ${file.name}…`);
  try {
    const pdf = await readPdf(file.url);
    const pages = pdf.numPages;
    pdf.destroy();
    ctx.say("");
    ctx.send({ kind: "slides.open", file_id: file.id, pages });
  } catch (err) {
    ctx.say(`${file.name} cannot be shown as slides: ${err.message || err}.`);
  }
}

// What the Files list adds to a file: "Present" for a PDF (presenters), and for other
// office files a plain word that they are downloaded, not shown.
export function fileExtras(file) {
  const nodes = [];
  if (file.content_type === "application/pdf" && ctx && presents() && area) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small";
    button.textContent = "Present";
    button.setAttribute("aria-label", `Present ${file.name} to everyone`);
    button.addEventListener("click", () => present(file));
    nodes.push(" ", button);
  } else if (OFFICE.test(file.name)) {
    const note = document.createElement("span");
    note.className = "hint";
    note.textContent = " Not shown as slides: download it (only PDF files are shown).";
    nodes.push(note);
  }
  return nodes;
}

export function setupSlides(context) {
  ctx = context;
  area = el("slides-area");
  if (!area) return;
  canvas = el("slides-canvas");
  el("slides-prev").addEventListener("click", () => turn(mine - 1));
  el("slides-next").addEventListener("click", () => turn(mine + 1));
  el("slides-follow").addEventListener("click", () => { browsing = false; mine = state.page; show(); });
  el("slides-close")?.addEventListener("click", () => ctx.send({ kind: "slides.close" }));
  area.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT") return;
    if (event.key === "ArrowRight" || event.key === "PageDown") { turn(mine + 1); event.preventDefault(); }
    if (event.key === "ArrowLeft" || event.key === "PageUp") { turn(mine - 1); event.preventDefault(); }
  });
}
