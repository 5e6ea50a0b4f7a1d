"""The resume key: what must match for a rerun into the same ``--out`` to reuse its rows.

- **model** — :meth:`ResolvedModel.key`: its kind, the content digest of its files and, for a
  registry model, the pinned ``registry://NAME@VERSION`` (never an alias, never a path: after a
  promotion or an in-place retrain the key changes, and the old rows are not reused);
- **data** — the dataset directory and the sha256 of the split's manifest (a regenerated or
  re-imported dataset at the same path changes the key);
- **split**, and every ``eval`` parameter that changes *what* is computed (those that only change
  how fast, :data:`OPERATIONAL_KEYS`, are left out).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonbrain.data.schema import manifest_path

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams
    from reasonbrain.evaluation.predictors import ResolvedModel

#: Eval params that change how fast, not what, is computed (left out of the resume key).
OPERATIONAL_KEYS: frozenset[str] = frozenset(
    {
        "batch_size",
        "concurrency",
        "num_cpus_per_actor",
        "num_gpus_per_actor",
        "torch_threads",
        "bootstrap_resamples",
        "ci_level",
        "gallery_per_category",
        "gallery_per_family",
        "judge_requests_per_s",
        "judge_max_retries",
        "judge_timeout_s",
        "split",
    }
)


def dataset_identity(data: Path, split: str) -> dict[str, Any]:
    """The dataset an evaluation reads: its directory and the sha256 of the split manifest."""
    manifest = manifest_path(data, split)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None
    return {"path": str(data.resolve()), "manifest_sha256": digest}


def run_key(
    model: ResolvedModel, dataset: dict[str, Any], split: str, params: EvalParams
) -> dict[str, Any]:
    """The resume key (see the module docstring)."""
    p = {k: v for k, v in params.model_dump(mode="json").items() if k not in OPERATIONAL_KEYS}
    return {"model": model.key(), "data": dataset, "split": split, "eval": p}
