// The meeting client: roster and chat over the room server's WebSocket.
// Each chat line carries the sender's own id; lines stay "pending" until acked, and
// unacknowledged ones are sent again after a reconnect (the server drops duplicates).
// When the room server goes away the page asks the EMS where the meeting runs now
// and reconnects there by itself: no refresh.
// Meeting tools (polls, hands, moderator controls) have a module each under tools/: their
// events go out like chat lines (own id, resent until acknowledged) and their state
// comes back whole, as this page may see it, in `tool_state`.
import { renderPolls, setupPollForm } from "./tools/polls.js";
import { renderHands, setupHands } from "./tools/hands.js";
import { renderModeration, setupModeration } from "./tools/moderation.js";
import { applyBoardDelta, refreshBoardRole, renderBoard, setupBoard, showDrawing } from "./tools/board.js";
import { renderSlides, setupSlides } from "./tools/slides.js";
import { renderWeb, setupWeb } from "./tools/web.js";
import { showBroadcast } from "./broadcasts.js";
import { refreshFiles, renderFiles, setupFiles } from "./files.js";
import { setupMedia } from "./media.js";

const root = document.getElementById("meeting");
const meetingId = root.dataset.meetingId;
let token = root.dataset.token;
let socketUrl = null;
const emsUrl = root.dataset.emsUrl;
const rosterEl = document.getElementById("roster");
const messagesEl = document.getElementById("messages");
const stateEl = document.getElementById("connection");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-input");
const endButton = document.getElementById("end-meeting");
const endedEl = document.getElementById("ended");
// This person's role now (moderator, presenter or participant): a moderator's grant or
// take-back changes it while the page is open (the moderation tool's `you`).
let myRole = root.dataset.role;
let grantedRoles = {}; // name -> the role a moderator granted (the roster shows it)
let mutedNames = [];
const openMenus = new Set(); // names whose moderator actions are open in the roster
const pageConfig = JSON.parse(document.getElementById("meeting-config").textContent);

const shown = new Set();
const unacked = new Map(); // event id -> the message (chat line or tool event), until acked
const toolEvents = new Map(); // ids of the tool events among them -> what to do if refused
let hands = []; // names with a hand raised, first raised first
let lastError = "";
let socket;
let ended = false;
let retryDelay = 250;
let lastHeard = Date.now(); // when the room server last said anything

function setState(text, live) {
  stateEl.textContent = text;
  stateEl.classList.toggle("live", live);
}

// The roster: the whole list comes in `welcome`, then only changes (`joined`, `left`),
// so a meeting of 500 does not send 500 names to everyone at every arrival. Each person
// is one <li>, put in its place (moderators first, then by name) and taken out alone.
const rosterItems = new Map(); // user -> their <li>
// Community presence beside the names of signed-in people of the reader's organisation
// (the room server sends `presence` only for them, and none to a guest's page).
const presenceOf = new Map(); // user -> { state, status }, offline ones left out
const PRESENCE_LABELS = { available: "Available", away: "Away", in_meeting: "In a meeting", dnd: "Do not disturb" };

function showPresence(li) {
  const badge = li.querySelector(".presence");
  const presence = presenceOf.get(li.dataset.user);
  badge.hidden = !presence;
  badge.className = presence ? `presence presence-${presence.state}` : "presence";
  badge.dataset.state = presence ? presence.state : "offline";
  badge.textContent = presence ? PRESENCE_LABELS[presence.state] || presence.state : "";
  badge.title = presence ? presence.status : "";
}

function setPresence(msg) {
  if (msg.state === "offline") presenceOf.delete(msg.user);
  else presenceOf.set(msg.user, { state: msg.state, status: msg.status || "" });
  const li = rosterItems.get(msg.user);
  if (li) showPresence(li);
}

// A person's role as the roster shows it: the token's (`li.dataset.role`), or a grant.
function roleOf(p) { return grantedRoles[p.user] || p.role; }

