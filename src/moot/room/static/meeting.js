// The meeting client: roster and chat over the room server's WebSocket.
// Each chat line carries the sender's own id; lines stay "pending" until acked.
const root = document.getElementById("meeting");
const meetingId = root.dataset.meetingId;
const token = root.dataset.token;
const emsUrl = root.dataset.emsUrl;
const rosterEl = document.getElementById("roster");
const messagesEl = document.getElementById("messages");
const stateEl = document.getElementById("connection");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-input");
const endButton = document.getElementById("end-meeting");
const endedEl = document.getElementById("ended");

const shown = new Set();
let socket;

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

function showEnded(reason) {
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
  socket = new WebSocket(`${scheme}://${location.host}/meeting/${meetingId}/ws?token=${encodeURIComponent(token)}`);
  socket.onopen = () => setState("connected", true);
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    switch (msg.type) {
      case "welcome":
        renderRoster(msg.roster);
        msg.history.forEach(renderLine);
        break;
      case "roster": renderRoster(msg.roster); break;
      case "chat": renderLine(msg); break;
      case "ack": document.getElementById("msg-" + msg.id)?.classList.remove("pending"); break;
      case "ended": showEnded(msg.reason); break;
      case "error": setState(msg.message, false); break;
    }
  };
  socket.onclose = () => { if (endedEl.hidden) setState("disconnected", false); };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  const id = crypto.randomUUID();
  // Shown at once, greyed until the room server acknowledges it.
  renderLine({ id, sender: document.getElementById("me").textContent, text });
  document.getElementById("msg-" + id).classList.add("pending");
  socket.send(JSON.stringify({ type: "chat", id, text }));
  input.value = "";
});

endButton?.addEventListener("click", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end_meeting" }));
});

connect();
