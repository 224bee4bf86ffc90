// The community client: presence and instant messages (docs/protocol.md, "Community").
// The EMS says where to connect (room servers, fewest connections first) and signs a token;
// the page keeps one WebSocket to one room server, and when it drops shows "Disconnected",
// then "Connecting again…", and connects to the next server by itself. Messages not yet
// acknowledged (stored) are kept and sent again with their own id, so none is lost or
// doubled; messages missed meanwhile come back from the history, by sequence number.

const $ = (id) => document.getElementById(id);
const LABELS = { available: "Available", away: "Away", in_meeting: "In a meeting", dnd: "Do not disturb", offline: "Offline" };
const IDLE_MS = Number(new URLSearchParams(location.search).get("idle") || 300) * 1000;
const TYPING_MS = 4000;

const deviceId = (() => {
  let id = sessionStorage.getItem("moot-community-device");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("moot-community-device", id);
  }
  return id;
})();

const state = {
  me: "", name: "", socket: null, server: "", connected: false, stopped: false,
  contacts: {}, names: {}, blocked: new Set(), presence: new Map(),
  conversations: new Map(), // id -> {id, members, names, title, group, unread, messages: Map(seq -> msg), lastSeq}
  open: null, pending: new Map(), // client id -> {conversation, text}
  chosen: null, idle: false, lastActivity: Date.now(), typingSent: 0, typingTimers: new Map(),
  settings: { presence_enabled: true, instant_messages_enabled: true },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function setConnection(kind, text) {
  const box = $("connection");
  box.dataset.state = kind;
  box.textContent = text;
  $("reconnect").hidden = kind === "connected" || kind === "connecting";
}

// -- connecting ------------------------------------------------------------------------

let attempt = 0;
let everConnected = false;
// The last answer of the Meeting Center (token and servers), and when it came. When the
// page's server dies, the page goes straight to the next server of that list (the list
// is the person's own order, so a dead server's clients spread over the others) without
// asking the Meeting Center first: thousands of pages would all ask at once.
let lastTicket = null;
const TICKET_REUSE_MS = 5 * 60 * 1000; // the token lasts 10 minutes
async function connect() {
  if (state.stopped) return;
  setConnection("connecting", everConnected || attempt ? "Connecting again…" : "Connecting…");
  attempt += 1;
  const lost = state.server;
  if (lastTicket && attempt === 1 && Date.now() - lastTicket.at < TICKET_REUSE_MS) {
    for (const server of lastTicket.servers) {
      if (server.name !== lost && await tryServer(server, lastTicket.token)) return;
    }
  }
  let ticket;
  try {
    const response = await fetch("/api/v1/community/connect", { method: "POST", headers: { accept: "application/json" } });
    ticket = await response.json();
    if (!response.ok) throw new Error(ticket.detail || `the Meeting Center answered ${response.status}`);
  } catch (error) {
    return retry(`Disconnected: ${error.message}`);
  }
  state.me = ticket.me;
  state.name = ticket.name;
  lastTicket = { ...ticket, at: Date.now() };
  for (const server of ticket.servers) {
    if (await tryServer(server, ticket.token)) return;
  }
  retry("Disconnected: no room server answered");
}

function retry(text) {
  setConnection("disconnected", text);
  const delay = Math.min(250 * attempt, 3000);
  setTimeout(() => { if (!state.connected) connect(); }, delay);
}

// Resolves true once the server welcomed us; false if this server would not (try the next).
function tryServer(server, token) {
  return new Promise((resolve) => {
    const url = `${server.url}?token=${encodeURIComponent(token)}&device=${deviceId}`;
    let welcomed = false;
    let socket;
    try { socket = new WebSocket(url); } catch { resolve(false); return; }
    const giveUp = setTimeout(() => { if (!welcomed) socket.close(); }, 2000);
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (!welcomed && message.type === "welcome") {
        welcomed = true;
        clearTimeout(giveUp);
        state.socket = socket;
        state.server = server.name;
        state.connected = true;
        everConnected = true;
        attempt = 0;
        resolve(true);
      }
      if (welcomed) receive(message);
      else if (message.type === "error") showNotice(message.message);
    };
    socket.onclose = () => {
      clearTimeout(giveUp);
      if (!welcomed) { resolve(false); return; }
      if (state.socket !== socket) return;
      state.socket = null;
      state.connected = false;
      setConnection("disconnected", "Disconnected");
      if (!state.stopped) setTimeout(connect, 100); // then "Connecting again…"
    };
  });
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(message));
    return true;
  }
  return false;
}