// Raised hands first (in the order raised), then moderators, then by name.
function rosterBefore(a, b) {
  const ha = hands.indexOf(a.user);
  const hb = hands.indexOf(b.user);
  if ((ha >= 0) !== (hb >= 0)) return ha >= 0;
  if (ha >= 0) return ha < hb;
  const am = roleOf(a) === "moderator";
  if (am !== (roleOf(b) === "moderator")) return am;
  const x = a.user.toLowerCase();
  const y = b.user.toLowerCase();
  return x < y || (x === y && a.user < b.user);
}

function smallButton(text, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary small";
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

// A person's hand and, for a moderator, what they may do to them.
function decorate(li) {
  const user = li.dataset.user;
  const position = hands.indexOf(user);
  const hand = li.querySelector(".hand");
  hand.textContent = position >= 0 ? ` ✋ ${position + 1}` : "";
  hand.title = position >= 0 ? "Hand raised" : "";
  const role = roleOf({ user, role: li.dataset.role });
  li.querySelector(".role").textContent = role === "participant" ? "" : ` (${role})`;
  const muted = mutedNames.includes(user);
  li.querySelector(".muted-mark").textContent = muted ? " 🔇" : "";
  li.querySelector(".muted-mark").title = muted ? "Muted" : "";
  const actions = li.querySelector(".actions");
  actions.replaceChildren();
  if (myRole !== "moderator" || user === me()) return;
  if (position >= 0) {
    actions.append(smallButton("Lower hand", `Lower the hand of ${user}`,
      () => sendTool({ kind: "hand.lower", user })));
  }
  // The rest behind one disclosure (kept open across re-renders of the roster).
  const menu = document.createElement("details");
  menu.className = "person-menu";
  menu.open = openMenus.has(user);
  menu.addEventListener("toggle", () => { if (menu.open) openMenus.add(user); else openMenus.delete(user); });
  const summary = document.createElement("summary");
  summary.textContent = "⋯";
  summary.setAttribute("aria-label", `Moderator actions for ${user}`);
  const items = document.createElement("div");
  menu.append(summary, items);
  actions.append(menu);
  // The meeting's own moderators (the token's role) keep theirs: nothing to grant or take.
  if (li.dataset.role !== "moderator") {
    const granted = grantedRoles[user];
    if (granted !== "presenter") {
      items.append(smallButton("Make presenter", `Make ${user} presenter`,
        () => sendTool({ kind: "moderation.grant", user, role: "presenter" })));
    }
    if (granted !== "moderator") {
      items.append(smallButton("Make moderator", `Make ${user} moderator`,
        () => sendTool({ kind: "moderation.grant", user, role: "moderator" })));
    }
    if (granted) {
      items.append(smallButton("Take back", `Take back the role of ${user}`,
        () => sendTool({ kind: "moderation.take_back", user })));
    }
  }
  if (!muted) {
    items.append(smallButton("Mute", `Mute ${user}`,
      () => sendTool({ kind: "moderation.mute", user })));
  }
  if (role !== "moderator") {
    items.append(smallButton("Remove", `Remove ${user} from the meeting`,
      () => sendTool({ kind: "moderation.remove", user })));
  }
}

function rosterItem(p) {
  const li = document.createElement("li");
  li.dataset.user = p.user;
  li.dataset.role = p.role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = p.user;
  const role = document.createElement("span");
  role.className = "role";
  const muted = document.createElement("span");
  muted.className = "muted-mark";
  who.append(role, muted);
  const hand = document.createElement("span");
  hand.className = "hand";
  const presence = document.createElement("span");
  presence.className = "presence";
  const actions = document.createElement("span");
  actions.className = "actions";
  li.append(who, presence, hand, actions);
  decorate(li);
  showPresence(li);
  rosterItems.set(p.user, li);
  return li;
}

function sortRoster() {
  const items = [...rosterEl.children];
  const person = (li) => ({ user: li.dataset.user, role: li.dataset.role });
  items.sort((a, b) => (rosterBefore(person(a), person(b)) ? -1 : rosterBefore(person(b), person(a)) ? 1 : 0));
  items.forEach(decorate);
  rosterEl.replaceChildren(...items);
}

function countRoster() {
  document.getElementById("roster-count").textContent = String(rosterEl.children.length);
}

function addToRoster(p) {
  removeFromRoster(p.user);
  const li = rosterItem(p);
  // The list is in order: the new one goes before the first that sorts after it.
  const next = [...rosterEl.children].find(
    (other) => rosterBefore(p, { user: other.dataset.user, role: other.dataset.role }));
  rosterEl.insertBefore(li, next || null);
  countRoster();
}

function removeFromRoster(user) {
  rosterItems.get(user)?.remove();
  rosterItems.delete(user);
  countRoster();
}

function renderRoster(roster) { // the whole list, already in order (from `welcome`)
  rosterItems.clear();
  rosterEl.replaceChildren(...roster.map(rosterItem));
  sortRoster();
  countRoster();
}

function me() { return document.getElementById("me").textContent; }

// Said politely to screen readers (and nowhere else): a hand raised, a poll opened.
const announcer = document.getElementById("announcer");
function announce(text) {
  announcer.textContent = "";
  setTimeout(() => { announcer.textContent = text; }, 50);
}

// A short message about the tools, shown under the tool bar (and read out politely).
const toolMessage = document.getElementById("tool-message");
let toolMessageTimer;
function say(text) {
  toolMessage.textContent = text;
  clearTimeout(toolMessageTimer);
  toolMessageTimer = setTimeout(() => { toolMessage.textContent = ""; }, 8000);
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

// A tool event: kept until acknowledged, sent again after a reconnect, like a chat line.
function sendTool(event, onRefused = () => {}) {
  const id = crypto.randomUUID();
  const message = { type: "tool", id, event };
  unacked.set(id, message);
  toolEvents.set(id, onRefused);
  send(message); // otherwise it goes out with the others once reconnected
}

const toolContext = { role: myRole, send: sendTool, sendRaw: send, say };

// A moderator made this person presenter or moderator, or took it back: the controls of
// the role show or hide at once (room.css, by data-role); the room server sends the
// tools' views as the new role sees them.
function setMyRole(role) {
  myRole = role;
  toolContext.role = role;
  root.dataset.role = role;
  document.getElementById("my-role").textContent = role === "participant" ? "" : `(${role})`;
  refreshBoardRole(); // who may draw: said beside the board
  refreshFiles(role); // "Present" beside a PDF, the upload: presenters only
}
const pollsEl = document.getElementById("polls");
const stageEmpty = document.getElementById("stage-empty");

function showToolState(msg) {
  if (msg.tool === "poll") {
    stageEmpty.hidden = renderPolls(pollsEl, msg.state, toolContext) > 0 || hasBoard;
  } else if (msg.tool === "hand") {
    hands = msg.state.queue;
    renderHands(hands, me());
    sortRoster();
  } else if (msg.tool === "moderation") {
    grantedRoles = msg.state.roles;
    mutedNames = msg.state.muted;
    if (msg.state.you.role !== myRole) setMyRole(msg.state.you.role);
    renderModeration(msg.state, toolContext);
    media.setMuted(msg.state.you.muted);
    sortRoster();
  } else if (msg.tool === "board") {
    renderBoard(msg.state);
  } else if (msg.tool === "slides") {
    renderSlides(msg.state);
  } else if (msg.tool === "web") {
    renderWeb(msg.state);
    if (msg.state.open) stageEmpty.hidden = true;
  }
  if (msg.announce) announce(msg.announce);
}

// Reactions: a bubble for a few seconds, and each reaction's count on its button.
const bubbles = document.getElementById("reaction-bubbles");
function showReaction(msg) {
  const bubble = document.createElement("span");
  bubble.className = "bubble";
  bubble.textContent = `${msg.emoji} ${msg.user}`;
  bubbles.append(bubble);
  setTimeout(() => bubble.remove(), 4000);
  for (const button of document.querySelectorAll(".reaction")) {
    const count = msg.counts[button.dataset.emoji];
    button.querySelector(".count").textContent = count ? String(count) : "";
  }
}
document.querySelectorAll(".reaction").forEach((button) => {
  button.addEventListener("click", () => send({ type: "react", emoji: button.dataset.emoji }));
});
setupHands(toolContext);
setupModeration(toolContext);
setupPollForm(toolContext);
setupSlides(toolContext);
setupWeb(toolContext);
const hasBoard = setupBoard(toolContext);
const media = setupMedia({ send, me }); // audio, video, screen sharing (media.js)
stageEmpty.hidden = hasBoard;
if (!pageConfig.tools.includes("polls")) stageEmpty.textContent = "Nothing on the stage yet.";

function renderLine(line) {
  if (shown.has(line.id)) {
    document.getElementById("msg-" + line.id)?.classList.remove("pending");
    return;
  }
  shown.add(line.id);
  const li = document.createElement("li");
  li.id = "msg-" + line.id;
  const who = document.createElement("span");
  who.className = "sender";
  who.textContent = line.sender;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = line.text;
  li.append(who, text);
  messagesEl.append(li);
  messagesEl.scrollTop = messagesEl.scrollHeight;
}

// A notice from the Meeting Center (the meeting's time is over, a message to everyone).
function showNotice(text) {
  const notices = document.getElementById("notices");
  const item = document.createElement("li");
  item.textContent = text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => item.remove());
  item.append(" ", dismiss);
  notices.append(item);
}

// The room server will not take this line (longer than the configured limit): say so
// beside it, and do not send it again.
function refuseLine(id, reason) {
  unacked.delete(id);
  if (toolEvents.has(id)) { // a tool event: said, not shown as chat
    toolEvents.get(id)();
    toolEvents.delete(id);
    say(reason);
    return;
  }
  const li = document.getElementById("msg-" + id);
  if (!li) return;
  li.classList.remove("pending");
  li.classList.add("refused");
  const why = document.createElement("span");
  why.className = "why";
  why.textContent = " (not sent: " + reason + ")";
  li.append(why);
}

setupFiles({ emsUrl, meetingId, token: () => token, role: myRole });

function showEnded(reason) {
  ended = true;
  endedEl.replaceChildren();
  const p = document.createElement("p");
  p.textContent = "The meeting has ended (" + reason + "). ";
  const a = document.createElement("a");
  a.href = emsUrl + "/";
  a.textContent = "Back to the Meeting Center";
  p.append(a);
  endedEl.append(p);
  endedEl.hidden = false;
  setState("ended", false);
}

// Another person in the meeting has our name: back to the Meeting Center to choose one.
function showNameTaken() {
  ended = true;
  const p = document.createElement("p");
  p.textContent = document.getElementById("connection").textContent + " ";
  const a = document.createElement("a");
  a.href = `${emsUrl}/m/${meetingId}`;
  a.textContent = "Choose another name";
  p.append(a);
  endedEl.replaceChildren(p);
  endedEl.hidden = false;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = socketUrl ||
    `${scheme}://${location.host}/meeting/${meetingId}/ws?token=${encodeURIComponent(token)}`;
  // The first time, the socket early-socket.js opened while this module loaded.
  const early = window.mootEarlySocket;
  window.mootEarlySocket = null;
  // roster=changes: this page takes `joined` / `left` rather than the whole roster.
  const ws = early ? early.ws : new WebSocket(url + "&roster=changes");
  socket = ws;
  lastHeard = Date.now();
  let refused = false;
  ws.onmessage = (event) => {
    lastHeard = Date.now();
    const msg = JSON.parse(event.data);
    switch (msg.type) {
      case "welcome":
        setState("connected", true);
        retryDelay = 250;
        presenceOf.clear(); // this server tells it afresh, after the welcome
        renderRoster(msg.roster);
        renderFiles(msg.files || []);
        msg.history.forEach(renderLine);
        media.onReconnect(); // its media_state follows: it publishes and subscribes again
        for (const message of unacked.values()) ws.send(JSON.stringify(message));
        break;
      case "tool_state": showToolState(msg); break;
      case "tool_delta":
        if (msg.tool === "board") applyBoardDelta(msg.delta);
        if (msg.announce) announce(msg.announce);
        break;
      case "drawing": showDrawing(msg); break;
      case "reaction": showReaction(msg); break;
      case "joined": addToRoster(msg); break;
      case "left": presenceOf.delete(msg.user); removeFromRoster(msg.user); break;
      case "presence": setPresence(msg); break;
      case "files": renderFiles(msg.files); break;
      case "chat": renderLine(msg); break;
      case "ack":
        unacked.delete(msg.id);
        toolEvents.delete(msg.id);
        document.getElementById("msg-" + msg.id)?.classList.remove("pending");
        break;
      case "ended": showEnded(msg.reason); break;
      case "moved": ws.close(); break;
      case "notice":
        if (msg.broadcast_id != null) showBroadcast(msg); else showNotice(msg.text);
        break;
      case "media_state": media.onState(msg); break;
      case "media_signal": media.onSignal(msg); break;
      case "pong": break;
      case "error":
        if (msg.id) { refuseLine(msg.id, msg.message); break; } // one line, not the page
        if (msg.message.includes("too fast")) { say(msg.message); break; } // a reaction
        refused = true; lastError = msg.message; setState(msg.message, false); break;
    }
  };
  ws.onclose = (event) => {
    if (ended || socket !== ws) return;
    if (event.code === 4409) { showNameTaken(); return; } // someone else has this name here
    if (event.code === 4403) { showEnded(lastError || "you may not enter it"); return; } // removed, locked
    rejoin(refused);
  };
  if (early) { // what came before this module ran, in order
    for (const event of early.messages) ws.onmessage(event);
    if (early.closed) ws.onclose(early.closed);
  }
}

// Ask the EMS where the meeting runs now, with our (possibly expired) token as proof.
async function rejoin(afterRefusal) {
  setState("reconnecting…", false);
  await new Promise((resolve) => setTimeout(resolve, afterRefusal ? 1000 : retryDelay));
  retryDelay = Math.min(retryDelay * 2, 2000);
  try {
    const answer = await fetch(`${emsUrl}/api/v1/meetings/${meetingId}/rejoin`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
    if (answer.status === 403 || answer.status === 404 || answer.status === 409) {
      const body = await answer.json().catch(() => ({}));
      showEnded(body.detail || "it can no longer be attended");
      return;
    }
    if (answer.ok) {
      const target = await answer.json();
      token = target.token;
      socketUrl = target.socket_url;
    }
  } catch (err) {
    // The EMS is unreachable for now: try again.
  }
  connect();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  const id = crypto.randomUUID();
  // Shown at once, greyed until the room server acknowledges it.
  renderLine({ id, sender: document.getElementById("me").textContent, text });
  document.getElementById("msg-" + id).classList.add("pending");
  unacked.set(id, { type: "chat", id, text });
  send(unacked.get(id)); // otherwise it goes out with the others once reconnected
  input.value = "";
});

endButton?.addEventListener("click", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end_meeting" }));
});

// A line not acknowledged within a few seconds (the EMS's journal was out of reach)
// goes out again; the room server drops the copies it already has.
setInterval(() => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  for (const message of unacked.values()) socket.send(JSON.stringify(message));
}, 5000);

// Keep-alive: a room server that hangs (or a network that is cut) closes nothing, so
// the page asks every second and, after 3 s without a word (or a connection not
// answered in 3 s), gives up on that server and asks the EMS where the meeting runs.
setInterval(() => {
  if (!socket || ended) return;
  const waiting = socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING;
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
  if (waiting && Date.now() - lastHeard > 3000) {
    const silent = socket;
    socket = null; // its close event, whenever it comes, is then ignored
    silent.close();
    rejoin(false);
  }
}, 1000);

connect();
