"""Record an evaluation output directory in SQL and its images in the object store.

An evaluation directory (``reports/eval/NAME``: ``samples.jsonl``, ``metrics.json``, ``images/``,
written by ``reasonbrain evaluate``) becomes

- one ``evaluations`` row: what was evaluated (label, model version), the dataset version, split,
  the metric configuration (``config``) and the whole ``metrics.json`` (``summary``, CIs included);
- one ``evaluation_samples`` row per sample: category, family, hold-out type, instruction,
  rationale, per-sample metrics, the verifier's verdict (its outcome), whether it is correct,
  and ``image_uris`` = ``{"src", "tgt", "output"}``: full URIs in the registry's object store;
- objects: the edited images under ``evaluations/<key>/images/`` (plus ``samples.jsonl`` and
  ``metrics.json`` beside them) and the source/target images under
  ``datasets/<dataset name>/<dataset version>/`` (shared by every evaluation of that version), so a
  dashboard on another machine can show them from ``s3://``.

The row's ``key`` is a digest of what was evaluated (the model's sha256, or ``identity``), the
dataset version, the split and the eval params that change results: recording the same
evaluation again finds the existing row and uploads nothing.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reasonbrain.data.schema import Record, manifest_path, read_manifest, resolve_in_root
from reasonbrain.errors import DatasetError
from reasonbrain.registry.api import Registry
from reasonbrain.registry.checksums import sha256_file
from reasonbrain.registry.store import ObjectStore, join_key
from reasonbrain.registry.tables import Evaluation, EvaluationSample, utcnow

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
#: metrics whose per-sample value says "correct" (first one present wins)
CORRECT_METRICS: tuple[str, ...] = ("reasoning_acc", "instruction_alignment")
UPLOAD_THREADS = 8


@dataclass(frozen=True)
class RecordedEvaluation:
    """An ``evaluations`` row, as the flow reports it.

    Attributes:
        id: row id.
        key: idempotency key.
        label: what was evaluated (``reasonbrain@3``, ``identity`` …).
        n_samples: samples recorded.
        store_prefix: URI of the evaluation's objects.
        created: false when the row already existed (nothing was uploaded).
    """

    id: int
    key: str
    label: str
    n_samples: int
    store_prefix: str
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)


def evaluation_key(
    subject: str, dataset_version: str | None, split: str, eval_params: dict[str, Any]
) -> str:
    """sha256 of what was evaluated (``model:<sha256>`` or ``identity``), on which dataset
    version and split, with which result-changing eval params."""
    doc = {"subject": subject, "dataset": dataset_version, "split": split, "eval": eval_params}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def read_evaluation(eval_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(metrics.json, samples.jsonl rows)`` of an evaluation directory.

    Raises:
        DatasetError: a file is missing or not JSON.
    """
    try:
        metrics = json.loads((eval_dir / METRICS).read_text(encoding="utf-8"))
        lines = (eval_dir / SAMPLES).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"not a complete evaluation output: {type(err).__name__}",
            where=str(eval_dir),
            fix="rerun `reasonbrain evaluate` (or the pipeline's evaluate stage)",
        ) from None
    return metrics, rows


