"""The ``ingest`` flow: the landing zone → import → validate → merge (new dataset version) or
quarantine, each drop once.

Orchestration only; the rules live in :mod:`reasonbrain.pipeline.landing`. Every run lists the
landing zone (``ingest.landing``), takes the drops that are complete and not processed yet,
and for each: downloads it, imports it with its importer, validates it with the GX suite, and
either merges it into ``data.ingested_dir`` (tracked with ``dvc add``) or quarantines it with
its report. After a merge, DVC stages ``data`` and ``validate`` run (``ingest.update_dataset``),
so the new dataset version exists at once and the next ``pipeline`` run retrains on it.
Quarantines (and failures) are sent to the notifier by state hooks.

When the ``pipeline`` flow holds the workspace, the run ends at once and the drops wait for the
next scheduled run (every ``ingest.interval_s`` seconds when served).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from reasonbrain.config import Params
from reasonbrain.lineage import git_state
from reasonbrain.pipeline import dvc, hooks, landing, records, steps
from reasonbrain.pipeline.project import WorkspaceBusy, workspace_lock
from reasonbrain.pipeline.retry import retry_if_transient
from reasonbrain.registry.api import open_registry


@task(name="ingest-drop", task_run_name="drop {name}", cache_policy=NO_CACHE)
def ingest_drop(root: str, name: str, params: Params, run_id: str) -> dict[str, Any]:
    """Process one drop (claimed by the flow): merge or quarantine."""
    logger = get_run_logger()
    store = landing.open_landing(params.ingest.landing, root)
    drop = next((d for d in landing.scan(store) if d.name == name), None)
    if drop is None:
        return landing.DropOutcome(name, "", landing.FAILED, message="drop vanished").to_dict()
    with open_registry() as reg:
        drop_id = landing.claim(reg, drop, run_id=run_id, stale_after_s=params.ingest.stale_after_s)
        if drop_id is None:
            return landing.DropOutcome(name, drop.uri, "seen", message="processed before").to_dict()
        try:
            outcome = landing.process_drop(
                reg,
                store,
                drop,
                params,
                Path(root),
                dvc_add=lambda r, rel: dvc.dvc_add(r, rel, on_line=logger.info),
            )
        except Exception as err:
            failed = landing.DropOutcome(name, drop.uri, landing.FAILED, message=str(err))
            landing.finish(reg, drop_id, failed, format=None)
            raise
        landing.finish(
            reg,
            drop_id,
            outcome,
            format=(outcome.details.get("format") or params.ingest.format)[:40],
            report=outcome.details.get("validation") or outcome.details or None,
        )
    logger.info("drop %s: %s — %s", name, outcome.status, outcome.message)
    return outcome.to_dict()


@task(name="update-dataset", cache_policy=NO_CACHE)
def update_dataset(root: str, params: Params, run_id: str) -> dict[str, Any]:
    """DVC stages data + validate (the new dataset version), then its datasets row."""
    logger = get_run_logger()
    for stage in ("data", "validate"):
        dvc.run_stage(root, stage, on_line=logger.info)
    return steps.record_dataset(Path(root), params, run_id)


@flow(
    name="ingest",
    on_failure=[hooks.on_failure],
    on_crashed=[hooks.on_failure],
    on_completion=[hooks.on_completion],
)
def ingest(project_dir: str = ".", overrides: list[str] | None = None) -> dict[str, Any]:
    """Process the landing zone's new drops.

    Args:
        project_dir: the DVC project.
        overrides: ``key=value`` params written into params.yaml first (as the ``pipeline`` flow
            does: the DVC stages a merge reruns read params.yaml).
    """
    logger = get_run_logger()
    root = Path(project_dir).resolve()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    try:
        with workspace_lock(root, 0):
            return _ingest(root, run_id, overrides or [])
    except WorkspaceBusy:
        logger.info("another flow holds the workspace: the drops wait for the next run")
        return {"run_id": run_id, "drops": [], "dataset": None, "skipped": "workspace busy"}


def _ingest(root: Path, run_id: str, overrides: list[str]) -> dict[str, Any]:
    logger = get_run_logger()
    params, changed = dvc.write_params(root, overrides)
    store = landing.open_landing(params.ingest.landing, root)
    drops = landing.scan(store)
    ready = [d for d in drops if d.ready(params.ingest.settle_s)]
    logger.info("landing zone %s: %d drop(s), %d ready", store.uri, len(drops), len(ready))
    commit, _ = git_state(root)
    with open_registry() as reg:
        records.start_flow_run(
            reg.db,
            run_id,
            "ingest",
            params=params.to_dict(),
            params_hash=params.section_hash(),
            git_commit=commit,
        )
    drop_task = ingest_drop.with_options(
        retries=params.pipeline.task_retries,
        retry_delay_seconds=exponential_backoff(params.pipeline.retry_delay_s),
        retry_condition_fn=retry_if_transient,
    )
    outcomes = [drop_task(str(root), d.name, params, run_id) for d in ready]
    processed = [o for o in outcomes if o["status"] != "seen"]
    dataset = None
    if params.ingest.update_dataset and any(o["status"] == landing.MERGED for o in outcomes):
        dataset = update_dataset(str(root), params, run_id)
        with open_registry() as reg:
            landing.set_dataset_version(reg, run_id, dataset["version"])
    _record(
        run_id,
        status="succeeded",
        details={"drops": processed, "dataset": dataset, "params_changed": changed},
    )
    return {"run_id": run_id, "drops": processed, "dataset": dataset}


def _record(run_id: str, **fields: Any) -> None:
    with open_registry() as reg:
        records.update_flow_run(reg.db, run_id, **fields)
