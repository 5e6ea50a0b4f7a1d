"""``validate_dataset``: read → probe images → facts → GX suite → report, docs, quarantine."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from reasonbrain.config import ValidateParams
from reasonbrain.data.staging import staged_dir
from reasonbrain.data.validation.checks import CHECKS, Check
from reasonbrain.data.validation.facts import build_facts
from reasonbrain.data.validation.images import probe_images
from reasonbrain.data.validation.manifests import read_rows
from reasonbrain.data.validation.quarantine import check_quarantine_dir, write_quarantine
from reasonbrain.data.validation.report import (
    MAX_EXAMPLES,
    CheckResult,
    Example,
    ValidationReport,
)
from reasonbrain.errors import DatasetError


def check_docs_dir(docs_dir: Path) -> None:
    """Refuse a docs directory whose replacement would lose unrelated files.

    Raises:
        DatasetError: ``docs_dir`` is a file, or a non-empty directory that is not a data docs
            site (``index.html`` + ``static/``) written earlier.
    """
    if docs_dir.exists() and not docs_dir.is_dir():
        raise DatasetError("docs path exists and is not a directory", where=str(docs_dir))
    if (
        docs_dir.is_dir()
        and any(docs_dir.iterdir())
        and not ((docs_dir / "index.html").is_file() and (docs_dir / "static").is_dir())
    ):
        raise DatasetError(
            "docs directory is not empty and is not an earlier data docs site",
            where=str(docs_dir),
            fix="choose an empty or new directory for --docs",
        )


def _rows_as_dicts(df: pd.DataFrame, index: list[int]) -> list[dict[str, Any]]:
    """The facts rows at ``index`` as plain dicts with nulls as ``None``."""
    if not index:
        return []
    sub = df.iloc[index].astype(object)
    return list(sub.where(sub.notna(), None).to_dict("records"))


def _details(
    check: Check, df: pd.DataFrame, index: list[int], params: ValidateParams
) -> list[tuple[dict[str, Any], str]]:
    return [(row, check.detail(row, params)) for row in _rows_as_dicts(df, index)]


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    if not enabled or total == 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    # no auto-refresh thread: image probing forks worker processes, which is only safe while this
    # process runs a single thread (see images._start_method)
    with Progress(console=Console(stderr=True), transient=True, auto_refresh=False) as bar:
        task = bar.add_task("probing images", total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)
            bar.refresh()

        yield advance


def validate_dataset(
    root: Path,
    params: ValidateParams,
    *,
    report_path: Path | None = None,
    docs_dir: Path | None = None,
    quarantine_dir: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> ValidationReport:
    """Validate a dataset directory in the Reason50K layout with a Great Expectations suite.

    Every non-blank manifest line becomes a row of facts (see :mod:`.facts`); the checks in
    :data:`.checks.CHECKS` judge them with GX. Bad rows never stop validation: a malformed line is
    reported with its file and line number like any other failing row.

    Args:
        root: the dataset directory (``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``, any subset).
        params: the validation rules (``params.yaml`` section ``validate``).
        report_path: write the JSON report here (atomically).
        docs_dir: build GX's HTML data docs here (a new, empty or earlier docs directory).
        quarantine_dir: write the cleaned dataset and ``rejected.jsonl`` here (see
            :mod:`.quarantine`); must lie outside ``root``.
        workers: processes probing images (default: all cores).
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        The report; ``report.ok`` is false when a blocking check failed.

    Raises:
        DatasetError: ``root`` is missing or holds no manifest; an output directory is unsafe.
    """
    t0 = time.perf_counter()
    root = Path(root)
    timings: dict[str, float] = {}
    rows, per_split, blank = read_rows(root)
    if quarantine_dir is not None:
        check_quarantine_dir(root, Path(quarantine_dir))
    if docs_dir is not None:
        check_docs_dir(Path(docs_dir))
    timings["read_manifests"] = time.perf_counter() - t0

    t = time.perf_counter()
    rels = [rel for row in rows for _, rel in row.refs]
    show = sys.stderr.isatty() if progress is None else progress
    with _progress(show, len(set(rels))) as advance:
        images = probe_images(str(root), rels, workers=workers, on_progress=advance)
    timings["probe_images"] = time.perf_counter() - t

    t = time.perf_counter()
    df = build_facts(rows, images, params)
    timings["build_facts"] = time.perf_counter() - t

    t = time.perf_counter()
    from reasonbrain.data.validation.suite import run_suite

    docs_index: Path | None = None
    if docs_dir is not None:
        with staged_dir(Path(docs_dir), force=True) as tmp:
            outcome = run_suite(df, params, docs_dir=tmp)
        if outcome.docs_index is not None:
            docs_index = Path(docs_dir) / "index.html"
    else:
        outcome = run_suite(df, params, docs_dir=None)
    timings["great_expectations"] = time.perf_counter() - t

    t = time.perf_counter()
    results: list[CheckResult] = []
    reasons: dict[int, list[str]] = {}
    for check in CHECKS:
        index = outcome.failing_rows[check.name]
        blocking = check.severity == "blocking"
        # every failing row's reason is needed for rejected.jsonl; otherwise only the examples
        explain = index if (blocking and quarantine_dir is not None) else index[:MAX_EXAMPLES]
        explained = _details(check, df, explain, params)
        examples = [Example(str(r["where"]), r["id"], d) for r, d in explained[:MAX_EXAMPLES]]
        if not index and outcome.failed[check.name]:
            examples = [Example("dataset", None, check.detail({}, params))]
        results.append(
            CheckResult(
                name=check.name,
                severity=check.severity,
                description=check.description,
                passed=not outcome.failed[check.name],
                failing_rows=len(index),
                examples=examples,
            )
        )
        if blocking:
            for i in index:
                reasons.setdefault(i, [])
            for i, (_, d) in zip(explain, explained, strict=True):
                reasons[i].append(f"{check.name}: {d}")

    report = ValidationReport(
        root=root,
        rows=len(rows),
        rows_per_split=per_split,
        blank_lines=blank,
        invalid_rows=len(reasons),
        images_probed=len(images),
        checks=results,
        gx_statistics=outcome.statistics,
        docs_index=docs_index,
    )
    if quarantine_dir is not None:
        report.quarantine = write_quarantine(
            root, Path(quarantine_dir), rows, list(per_split), reasons
        )
    timings["report"] = time.perf_counter() - t
    report.timings = timings
    report.seconds = time.perf_counter() - t0
    if report_path is not None:
        report.write_json(Path(report_path))
    return report
