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

export function showBroadcast(msg) {
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
