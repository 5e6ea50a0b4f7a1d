"""``reasonbrain pipeline run|serve``: run a Prefect flow now, or serve the flows on schedules.

The flows live in the project's ``flows/`` directory (``flows/pipeline.py``, ``flows/ingest.py``)
and are loaded from there by entrypoint, the way Prefect workers load them (the package never
imports ``flows``). ``run`` uses the Prefect server at ``PREFECT_API_URL`` when one is configured
and an ephemeral, in-process Prefect API otherwise. ``serve`` needs a real server (schedules do
not run on the ephemeral API): ``reasonbrain infra up`` starts one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from reasonbrain.cli._common import SetOption, console
from reasonbrain.errors import ConfigError

app = typer.Typer(
    help="Prefect flows: the pipeline (DVC stages → register → record → promote) and ingest.",
    no_args_is_help=True,
)
FLOWS = ("pipeline", "ingest")
#: deployment name of each flow when served
DEPLOYMENTS = {"pipeline": "nightly", "ingest": "landing-zone"}
#: keys that only say *when* flows run: used for the schedules, not passed to the runs
SCHEDULE_KEYS = ("pipeline.cron", "pipeline.timezone", "ingest.interval_s")

ProjectOption = typer.Option(
    Path("."), "--project", help="The DVC project (holds dvc.yaml, params.yaml and flows/)."
)
OverlayOption = typer.Option(
    None,
    "--params",
    help="A params file (whole or partial) laid over the project's params.yaml for this run; "
    "like --set, its values are written into params.yaml, which the DVC stages read.",
)


def _project(path: Path) -> Path:
    root = path.resolve()
    for need in ("dvc.yaml", "params.yaml", "flows"):
        if not (root / need).exists():
            raise ConfigError(
                f"not a ReasonBrain project: no {need}",
                where=str(root),
                fix="run from the project root or pass --project DIR",
            )
    return root


def _overrides(root: Path, params_file: Path | None, sets: list[str] | None) -> list[str]:
    """``--params`` overlay then ``--set`` items, validated against params.yaml (nothing is
    written here: the flow writes them under its workspace lock)."""
    import yaml

    from reasonbrain.config import apply_overrides, params_from_dict
    from reasonbrain.pipeline.dvc import overlay_overrides

    items = [*(overlay_overrides(params_file) if params_file else []), *(sets or [])]
    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    params_from_dict(apply_overrides(raw, items), "params.yaml + --params/--set")
    return items


def _load_flow(root: Path, name: str) -> Any:
    if name not in FLOWS:
        raise ConfigError(
            f"unknown flow {name!r}", where="--flow", fix=f"use one of: {', '.join(FLOWS)}"
        )
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{root / 'flows' / name}.py:{name}")


def _quiet_prefect() -> None:
    """No usage telemetry from an ephemeral Prefect server (it logs an error offline)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@app.command("run")
def run(
    flow_name: str = typer.Option("pipeline", "--flow", help="pipeline | ingest."),
    project: Path = ProjectOption,
    params_path: Path | None = OverlayOption,
    sets: list[str] | None = SetOption,
    as_json: bool = typer.Option(False, "--json", help="Print the flow's result as JSON."),
) -> None:
    """Run one flow now (against PREFECT_API_URL, or an ephemeral Prefect API)."""
    root = _project(project)
    overrides = _overrides(root, params_path, sets)
    _quiet_prefect()
    flow = _load_flow(root, flow_name)
    url = _api_url()
    console.print(
        f"[bold]{flow_name}[/] flow on {root} · Prefect: "
        + (url or "ephemeral API (set PREFECT_API_URL to use a server)"),
        highlight=False,
    )
    result = flow(project_dir=str(root), overrides=overrides)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    elif flow_name == "pipeline":
        print_pipeline_summary(result)
    else:
        print_ingest_summary(result)


