// Send web page: a presenter sends an address; everyone's stage shows it in a sandboxed
// frame when the site allows framing (the room server asked the site when it was sent),
// else a link to open it in a new tab and the reason, never a blank frame.
let ctx;
let asking = false; // this presenter sent an address and waits for the site's verdict

function el(id) { return document.getElementById(id); }

export function renderWeb(view) {
  const area = el("web-area");
  if (!area) return;
  const frame = el("web-frame");
  if (asking) { asking = false; ctx.say(""); }
  area.hidden = !view.open;
  if (!view.open) { frame.hidden = true; frame.removeAttribute("src"); return; }
  el("web-by").textContent = `sent by ${view.by}`;
  const link = el("web-link");
  link.href = view.url;
  link.textContent = view.url;
  const reason = el("web-reason");
  reason.hidden = view.frameable;
  reason.textContent = view.frameable ? "" : `Not shown here: ${view.reason}. Open it with the link above.`;
  frame.hidden = !view.frameable;
  if (!view.frameable) frame.removeAttribute("src");
  else if (frame.getAttribute("src") !== view.url) frame.src = view.url;
}

// The same rules as the room server's (protocol/tools.py web_address), said before sending.
function problem(url) {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#\s]+)/i.exec(url);
  if (!match || !["http", "https"].includes(match[1].toLowerCase())) {
    return "Only http:// and https:// addresses can be sent as a web page.";
  }
  if (/\s/.test(url)) return "This is not a web address (http://host/...).";
  if (url.length > 2000) return "A web address is at most 2000 characters.";
  return "";
}

export function setupWeb(context) {
  ctx = context;
  el("web-close")?.addEventListener("click", () => ctx.send({ kind: "web.close" }));
  const form = el("web-form");
  const toggle = el("web-new");
  if (!form || !toggle) return;
  const show = (open) => {
    form.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) el("web-url").focus(); else toggle.focus();
  };
  toggle.addEventListener("click", () => show(form.hidden));
  el("web-cancel").addEventListener("click", () => show(false));
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") show(false); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const url = el("web-url").value.trim();
    const wrong = problem(url);
    if (wrong) { ctx.say(wrong); return; }
    ctx.say("Asking the site whether it may be shown here…");
    asking = true;
    ctx.send({ kind: "web.share", url }, () => { asking = false; });
    form.reset();
    show(false);
  });
}
