"""The Prefect example that submits the RayJob (``infra/prefect``).

Kubernetes does not run here, so the flow's two tasks talk to a small stand-in for the Kubernetes
API on loopback (the two REST calls they make: create a RayJob, read its status). The deployment
file is checked against the flow it names.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shlex
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "infra" / "prefect" / "submit_rayjob.py"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example file imported as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("submit_rayjob_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


class FakeKubeAPI(BaseHTTPRequestHandler):
    """RayJobs in memory; each GET advances a job through ``statuses``."""

    jobs: ClassVar[dict[str, dict[str, Any]]] = {}
    statuses: ClassVar[list[str]] = []
    auth: ClassVar[list[str | None]] = []

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.auth.append(self.headers.get("Authorization"))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = body["metadata"]["name"]
        if not self.path.endswith("/namespaces/reasonbrain/rayjobs"):
            return self._send(404, {"reason": "NotFound"})
        if name in self.jobs:
            return self._send(409, {"reason": "AlreadyExists"})
        self.jobs[name] = {**body, "_gets": 0}
        return self._send(201, body)

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        job = self.jobs.get(name)
        if job is None:
            return self._send(404, {"reason": "NotFound"})
        i = min(job["_gets"], len(self.statuses) - 1)
        job["_gets"] += 1
        return self._send(200, {**job, "status": {"jobStatus": self.statuses[i]}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def kube_api() -> Iterator[str]:
    FakeKubeAPI.jobs, FakeKubeAPI.statuses, FakeKubeAPI.auth = {}, [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeAPI)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_body_names_the_job_and_the_run_and_appends_overrides(example: ModuleType) -> None:
    manifest = example.load_manifest()
    body = example.rayjob_body(manifest, "rb-train-1a2b", ["train.max_steps=20000", "a.b=x y"])
    assert body["metadata"]["name"] == "rb-train-1a2b"
    assert manifest["metadata"]["name"] == "reasonbrain-train-paper"  # the input is not changed
    train = shlex.split(body["spec"]["entrypoint"].split("&&")[1])
    assert train[:2] == ["reasonbrain", "train"]
    i = train.index("--run-name")
    # the run is named after the job; the overrides come last, so they win over the manifest's
    expected = ["--run-name", "rb-train-1a2b", "--set", "train.max_steps=20000", "--set", "a.b=x y"]
    assert train[i:] == expected
    with pytest.raises(ValueError, match="lowercase"):
        example.rayjob_body(manifest, "Bad_Name", [])
    with pytest.raises(ValueError, match=r"key\.sub=value"):
        example.rayjob_body(manifest, "ok", ["no-equals-sign"])


def test_create_then_wait_until_succeeded(example: ModuleType, kube_api: str) -> None:
    api = example.KubeAPI.from_environment(kube_api)
    body = example.rayjob_body(example.load_manifest(), "rb-ok", [])
    FakeKubeAPI.statuses = ["", "PENDING", "RUNNING", "SUCCEEDED"]
    assert example.create_rayjob.fn(api, "reasonbrain", body) == "rb-ok"
    assert example.create_rayjob.fn(api, "reasonbrain", body) == "rb-ok"  # 409: already there
    assert len(FakeKubeAPI.jobs) == 1 and FakeKubeAPI.auth == [None, None]  # kubectl proxy
    status = example.wait_rayjob.fn(api, "reasonbrain", "rb-ok", poll_s=0.01, timeout_s=10)
    assert status["jobStatus"] == "SUCCEEDED"
    assert FakeKubeAPI.jobs["rb-ok"]["_gets"] == 4


def test_a_failed_job_or_a_refused_create_fails_the_flow(
    example: ModuleType, kube_api: str
) -> None:
    api = example.KubeAPI.from_environment(kube_api)
    body = example.rayjob_body(example.load_manifest(), "rb-bad", [])
    FakeKubeAPI.statuses = ["RUNNING", "FAILED"]
    example.create_rayjob.fn(api, "reasonbrain", body)
    with pytest.raises(example.RayJobFailed, match="ended FAILED"):
        example.wait_rayjob.fn(api, "reasonbrain", "rb-bad", poll_s=0.01, timeout_s=10)
    FakeKubeAPI.statuses = ["RUNNING"]
    with pytest.raises(example.RayJobFailed, match="still RUNNING"):
        example.wait_rayjob.fn(api, "reasonbrain", "rb-bad", poll_s=0.01, timeout_s=0.05)
    with pytest.raises(RuntimeError, match="HTTP 404"):
        example.create_rayjob.fn(api, "elsewhere", body)


def test_in_cluster_config_uses_the_service_account_token(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(RuntimeError, match="kubectl proxy"):
        example.KubeAPI.from_environment()
    (tmp_path / "token").write_text("tok-123\n")
    (tmp_path / "ca.crt").write_text("not a real CA")
    monkeypatch.setattr(example, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    api = example.KubeAPI.from_environment()
    assert (api.base_url, api.token, api.verify) == (
        "https://10.0.0.1:6443",
        "tok-123",
        str(tmp_path / "ca.crt"),
    )


def test_deployment_file_matches_the_flow(example: ModuleType) -> None:
    cfg = yaml.safe_load((ROOT / "infra" / "prefect" / "prefect.yaml").read_text())
    (dep,) = cfg["deployments"]
    path, func = dep["entrypoint"].split(":")
    assert (ROOT / path).resolve() == EXAMPLE
    flow = getattr(example, func)
    assert flow.name == "reasonbrain-train-on-kuberay"
    assert set(dep["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    # at run time the pull step moves to the image's WORKDIR, where the Dockerfile put infra/
    (step,) = cfg["pull"]
    workdir = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert f"WORKDIR {workdir}" in (ROOT / "infra" / "Dockerfile").read_text()
    assert dep["work_pool"]["job_variables"]["namespace"] == "reasonbrain"
