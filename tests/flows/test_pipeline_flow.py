"""The ``pipeline`` flow for real: Prefect (test harness), DVC in a temporary git repository, the
registry on an S3 endpoint (moto server over HTTP) and PostgreSQL, a DVC remote on the same
endpoint, a webhook on loopback.

One micro pipeline is trained once for the module (``first``); the tests after it reuse the
project, in order: pull and edit, a second run (the gate sees the same model), DVC's params
hygiene, a failing stage, a transient S3 failure, and a worse model that is not promoted.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from reasonbrain.lineage import LINEAGE_KEYS
from reasonbrain.pipeline.dvc import StageFailed, write_params
from reasonbrain.registry.api import Registry, open_registry
from reasonbrain.registry.tables import (
    SAMPLE_VERDICTS,
    Dataset,
    Evaluation,
    EvaluationSample,
    Metric,
    ModelVersion,
    Notification,
    PromotionDecision,
    Run,
)
from tests.flows.helpers import (
    FlakyS3Proxy,
    Webhook,
    dvc,
    environ,
    git,
    make_drop,
    make_project,
    pg_database,
)
from tests.integration.registry_fixtures import DUMMY_KEY_ID, DUMMY_SECRET

pytestmark = [
    pytest.mark.slow,
    pytest.mark.dvc,
    pytest.mark.ray,
    pytest.mark.postgres,
    pytest.mark.s3,
]


@dataclass
class Stack:
    project: Path
    endpoint: str
    bucket: str
    db_url: str
    webhook: Webhook

    def registry(self) -> Registry:
        return open_registry(store_uri=f"s3://{self.bucket}/registry", db_url=self.db_url)


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"rb-flow-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def stack(
    moto_endpoint: str,
    pg_admin: str,
    prefect_harness: None,
    ray_session: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The production column on loopback, and a micro project whose DVC remote is on S3. The
    stages' Ray work goes to the session's Ray instance (``RAY_ADDRESS``, as on a cluster)
    instead of each stage starting its own."""
    base = tmp_path_factory.mktemp("pipeline-flow")
    hook = Webhook()
    aws = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pg_database(pg_admin) as db_url, environ(**aws):
        bucket = _bucket(moto_endpoint)
        env = {
            "REASONBRAIN_HOME": str(base / "home"),
            "REASONBRAIN_STORE_URI": f"s3://{bucket}/registry",
            "REASONBRAIN_DB_URL": db_url,
            "REASONBRAIN_NOTIFY_WEBHOOK_URL": hook.url,
            "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
        }
        with environ(**env):
            project = make_project(base / "project")
            dvc(project, "remote", "add", "-d", "-f", "s3", f"s3://{bucket}/dvc")
            dvc(project, "remote", "modify", "--local", "s3", "endpointurl", moto_endpoint)
            git(project, "commit", "-qam", "DVC remote on S3")
            try:
                yield Stack(project, moto_endpoint, bucket, db_url, hook)
            finally:
                hook.close()


@pytest.fixture(scope="module")
def first(stack: Stack) -> dict[str, Any]:
    """The first run of the pipeline flow (trains everything)."""
    from flows.pipeline import pipeline

    return pipeline(project_dir=str(stack.project))


def _lock(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / "dvc.lock").read_text())["stages"])


