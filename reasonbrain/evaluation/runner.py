"""Resumable batch evaluation: ``reasonbrain evaluate --model M --data D --split S --out O``.

Ray Data streams the records through ``map_batches`` with :class:`EvalWorker` as an actor class:
the predictor (model), the metric encoders and the judge are loaded **once per actor**, each
batch is edited and scored inside the actor, and the driver writes what comes back. The same
worker runs in a plain loop with ``engine="loop"`` (no Ray; used by the throughput benchmark as
the baseline and by fast tests).

A sample is usually one record. Under ``eval.magicbrush_protocol=final_turn`` a MagicBrush
session is one sample (:func:`~reasonbrain.evaluation.protocols.eval_units`): its whole chain of
edits runs inside one worker call — turn k edits the model's own output of turn k-1, starting
from the session's input, each turn with its own record's seed — and the last output is stored
and scored under the final turn's id. Sessions are independent, so Ray Data still spreads them
over actors; within a batch, the k-th turns of its sessions go to the predictor together.

Output directory::

    OUT/run.json        what was evaluated (model, data, split, eval params) — resumption key
    OUT/images/<id>.png the edited image of each sample
    OUT/samples.jsonl   one row per sample: per-sample metrics, verifier verdict, judge answer,
                        rationale, seed (final-turn MagicBrush rows add ``session``: id, turns
                        applied, turn ids and seeds)
    OUT/metrics.json    aggregates with bootstrap CIs + the configuration behind every number
    OUT/per_category.json  one row per category (DVC plots)
    OUT/judge_cache/    judge answers by (image hashes, instruction, judge id, prompt version)

**Resumable.** A sample counts as done when its row is in ``samples.jsonl``. Each image is
written to a temporary name and renamed *before* its row is appended, and a row is appended in one
write and flushed, so a crash leaves at most a partial last line, which the next run drops. A rerun
with the same run key evaluates only what is missing; a different model/data/split/params is
refused (``force=True`` starts over).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from reasonbrain.compute import ensure_ray
from reasonbrain.data.schema import Record, manifest_path, read_manifest, resolve_in_root
from reasonbrain.errors import ConfigError, DatasetError
from reasonbrain.evaluation.images import atomic_write_bytes, load_rgb, png_bytes
from reasonbrain.evaluation.predictors import check_model_spec, load_predictor, sample_seed
from reasonbrain.evaluation.protocols import (
    MAGICBRUSH_PROTOCOLS,
    EvalUnit,
    eval_units,
    final_turn_record,
)

if TYPE_CHECKING:
    from PIL import Image

    from reasonbrain.config import EvalParams, Settings

Engine = Literal["ray", "loop"]

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
PER_CATEGORY = "per_category.json"
RUN = "run.json"
IMAGES = "images"
JUDGE_CACHE = "judge_cache"

#: Eval params that change how fast, not what, is computed (left out of the resumption key).
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
        "judge_requests_per_s",
        "judge_max_retries",
        "judge_timeout_s",
        "split",
    }
)

_SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}$")


def image_name(sample_id: str) -> str:
    """File name for a sample's output: the id when it is file-name safe, else a hashed form."""
    if _SAFE.match(sample_id):
        return f"{sample_id}.png"
    import hashlib

    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id).lstrip(".")[:80]
    return f"{clean}-{hashlib.sha256(sample_id.encode()).hexdigest()[:10]}.png"


