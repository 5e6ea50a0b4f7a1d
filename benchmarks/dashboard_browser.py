"""Drive the dashboard in a real browser: start ``reasonbrain dashboard`` on a loopback port and
open pages in Debian's headless ``chromium`` through Playwright (never a browser a tool
downloads). Shared by the browser test and the first-paint benchmark.

    with serve(env) as url, browser() as b:
        page = b.new_page()
        seconds = open_and_wait(page, url + "/edits", images=36, charts=1)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: what "the page has painted" means: every image decoded, every chart drawn, no error box
READY_JS = """([images, charts]) => {
  const imgs = Array.from(document.querySelectorAll('[data-testid="stImage"] img'));
  const drawn = document.querySelectorAll(
    '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg');
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  return imgs.length >= images && imgs.every(i => i.complete && i.naturalWidth > 0)
    && drawn.length >= charts && (images > 0 || charts > 0 || !running);
}"""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_available() -> bool:
    """True when Debian's chromium and the playwright package are installed."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file()


@contextlib.contextmanager
def serve(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    timeout: float = 60.0,
    log: Path | None = None,
    script: Path | None = None,
) -> Iterator[str]:
    """Run ``python -m reasonbrain dashboard --port P`` (its own process group) until the block
    ends; yields the base URL once ``/_stcore/health`` answers. ``script`` runs a plain
    ``streamlit run SCRIPT`` on loopback instead (a calibration page).

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout`` (its log attached).
    """
    port = port or free_port()
    root = Path(__file__).resolve().parents[1]
    full = {**os.environ, **env}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), full.get("PYTHONPATH", "")) if p)
    own_log = log is None
    log_path = log or Path(tempfile.mkstemp(prefix="rb-dashboard-", suffix=".log")[1])
    if script is None:
        cmd = [sys.executable, "-m", "reasonbrain", "dashboard", "--port", str(port)]
    else:
        from reasonbrain.cli.dashboard import streamlit_command

        cmd = streamlit_command(script, "127.0.0.1", port)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=full,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited ({proc.returncode}): {log_path.read_text()}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start: {log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)
        if own_log:
            log_path.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless chromium (Debian's) under Playwright; each launch gets a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_and_wait(page: Any, url: str, *, images: int, charts: int, timeout_s: float = 60) -> float:
    """Navigate to ``url`` and wait until ``images`` images are decoded and ``charts`` charts are
    drawn; returns the seconds from navigation start."""
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(READY_JS, arg=[images, charts], timeout=timeout_s * 1000, polling=50)
    return time.perf_counter() - start


def error_boxes(page: Any) -> list[str]:
    """Texts of exception and error boxes on the page."""
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [boxes.nth(i).inner_text() for i in range(boxes.count())]
