"""Example: a Prefect flow that submits ReasonBrain's KubeRay RayJob and waits for it to finish.

Deployed on a Prefect **Kubernetes work pool** (``infra/prefect/prefect.yaml``): the pool's worker
starts one pod per flow run from the reasonbrain image (which holds this file and
``infra/k8s/rayjob.yaml``), as the ``reasonbrain-submitter`` service account of
``infra/k8s/rbac.yaml``. The flow then

1. reads ``infra/k8s/rayjob.yaml``, names the RayJob after the flow run (so a retried flow run
   submits the same name, and ``--run-name`` makes the training resume from its S3 checkpoint
   instead of starting over) and appends the run's ``--set`` overrides to ``reasonbrain train``;
2. creates it through the Kubernetes API (a 409 "already exists" counts as created: a retried
   create whose first response was lost is not an error);
3. polls ``status.jobStatus`` until ``SUCCEEDED`` (returns the status) or ``FAILED``/``STOPPED``
   (raises, so Prefect marks the flow run failed and can notify).

The Kubernetes API is reached with plain HTTPS and the pod's service-account token, not with the
``kubernetes`` client package: that package's current release cannot be installed beside our
pinned ``python-dateutil`` (pip's resolver refuses it), and two REST calls do not need it. Outside
a cluster, ``kubectl proxy`` and ``api_url="http://127.0.0.1:8001"`` work the same way.

This is an example file (not part of the ``reasonbrain`` package): see README "Running on a
cluster" for the work pool and deployment commands.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prefect import flow, task

MANIFEST = Path(__file__).resolve().parents[1] / "k8s" / "rayjob.yaml"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TERMINAL_FAILED = frozenset({"FAILED", "STOPPED"})


class RayJobFailed(RuntimeError):
    """The RayJob ended in FAILED or STOPPED (or did not end in time)."""


@dataclass(frozen=True)
class KubeAPI:
    """Where the Kubernetes API is and how to authenticate to it.

    Attributes:
        base_url: e.g. ``https://10.0.0.1:443`` (in a pod) or ``http://127.0.0.1:8001``.
        token: a bearer token (the pod's service-account token), or ``None`` (kubectl proxy).
        verify: the cluster CA bundle path, or ``True`` for the system CAs.
    """

    base_url: str
    token: str | None = None
    verify: str | bool = True

    @classmethod
    def from_environment(cls, api_url: str | None = None) -> KubeAPI:
        """``api_url`` if given (no token: ``kubectl proxy``), else the in-cluster config."""
        if api_url:
            return cls(base_url=api_url.rstrip("/"))
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        if not host:
            raise RuntimeError(
                "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset): pass api_url, "
                "e.g. run `kubectl proxy` and use http://127.0.0.1:8001"
            )
        return cls(
            base_url=f"https://{host}:{port}",
            token=(SERVICE_ACCOUNT / "token").read_text().strip(),
            verify=str(SERVICE_ACCOUNT / "ca.crt"),
        )

    def client(self) -> httpx.Client:
        """An HTTP client for the API (bearer token when there is one)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, verify=self.verify, timeout=30)


def rayjobs_path(namespace: str, name: str | None = None) -> str:
    """The REST path of RayJobs in ``namespace`` (or of one of them)."""
    path = f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs"
    return f"{path}/{name}" if name else path


def load_manifest(path: Path | str = MANIFEST) -> dict[str, Any]:
    """The RayJob manifest as a dict."""
    body = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(body, dict) or body.get("kind") != "RayJob":
        raise ValueError(f"{path} is not a RayJob manifest")
    return body


