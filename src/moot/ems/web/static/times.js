// Show every <time datetime> in the reader's own time zone, and tell the server that zone
// (the calendar's days are the reader's days).
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (zone && !document.cookie.split("; ").includes(`moot_tz=${encodeURIComponent(zone)}`)) {
  document.cookie = `moot_tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; samesite=lax`;
}
// A page laid out in another zone (the calendar's days, on a first visit): once more, in ours.
const laidOut = document.querySelector("[data-zone]");
if (zone && laidOut && laidOut.dataset.zone !== zone && !location.search.includes("tz=")
    && sessionStorage.getItem("moot-tz-reload") !== zone) {
  sessionStorage.setItem("moot-tz-reload", zone); // once: a zone the server does not know stays UTC
  location.reload();
}
for (const el of document.querySelectorAll("time[datetime]")) {
  const when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) {
    el.textContent = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
}
