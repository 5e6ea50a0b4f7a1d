"""The dashboard in a real browser: ``reasonbrain dashboard`` on a loopback port, Debian's
headless ``chromium`` driven by Playwright (``make test`` installs it; no browser is ever
downloaded by a tool). The edit browser's images and charts must render with no error box, a
screenshot lands in the test's output directory, and a review clicked in the browser lands in
the database."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks.dashboard_browser import (
    browser,
    chromium_available,
    error_boxes,
    free_port,
    open_and_wait,
    serve,
)
from tests.dashboard.conftest import DashEnv

pytestmark = pytest.mark.slow


def _outside_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_edit_browser_renders_in_chromium_and_a_review_lands(
    writable_sqlite: DashEnv, tmp_path: Path
) -> None:
    if not chromium_available():
        pytest.fail(
            "Debian's chromium or playwright is missing: run `make browser` (make test does)"
        )
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.tables import Review

    port = free_port()
    with serve(writable_sqlite.environ(), port=port) as url, browser() as b:
        outside = _outside_address()
        if outside is not None:  # bound to loopback only
            with pytest.raises(OSError), socket.create_connection((outside, port), timeout=2):
                pass
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        seconds = open_and_wait(page, url + "/edits", images=36, charts=1)
        assert error_boxes(page) == []
        imgs = page.locator('[data-testid="stImage"] img')
        assert imgs.count() == 36
        widths = imgs.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert min(widths) == 192  # 64-px ReasonSynth images shown 3x, crisp
        assert page.get_by_text("matching samples").count() == 1
        shot = tmp_path / "edit-browser.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        print(f"edit browser painted in {seconds:.2f} s; screenshot {shot}")

        metrics = b.new_page(viewport={"width": 1400, "height": 1000})
        open_and_wait(metrics, url + "/metrics", images=0, charts=3)
        assert error_boxes(metrics) == []

        review = b.new_page(viewport={"width": 1400, "height": 1000})
        open_and_wait(review, url + "/review", images=0, charts=0)
        name = review.get_by_label("Your name (required to review)")
        name.fill("browser-bot")
        name.press("Enter")
        review.get_by_role("button", name="Accept").click()
        review.get_by_text("saved: accept on").wait_for(timeout=30_000)
        assert error_boxes(review) == []

    db = open_db(writable_sqlite.db_url, auto_upgrade=False)
    try:
        with db.sessions() as s:
            got = list(s.scalars(select(Review).where(Review.reviewer == "browser-bot")))
    finally:
        db.dispose()
    assert [r.verdict for r in got] == ["accept"]
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pytest.fail("the dashboard server is still running after the test")
