"""A realistic metadata database + object store for the dashboard's tests and benchmark.

Fills an (already migrated) database through the ORM of ``reasonbrain/registry/tables.py`` and
the registry API, with the rows the orchestration flows record: a dataset version, flow runs
(``pipeline`` succeeded and failed, ``ingest``), training runs with their loss curves, an ablation
run, registered model versions with lineage and aliases, a promotion decision, evaluations whose
``summary`` is a real ``metrics.json`` (computed by :func:`reasonbrain.evaluation.aggregate`),
their per-sample rows (verdicts, metrics, rationale, image URIs in the store), reviews and a
notification.

Images are real ReasonSynth test samples (rendered by the generator, 64 px): each model's output
is the outcome its verdict names (target, source, wrong object, wrong change) plus a little noise,
so the verdicts and metrics agree with the pictures. Large fixtures render a pool of scenes and
give every sample its own stored objects (distinct URIs), so no cache can share them.

    from benchmarks.dashboard_fixture import fill
    info = fill(db, store, n_samples=40)
"""

from __future__ import annotations

import hashlib
import io
import math
import tempfile
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select

from reasonbrain.config import SynthParams
from reasonbrain.data.synth.generate import IMAGE_DIRS, plan, render_sample
from reasonbrain.evaluation.aggregate import aggregate
from reasonbrain.registry.api import Registry
from reasonbrain.registry.db import Database
from reasonbrain.registry.store import ObjectStore
from reasonbrain.registry.tables import (
    Dataset,
    Evaluation,
    EvaluationSample,
    Metric,
    Notification,
    PromotionDecision,
    Review,
    Run,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
OUTCOMES = ("target", "no_change", "wrong_object", "wrong_change")
#: per evaluated model: probability of each nearest outcome (the rest of the mass: target)
PROFILES: dict[str, dict[str, float]] = {
    "reasonbrain": {"no_change": 0.12, "wrong_object": 0.15, "wrong_change": 0.08},
    "ip2p": {"no_change": 0.35, "wrong_object": 0.2, "wrong_change": 0.15},
    "identity": {"no_change": 1.0},
}


@dataclass(frozen=True)
class Scene:
    """One rendered ReasonSynth test record: PNG bytes of source, target and counterfactuals."""

    category: str
    family: str
    holdout: str
    instruction: str
    caption: str
    images: dict[str, bytes]
    mask: np.ndarray


@dataclass
class FixtureInfo:
    """What :func:`fill` created (ids tests refer to)."""

    evaluations: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    flow_runs: list[str] = field(default_factory=list)
    train_runs: list[str] = field(default_factory=list)
    ablation_run: str | None = None
    dataset_version: str = ""
    n_samples: int = 0
    reviewers: tuple[str, ...] = ()


def _png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="PNG")
    return out.getvalue()


