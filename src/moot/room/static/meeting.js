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

function renderRoster(roster) {
  rosterEl.replaceChildren(...roster.map((p) => {
    const li = document.createElement("li");
    li.textContent = p.user;
    if (p.role === "moderator") {
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = " (moderator)";
      li.append(role);
    }
    return li;
  }));
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

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = socketUrl ||
    `${scheme}://${location.host}/meeting/${meetingId}/ws?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(url);
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
        msg.history.forEach(renderLine);
        for (const [id, text] of unacked) ws.send(JSON.stringify({ type: "chat", id, text }));
        break;
      case "roster": renderRoster(msg.roster); break;
      case "chat": renderLine(msg); break;
      case "ack":
        unacked.delete(msg.id);
        document.getElementById("msg-" + msg.id)?.classList.remove("pending");
        break;
      case "ended": showEnded(msg.reason); break;
      case "moved": ws.close(); break;
      case "notice": showNotice(msg.text); break;
      case "pong": break;
      case "error": refused = true; setState(msg.message, false); break;
    }
  };
  ws.onclose = () => {
    if (ended || socket !== ws) return;
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
