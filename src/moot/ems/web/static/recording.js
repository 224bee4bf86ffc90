// Replay a recording: each line of the transcript appears at its moment, segment after
// segment, as one recording. Without JavaScript the whole transcript is simply shown.
const player = document.getElementById("player");
const playButton = document.getElementById("play");
const speed = document.getElementById("speed");
const position = document.getElementById("position");
const clock = document.getElementById("clock");
const items = [...document.querySelectorAll("#transcript > li")];
const duration = Number(player.dataset.duration);

let at = 0; // seconds into the recording
let timer = null;
let last = 0;

function mmss(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function show() {
  for (const li of items) li.hidden = Number(li.dataset.offset) > at;
  position.value = at;
  clock.textContent = mmss(at);
}

function pause() {
  clearInterval(timer);
  timer = null;
  playButton.textContent = "Play";
}

function tick() {
  const now = performance.now();
  at = Math.min(duration, at + ((now - last) / 1000) * Number(speed.value));
  last = now;
  show();
  if (at >= duration) {
    pause();
    player.dataset.state = "finished";
  }
}

playButton.addEventListener("click", () => {
  if (timer) return pause();
  if (at >= duration) at = 0;
  player.dataset.state = "playing";
  last = performance.now();
  timer = setInterval(tick, 100);
  playButton.textContent = "Pause";
  show();
});

position.addEventListener("input", () => {
  at = Number(position.value);
  show();
});