$("reconnect").addEventListener("click", () => {
  state.stopped = false;
  attempt = 0;
  if (state.socket) state.socket.close(); else connect();
});

// -- what the server says ----------------------------------------------------------------

function receive(message) {
  switch (message.type) {
    case "welcome": return welcome(message);
    case "presence": state.presence.set(message.pid, message); return drawPresenceOf(message.pid);
    case "my_presence": return showMyPresence(message);
    case "contacts": state.contacts = message.contacts; Object.assign(state.names, message.names); watchPeople(); return drawContacts();
    case "blocked": state.blocked = new Set(message.blocked); return drawContacts();
    case "conversation": return addConversation(message, true);
    case "history": return history(message);
    case "message": return incoming(message);
    case "ack": return acknowledged(message);
    case "read": { const c = state.conversations.get(message.conversation); if (c && c.id !== state.open) { c.unread = 0; drawConversations(); } return; }
    case "typing": return typing(message);
    case "settings": return applySettings(message);
    case "notice": return showNotice(message.text);
    case "error": return refused(message);
    default: return undefined;
  }
}

function welcome(message) {
  setConnection("connected", `Connected (${state.server})`);
  state.contacts = message.contacts || {};
  Object.assign(state.names, message.names || {});
  state.blocked = new Set(message.blocked || []);
  applySettings(message);
  if (state.chosen) {
    send({ type: "restore", ...state.chosen, idle: state.idle });
  } else {
    showMyPresence(message);
  }
  for (const conv of message.conversations) addConversation(conv, false);
  drawContacts();
  drawConversations();
  watchPeople();
  // Messages missed while away, and ours not yet acknowledged, in the order written.
  for (const conv of state.conversations.values()) {
    if (conv.loaded) send({ type: "history", conversation: conv.id, after: conv.lastSeq });
  }
  for (const [id, item] of state.pending) send({ type: "send", id, conversation: item.conversation, text: item.text });
}

function applySettings(message) {
  state.settings.presence_enabled = message.presence_enabled !== false;
  state.settings.instant_messages_enabled = message.instant_messages_enabled !== false;
  $("my-presence").hidden = !state.settings.presence_enabled;
  $("send").disabled = !state.settings.instant_messages_enabled;
  $("message-text").disabled = !state.settings.instant_messages_enabled;
  $("chat-error").textContent = state.settings.instant_messages_enabled ? "" : "Instant messages are switched off by the administrator.";
  document.querySelectorAll(".presence").forEach((node) => { node.hidden = !state.settings.presence_enabled; });
}

function refused(message) {
  if (message.fatal) { showNotice(message.message); return; }
  if (message.id && state.pending.has(message.id) && !message.retry) {
    state.pending.delete(message.id);
    const row = document.querySelector(`[data-client-id="${CSS.escape(message.id)}"]`);
    if (row) { row.classList.add("refused"); row.querySelector(".state").textContent = " (not sent)"; }
  }
  $("chat-error").textContent = message.message;
}

function showNotice(text) {
  const box = $("community-notice");
  box.textContent = text;
  box.hidden = false;
}

// -- presence ------------------------------------------------------------------------------

function everyoneWatched() {
  const people = new Set();
  for (const group of Object.values(state.contacts)) for (const pid of group) people.add(pid);
  for (const conv of state.conversations.values()) for (const pid of conv.members) if (pid !== state.me) people.add(pid);
  return [...people];
}

function watchPeople() { send({ type: "watch", people: everyoneWatched() }); }

function presenceBadge(pid) {
  const p = state.presence.get(pid) || { state: "offline", status: "" };
  const label = LABELS[p.state] || p.state;
  return el("span", { class: `presence presence-${p.state}`, "data-pid": pid, "data-state": p.state, hidden: !state.settings.presence_enabled },
    label + (p.status ? ` — ${p.status}` : ""));
}

