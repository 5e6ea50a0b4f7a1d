"""The project the flows work on: where DVC writes what, the dataset version, the workspace lock.

The layout mirrors ``dvc.yaml`` (a test keeps the two in step): the model trained as NAME is in
``models/NAME/model`` (its ``run.json`` and ``metrics.json`` beside it), its evaluation in
``reports/eval/NAME``, the identity baseline's in ``reports/eval/identity``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonbrain.config import Params
from reasonbrain.data.schema import SPLITS, manifest_path
from reasonbrain.errors import ReasonBrainError
from reasonbrain.lineage import data_stage_version

MODELS_DIR = Path("models")
EVAL_DIR = Path("reports/eval")
IDENTITY = "identity"
VERDICT = Path("reports/validation_verdict.json")
ABLATION = Path("reports/ablation.json")
LOCK_FILE = Path(".dvc/tmp/reasonbrain-flows.lock")


class WorkspaceBusy(ReasonBrainError):
    """Another flow holds the project's workspace (DVC stages or a merge in progress)."""


def model_dir(root: Path, name: str) -> Path:
    """``models/NAME/model``."""
    return root / MODELS_DIR / name / "model"


def eval_dir(root: Path, name: str) -> Path:
    """``reports/eval/NAME``."""
    return root / EVAL_DIR / name


@contextlib.contextmanager
def workspace_lock(root: Path, timeout_s: float, *, poll_s: float = 1.0) -> Iterator[None]:
    """Hold the project's workspace for one flow (DVC runs, params.yaml edits, merges).

    DVC's own lock covers one command; a flow runs many, and ``ingest`` must not merge a drop
    between the ``pipeline`` flow's stages. ``timeout_s=0`` fails at once when busy.

    Raises:
        WorkspaceBusy: still held by another process after ``timeout_s``.
    """
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(
                        "another flow is using the project's workspace",
                        where=str(path),
                        fix="wait for it to finish (see the Prefect UI), then run again",
                    ) from None
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DatasetFacts:
    """The dataset version stage ``data`` produced (from ``dvc.lock`` and the manifests)."""

    name: str
    version: str | None
    path: str
    split_counts: dict[str, int]
    validation_report: dict[str, Any] | None


def dataset_facts(root: Path, params: Params) -> DatasetFacts:
    """What is known about ``data.dir`` now: DVC's md5, split counts, the validation report."""
    data = root / params.data.dir
    counts: dict[str, int] = {}
    for split in SPLITS:
        p = manifest_path(data, split)
        if p.is_file():
            with p.open("rb") as fh:
                counts[split] = sum(1 for line in fh if line.strip())
    report_path = root / params.validate_.report
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return DatasetFacts(
        name=Path(params.data.dir).name,
        version=data_stage_version(root),
        path=str(params.data.dir),
        split_counts=counts,
        validation_report=report,
    )
