// Presence beside people's names on Meeting Center pages (a meeting's moderator): each
// element with data-person="PARTITION/USERNAME" gets a badge. The page connects to a room
// server's community socket as an observer: it watches, and does not make its reader
// "online" (only the community page does). Without community services it shows nothing.

const LABELS = { available: "Available", away: "Away", in_meeting: "In a meeting", dnd: "Do not disturb", offline: "Offline" };
const named = [...document.querySelectorAll("[data-person]")];

function badge(element, presence) {
  let mark = element.nextElementSibling;
  if (presence.state === "offline") { // a typed name, or someone not signed in: no badge
    if (mark && mark.classList.contains("presence")) mark.remove();
    return;
  }
  if (!mark || !mark.classList.contains("presence")) {
    mark = document.createElement("span");
    element.after(" ", mark);
  }
  mark.className = `presence presence-${presence.state}`;
  mark.dataset.state = presence.state;
  mark.textContent = LABELS[presence.state] || presence.state;
  mark.title = presence.status || "";
}

async function watch(delay) {
  let ticket;
  try {
    const response = await fetch("/api/v1/community/connect", { method: "POST", headers: { accept: "application/json" } });
    if (!response.ok) return; // not for this person, or no server offers it: no badges
    ticket = await response.json();
  } catch {
    setTimeout(() => watch(Math.min(delay * 2, 30000)), delay);
    return;
  }
  const people = [...new Set(named.map((element) => element.dataset.person))];
  for (const server of ticket.servers) {
    const opened = await new Promise((resolve) => {
      const socket = new WebSocket(`${server.url}?token=${encodeURIComponent(ticket.token)}&observe=true`);
      let welcomed = false;
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "welcome") {
          welcomed = true;
          resolve(true);
          socket.send(JSON.stringify({ type: "watch", people }));
        } else if (message.type === "presence") {
          for (const element of named) if (element.dataset.person === message.pid) badge(element, message);
        }
      };
      socket.onclose = () => {
        if (!welcomed) resolve(false);
        else setTimeout(() => watch(1000), 500); // its server went: the next one
      };
    });
    if (opened) return;
  }
  setTimeout(() => watch(Math.min(delay * 2, 30000)), delay);
}

if (named.length) watch(1000);
