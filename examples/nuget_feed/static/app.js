// Show and Copy for a token value shown once (no inline script: the page's
// Content-Security-Policy allows only this file).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-show]")) {
    button.addEventListener("click", () => {
      const field = document.getElementById(button.dataset.show);
      const shown = field.type === "text";
      field.type = shown ? "password" : "text";
      button.textContent = shown ? "Show" : "Hide";
      button.setAttribute("aria-pressed", String(!shown));
    });
  }
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (_) {
        // Without the asynchronous clipboard (plain http, an old browser): copy the
        // selection, with the field shown for the moment it takes.
        const type = field.type;
        field.type = "text";
        field.select();
        const copied = document.execCommand("copy");
        field.type = type;
        field.setSelectionRange(0, 0);
        if (!copied) {
          status.textContent = "Copy failed: press Show and copy it by hand.";
          return;
        }
      }
      status.textContent = "Copied to the clipboard.";
      button.dataset.copied = "true";
    });
  }
});
