"""Benchmark: the edit browser's first paint on a 10,000-sample evaluation (target < 2 s).

Builds a fixture database (SQLite + ``file://`` store, or ``--db-url`` PostgreSQL) holding one
evaluation of ``--n`` samples with its images (ReasonSynth scenes, 64 px, every sample its own
stored objects), starts ``reasonbrain dashboard`` on a loopback port and opens ``/edits`` in
Debian's headless chromium (Playwright). *First paint* = from navigation start until the first
page's 36 images (12 rows × source, output, target) are decoded and the verdict chart is drawn.

- ``cold_s``: the first visit after the server started (Python imports and empty caches paid);
- ``warm_s``: later first visits, each in a fresh browser context (no HTTP cache, a new
  Streamlit session), median and all runs;
- ``floor_s``: the same measure for a bare Streamlit page holding only a title, served and
  opened the same way in the same run (what any Streamlit page costs on this machine now);
- ``sql_ms``: the page's queries alone (count, verdict mix, one page) without and with a filter
  (verdict + metric range), median of 20.

Prints ONE JSON object.

    python benchmarks/dashboard_first_paint.py                   # 10,000 samples
    python benchmarks/dashboard_first_paint.py --n 2000 --repeats 3
    python benchmarks/dashboard_first_paint.py --screenshot docs/dashboard-edit-browser.png
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` and `dashboard` importable
    sys.path.insert(0, str(ROOT))


def _sql_ms(db_url: str, evaluation_id: int) -> dict[str, float]:
    from dashboard import samples
    from dashboard.records import SampleFilter
    from reasonbrain.registry.db import open_db

    db = open_db(db_url, auto_upgrade=False)
    lo, hi = samples.metric_range(db, evaluation_id, "l1") or (0.0, 1.0)
    filtered = SampleFilter(
        verdicts=("wrong_object", "no_change"), metric="l1", metric_min=lo, metric_max=(lo + hi) / 2
    )
    out: dict[str, float] = {}
    try:
        for name, f in (("unfiltered", SampleFilter()), ("filtered", filtered)):
            runs = []
            for _ in range(20):
                t = time.perf_counter()
                samples.count_samples(db, evaluation_id, f)
                samples.verdict_counts(db, evaluation_id, f)
                samples.page_samples(db, evaluation_id, f, page=1, page_size=12)
                runs.append((time.perf_counter() - t) * 1000)
            out[name] = round(statistics.median(runs), 2)
        t = time.perf_counter()
        samples.page_samples(db, evaluation_id, SampleFilter(), page=800, page_size=12)
        out["page_800"] = round((time.perf_counter() - t) * 1000, 2)
    finally:
        db.dispose()
    return out


def _small_png(path: Path) -> int:
    """Re-save a screenshot with a 256-colour palette (a fraction of the bytes)."""
    from PIL import Image

    img = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def main() -> None:
    """Run the benchmark and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="samples in the evaluation")
    ap.add_argument("--repeats", type=int, default=5, help="warm first visits")
    ap.add_argument("--db-url", default=None, help="an empty database (default: SQLite in tmp)")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="keep the fixture here (reused when present)"
    )
    ap.add_argument("--screenshot", type=Path, default=None, help="save the edit browser (PNG)")
    args = ap.parse_args()

    from sqlalchemy import select

    from benchmarks.dashboard_browser import (
        browser,
        chromium_available,
        error_boxes,
        open_and_wait,
        serve,
    )
    from benchmarks.dashboard_fixture import fill
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.store import FileStore
    from reasonbrain.registry.tables import Evaluation

    if not chromium_available():
        sys.exit("needs Debian's chromium and playwright: run `make browser`")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rb-dash-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db_url = args.db_url or f"sqlite:///{work / 'rb.db'}"
    store = FileStore(work / "store")
    reuse = args.db_url is None and (work / "rb.db").is_file()
    t = time.perf_counter()
    db = open_db(db_url)
    try:
        if reuse:
            with db.sessions() as s:
                evaluation_id = int(
                    s.scalar(select(Evaluation.id).where(Evaluation.label == "reasonbrain@1")) or 0
                )
                n = s.scalar(select(Evaluation.n_samples).where(Evaluation.id == evaluation_id))
            if n != args.n:
                sys.exit(f"{work} holds {n} samples, not {args.n}: use another --workdir")
        else:
            info = fill(db, store, n_samples=args.n, labels=("reasonbrain@1",), resamples=50)
            evaluation_id = info.evaluations["reasonbrain@1"]
    finally:
        db.dispose()
    build_s = None if reuse else round(time.perf_counter() - t, 1)
    env = {"REASONBRAIN_DB_URL": db_url, "REASONBRAIN_STORE_URI": store.uri}

    warm: list[float] = []
    floor: list[float] = []
    errors: list[str] = []
    bare = work / "bare_page.py"
    bare.write_text('import streamlit as st\n\nst.title("Floor")\n')
    with serve(env) as url, serve({}, script=bare) as floor_url, browser() as b:

        def visit(shoot: bool = False) -> float:
            ctx = b.new_context(viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                seconds = open_and_wait(page, url + "/edits", images=36, charts=1)
                errors.extend(error_boxes(page))
                if shoot and args.screenshot is not None:
                    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(args.screenshot))
                return seconds
            finally:
                ctx.close()

        def visit_floor() -> float:
            ctx = b.new_context(viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                start = time.perf_counter()
                page.goto(floor_url, wait_until="commit")
                page.get_by_role("heading", name="Floor").wait_for()
                return time.perf_counter() - start
            finally:
                ctx.close()

        cold = visit(shoot=True)
        visit_floor()  # its own cold start, not counted
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            warm.append(visit())
            floor.append(visit_floor())
    result = {
        "samples": args.n,
        "database": db_url.split(":", 1)[0],
        "fixture_build_s": build_s,
        "cold_s": round(cold, 3),
        "warm_s": round(statistics.median(warm), 3),
        "warm_runs_s": [round(x, 3) for x in warm],
        "floor_s": round(statistics.median(floor), 3),
        "target_s": 2.0,
        "met": statistics.median(warm) < 2.0,
        "sql_ms": _sql_ms(db_url, evaluation_id),
        "error_boxes": errors,
    }
    if args.screenshot is not None:
        result["screenshot"] = str(args.screenshot)
        result["screenshot_bytes"] = _small_png(args.screenshot)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