def render_scenes(n: int, *, size: int = 64, seed: int = 0) -> list[Scene]:
    """Render ``n`` ReasonSynth test records (hold-outs, families and categories mixed)."""
    specs = [
        s for s in plan(SynthParams(n_train=0, n_val=0, n_test=n, size=size)) if s.split == "test"
    ]
    scenes: list[Scene] = []
    with tempfile.TemporaryDirectory(prefix="rb-dash-fixture-") as tmp:
        root = Path(tmp)
        for d in IMAGE_DIRS:
            (root / d).mkdir(parents=True)
        for spec in specs:
            rec = render_sample(spec, root, size, seed)
            meta = rec["meta"]
            files = {"src": rec["src_image"], "tgt": rec["tgt_image"], **meta["counterfactuals"]}
            scenes.append(
                Scene(
                    category=rec["category"],
                    family=meta["family"],
                    holdout=meta["holdout"],
                    instruction=rec["instruction"],
                    caption=rec["target_caption"],
                    images={k: (root / rel).read_bytes() for k, rel in files.items()},
                    mask=np.asarray(Image.open(root / meta["mask"])) > 0,
                )
            )
    return scenes


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def _metrics(out: np.ndarray, tgt: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    o, t = out.astype(np.float64) / 255.0, tgt.astype(np.float64) / 255.0
    d = o - t
    l2 = float((d**2).mean())
    inside, outside = np.abs(d)[mask], d[~mask]
    out_mse = float((outside**2).mean()) if outside.size else 0.0
    return {
        "l1": float(np.abs(d).mean()),
        "l2": l2,
        "psnr": min(100.0, 10 * math.log10(1.0 / max(l2, 1e-10))),
        "edit_error": float(inside.mean()) if inside.size else 0.0,
        "preservation_psnr": min(100.0, 10 * math.log10(1.0 / max(out_mse, 1e-10))),
    }


def _outcome(label: str, rng: np.random.Generator) -> str:
    profile = PROFILES[label.split("@")[0]]
    u, acc = rng.random(), 0.0
    for k, p in profile.items():
        acc += p
        if u < acc:
            return k
    return "target"


def _model_dir(root: Path, name: str, seed: int) -> Path:
    d = root / f"{name}-{seed}"
    (d / "tokenizer").mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(f'{{"model_type": "{name}", "preset": "tiny"}}')
    (d / "model.safetensors").write_bytes(np.random.default_rng(seed).bytes(4096))
    (d / "tokenizer" / "vocab.json").write_text('{"a": 0}')
    (d / "README.md").write_text(f"# {name}\n\ntiny fixture model\n")
    return d


def _runs(db: Database, info: FixtureInfo, dataset_id: int) -> None:
    flow_ok, flow_bad, ingest = (f"flow-{uuid.uuid4().hex[:12]}" for _ in range(3))
    info.flow_runs = [flow_ok, flow_bad, ingest]
    stages = {
        "data": "skipped",
        "validate": "skipped",
        "train@reasonbrain": "ran",
        "train@ip2p": "skipped",
        "evaluate@reasonbrain": "ran",
        "evaluate@ip2p": "skipped",
        "evaluate_identity": "skipped",
        "report": "ran",
    }
    with db.sessions.begin() as s:
        s.add_all(
            [
                Run(
                    id=flow_bad,
                    kind="pipeline",
                    status="failed",
                    started_at=T0 - timedelta(days=1),
                    ended_at=T0 - timedelta(days=1) + timedelta(minutes=3),
                    details={"stages": {"data": "skipped", "train@reasonbrain": "failed"}},
                    error="stage train@reasonbrain failed: worker lost (exit 137)",
                    dataset_id=dataset_id,
                ),
                Run(
                    id=flow_ok,
                    kind="pipeline",
                    status="succeeded",
                    started_at=T0,
                    ended_at=T0 + timedelta(minutes=14, seconds=20),
                    details={"stages": stages},
                    git_commit="66ed101c0ffee",
                    dataset_id=dataset_id,
                ),
                Run(
                    id=ingest,
                    kind="ingest",
                    status="succeeded",
                    started_at=T0 + timedelta(minutes=20),
                    ended_at=T0 + timedelta(minutes=20, seconds=5),
                    details={"drops": 0},
                ),
            ]
        )
        for name, steps, start in (("reasonbrain", 200, 1.2), ("ip2p", 200, 1.0)):
            run_id = f"{name}-train-{uuid.uuid4().hex[:8]}"
            info.train_runs.append(run_id)
            run = Run(
                id=run_id,
                kind="train",
                status="succeeded",
                parent_id=flow_ok,
                started_at=T0 + timedelta(minutes=1),
                ended_at=T0 + timedelta(minutes=9),
                params={"train": {"max_steps": steps}},
                params_hash=hashlib.sha256(name.encode()).hexdigest()[:16],
                git_commit="66ed101c0ffee",
                dataset_id=dataset_id,
            )
            for step in range(0, steps + 1, 10):
                loss = start * math.exp(-step / 80) + 0.15
                run.metrics.append(Metric(name="loss", value=loss, step=step))
                run.metrics.append(Metric(name="loss_dm", value=loss * 0.7, step=step))
                if name == "reasonbrain":
                    run.metrics.append(Metric(name="loss_mllm", value=loss * 0.3, step=step))
                if step % 50 == 0:
                    run.metrics.append(Metric(name="val_loss", value=loss * 1.05, step=step))
            s.add(run)
        ablation_id = f"ablation-{uuid.uuid4().hex[:8]}"
        info.ablation_run = ablation_id
        rungs = {}
        for i, (rung, what) in enumerate(
            [
                ("ip2p", "InstructPix2Pix"),
                ("baseline", "MLLM → QFormer → diffusion"),
                ("frce", "+ FRCE (patch + region)"),
                ("full", "+ FRCE + ID controller + CME (ReasonBrain)"),
            ]
        ):
            rungs[rung] = {
                "switches": {},
                "description": what,
                "run_name": f"{rung}-run",
                "model_dir": f"models/ablation/{rung}",
                "metrics": {
                    "steps": 200,
                    "loss_start": 1.3,
                    "loss_end": 0.4 - 0.03 * i,
                    "val_loss": 0.45 - 0.03 * i,
                },
                "seconds": 300.0 + i,
                "eval": {
                    "reasoning_acc": {
                        "mean": 0.3 + 0.08 * i,
                        "ci_low": 0.25 + 0.08 * i,
                        "ci_high": 0.35 + 0.08 * i,
                        "n": 120,
                    }
                },
            }
        s.add(
            Run(
                id=ablation_id,
                kind="ablation",
                status="succeeded",
                started_at=T0 - timedelta(hours=5),
                ended_at=T0 - timedelta(hours=4),
                details={
                    "budget": {"max_steps": 200, "batch_size": 16},
                    "data": "data/x",
                    "rungs": rungs,
                },
            )
        )


def fill(
    db: Database,
    store: ObjectStore,
    *,
    n_samples: int = 40,
    labels: Sequence[str] = ("reasonbrain@2", "ip2p@1", "identity"),
    scenes: Sequence[Scene] | None = None,
    seed: int = 0,
    resamples: int = 200,
    reviews: bool = True,
    workers: int = 8,
) -> FixtureInfo:
    """Fill a migrated, empty database and its object store (see the module docstring).

    Args:
        db: the database (schema at head).
        store: the object store the images go to.
        n_samples: samples per evaluation (the same sample ids in each).
        labels: evaluations to record (``NAME@VERSION`` of ``reasonbrain``/``ip2p``, or
            ``identity``); the models are registered as needed.
        scenes: rendered scenes to cycle through (default: ``min(n_samples, 200)`` rendered).
        seed: randomness of outcomes and noise.
        resamples: bootstrap resamples of the summaries.
        reviews: add reviews by two reviewers to the first evaluation.
        workers: threads uploading images.
    """
    info = FixtureInfo(n_samples=n_samples)
    pool = list(scenes) if scenes is not None else render_scenes(min(n_samples, 200))
    rng = np.random.default_rng(seed)
    version = hashlib.md5(f"reasonsynth-{seed}".encode()).hexdigest()
    info.dataset_version = version
    with db.sessions.begin() as s:
        ds = Dataset(
            name="reasonsynth",
            version=version,
            path="data/reasonsynth",
            split_counts={"train": 6000, "val": 300, "test": n_samples},
            validation_status="passed",
            validation_report={"success": True, "checks": 14, "failed": []},
            created_at=T0 - timedelta(days=2),
        )
        s.add(ds)
        s.flush()
        dataset_id = ds.id
    _runs(db, info, dataset_id)

    # registered models, through the registry API (lineage as the pipeline records it)
    reg = Registry(db, store, Path(tempfile.gettempdir()) / "rb-dash-fixture-cache")
    wanted = {lab.split("@")[0]: int(lab.split("@")[1]) for lab in labels if "@" in lab}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("reasonbrain", "ip2p"):
            for v in range(1, max(wanted.get(name, 0), 1 if name == "reasonbrain" else 0) + 1):
                train = next((r for r in info.train_runs if r.startswith(name)), None)
                mv = reg.register(
                    _model_dir(Path(tmp), name, v),
                    name,
                    run_id=train,
                    lineage={
                        "git_commit": "66ed101c0ffee",
                        "git_dirty": False,
                        "params_hash": hashlib.sha256(f"{name}{v}".encode()).hexdigest()[:16],
                        "params": {"train": {"max_steps": 200, "lr": 3e-4}},
                        "dataset_version": version,
                        "dataset_path": "data/reasonsynth",
                        "ray_run_name": train,
                        "run_uri": f"{store.uri_for('runs')}/{train}",
                        "train_metrics": {"loss_end": 0.31, "val_loss": 0.35},
                        "source": "pipeline",
                        "flow_run_id": info.flow_runs[0],
                    },
                    description=f"{name} v{v} (fixture)",
                )
                info.versions[mv.ref] = mv.id
    if "reasonbrain@1" in info.versions:
        reg.promote("reasonbrain@1", "production")
    if "reasonbrain@2" in info.versions:
        reg.promote("reasonbrain@2", "staging")
    if "ip2p@1" in info.versions:
        reg.promote("ip2p@1", "production")

    # dataset images: shared by every evaluation
    sample_ids = [f"test-{i:06d}" for i in range(n_samples)]
    puts: list[tuple[bytes, str]] = []
    src_uri: dict[str, str] = {}
    tgt_uri: dict[str, str] = {}
    for i, sid in enumerate(sample_ids):
        sc = pool[i % len(pool)]
        for kind, uris in (("src", src_uri), ("tgt", tgt_uri)):
            key = f"datasets/reasonsynth/{version}/images/{kind}/{sid}.png"
            puts.append((sc.images[kind], key))
            uris[sid] = store.uri_for(key)

    samples_by_label: dict[str, list[dict[str, Any]]] = {}
    for label in labels:
        key = hashlib.sha256(f"{label}:{version}:test".encode()).hexdigest()[:32]
        prefix = f"evaluations/{key}"
        rows: list[dict[str, Any]] = []
        for i, sid in enumerate(sample_ids):
            sc = pool[i % len(pool)]
            unverifiable = label != "identity" and i % 97 == 13
            outcome = _outcome(label, rng)
            base = _decode(sc.images[outcome if outcome != "target" else "tgt"])
            if label != "identity":
                noise = rng.normal(0, 4, base.shape)
                base = np.clip(base.astype(np.float64) + noise, 0, 255).astype(np.uint8)
            out_key = f"{prefix}/images/{sid}.png"
            puts.append((_png(base), out_key))
            m: dict[str, Any] = _metrics(base, _decode(sc.images["tgt"]), sc.mask)
            correct = None if unverifiable else outcome == "target"
            m["reasoning_acc"] = None if correct is None else float(correct)
            m["instruction_alignment"] = m["reasoning_acc"]
            m["chance"] = 0.25
            m["mllm_sc"] = None if correct is None else (8.0 if correct else 2.0)
            rows.append(
                {
                    "id": sid,
                    "category": sc.category,
                    "family": sc.family,
                    "holdout": sc.holdout,
                    "instruction": sc.instruction,
                    "rationale": sc.caption if label.startswith("reasonbrain") else None,
                    "metrics": m,
                    "verifier": {
                        "nearest": outcome,
                        "verifiable": not unverifiable,
                        "correct": correct,
                    },
                    "verdict": "unverifiable" if unverifiable else outcome,
                    "correct": correct,
                    "images": {
                        "src": src_uri[sid],
                        "tgt": tgt_uri[sid],
                        "output": store.uri_for(out_key),
                    },
                }
            )
        samples_by_label[label] = rows

    with ThreadPoolExecutor(max_workers=workers) as pool_exec:
        list(pool_exec.map(lambda p: store.put_bytes(p[0], p[1]), puts))

    for j, label in enumerate(labels):
        rows = samples_by_label[label]
        summary = aggregate(rows, resamples=resamples)
        summary.pop("per_category", None)
        key = hashlib.sha256(f"{label}:{version}:test".encode()).hexdigest()[:32]
        mv_id = info.versions.get(label)
        with db.sessions.begin() as s:
            ev = Evaluation(
                model_version_id=mv_id,
                run_id=info.flow_runs[0],
                dataset_id=dataset_id,
                split="test",
                config={"verifier": {"region": "union", "change_threshold": 0.02}},
                summary={"run": {"samples": len(rows)}, **summary},
                created_at=T0 + timedelta(minutes=10 + j),
                key=key,
                label=label,
                store_prefix=store.uri_for(f"evaluations/{key}"),
                n_samples=len(rows),
            )
            s.add(ev)
            s.flush()
            info.evaluations[label] = ev.id
            s.add_all(
                [
                    EvaluationSample(
                        evaluation_id=ev.id,
                        sample_id=r["id"],
                        category=r["category"],
                        family=r["family"],
                        holdout=r["holdout"],
                        instruction=r["instruction"],
                        rationale=r["rationale"],
                        verdict=r["verdict"],
                        correct=r["correct"],
                        metrics=r["metrics"],
                        image_uris=r["images"],
                    )
                    for r in rows
                ]
            )

    first = labels[0]
    with db.sessions.begin() as s:
        cand = info.versions.get("reasonbrain@2")
        inc = info.versions.get("reasonbrain@1")
        if cand is not None:
            s.add(
                PromotionDecision(
                    name="reasonbrain",
                    candidate_version_id=cand,
                    incumbent_version_id=inc,
                    decision="staging",
                    metric="reasoning_acc",
                    margin=0.0,
                    difference=0.021,
                    ci_low=-0.012,
                    ci_high=0.054,
                    n_pairs=n_samples,
                    reason=(
                        "reasonbrain@2 vs production reasonbrain@1 on reasoning_acc: +0.021, "
                        "95% CI [-0.012, +0.054] does not clear the margin 0.000: staging"
                    ),
                    details={"comparisons": []},
                    run_id=info.flow_runs[0],
                    created_at=T0 + timedelta(minutes=14),
                )
            )
        s.add(
            Notification(
                event="failure",
                flow="pipeline",
                run_id=info.flow_runs[1],
                message="pipeline failed at train@reasonbrain",
                payload={},
                deliveries=[{"channel": "log", "ok": True, "detail": ""}],
                created_at=T0 - timedelta(days=1),
            )
        )
        if reviews:
            info.reviewers = ("ana", "ben")
            ids = list(
                s.scalars(
                    select(EvaluationSample.id)
                    .where(EvaluationSample.evaluation_id == info.evaluations[first])
                    .order_by(EvaluationSample.sample_id)
                    .limit(8)
                )
            )
            correct_of = {r["id"]: r["correct"] for r in samples_by_label[first][:8]}
            for k, row_id in enumerate(ids):
                sid = sample_ids[k]
                right = correct_of[sid]
                ana = "flag" if right is None else ("accept" if right else "reject")
                s.add(
                    Review(
                        sample_row_id=row_id,
                        verdict=ana,
                        reviewer="ana",
                        note="looks right" if ana == "accept" else None,
                        created_at=T0 + timedelta(hours=1, minutes=k),
                    )
                )
                if k < 6:
                    ben = ana if k != 2 else ("reject" if ana == "accept" else "accept")
                    s.add(
                        Review(
                            sample_row_id=row_id,
                            verdict=ben,
                            reviewer="ben",
                            created_at=T0 + timedelta(hours=2, minutes=k),
                        )
                    )
    return info
