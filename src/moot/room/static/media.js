// Audio, video and screen sharing. The page never talks to the media server (Janus): it
// signals over the meeting WebSocket (`media` requests; `media_state` and `media_signal`
// back), and the room server, which knows this person's role, relays only what the role
// allows. Media (ICE, RTP) flows between this browser and the room server's Janus.
// One RTCPeerConnection per stream: one to send the camera and microphone, one to send a
// screen, one per stream received. Offers and answers go at once; the page's ICE candidates
// follow one by one as it finds them (trickle ICE: `candidate`, then a null one at the end).
// After a reconnect (a new room server after a failover, or Janus back after a restart)
// the page publishes and subscribes again by itself, with the microphone and camera as
// they were.

const TALKING = 0.03; // audio level (0..1) above which a tile shows its person talking

export function setupMedia({ send, me }) {
  const section = document.getElementById("media");
  if (!section) return { onState() {}, onSignal() {}, onReconnect() {}, setMuted() {} };
  const statusEl = document.getElementById("media-status");
  const controls = document.getElementById("media-controls");
  const joinButton = document.getElementById("media-join");
  const micButton = document.getElementById("media-mic");
  const camButton = document.getElementById("media-cam");
  const screenButton = document.getElementById("media-screen");
  const micSelect = document.getElementById("media-mic-device");
  const camSelect = document.getElementById("media-cam-device");
  const preview = document.getElementById("media-preview");
  const tiles = document.getElementById("media-tiles");
  const screenStage = document.getElementById("media-screen-stage");

  let state = { available: false, rights: {}, feeds: [], ice_servers: [], reason: "" };
  let camStream = null; // our microphone and camera, kept across reconnects
  let screenStream = null;
  let micOn = true;
  let camOn = true;
  let mutedByModerator = false;
  const sending = new Map(); // kind -> {pc, feed}
  const receiving = new Map(); // feed id -> {pc, tile, feed}
  const ownFeeds = new Set();

  function say(text) { statusEl.textContent = text; }

  // The page's candidates for one stream, sent once its offer (or answer) has gone: the
  // room server hands them to that stream's handle in Janus.
  function trickle(pc, target) {
    const found = [];
    let ready = false;
    const sendOne = (c) => send({ type: "media", action: "candidate", ...target,
      candidate: c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null });
    pc.addEventListener("icecandidate", (event) => {
      if (ready) sendOne(event.candidate); else found.push(event.candidate);
    });
    return () => { ready = true; found.splice(0).forEach(sendOne); };
  }

  function watchIce(pc, what) {
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc.iceConnectionState === "failed") {
        say(`The ${what} could not connect to the media server (a firewall may block it; ` +
            "ask your administrator about TURN). The meeting goes on without it.");
      }
    });
  }

  function deviceError(err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      return "You did not allow this page to use your camera and microphone. " +
        "Allow it in the browser's site settings, then turn them on again.";
    }
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      return "No camera or microphone was found. You can still see and hear the others.";
    }
    if (err.name === "NotReadableError") {
      return "Your camera or microphone is in use by another program.";
    }
    return `Your camera or microphone could not be used (${err.message || err.name}).`;
  }

  async function openDevices() {
    const audio = micSelect.value ? { deviceId: { exact: micSelect.value } } : true;
    const video = camSelect.value ? { deviceId: { exact: camSelect.value } } : true;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (err) {
      if (err.name !== "NotFoundError" && err.name !== "OverconstrainedError") throw err;
      // One of the two is missing: the other alone.
      try { return await navigator.mediaDevices.getUserMedia({ audio }); } catch { /* next */ }
      return await navigator.mediaDevices.getUserMedia({ video });
    }
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind] of [[micSelect, "audioinput"], [camSelect, "videoinput"]]) {
      const chosen = select.value;
      select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
        const option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || `${kind === "audioinput" ? "Microphone" : "Camera"} ${i + 1}`;
        return option;
      }));
      if (chosen) select.value = chosen;
    }
  }

  function applyTrackState() {
    camStream?.getAudioTracks().forEach((t) => { t.enabled = micOn && !mutedByModerator; });
    camStream?.getVideoTracks().forEach((t) => { t.enabled = camOn; });
    micButton.setAttribute("aria-pressed", String(!(micOn && !mutedByModerator)));
    micButton.textContent = micOn && !mutedByModerator ? "Mute microphone" : "Unmute microphone";
    camButton.setAttribute("aria-pressed", String(!camOn));
    camButton.textContent = camOn ? "Stop camera" : "Start camera";
    if (sending.has("camera")) {
      send({ type: "media", action: "state", kind: "camera",
             audio: micOn && !mutedByModerator, video: camOn });
    }
  }

  async function publish(kind) {
    const stream = kind === "screen" ? screenStream : camStream;
    if (!stream || !state.available) return;
    const old = sending.get(kind);
    old?.pc.close();
    const pc = new RTCPeerConnection({ iceServers: state.ice_servers });
    sending.set(kind, { pc, feed: null });
    watchIce(pc, kind === "screen" ? "screen share" : "camera and microphone");
    // The cluster's bit rates per sender (max_audio_kbps, max_video_kbps): the browser's
    // encoder keeps under them; Janus caps video too (the room's bitrate).
    const limits = JSON.parse(document.getElementById("meeting-config").textContent);
    for (const track of stream.getTracks()) {
      const kbps = track.kind === "audio" ? limits.max_audio_kbps : limits.max_video_kbps;
      pc.addTransceiver(track, { direction: "sendonly", streams: [stream],
                                 sendEncodings: [{ maxBitrate: kbps * 1000 }] });
    }
    const sent = trickle(pc, { kind });
    await pc.setLocalDescription(await pc.createOffer());
    if (sending.get(kind)?.pc !== pc) return; // replaced meanwhile
    const audio = kind === "camera" ? micOn && !mutedByModerator : false;
    send({ type: "media", action: "publish", kind,
           jsep: { type: "offer", sdp: pc.localDescription.sdp },
           audio, video: kind === "screen" || camOn });
    sent();
  }

  function stopSending(kind) {
    const entry = sending.get(kind);
    sending.delete(kind);
    if (entry) {
      entry.pc.close();
      if (entry.feed) ownFeeds.delete(entry.feed);
      send({ type: "media", action: "unpublish", kind });
    }
  }

  function tileFor(feed) {
    const tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.feed = String(feed.feed);
    tile.dataset.user = feed.user;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("aria-label", feed.kind === "screen" ? `Screen shared by ${feed.user}` : `Video of ${feed.user}`);
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = feed.kind === "screen" ? `${feed.user}'s screen` : feed.user;
    const mark = document.createElement("span");
    mark.className = "media-mark";
    caption.append(name, mark);
    tile.append(video, caption);
    return tile;
  }

  function decorateTile(tile, feed) {
    const mark = tile.querySelector(".media-mark");
    if (feed.kind === "screen") return; // a screen has no microphone of its own
    mark.textContent = (feed.audio ? "" : " 🔇") + (feed.video ? "" : " (camera off)");
  }

  function subscribe(feed) {
    const tile = tileFor(feed);
    decorateTile(tile, feed);
    if (feed.kind === "screen") {
      tile.classList.add("screen");
      screenStage.append(tile); // several when a moderator allows it
      screenStage.hidden = false;
      section.classList.add("sharing");
    } else {
      tiles.append(tile);
    }
    receiving.set(feed.feed, { pc: null, tile, feed });
    send({ type: "media", action: "subscribe", feed: feed.feed });
  }

  function unsubscribe(feedId, tell) {
    const entry = receiving.get(feedId);
    receiving.delete(feedId);
    if (!entry) return;
    entry.pc?.close();
    entry.tile.remove();
    if (entry.feed.kind === "screen") {
      screenStage.hidden = screenStage.children.length === 0;
      section.classList.toggle("sharing", !screenStage.hidden);
    }
    if (tell) send({ type: "media", action: "unsubscribe", feed: feedId });
  }

  async function answerOffer(msg) {
    const entry = receiving.get(msg.feed);
    if (!entry) return;
    entry.pc?.close();
    const pc = new RTCPeerConnection({ iceServers: state.ice_servers });
    entry.pc = pc;
    watchIce(pc, `stream of ${entry.feed.user}`);
    const video = entry.tile.querySelector("video");
    pc.addEventListener("track", (event) => {
      video.srcObject = event.streams[0] || new MediaStream([event.track]);
      video.play().catch(() => {});
    });
    const sent = trickle(pc, { feed: msg.feed });
    await pc.setRemoteDescription(msg.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    if (entry.pc !== pc) return;
    send({ type: "media", action: "start", feed: msg.feed,
           jsep: { type: "answer", sdp: pc.localDescription.sdp } });
    sent();
  }

  function render() {
    const { available, rights } = state;
    if (!available) {
      say(`Audio and video are unavailable on this room server${state.reason ? ": " + state.reason : ""}. ` +
          "The rest of the meeting works.");
    } else if (statusEl.textContent.startsWith("Audio and video are unavailable")) {
      say("");
    }
    controls.hidden = !available || !(rights.camera || rights.screen);
    joinButton.hidden = !rights.camera || camStream !== null;
    micButton.hidden = camButton.hidden = !rights.camera || camStream === null;
    document.getElementById("media-devices").hidden = !rights.camera;
    screenButton.hidden = !rights.screen;
    screenButton.textContent = screenStream ? "Stop sharing" : "Share screen";
    screenButton.setAttribute("aria-pressed", String(screenStream !== null));
    if (!available) {
      for (const kind of [...sending.keys()]) { sending.get(kind).pc.close(); sending.delete(kind); }
      for (const feedId of [...receiving.keys()]) unsubscribe(feedId, false);
      return;
    }
    // What is published and not listed (another server, Janus restarted): publish again.
    for (const kind of ["camera", "screen"]) {
      const stream = kind === "camera" ? camStream : screenStream;
      if (stream && rights[kind] && !sending.has(kind)) publish(kind);
    }
    const listed = new Map(state.feeds.map((f) => [f.feed, f]));
    for (const feedId of [...receiving.keys()]) {
      if (!listed.has(feedId)) unsubscribe(feedId, false);
    }
    for (const feed of state.feeds) {
      if (ownFeeds.has(feed.feed)) continue;
      const entry = receiving.get(feed.feed);
      if (entry) { entry.feed = feed; decorateTile(entry.tile, feed); } else subscribe(feed);
    }
    tiles.hidden = tiles.children.length === 0;
  }

  // The talking indicator and the active speaker: each received stream's audio level.
  setInterval(() => {
    let loudest = null;
    let level = TALKING;
    for (const entry of receiving.values()) {
      if (!entry.pc || entry.feed.kind !== "camera") continue;
      const receiver = entry.pc.getReceivers().find((r) => r.track.kind === "audio");
      const source = receiver?.getSynchronizationSources()[0];
      const now = source ? source.audioLevel || 0 : 0;
      entry.tile.classList.toggle("talking", now > TALKING);
      if (now > level) { level = now; loudest = entry.tile; }
    }
    if (loudest) {
      for (const tile of tiles.children) tile.classList.toggle("speaker", tile === loudest);
    }
  }, 400);

  joinButton.addEventListener("click", async () => {
    try {
      camStream = await openDevices();
    } catch (err) {
      say(deviceError(err));
      return;
    }
    say("");
    preview.srcObject = camStream;
    preview.hidden = false;
    await listDevices().catch(() => {});
    applyTrackState();
    render();
  });
  micButton.addEventListener("click", () => {
    if (mutedByModerator) return; // the moderator's mute: "Unmute" in the muted note
    micOn = !micOn;
    applyTrackState();
  });
  camButton.addEventListener("click", () => { camOn = !camOn; applyTrackState(); });
  // A device chosen: the new one replaces the old in the stream being sent.
  for (const select of [micSelect, camSelect]) {
    select.addEventListener("change", async () => {
      if (!camStream) return;
      const kind = select === micSelect ? "audio" : "video";
      try {
        const fresh = await navigator.mediaDevices.getUserMedia(
          { [kind]: { deviceId: { exact: select.value } } });
        const track = fresh.getTracks()[0];
        const old = kind === "audio" ? camStream.getAudioTracks()[0] : camStream.getVideoTracks()[0];
        if (old) { camStream.removeTrack(old); old.stop(); }
        camStream.addTrack(track);
        const sender = sending.get("camera")?.pc.getSenders().find((s) => s.track === old || s.track?.kind === kind);
        await sender?.replaceTrack(track);
        preview.srcObject = camStream;
        applyTrackState();
      } catch (err) { say(deviceError(err)); }
    });
  }
  screenButton.addEventListener("click", async () => {
    if (screenStream) {
      screenStream.getTracks().forEach((t) => t.stop());
      screenStream = null;
      stopSending("screen");
      render();
      return;
    }
    try {
      screenStream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      say(err.name === "NotAllowedError" ? "Screen sharing was cancelled." :
          `The screen could not be shared (${err.message || err.name}).`);
      return;
    }
    screenStream.getVideoTracks()[0].addEventListener("ended", () => {
      if (screenStream) screenButton.click();
    });
    render();
  });

  return {
    onState(msg) { state = msg; render(); },
    onSignal(msg) {
      if (msg.action === "answer") {
        const entry = sending.get(msg.kind);
        if (!entry) return;
        entry.feed = msg.feed;
        ownFeeds.add(msg.feed);
        entry.pc.setRemoteDescription(msg.jsep).catch((err) => say(`Could not start sending: ${err.message}`));
      } else if (msg.action === "offer") {
        answerOffer(msg).catch((err) => say(`Could not receive a stream: ${err.message}`));
      } else if (msg.action === "refused" || msg.action === "failed") {
        say(msg.message);
        if (msg.feed == null) { // about sending (a publish), not about a stream received
          sending.get(msg.kind)?.pc.close();
          sending.delete(msg.kind);
          if (msg.kind === "screen" && screenStream) {
            screenStream.getTracks().forEach((t) => t.stop());
            screenStream = null;
            render();
          }
        }
      } else if (msg.action === "stopped") {
        unsubscribe(msg.feed, false);
      }
    },
    // A new socket (another room server, or the same one again): every negotiation starts
    // over there; the streams we send are kept and published again when it says so.
    onReconnect() {
      for (const entry of sending.values()) entry.pc.close();
      sending.clear();
      ownFeeds.clear();
      for (const feedId of [...receiving.keys()]) unsubscribe(feedId, false);
    },
    setMuted(muted) { mutedByModerator = muted; if (muted) micOn = false; applyTrackState(); },
    me,
  };
}
