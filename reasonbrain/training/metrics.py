"""Step log (JSON lines), DVC plots/metrics files, and live progress on the terminal.

Rank 0 appends one JSON object per optimiser step to the log (``step``, ``loss``, ``loss_mllm``,
``loss_dm``, ``loss_ground``, ``lr/<group>``, ``samples_per_s``, ``data_wait_frac``, ``step_s``,
and ``val_loss`` at validation steps). The log travels inside every checkpoint, so a resumed run
continues it with no gaps or repeats; the driver writes the final copy and the DVC files from the
last checkpoint:

- ``train_log.jsonl`` — the full log;
- ``plots/train.csv`` (``step,loss,loss_mllm,loss_dm,lr``) and ``plots/val.csv`` (``step,val_loss``)
  — DVC plots;
- ``metrics.json`` — final figures (DVC metrics).
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TRAIN_PLOT_FIELDS = ("step", "loss", "loss_mllm", "loss_dm", "lr")


def read_log(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines log (missing file → empty; a torn last line is ignored)."""
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_log(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def summarise(rows: list[dict[str, Any]], *, tail: int = 20) -> dict[str, Any]:
    """Final figures: first/last loss (mean of the first/last ``tail`` steps), val loss, speed."""
    if not rows:
        return {}
    k = max(1, min(tail, len(rows) // 4 or 1))

    def mean(key: str, part: list[dict[str, Any]]) -> float | None:
        vals = [float(r[key]) for r in part if r.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    vals = [r for r in rows if r.get("val_loss") is not None]
    timed = rows[1:] or rows  # the first step pays one-off warm-up costs
    out = {
        "steps": int(rows[-1]["step"]),
        "loss_start": mean("loss", rows[:k]),
        "loss_end": mean("loss", rows[-k:]),
        "loss_dm_start": mean("loss_dm", rows[:k]),
        "loss_dm_end": mean("loss_dm", rows[-k:]),
        "val_loss_first": vals[0]["val_loss"] if vals else None,
        "val_loss": vals[-1]["val_loss"] if vals else None,
        "samples_per_s": mean("samples_per_s", timed),
        "data_wait_frac": mean("data_wait_frac", timed),
        "train_seconds": sum(float(r.get("step_s", 0.0)) for r in rows),
        "peak_mem_mb": max((float(r.get("peak_mem_mb", 0.0)) for r in rows), default=0.0),
    }
    return out


def write_outputs(out_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Write ``train_log.jsonl``, ``plots/*.csv`` and ``metrics.json`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    write_log(out_dir / "train_log.jsonl", rows)
    lr_key = next((k for k in (rows[0] if rows else {}) if k.startswith("lr/")), None)
    train_rows = [{**r, "lr": r.get(lr_key) if lr_key else None} for r in rows]
    _write_csv(out_dir / "plots" / "train.csv", TRAIN_PLOT_FIELDS, train_rows)
    _write_csv(
        out_dir / "plots" / "val.csv",
        ("step", "val_loss"),
        [r for r in rows if r.get("val_loss") is not None],
    )
    summary = summarise(rows)
    tmp = out_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out_dir / "metrics.json")
    return summary


class LiveProgress:
    """Follow a live step log written by rank 0 and show a rich progress bar.

    Used when Ray runs on this machine (the log path is local to the workers too); on a cluster
    the workers' periodic log lines (forwarded by Ray) are the progress report.
    """

    def __init__(self, path: Path, total: int, description: str, enabled: bool = True) -> None:
        self.path, self.total, self.description, self.enabled = path, total, description, enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as prog:
            task = prog.add_task(self.description, total=self.total, info="starting workers…")
            while not self._stop.is_set():
                self._update(prog, task)
                self._stop.wait(1.0)
            self._update(prog, task)

    def _update(self, prog: Any, task: Any) -> None:
        rows = read_log(self.path)
        if not rows:
            return
        last = rows[-1]
        val = next((r["val_loss"] for r in reversed(rows) if r.get("val_loss") is not None), None)
        info = f"loss {last.get('loss', float('nan')):.4f}"
        if val is not None:
            info += f" · val {val:.4f}"
        info += f" · {last.get('samples_per_s', 0.0):.1f} samples/s"
        prog.update(task, completed=int(last["step"]), info=info)


def now() -> float:
    """Monotonic clock for step timing."""
    return time.perf_counter()
