"""The copies page's HTML, rendered on the server from plain string templates. Every value
passes through `e()` (html.escape, quotes included) on its way in: descriptions, names, tags
and messages are user input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from html import escape

from snapferry.domain.copies import BUNDLE, CopyJob
from snapferry.domain.images import Image
from snapferry.domain.snapshots import Snapshot
from snapferry.storage.overview import Overview
from snapferry.web.figures import Figures, figures

PREFIX = "/_snapferry/"
# How the page and `snapferry copies` name a copy job of an instance-store image's bundle.
BUNDLE_KIND = "S3 bundle"
INSTANCE_STORE = "instance-store"
POLL_MILLISECONDS = 1000


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return f'<time datetime="{e(value.isoformat())}">{e(value.strftime("%Y-%m-%d %H:%M:%S"))}' \
           " UTC</time>"


def layout(title: str, body: str, header_extra: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<link rel="stylesheet" href="{PREFIX}app.css">
<script src="{PREFIX}app.js" defer></script>
</head>
<body>
<header><h1>snapferry copies</h1>{header_extra}</header>
<main>
{body}
</main>
</body>
</html>
"""


def login_page(error: str | None = None, access_key_id: str = "") -> str:
    alert = f'<p role="alert" id="login-error">{e(error)}</p>' if error else ""
    described = ' aria-describedby="login-error"' if error else ""
    return layout("Log in - snapferry", f"""<h2>Log in</h2>
<p>Use an access key of the account whose snapshots, images and copies you want to watch.</p>
{alert}
<form class="login" method="post" action="{PREFIX}login">
<label for="access_key_id">Access key ID</label>
<input id="access_key_id" name="access_key_id" autocomplete="username" required
       value="{e(access_key_id)}" autofocus{described}>
<label for="secret_access_key">Secret access key</label>
<input id="secret_access_key" name="secret_access_key" type="password"
       autocomplete="current-password" required{described}>
<button type="submit">Log in</button>
</form>""")


def dashboard(account_id: str, access_key_id: str, overview: Overview,
              now: dt.datetime) -> str:
    logout = f"""<p>Account <strong id="account">{e(account_id)}</strong>
(key {e(access_key_id)})</p>
<form method="post" action="{PREFIX}logout"><button type="submit">Log out</button></form>"""
    return layout(f"{account_id} - snapferry copies", f"""<p id="updated" class="muted">
Updated {e(now.strftime("%H:%M:%S"))} UTC; updates every second.</p>
<div id="live" data-src="{PREFIX}live" data-every="{POLL_MILLISECONDS}">
{live(overview, now)}
</div>""", logout)


def _regions(overview: Overview) -> list[str]:
    return sorted({s.region for s in overview.snapshots} | {i.region for i in overview.images}
                  | {j.dest_region for j in overview.copies})


def live(overview: Overview, now: dt.datetime) -> str:
    """The part of the page that is polled: one section per region."""
    regions = _regions(overview)
    if not regions:
        return "<p>No snapshots, images or copies in this account yet.</p>"
    return "\n".join(_region(region, overview, now) for region in regions)


def _region(region: str, overview: Overview, now: dt.datetime) -> str:
    slug = e(region)
    copies = [job for job in overview.copies if job.dest_region == region]
    image_copies = [image for image in overview.images
                    if image.region == region and image.source_image_id]
    snapshots = [s for s in overview.snapshots if s.region == region]
    images = [image for image in overview.images if image.region == region]
    parts = [f'<section aria-labelledby="region-{slug}">',
             f'<h2 id="region-{slug}">{slug}</h2>']
    if copies or image_copies:
        parts.append(_copies_table(region, copies, image_copies, overview, now))
    if snapshots:
        parts.append(_snapshots_table(region, snapshots))
    if images:
        parts.append(_images_table(region, images))
    parts.append("</section>")
    return "\n".join(parts)


def _progress(row_id: str, percent: int | None) -> str:
    """A native <progress> (role progressbar, aria-valuenow from its value), labelled by its
    row's copy id; without a value it is indeterminate: the copy is not planned yet."""
    label = f'aria-labelledby="{row_id}"'
    if percent is None:
        return f'<progress max="100" {label}>queued</progress> <span>queued</span>'
    return (f'<progress max="100" value="{percent}" {label}>{percent}%</progress> '
            f'<span class="percent">{percent}%</span>')