def _s3_keys(stack: Stack, prefix: str) -> set[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    return {o["Key"] for p in pages for o in p.get("Contents", [])}


def test_first_run_trains_registers_records_and_decides(
    stack: Stack, first: dict[str, Any]
) -> None:
    p = stack.project
    stages = first["stages"]
    assert list(stages) == [
        "data",
        "validate",
        "train@reasonbrain",
        "train@ip2p",
        "evaluate@reasonbrain",
        "evaluate@ip2p",
        "evaluate_identity",
        "report",
    ]
    assert set(stages.values()) == {"ran"}
    lock = _lock(p)
    data_md5 = lock["data"]["outs"][0]["md5"]
    head = git(p, "rev-parse", "HEAD").strip()
    run_id = first["run_id"]
    with stack.registry() as reg, reg.db.sessions() as s:
        flow_run = s.get(Run, run_id)
        assert flow_run.kind == "pipeline" and flow_run.status == "succeeded"
        assert flow_run.details["stages"] == stages and flow_run.git_commit == head
        ds = s.get(Dataset, flow_run.dataset_id)
        assert ds.version == data_md5 and ds.name == "reasonsynth"
        assert ds.split_counts == {"train": 24, "val": 8, "test": 8}
        assert ds.validation_status == "passed" and ds.validation_report["ok"] is True

        versions = {mv.name: mv for mv in s.scalars(select(ModelVersion))}
        assert set(versions) == {"reasonbrain", "ip2p"}
        for name, mv in versions.items():
            run_json = json.loads((p / "models" / name / "run.json").read_text())
            lin = mv.lineage
            assert set(LINEAGE_KEYS) <= set(lin)
            assert lin["git_commit"] == head and lin["git_dirty"] is False
            assert lin["params"]["model"]["kind"] == name  # the checkpoint's params
            assert lin["params"]["train"]["max_steps"] == 3
            assert lin["params_hash"] == run_json["params_hash"]
            assert lin["dataset_version"] == data_md5 and lin["dataset_path"] == "data/reasonsynth"
            assert lin["ray_run_name"] == run_json["run_name"] == mv.run_id
            assert lin["run_uri"] == run_json["run_uri"]
            assert lin["train_metrics"]["steps"] == 3
            assert lin["source"] == "pipeline" and lin["flow_run_id"] == run_id
            train = s.get(Run, mv.run_id)
            assert train.kind == "train" and train.parent_id == run_id
            assert train.dataset_id == ds.id
            steps = s.scalars(
                select(Metric.step).where(Metric.run_id == train.id, Metric.name == "loss")
            ).all()
            assert sorted(steps) == [1, 2, 3]

        evals = {e.label: e for e in s.scalars(select(Evaluation))}
        assert set(evals) == {"reasonbrain@1", "ip2p@1", "identity"}
        ident = evals["identity"]
        assert ident.model_version_id is None and ident.n_samples == 8 and ident.split == "test"
        assert evals["reasonbrain@1"].model_version_id == versions["reasonbrain"].id
        assert evals["reasonbrain@1"].summary["overall"]["metrics"]["reasoning_acc"]["n"] == 8
        samples = s.scalars(
            select(EvaluationSample).where(EvaluationSample.evaluation_id == ident.id)
        ).all()
        assert len(samples) == 8
        # the identity output is the source: nearest outcome "no change", never correct
        assert {x.verdict for x in samples} <= {"no_change", "unverifiable"}
        assert all(x.correct in (False, None) for x in samples)
        assert all(x.family and x.holdout for x in samples)
        sample = samples[0]
        assert set(s.scalars(select(EvaluationSample.verdict))) <= set(SAMPLE_VERDICTS)

        (decision,) = s.scalars(select(PromotionDecision)).all()
    # every image URI names an object in the bucket
    keys = _s3_keys(stack, "registry/")
    for uri in sample.image_uris.values():
        assert uri.startswith(f"s3://{stack.bucket}/registry/")
        assert uri.removeprefix(f"s3://{stack.bucket}/") in keys
    assert (
        sample.image_uris["src"]
        .split("/registry/")[1]
        .startswith(f"datasets/reasonsynth/{data_md5}/")
    )
    assert f"registry/evaluations/{ident.key}/metrics.json" in keys
    # the gate's decision agrees with its numbers, and says why in words
    comparisons = decision.details["comparisons"]
    assert {c["against"] for c in comparisons} == {"identity", "ip2p"}
    beats_all = all(c["ci_low"] is not None and c["ci_low"] > 0 for c in comparisons)
    assert decision.decision == ("production" if beats_all else "staging")
    assert decision.run_id == run_id and "reasoning_acc" in decision.reason
    assert first["gate"]["decision"] == decision.decision
    assert _s3_keys(stack, "dvc/")  # dvc push reached the S3 remote


def test_registered_model_pulls_back_from_s3_and_makes_the_same_edit(
    stack: Stack, first: dict[str, Any], tmp_path: Path
) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from reasonbrain.data.schema import read_manifest
    from reasonbrain.inference import ReasonBrainPipeline

    with stack.registry() as reg:
        reg.pull("reasonbrain@1", tmp_path / "pulled")
    local = stack.project / "models" / "reasonbrain" / "model"
    for f in local.rglob("*"):
        if f.is_file():
            assert (tmp_path / "pulled" / f.relative_to(local)).read_bytes() == f.read_bytes()
    rec = read_manifest(stack.project / "data/reasonsynth/test.jsonl")[0]
    image = Image.open(stack.project / "data/reasonsynth" / rec.src_image).convert("RGB")
    outs = []
    for d in (local, tmp_path / "pulled"):
        pipe = ReasonBrainPipeline.from_pretrained(d)
        out = pipe(
            image=image,
            prompt=rec.instruction,
            num_inference_steps=3,
            generator=torch.Generator().manual_seed(0),
        )
        outs.append(np.asarray(out.images[0]))
    assert np.array_equal(outs[0], outs[1])


def test_second_run_skips_every_stage_and_the_gate_sees_the_same_model(
    stack: Stack, first: dict[str, Any]
) -> None:
    from flows.pipeline import pipeline

    with stack.registry() as reg:  # an operator put the first model in production
        reg.promote("reasonbrain@1", "production")
        before = len(stack.webhook.bodies)
    again = pipeline(project_dir=str(stack.project))
    assert set(again["stages"].values()) == {"skipped"}
    assert not any(m["created"] for m in again["models"].values())
    assert not any(e["created"] for e in again["evaluations"].values())
    gate = again["gate"]
    assert gate["decision"] == "production" and gate["same_model"] and not gate["promoted"]
    assert "the gate saw the same model" in gate["reason"]
    with stack.registry() as reg, reg.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 2
        assert s.scalar(select(func.count()).select_from(Evaluation)) == 3
        assert s.scalar(select(func.count()).select_from(PromotionDecision)) == 2
    assert len(stack.webhook.bodies) == before  # nothing new to announce
    # the Prefect UI shows the stages' outcomes and the decision on the flow run's page
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(again["run_id"])])
            )
        )
    by_key = {a.key: a for a in arts}
    table = by_key["pipeline-stages"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {r["outcome"] for r in rows} == {"skipped"} and len(rows) == 8
    assert "the gate saw the same model" in str(by_key["promotion-gate"].data)


def _status(project: Path) -> dict[str, Any]:
    return dict(json.loads(dvc(project, "status", "--json") or "{}"))


def test_dvc_reruns_only_what_a_change_affects(stack: Stack, first: dict[str, Any]) -> None:
    p = stack.project
    original = yaml.safe_load((p / "params.yaml").read_text())
    assert _status(p) == {}
    # operational keys rerun nothing
    write_params(
        p,
        [
            "train.workers=2",
            "train.max_failures=5",
            "train.preload=false",
            "eval.concurrency=2",
            "eval.torch_threads=1",
            "eval.batch_size=4",
            "data.synth.workers=2",
        ],
    )
    assert _status(p) == {}
    # validating the same data again (new timings) reruns nothing downstream
    report = (p / "reports/validation.json").read_text()
    dvc(p, "repro", "--force", "--single-item", "validate")
    assert (p / "reports/validation.json").read_text() != report  # timings differ
    assert _status(p) == {}
    # an ad-hoc validation of another directory writes no pipeline output
    drop = make_drop(p.parent / "elsewhere", "adhoc")
    from typer.testing import CliRunner

    from reasonbrain.cli import app

    cwd = Path.cwd()
    os.chdir(p)
    try:
        r = CliRunner().invoke(app, ["data", "validate", str(drop)])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    assert _status(p) == {}
    # a learning key reruns training and what depends on it, nothing upstream
    write_params(p, ["train.lr=0.002"])
    assert set(_status(p)) == {"train@reasonbrain", "train@ip2p"}
    dag = dvc(p, "dag", "--dot")  # … and what depends on training reruns after it
    for edge in (
        '"train@reasonbrain" -> "evaluate@reasonbrain"',
        '"train@ip2p" -> "evaluate@ip2p"',
        '"evaluate@reasonbrain" -> "report"',
    ):
        assert edge in dag
    assert '"train@reasonbrain" -> "evaluate_identity"' not in dag
    # restore: up to date again
    (p / "params.yaml").write_text(yaml.safe_dump(original, sort_keys=False))
    assert _status(p) == {}
    # stage commands run the project's interpreter whatever `python` is first on PATH
    bare = {"PATH": "/usr/bin:/bin", "REASONBRAIN_PYTHON": "", "PYTHONPATH": ""}
    out = dvc(p, "repro", "--force", "--single-item", "data", env=bare)
    assert "Running stage 'data'" in out
    assert _status(p) == {}  # same bytes again


def test_a_failing_stage_stops_the_flow_before_registration(
    stack: Stack, first: dict[str, Any]
) -> None:
    from flows.pipeline import pipeline

    p = stack.project
    with stack.registry() as reg, reg.db.sessions() as s:
        n_versions = s.scalar(select(func.count()).select_from(ModelVersion))
        n_evals = s.scalar(select(func.count()).select_from(Evaluation))
    before = len(stack.webhook.bodies)
    with pytest.raises(StageFailed, match="validate"):
        pipeline(project_dir=str(p), overrides=["validate.min_instruction_chars=400"])
    with stack.registry() as reg, reg.db.sessions() as s:
        run = s.scalars(
            select(Run).where(Run.kind == "pipeline").order_by(Run.started_at.desc())
        ).first()
        assert run.status == "failed" and "validate" in run.error
        assert run.details["stages"] == {"data": "skipped", "validate": "failed"}
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == n_versions
        assert s.scalar(select(func.count()).select_from(Evaluation)) == n_evals
        note = s.scalars(select(Notification).where(Notification.event == "failure")).one()
        assert note.run_id == run.id and [d["ok"] for d in note.deliveries] == [True, True]
    (body,) = stack.webhook.bodies[before:]
    assert body["event"] == "failure" and "validate" in body["text"]
    write_params(p, ["validate.min_instruction_chars=8"])


def test_a_transient_s3_failure_succeeds_on_retry(
    stack: Stack, first: dict[str, Any], pg_admin: str
) -> None:
    """A fresh registry behind a proxy that answers 503 SlowDown to the first 6 uploads. With one
    retry per request in botocore (REASONBRAIN_STORE_RETRIES=1), some upload fails twice, the
    register task fails, and Prefect retries it (after 0.2 s): then everything goes through."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pipeline import pipeline

    bucket = _bucket(stack.endpoint)
    proxy = FlakyS3Proxy(stack.endpoint, fail_first=6)
    try:
        with (
            pg_database(pg_admin) as db_url,
            environ(
                AWS_ENDPOINT_URL=proxy.url,
                REASONBRAIN_STORE_RETRIES="1",
                REASONBRAIN_STORE_URI=f"s3://{bucket}/registry",
                REASONBRAIN_DB_URL=db_url,
            ),
        ):
            result = pipeline(project_dir=str(stack.project))
            assert proxy.failed == 6
            assert result["models"]["reasonbrain"]["created"]
            assert result["models"]["reasonbrain"]["store_uri"].startswith(f"s3://{bucket}/")
            with get_client(sync_client=True) as client:
                runs = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[result["run_id"]]))
                )
            retried = {r.name: r.run_count for r in runs if r.run_count > 1}
            assert set(retried) == {"register reasonbrain"} and retried["register reasonbrain"] >= 2
    finally:
        proxy.close()


def test_a_worse_model_is_not_promoted_and_the_reason_is_recorded(
    stack: Stack, first: dict[str, Any]
) -> None:
    """reasonbrain@1 is in production (see the second run). A model trained 1 step without the
    source residual is much worse on PSNR; new eval params mean the production model has no
    evaluation to compare with, so the gate evaluates it first."""
    from flows.pipeline import pipeline

    result = pipeline(
        project_dir=str(stack.project),
        overrides=[
            "train.max_steps=1",
            "model.source_residual=false",
            "eval.num_inference_steps=2",
            "promote.metric=psnr",
        ],
    )
    stages = result["stages"]
    assert stages["data"] == stages["validate"] == "skipped"
    assert {stages[k] for k in stages if k not in ("data", "validate")} == {"ran"}
    assert result["models"]["reasonbrain"]["ref"] == "reasonbrain@2"
    gate = result["gate"]
    assert gate["decision"] == "staging" and gate["incumbent"] == "reasonbrain@1"
    with stack.registry() as reg:
        assert reg.get("reasonbrain@production").version == 1
        assert reg.get("reasonbrain@staging").version == 2
        with reg.db.sessions() as s:
            row = s.scalars(select(PromotionDecision).order_by(PromotionDecision.id.desc())).first()
            v1 = s.scalars(
                select(Evaluation).where(Evaluation.model_version_id == row.incumbent_version_id)
            ).all()
    assert row.decision == "staging" and row.metric == "psnr"
    assert row.difference < 0 and row.ci_high < 0 and row.n_pairs == 8
    assert "production reasonbrain@1" in row.reason and "psnr" in row.reason
    assert len(v1) == 2  # evaluated again with the new eval params, and recorded
