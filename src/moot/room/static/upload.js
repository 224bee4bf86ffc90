// Adding files from inside the meeting (moderators and presenters): they go to the Meeting
// Center's files API with this page's join token, which says who this is; the Meeting
// Center decides from it (and the roles granted in the meeting) whether they may. Every
// page of the meeting then gets the new list (`files`), as for a file added in the Meeting
// Center, and a PDF among them can be presented.
let form;
let input;
let status;

// The form shows for the roles that may use it (the Meeting Center checks again).
export function showUpload(role) {
  if (form) form.hidden = role === "participant";
}

// `context`: { emsUrl, meetingId, token() } (the token is renewed after a move).
export function setupUpload(context) {
  form = document.getElementById("files-upload");
  if (!form) return;
  input = document.getElementById("files-upload-input");
  status = document.getElementById("files-upload-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...input.files];
    if (!chosen.length) { status.textContent = "Choose a file to upload first."; return; }
    const body = new FormData();
    body.append("token", context.token());
    for (const file of chosen) body.append("file", file);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = `Uploading ${chosen.map((f) => f.name).join(", ")}…`;
    try {
      const url = `${context.emsUrl}/api/v1/meetings/${context.meetingId}/files/from-meeting`;
      const answer = await fetch(url, { method: "POST", body });
      const reply = await answer.json().catch(() => ({}));
      if (answer.ok) {
        const names = reply.items.map((f) => f.name).join(", ");
        status.textContent = `Uploaded ${names}: everyone in the meeting sees it under Files.`;
        input.value = "";
      } else {
        status.textContent = `Not uploaded: ${reply.detail || answer.statusText}.`;
      }
    } catch {
      // A body over the Meeting Center's cap is refused before any answer this page may read.
      status.textContent = "Not uploaded: the Meeting Center did not answer (is the file too large?).";
    } finally {
      button.disabled = false;
    }
  });
}
