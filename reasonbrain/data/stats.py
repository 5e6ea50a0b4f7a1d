"""Dataset statistics (``reasonbrain data stats DIR``).

Counts per split and category, the instruction-length distribution (characters and words) and the
image sizes. Image sizes come from PNG/JPEG headers (PIL opens lazily), so a 51k-row dataset is
described in seconds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from reasonbrain.data.schema import existing_splits, iter_manifest, manifest_path, resolve_in_root


def _distribution(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "p50": 0, "p95": 0, "max": 0, "mean": 0.0}
    a = np.asarray(values)
    return {
        "min": int(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": int(a.max()),
        "mean": round(float(a.mean()), 2),
    }


def _image_size(root: Path, rel: str) -> str:
    try:
        with Image.open(resolve_in_root(root, rel)) as im:
            return f"{im.width}x{im.height}"
    except Exception:  # stats describe; `data validate` is where bad files are reported
        return "unreadable"


def dataset_stats(root: Path | str) -> dict[str, Any]:
    """Describe a dataset directory.

    Returns:
        ``{"root", "splits": {split: {"records", "categories": {cat: n}}}, "total",
        "instruction_chars": dist, "instruction_words": dist, "objects_per_record": dist,
        "image_sizes": {"WxH": n}}`` where ``dist`` has min/p50/p95/max/mean.

    Raises:
        DatasetError: ``root`` is missing or holds no manifest.
        ManifestLineError: a manifest line is malformed.
    """
    r = Path(root)
    splits: dict[str, Any] = {}
    chars: list[int] = []
    words: list[int] = []
    n_objects: list[int] = []
    sizes: Counter[str] = Counter()
    size_cache: dict[str, str] = {}
    for split in existing_splits(r):
        cats: Counter[str] = Counter()
        n = 0
        for _, rec in iter_manifest(manifest_path(r, split)):
            n += 1
            cats[rec.category] += 1
            chars.append(len(rec.instruction))
            words.append(len(rec.instruction.split()))
            n_objects.append(len(rec.objects))
            for rel in (rec.src_image, rec.tgt_image):
                if rel not in size_cache:
                    size_cache[rel] = _image_size(r, rel)
                sizes[size_cache[rel]] += 1
        splits[split] = {"records": n, "categories": dict(sorted(cats.items()))}
    return {
        "root": str(r),
        "splits": splits,
        "total": sum(s["records"] for s in splits.values()),
        "instruction_chars": _distribution(chars),
        "instruction_words": _distribution(words),
        "objects_per_record": _distribution(n_objects),
        "image_sizes": dict(sizes.most_common()),
    }


def render_stats(stats: dict[str, Any], console: Console) -> None:
    """Print :func:`dataset_stats` output as rich tables."""
    cats = sorted({c for s in stats["splits"].values() for c in s["categories"]})
    t = Table(title=f"{stats['root']} — {stats['total']} records")
    t.add_column("split")
    t.add_column("records", justify="right")
    for c in cats:
        t.add_column(c, justify="right")
    for split, s in stats["splits"].items():
        t.add_row(split, str(s["records"]), *(str(s["categories"].get(c, 0)) for c in cats))
    console.print(t)
    d = Table(title="distributions")
    for col in ("", "min", "p50", "p95", "max", "mean"):
        d.add_column(col, justify="right" if col else "left")
    for key in ("instruction_chars", "instruction_words", "objects_per_record"):
        v = stats[key]
        d.add_row(key, *(str(v[k]) for k in ("min", "p50", "p95", "max", "mean")))
    console.print(d)
    sizes = ", ".join(f"{k}: {v}" for k, v in stats["image_sizes"].items())
    console.print(f"image sizes (src+tgt): {sizes}")
