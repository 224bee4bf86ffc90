// The meeting form: tabs (the seed's Essentials, Security, Tools, Locations), the time zone
// defaulting to the browser's, and only the controls that apply shown. Without this script
// every panel is shown one after the other and every control works.
const form = document.getElementById("new-meeting");
if (form) {
  const zone = form.querySelector("#timezone");
  if (zone && zone.value === "UTC" && !form.action.endsWith("/edit") && !form.querySelector("[aria-invalid=true]")) {
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    // The proposed start, the next full hour, in the browser's own zone.
    const next = new Date(Date.now() + 3600 * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    form.querySelector("#date").value = `${next.getFullYear()}-${pad(next.getMonth() + 1)}-${pad(next.getDate())}`;
    form.querySelector("#time").value = `${pad(next.getHours())}:00`;
  }

  // Start now or at a time; repeat controls only for a scheduled meeting.
  const when = form.querySelector(".when");
  const repeat = form.querySelector(".repeat");
  const repeatSelect = form.querySelector("#repeat");
  const detail = form.querySelector(".repeat-detail");
  const sync = () => {
    const checked = form.querySelector("input[name=start_mode]:checked");
    const scheduled = checked ? checked.value === "schedule" : true;
    when.hidden = !scheduled;
    repeat.hidden = !scheduled;
    const how = repeatSelect.value;
    detail.hidden = how === "none";
    for (const el of detail.querySelectorAll(".days")) el.hidden = how !== "weekly";
    detail.querySelector(".simple").hidden = how === "custom";
    detail.querySelector(".custom").hidden = how !== "custom";
    form.querySelector("#interval-unit").textContent =
      { daily: "days", weekly: "weeks", monthly: "months" }[how] || "";
  };
  for (const el of form.querySelectorAll("input[name=start_mode], #repeat")) {
    el.addEventListener("change", sync);
  }
  sync();

  // "Change…" the moderator: type part of a name; people from the directory are offered.
  const moderator = form.querySelector("#moderator");
  const people = form.querySelector("#people");
  const change = form.querySelector("#change-moderator");
  let asked = "";
  const lookUp = async () => {
    const text = moderator.value.trim();
    if (!change || text === asked) return;
    asked = text;
    try {
      const answer = await fetch(`/api/v1/auth/people?q=${encodeURIComponent(text)}`);
      if (!answer.ok) return;
      people.replaceChildren(...(await answer.json()).map((p) => {
        const option = document.createElement("option");
        option.value = p.username;
        option.label = p.display_name + (p.partition ? ` (${p.partition})` : "");
        return option;
      }));
    } catch { /* offline: typing a name still works */ }
  };
  moderator.addEventListener("input", lookUp);
  change?.addEventListener("click", () => { moderator.select(); moderator.focus(); lookUp(); });

  // Tabs (WAI-ARIA tabs pattern): arrow keys move between them, one panel shows.
  const tablist = form.querySelector("[role=tablist]");
  const tabs = [...tablist.querySelectorAll("[role=tab]")];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
  };
  tablist.hidden = false;
  for (const title of form.querySelectorAll(".panel-title")) title.classList.add("sr");
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) select(tabs[(i + step + tabs.length) % tabs.length], true);
      if (event.key === "Home") select(tabs[0], true);
      if (event.key === "End") select(tabs[tabs.length - 1], true);
    });
  });
  // After a refused save, open the tab of the first field in error.
  const invalid = form.querySelector("[aria-invalid=true]");
  const panel = invalid ? invalid.closest("[role=tabpanel]") : null;
  select(panel ? tabs.find((t) => t.getAttribute("aria-controls") === panel.id) : tabs[0], false);
  if (invalid) invalid.focus();
}

// The moderator link on the "created" notice: Copy puts it on the clipboard (or selects it).
for (const button of document.querySelectorAll("button.copy-link")) {
  const field = document.getElementById(button.dataset.copy);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
    } catch {
      field.focus();
      field.select();
    }
  });
}
