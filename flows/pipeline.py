"""The ``pipeline`` flow: the DVC stages as tasks → register → record evaluations → promote.

Orchestration only; the work lives in :mod:`reasonbrain.pipeline`.

1. One task per DVC stage, in dependency order (``dvc repro --single-item STAGE``): DVC decides
   whether it runs or is skipped, and its output streams into the task's log. A stage is retried
   only for a transient failure (a lost Ray worker, the network); a failing stage stops the flow
   before anything is registered, and the flow-run row records which stage failed and why.
2. ``register`` — every model the pipeline trained (``pipeline.models``) goes into the registry
   with its lineage (git commit and dirtiness, params and their hash, dataset version, Ray Train
   run name, training metrics); bytes already registered keep their version.
3. ``record_evaluation`` — each evaluation (the trained models and the identity baseline) becomes
   rows in SQL and images in the object store.
4. ``promote`` — the gate: production only when measurably better on the same samples.
5. ``dvc push`` (``pipeline.push``).

Store/database steps retry transient errors with exponential backoff. Failures and promotions
are sent to the notifier by state hooks. Run it with ``reasonbrain pipeline run``; schedule it
with ``reasonbrain pipeline serve`` or ``prefect.yaml``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from reasonbrain.config import Params
from reasonbrain.lineage import git_state
from reasonbrain.pipeline import dvc, hooks, records, steps
from reasonbrain.pipeline.project import IDENTITY, workspace_lock
from reasonbrain.pipeline.retry import retry_if_transient
from reasonbrain.registry.api import open_registry

P = ParamSpec("P")
R = TypeVar("R")


@task(name="dvc-stage", task_run_name="{stage}", cache_policy=NO_CACHE)
def dvc_stage(root: str, stage: str) -> str:
    """Run one DVC stage; returns ``ran`` or ``skipped``."""
    logger = get_run_logger()
    outcome = dvc.run_stage(root, stage, on_line=logger.info)
    logger.info("stage %s: %s", stage, outcome)
    return outcome


@task(name="record-dataset", cache_policy=NO_CACHE)
def record_dataset(root: str, params: Params, run_id: str) -> dict[str, Any]:
    """The dataset version (datasets row)."""
    return steps.record_dataset(Path(root), params, run_id)


@task(name="register", task_run_name="register {name}", cache_policy=NO_CACHE)
def register(root: str, name: str, params: Params, run_id: str, dataset_id: int) -> dict[str, Any]:
    """Register models/NAME/model with its lineage."""
    mv = steps.register_model(Path(root), name, params, run_id=run_id, dataset_id=dataset_id)
    get_run_logger().info(
        "%s %s (sha256 %s)",
        "registered" if mv["created"] else "already registered as",
        mv["ref"],
        mv["sha256"][:12],
    )
    return mv


@task(name="record-evaluation", task_run_name="record evaluation {label}", cache_policy=NO_CACHE)
def record_evaluation(
    root: str,
    label: str,
    params: Params,
    model: dict[str, Any] | None,
    dataset: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    """Record reports/eval/LABEL (rows + images in the object store)."""
    rec = steps.record_evaluation(
        Path(root), label, params, model=model, dataset=dataset, run_id=run_id
    )
    get_run_logger().info(
        "evaluation %s: %s (%d samples) → %s",
        rec["label"],
        "recorded" if rec["created"] else "already recorded",
        rec["n_samples"],
        rec["store_prefix"],
    )
    return rec


@task(name="record-ablation", cache_policy=NO_CACHE)
def record_ablation(root: str, run_id: str) -> str | None:
    """Record reports/ablation.json (a runs row of kind ablation) when it exists."""
    return steps.record_ablation(Path(root), run_id)


@task(name="promote", cache_policy=NO_CACHE)
def promote(
    root: str,
    params: Params,
    candidate: dict[str, Any],
    evaluations: dict[str, dict[str, Any]],
    dataset: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    """The promotion gate."""
    logger = get_run_logger()
    decision = steps.promote(
        Path(root),
        params,
        candidate=candidate,
        evaluations_by_label=evaluations,
        dataset=dataset,
        run_id=run_id,
        on_line=logger.info,
    )
    logger.info("gate: %s — %s", decision["decision"], decision["reason"])
    return decision


@task(name="dvc-push", cache_policy=NO_CACHE)
def push(root: str) -> None:
    """Push the DVC artefacts to the default remote."""
    dvc.dvc_push(root, on_line=get_run_logger().info)


@flow(
    name="pipeline",
    on_failure=[hooks.on_failure],
    on_crashed=[hooks.on_failure],
    on_completion=[hooks.on_completion],
)
def pipeline(project_dir: str = ".", overrides: list[str] | None = None) -> dict[str, Any]:
    """Run the DVC pipeline, register what it trained, record its evaluations, run the gate.

    Args:
        project_dir: the DVC project (holds dvc.yaml, params.yaml).
        overrides: ``key=value`` params written into params.yaml first (like
            ``dvc exp run -S``), so DVC and every later step see them.
    """
    logger = get_run_logger()
    root = Path(project_dir).resolve()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    lock_timeout = dvc.write_params(root, [])[0].pipeline.lock_timeout_s
    with workspace_lock(root, lock_timeout):
        params, changed = dvc.write_params(root, overrides or [])
        if changed:
            logger.info("params.yaml updated: %s (see `dvc params diff`)", ", ".join(changed))
        p = params.pipeline
        commit, _ = git_state(root)
        with open_registry() as reg:
            records.start_flow_run(
                reg.db,
                run_id,
                "pipeline",
                params=params.to_dict(),
                params_hash=params.section_hash(),
                git_commit=commit,
            )

        stages: dict[str, str] = {}
        stage_task = retrying(dvc_stage, p.stage_retries, p.retry_delay_s)
        for stage in dvc.pipeline_stages(root):
            try:
                stages[stage] = stage_task(str(root), stage)
            except Exception as err:
                stages[stage] = dvc.FAILED
                _record(run_id, stages=stages, status="failed", error=str(err))
                raise
            _record(run_id, stages=stages)

        n, delay = p.task_retries, p.retry_delay_s
        dataset = retrying(record_dataset, n, delay)(str(root), params, run_id)
        models = {
            name: retrying(register, n, delay)(str(root), name, params, run_id, dataset["id"])
            for name in p.models
        }
        evaluations = {
            label: retrying(record_evaluation, n, delay)(
                str(root), label, params, models.get(label), dataset, run_id
            )
            for label in [*p.models, IDENTITY]
        }
        ablation = retrying(record_ablation, n, delay)(str(root), run_id)
        gate = retrying(promote, n, delay)(
            str(root), params, models[params.promote.model], evaluations, dataset, run_id
        )
        if p.push:
            retrying(push, n, delay)(str(root))
        _artifacts(stages, models, gate)
        summary = {
            "run_id": run_id,
            "project": str(root),
            "params_changed": changed,
            "stages": stages,
            "dataset": dataset,
            "models": {
                k: {x: v for x, v in m.items() if x != "lineage"} for k, m in models.items()
            },
            "evaluations": evaluations,
            "ablation_run": ablation,
            "gate": gate,
            "pushed": p.push,
        }
        _record(
            run_id,
            stages=stages,
            status="succeeded",
            details={
                "models": {k: m["ref"] for k, m in models.items()},
                "evaluations": {k: e["id"] for k, e in evaluations.items()},
                "gate": {k: gate[k] for k in ("decision", "candidate", "promoted", "reason")},
            },
        )
    return summary


def retrying(t: Task[P, R], retries: int, delay_s: float) -> Task[P, R]:
    """``t`` retried up to ``retries`` times on transient failures, with exponential backoff."""
    return t.with_options(
        retries=retries,
        retry_delay_seconds=exponential_backoff(delay_s),
        retry_condition_fn=retry_if_transient,
    )


def _artifacts(
    stages: dict[str, str], models: dict[str, dict[str, Any]], gate: dict[str, Any]
) -> None:
    """What the run did, on the flow run's page in the Prefect UI."""
    create_table_artifact(
        key="pipeline-stages",
        table=[{"stage": k, "outcome": v} for k, v in stages.items()],
        description="DVC stages: ran, or skipped because up to date",
    )
    lines = [
        f"- `{m['ref']}` ({'new' if m['created'] else 'already registered'})"
        for m in models.values()
    ]
    create_markdown_artifact(
        key="promotion-gate",
        markdown=f"**{gate['candidate']} → {gate['decision']}**\n\n{gate['reason']}\n\n"
        + "\n".join(lines),
        description="the promotion gate's decision",
    )


def _record(run_id: str, **fields: Any) -> None:
    """Update the flow-run row."""
    with open_registry() as reg:
        records.update_flow_run(reg.db, run_id, **fields)
