// The whiteboard: an SVG page of 1600 x 900 units (the same for every screen). Finished
// elements come from the room server (`tool_state` whole, then `tool_delta` changes);
// an element being drawn is streamed to the others (`draw`, `pointer`: not journaled)
// and sent as the tool event `board.add` when the pointer lifts. Pen strokes are
// smoothed by perfect-freehand; how an element looks is shared with the recording page
// (protocol/static/board/draw.js). While a presentation is open the board shows its slide,
// and what is drawn are notes on that slide.
import { H, SVG, W, nodeOf, pageSvg as boardPageSvg, plainPenNode, rasterize, svg } from "../board/draw.js";
import { pdfOfCanvases } from "../board/pdf-writer.js";

const MAX_POINTS = 2000;
const LIVE_EVERY_MS = 50;

let ctx;
let board;
let frame = { pages: 1, shown: 0, who: "everyone" };
const items = new Map(); // element id -> element (with page, by), in drawing order
const pending = new Map(); // element id -> its node, drawn here, not yet acknowledged
const live = new Map(); // user -> { node, dot, timer }: what others are drawing now
let tool = "pen";
let current = null; // { element, node } being drawn
let erasing = null; // ids under the eraser
let lastLive = 0;
// A presentation's slide the board shows (slides.js): its notes are board elements keyed
// to it ("<file id>:<page>"), drawn over its picture; null: the board's own pages.
let slide = null; // { key, label }

// Whether an element (or a live drawing) belongs where the board is now.
function here(e) {
  return slide ? e.slide === slide.key : !e.slide && e.page === frame.shown;
}

// Where a new element goes: the page, and the slide when the board shows one.
function where() {
  return slide ? { page: frame.shown, slide: slide.key } : { page: frame.shown };
}

function label() {
  const count = [...items.values()].filter(here).length;
  const elements = `${count} ${count === 1 ? "element" : "elements"}`;
  board.setAttribute("aria-label", slide
    ? `Notes on ${slide.label}, ${elements}`
    : `Whiteboard, page ${frame.shown + 1} of ${frame.pages}, ${elements}`);
  document.getElementById("board-page").textContent = slide
    ? `Notes on ${slide.label}` : `Page ${frame.shown + 1} of ${frame.pages}`;
  const draws = frame.who === "everyone" || ctx.role !== "participant";
  document.getElementById("board-who").textContent = draws ? "" : "Only moderators and presenters draw now.";
  const only = document.getElementById("board-moderators-only");
  if (only) only.checked = frame.who === "moderators";
}

// Pen strokes on a page beyond which it is drawn plainly first, then smoothed bit by bit.
const PLAIN_FIRST = 300;
// How long one turn of smoothing may hold the page, in ms (the page stays responsive).
const SMOOTH_SLICE_MS = 12;
let smoothing = null; // the timer of the next turn

function redraw() {
  const layer = board.querySelector(".items");
  const shown = [...items.values()].filter(here);
  const plain = shown.filter((e) => e.shape === "pen").length > PLAIN_FIRST;
  layer.replaceChildren(...shown.map((e) => (plain && e.shape === "pen" ? plainPenNode(e) : nodeOf(e))));
  for (const node of pending.values()) layer.append(node);
  for (const user of [...live.keys()]) dropLive(user);
  label();
  clearTimeout(smoothing);
  if (plain) smoothing = setTimeout(smooth, 0);
}

// The plainly drawn strokes replaced by their outlines, a slice of time per turn, in order.
function smooth() {
  const until = performance.now() + SMOOTH_SLICE_MS;
  const plain = board.querySelectorAll(".items path.plain");
  let i = 0;
  for (; i < plain.length && performance.now() < until; i++) {
    const e = items.get(plain[i].dataset.id);
    if (!e) { plain[i].classList.remove("plain"); continue; } // going: a change removes it
    const node = nodeOf(e);
    if (plain[i].classList.contains("erasing")) node.classList.add("erasing");
    plain[i].replaceWith(node);
  }
  smoothing = i < plain.length ? setTimeout(smooth, 0) : null;
}

// The person's role changed (a moderator's grant): say again whether they may draw.
export function refreshBoardRole() {
  if (board) label();
}

export function renderBoard(state) {
  performance.mark("moot:board-state"); // bench/board.py times a late joiner's board by these
  const turned = state.shown !== frame.shown;
  frame = { pages: state.pages, shown: state.shown, who: state.who };
  items.clear();
  for (const e of state.items) items.set(e.id, e);
  redraw();
  performance.mark("moot:board-drawn");
  return turned;
}

