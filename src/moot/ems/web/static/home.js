// New-meeting form: default the time zone to the browser's, show date and time only when scheduling.
const form = document.getElementById("new-meeting");
if (form) {
  const zone = form.querySelector("#timezone");
  if (zone && zone.value === "UTC") {
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  }
  const when = form.querySelector(".when");
  const sync = () => {
    const scheduled = form.querySelector("input[name=start_mode]:checked").value === "schedule";
    when.hidden = !scheduled;
  };
  for (const radio of form.querySelectorAll("input[name=start_mode]")) radio.addEventListener("change", sync);
  sync();
}