def _state(state: str) -> str:
    return f'<span class="state state-{e(state)}">{e(state)}</span>'


def _message(text: str | None) -> str:
    return f'<span class="message">{e(text)}</span>' if text else ""


def _table(region: str, kind: str, caption: str, headings: Iterable[str],
           rows: Iterable[str]) -> str:
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headings)
    return (f'<table id="{kind}-{e(region)}" class="{kind}"><caption>{e(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _copy_row(css: str, copy_id: str, kind: str, source: str, found: Figures, state: str,
              message: str | None) -> str:
    """One row of the copies table: an image copy, a snapshot copy or a bundle copy."""
    row_id = f"copy-{e(copy_id)}"
    return (f'<tr class="copy {css}" data-id="{e(copy_id)}">'
            f'<th scope="row" id="{row_id}">{e(copy_id)}</th><td>{e(kind)}</td>'
            f"<td>{e(source)}</td>"
            f"<td>{_progress(row_id, found.percent)}</td><td>{e(found.rate)}</td>"
            f"<td>{e(found.eta)}</td><td>{_state(state)}</td>"
            f"<td>{_message(message)}</td></tr>")


def _copies_table(region: str, jobs: list[CopyJob], image_copies: list[Image],
                  overview: Overview, now: dt.datetime) -> str:
    rows = []
    for image in image_copies:
        kind = "image" if image.root_device_type != INSTANCE_STORE else f"image ({BUNDLE_KIND})"
        rows.append(_copy_row(
            "image-copy", image.image_id, kind,
            f"{image.source_image_region}:{image.source_image_id}",
            figures(overview.image_copy_jobs.get(image.image_id, []), now), image.state,
            image.state_reason_message))
    shown = {image.image_id for image in image_copies}
    for job in jobs:
        if job.kind == BUNDLE and job.snapshot_id in shown:
            continue  # its image's row above shows it (a bundle job's destination is the image)
        css, kind = ("snapshot-copy", "snapshot") if job.kind is None else ("bundle-copy",
                                                                            BUNDLE_KIND)
        rows.append(_copy_row(css, job.snapshot_id, kind,
                              f"{job.source_region}:{job.source_snapshot_id}",
                              figures([job], now), job.state, job.message))
    return _table(region, "copies", f"Copies into {region}",
                  ("Copy", "Kind", "From", "Progress", "Rate", "Time left", "State",
                   "Message"), rows)


def _snapshots_table(region: str, snapshots: list[Snapshot]) -> str:
    rows = [
        f'<tr class="snapshot" data-id="{e(s.snapshot_id)}">'
        f'<th scope="row">{e(s.snapshot_id)}</th><td class="description">{e(s.description)}</td>'
        f"<td>{e(s.volume_size)} GiB</td><td>{_state(s.state)}</td><td>{e(s.progress)}%</td>"
        f"<td>{_time(s.start_time)}</td><td>{_message(s.state_message)}</td></tr>"
        for s in snapshots]
    return _table(region, "snapshots", f"Snapshots in {region}",
                  ("Snapshot", "Description", "Size", "State", "Progress", "Started",
                   "Message"), rows)


def _images_table(region: str, images: list[Image]) -> str:
    rows = [
        f'<tr class="image" data-id="{e(i.image_id)}">'
        f'<th scope="row">{e(i.image_id)}</th><td>{e(i.name)}</td>'
        f'<td class="description">{e(i.description)}</td><td>{_state(i.state)}</td>'
        f"<td>{e(i.source_image_id) or '-'}</td><td>{_time(i.creation_date)}</td>"
        f"<td>{_message(i.state_reason_message)}</td></tr>"
        for i in images]
    return _table(region, "images", f"Images in {region}",
                  ("Image", "Name", "Description", "State", "Copied from", "Created",
                   "Message"), rows)


def not_found_page() -> str:
    return layout("Not found - snapferry", f'<p>No such page. <a href="{PREFIX}">The copies '
                                           "page</a>.</p>")
