// Raised hands: the queue comes whole in `tool_state` (tool "hand"); this page's button
// raises or lowers its own hand; the roster shows raised hands first, in order.
export function setupHands(ctx) {
  const toggle = document.getElementById("hand-toggle");
  toggle.addEventListener("click", () => {
    ctx.send({ kind: toggle.getAttribute("aria-pressed") === "true" ? "hand.lower" : "hand.raise" });
  });
  document.getElementById("lower-all")?.addEventListener("click", () => ctx.send({ kind: "hand.lower_all" }));
}

export function renderHands(queue, me) {
  const raised = queue.includes(me);
  const toggle = document.getElementById("hand-toggle");
  toggle.setAttribute("aria-pressed", String(raised));
  toggle.textContent = raised ? "✋ Lower hand" : "✋ Raise hand";
}
