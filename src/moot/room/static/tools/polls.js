// Polls on the stage: the server sends each page its view of every poll (`tool_state`,
// tool "poll"); a vote or a closing goes out as a tool event and counts once the room
// server acknowledges it. Each poll keeps its own element, so a vote being chosen is not
// lost when someone else's vote updates the count.
const articles = new Map(); // poll id -> { el, form, mine, results, close, status }

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function build(poll, ctx) {
  const qid = "poll-" + poll.id + "-q";
  const article = el("article", { className: "poll card", id: "poll-" + poll.id });
  article.setAttribute("aria-labelledby", qid);
  const status = el("span", { className: "poll-status" });
  const heading = el("h3", { id: qid }, poll.question, " ", status);
  const mine = el("p", { className: "mine hint" });
  const results = el("div", { className: "results" });
  article.append(heading);
  const parts = { el: article, form: null, mine, results, close: null, status };
  if (poll.open) {
    const form = el("form", { className: "vote" });
    const fieldset = el("fieldset");
    fieldset.append(el("legend", {}, poll.multiple ? "Choose one or more" : "Choose one"));
    poll.options.forEach((option, index) => {
      const input = el("input", {
        type: poll.multiple ? "checkbox" : "radio",
        name: "poll-" + poll.id,
        value: String(index),
        checked: poll.mine.includes(index),
      });
      fieldset.append(el("label", { className: "option" }, input, " ", option));
    });
    const vote = el("button", { type: "submit" }, "Vote");
    form.append(fieldset, vote);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const choices = [...form.querySelectorAll("input:checked")].map((i) => Number(i.value));
      if (!choices.length) { ctx.say("Choose an option first."); return; }
      ctx.send({ kind: "poll.vote", poll_id: poll.id, choices });
    });
    parts.form = form;
    article.append(form);
    if (ctx.role === "moderator") {
      parts.close = el("button", { type: "button", className: "secondary" }, "Close poll");
      parts.close.addEventListener("click", () => ctx.send({ kind: "poll.close", poll_id: poll.id }));
    }
  }
  article.append(mine, results);
  if (parts.close) article.append(parts.close);
  articles.set(poll.id, parts);
  return parts;
}

function showResults(parts, poll) {
  parts.results.replaceChildren();
  if (!poll.results) {
    parts.results.append(el("p", { className: "hint" },
      poll.open ? "Results are shown when the poll is closed." : ""));
    return;
  }
  const total = Math.max(1, poll.voters);
  const list = el("ul", { className: "result-list" });
  poll.options.forEach((option, index) => {
    const count = poll.results[index];
    const bar = el("progress", { max: total, value: count });
    bar.setAttribute("aria-hidden", "true");
    const item = el("li", {}, el("span", { className: "option-name" }, option), bar,
      el("span", { className: "votes" }, `${count} ${count === 1 ? "vote" : "votes"}`));
    if (poll.names && poll.names[index].length) {
      item.append(el("span", { className: "names hint" }, poll.names[index].join(", ")));
    }
    list.append(item);
  });
  parts.results.append(list);
}

export function renderPolls(container, state, ctx) {
  const ids = new Set(state.polls.map((p) => p.id));
  for (const [id, parts] of articles) {
    if (!ids.has(id)) { parts.el.remove(); articles.delete(id); }
  }
  for (const poll of state.polls) {
    let parts = articles.get(poll.id);
    if (!parts) {
      parts = build(poll, ctx);
      container.prepend(parts.el); // the newest first
    }
    if (!poll.open) {
      parts.form?.remove(); parts.form = null;
      parts.close?.remove(); parts.close = null;
    }
    parts.status.textContent = poll.open ? "(open)" : "(closed)";
    parts.el.classList.toggle("closed", !poll.open);
    const chosen = poll.mine.map((i) => poll.options[i]).join(", ");
    const voters = `${poll.voters} ${poll.voters === 1 ? "person has" : "people have"} voted.`;
    parts.mine.textContent = (chosen ? `You voted: ${chosen}. ` : "") + voters;
    if (parts.form) {
      parts.form.querySelector("button[type=submit]").textContent = chosen ? "Change vote" : "Vote";
    }
    showResults(parts, poll);
  }
  return state.polls.length;
}

// The moderator's form: a question and its options, one a line.
export function setupPollForm(ctx) {
  const form = document.getElementById("poll-form");
  const toggle = document.getElementById("poll-new");
  if (!form || !toggle) return;
  const show = (open) => {
    form.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) document.getElementById("poll-question").focus(); else toggle.focus();
  };
  toggle.addEventListener("click", () => show(form.hidden));
  document.getElementById("poll-cancel").addEventListener("click", () => show(false));
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") show(false); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = document.getElementById("poll-question").value.trim();
    const options = document.getElementById("poll-options").value
      .split("\n").map((o) => o.trim()).filter(Boolean);
    if (options.length < 2 || options.length > 10) {
      ctx.say("A poll has 2 to 10 options, one a line.");
      return;
    }
    ctx.send({
      kind: "poll.create",
      poll_id: crypto.randomUUID().replaceAll("-", "").slice(0, 16),
      question,
      options,
      multiple: document.getElementById("poll-multiple").checked,
      anonymous: !document.getElementById("poll-named").checked,
    });
    form.reset();
    show(false);
  });
}
