// The configuration page of one room server: typing in a key's field means overriding it,
// so its "Use the cluster value" box is unticked (it can be ticked again by hand).
for (const key of document.querySelectorAll(".config-form .key")) {
  const inherit = key.querySelector('input[name^="inherit."]');
  if (!inherit) continue;
  key.addEventListener("input", (event) => {
    if (event.target !== inherit) inherit.checked = false;
  });
}
