// Messages to all users from the administrators, on every Meeting Center page: a
// server-sent-events stream (/events/broadcasts) gives the messages showing now, then
// each new one. A banner per message, shown as text (never as HTML), gone at its expiry
// or when withdrawn; a dismissal is remembered in this browser by the message's id.
//
// One stream per browser, not per tab: a browser opens at most 6 connections to one
// HTTP/1.1 server, and a stream per tab would use them up. The tab holding the lock
// "moot-broadcasts" (Web Locks) holds the stream and passes its events to the other tabs
// (BroadcastChannel); when that tab goes, the next one takes the lock and opens its own.
// EventSource reconnects by itself when a stream ends (an EMS restart, a proxy timeout):
// the current messages come again, and a banner already shown is not shown twice.
// Meeting pages build the same banner in the room server's static/meeting.js: another
// origin (its own script, its own localStorage), so the code is not shared. Change both.
const box = document.getElementById("broadcasts");
const DISMISSED = "moot-dismissed-broadcasts";
const known = new Map(); // id -> message, as this tab knows them (the leader's are replayed)
let events = null;
let leading = false;

function dismissed() {
  try { return new Set(JSON.parse(localStorage.getItem(DISMISSED) || "[]")); } catch { return new Set(); }
}

function remember(id) {
  const ids = [...dismissed(), id].slice(-100); // a few: messages expire within a week
  try { localStorage.setItem(DISMISSED, JSON.stringify(ids)); } catch { /* storage is off */ }
}

function remove(id) {
  known.delete(id);
  document.getElementById("broadcast-" + id)?.remove();
}

function show(message) {
  const id = String(message.id);
  const left = Date.parse(message.expires_at) - Date.now();
  if (!(left > 0)) return remove(id);
  known.set(id, message);
  if (document.getElementById("broadcast-" + id) || dismissed().has(id)) return;
  const item = document.createElement("div");
  item.className = "broadcast";
  item.id = "broadcast-" + id;
  item.setAttribute("role", "alert"); // read out at once by screen readers
  const from = document.createElement("strong");
  from.textContent = "Message from the administrators: ";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.setAttribute("aria-label", "Dismiss the message from the administrators");
  dismiss.addEventListener("click", () => { remember(id); item.remove(); });
  item.append(from, text, " ", dismiss);
  box.append(item);
  if (left < 2 ** 31) setTimeout(() => remove(id), left);
}

function apply(kind, data) {
  if (kind === "broadcast") show(data);
  else if (kind === "ended") remove(String(data.id));
}

const channel = "BroadcastChannel" in window ? new BroadcastChannel("moot-broadcasts") : null;

function listen() {
  events = new EventSource("/events/broadcasts");
  for (const kind of ["broadcast", "ended"]) {
    events.addEventListener(kind, (event) => {
      const data = JSON.parse(event.data);
      apply(kind, data);
      channel?.postMessage({ kind, data });
    });
  }
}

if (box && "EventSource" in window) {
  if (channel && navigator.locks) {
    channel.onmessage = (event) => {
      const { kind, data } = event.data || {};
      if (kind === "hello") { // a tab that just opened: what is showing now
        if (leading) for (const message of known.values()) channel.postMessage({ kind: "broadcast", data: message });
      } else {
        apply(kind, data);
      }
    };
    channel.postMessage({ kind: "hello" });
    // Held until this tab closes or leaves the page: the promise never settles.
    navigator.locks.request("moot-broadcasts", () => new Promise(() => { leading = true; listen(); }));
  } else {
    listen();
  }
  // Leaving the page closes the stream at once (the EMS frees it, no wait for a timeout).
  window.addEventListener("pagehide", () => events?.close());
  window.addEventListener("pageshow", (event) => { if (event.persisted && (leading || !channel)) listen(); });
  // Dismissed in another tab: gone here too.
  window.addEventListener("storage", (event) => {
    if (event.key !== DISMISSED) return;
    for (const id of dismissed()) document.getElementById("broadcast-" + id)?.remove();
  });
}