def print_pipeline_summary(result: dict[str, Any]) -> None:
    """Stages, registered models, evaluations and the gate's decision."""
    from rich.table import Table

    stages = result.get("stages", {})
    console.print(
        "stages: "
        + ", ".join(f"{k} [{'green' if v == 'ran' else 'dim'}]{v}[/]" for k, v in stages.items())
    )
    ds = result.get("dataset") or {}
    console.print(
        f"dataset: {ds.get('name')} version {ds.get('version')} "
        f"({', '.join(f'{k} {v}' for k, v in (ds.get('split_counts') or {}).items())}; "
        f"validation {ds.get('validation')})",
        highlight=False,
    )
    table = Table("model", "version", "registered", "sha256", "store")
    for m in (result.get("models") or {}).values():
        table.add_row(
            m["name"],
            m["ref"],
            "new" if m["created"] else "already",
            m["sha256"][:12],
            m["store_uri"],
        )
    console.print(table)
    evals = Table("evaluation", "samples", "recorded", "objects")
    for e in (result.get("evaluations") or {}).values():
        evals.add_row(
            e["label"],
            str(e["n_samples"]),
            "new" if e["created"] else "already",
            e["store_prefix"],
        )
    console.print(evals)
    gate = result.get("gate") or {}
    colour = "green" if gate.get("decision") == "production" else "yellow"
    console.print(
        f"[bold {colour}]gate: {gate.get('candidate')} → {gate.get('decision')}[/]", highlight=False
    )
    console.print(str(gate.get("reason")), highlight=False, soft_wrap=True)


def print_ingest_summary(result: dict[str, Any]) -> None:
    """One line per drop processed."""
    drops = result.get("drops") or []
    if result.get("skipped"):
        console.print(f"ingest skipped: {result['skipped']}")
    if not drops:
        console.print("no new drop in the landing zone")
    for d in drops:
        colour = {"merged": "green", "quarantined": "yellow"}.get(d["status"], "red")
        console.print(f"[{colour}]{d['status']}[/] {d['name']}: {d['message']}", highlight=False)
    ds = result.get("dataset")
    if ds:
        console.print(f"dataset {ds['name']} is now version {ds['version']}", highlight=False)


def deployments(root: Path, names: list[str], overrides: list[str]) -> list[Any]:
    """The flows as Prefect deployments with the schedules params.yaml (+ overrides) gives."""
    import yaml
    from prefect.schedules import Cron, Interval

    from reasonbrain.config import apply_overrides, params_from_dict

    raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    params = params_from_dict(apply_overrides(raw, overrides), "params.yaml + overrides")
    passed = [o for o in overrides if o.split("=", 1)[0].strip() not in SCHEDULE_KEYS]
    schedules = {
        "pipeline": Cron(params.pipeline.cron, timezone=params.pipeline.timezone),
        "ingest": Interval(params.ingest.interval_s),
    }
    out = []
    for name in names:
        flow = _load_flow(root, name)
        out.append(
            flow.to_deployment(
                name=DEPLOYMENTS[name],
                schedules=[schedules[name]],
                parameters={"project_dir": str(root), "overrides": passed},
                tags=["reasonbrain"],
                description=(flow.description or "").split("\n", 1)[0],
            )
        )
    return out


@app.command("serve")
def serve(
    flow_names: list[str] | None = typer.Option(
        None, "--flow", help="Serve only these flows (repeatable; default: pipeline and ingest)."
    ),
    project: Path = ProjectOption,
    params_path: Path | None = OverlayOption,
    sets: list[str] | None = SetOption,
    limit: int = typer.Option(1, "--limit", help="Flow runs at the same time (1: one at a time)."),
) -> None:
    """Serve the flows with their schedules (pipeline.cron, ingest.interval_s) until Ctrl-C."""
    root = _project(project)
    url = _api_url()
    if not url:
        raise ConfigError(
            "serving schedules needs a Prefect server (the ephemeral API schedules nothing)",
            where="PREFECT_API_URL is not set",
            fix="start one with `reasonbrain infra up` (or `prefect server start`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    overrides = _overrides(root, params_path, sets)
    names = list(dict.fromkeys(flow_names or FLOWS))
    os.chdir(root)  # deployment entrypoints are relative to the project
    deps = deployments(root, names, overrides)
    for d in deps:
        sched = d.schedules[0].schedule if d.schedules else None
        console.print(f"serving [bold]{d.flow_name}/{d.name}[/] · {sched}", highlight=False)
    console.print(f"Prefect server: {url} (UI: {url.removesuffix('/api')})", highlight=False)
    from prefect import serve as prefect_serve

    prefect_serve(*deps, limit=limit, print_starting_message=False)