def eval_context(metrics: dict[str, Any], fallback: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(split, result-changing eval params)`` an evaluation ran with (``metrics.json``'s run
    block; ``fallback`` when an older file lacks it)."""
    run = metrics.get("run") or {}
    return str(run.get("split") or fallback.get("split") or "test"), dict(
        run.get("eval") or fallback
    )


def verdict_of(row: dict[str, Any]) -> str | None:
    """The verifier's verdict of a sample row: its ``outcome`` (``target``, the nearest wrong
    outcome, or the bound that failed — ``faint_edit`` …), or ``unverifiable``; rows scored before
    the verifier had bounds give the nearest outcome."""
    v = row.get("verifier")
    if not v:
        return None
    if not v.get("verifiable", True):
        return "unverifiable"
    for key in ("outcome", "nearest"):
        if v.get(key) is not None:
            return str(v[key])
    return None


def correct_of(row: dict[str, Any]) -> bool | None:
    """Whether a sample counts as correct (``None``: excluded, e.g. unverifiable)."""
    metrics = row.get("metrics") or {}
    for name in CORRECT_METRICS:
        if name in metrics:
            value = metrics[name]
            return None if value is None else bool(value >= 0.5)
    return None


def _upload_all(store: ObjectStore, items: list[tuple[Path, str]]) -> None:
    """Upload ``(local file, key)`` pairs, skipping objects already stored with the same bytes."""

    def one(item: tuple[Path, str]) -> None:
        src, key = item
        digest = sha256_file(src)
        info = store.head(key)
        if info is not None and info.sha256 == digest:
            return
        store.put_file(src, key, sha256=digest)

    if not items:
        return
    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        list(pool.map(one, items))


def _records(data_root: Path, split: str) -> dict[str, Record]:
    path = manifest_path(data_root, split)
    return {r.id: r for r in read_manifest(path)} if path.is_file() else {}


def record_evaluation(
    registry: Registry,
    eval_dir: Path | str,
    *,
    label: str,
    subject: str,
    model_version_id: int | None,
    dataset_id: int | None,
    dataset_name: str,
    dataset_version: str | None,
    data_root: Path | str,
    run_id: str | None,
    eval_params: dict[str, Any],
) -> RecordedEvaluation:
    """Record ``eval_dir`` (see the module docstring); idempotent by key.

    Args:
        registry: gives the database and the object store.
        eval_dir: the evaluation output directory.
        label: what was evaluated, for people (``reasonbrain@3``, ``identity``).
        subject: ``model:<sha256>`` of the evaluated model, or the baseline's name.
        model_version_id: the registered version evaluated (``None`` for a baseline).
        dataset_id / dataset_name / dataset_version: the dataset version evaluated on.
        data_root: the dataset directory (its manifests name the source/target images).
        run_id: the flow run recording it.
        eval_params: the eval params (used when ``metrics.json`` lacks its run block).

    Raises:
        DatasetError: the directory is incomplete or names images that do not exist.
        StoreError: an upload failed (retry: uploads are idempotent).
    """
    eval_dir, data_root = Path(eval_dir), Path(data_root)
    metrics, rows = read_evaluation(eval_dir)
    split, params = eval_context(metrics, eval_params)
    key = evaluation_key(subject, dataset_version, split, params)
    store = registry.store
    prefix = join_key("evaluations", key)
    with registry.db.sessions() as s:
        found = s.scalars(select(Evaluation).where(Evaluation.key == key)).first()
        if found is not None:
            return RecordedEvaluation(
                found.id,
                key,
                found.label or label,
                found.n_samples or 0,
                found.store_prefix or "",
                created=False,
            )

    records = _records(data_root, split)
    data_prefix = join_key("datasets", dataset_name, dataset_version or "unversioned")
    uploads: list[tuple[Path, str]] = []
    samples: list[EvaluationSample] = []
    for row in rows:
        uris: dict[str, Any] = {}
        if row.get("image"):
            out_key = join_key(prefix, str(row["image"]))
            uploads.append((eval_dir / str(row["image"]), out_key))
            uris["output"] = store.uri_for(out_key)
        rec = records.get(str(row["id"]))
        if rec is not None:
            for name, rel in (("src", rec.src_image), ("tgt", rec.tgt_image)):
                local = resolve_in_root(data_root, rel)
                if local.is_file():
                    k = join_key(data_prefix, rel)
                    uploads.append((local, k))
                    uris[name] = store.uri_for(k)
        samples.append(
            EvaluationSample(
                sample_id=str(row["id"]),
                category=str(row.get("category") or ""),
                instruction=str(row.get("instruction") or ""),
                image_uris=uris,
                metrics=dict(row.get("metrics") or {}),
                rationale=row.get("rationale"),
                family=row.get("family"),
                holdout=row.get("holdout"),
                verdict=verdict_of(row),
                correct=correct_of(row),
            )
        )
    missing = [str(p) for p, _ in uploads if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) named by samples.jsonl are missing",
            where=missing[0],
            fix="rerun the evaluation (`dvc repro` restores DVC-cached images)",
        )
    for name in (SAMPLES, METRICS):
        uploads.append((eval_dir / name, join_key(prefix, name)))
    _upload_all(store, list(dict.fromkeys(uploads)))

    try:
        with registry.db.sessions.begin() as s:
            ev = Evaluation(
                key=key,
                label=label,
                model_version_id=model_version_id,
                run_id=run_id,
                dataset_id=dataset_id,
                split=split,
                config=dict(metrics.get("config") or {}),
                summary=metrics,
                store_prefix=store.uri_for(prefix),
                n_samples=len(samples),
                created_at=utcnow(),
                samples=samples,
            )
            s.add(ev)
            s.flush()
            ev_id = int(ev.id)
    except IntegrityError:  # recorded concurrently by another run: that row stands
        with registry.db.sessions() as s:
            other = s.scalars(select(Evaluation).where(Evaluation.key == key)).one()
            return RecordedEvaluation(
                other.id, key, label, other.n_samples or 0, other.store_prefix or "", False
            )
    return RecordedEvaluation(ev_id, key, label, len(samples), store.uri_for(prefix), True)


def find_evaluation(registry: Registry, key: str) -> int | None:
    """The id of the evaluation recorded under ``key``, if any."""
    with registry.db.sessions() as s:
        return s.scalar(select(Evaluation.id).where(Evaluation.key == key))


def sample_values(registry: Registry, evaluation_id: int, metric: str) -> dict[str, float]:
    """``sample id → per-sample value of metric`` (samples without a value are left out)."""
    with registry.db.sessions() as s:
        rows = s.execute(
            select(EvaluationSample.sample_id, EvaluationSample.metrics).where(
                EvaluationSample.evaluation_id == evaluation_id
            )
        ).all()
    out: dict[str, float] = {}
    for sid, m in rows:
        v = (m or {}).get(metric)
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v:
            out[str(sid)] = float(v)
    return out
