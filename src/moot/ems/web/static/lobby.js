// The lobby: count down to the start, and go in as soon as the meeting is open.
const form = document.getElementById("lobby-form");
const state = document.getElementById("lobby-state");
const opensAt = new Date(form.dataset.opensAt);

function left() {
  const seconds = Math.max(0, Math.round((opensAt - Date.now()) / 1000));
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${seconds} s`;
}

let entering = false;
async function check() {
  if (entering) return;
  let open = false;
  if (Date.now() >= opensAt.getTime()) {
    try {
      const answer = await fetch(`/api/v1/meetings/${form.dataset.meetingId}`, { cache: "no-store" });
      open = answer.ok && (await answer.json()).status === "in_progress";
    } catch {
      open = false; // the Meeting Center is briefly unreachable: ask again
    }
  }
  if (open) {
    entering = true;
    state.textContent = "The meeting is open: going in…";
    form.submit();
    return;
  }
  state.textContent = Date.now() < opensAt.getTime()
    ? `You are in the lobby. The meeting opens in ${left()}; this page goes in by itself.`
    : "The meeting is opening…";
}
check();
setInterval(check, 1000);
