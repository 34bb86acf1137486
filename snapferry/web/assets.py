"""The page's script and style, served from our own origin so the Content-Security-Policy can
forbid every inline script: a description that slips past escaping still cannot run."""

from __future__ import annotations

# Polls the live fragment each second while the tab is visible and swaps it in; on 401 (the
# session ended) reloads, which shows the login form. No framework, no build step.
SCRIPT = """\
"use strict";
(function () {
  const live = document.getElementById("live");
  const updated = document.getElementById("updated");
  if (!live) { return; }
  const every = Number(live.dataset.every || "1000");
  async function refresh() {
    if (document.hidden) { return; }
    try {
      const response = await fetch(live.dataset.src, {credentials: "same-origin",
                                                       cache: "no-store"});
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) {
        updated.textContent = "Update failed (HTTP " + response.status + ")";
        return;
      }
      live.innerHTML = await response.text();
      updated.textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (error) {
      updated.textContent = "Server unreachable; retrying";
    }
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
"""

STYLE = """\
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 80rem; padding: 0 1rem 2rem; line-height: 1.4; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center;
         justify-content: space-between; border-bottom: 1px solid #8886; }
header form { margin: 0; }
h1 { font-size: 1.3rem; }
h2 { margin-top: 2rem; font-size: 1.2rem; }
h3 { font-size: 1rem; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8884;
         vertical-align: top; }
td.description, td .message { overflow-wrap: anywhere; }
progress { width: 8rem; }
.state-error, .state-failed { color: #c00; font-weight: 600; }
.message { color: #c00; }
.muted { opacity: .7; }
form.login { display: grid; gap: .5rem; max-width: 24rem; margin-top: 2rem; }
input { font: inherit; padding: .3rem; }
button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
:focus-visible { outline: 3px solid #36f; outline-offset: 2px; }
[role=alert] { color: #c00; font-weight: 600; }
"""
