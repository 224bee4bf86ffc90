// How a board element (protocol/tools.py, BoardElement) looks: shared by the meeting page
// (room server) and the recording page (EMS), both serve this folder as /static/. Pure:
// element -> SVG node, page -> SVG text; no socket, no page state.
import { getStroke } from "../vendor/perfect-freehand/index.js";

export const SVG = "http://www.w3.org/2000/svg";
export const W = 1600;
export const H = 900;

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// The outline as quadratic curves through its midpoints. Whole units (a 1600-unit page:
// under a pixel on any screen) and one join: toFixed() made a late joiner's board of
// 5,000 strokes several times slower to draw (bench/board.py). An outline point less than
// a unit from the last one kept is left out: as invisible, and a third of a stroke's
// points (its round ends), so a third less to parse, lay out and paint.
function pathOf(outline) {
  const points = [];
  let lastX = Infinity;
  let lastY = Infinity;
  for (const p of outline) {
    const dx = p[0] - lastX;
    const dy = p[1] - lastY;
    if (dx * dx + dy * dy >= 1) {
      points.push(p);
      lastX = p[0];
      lastY = p[1];
    }
  }
  const n = points.length;
  if (!n) return "";
  const out = new Array(n * 4 + 5);
  out[0] = "M";
  out[1] = Math.round(points[0][0]);
  out[2] = Math.round(points[0][1]);
  out[3] = "Q";
  let k = 4;
  for (let i = 0; i < n; i++) {
    const p = points[i];
    const q = points[(i + 1) % n];
    out[k++] = Math.round(p[0]);
    out[k++] = Math.round(p[1]);
    out[k++] = Math.round((p[0] + q[0]) / 2);
    out[k++] = Math.round((p[1] + q[1]) / 2);
  }
  out[k] = "Z";
  return out.join(" ");
}

// A pen stroke drawn plainly: its points joined, at about the outline's width. A big board
// shows these first (board.js), at a tiny part of perfect-freehand's cost (three quarters of
// a late joiner's drawing of 5,000 strokes, bench/board.py), then puts nodeOf's in place.
export function plainPenNode(e) {
  const out = new Array(e.points.length * 2 + 1);
  out[0] = "M";
  let k = 1;
  for (const p of e.points) { out[k++] = Math.round(p[0]); out[k++] = Math.round(p[1]); }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", out.join(" "));
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", e.color);
  path.setAttribute("stroke-width", e.width * 1.5);
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  path.setAttribute("class", "el plain");
  path.setAttribute("data-id", e.id);
  return path;
}

// The SVG node of one element.
export function nodeOf(e) {
  if (e.shape === "pen") { // most of a board: set straight, no attribute object per stroke
    const outline = getStroke(e.points, { size: e.width * 2, thinning: 0.5, smoothing: 0.5, streamline: 0.5 });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", pathOf(outline));
    path.setAttribute("fill", e.color);
    path.setAttribute("class", "el");
    path.setAttribute("data-id", e.id);
    return path;
  }
  const [a, b = a] = e.points;
  const line = { stroke: e.color, "stroke-width": e.width, "stroke-linecap": "round", fill: "none" };
  let node;
  if (e.shape === "line") {
    node = svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], ...line });
  } else if (e.shape === "rect") {
    node = svg("rect", {
      x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]),
      width: Math.abs(b[0] - a[0]), height: Math.abs(b[1] - a[1]), ...line,
    });
  } else if (e.shape === "ellipse") {
    node = svg("ellipse", {
      cx: (a[0] + b[0]) / 2, cy: (a[1] + b[1]) / 2,
      rx: Math.abs(b[0] - a[0]) / 2, ry: Math.abs(b[1] - a[1]) / 2, ...line,
    });
  } else if (e.shape === "arrow") {
    node = svg("g");
    const angle = Math.atan2(b[1] - a[1], b[0] - a[0]);
    const head = 10 + e.width * 3;
    const wing = (turn) => [b[0] - head * Math.cos(angle + turn), b[1] - head * Math.sin(angle + turn)];
    node.append(
      svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], ...line }),
      svg("polygon", { points: [b, wing(0.45), wing(-0.45)].map((p) => p.join(",")).join(" "), fill: e.color }),
    );
  } else {
    node = svg("text", { x: a[0], y: a[1], fill: e.color, "font-size": 12 + e.width * 6, "font-family": "sans-serif" });
    node.textContent = e.text;
  }
  node.classList.add("el");
  node.dataset.id = e.id;
  return node;
}

// One page as a standalone SVG document (white background), from its elements in order.
export function pageSvg(elements) {
  const root = svg("svg", { xmlns: SVG, width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(svg("rect", { width: W, height: H, fill: "#ffffff" }));
  for (const e of elements) root.append(nodeOf(e));
  return new XMLSerializer().serializeToString(root);
}

// An SVG document drawn on a canvas of the page's size.
export function rasterize(svgText) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = W;
      canvas.height = H;
      canvas.getContext("2d").drawImage(image, 0, 0);
      resolve(canvas);
    };
    image.onerror = () => reject(new Error("the board page could not be drawn"));
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svgText);
  });
}
