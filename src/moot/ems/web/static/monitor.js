// The monitoring page: draws the cluster's snapshot, then every snapshot the EMS sends on
// /admin/monitor/events (server-sent events). Text goes in with textContent only: meeting
// and user names are whatever people typed.
"use strict";

const config = document.getElementById("monitor-config");
const connection = document.getElementById("monitor-connection");
const updated = document.getElementById("monitor-updated");
const alertsBox = document.getElementById("alerts");
const totalsBox = document.getElementById("totals");
const toolsBox = document.getElementById("tools");
const serversBox = document.getElementById("monitor-servers");
const warningsBox = document.getElementById("capacity-warnings");

const STATUS_WORDS = {
  online: "online",
  suspect: "suspect: not answering",
  failed: "failed",
  offline: "offline",
  draining: "draining",
  drained: "drained: no meetings left",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

function clock(iso) {
  if (!iso) return "never";
  const when = new Date(iso);
  return isNaN(when) ? iso : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function dateTime(iso) {
  const when = new Date(iso);
  return isNaN(when) ? iso : when.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
}

function gauge(label, percent, id) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  const level = value >= 90 ? "critical" : value >= 75 ? "warning" : "ok";
  const bar = el("span", { class: "gauge-bar" });
  bar.style.width = `${value}%`; // a CSSOM write, which the CSP allows (no inline style attribute)
  return el("div", { class: `gauge gauge-${level}`, id },
    el("span", { class: "gauge-label" }, `${label} ${value.toFixed(0)}%`),
    el("span", { class: "gauge-track", role: "presentation" }, bar));
}

const alertsSaid = document.getElementById("alerts-said");
let lastAlerts = null;

function drawAlerts(alerts) {
  alertsBox.replaceChildren();
  if (!alerts.length) {
    alertsBox.append(el("p", { class: "alert-none" }, "No alerts: every server is within its limits."));
  } else {
    const list = el("ul", { class: "alert-list" });
    for (const alert of alerts) {
      const word = alert.level === "critical" ? "Critical" : "Warning";
      list.append(el("li", { class: `alert alert-${alert.level}`, "data-server": alert.server },
        el("strong", {}, `${word}: `), alert.text));
    }
    alertsBox.append(list);
  }
  // The live region speaks when the alerts change, not when a figure in one moves (CPU 91%,
  // then 93%): it would never be quiet.
  const key = alerts.map((a) => `${a.level} ${a.text.replace(/\d+(\.\d+)?/g, "#")}`).join("\n");
  if (key === lastAlerts) return;
  lastAlerts = key;
  alertsSaid.textContent = alerts.length
    ? `${alerts.length} alert${alerts.length > 1 ? "s" : ""}: ` +
      alerts.map((a) => `${a.level === "critical" ? "Critical" : "Warning"}: ${a.text}.`).join(" ")
    : "No alerts.";
}

function drawTotals(totals, tools) {
  totalsBox.replaceChildren();
  const items = [
    ["Room servers online", `${totals.online} of ${totals.servers}`, "total-online"],
    ["Logins", totals.logins, "total-logins"],
    ["Community connections", totals.community ?? 0, "total-community"],
    ["Meetings", totals.meetings, "total-meetings"],
    ["Participants", totals.participants, "total-participants"],
  ];
  for (const [term, value, id] of items) {
    totalsBox.append(el("div", {}, el("dt", {}, term), el("dd", { id }, value)));
  }
  const names = Object.entries(tools).map(([tool, count]) => `${tool} (${count})`);
  toolsBox.textContent = names.length ? names.join(", ") : "None now.";
}

function drawMeetings(server) {
  if (!server.meetings.length) return el("p", { class: "hint" }, "No meeting runs here.");
  const body = el("tbody");
  for (const meeting of server.meetings) {
    const people = meeting.participants.length
      ? meeting.participants.map((p) => (p.role === "moderator" ? `${p.user} (moderator)` : p.user)).join(", ")
      : "nobody yet";
    body.append(el("tr", { "data-meeting": meeting.id },
      el("th", { scope: "row" }, meeting.name || meeting.id),
      el("td", { class: "count" }, meeting.participants.length),
      el("td", { class: "people" }, people),
      el("td", {}, meeting.tools.length ? meeting.tools.join(", ") : "—")));
  }
  const table = el("table", { class: "meetings monitor-meetings" },
    el("caption", { class: "sr" }, `Meetings on ${server.name}`),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Meeting"), el("th", { scope: "col" }, "Participants"),
      el("th", { scope: "col" }, "Who"), el("th", { scope: "col" }, "Tools in use"))),
    body);
  return el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": `Meetings on ${server.name}` }, table);
}

