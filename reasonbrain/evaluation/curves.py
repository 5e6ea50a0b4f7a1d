"""Training curves for the comparison report: the model's step log as a small chart and table.

``reasonbrain train --out DIR`` writes ``DIR/model/`` and the step log ``DIR/train_log.jsonl``
beside it (one JSON object per optimiser step: ``loss``, ``loss_dm``, ``loss_mllm``,
``loss_ground``, and ``val_loss`` on validation steps). :func:`find_train_log` finds that log for
an evaluated model directory; :func:`curve_table` condenses it to five rows; :func:`draw_curves`
draws the losses against the step as a PNG.

The chart is drawn with Pillow (already a dependency for images) rather than matplotlib, which
the project does not install: a few lines, a log-scaled loss axis, a legend — enough to see
whether a run converged, without a plotting stack in the evaluation image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: Step-log series drawn and tabulated, with their colours.
SERIES: dict[str, str] = {
    "loss": "#1f4e9c",
    "loss_dm": "#2e7d32",
    "loss_mllm": "#ef6c00",
    "loss_ground": "#6a1b9a",
    "val_loss": "#c62828",
}

TRAIN_LOG = "train_log.jsonl"

#: Points per training series in the chart (consecutive steps are averaged).
BINS = 150


def find_train_log(model_path: str | Path | None) -> Path | None:
    """The step log beside a trained model directory (``<out>/train_log.jsonl`` for
    ``<out>/model``), when there is one."""
    if not model_path:
        return None
    log = Path(model_path).parent / TRAIN_LOG
    return log if log.is_file() else None


def read_train_log(path: Path) -> list[dict[str, Any]]:
    """The log's rows in step order (unreadable lines are skipped: a log being written)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int | float):
            rows.append(row)
    return sorted(rows, key=lambda r: r["step"])


def _series(rows: list[dict[str, Any]], name: str) -> list[tuple[float, float]]:
    out = []
    for r in rows:
        v = r.get(name)
        if isinstance(v, int | float) and math.isfinite(v) and v > 0:
            out.append((float(r["step"]), float(v)))
    return out


def _binned(points: list[tuple[float, float]], bins: int) -> list[tuple[float, float]]:
    """Mean step and value per run of consecutive points (at most ``bins`` of them): a per-step
    loss is too noisy to read at a glance."""
    if len(points) <= bins:
        return points
    size = math.ceil(len(points) / bins)
    out = []
    for i in range(0, len(points), size):
        chunk = points[i : i + size]
        out.append((sum(x for x, _ in chunk) / len(chunk), sum(y for _, y in chunk) / len(chunk)))
    return out


def curve_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the step log at 0, 25, 50, 75 and 100 % of training (``val_loss``:
    the latest validation at or before that step)."""
    names = [n for n in SERIES if any(isinstance(r.get(n), int | float) for r in rows)]
    if not rows:
        return ["step", *names], []
    picks = sorted({round(f * (len(rows) - 1)) for f in (0, 0.25, 0.5, 0.75, 1.0)})
    table = []
    for i in picks:
        cells = [str(int(rows[i]["step"]))]
        for n in names:
            if n == "val_loss":
                seen = [r[n] for r in rows[: i + 1] if isinstance(r.get(n), int | float)]
                cells.append(f"{seen[-1]:.4f}" if seen else "—")
            else:
                v = rows[i].get(n)
                cells.append(f"{v:.4f}" if isinstance(v, int | float) else "—")
        table.append(cells)
    return ["step", *names], table


def draw_curves(rows: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Draw every :data:`SERIES` present in ``rows`` against the step (log-scaled y) into a PNG
    at ``path`` (written atomically). Returns False (and writes nothing) when nothing to draw."""
    from PIL import Image, ImageDraw, ImageFont

    from reasonbrain.evaluation.images import atomic_write_bytes, png_bytes

    series = {n: s for n in SERIES if (s := _series(rows, n))}
    if not series:
        return False
    per_bin = max(1, math.ceil(max(len(s) for s in series.values()) / BINS))
    series = {n: s if n == "val_loss" else _binned(s, BINS) for n, s in series.items()}
    if per_bin > 1:
        title += f", mean of every {per_bin} steps"
    w, h = 720, 360
    left, right, top, bottom = 64, 150, 34, 40
    xs = [x for s in series.values() for x, _ in s]
    ys = [math.log10(y) for s in series.values() for _, y in s]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = math.floor(min(ys) * 2) / 2, math.ceil(max(ys) * 2) / 2
    y1 = y1 if y1 > y0 else y0 + 0.5

    def px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / (x1 - x0) * (w - left - right),
            h - bottom - (math.log10(y) - y0) / (y1 - y0) * (h - top - bottom),
        )

    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(12)
    d.text((left, 8), title, fill="black", font=font)
    d.rectangle([left, top, w - right, h - bottom], outline="#888888")
    decade = y0
    while decade <= y1 + 1e-9:  # grid lines at 1, 2, 5 × powers of ten
        for m in (1, 2, 5):
            v = m * 10 ** math.floor(decade)
            if y0 <= math.log10(v) <= y1 and (m == 1 or y1 - y0 <= 3):
                _, yy = px(x0, v)
                d.line([left, yy, w - right, yy], fill="#e6e6e6")
                d.text((6, yy - 7), f"{v:g}", fill="#444444", font=font)
        decade += 1
    for k in range(5):
        x = x0 + k * (x1 - x0) / 4
        xx, _ = px(x, 10**y0)
        d.text((xx - 10, h - bottom + 6), f"{round(x)}", fill="#444444", font=font)
    d.text(((w - right + left) / 2 - 10, h - 18), "step", fill="black", font=font)
    for i, (name, pts) in enumerate(series.items()):
        colour = SERIES[name]
        coords = [px(x, y) for x, y in pts]
        if len(coords) > 1:
            d.line(coords, fill=colour, width=2 if name == "loss" else 1)
        if name == "val_loss" or len(coords) == 1:
            for cx, cy in coords:
                d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        ly = top + 6 + 18 * i
        d.line([w - right + 10, ly + 6, w - right + 30, ly + 6], fill=colour, width=3)
        d.text((w - right + 36, ly), name, fill="black", font=font)
    atomic_write_bytes(path, png_bytes(img))
    return True