export function applyBoardDelta(change) {
  const turned = change.shown !== frame.shown;
  frame = { pages: change.pages, shown: change.shown, who: change.who };
  for (const id of change.remove) {
    items.delete(id);
    board.querySelector(`.items [data-id="${CSS.escape(id)}"]`)?.remove();
  }
  for (const e of change.add) {
    items.set(e.id, e);
    pending.get(e.id)?.remove();
    pending.delete(e.id);
    for (const [user, drawn] of live) if (drawn.id === e.id) dropLive(user);
  }
  if (turned) { redraw(); return; }
  const layer = board.querySelector(".items");
  for (const e of change.add) if (here(e)) layer.append(nodeOf(e));
  label();
}

function dropLive(user) {
  const drawn = live.get(user);
  if (!drawn) return;
  drawn.node?.remove();
  drawn.dot?.remove();
  clearTimeout(drawn.timer);
  live.delete(user);
}

// Someone else's element while drawn, or their pointer.
export function showDrawing(msg) {
  if (!here(msg)) return;
  const drawn = live.get(msg.user) || {};
  clearTimeout(drawn.timer);
  if (msg.element) {
    drawn.node?.remove();
    drawn.node = nodeOf(msg.element);
    drawn.node.classList.add("live");
    drawn.id = msg.element.id;
    board.querySelector(".live-layer").append(drawn.node);
  } else {
    if (!drawn.dot) {
      drawn.dot = svg("circle", { r: 8, class: "laser" });
      drawn.dot.append(svg("title"));
      drawn.dot.firstChild.textContent = msg.user;
      board.querySelector(".live-layer").append(drawn.dot);
    }
    drawn.dot.setAttribute("cx", msg.x);
    drawn.dot.setAttribute("cy", msg.y);
  }
  drawn.timer = setTimeout(() => dropLive(msg.user), 3000);
  live.set(msg.user, drawn);
}

function at(event) {
  const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(board.getScreenCTM().inverse());
  return [Math.round(Math.min(W, Math.max(0, p.x)) * 10) / 10, Math.round(Math.min(H, Math.max(0, p.y)) * 10) / 10];
}

function mayDraw() {
  if (frame.who === "everyone" || ctx.role !== "participant") return true;
  ctx.say("Only moderators and presenters may draw on the board now.");
  return false;
}

function streamLive(force) {
  const now = Date.now();
  if (!current || (!force && now - lastLive < LIVE_EVERY_MS)) return;
  lastLive = now;
  ctx.sendRaw({ type: "draw", ...where(), element: current.element });
}

function redrawCurrent() {
  const node = nodeOf(current.element);
  node.classList.add("pending");
  current.node.replaceWith(node);
  current.node = node;
}

function down(event) {
  if (event.button !== 0) return;
  const p = at(event);
  if (tool === "pointer") { ctx.sendRaw({ type: "pointer", ...where(), x: p[0], y: p[1] }); return; }
  if (!mayDraw()) return;
  board.setPointerCapture(event.pointerId);
  if (tool === "eraser") { erasing = new Set(); eraseAt(event); return; }
  const color = document.getElementById("board-color").value;
  const width = Number(document.getElementById("board-width").value);
  const element = { id: crypto.randomUUID(), shape: tool, points: [p], color, width };
  if (tool === "text") {
    const text = document.getElementById("board-text").value.trim();
    if (!text) { ctx.say("Type the text to place first (Text, in the whiteboard's tools)."); return; }
    element.text = text;
    finish(element, nodeOf(element));
    return;
  }
  if (tool !== "pen") element.points = [p, p];
  const node = nodeOf(element);
  node.classList.add("pending");
  board.querySelector(".items").append(node);
  current = { element, node };
}

function eraseAt(event) {
  const hit = document.elementFromPoint(event.clientX, event.clientY)?.closest(".items [data-id]");
  if (hit && items.has(hit.dataset.id)) {
    erasing.add(hit.dataset.id);
    hit.classList.add("erasing");
  }
}

function move(event) {
  if (tool === "pointer" && event.buttons) {
    const now = Date.now();
    if (now - lastLive < LIVE_EVERY_MS) return;
    lastLive = now;
    const p = at(event);
    ctx.sendRaw({ type: "pointer", ...where(), x: p[0], y: p[1] });
    return;
  }
  if (erasing) { eraseAt(event); return; }
  if (!current) return;
  const p = at(event);
  const points = current.element.points;
  if (current.element.shape === "pen") {
    const last = points[points.length - 1];
    if (points.length >= MAX_POINTS || Math.hypot(p[0] - last[0], p[1] - last[1]) < 2) return;
    points.push(p);
  } else {
    points[1] = p;
  }
  redrawCurrent();
  streamLive(false);
}

function finish(element, node) {
  node.classList.add("pending");
  if (!node.isConnected) board.querySelector(".items").append(node);
  pending.set(element.id, node);
  ctx.send({ kind: "board.add", ...where(), element }, () => {
    node.remove();
    pending.delete(element.id);
  });
}

function up() {
  if (erasing) {
    if (erasing.size) ctx.send({ kind: "board.erase", ids: [...erasing] });
    erasing = null;
    return;
  }
  if (!current) return;
  const { element, node } = current;
  current = null;
  finish(element, node);
}

