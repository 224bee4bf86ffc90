// Show every <time datetime> in the reader's own time zone.
for (const el of document.querySelectorAll("time[datetime]")) {
  const when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) {
    el.textContent = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
}