function drawServers(servers) {
  serversBox.replaceChildren();
  if (!servers.length) {
    serversBox.append(el("p", { class: "hint" }, "No room server yet."));
    return;
  }
  for (const s of servers) {
    const status = STATUS_WORDS[s.status] || s.status;
    const heading = `server-${s.name}-h`;
    const instant = s.instant_meetings === null ? "unlimited" : `${s.instant_active} of ${s.instant_meetings}`;
    const age = s.last_report_seconds === null ? "" : ` (${s.last_report_seconds.toFixed(0)} s ago)`;
    const card = el("article", {
      class: `card monitor-server level-${s.level} state-box-${s.status}`,
      id: `monitor-${s.name}`, "data-server": s.name, "data-status": s.status, "data-level": s.level,
      "aria-labelledby": heading,
    },
      el("h3", { id: heading }, s.name, " ",
        el("span", { class: `state state-${s.status}`, "data-role": "status" }, status),
        s.level !== "ok" ? el("span", { class: `level-word level-word-${s.level}` },
          s.level === "critical" ? "critical" : "warning") : null),
      el("p", { class: "hint" }, s.url, s.location ? ` · ${s.location}` : ""),
      el("dl", { class: "facts compact" },
        el("dt", {}, "Logins"), el("dd", { "data-role": "logins" }, s.logins),
        el("dt", {}, "Community connections"), el("dd", { "data-role": "community" }, s.community ?? 0),
        el("dt", {}, "Meetings"), el("dd", { "data-role": "meetings" }, `${s.meetings.length} of ${s.max_active_meetings}`),
        el("dt", {}, "Participants"), el("dd", { "data-role": "participants" }, `${s.participants} (at most ${s.max_users_per_meeting} per meeting)`),
        el("dt", {}, "Instant meetings"), el("dd", {}, instant),
        el("dt", {}, "Audio/video"), el("dd", { "data-role": "media" }, mediaWords(s.media)),
        el("dt", {}, "Last report"), el("dd", { "data-role": "last-report" }, clock(s.last_report_at) + age)),
      gauge("CPU", s.cpu_percent, `cpu-${s.name}`),
      gauge("Memory", s.memory_percent, `memory-${s.name}`),
      s.alerts.length ? el("ul", { class: "server-alerts" }, ...s.alerts.map((text) => el("li", {}, text))) : null,
      drawMeetings(s));
    serversBox.append(card);
  }
}

// A server's audio/video (its Janus) as the monitor says it.
function mediaWords(media) {
  if (!media) return "off";
  if (!media.available) return `unavailable: ${media.reason}`;
  const limit = media.max_streams ? ` of ${media.max_streams}` : "";
  const mbps = ((media.bitrate_kbps || 0) / 1000).toFixed(1);
  const most = media.max_bitrate_kbps ? ` of ${media.max_bitrate_kbps / 1000}` : "";
  return `${media.publishers} sending, ${media.subscribers} receiving (${media.publishers + media.subscribers}${limit} streams, ${mbps}${most} Mbit/s)`;
}

function drawWarnings(warnings) {
  warningsBox.replaceChildren();
  if (!warnings.length) {
    warningsBox.append(el("li", { class: "hint" }, "None."));
    return;
  }
  for (const w of warnings) {
    warningsBox.append(el("li", {}, el("time", { datetime: w.at }, dateTime(w.at)), " ", w.message));
  }
}

function draw(snapshot) {
  drawAlerts(snapshot.alerts);
  drawTotals(snapshot.totals, snapshot.tools);
  drawServers(snapshot.servers);
  drawWarnings(snapshot.capacity_warnings);
  updated.textContent = `Updated ${clock(snapshot.at)}.`;
}

let state = "";
function say(words) {
  if (words !== state) { // the live region speaks only when the connection's state changes
    state = words;
    connection.textContent = words;
  }
}

const initial = document.getElementById("monitor-initial");
if (initial) draw(JSON.parse(initial.textContent));

if (config && "EventSource" in window) {
  const source = new EventSource(config.dataset.events);
  source.addEventListener("open", () => say("Live: this page updates itself."));
  source.addEventListener("snapshot", (message) => {
    say("Live: this page updates itself.");
    draw(JSON.parse(message.data));
  });
  source.addEventListener("problem", (message) => say(`Not live: ${JSON.parse(message.data).text}; trying again…`));
  source.addEventListener("closing", () => say("The Meeting Center is stopping: reconnecting when it is back…"));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) say("No longer live: reload the page.");
    else say("Connection lost: reconnecting…");
  });
  window.addEventListener("pagehide", () => source.close());
} else {
  say("This browser cannot update the page by itself: reload it to see the latest figures.");
}