// The board shows a slide (its picture, a data: URL) and its notes; null: its own pages.
export function showSlide(key, picture, text) {
  if (!board) return;
  const background = board.querySelector(".slide-bg");
  const moved = (slide && slide.key) !== key;
  slide = key ? { key, label: text } : null;
  if (picture) background.setAttribute("href", picture);
  background.style.display = key ? "" : "none";
  // The board's own page buttons have nothing to do over a slide.
  document.getElementById("board-area").classList.toggle("on-slide", Boolean(key));
  if (moved) redraw(); else label();
}

function download(name, url) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

function pageSvg() {
  const copy = board.cloneNode(true);
  copy.querySelector(".live-layer")?.remove();
  copy.setAttribute("xmlns", SVG);
  copy.setAttribute("width", W);
  copy.setAttribute("height", H);
  copy.querySelectorAll(".pending").forEach((n) => n.remove());
  copy.insertBefore(svg("rect", { width: W, height: H, fill: "#ffffff" }), copy.firstChild);
  return new XMLSerializer().serializeToString(copy);
}

function exportSvg() {
  const url = URL.createObjectURL(new Blob([pageSvg()], { type: "image/svg+xml" }));
  download(`whiteboard-page-${frame.shown + 1}.svg`, url);
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function exportPng() {
  const canvas = await rasterize(pageSvg());
  download(`whiteboard-page-${frame.shown + 1}.png`, canvas.toDataURL("image/png"));
}

// The whole board, every page in order, as one PDF (a picture a page), built here.
async function exportPdf() {
  const canvases = [];
  for (let page = 0; page < frame.pages; page++) {
    const elements = [...items.values()].filter((e) => !e.slide && e.page === page);
    canvases.push(await rasterize(boardPageSvg(elements)));
  }
  const url = URL.createObjectURL(await pdfOfCanvases(canvases));
  download("whiteboard.pdf", url);
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function setupBoard(context) {
  ctx = context;
  board = document.getElementById("board");
  if (!board) return false;
  const background = svg("image", {
    class: "slide-bg", x: 0, y: 0, width: W, height: H, preserveAspectRatio: "xMidYMid meet",
  });
  background.style.display = "none";
  board.append(background, svg("g", { class: "items" }), svg("g", { class: "live-layer" }));
  board.addEventListener("pointerdown", down);
  board.addEventListener("pointermove", move);
  board.addEventListener("pointerup", up);
  board.addEventListener("pointercancel", up);
  const tools = document.querySelectorAll("[data-board-tool]");
  tools.forEach((button) => button.addEventListener("click", () => {
    tool = button.dataset.boardTool;
    tools.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    board.dataset.tool = tool;
  }));
  const on = (id, handler) => document.getElementById(id)?.addEventListener("click", handler);
  on("board-undo", () => ctx.send({ kind: "board.undo" }));
  on("board-redo", () => ctx.send({ kind: "board.redo" }));
  on("board-prev", () => { if (frame.shown > 0) ctx.send({ kind: "board.show_page", page: frame.shown - 1 }); });
  on("board-next", () => {
    if (frame.shown + 1 < frame.pages) ctx.send({ kind: "board.show_page", page: frame.shown + 1 });
  });
  on("board-add-page", () => ctx.send({ kind: "board.add_page" }));
  on("board-clear", () => ctx.send({ kind: "board.clear", ...where() }));
  on("board-export-svg", exportSvg);
  on("board-export-png", exportPng);
  on("board-export-pdf", () => exportPdf().catch((error) => ctx.say(error.message)));
  document.getElementById("board-moderators-only")?.addEventListener("change", (event) => {
    ctx.send({ kind: "board.policy", who: event.target.checked ? "moderators" : "everyone" });
  });
  // Keyboard: the board takes focus; Enter places the Text (the text tool) in its middle,
  // a little lower each time, for whoever cannot point.
  board.setAttribute("tabindex", "0");
  let placed = 0;
  board.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const text = document.getElementById("board-text").value.trim();
    if (!text) { ctx.say("Type the text to place first (Text, in the whiteboard's tools)."); return; }
    if (!mayDraw()) return;
    const y = 120 + ((placed++ * 60) % (H - 200));
    const element = {
      id: crypto.randomUUID(), shape: "text", points: [[W / 2 - 200, y]], text,
      color: document.getElementById("board-color").value,
      width: Number(document.getElementById("board-width").value),
    };
    finish(element, nodeOf(element));
    event.preventDefault();
  });
  // Keyboard: Ctrl+Z / Ctrl+Y (or Ctrl+Shift+Z) undo and redo on the board.
  document.getElementById("board-area").addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.target.tagName === "INPUT") return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) { ctx.send({ kind: "board.undo" }); event.preventDefault(); }
    if (key === "y" || (key === "z" && event.shiftKey)) { ctx.send({ kind: "board.redo" }); event.preventDefault(); }
  });
  return true;
}
