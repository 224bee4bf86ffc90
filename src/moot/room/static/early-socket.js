// The meeting's socket, opened as soon as the page is parsed, while its modules are still
// fetched and compiled: what the room server sends first (a late joiner's board can be
// megabytes) travels meanwhile. meeting.js takes the socket over with what it received.
// A classic script, not a module: it runs at once, in the order of the page.
(() => {
  const root = document.getElementById("meeting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/meeting/${root.dataset.meetingId}/ws` +
    `?token=${encodeURIComponent(root.dataset.token)}&roster=changes`;
  const early = { ws: new WebSocket(url), messages: [], closed: null };
  early.ws.onmessage = (event) => early.messages.push(event);
  early.ws.onclose = (event) => { early.closed = event; };
  window.mootEarlySocket = early;
})();
