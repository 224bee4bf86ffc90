// Show every <time datetime> in the reader's own time zone, and tell the server that zone
// (the calendar's days are the reader's days).
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (zone && !document.cookie.split("; ").includes(`moot_tz=${encodeURIComponent(zone)}`)) {
  document.cookie = `moot_tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; samesite=lax`;
}
for (const el of document.querySelectorAll("time[datetime]")) {
  const when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) {
    el.textContent = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
}
