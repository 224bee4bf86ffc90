// Test Meeting: a WebSocket to a room server (an echo), then camera and microphone.
// Each result is said in words, with what to do when it failed.
const button = document.getElementById("run-test");
const socketCheck = document.getElementById("check-socket");
const mediaCheck = document.getElementById("check-media");
const preview = document.getElementById("preview");

function say(item, ok, text) {
  const result = item.querySelector(".result");
  result.textContent = text;
  item.dataset.result = ok ? "ok" : "failed";
}

function echo(url) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok) => { if (!done) { done = true; resolve(ok); } };
    const started = performance.now();
    let ws;
    try { ws = new WebSocket(url); } catch { return finish(false); }
    const timer = setTimeout(() => { ws.close(); finish(false); }, 5000);
    ws.onopen = () => ws.send("moot-test");
    ws.onmessage = (event) => {
      clearTimeout(timer);
      const ms = Math.round(performance.now() - started);
      ws.close();
      finish(event.data === "moot-test" ? ms : false);
    };
    ws.onerror = () => { clearTimeout(timer); finish(false); };
  });
}

async function testSocket() {
  const targets = JSON.parse(socketCheck.dataset.targets);
  if (!targets.length) {
    return say(socketCheck, false, "No meeting server is available right now. Try again in a few minutes; if it stays so, tell your administrator.");
  }
  say(socketCheck, true, "testing…");
  for (const url of targets) {
    const ms = await echo(url);
    if (ms !== false) return say(socketCheck, true, `Works: this browser reached a meeting server in ${ms} ms.`);
  }
  say(socketCheck, false, "Failed: this browser could not open a connection (WebSocket) to a meeting server. A firewall or proxy may block it; ask your administrator.");
}

async function testMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return say(mediaCheck, false, "Not available: this browser (or a page not served over HTTPS) cannot use a camera or microphone.");
  }
  say(mediaCheck, true, "asking for permission…");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const kinds = stream.getTracks().map((t) => t.kind);
    preview.srcObject = stream;
    preview.hidden = false;
    say(mediaCheck, true, `Works: permission given for ${kinds.includes("video") ? "your camera" : "no camera"} and ${kinds.includes("audio") ? "your microphone" : "no microphone"}.`);
    setTimeout(() => stream.getTracks().forEach((t) => t.stop()), 5000);
  } catch (error) {
    const why = error && error.name === "NotAllowedError"
      ? "permission was refused. Allow the camera and microphone for this site in the browser's settings, then test again."
      : error && error.name === "NotFoundError"
        ? "no camera or microphone was found. Plug one in and test again."
        : `the browser said: ${error && error.message ? error.message : error}.`;
    say(mediaCheck, false, `Failed: ${why}`);
  }
}

button.addEventListener("click", async () => {
  button.disabled = true;
  await testSocket();
  await testMedia();
  button.disabled = false;
  button.textContent = "Test again";
});