function drawPresenceOf(pid) {
  document.querySelectorAll(`.presence[data-pid="${CSS.escape(pid)}"]`).forEach((node) => node.replaceWith(presenceBadge(pid)));
}

function showMyPresence(message) {
  $("presence-state").value = message.state === "offline" ? "available" : message.state;
  if (document.activeElement !== $("status-line")) $("status-line").value = message.status || "";
}

$("my-presence").addEventListener("submit", (event) => {
  event.preventDefault();
  state.chosen = { state: $("presence-state").value, status: $("status-line").value, chosen_at: Date.now() / 1000 };
  send({ type: "set_presence", state: state.chosen.state, status: state.chosen.status });
});

function activity() {
  state.lastActivity = Date.now();
  if (state.idle) { state.idle = false; send({ type: "idle", idle: false }); }
}
for (const kind of ["keydown", "pointermove", "pointerdown", "focus"]) window.addEventListener(kind, activity, { passive: true });
setInterval(() => {
  if (!state.idle && Date.now() - state.lastActivity > IDLE_MS) { state.idle = true; send({ type: "idle", idle: true }); }
}, 1000);
setInterval(() => send({ type: "ping" }), 15000);

// -- contacts ------------------------------------------------------------------------------

function nameOf(pid, conv) {
  return state.names[pid] || (conv && conv.names && conv.names[pid]) || pid.split("/").pop();
}

function drawContacts() {
  const box = $("contacts");
  box.replaceChildren();
  const groups = Object.entries(state.contacts).filter(([, people]) => people.length);
  if (!groups.length) box.append(el("p", { class: "hint" }, "No contacts yet: add people below."));
  for (const [group, people] of groups) {
    const list = el("ul", { class: "contact-list", "aria-label": group });
    for (const pid of people) {
      const blocked = state.blocked.has(pid);
      const chat = el("button", { type: "button", class: "link" }, `Chat with ${nameOf(pid)}`);
      chat.addEventListener("click", () => {
        state.wantOpen = "next"; // shown once the server has it
        send({ type: "open_chat", with: pid, name: nameOf(pid) });
      });
      const block = el("button", { type: "button", class: "link" }, blocked ? "Unblock" : "Block");
      block.addEventListener("click", () => send({ type: "block", pid, blocked: !blocked }));
      const remove = el("button", { type: "button", class: "link" }, "Remove");
      remove.addEventListener("click", () => saveContacts(group, pid, false));
      list.append(el("li", { class: "contact", "data-pid": pid },
        el("span", { class: "contact-name" }, nameOf(pid)), " ", presenceBadge(pid), blocked ? " (blocked) " : " ", chat, " ", block, " ", remove));
    }
    box.append(el("h3", {}, group), list);
  }
  const members = $("group-members");
  members.replaceChildren(el("legend", {}, "With"));
  const all = [...new Set(Object.values(state.contacts).flat())];
  if (!all.length) members.append(el("p", { class: "hint" }, "Add contacts first."));
  for (const pid of all) {
    const id = `member-${btoa(pid).replace(/[^A-Za-z0-9]/g, "")}`;
    members.append(el("label", { for: id }, el("input", { type: "checkbox", id, value: pid }), ` ${nameOf(pid)}`));
  }
}

function saveContacts(group, pid, add, name) {
  const contacts = structuredClone(state.contacts);
  if (add) {
    contacts[group] = [...new Set([...(contacts[group] || []), pid])];
    state.names[pid] = name;
  } else {
    contacts[group] = (contacts[group] || []).filter((p) => p !== pid);
  }
  send({ type: "contacts", contacts, names: state.names });
}

$("find-people").addEventListener("submit", async (event) => {
  event.preventDefault();
  const found = $("people-found");
  found.replaceChildren();
  const response = await fetch(`/api/v1/community/people?q=${encodeURIComponent($("people-q").value)}`, { headers: { accept: "application/json" } });
  const people = await response.json();
  if (!response.ok) { found.append(el("li", {}, people.detail || "The search failed.")); return; }
  if (!people.length) found.append(el("li", { class: "hint" }, "Nobody found."));
  for (const person of people) {
    const add = el("button", { type: "button" }, `Add ${person.name}`);
    add.addEventListener("click", () => { saveContacts($("people-group").value.trim() || "Contacts", person.pid, true, person.name); add.disabled = true; });
    found.append(el("li", {}, `${person.name} `, add));
  }
});

