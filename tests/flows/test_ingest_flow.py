"""The ``ingest`` flow for real: a landing zone on an S3 endpoint (moto server over HTTP), the GX
suite, DVC in a temporary git repository, a webhook on loopback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, update

from reasonbrain.data.schema import read_manifest
from reasonbrain.pipeline import landing
from reasonbrain.pipeline.project import workspace_lock
from reasonbrain.registry.api import Registry, open_registry
from reasonbrain.registry.tables import Dataset, LandingDrop, Notification, Run, utcnow
from tests.flows.helpers import Webhook, environ, make_drop, make_project
from tests.integration.registry_fixtures import DUMMY_KEY_ID, DUMMY_SECRET

pytestmark = [pytest.mark.slow, pytest.mark.dvc, pytest.mark.s3]


@dataclass
class Landing:
    project: Path
    endpoint: str
    bucket: str
    db_url: str
    store_uri: str
    webhook: Webhook
    work: Path

    def registry(self) -> Registry:
        return open_registry(store_uri=self.store_uri, db_url=self.db_url)

    def put(self, drop: Path, name: str) -> None:
        """Upload a local drop directory as ``landing/NAME/``."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint)
        for f in sorted(drop.rglob("*")):
            if f.is_file():
                key = f"landing/{name}/{f.relative_to(drop).as_posix()}"
                s3.upload_file(str(f), self.bucket, key)


@pytest.fixture(scope="module")
def zone(
    moto_endpoint: str, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Landing]:
    import boto3

    base = tmp_path_factory.mktemp("ingest-flow")
    bucket = f"rb-land-{uuid.uuid4().hex[:10]}"
    hook = Webhook()
    db_url = f"sqlite:///{base / 'registry.db'}"
    store = (base / "store").as_uri()
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "REASONBRAIN_HOME": str(base / "home"),
        "REASONBRAIN_DB_URL": db_url,
        "REASONBRAIN_STORE_URI": store,
        "REASONBRAIN_NOTIFY_WEBHOOK_URL": hook.url,
    }
    with environ(**env):
        boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
        project = make_project(
            base / "project",
            {"ingest": {"landing": f"s3://{bucket}/landing", "settle_s": 3600.0}},
        )
        try:
            yield Landing(project, moto_endpoint, bucket, db_url, store, hook, base)
        finally:
            hook.close()


@pytest.fixture(scope="module")
def first(zone: Landing) -> dict[str, Any]:
    """One good drop, one bad drop (undeclared category), one still being uploaded."""
    from flows.ingest import ingest

    zone.put(make_drop(zone.work / "good", "good"), "good-1")
    zone.put(make_drop(zone.work / "bad", "bad", category="cooking"), "bad-1")
    zone.put(make_drop(zone.work / "late", "late", ready=False), "late-1")
    return ingest(project_dir=str(zone.project))


def test_a_good_drop_becomes_a_new_dataset_version_a_bad_one_is_quarantined(
    zone: Landing, first: dict[str, Any]
) -> None:
    p = zone.project
    by_name = {d["name"]: d for d in first["drops"]}
    assert set(by_name) == {"good-1", "bad-1"}  # late-1 has no _READY and is not settled
    good, bad = by_name["good-1"], by_name["bad-1"]
    assert good["status"] == "merged" and good["records"] == 6
    assert bad["status"] == "quarantined" and "category_known" in bad["message"]

    # merged: tracked by DVC, appended by stage `data`, a new dataset version in dvc.lock
    merged = Path(good["merged_dir"])
    assert (p / f"{merged}.dvc").is_file() and (p / merged / "train.jsonl").is_file()
    lock = yaml.safe_load((p / "dvc.lock").read_text())["stages"]
    version = lock["data"]["outs"][0]["md5"]
    assert first["dataset"]["version"] == version
    test = read_manifest(p / "data/reasonsynth/test.jsonl")
    mine = [r for r in test if r.id.startswith("good-")]
    assert [r.id for r in mine] == ["good-test-0", "good-test-1"]
    assert mine[0].src_image == f"ingested/{merged.name}/images/good-test-0-src.png"
    assert (p / "data/reasonsynth" / mine[0].src_image).is_file()
    assert json.loads((p / "reports/validation.json").read_text())["ok"] is True

    with zone.registry() as reg, reg.db.sessions() as s:
        rows = {r.uri.rsplit("/", 1)[-1]: r for r in s.scalars(select(LandingDrop))}
        assert set(rows) == {"good-1", "bad-1"}
        assert rows["good-1"].status == "merged" and rows["good-1"].dataset_version == version
        assert rows["good-1"].run_id == first["run_id"] and rows["good-1"].format == "reason50k"
        q = rows["bad-1"]
        assert q.status == "quarantined" and "category_known" in q.error
        assert q.report["ok"] is False and q.quarantine_uri.startswith(zone.store_uri)
        ds = s.scalars(select(Dataset).where(Dataset.version == version)).one()
        assert ds.split_counts["test"] == 8 + 2 and ds.validation_status == "passed"
        flow_run = s.get(Run, first["run_id"])
        assert flow_run.kind == "ingest" and flow_run.status == "succeeded"
        (note,) = s.scalars(select(Notification).where(Notification.event == "quarantine"))
        assert "bad-1" in note.message and note.deliveries[-1]["ok"]
    report = Path(q.quarantine_uri.removeprefix("file://")) / "report.json"
    doc = json.loads(report.read_text())
    assert doc["stage"] == "validate" and doc["fingerprint"] == q.fingerprint
    failed = [c["name"] for c in doc["checks"] if not c["passed"]]
    assert "category_known" in failed
    texts = [b["text"] for b in zone.webhook.bodies]
    assert any("quarantine" in t and "bad-1" in t for t in texts)


def test_each_drop_is_processed_once(zone: Landing, first: dict[str, Any]) -> None:
    from flows.ingest import ingest

    lock = (zone.project / "dvc.lock").read_text()
    again = ingest(project_dir=str(zone.project))
    assert again["drops"] == [] and again["dataset"] is None
    assert (zone.project / "dvc.lock").read_text() == lock
    with zone.registry() as reg, reg.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(LandingDrop)) == 2


def test_a_busy_workspace_leaves_the_drops_for_the_next_run(
    zone: Landing, first: dict[str, Any]
) -> None:
    from flows.ingest import ingest

    with workspace_lock(zone.project, 0):
        result = ingest(project_dir=str(zone.project))
    assert result["skipped"] == "workspace busy" and result["drops"] == []


def test_claims_are_exclusive_and_a_crashed_claim_is_taken_again(
    zone: Landing, first: dict[str, Any]
) -> None:
    store = landing.open_landing(f"s3://{zone.bucket}/landing", zone.project)
    late = next(d for d in landing.scan(store) if d.name == "late-1")
    assert not late.ready(3600) and late.ready(0)
    with zone.registry() as reg:
        a = landing.claim(reg, late, run_id=None, stale_after_s=60)
        b = landing.claim(reg, late, run_id=None, stale_after_s=60)
        assert a is not None and b is None  # one processor per drop
        with reg.db.sessions.begin() as s:  # the processor crashed an hour ago
            s.execute(
                update(LandingDrop)
                .where(LandingDrop.id == a)
                .values(created_at=utcnow() - timedelta(hours=2))
            )
        assert landing.claim(reg, late, run_id=None, stale_after_s=60) == a
        landing.finish(reg, a, landing.DropOutcome("late-1", late.uri, landing.FAILED, message="x"))
        assert landing.claim(reg, late, run_id=None, stale_after_s=60) is None
