// Moderator controls: lock, mute all, and the people removed (with a way back in); a
// muted person's note with their own way to unmute. Roles (make presenter, ...) are
// buttons in the roster (meeting.js). The state comes in `tool_state` (tool
// "moderation"); the room server checks every action by role.
export function setupModeration(ctx) {
  const lock = document.getElementById("lock-toggle");
  lock?.addEventListener("click", () => {
    ctx.send({ kind: lock.getAttribute("aria-pressed") === "true" ? "moderation.unlock" : "moderation.lock" });
  });
  const screens = document.getElementById("screens-toggle");
  screens?.addEventListener("click", () => {
    ctx.send({ kind: "moderation.screens", many: screens.getAttribute("aria-pressed") !== "true" });
  });
  document.getElementById("mute-all")?.addEventListener("click", () => ctx.send({ kind: "moderation.mute_all" }));
  document.getElementById("unmute-me")?.addEventListener("click", () => ctx.send({ kind: "moderation.unmute" }));
}

export function renderModeration(state, ctx) {
  document.getElementById("locked-note").hidden = !state.locked;
  document.getElementById("muted-note").hidden = !state.you.muted;
  const lock = document.getElementById("lock-toggle");
  if (lock) {
    lock.setAttribute("aria-pressed", String(state.locked));
    lock.textContent = state.locked ? "Unlock meeting" : "Lock meeting";
  }
  const screens = document.getElementById("screens-toggle");
  if (screens) {
    screens.setAttribute("aria-pressed", String(state.many_screens));
    screens.textContent = state.many_screens ? "One screen share at a time" : "Allow several screen shares";
  }
  const box = document.getElementById("removed-box");
  if (!box) return;
  box.hidden = state.removed.length === 0;
  document.getElementById("removed").replaceChildren(...state.removed.map((name) => {
    const li = document.createElement("li");
    const back = document.createElement("button");
    back.type = "button";
    back.className = "secondary small";
    back.textContent = "Let back in";
    back.setAttribute("aria-label", `Let ${name} back in`);
    back.addEventListener("click", () => ctx.send({ kind: "moderation.readmit", user: name }));
    li.append(name, " ", back);
    return li;
  }));
}
