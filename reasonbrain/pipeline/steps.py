"""The steps of the ``pipeline`` flow after its DVC stages, as plain functions.

``flows/pipeline.py`` wraps each in a Prefect task (retries, logs); they can be called without
Prefect too. Each opens the registry (``REASONBRAIN_STORE_URI`` / ``REASONBRAIN_DB_URL``) itself,
so a retried step starts from fresh connections, and each is idempotent:

- :func:`record_dataset` — the ``datasets`` row of the version stage ``data`` produced;
- :func:`register_model` — ``models/NAME/model`` as the next version of NAME with its lineage (a
  model whose bytes are already registered keeps its version), plus its training run and curves;
- :func:`record_evaluation` — ``reports/eval/NAME`` as an evaluation of that version;
- :func:`record_ablation` — ``reports/ablation.json``, when present;
- :func:`promote` — the gate (:mod:`reasonbrain.pipeline.gate`), which evaluates the production
  model on the current data first when no such evaluation is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reasonbrain.config import Params, get_settings
from reasonbrain.errors import DatasetError
from reasonbrain.lineage import gather_lineage, training_output
from reasonbrain.pipeline import evaluations, records
from reasonbrain.pipeline.dvc import LineSink, StageFailed
from reasonbrain.pipeline.gate import decide
from reasonbrain.pipeline.project import ABLATION, dataset_facts, eval_dir, model_dir
from reasonbrain.registry.api import open_registry
from reasonbrain.registry.checksums import manifest_digest, scan_dir
from reasonbrain.registry.tables import ModelVersion


def variant_params(params: Params, name: str) -> Params:
    """The params model NAME was trained with (``model.kind`` from ``pipeline.models``)."""
    kind = params.pipeline.models[name].kind
    d = params.to_dict()
    d["model"]["kind"] = kind
    return Params.model_validate(d)


def record_dataset(root: Path, params: Params, run_id: str | None) -> dict[str, Any]:
    """Record the dataset version in ``dvc.lock`` (name, md5, split counts, validation)."""
    facts = dataset_facts(root, params)
    if facts.version is None:
        raise DatasetError(
            "dvc.lock records no output of stage `data`",
            where=str(root / "dvc.lock"),
            fix="run the pipeline's DVC stages first (`dvc repro data`)",
        )
    with open_registry() as reg:
        ds_id = records.record_dataset(
            reg.db,
            name=facts.name,
            version=facts.version,
            path=facts.path,
            split_counts=facts.split_counts,
            validation_report=facts.validation_report,
        )
        if run_id is not None:
            records.update_flow_run(reg.db, run_id, dataset_id=ds_id)
    report = facts.validation_report or {}
    return {
        "id": ds_id,
        "name": facts.name,
        "version": facts.version,
        "path": facts.path,
        "split_counts": facts.split_counts,
        "validation": "passed" if report.get("ok") else ("failed" if report else "unvalidated"),
    }


def _summary(mv: ModelVersion, created: bool) -> dict[str, Any]:
    return {
        "name": mv.name,
        "ref": mv.ref,
        "id": mv.id,
        "version": mv.version,
        "sha256": mv.sha256,
        "store_uri": mv.store_uri,
        "created": created,
        "run_id": mv.run_id,
        "lineage": mv.lineage,
    }


def register_model(
    root: Path,
    name: str,
    params: Params,
    *,
    run_id: str | None,
    dataset_id: int | None,
) -> dict[str, Any]:
    """Register ``models/NAME/model`` with full lineage (idempotent by content).

    The training run (``runs`` kind ``train``, id = Ray Train run name, with its curves) is
    recorded first and named as the version's run.
    """
    mdir = model_dir(root, name)
    lineage = gather_lineage(
        mdir,
        source="pipeline",
        flow_run_id=run_id,
        project_root=root,
        params=variant_params(params, name).to_dict(),
    )
    digest = manifest_digest(scan_dir(mdir))
    out = training_output(mdir)
    with open_registry() as reg:
        train_run = (
            records.record_training_run(
                reg.db, out, lineage, parent_id=run_id, dataset_id=dataset_id
            )
            if out is not None
            else None
        )
        same = [v for v in reg.list_versions(name, include_archived=True) if v.sha256 == digest]
        if same:
            return _summary(min(same, key=lambda v: v.version), created=False)
        mv = reg.register(
            mdir,
            name,
            run_id=train_run,
            lineage=lineage,
            description=f"trained by the pipeline flow (run {run_id})" if run_id else None,
        )
        return _summary(mv, created=True)


def record_evaluation(
    root: Path,
    label: str,
    params: Params,
    *,
    model: dict[str, Any] | None,
    dataset: dict[str, Any],
    run_id: str | None,
) -> dict[str, Any]:
    """Record ``reports/eval/LABEL`` (an evaluation of ``model``, or the identity baseline)."""
    with open_registry() as reg:
        rec = evaluations.record_evaluation(
            reg,
            eval_dir(root, label),
            label=model["ref"] if model else label,
            subject=f"model:{model['sha256']}" if model else label,
            model_version_id=model["id"] if model else None,
            dataset_id=dataset["id"],
            dataset_name=dataset["name"],
            dataset_version=dataset["version"],
            data_root=root / params.data.dir,
            run_id=run_id,
            eval_params=params.eval.model_dump(mode="json"),
        )
    return rec.to_dict()


def record_ablation(root: Path, run_id: str | None) -> str | None:
    """Record ``reports/ablation.json`` (a ``runs`` row of kind ``ablation``) when it exists."""
    path = root / ABLATION
    if not path.is_file():
        return None
    report = json.loads(path.read_text(encoding="utf-8"))
    with open_registry() as reg:
        return records.record_ablation(reg.db, report, parent_id=run_id)


Evaluator = Callable[[Path, str, str, Path, str, LineSink | None], None]


def evaluate_model(
    root: Path, model: str, data: str, out: Path, split: str, on_line: LineSink | None
) -> None:
    """``bin/reasonbrain evaluate --model MODEL`` into ``out`` (resumable), as the pipeline's
    evaluate stages run it.

    Raises:
        StageFailed: the evaluation failed.
    """
    import subprocess
    import sys

    from reasonbrain.pipeline.dvc import dvc_env

    cmd = [
        str(root / "bin" / "reasonbrain"),
        "evaluate",
        "--model",
        model,
        "--data",
        data,
        "--split",
        split,
        "--out",
        str(out),
    ]
    env = dvc_env({"REASONBRAIN_PYTHON": sys.executable})
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    for line in lines:
        if on_line is not None and line.strip():
            on_line(line)
    if proc.returncode != 0:
        raise StageFailed(f"evaluate {model}", proc.returncode, lines[-40:])


def promote(
    root: Path,
    params: Params,
    *,
    candidate: dict[str, Any],
    evaluations_by_label: dict[str, dict[str, Any]],
    dataset: dict[str, Any],
    run_id: str | None,
    on_line: LineSink | None = None,
    evaluator: Evaluator = evaluate_model,
) -> dict[str, Any]:
    """Run the promotion gate for ``candidate`` on this run's evaluations.

    When a production version exists but was never evaluated on this dataset version, split and
    eval params, it is evaluated now and that evaluation is recorded first: its verified copy is
    fetched here (the registry's cache) and evaluated like the stages evaluate a trained model
    (``reasonbrain evaluate --model DIR`` into ``$REASONBRAIN_HOME/evaluations/``) — the
    evaluation workers, possibly on a Ray cluster, need no access to the registry.
    """
    name = params.promote.model
    cand_eval = evaluations_by_label[name]
    metrics, _ = evaluations.read_evaluation(eval_dir(root, name))
    split, eval_params = evaluations.eval_context(metrics, params.eval.model_dump(mode="json"))

    with open_registry() as reg:

        def incumbent_eval(mv: ModelVersion) -> int:
            subject = f"model:{mv.sha256}"
            key = evaluations.evaluation_key(subject, dataset["version"], split, eval_params)
            found = evaluations.find_evaluation(reg, key)
            if found is not None:
                return found
            home = get_settings().home.resolve()
            out = home / "evaluations" / f"{mv.name}-v{mv.version}-{key[:12]}"
            local = reg.resolve(mv.ref)
            evaluator(root, str(local), str(params.data.dir), out, split, on_line)
            rec = evaluations.record_evaluation(
                reg,
                out,
                label=mv.ref,
                subject=subject,
                model_version_id=mv.id,
                dataset_id=dataset["id"],
                dataset_name=dataset["name"],
                dataset_version=dataset["version"],
                data_root=root / params.data.dir,
                run_id=run_id,
                eval_params=eval_params,
            )
            return rec.id

        mv = reg.get(candidate["ref"])
        baselines = {label: ev["id"] for label, ev in evaluations_by_label.items() if label != name}
        decision = decide(
            reg,
            mv,
            cand_eval["id"],
            baselines,
            params.promote,
            incumbent_eval=incumbent_eval,
            run_id=run_id,
        )
    return decision.to_dict()