# ------------------------------------------------------------------------------------ worker
def predictor_threads(params: EvalParams) -> int:
    """Intra-op threads for one predictor: ``torch_threads``, or this machine's CPUs split over
    the actors. Ray sets an actor's thread count to its ``num_cpus`` (1 by default, so that Ray
    Data keeps a CPU for itself), which on 2 cores left one idle while the driver mostly waits."""
    if params.torch_threads:
        return params.torch_threads
    return max(1, (os.cpu_count() or 1) // params.concurrency)


class EvalWorker:
    """Edits and scores batches; Ray Data builds one per actor (see the module docstring).

    Args:
        model: ``identity`` or a model directory.
        data_root: the dataset directory (records' paths are relative to it).
        params: ``EvalParams`` as a JSON-able dict (actors are built from plain data).
        settings: ``Settings`` as a JSON-able dict.
        cache_dir: judge cache directory (``None``: no cache).
    """

    def __init__(
        self,
        model: str,
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
        self.predictor = load_predictor(model, self.params, device)
        judge = build_judge(self.params, cfg, Path(cache_dir) if cache_dir else None)
        self.scorer = Scorer(self.params, cfg, judge=judge, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"record": json[], "seed": int[], "session": str[], "chain": json[]}`` →
        ``{"id", "png", "row"}`` (one per sample; see :func:`_items`)."""
        records = [Record.model_validate_json(str(s)) for s in batch["record"]]
        seeds = [int(s) for s in batch["seed"]]
        sessions = [str(s) or None for s in batch["session"]]
        chains = [
            [Record.model_validate(t) for t in json.loads(str(c))] if sid else [rec]
            for rec, sid, c in zip(records, sessions, batch["chain"], strict=True)
        ]
        # every turn's seed comes from its own record id; the last turn's is the sample's seed
        turn_seeds = [
            [sample_seed(t.id, self.params.seed) for t in chain[:-1]] + [seed]
            for chain, seed in zip(chains, seeds, strict=True)
        ]
        starts = [
            str((chain[0].meta or {})["session_input"]) if sid else rec.src_image
            for rec, sid, chain in zip(records, sessions, chains, strict=True)
        ]
        preds = self._edit_chains(starts, chains, turn_seeds)
        ids, pngs, rows = [], [], []
        for rec, sid, chain, tseeds, (image, rationale) in zip(
            records, sessions, chains, turn_seeds, preds, strict=True
        ):
            scored = final_turn_record(chain) if sid else rec
            row = self.scorer.score(scored, self.root, image, rationale)
            row["seed"] = tseeds[-1]
            row["image"] = f"{IMAGES}/{image_name(rec.id)}"
            if sid:
                row["session"] = {
                    "id": sid,
                    "protocol": "final_turn",
                    "turns_applied": len(chain),
                    "turn_ids": [t.id for t in chain],
                    "turn_seeds": tseeds,
                }
            ids.append(rec.id)
            pngs.append(png_bytes(image))
            rows.append(json.dumps(row, ensure_ascii=False, allow_nan=False))
        return {
            "id": np.array(ids, dtype=object),
            "png": np.array(pngs, dtype=object),
            "row": np.array(rows, dtype=object),
        }

    def _edit_chains(
        self, starts: list[str], chains: list[list[Record]], seeds: list[list[int]]
    ) -> list[tuple[Image.Image, str | None]]:
        """Apply each chain's instructions in order, each to the previous output.

        Turn k of every chain that has one goes to the predictor in one call (a single-record
        sample is a chain of one, so a single-turn batch is exactly one call).
        """
        images = [load_rgb(resolve_in_root(self.root, s)) for s in starts]
        rationales: list[str | None] = [None] * len(chains)
        for k in range(max((len(c) for c in chains), default=0)):
            active = [i for i, c in enumerate(chains) if len(c) > k]
            preds = self.predictor.predict(
                [images[i] for i in active],
                [chains[i][k].instruction for i in active],
                [seeds[i][k] for i in active],
            )
            for i, (image, rationale) in zip(active, preds, strict=True):
                images[i], rationales[i] = image, rationale
        return list(zip(images, rationales, strict=True))


# ----------------------------------------------------------------------------------- storage
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
        """Persist one sample."""
        atomic_write_bytes(self.out / IMAGES / image_name(sample_id), png)
        self._fh.write(row_json.encode("utf-8") + b"\n")
        self._fh.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def run_key(model: str, data: Path, split: str, params: EvalParams) -> dict[str, Any]:
    """What must match for a rerun to resume (see :data:`OPERATIONAL_KEYS`)."""
    p = {k: v for k, v in params.model_dump(mode="json").items() if k not in OPERATIONAL_KEYS}
    return {"model": model, "data": str(data.resolve()), "split": split, "eval": p}


def prepare_out(out: Path, key: dict[str, Any], force: bool) -> None:
    """Create ``out`` or check that it holds the same run; ``force`` clears our files first.

    Raises:
        ConfigError: ``out`` holds a different run (and ``force`` is false), or is a file.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError("--out exists and is not a directory", where=str(out))
    run_file = out / RUN
    if force and out.is_dir():
        import shutil

        for name in (SAMPLES, METRICS, PER_CATEGORY, RUN):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / IMAGES, ignore_errors=True)
    elif run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8")).get("key")
        if old != key:
            diff = sorted(k for k in key if old is None or old.get(k) != key[k])
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


# ----------------------------------------------------------------------------------- engines
BatchFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _items(units: Sequence[EvalUnit], seed: int) -> list[dict[str, Any]]:
    """One work item per sample: its (last) record and seed; a final-turn session also carries
    its id and all its turns (JSON), so the whole chain runs in one worker call."""
    return [
        {
            "record": u.turns[-1].model_dump_json(),
            "seed": sample_seed(u.id, seed),
            "session": u.session or "",
            "chain": json.dumps([t.model_dump(mode="json") for t in u.turns]) if u.session else "",
        }
        for u in units
    ]


def _as_batch(items: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {
        "record": np.array([i["record"] for i in items], dtype=object),
        "seed": np.array([i["seed"] for i in items], dtype=np.int64),
        "session": np.array([i["session"] for i in items], dtype=object),
        "chain": np.array([i["chain"] for i in items], dtype=object),
    }


def run_loop(
    items: Sequence[dict[str, Any]], worker_kwargs: dict[str, Any], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """The plain loop: one worker in this process."""
    worker = EvalWorker(**worker_kwargs)
    for i in range(0, len(items), batch_size):
        yield worker(_as_batch(items[i : i + batch_size]))


def run_ray(
    items: Sequence[dict[str, Any]], worker_kwargs: dict[str, Any], params: EvalParams
) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data: ``map_batches`` over an actor pool of :class:`EvalWorker` (see module doc).

    Uses the running Ray cluster (``RAY_ADDRESS`` or an ``ray.init`` already made) or starts a
    local one. Blocks hold about one batch each so results stream back as they finish.
    """
    import ray

    ensure_ray(log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    blocks = max(1, min(len(items), math.ceil(len(items) / params.batch_size)))
    ds: Any = ray.data.from_items(list(items), override_num_blocks=blocks)
    ds = ds.map_batches(
        EvalWorker,
        fn_constructor_kwargs=worker_kwargs,
        batch_size=params.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=params.concurrency),
        num_cpus=params.num_cpus_per_actor,
        num_gpus=params.num_gpus_per_actor or None,
    )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


# ------------------------------------------------------------------------------------- entry
@dataclass
class EvalSummary:
    """What one ``evaluate`` call did."""

    out: Path
    total: int
    skipped_done: int
    evaluated: int
    seconds: float
    metrics: dict[str, Any]

    @property
    def edits_per_s(self) -> float:
        """Newly evaluated samples per second of this call."""
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0


def load_records(data: Path, split: str, limit: int | None) -> list[Record]:
    """The split's records (the first ``limit`` when given).

    Raises:
        DatasetError: no manifest for the split, or duplicate ids.
    """
    records = read_manifest(manifest_path(data, split))
    if limit is not None:
        records = records[:limit]
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise DatasetError(
                f"duplicate sample id {r.id!r}",
                where=str(manifest_path(data, split)),
                fix="ids must be unique within a split",
            )
        seen.add(r.id)
    return records


def evaluate(
    model: str,
    data: Path | str,
    out: Path | str,
    params: EvalParams,
    *,
    split: str | None = None,
    limit: int | None = None,
    engine: Engine = "ray",
    settings: Settings | None = None,
    force: bool = False,
    progress: bool = True,
) -> EvalSummary:
    """Evaluate ``model`` on ``data``'s split into ``out`` (resumable; see the module docstring).

    Args:
        model: ``identity`` or a saved model directory.
        data: dataset directory (Reason50K layout).
        out: output directory.
        params: the ``eval`` section of params.
        split: overrides ``params.split``.
        limit: evaluate only the first N samples of the split (records; a MagicBrush session
            counts as one sample under ``eval.magicbrush_protocol=final_turn``).
        engine: ``ray`` (Ray Data actors) or ``loop`` (in-process).
        settings: where weights/judges live (default: from the environment).
        force: clear a previous evaluation in ``out`` instead of resuming it.
        progress: show a progress bar.

    Raises:
        ConfigError / DatasetError: bad model, data, split or output directory.
    """
    from reasonbrain.config import get_settings

    cfg = settings or get_settings()
    data, out = Path(data), Path(out)
    split = split or params.split
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1", where=str(limit))
    spec = check_model_spec(model)
    units = eval_units(load_records(data, split, None), params.magicbrush_protocol)[:limit]
    key = run_key(spec, data, split, params)
    prepare_out(out, key, force)
    done = read_done(out)
    todo = [u for u in units if u.id not in done]
    atomic_write_bytes(
        out / RUN, json.dumps({"key": key, "limit": limit}, indent=2).encode("utf-8")
    )
    worker_kwargs = {
        "model": spec,
        "data_root": str(data.resolve()),
        "params": params.model_dump(mode="json"),
        "settings": cfg.model_dump(mode="json"),
        "cache_dir": str((out / JUDGE_CACHE).resolve()),
    }
    t0 = time.perf_counter()
    if todo:
        items = _items(todo, params.seed)
        batches = (
            run_ray(items, worker_kwargs, params)
            if engine == "ray"
            else run_loop(items, worker_kwargs, params.batch_size)
        )
        _consume(batches, out, len(todo), progress, done)
    seconds = time.perf_counter() - t0
    rows = [done[u.id] for u in units if u.id in done]
    info = {
        **key,
        "limit": limit,
        "engine": engine,
        "evaluated_now": len(todo),
        "resumed_from": len(units) - len(todo),
        "seconds": round(seconds, 3),
    }
    doc = write_metrics(out, rows, params, cfg, info)
    return EvalSummary(out, len(units), len(units) - len(todo), len(todo), seconds, doc)


def write_metrics(
    out: Path,
    rows: Sequence[dict[str, Any]],
    params: EvalParams,
    settings: Settings,
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Aggregate ``rows`` and write ``OUT/metrics.json`` and ``OUT/per_category.json``.

    Returns:
        The ``metrics.json`` document: ``run`` (``run_info`` + sample count), ``config`` (what
        produced every number), ``overall``, ``by_category``, ``by_family``, ``by_holdout``.
    """
    from reasonbrain.evaluation.aggregate import aggregate

    metrics = aggregate(
        rows, resamples=params.bootstrap_resamples, level=params.ci_level, seed=params.seed
    )
    doc = {
        "run": {**run_info, "samples": len(rows)},
        "config": describe_config(params, settings, rows),
        **{k: v for k, v in metrics.items() if k != "per_category"},
    }
    atomic_write_bytes(out / METRICS, json.dumps(doc, indent=2, allow_nan=False).encode())
    atomic_write_bytes(
        out / PER_CATEGORY, json.dumps(metrics["per_category"], indent=2).encode("utf-8")
    )
    return doc


def _consume(
    batches: Iterator[dict[str, np.ndarray]],
    out: Path,
    total: int,
    progress: bool,
    done: dict[str, dict[str, Any]],
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    writer = SampleWriter(out)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
        transient=False,
    )
    try:
        with bar:
            task = bar.add_task("evaluating", total=total)
            for batch in batches:
                for sid, png, row in zip(batch["id"], batch["png"], batch["row"], strict=True):
                    writer.write(str(sid), bytes(png), str(row))
                    done[str(sid)] = json.loads(str(row))
                    bar.advance(task)
    finally:
        writer.close()


def describe_config(
    params: EvalParams, settings: Settings, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The configuration behind every number (without loading any model)."""
    from reasonbrain.evaluation.encoders import resolve_weight_dirs, weights_fingerprint
    from reasonbrain.evaluation.pixel import PIXEL_CONFIG
    from reasonbrain.evaluation.verifier import VerifierConfig

    found, missing = resolve_weight_dirs(settings)
    wanted = set(params.metrics)
    models: dict[str, Any] = {}
    for name, metrics in (
        ("clip", {"clip_i", "clip_t", "clip_dir"}),
        ("dino", {"dino"}),
        ("lpips", {"lpips"}),
    ):
        if not wanted & metrics:
            models[name] = "not requested"
        elif name in found:
            models[name] = {
                "weights": str(found[name]),
                "fingerprint": weights_fingerprint(found[name]),
            }
        else:
            models[name] = missing[name]
    judges = sorted(
        {(r["judge"]["judge_id"], r["judge"]["prompt_version"]) for r in rows if r.get("judge")}
    )
    return {
        "pixel": PIXEL_CONFIG,
        "verifier": VerifierConfig(
            params.verifier_region, params.verifier_change_threshold
        ).describe(),
        "models": models,
        "embedding_scores": "raw cosine in [-1, 1] (papers often print 100 x cosine)",
        "judge": {
            "kind": params.judge,
            "used": [{"judge_id": j, "prompt_version": v} for j, v in judges],
            "follows": f"semantic consistency >= {params.judge_follow_threshold:g} of 10",
        },
        "bootstrap": {
            "method": "percentile (scipy.stats.bootstrap)",
            "resamples": params.bootstrap_resamples,
            "level": params.ci_level,
            "seed": params.seed,
        },
        "protocols": sorted({str(r.get("protocol")) for r in rows}),
        "magicbrush_protocol": {
            "name": params.magicbrush_protocol,
            "rule": MAGICBRUSH_PROTOCOLS[params.magicbrush_protocol],
            "sessions": sum(1 for r in rows if r.get("session")),
        },
        "seeds": "per sample: sha256(f'{eval.seed}:{id}')[:8] & (2**63-1)",
    }