// -- conversations -------------------------------------------------------------------------

function addConversation(data, fromServer) {
  let conv = state.conversations.get(data.id);
  if (!conv) {
    conv = { ...data, unread: data.unread || 0, messages: new Map(), lastSeq: 0, loaded: false };
    state.conversations.set(data.id, conv);
  } else {
    Object.assign(conv, { members: data.members, names: data.names, title: data.title });
  }
  for (const [pid, name] of Object.entries(data.names || {})) if (!state.names[pid]) state.names[pid] = name;
  drawConversations();
  if (fromServer) {
    watchPeople();
    if (data.focus !== false && (state.wantOpen === data.id || state.wantOpen === "next")) openConversation(data.id);
  }
}

function titleOf(conv) {
  if (conv.group) return conv.title || "Group chat";
  const other = conv.members.find((p) => p !== state.me);
  return nameOf(other, conv);
}

function drawConversations() {
  const list = $("conversations");
  list.replaceChildren();
  for (const conv of state.conversations.values()) {
    const button = el("button", { type: "button", class: "link", "aria-current": conv.id === state.open ? "true" : null }, titleOf(conv));
    button.addEventListener("click", () => openConversation(conv.id));
    const other = conv.group ? null : conv.members.find((p) => p !== state.me);
    list.append(el("li", { "data-conversation": conv.id }, button, " ", other ? presenceBadge(other) : null,
      conv.unread ? el("span", { class: "unread", "aria-label": `${conv.unread} unread` }, ` ${conv.unread} unread`) : null));
  }
}

function openConversation(id) {
  const conv = state.conversations.get(id);
  if (!conv) return;
  state.wantOpen = null;
  state.open = id;
  conv.unread = 0;
  $("chat").hidden = false;
  $("chat-title").textContent = titleOf(conv);
  $("chat-members").textContent = conv.group ? `With ${conv.members.filter((p) => p !== state.me).map((p) => nameOf(p, conv)).join(", ")}` : "";
  $("chat-error").textContent = "";
  $("typing").textContent = "";
  drawMessages();
  drawConversations();
  if (!conv.loaded) send({ type: "history", conversation: id, after: 0 });
  else markRead(conv);
  $("message-text").focus();
}

function history(message) {
  if (!state.conversations.has(message.conversation)) addConversation({ ...message.info, focus: false }, false);
  const conv = state.conversations.get(message.conversation);
  conv.loaded = true;
  for (const item of message.messages) store(conv, item, message.after > 0);
  if (conv.id === state.open) { drawMessages(); markRead(conv); } else drawConversations();
}

function store(conv, item, countUnread) {
  if (conv.messages.has(item.seq)) return false; // both tabs, a resend, history and live: once
  conv.messages.set(item.seq, item);
  conv.lastSeq = Math.max(conv.lastSeq, item.seq);
  if (item.from === state.me) state.pending.delete(item.id);
  else if (countUnread && (conv.id !== state.open || document.hidden)) conv.unread += 1;
  return true;
}

function incoming(item) {
  const conv = state.conversations.get(item.conversation);
  if (!conv) { send({ type: "history", conversation: item.conversation, after: 0 }); return; }
  if (!store(conv, item, true)) return;
  if (item.from !== state.me) {
    clearTyping(conv.id, item.from);
    notify(conv, item);
  }
  if (conv.id === state.open) { drawMessages(); if (!document.hidden) markRead(conv); }
  drawConversations();
}

function acknowledged(message) {
  state.pending.delete(message.id);
  const row = document.querySelector(`[data-client-id="${CSS.escape(message.id)}"]`);
  if (row) row.querySelector(".state").textContent = "";
}

function markRead(conv) {
  if (conv.lastSeq) send({ type: "read", conversation: conv.id, seq: conv.lastSeq });
}

document.addEventListener("visibilitychange", () => {
  const conv = state.conversations.get(state.open);
  if (!document.hidden && conv) { conv.unread = 0; markRead(conv); drawConversations(); }
});

