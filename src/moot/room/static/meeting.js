// The meeting client: roster and chat over the room server's WebSocket.
// Each chat line carries the sender's own id; lines stay "pending" until acked, and
// unacknowledged ones are sent again after a reconnect (the server drops duplicates).
// When the room server goes away the page asks the EMS where the meeting runs now
// and reconnects there by itself: no refresh.
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

const shown = new Set();
const unacked = new Map(); // event id -> text
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

function rosterBefore(a, b) {
  if ((a.role === "moderator") !== (b.role === "moderator")) return a.role === "moderator";
  const x = a.user.toLowerCase();
  const y = b.user.toLowerCase();
  return x < y || (x === y && a.user < b.user);
}

function rosterItem(p) {
  const li = document.createElement("li");
  li.textContent = p.user;
  li.dataset.user = p.user;
  li.dataset.role = p.role;
  if (p.role === "moderator") {
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = " (moderator)";
    li.append(role);
  }
  rosterItems.set(p.user, li);
  return li;
}

function addToRoster(p) {
  removeFromRoster(p.user);
  const li = rosterItem(p);
  // The list is in order: the new one goes before the first that sorts after it.
  const next = [...rosterEl.children].find(
    (other) => rosterBefore(p, { user: other.dataset.user, role: other.dataset.role }));
  rosterEl.insertBefore(li, next || null);
}

function removeFromRoster(user) {
  rosterItems.get(user)?.remove();
  rosterItems.delete(user);
}

function renderRoster(roster) { // the whole list, already in order (from `welcome`)
  rosterItems.clear();
  rosterEl.replaceChildren(...roster.map(rosterItem));
}

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
  const li = document.getElementById("msg-" + id);
  if (!li) return;
  li.classList.remove("pending");
  li.classList.add("refused");
  const why = document.createElement("span");
  why.className = "why";
  why.textContent = " (not sent: " + reason + ")";
  li.append(why);
}

// A message to all users from the administrators (through the EMS): a banner on top,
// shown once per id, gone at its expiry or when withdrawn; a dismissal is remembered in
// this browser (by id, for this room server's pages).
// The banner is built as in the EMS's static/notices.js, on purpose not shared: this page
// is served by the room server, another origin, and a meeting must keep running while the
// EMS is away, so it loads no script from the EMS; and its localStorage is its own, so the
// dismissed lists are two anyway. Change both together.
const broadcastsEl = document.getElementById("broadcasts");
const DISMISSED = "moot-dismissed-broadcasts";

function dismissedBroadcasts() {
  try { return new Set(JSON.parse(localStorage.getItem(DISMISSED) || "[]")); } catch { return new Set(); }
}

const broadcastTimers = new Map(); // id -> the timer that takes its banner away at expiry

function removeBroadcast(id) {
  clearTimeout(broadcastTimers.get(id));
  broadcastTimers.delete(id);
  document.getElementById("broadcast-" + id)?.remove();
}

function showBroadcast(msg) {
  const id = String(msg.broadcast_id);
  // Withdrawn is said outright: the expiry it comes with is the EMS's clock, which this
  // browser's may be behind.
  if (msg.withdrawn) { removeBroadcast(id); return; }
  const left = msg.expires_at ? Date.parse(msg.expires_at) - Date.now() : Infinity;
  if (left <= 0 || dismissedBroadcasts().has(id)) { removeBroadcast(id); return; }
  if (document.getElementById("broadcast-" + id)) return;
  const item = document.createElement("div");
  item.className = "broadcast";
  item.id = "broadcast-" + id;
  item.setAttribute("role", "alert");
  const from = document.createElement("strong");
  from.textContent = "Message from the administrators: ";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = msg.text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.setAttribute("aria-label", "Dismiss the message from the administrators");
  dismiss.addEventListener("click", () => {
    const seen = [...dismissedBroadcasts(), id].slice(-100);
    try { localStorage.setItem(DISMISSED, JSON.stringify(seen)); } catch { /* private mode */ }
    removeBroadcast(id);
  });
  item.append(from, text, " ", dismiss);
  broadcastsEl.append(item);
  if (left < 2 ** 31) broadcastTimers.set(id, setTimeout(() => removeBroadcast(id), left));
}

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

function renderFiles(files) {
  filesEl.replaceChildren(...files.map((f) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = f.url;
    a.textContent = f.name;
    if (f.content_type.startsWith("image/")) { a.target = "_blank"; a.rel = "noopener"; }
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = " (" + fileSize(f.size) + ")";
    li.append(a, size);
    return li;
  }));
  document.getElementById("files-count").textContent = String(files.length);
  document.getElementById("files-empty").hidden = files.length > 0;
}

function showFiles(open) {
  filesPanel.hidden = !open;
  filesToggle.setAttribute("aria-expanded", String(open));
  if (open) (filesEl.querySelector("a") || document.getElementById("files-close")).focus();
  else filesToggle.focus();
}
filesToggle.addEventListener("click", () => showFiles(filesPanel.hidden));
document.getElementById("files-close").addEventListener("click", () => showFiles(false));
filesPanel.addEventListener("keydown", (event) => { if (event.key === "Escape") showFiles(false); });

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
  // roster=changes: this page takes `joined` / `left` rather than the whole roster.
  const ws = new WebSocket(url + "&roster=changes");
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
        renderRoster(msg.roster);
        renderFiles(msg.files || []);
        msg.history.forEach(renderLine);
        for (const [id, text] of unacked) ws.send(JSON.stringify({ type: "chat", id, text }));
        break;
      case "joined": addToRoster(msg); break;
      case "left": removeFromRoster(msg.user); break;
      case "files": renderFiles(msg.files); break;
      case "chat": renderLine(msg); break;
      case "ack":
        unacked.delete(msg.id);
        document.getElementById("msg-" + msg.id)?.classList.remove("pending");
        break;
      case "ended": showEnded(msg.reason); break;
      case "moved": ws.close(); break;
      case "notice":
        if (msg.broadcast_id != null) showBroadcast(msg); else showNotice(msg.text);
        break;
      case "pong": break;
      case "error":
        if (msg.id) { refuseLine(msg.id, msg.message); break; } // one line, not the page
        refused = true; setState(msg.message, false); break;
    }
  };
  ws.onclose = (event) => {
    if (ended || socket !== ws) return;
    if (event.code === 4409) { showNameTaken(); return; } // someone else has this name here
    rejoin(refused);
  };
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
  unacked.set(id, text);
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "chat", id, text }));
  } // otherwise it goes out with the others once reconnected
  input.value = "";
});

endButton?.addEventListener("click", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end_meeting" }));
});

// A line not acknowledged within a few seconds (the EMS's journal was out of reach)
// goes out again; the room server drops the copies it already has.
setInterval(() => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  for (const [id, text] of unacked) socket.send(JSON.stringify({ type: "chat", id, text }));
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
