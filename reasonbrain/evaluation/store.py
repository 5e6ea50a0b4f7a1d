"""The evaluation output directory: what is in it, and how it survives crashes and reruns.

Layout::

    OUT/run.json          the resume key (what was evaluated, see runkey.py) + this call's info
    OUT/images/<id>.png   the edited image of each sample (see image_name; none for a sample
                          whose stored prediction is missing or unreadable)
    OUT/samples.jsonl     one row per sample: per-sample metrics, verifier verdict, judge answer,
                          rationale, seed (final-turn MagicBrush rows add ``session``)
    OUT/metrics.json      aggregates with bootstrap CIs + the configuration behind every number
    OUT/per_category.json one row per category (DVC plots)
    OUT/judge_cache/      judge answers (see judges/cache.py)

**Resumable.** A sample counts as done when its row is in ``samples.jsonl``. Each image is
written to a temporary name and renamed *before* its row is appended, and a row is appended in
one write and flushed, so a crash leaves at most a partial last line, which the next run drops.
A rerun with the same resume key evaluates only what is missing; another key is refused, and
``force`` clears every file above (the judge cache included) and starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from reasonbrain.errors import ConfigError, DatasetError
from reasonbrain.evaluation.images import atomic_write_bytes

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
PER_CATEGORY = "per_category.json"
RUN = "run.json"
IMAGES = "images"
JUDGE_CACHE = "judge_cache"

_SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}$")


def image_name(sample_id: str) -> str:
    """File name for a sample's output: the id when it is file-name safe, else a hashed form."""
    if _SAFE.match(sample_id):
        return f"{sample_id}.png"
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id).lstrip(".")[:80]
    return f"{clean}-{hashlib.sha256(sample_id.encode()).hexdigest()[:10]}.png"


def image_path(sample_id: str) -> str:
    """The ``image`` field of a row: the output's path relative to ``OUT``."""
    return f"{IMAGES}/{image_name(sample_id)}"


def read_done(out: Path) -> dict[str, dict[str, Any]]:
    """Rows already in ``OUT/samples.jsonl`` by id; a partial/corrupt last line is cut off.

    Only the final line can be partial (rows are appended whole); a corrupt line elsewhere means
    the file was edited by hand and is an error.

    Raises:
        DatasetError: a corrupt line that is not the last one.
    """
    path = out / SAMPLES
    if not path.is_file():
        return {}
    data = path.read_bytes()
    done: dict[str, dict[str, Any]] = {}
    good_end = 0
    pos = 0
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        is_last = i == len(lines) - 1
        end = pos + len(raw) + (0 if is_last else 1)
        if raw.strip():
            try:
                if is_last:
                    raise ValueError("no newline")  # a complete row always ends with \n
                row = json.loads(raw)
                done[str(row["id"])] = row
                good_end = end
            except (ValueError, KeyError, TypeError):
                if not is_last:
                    raise DatasetError(
                        "corrupt row in samples.jsonl",
                        where=f"{path}:{i + 1}",
                        fix="remove the line (the sample is then evaluated again)",
                    ) from None
        else:
            good_end = end if not is_last else good_end
        pos = end
    if good_end < len(data):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return done


class SampleWriter:
    """Writes each finished sample: the image (atomic rename), then its row (one flushed write)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / IMAGES).mkdir(parents=True, exist_ok=True)
        self._fh = (out / SAMPLES).open("ab")

    def write(self, sample_id: str, png: bytes, row_json: str) -> None:
        """Persist one sample (empty ``png``: a sample without an output, row only)."""
        if png:
            atomic_write_bytes(self.out / image_path(sample_id), png)
        self._fh.write(row_json.encode("utf-8") + b"\n")
        self._fh.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def prepare_out(out: Path, key: dict[str, Any], force: bool) -> None:
    """Create ``out`` or check that it holds the same run; ``force`` clears our files first.

    Raises:
        ConfigError: ``out`` holds a different run (and ``force`` is false), or is a file.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError("--out exists and is not a directory", where=str(out))
    run_file = out / RUN
    if force and out.is_dir():
        for name in (SAMPLES, METRICS, PER_CATEGORY, RUN):
            (out / name).unlink(missing_ok=True)
        for name in (IMAGES, JUDGE_CACHE):
            shutil.rmtree(out / name, ignore_errors=True)
    elif run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8")).get("key")
        if old != key:
            diff = sorted(k for k in key if not isinstance(old, dict) or old.get(k) != key[k])
            raise ConfigError(
                f"the output directory holds another evaluation (differs in {', '.join(diff)})",
                where=str(out),
                fix="use another --out, or pass --force to start over",
            )
    elif out.is_dir() and (out / SAMPLES).exists():
        raise ConfigError(
            "the output directory has samples but no run.json",
            where=str(out),
            fix="use another --out, or pass --force to start over",
        )
    out.mkdir(parents=True, exist_ok=True)


def write_run_file(out: Path, key: dict[str, Any], info: dict[str, Any]) -> None:
    """``OUT/run.json``: the resume key and what this call was asked (atomically)."""
    atomic_write_bytes(out / RUN, json.dumps({"key": key, **info}, indent=2).encode("utf-8"))