def rayjob_body(
    manifest: dict[str, Any], name: str, sets: list[str] | None = None
) -> dict[str, Any]:
    """A copy of ``manifest`` named ``name``, whose ``--run-name`` is ``name`` too, with one
    ``--set`` for each of ``sets`` (``key.sub=value``) right after it: ``--run-name`` is the last
    option of ``reasonbrain train`` in the manifest, so these come last and win.

    Raises:
        ValueError: the name is not a valid Kubernetes name, an override is not ``key=value``,
            or the entrypoint has no ``--run-name`` to follow the name.
    """
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?", name):
        raise ValueError(f"RayJob name {name!r}: use 1-40 lowercase letters, digits and '-'")
    body = copy.deepcopy(manifest)
    body["metadata"]["name"] = name
    entry = str(body["spec"]["entrypoint"])
    extra = ""
    for item in sets or []:
        if "=" not in item or item.startswith("="):
            raise ValueError(f"override {item!r} is not of the form key.sub=value")
        extra += f" --set {shlex.quote(item)}"
    entry, n = re.subn(r"--run-name \S+", lambda _: f"--run-name {name}{extra}", entry)
    if n != 1:
        raise ValueError("the RayJob entrypoint must hold exactly one `--run-name NAME`")
    body["spec"]["entrypoint"] = entry
    return body


@task(retries=3, retry_delay_seconds=10)
def create_rayjob(api: KubeAPI, namespace: str, body: dict[str, Any]) -> str:
    """Create the RayJob; an existing one of the same name counts as created. Returns its name."""
    name = str(body["metadata"]["name"])
    with api.client() as client:
        resp = client.post(
            rayjobs_path(namespace),
            json={**body, "metadata": {**body["metadata"], "namespace": namespace}},
        )
    if resp.status_code == 409:
        print(f"RayJob {namespace}/{name} exists already: following it")
    elif resp.status_code >= 400:
        raise RuntimeError(f"creating RayJob {name}: HTTP {resp.status_code}: {resp.text[:500]}")
    else:
        print(f"created RayJob {namespace}/{name}")
    return name


@task
def wait_rayjob(
    api: KubeAPI, namespace: str, name: str, poll_s: float = 30.0, timeout_s: float = 3 * 86400
) -> dict[str, Any]:
    """Poll the RayJob until its job ends; return its status.

    Raises:
        RayJobFailed: the job ended FAILED/STOPPED, or did not end within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last = None
    with api.client() as client:
        while True:
            resp = client.get(rayjobs_path(namespace, name))
            resp.raise_for_status()
            status: dict[str, Any] = resp.json().get("status") or {}
            state = status.get("jobStatus") or status.get("jobDeploymentStatus") or "PENDING"
            if state != last:
                print(f"RayJob {name}: {state}")
                last = state
            if state == "SUCCEEDED":
                return status
            if state in TERMINAL_FAILED or status.get("jobDeploymentStatus") == "Failed":
                raise RayJobFailed(f"RayJob {name} ended {state}: {status.get('message', '')}")
            if time.monotonic() > deadline:
                raise RayJobFailed(f"RayJob {name} still {state} after {timeout_s:.0f} s")
            time.sleep(poll_s)


@flow(name="reasonbrain-train-on-kuberay", log_prints=True)
def submit_rayjob(
    sets: list[str] | None = None,
    name_prefix: str = "reasonbrain-train",
    namespace: str | None = None,
    manifest: str = str(MANIFEST),
    api_url: str | None = None,
    poll_s: float = 30.0,
    timeout_s: float = 3 * 86400,
) -> dict[str, Any]:
    """Submit ``infra/k8s/rayjob.yaml`` (with ``sets`` overrides) and wait for the training."""
    from prefect.runtime import flow_run

    body = load_manifest(manifest)
    ns = namespace or str(body["metadata"].get("namespace") or "default")
    run_id = str(flow_run.id or "manual").replace("-", "")[:8]
    body = rayjob_body(body, f"{name_prefix}-{run_id}", sets)
    api = KubeAPI.from_environment(api_url)
    name = create_rayjob(api, ns, body)
    return wait_rayjob(api, ns, name, poll_s=poll_s, timeout_s=timeout_s)


if __name__ == "__main__":
    submit_rayjob()
