"""Schedules for real: ``reasonbrain pipeline serve`` against ``prefect server start`` on loopback
triggers a run that completes; ``prefect.yaml`` deploys to the same server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reasonbrain.registry import infra as stack
from reasonbrain.registry.db import open_db
from reasonbrain.registry.tables import LandingDrop
from tests.flows.helpers import make_drop, make_project

pytestmark = pytest.mark.slow


def _completed_runs(url: str) -> list[dict[str, Any]]:
    body = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    r = httpx.post(f"{url}/flow_runs/filter", json=body, timeout=10)
    r.raise_for_status()
    return [fr for fr in r.json() if fr.get("deployment_id")]


def test_served_ingest_runs_on_its_schedule_and_prefect_yaml_deploys(tmp_path: Path) -> None:
    infra = stack.infra_dir(tmp_path)  # `down(home=tmp_path)` stops what starts here
    infra.mkdir(parents=True)
    server = stack.start_prefect(infra, port=stack.free_port(), wait_s=180)
    assert server.url and server.pid
    serve: subprocess.Popen[bytes] | None = None
    try:
        project = make_project(
            tmp_path / "project",
            {"ingest": {"landing": "landing", "settle_s": 0.0, "update_dataset": False}},
        )
        make_drop(project / "landing" / "drop-a", "served")
        db_url = f"sqlite:///{tmp_path / 'registry.db'}"
        env = {
            **os.environ,
            "PREFECT_API_URL": server.url,
            "PREFECT_HOME": str(tmp_path / "prefect-client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "REASONBRAIN_HOME": str(tmp_path / "home"),
            "REASONBRAIN_DB_URL": db_url,
            "REASONBRAIN_STORE_URI": (tmp_path / "store").as_uri(),
        }
        env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
        log = tmp_path / "serve.log"
        with log.open("wb") as fh:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reasonbrain",
                    "pipeline",
                    "serve",
                    "--flow",
                    "ingest",
                    "--project",
                    str(project),
                    "--set",
                    "ingest.interval_s=5",
                ],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 240
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not runs:
            assert serve.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
            runs = _completed_runs(server.url)
        assert runs, f"no scheduled run completed:\n{log.read_text()[-3000:]}"
        assert "serving ingest/landing-zone" in log.read_text()
        deployment = httpx.get(f"{server.url}/deployments/{runs[0]['deployment_id']}").json()
        assert deployment["name"] == "landing-zone"
        assert deployment["parameters"]["project_dir"] == str(project.resolve())
        db = open_db(db_url)
        try:
            with db.sessions() as s:
                (drop,) = s.scalars(select(LandingDrop)).all()
            assert drop.status == "merged" and drop.uri.endswith("/landing/drop-a")
        finally:
            db.dispose()

        # prefect.yaml: the same two deployments with the params' schedules, for workers
        def prefect(*args: str) -> None:
            r = subprocess.run(
                [sys.executable, "-m", "prefect", "--no-prompt", *args],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert r.returncode == 0, r.stdout + r.stderr

        prefect("work-pool", "create", "reasonbrain", "--type", "process")
        prefect("deploy", "--all")
        r = httpx.post(f"{server.url}/deployments/filter", json={}, timeout=10)
        deps = {(d["name"], d["entrypoint"]): d for d in r.json()}
        nightly = deps[("nightly", "flows/pipeline.py:pipeline")]
        assert nightly["work_pool_name"] == "reasonbrain"
        assert nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
        landing = deps[("landing-zone", "flows/ingest.py:ingest")]
        assert landing["schedules"][0]["schedule"]["interval"] == 900
    finally:
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
        stack.down(home=tmp_path)
