"""The evaluation worker: edits and scores batches of samples.

One :class:`EvalWorker` per Ray Data actor (or one in-process for the plain loop): the predictor
(model), the metric encoders and the judge are loaded **once** when it is built; each call edits
a batch of samples and scores every output. A batch is ``{"plan": [SamplePlan JSON …]}``
(:func:`to_batch`); how a sample is produced (one edit, or a chained MagicBrush session) is in
its plan (:mod:`~reasonbrain.evaluation.protocols`), so the worker runs any plan the same way:
the k-th edits of all the batch's plans go to the predictor together, each editing its own
previous output. The answer is ``{"id", "png", "row"}``, one entry per sample, which the driver
writes to the output store; a sample without an output (a missing or unreadable stored
prediction) has empty ``png`` bytes and a row whose ``image`` is ``None``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonbrain.data.schema import resolve_in_root
from reasonbrain.evaluation.images import load_rgb, png_bytes
from reasonbrain.evaluation.predictors import Edit, EditRequest, ResolvedModel, load_predictor
from reasonbrain.evaluation.protocols import SamplePlan
from reasonbrain.evaluation.store import image_path

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams


def predictor_threads(params: EvalParams) -> int:
    """Intra-op threads for one predictor: ``torch_threads``, or this machine's CPUs split over
    the actors. Ray sets an actor's thread count to its ``num_cpus`` (1 by default, so that Ray
    Data keeps a CPU for itself), which on 2 cores left one idle while the driver mostly waits."""
    if params.torch_threads:
        return params.torch_threads
    return max(1, (os.cpu_count() or 1) // params.concurrency)


def work_items(plans: Sequence[SamplePlan]) -> list[dict[str, Any]]:
    """One Ray Data item per sample."""
    return [{"plan": p.to_json()} for p in plans]


def to_batch(plans: Sequence[SamplePlan]) -> dict[str, np.ndarray]:
    """A batch in the worker's input format."""
    return {"plan": np.array([p.to_json() for p in plans], dtype=object)}


class EvalWorker:
    """Edits and scores batches (see the module docstring).

    Args:
        model: the resolved model, as :meth:`ResolvedModel.to_dict` (actors are built from
            plain data).
        data_root: the dataset directory (records' paths are relative to it).
        params: ``EvalParams`` as a JSON-able dict.
        settings: ``Settings`` as a JSON-able dict.
        cache_dir: judge cache directory (``None``: no cache).
    """

    def __init__(
        self,
        model: dict[str, Any],
        data_root: str,
        params: dict[str, Any],
        settings: dict[str, Any],
        cache_dir: str | None = None,
    ) -> None:
        from reasonbrain.config import EvalParams, Settings
        from reasonbrain.evaluation.judges import build_judge
        from reasonbrain.evaluation.scoring import Scorer

        self.params = EvalParams.model_validate(params)
        cfg = Settings.model_validate(settings)
        self.root = Path(data_root)
        device = "cuda" if self.params.num_gpus_per_actor > 0 else "cpu"
        if device == "cpu":
            import torch

            torch.set_num_threads(predictor_threads(self.params))
        self.predictor = load_predictor(ResolvedModel.from_dict(model), self.params, device)
        judge = build_judge(self.params, cfg, Path(cache_dir) if cache_dir else None)
        self.scorer = Scorer(self.params, cfg, judge=judge, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"plan": json[]}`` → ``{"id", "png", "row"}`` (one per sample)."""
        plans = [SamplePlan.from_json(str(s)) for s in batch["plan"]]
        ids, pngs, rows = [], [], []
        for plan, edit in zip(plans, self._edit(plans), strict=True):
            row = self.scorer.score(
                plan.scored, self.root, edit.image, edit.rationale, prediction=edit.prediction
            )
            row["seed"] = plan.seed
            row["image"] = image_path(plan.sample_id) if edit.image is not None else None
            row.update(plan.extras)
            ids.append(plan.sample_id)
            pngs.append(png_bytes(edit.image) if edit.image is not None else b"")
            rows.append(json.dumps(row, ensure_ascii=False, allow_nan=False))
        return {
            "id": np.array(ids, dtype=object),
            "png": np.array(pngs, dtype=object),
            "row": np.array(rows, dtype=object),
        }

    def _edit(self, plans: Sequence[SamplePlan]) -> list[Edit]:
        """Run every plan's edits in order, each on the previous output.

        Edit k of every plan that has one goes to the predictor in one call (a single-edit
        plan is a chain of one, so a batch of single edits is exactly one call). A step without
        an output (only stored predictions have those) hands the next step its start image.
        """
        starts = [load_rgb(resolve_in_root(self.root, p.start)) for p in plans]
        edits = [Edit(img, None) for img in starts]
        for k in range(max((len(p.steps) for p in plans), default=0)):
            active = [i for i, p in enumerate(plans) if len(p.steps) > k]
            requests = [
                EditRequest(
                    sample_id=plans[i].sample_id,
                    record_id=plans[i].steps[k].record_id,
                    image=edits[i].image or starts[i],
                    instruction=plans[i].steps[k].instruction,
                    seed=plans[i].steps[k].seed,
                    step=k,
                )
                for i in active
            ]
            for i, edit in zip(active, self.predictor.predict(requests), strict=True):
                edits[i] = edit
        return edits