function linkify(text) {
  const part = el("span", { class: "text" });
  const meeting = new RegExp(`(${location.origin.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/m/[A-Za-z0-9_-]+)`);
  for (const piece of text.split(meeting)) {
    if (meeting.test(piece) && piece.startsWith(location.origin)) part.append(el("a", { href: piece, target: "_blank", rel: "noopener" }, piece));
    else part.append(piece);
  }
  return part;
}

function drawMessages() {
  const conv = state.conversations.get(state.open);
  const list = $("messages");
  list.replaceChildren();
  if (!conv) return;
  const stored = [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
  for (const item of stored) {
    if (item.from !== state.me && state.blocked.has(item.from)) continue;
    list.append(el("li", { class: item.from === state.me ? "mine" : "theirs", "data-seq": item.seq },
      el("strong", {}, item.from === state.me ? "You" : item.name), ": ", linkify(item.text), el("span", { class: "state" }, "")));
  }
  for (const [id, item] of state.pending) {
    if (item.conversation !== conv.id) continue;
    list.append(el("li", { class: "mine pending", "data-client-id": id },
      el("strong", {}, "You"), ": ", linkify(item.text), el("span", { class: "state" }, " (sending…)")));
  }
  list.scrollTop = list.scrollHeight;
}

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function sendText(text) {
  const conv = state.conversations.get(state.open);
  if (!conv || !text.trim()) return;
  const id = newId();
  state.pending.set(id, { conversation: conv.id, text });
  send({ type: "send", id, conversation: conv.id, text }); // if not connected: sent on welcome
  drawMessages();
}

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("chat-error").textContent = "";
  sendText($("message-text").value);
  $("message-text").value = "";
});

$("message-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("send-form").requestSubmit(); }
});

$("message-text").addEventListener("input", () => {
  if (!state.open || Date.now() - state.typingSent < 2500) return;
  state.typingSent = Date.now();
  send({ type: "typing", conversation: state.open });
});

function typing(message) {
  const key = `${message.conversation}|${message.from}`;
  clearTimeout(state.typingTimers.get(key));
  state.typingTimers.set(key, setTimeout(() => clearTyping(message.conversation, message.from), TYPING_MS));
  if (message.conversation === state.open) $("typing").textContent = `${message.name} is typing…`;
}

function clearTyping(conversation, from) {
  clearTimeout(state.typingTimers.get(`${conversation}|${from}`));
  state.typingTimers.delete(`${conversation}|${from}`);
  if (conversation === state.open) $("typing").textContent = "";
}

$("new-group").addEventListener("submit", (event) => {
  event.preventDefault();
  const members = [...$("group-members").querySelectorAll("input:checked")].map((box) => box.value);
  if (!members.length) { $("chat-error").textContent = "Choose at least one contact for the group chat."; return; }
  const names = Object.fromEntries(members.map((pid) => [pid, nameOf(pid)]));
  state.wantOpen = "next";
  send({ type: "create_group", members, names, title: $("group-title").value });
});

$("meet-now").addEventListener("click", async () => {
  const conv = state.conversations.get(state.open);
  if (!conv) return;
  $("meet-now").disabled = true;
  try {
    const response = await fetch("/api/v1/community/meet", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ members: conv.members, title: conv.group ? conv.title : "" }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.detail || `the Meeting Center answered ${response.status}`);
    sendText(`Join my meeting now: ${answer.url}`);
  } catch (error) {
    $("chat-error").textContent = `Meet now failed: ${error.message}`;
  } finally {
    $("meet-now").disabled = false;
  }
});

// -- desktop notifications -----------------------------------------------------------------

function notify(conv, item) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (!document.hidden && conv.id === state.open) return;
  const mine = state.chosen && state.chosen.state === "dnd";
  if (!mine) new Notification(`${item.name} (${titleOf(conv)})`, { body: item.text.slice(0, 200), tag: conv.id });
}

if ("Notification" in window && Notification.permission === "default") {
  $("allow-notifications").hidden = false;
  $("allow-notifications").addEventListener("click", async () => {
    await Notification.requestPermission();
    $("allow-notifications").hidden = true;
  });
}

window.addEventListener("pagehide", () => { state.stopped = true; if (state.socket) state.socket.close(); });
connect();
