"""Small parts of the dashboard: the image cache, the write gate, the charts, the CLI command,
``Registry.demote`` / ``reasonbrain registry demote``, and the no-torch guarantee."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from dashboard import charts
from dashboard.access import DashboardSettings, configured_password, is_loopback, write_gate
from dashboard.images import ImageCache, ImageProblem, display_png, split_uri
from reasonbrain.registry.store import FileStore, ObjectStore

ROOT = Path(__file__).resolve().parents[2]


def png(side: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, format="PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


# ------------------------------------------------------------------------------ images
def test_split_uri() -> None:
    assert split_uri("file:///a/b/c%20d.png") == ("file:///a/b", "c d.png")
    assert split_uri("s3://bucket/p/q/r.png") == ("s3://bucket", "p/q/r.png")
    for bad in ("http://x/y.png", "s3://bucket", "file:///"):
        with pytest.raises(ValueError):
            split_uri(bad)


def test_display_png_scales_both_ways_and_rejects_garbage() -> None:
    assert size_of(display_png(png(32), 192)) == (192, 192)  # whole-factor nearest upscale
    assert size_of(display_png(png(50), 192)) == (150, 150)  # 3x, never blurred by a fraction
    assert size_of(display_png(png(512), 192)) == (192, 192)
    raw = png(40)
    assert display_png(raw, None) is raw
    with pytest.raises(ValueError, match="not a decodable image"):
        display_png(b"not a png", 192)


class CountingStore(FileStore):
    """A file store that counts reads (and can block them, to observe parallel fetches)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.gate: threading.Barrier | None = None

    def get_bytes(self, key: str) -> bytes:
        with self.lock:
            self.reads += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                self.gate.wait(timeout=5)
            return super().get_bytes(key)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_image_cache_hits_misses_budget_and_failures(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    uris = []
    for i in range(6):
        store.put_bytes(png(16, (i * 40, 0, 0)), f"img/{i}.png")
        uris.append(store.uri_for(f"img/{i}.png"))
    one = len(display_png(png(16), 64))
    cache = ImageCache(store, budget_bytes=one * 3 + 10)
    got = cache.get_many(uris[:3], 64)
    assert all(isinstance(v, bytes) for v in got.values()) and store.reads == 3
    cache.get_many(uris[:3], 64)
    assert store.reads == 3 and cache.hits == 3  # served from memory
    cache.get(uris[0], 128)
    assert store.reads == 4  # another display size is another entry
    assert cache.size_bytes <= cache.budget  # the LRU evicted to stay within budget
    missing = store.uri_for("img/none.png")
    res = cache.get(missing, 64)
    assert isinstance(res, ImageProblem) and "not found" in res.reason
    store.put_bytes(png(16), "img/none.png")
    assert isinstance(cache.get(missing, 64), bytes)  # failures are not cached


def test_image_cache_entries_expire(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    store.put_bytes(png(8), "a.png")
    now = [0.0]
    cache = ImageCache(store, ttl_s=10, clock=lambda: now[0])
    uri = store.uri_for("a.png")
    cache.get(uri, 16)
    now[0] = 9.0
    cache.get(uri, 16)
    assert store.reads == 1
    now[0] = 20.0
    cache.get(uri, 16)
    assert store.reads == 2 and cache.size_bytes == len(display_png(png(8), 16))


def test_image_cache_fetches_a_page_in_parallel(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    uris = []
    for i in range(4):
        store.put_bytes(png(8), f"p/{i}.png")
        uris.append(store.uri_for(f"p/{i}.png"))
    store.gate = threading.Barrier(4)  # only completes if 4 reads are in flight together
    got = ImageCache(store).get_many(uris, 32)
    assert all(isinstance(v, bytes) for v in got.values()) and store.peak == 4


def test_image_cache_reads_uris_outside_the_configured_store(tmp_path: Path) -> None:
    elsewhere = FileStore(tmp_path / "other")
    elsewhere.put_bytes(png(8), "x/y.png")
    opened: list[str] = []

    def opener(root: str) -> ObjectStore:
        opened.append(root)
        return FileStore(Path(root.removeprefix("file://")))

    cache = ImageCache(FileStore(tmp_path / "main"), opener=opener)
    assert isinstance(cache.get(elsewhere.uri_for("x/y.png"), 16), bytes)
    assert opened == [(tmp_path / "other" / "x").as_uri()]
    assert isinstance(cache.get("http://evil/x.png", 16), ImageProblem)
    assert cache.url(elsewhere.uri_for("x/y.png")) is None  # file:// is served by the app


@pytest.mark.s3
def test_image_cache_presigns_s3_downloads(s3_uri: str) -> None:
    import urllib.request

    from reasonbrain.registry.store import open_store

    store = open_store(s3_uri)
    store.put_bytes(png(8), "a/b.png")
    cache = ImageCache(store)
    url = cache.url(store.uri_for("a/b.png"))
    assert url is not None and url.startswith("http")
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == png(8)
    assert isinstance(cache.get(store.uri_for("a/b.png"), 32), bytes)


# ------------------------------------------------------------------------------ access
def test_write_gate() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback(None) and not is_loopback("") and not is_loopback("0.0.0.0")
    assert not is_loopback("example.org")
    assert write_gate("127.0.0.1", None).mode == "open"
    assert write_gate(None, None).mode == "closed"  # Streamlit's default binds everywhere
    closed = write_gate("0.0.0.0", None)
    assert closed.mode == "closed" and not closed.check("anything")
    gate = write_gate("0.0.0.0", "pw")
    assert gate.mode == "password" and gate.check("pw")
    assert not gate.check("PW") and not gate.check("") and not gate.check(None)
    assert write_gate("127.0.0.1", "pw").mode == "password"  # a set password always applies


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONBRAIN_DASHBOARD_PASSWORD", raising=False)
    assert configured_password(DashboardSettings(), {}) is None
    assert configured_password(DashboardSettings(), {"dashboard_password": "s"}) == "s"
    monkeypatch.setenv("REASONBRAIN_DASHBOARD_PASSWORD", "env")
    assert configured_password(DashboardSettings(), {"dashboard_password": "s"}) == "env"
    monkeypatch.setenv("REASONBRAIN_DASHBOARD_PASSWORD", "")
    assert configured_password(DashboardSettings(), {}) is None


def test_recorded_text_is_shown_literally() -> None:
    from markdown_it import MarkdownIt

    from dashboard.ui import md_escape

    raw = "If it cost $5 and *then* [x](javascript:y) <b>hi</b> ~~gone~~ # no heading"
    html = MarkdownIt("commonmark").enable("strikethrough").render(md_escape(raw))
    assert "<em>" not in html and "<a " not in html and "<b>" not in html and "<s>" not in html
    assert "<h1>" not in html and "$5" in html
    assert md_escape(None) == ""


# ------------------------------------------------------------------------------ charts
def test_charts_encode_what_they_show() -> None:
    rows = [
        {"group": "causal", "evaluation": "A", "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 9}
    ]
    spec = charts.ci_bars(rows, metric="reasoning_acc", group="category").to_dict()
    bar, rule = spec["layer"]
    assert bar["mark"]["type"] == "bar" and rule["encoding"]["y2"]["field"] == "ci_high"
    assert bar["encoding"]["xOffset"]["field"] == "evaluation"
    mix = charts.outcome_mix([{"evaluation": "A", "outcome": "target", "share": 1.0}]).to_dict()
    assert mix["encoding"]["color"]["scale"]["range"] == [charts.VERDICT_COLOURS["target"]]
    diff = charts.paired_differences(
        [{"group": "overall", "diff": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 5}], metric="m"
    ).to_dict()
    assert len(diff["layer"]) == 3  # CI rules, points, zero line


# --------------------------------------------------------------------------------- CLI
def test_dashboard_command_binds_loopback_by_default() -> None:
    from reasonbrain.cli.dashboard import app_path, streamlit_command

    cmd = streamlit_command(app_path(), "127.0.0.1", 8600)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py")]
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"


def test_dashboard_command_refuses_a_busy_port() -> None:
    from reasonbrain.cli import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(app, ["dashboard", "--port", str(port)])
    assert res.exit_code != 0
    assert "cannot listen on 127.0.0.1" in str(res.exception)
    bad = CliRunner().invoke(app, ["dashboard", "--port", "70000"])
    assert bad.exit_code == 2


def test_registry_demote(tmp_path: Path, model_dir: Path) -> None:
    from reasonbrain.errors import RegistryError
    from reasonbrain.registry.api import Registry
    from reasonbrain.registry.db import open_db

    db = open_db(f"sqlite:///{tmp_path / 'r.db'}")
    reg = Registry(db, FileStore(tmp_path / "store"), tmp_path / "cache")
    try:
        reg.register(model_dir, "m", aliases=["production", "staging"])
        mv = reg.demote("m", "staging")
        assert (mv.ref, [a.alias for a in mv.aliases]) == ("m@1", ["production"])
        with pytest.raises(RegistryError, match="has no alias 'staging'") as err:
            reg.demote("m", "staging")
        assert "production" in (err.value.fix or "")
        with pytest.raises(RegistryError, match="invalid alias"):
            reg.demote("m", "1bad")
        with pytest.raises(RegistryError, match="invalid model name"):
            reg.demote("bad name", "production")
        assert reg.get("m@1").version == 1  # the version stays registered
    finally:
        db.dispose()


def test_registry_demote_cli(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonbrain.cli import app
    from reasonbrain.registry.api import open_registry

    monkeypatch.setenv("REASONBRAIN_DB_URL", f"sqlite:///{tmp_path / 'r.db'}")
    monkeypatch.setenv("REASONBRAIN_STORE_URI", (tmp_path / "store").as_uri())
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["registry", "register", str(model_dir), "--name", "m", "--alias", "staging"]
        ).exit_code
        == 0
    )
    no = runner.invoke(app, ["registry", "demote", "m@staging"], input="n\n")
    assert no.exit_code == 1
    with open_registry() as reg:
        assert reg.get("m@staging").version == 1
    yes = runner.invoke(app, ["registry", "demote", "m@staging", "--yes"])
    assert yes.exit_code == 0 and "removed" in yes.output
    not_alias = runner.invoke(app, ["registry", "demote", "m@1", "--yes"])
    assert "demote needs an alias" in str(not_alias.exception)


# ------------------------------------------------------------------------------ torch
@pytest.mark.slow
def test_the_dashboard_never_imports_torch(populated_sqlite: object) -> None:
    """Run every page in a fresh interpreter and check that torch never got imported."""
    env = {**os.environ, **populated_sqlite.environ()}  # type: ignore[attr-defined]
    env["PYTHONPATH"] = str(ROOT)
    code = f"""
import sys
from streamlit import config
from streamlit.testing.v1 import AppTest
config.set_option("server.address", "127.0.0.1")
at = AppTest.from_file({str(ROOT / "dashboard" / "app.py")!r}, default_timeout=120)
for page in ("overview", "metrics", "edits", "registry", "review"):
    at.switch_page(f"views/{{page}}.py").run()
    assert not at.exception, [e.value for e in at.exception]
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH", bad)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TORCH []" in out.stdout
