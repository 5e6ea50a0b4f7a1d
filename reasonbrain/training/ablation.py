"""The paper's ablation ladder and the fair baselines, trained at one fixed budget, evaluated on
one split, over one or more training seeds (``reasonbrain ablate``).

Rungs (model switches on top of ``params.yaml``; everything else — data, steps, eval — is equal):

=============  ==========================================================================
``identity``   output = source (not trained): the floor every editor must beat
``ip2p``       InstructPix2Pix baseline: the same diffusion backbone, instruction text only
``ip2p_cue``   ``ip2p`` + ReasonBrain's grounding cue (same head, mask supervision and UNet
               channel; no reasoning path): the fair baseline for the cue
``baseline``   MLLM → QFormer → diffusion (all FRCE/CME switches off; MGIE/SmartEdit-like)
``patch``      + FRCE patch branch only
``region``     + FRCE region branch only
``frce``       + FRCE patch and region branches
``frce_id``    + ID controller
``full``       + CME (the full ReasonBrain)
``no_cue``     ``full`` without the grounding cue (``spatial_cue``: the paper's conditioning)
=============  ==========================================================================

The grounding cue (:mod:`reasonbrain.models.grounding`, ``model.spatial_cue``) needs the patch
branch and the ID controller, so it is on from ``frce_id`` up; ``no_cue`` measures what it adds to
ReasonBrain, ``ip2p_cue`` − ``ip2p`` what it adds to a text-only editor, and ``full`` −
``ip2p_cue`` what the reasoning path adds on top of the same cue. Which comparison supports which
claim is in the README ("Fair comparisons").

For every rung and every training seed (``train.seed``), the rung is trained into
``OUT/<rung>/seed-<s>/`` (model, step log) and evaluated through the evaluation library
(:func:`reasonbrain.evaluation.runner.evaluate`, the same verifier, metrics and judges as
``reasonbrain evaluate``) into ``OUT/<rung>/seed-<s>/eval/``; ``identity`` is evaluated once into
``OUT/identity/eval/``. The report, ``reports/ablation.json`` and ``reports/ablation.md``
(:mod:`reasonbrain.evaluation.ladder`), gives every rung's figures with bootstrap CIs (one seed)
or mean ± spread over seeds, and the paired difference against ``full`` on the same samples.
It is rewritten after every rung (a crash keeps what was done); rungs not rerun keep their
previous entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonbrain.config import Params, params_from_dict
from reasonbrain.errors import ConfigError

IDENTITY = "identity"
REFERENCE = "full"

_OFF = {
    "use_patch_branch": False,
    "use_region_branch": False,
    "use_id_controller": False,
    "use_cme": False,
}
_ON = {
    "use_patch_branch": True,
    "use_region_branch": True,
    "use_id_controller": True,
    "use_cme": True,
}
RUNGS: dict[str, dict[str, Any]] = {
    "ip2p": {"kind": "ip2p", **_OFF, "ip2p_spatial_cue": False},
    "ip2p_cue": {"kind": "ip2p", **_OFF, "ip2p_spatial_cue": True},
    "baseline": {"kind": "reasonbrain", **_OFF},
    "patch": {"kind": "reasonbrain", **_OFF, "use_patch_branch": True},
    "region": {"kind": "reasonbrain", **_OFF, "use_region_branch": True},
    "frce": {"kind": "reasonbrain", **_OFF, "use_patch_branch": True, "use_region_branch": True},
    "frce_id": {"kind": "reasonbrain", **_ON, "use_cme": False},
    "full": {"kind": "reasonbrain", **_ON},
    "no_cue": {"kind": "reasonbrain", **_ON, "spatial_cue": False},
}
DESCRIPTIONS: dict[str, str] = {
    IDENTITY: "output = source (not trained)",
    "ip2p": "InstructPix2Pix (text encoder only)",
    "ip2p_cue": "InstructPix2Pix + grounding cue (no reasoning path)",
    "baseline": "MLLM → QFormer → diffusion",
    "patch": "+ FRCE patch branch",
    "region": "+ FRCE region branch",
    "frce": "+ FRCE (patch + region)",
    "frce_id": "+ FRCE + ID controller",
    "full": "+ FRCE + ID controller + CME (ReasonBrain)",
    "no_cue": "ReasonBrain without the grounding cue",
}
#: Every rung name in report order (``identity`` is evaluated, never trained).
LADDER: tuple[str, ...] = (IDENTITY, *RUNGS)


def rung_params(params: Params, rung: str, seed: int | None = None) -> Params:
    """``params`` with the rung's model switches (and ``train.seed``) applied."""
    raw = params.to_dict()
    raw["model"] = {**raw["model"], **RUNGS[rung]}
    if seed is not None:
        raw["train"] = {**raw["train"], "seed": seed}
    return params_from_dict(raw, f"ablation rung {rung}")


