"""The copies page (/_snapferry/) in headless Chromium: Debian's /usr/bin/chromium driven by
Playwright, against a real server. Log in (by keyboard), watch a slow copy's progress bar
advance, see a failed copy's StateMessage, an image copy, a description that tries to run
script shown as text, and never another account's copy; log out. Screenshots go to the test's
tmp dir and, when SNAPFERRY_SCREENSHOTS names a directory, there too."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory, add_account, run_cli, wait_for
from .test_copies import finished
from .test_copy_image import settled, two_disk_image

pytestmark = pytest.mark.long(seconds=40)  # scheduled first: tests/conftest.py

SRC, DST = "us-east-1", "eu-west-2"
OTHER = ("555555555555", "PAGEOTHERKEY", "page-other-secret")
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# 2 blocks (1 MiB) a second: a 16-block copy takes 8 s in 8 steps the page can show.
PACE = "1024"
SCRIPT_DESCRIPTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
FAILURE = "Simulated outage: the page must show this <b>as text</b>."


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir, ["--copy-min-seconds-per-gib", PACE]) as process:
        yield process


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    profile = tmp_path / "profile"  # empty: no state from any earlier run
    profile.mkdir()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"copies-page-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    wanted = os.environ.get("SNAPFERRY_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)
    return path


def log_in(page: Page, url: str, key: str, secret: str) -> None:
    page.goto(url + "/_snapferry/")
    page.get_by_label("Access key ID").fill(key)
    page.get_by_label("Secret access key").fill(secret)
    page.keyboard.press("Enter")  # submitted from the keyboard


def progress_of(page: Page, copy_id: str) -> int:
    """The value of the copy's progress bar, found by its role and accessible name."""
    bar = page.get_by_role("progressbar", name=copy_id)
    if bar.count() != 1:
        return -1
    value = bar.get_attribute("value")
    return int(value) if value is not None else -1


def test_the_copies_page_in_chromium(page: Page, server: ServerProcess, data_dir: Path,
                                     client: ClientFactory, tmp_path: Path) -> None:
    add_account(data_dir, *OTHER)
    others = [client("ebs", region=SRC, key=OTHER[1], secret=OTHER[2]),
              client("ec2", region=DST, key=OTHER[1], secret=OTHER[2])]
    other_source = write_snapshot(others[0], random_blocks(list(range(16))),
                                  Description="not yours")
    other_copy = others[1].copy_snapshot(SourceRegion=SRC,
                                         SourceSnapshotId=other_source)["SnapshotId"]
    hidden = (other_source, other_copy, "not yours")

    def never_shown() -> None:
        text = page.content()
        assert not any(value in text for value in hidden)

    # A wrong secret: an alert, and still the form.
    log_in(page, server.url, "test", "not-the-secret")
    assert "wrong" in page.get_by_role("alert").inner_text()
    assert page.context.cookies() == []
    screenshot(page, tmp_path, "login-refused")

    log_in(page, server.url, "test", "test")
    page.get_by_role("button", name="Log out").wait_for()
    assert page.locator("#account").inner_text() == "000000000000"
    cookie = {c["name"]: c for c in page.context.cookies()}["snapferry_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert time.time() < cookie["expires"] <= time.time() + 8 * 3600 + 60
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=DST)
    tricky = write_snapshot(ebs, random_blocks(list(range(16))),
                            Description=SCRIPT_DESCRIPTION)
    doomed = write_snapshot(ebs, random_blocks([0, 1, 2, 3]))
    added = run_cli("faults", "add", "copy", "--snapshot-id", doomed, "--fail-at", "0.5",
                    "--message", FAILURE, data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    # Copies started after the page loaded: it shows them without a reload.
    slow = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=tricky)["SnapshotId"]
    failed = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=doomed)["SnapshotId"]

    seen: list[int] = []

    def advanced() -> bool:
        never_shown()
        value = progress_of(page, slow)
        if 0 < value < 100 and (not seen or value > seen[-1]):
            seen.append(value)
        return len(seen) >= 2

    wait_for(advanced, timeout=30, every=0.1)
    assert seen[0] < seen[1] < 100
    row = page.locator(f'tr.snapshot-copy[data-id="{slow}"]')
    assert "MiB/s" in row.inner_text()  # a rate
    screenshot(page, tmp_path, "copy-in-progress")

    failed_row = page.locator(f'tr.snapshot-copy[data-id="{failed}"]')
    wait_for(lambda: failed_row.count() == 1 and "failed" in failed_row.inner_text())
    assert FAILURE in failed_row.locator(".message").inner_text()
    assert failed_row.locator("b").count() == 0  # the message's markup stayed text
    assert finished(ec2, failed)["StateMessage"] == FAILURE
    wait_for(lambda: FAILURE in page.locator(f'tr.snapshot[data-id="{failed}"]').inner_text())

    # The description that tried to run script is shown, as text, and ran nothing.
    source_row = page.locator(f'tr.snapshot[data-id="{tricky}"]')
    assert source_row.locator("td.description").inner_text() == SCRIPT_DESCRIPTION
    assert source_row.locator("img, script").count() == 0
    assert page.evaluate("window.__pwned") is None

    wait_for(lambda: progress_of(page, slow) == 100, timeout=60)
    assert "done" in page.locator(f'tr.snapshot-copy[data-id="{slow}"]').inner_text()

    # An image copy: a row of kind image, its progress the sum of its snapshots' copies.
    image, _ = two_disk_image(client("ec2", region=SRC), ebs,
                              (random_blocks([0, 1]), random_blocks([0])))
    copy = ec2.copy_image(Name="page-copy", SourceImageId=image,
                          SourceRegion=SRC)["ImageId"]
    image_row = page.locator(f'tr.image-copy[data-id="{copy}"]')
    wait_for(lambda: image_row.count() == 1, timeout=30)
    assert f"{SRC}:{image}" in image_row.inner_text()
    assert settled(ec2, copy)["State"] == "available"
    wait_for(lambda: progress_of(page, copy) == 100 and "available" in image_row.inner_text())
    assert page.locator(f'tr.image[data-id="{image}"]').count() == 1  # the source image
    never_shown()
    screenshot(page, tmp_path, "copies-done")

    # Log out from the keyboard: the form again, and the live fragment refuses.
    page.get_by_role("button", name="Log out").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Access key ID").wait_for()
    assert [c for c in page.context.cookies() if c["name"] == "snapferry_session"] == []
    refused: Any = page.request.get(server.url + "/_snapferry/live")
    assert refused.status == 401
    screenshot(page, tmp_path, "logged-out")

    # The other account sees its own copy, and nothing of ours.
    log_in(page, server.url, OTHER[1], OTHER[2])
    other_row = page.locator(f'tr.snapshot-copy[data-id="{other_copy}"]')
    other_row.wait_for()
    assert page.locator("#account").inner_text() == OTHER[0]
    assert slow not in page.content() and tricky not in page.content()
