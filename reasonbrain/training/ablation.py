"""The paper's ablation ladder, trained by one loop at one fixed budget (``reasonbrain ablate``).

Rungs (model switches on top of ``params.yaml``; everything else — data, steps, seed — is equal):

=============  ==========================================================================
``ip2p``       InstructPix2Pix baseline: the same diffusion backbone, instruction text only
``baseline``   MLLM → QFormer → diffusion (all FRCE/CME switches off; MGIE/SmartEdit-like)
``patch``      + FRCE patch branch only
``region``     + FRCE region branch only
``frce``       + FRCE patch and region branches
``frce_id``    + ID controller
``full``       + CME (the full ReasonBrain)
``no_cue``     ``full`` without the grounding cue (``spatial_cue``: the paper's conditioning)
=============  ==========================================================================

The grounding cue (:mod:`reasonbrain.models.grounding`, ``model.spatial_cue``) needs the patch
branch and the ID controller, so it is on from ``frce_id`` up; ``no_cue`` measures what it adds.

Writes ``reports/ablation.json`` (one entry per rung: switches, run name, model directory,
training figures; the evaluation issue adds its metrics under ``eval``) and a markdown table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonbrain.config import Params, params_from_dict

_OFF = {
    "use_patch_branch": False,
    "use_region_branch": False,
    "use_id_controller": False,
    "use_cme": False,
}
RUNGS: dict[str, dict[str, Any]] = {
    "ip2p": {"kind": "ip2p", **_OFF},
    "baseline": {"kind": "reasonbrain", **_OFF},
    "patch": {"kind": "reasonbrain", **_OFF, "use_patch_branch": True},
    "region": {"kind": "reasonbrain", **_OFF, "use_region_branch": True},
    "frce": {"kind": "reasonbrain", **_OFF, "use_patch_branch": True, "use_region_branch": True},
    "frce_id": {
        "kind": "reasonbrain",
        **_OFF,
        "use_patch_branch": True,
        "use_region_branch": True,
        "use_id_controller": True,
    },
    "full": {
        "kind": "reasonbrain",
        "use_patch_branch": True,
        "use_region_branch": True,
        "use_id_controller": True,
        "use_cme": True,
    },
    "no_cue": {
        "kind": "reasonbrain",
        "use_patch_branch": True,
        "use_region_branch": True,
        "use_id_controller": True,
        "use_cme": True,
        "spatial_cue": False,
    },
}
DESCRIPTIONS: dict[str, str] = {
    "ip2p": "InstructPix2Pix (text encoder only)",
    "baseline": "MLLM → QFormer → diffusion",
    "patch": "+ FRCE patch branch",
    "region": "+ FRCE region branch",
    "frce": "+ FRCE (patch + region)",
    "frce_id": "+ FRCE + ID controller",
    "full": "+ FRCE + ID controller + CME (ReasonBrain)",
    "no_cue": "ReasonBrain without the grounding cue",
}


def rung_params(params: Params, rung: str) -> Params:
    """``params`` with the rung's model switches applied."""
    raw = params.to_dict()
    raw["model"] = {**raw["model"], **RUNGS[rung]}
    return params_from_dict(raw, f"ablation rung {rung}")


def markdown_table(report: dict[str, Any]) -> str:
    """The ladder as a markdown table (training figures; eval metrics when present)."""
    rungs = report["rungs"]
    metric_names = sorted({m for r in rungs.values() for m in (r.get("eval") or {})})
    head = ["rung", "what", "steps", "train loss start → end", "val loss", *metric_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, float) else ("–" if x is None else str(x))

    for name, r in rungs.items():
        m = r.get("metrics", {})
        cells = [
            f"`{name}`",
            DESCRIPTIONS.get(name, ""),
            fmt(m.get("steps")),
            f"{fmt(m.get('loss_start'))} → {fmt(m.get('loss_end'))}",
            fmt(m.get("val_loss")),
            *[fmt((r.get("eval") or {}).get(k)) for k in metric_names],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_ablation(
    params: Params,
    data_dir: Path,
    out_dir: Path,
    *,
    rungs: Sequence[str] = tuple(RUNGS),
    report_path: Path = Path("reports/ablation.json"),
    storage: str | Path | None = None,
    train_fn: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Train each rung at the budget in ``params.train`` and write the report.

    Args:
        params: base params (the budget is ``train.max_steps``).
        data_dir: dataset directory.
        out_dir: each rung's outputs go to ``out_dir/<rung>``.
        rungs: which rungs (default: all, in ladder order).
        report_path: the JSON report; the markdown table goes beside it (``.md``).
        storage: checkpoint storage for every rung's run.
        train_fn: the training call (default :func:`reasonbrain.training.trainer.train`).

    Raises:
        ConfigError: an unknown rung name.
    """
    from reasonbrain.errors import ConfigError

    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise ConfigError(
            f"unknown ablation rungs {unknown}", where="--rungs", fix=f"choose from {list(RUNGS)}"
        )
    if train_fn is None:
        from reasonbrain.training.trainer import train

        train_fn = train
    report: dict[str, Any] = {
        "budget": {"max_steps": params.train.max_steps, "batch_size": params.train.batch_size},
        "data": str(data_dir),
        "rungs": {},
    }
    if report_path.is_file():  # keep eval metrics already filled in for rungs not retrained
        old = json.loads(report_path.read_text())
        report["rungs"].update({k: v for k, v in old.get("rungs", {}).items() if k not in rungs})
    for rung in rungs:
        p = rung_params(params, rung)
        res = train_fn(p, data_dir, out_dir / rung, storage=storage)
        report["rungs"][rung] = {
            "switches": RUNGS[rung],
            "description": DESCRIPTIONS[rung],
            "run_name": res.run_name,
            "model_dir": str(res.model_dir),
            "metrics": res.metrics,
            "seconds": res.seconds,
            "eval": None,
        }
        _write(report_path, report)
    order = [r for r in RUNGS if r in report["rungs"]]
    report["rungs"] = {r: report["rungs"][r] for r in order}
    _write(report_path, report)
    return report


def _write(report_path: Path, report: dict[str, Any]) -> None:
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = report_path.with_name(report_path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(report_path)
    md = report_path.with_suffix(".md")
    md_tmp = md.with_name(md.name + ".tmp")
    md_tmp.write_text(
        f"# Ablation ladder ({report['budget']['max_steps']} steps × batch "
        f"{report['budget']['batch_size']})\n\n" + markdown_table(report),
        encoding="utf-8",
    )
    md_tmp.replace(md)