def markdown_table(report: dict[str, Any]) -> str:
    """The ladder as a markdown table (see :func:`reasonbrain.evaluation.ladder.markdown`)."""
    from reasonbrain.evaluation.ladder import markdown

    return markdown(report, DESCRIPTIONS)


def _check(rungs: Sequence[str], seeds: Sequence[int]) -> None:
    unknown = [r for r in rungs if r not in LADDER]
    if unknown:
        raise ConfigError(
            f"unknown ablation rungs {unknown}", where="--rungs", fix=f"choose from {list(LADDER)}"
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"training seeds must be distinct and at least one, got {list(seeds)}",
            where="--seeds",
            fix="pass e.g. --seeds 0,1,2",
        )


def run_ablation(
    params: Params,
    data_dir: Path,
    out_dir: Path,
    *,
    rungs: Sequence[str] = LADDER,
    seeds: Sequence[int] | None = None,
    report_path: Path = Path("reports/ablation.json"),
    storage: str | Path | None = None,
    train_fn: Callable[..., Any] | None = None,
    evaluate: bool = True,
    split: str | None = None,
    limit: int | None = None,
    engine: str = "ray",
    evaluate_fn: Callable[..., Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate each rung for each seed at the budget in ``params.train``; write the
    report (see the module docstring).

    Args:
        params: base params (the budget is ``train.max_steps``; evaluation uses ``params.eval``).
        data_dir: dataset directory.
        out_dir: rung outputs go to ``out_dir/<rung>/seed-<s>`` (``out_dir/identity``).
        rungs: which rungs (default: all); reported in ladder order.
        seeds: training seeds (default: ``[train.seed]``).
        report_path: the JSON report; the markdown table goes beside it (``.md``).
        storage: checkpoint storage for every run.
        train_fn: the training call (default :func:`reasonbrain.training.trainer.train`).
        evaluate: evaluate each trained rung (off: training figures only).
        split / limit / engine: what ``reasonbrain evaluate`` takes (split default
            ``eval.split``; ``limit`` the first N samples; engine ``ray`` or ``loop``).
        evaluate_fn: the evaluation call (default :func:`reasonbrain.evaluation.runner.evaluate`).
        progress: progress bars.

    Raises:
        ConfigError: an unknown rung name, or repeated seeds.
    """
    seeds = list(seeds) if seeds is not None else [params.train.seed]
    _check(rungs, seeds)
    if train_fn is None:
        from reasonbrain.training.trainer import train

        train_fn = train
    if evaluate_fn is None:
        from reasonbrain.evaluation.runner import evaluate as run_evaluation

        evaluate_fn = run_evaluation
    eval_call: Callable[..., Any] = evaluate_fn
    split = split or params.eval.split
    report: dict[str, Any] = {
        "budget": {"max_steps": params.train.max_steps, "batch_size": params.train.batch_size},
        "data": str(data_dir),
        "seeds": seeds,
        "reference": REFERENCE,
        "eval": {"split": split, "limit": limit} if evaluate else None,
        "rungs": {},
    }
    if report_path.is_file():  # keep what rungs not rerun now already have
        old = json.loads(report_path.read_text(encoding="utf-8"))
        report["rungs"].update({k: v for k, v in old.get("rungs", {}).items() if k not in rungs})

    def evaluation(model: str, out: Path, p: Params) -> dict[str, Any]:
        summary = eval_call(
            model, data_dir, out, p.eval, split=split, limit=limit, engine=engine, force=True,
            progress=progress,
        )  # fmt: skip
        return {"dir": str(out), "metrics": summary.metrics}

    for rung in [r for r in LADDER if r in rungs]:
        entry: dict[str, Any] = {
            "switches": RUNGS.get(rung, {}),
            "description": DESCRIPTIONS[rung],
            "seeds": {},
        }
        if rung == IDENTITY:
            if not evaluate:
                continue
            done = evaluation(IDENTITY, out_dir / IDENTITY / "eval", params)
            entry["seeds"] = {
                str(s): {"eval_dir": done["dir"], "_m": done["metrics"]} for s in seeds
            }
        for s in seeds if rung != IDENTITY else []:
            p = rung_params(params, rung, s)
            res = train_fn(p, data_dir, out_dir / rung / f"seed-{s}", storage=storage)
            one: dict[str, Any] = {
                "run_name": res.run_name,
                "model_dir": str(res.model_dir),
                "metrics": res.metrics,
                "seconds": res.seconds,
            }
            if evaluate:
                done = evaluation(str(res.model_dir), out_dir / rung / f"seed-{s}" / "eval", p)
                one["eval_dir"], one["_m"] = done["dir"], done["metrics"]
            entry["seeds"][str(s)] = one
            report["rungs"][rung] = _finish_entry(entry)
            _write(report_path, _ordered(report))
        report["rungs"][rung] = _finish_entry(entry)
        _write(report_path, _ordered(report))
    if evaluate:
        _add_paired(report, params)
    report = _ordered(report)
    _write(report_path, report)
    return report


def rebuild_report(params: Params, report_path: Path) -> dict[str, Any]:
    """Rewrite ``report_path`` (and its ``.md``) from the evaluations it already points at,
    with the current report code: no training, no evaluation (``reasonbrain ablate
    --report-only``).

    Each rung × seed's figures are read again from ``<eval_dir>/metrics.json`` and the paired
    differences from its ``samples.jsonl``, so a report written by an older version, or
    assembled from several partial runs, gets every column and pairing of today's report.

    Raises:
        ConfigError: there is no report, or an evaluation it names is missing.
    """
    if not report_path.is_file():
        raise ConfigError(
            "no ablation report to rebuild",
            where=str(report_path),
            fix="run `reasonbrain ablate` first, or pass the report with --report",
        )
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    for name, old in report.get("rungs", {}).items():
        entry: dict[str, Any] = {k: v for k, v in old.items() if k in ("switches", "description")}
        entry["seeds"] = {}
        for s, one in (old.get("seeds") or {}).items():
            kept = {k: v for k, v in one.items() if k != "eval"}
            if one.get("eval_dir"):
                metrics = Path(one["eval_dir"]) / "metrics.json"
                if not metrics.is_file():
                    raise ConfigError(
                        f"rung {name!r} seed {s}: its evaluation is gone",
                        where=str(metrics),
                        fix=f"rerun the rung: reasonbrain ablate --rungs {name} --seeds {s}",
                    )
                kept["_m"] = json.loads(metrics.read_text(encoding="utf-8"))
            entry["seeds"][s] = kept
        report["rungs"][name] = _finish_entry(entry)
    if report.get("eval"):
        _add_paired(report, params)
    report = _ordered(report)
    _write(report_path, report)
    return report


def _finish_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The rung's report entry: per-seed figures, their summary over seeds, and (for the
    dashboard and older readers) ``metrics``/``seconds``/``run_name`` of the first seed and
    ``eval`` = the mean over seeds."""
    from reasonbrain.evaluation.ladder import headline, over_seeds

    seeds: dict[str, Any] = {}
    for s, one in entry["seeds"].items():
        one = dict(one)
        m = one.pop("_m", None)
        if m is not None:
            one["eval"] = headline(m)
        seeds[s] = one
    out = {k: v for k, v in entry.items() if k != "seeds"}
    out["seeds"] = seeds
    first: dict[str, Any] = next(iter(seeds.values()), {})
    for key in ("run_name", "model_dir", "metrics", "seconds"):
        if key in first:
            out[key] = first[key]
    names = sorted({n for one in seeds.values() for n in one.get("eval", {})})
    summary = {
        n: over_seeds(
            {int(s): one["eval"][n]["mean"] for s, one in seeds.items() if n in one.get("eval", {})}
        )
        for n in names
    }
    out["summary"] = summary
    out["eval"] = {
        n: {"mean": v["mean"], "sd": v["sd"], "n_seeds": v["n_seeds"]} for n, v in summary.items()
    } or None
    return out


def _rows(eval_dir: str) -> dict[str, dict[str, Any]]:
    from reasonbrain.evaluation.report import load_run

    return load_run(eval_dir).rows


def _add_paired(report: dict[str, Any], params: Params) -> None:
    """Each rung − ``full`` on the same samples and seed (:func:`ladder.paired_vs`)."""
    from reasonbrain.evaluation.ladder import PAIRED_METRICS, paired_vs

    ref = report["rungs"].get(REFERENCE)
    if not ref:
        return
    ref_rows = {
        int(s): _rows(one["eval_dir"]) for s, one in ref["seeds"].items() if one.get("eval_dir")
    }
    for name, r in report["rungs"].items():
        if name == REFERENCE:
            continue
        rows = {int(s): _rows(o["eval_dir"]) for s, o in r["seeds"].items() if o.get("eval_dir")}
        paired = {
            m: d
            for m in PAIRED_METRICS
            if (
                d := paired_vs(
                    ref_rows,
                    rows,
                    m,
                    resamples=params.eval.bootstrap_resamples,
                    level=params.eval.ci_level,
                    seed=params.eval.seed,
                )
            )
        }
        r["paired"] = paired or None


def _ordered(report: dict[str, Any]) -> dict[str, Any]:
    report["rungs"] = {r: report["rungs"][r] for r in LADDER if r in report["rungs"]}
    return report


def _write(report_path: Path, report: dict[str, Any]) -> None:
    from reasonbrain.data.schema import atomic_write_text

    report_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_path, json.dumps(report, indent=2, sort_keys=False) + "\n")
    atomic_write_text(report_path.with_suffix(".md"), markdown_table(report))
