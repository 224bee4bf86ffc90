// Replay a recording: each line of the transcript appears at its moment, segment after
// segment, as one recording; the stage (whiteboard, polls, raised hands) shows the tools
// as they were at the player's position, rebuilt here from the journaled events (the same
// rules as the room server's state machines, room/tools/*/state.py). Without JavaScript
// the whole transcript is simply shown.
import { nodeOf } from "/static/board/draw.js";

const player = document.getElementById("player");
const playButton = document.getElementById("play");
const speed = document.getElementById("speed");
const position = document.getElementById("position");
const clock = document.getElementById("clock");
const items = [...document.querySelectorAll("#transcript > li")];
const duration = Number(player.dataset.duration);
const events = JSON.parse(document.getElementById("replay")?.textContent || "[]");

let at = 0; // seconds into the recording
let timer = null;
let last = 0;

function mmss(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// The tools' state, from the first `applied` events --------------------------------------

const MAX_UNDO = 100;
let applied = 0;
let board;
let polls;
let hands;

function reset() {
  applied = 0;
  board = { pages: 1, shown: 0, who: "everyone", items: new Map(), undo: new Map(), redo: new Map() };
  polls = new Map();
  hands = [];
}

function push(stacks, actor, step) {
  stacks.set(actor, [...(stacks.get(actor) || []), step].slice(-MAX_UNDO));
}

function perform(step, inverse) {
  if ((step.action === "added") !== inverse) for (const i of step.items) board.items.set(i.element.id, i);
  else for (const i of step.items) board.items.delete(i.element.id);
}

function applyBoard(e, actor, user) {
  if (e.kind === "board.add") {
    if (board.items.has(e.element.id)) return;
    // A note on a presentation's slide is kept apart (its "page" names the slide): the
    // recording shows the board's own pages.
    const page = e.slide ? `slide ${e.slide}` : e.page;
    const item = { page, element: e.element, by: user };
    board.items.set(e.element.id, item);
    push(board.undo, actor, { action: "added", page, items: [item] });
    board.redo.set(actor, []);
  } else if (e.kind === "board.erase") {
    const found = [...new Set(e.ids)].filter((id) => board.items.has(id)).map((id) => board.items.get(id));
    if (!found.length) return;
    const step = { action: "erased", page: found[0].page, items: found };
    perform(step, false);
    push(board.undo, actor, step);
    board.redo.set(actor, []);
  } else if (e.kind === "board.undo" || e.kind === "board.redo") {
    const undoing = e.kind === "board.undo";
    const [source, target] = undoing ? [board.undo, board.redo] : [board.redo, board.undo];
    const steps = source.get(actor) || [];
    if (!steps.length) return;
    const step = steps[steps.length - 1];
    perform(step, undoing);
    source.set(actor, steps.slice(0, -1));
    push(target, actor, step);
  } else if (e.kind === "board.clear") {
    const page = e.slide ? `slide ${e.slide}` : e.page;
    for (const [id, item] of board.items) if (item.page === page) board.items.delete(id);
    for (const stacks of [board.undo, board.redo]) {
      for (const [who, steps] of stacks) stacks.set(who, steps.filter((s) => s.page !== page));
    }
  } else if (e.kind === "board.add_page") {
    board.shown = board.pages;
    board.pages += 1;
  } else if (e.kind === "board.show_page") {
    board.shown = e.page;
  } else if (e.kind === "board.policy") {
    board.who = e.who;
  }
}

function applyPoll(e, actor) {
  if (e.kind === "poll.create") {
    polls.set(e.poll_id, { question: e.question, options: e.options, open: true, voters: new Set(), results: null });
    return;
  }
  const poll = polls.get(e.poll_id);
  if (!poll) return;
  if (e.kind === "poll.vote") poll.voters.add(actor);
  if (e.kind === "poll.close") { poll.open = false; poll.results = e.results; }
}

function applyHand(e, actor, user) {
  if (e.kind === "hand.raise") hands.push([actor, user]);
  else if (e.kind === "hand.lower_all") hands = [];
  else if (e.kind === "hand.lower") {
    hands = e.user == null || e.user === user
      ? hands.filter(([a]) => a !== actor)
      : hands.filter(([, name]) => name.toLowerCase() !== e.user.toLowerCase());
  }
}

function advanceTo(seconds) {
  if (applied > 0 && events[applied - 1].at > seconds) reset(); // back: replay from the start
  while (applied < events.length && events[applied].at <= seconds) {
    const { kind, event, actor, user } = events[applied++];
    if (kind === "board") applyBoard(event, actor, user);
    else if (kind === "poll") applyPoll(event, actor);
    else if (kind === "hand") applyHand(event, actor, user);
  }
}

// The stage ------------------------------------------------------------------------------

const svgBoard = document.getElementById("board");
// Each event's element -> its SVG node, made once (by the object: an id erased may be
// drawn again later as something else).
const nodes = new WeakMap();
const staged = new Set(events.map((e) => e.kind));
const has = (tool) => staged.has(tool);

function drawBoard() {
  const shown = [...board.items.values()].filter((i) => i.page === board.shown);
  svgBoard.querySelector(".items").replaceChildren(...shown.map((i) => {
    if (!nodes.has(i.element)) nodes.set(i.element, nodeOf(i.element));
    return nodes.get(i.element);
  }));
  const count = shown.length;
  svgBoard.setAttribute("aria-label",
    `Whiteboard, page ${board.shown + 1} of ${board.pages}, ${count} ${count === 1 ? "element" : "elements"}`);
  document.getElementById("board-page").textContent = `Page ${board.shown + 1} of ${board.pages}`;
}

function drawPolls() {
  document.getElementById("polls").replaceChildren(...[...polls.values()].map((poll) => {
    const li = document.createElement("li");
    const q = document.createElement("strong");
    q.textContent = poll.question;
    const state = document.createElement("span");
    state.className = "muted";
    const voted = `${poll.voters.size} voted`;
    state.textContent = poll.open ? ` (open, ${voted})` : ` (closed, ${voted})`;
    const options = document.createElement("ul");
    poll.options.forEach((option, i) => {
      const o = document.createElement("li");
      o.textContent = poll.results ? `${option}: ${poll.results[i]}` : option;
      options.append(o);
    });
    li.append(q, state, options);
    return li;
  }));
}

function drawHands() {
  document.getElementById("hands").replaceChildren(...hands.map(([, name]) => {
    const li = document.createElement("li");
    li.textContent = name;
    return li;
  }));
  document.getElementById("no-hands").hidden = hands.length > 0;
}

let drawnAt = -1;
function stage() {
  if (!events.length) return;
  const before = applied;
  advanceTo(at);
  if (applied === before && drawnAt >= 0) return; // nothing new since the last drawing
  drawnAt = applied;
  if (has("board")) drawBoard();
  if (has("poll")) drawPolls();
  if (has("hand")) drawHands();
  player.dataset.applied = String(applied);
}

if (events.length) {
  reset();
  document.getElementById("replay-board").hidden = !has("board");
  document.getElementById("replay-polls").hidden = !has("poll");
  document.getElementById("replay-hands").hidden = !has("hand");
}

// Audio, video and screen ------------------------------------------------------------------
// Each file Janus recorded (one person's audio, video or screen, in one segment) sits on the
// timeline at its offset: it plays, seeks and pauses with the player, and a video's tile
// shows only while its moment is on. The player's clock leads; a file that strays from it
// by more than DRIFT is sought back in step.

const DRIFT = 0.5; // seconds (at 1×)
const MAX_RATE = 16; // faster than this, browsers play no media: the files wait, paused
const noMedia = document.getElementById("no-media");
const tracks = [...document.querySelectorAll("#replay-media video, #replay-media audio")].map((el) => {
  const tile = el.closest(".replay-tile");
  return { el, tile, offset: Number((tile || el).dataset.offset) };
});

function syncMedia() {
  const rate = Number(speed.value);
  const playing = timer !== null && rate <= MAX_RATE;
  let on = 0;
  for (const { el, tile, offset } of tracks) {
    const local = at - offset;
    // A WebM may not say its length until read through: until then, it ends when it ends.
    const length = Number.isFinite(el.duration) ? el.duration : Infinity;
    const inside = local >= 0 && local < length && !(el.ended && local >= el.currentTime);
    if (tile) tile.hidden = !inside;
    if (!inside) {
      if (!el.paused) el.pause();
      continue;
    }
    on++;
    if (Math.abs(el.currentTime - local) > DRIFT * Math.max(1, rate)) el.currentTime = local;
    if (playing) {
      el.playbackRate = rate;
      if (el.paused) el.play().catch(() => {}); // refused (autoplay): the clock goes on
    } else if (!el.paused) {
      el.pause();
    }
  }
  if (noMedia) noMedia.hidden = on > 0;
}

// The player -----------------------------------------------------------------------------

function show() {
  for (const li of items) li.hidden = Number(li.dataset.offset) > at;
  position.value = at;
  clock.textContent = mmss(at);
  stage();
  syncMedia();
}

function pause() {
  clearInterval(timer);
  timer = null;
  playButton.textContent = "Play";
  syncMedia();
}

function tick() {
  const now = performance.now();
  at = Math.min(duration, at + ((now - last) / 1000) * Number(speed.value));
  last = now;
  show();
  if (at >= duration) {
    pause();
    player.dataset.state = "finished";
  }
}

playButton.addEventListener("click", () => {
  if (timer) return pause();
  if (at >= duration) at = 0;
  player.dataset.state = "playing";
  last = performance.now();
  timer = setInterval(tick, 100);
  playButton.textContent = "Pause";
  show();
});

position.addEventListener("input", () => {
  at = Number(position.value);
  show();
});

// Before playing, the stage shows the start (the transcript stays whole until Play).
stage();
syncMedia();
player.dataset.ready = "true"; // the controls work from now (a test waits for it)
