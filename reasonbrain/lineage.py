"""Lineage of a trained model: the code, params, data and run that produced it.

The same facts are recorded whoever registers the model — the ``pipeline`` flow or a person
running ``reasonbrain registry register DIR`` — because both read them from the same places:

- the training output beside the model directory (``models/NAME/run.json`` written by
  ``reasonbrain train``: Ray Train run name and storage URI, params hash, summary metrics; and
  ``metrics.json``), and the checkpoint's ``train_state.json`` for the exact params of the run;
- ``dvc.lock``: the stage that produced the model and the md5 of the dataset it consumed;
- git: the commit checked out and whether the tree differed from it.

:func:`gather_lineage` returns a dict with exactly the keys of :data:`LINEAGE_KEYS` (a value is
``None`` when it cannot be known, e.g. a model directory that no DVC stage produced). Nothing here
imports torch: the registry CLI and the flows use it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml

from reasonbrain.errors import RegistryError

LINEAGE_KEYS: tuple[str, ...] = (
    "git_commit",
    "git_dirty",
    "params_hash",
    "params",
    "dataset_version",
    "dataset_path",
    "ray_run_name",
    "run_uri",
    "train_metrics",
    "source",
    "flow_run_id",
)
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
#: what ``reasonbrain train`` keeps in a checkpoint beside the weights (params of the run)
TRAIN_STATE_JSON = "train_state.json"


@dataclass(frozen=True)
class TrainingOutput:
    """A ``reasonbrain train --out DIR`` directory.

    Attributes:
        out_dir: the output directory (``models/NAME``).
        model_dir: the trained model inside it (``models/NAME/model``).
        run: ``run.json`` (run name, run URI, checkpoint URI, params hash, metrics).
        metrics: ``metrics.json`` (summary figures), else the run's metrics.
    """

    out_dir: Path
    model_dir: Path
    run: dict[str, Any]
    metrics: dict[str, Any]


def training_output(model_dir: Path | str) -> TrainingOutput | None:
    """The training output that ``model_dir`` belongs to (``run.json`` in its parent), if any.

    Raises:
        RegistryError: ``model_dir`` is itself a training output directory (register its
            ``model/`` sub-directory instead), or its ``run.json`` is not readable JSON.
    """
    d = Path(model_dir)
    if (d / RUN_FILE).is_file() and (d / "model").is_dir():
        raise RegistryError(
            "this is a training output directory, not a model directory",
            where=str(d),
            fix=f"register its model: {d / 'model'}",
        )
    run_file = d.parent / RUN_FILE
    if not run_file.is_file():
        return None
    run = _read_json(run_file)
    metrics_file = d.parent / METRICS_FILE
    metrics = _read_json(metrics_file) if metrics_file.is_file() else dict(run.get("metrics") or {})
    return TrainingOutput(d.parent, d, run, metrics)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RegistryError(
            f"cannot read {path.name}: {type(err).__name__}", where=str(path)
        ) from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{path.name} is not a JSON object", where=str(path))
    return doc


# ----------------------------------------------------------------------------------- git
def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def git_root(path: Path | str) -> Path | None:
    """The top of the git work tree holding ``path`` (``None`` outside git)."""
    p = Path(path).resolve()
    out = _git(p if p.is_dir() else p.parent, "rev-parse", "--show-toplevel")
    return Path(out.strip()) if out else None


def project_root_of(path: Path | str) -> Path | None:
    """The DVC project holding ``path``: the nearest ancestor with a ``dvc.yaml``, else the git
    work tree (``None`` when neither)."""
    p = Path(path).resolve()
    for d in (p, *p.parents):
        if (d / "dvc.yaml").is_file():
            return d
    return git_root(p)


def _dvc_bookkeeping(root: Path) -> set[str]:
    """Paths DVC writes (git-tracked metrics/plots outputs), relative to ``root``."""
    lock = read_lock(root)
    paths = {"dvc.lock"}
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []) or []:
            paths.add(str(out.get("path", "")))
    return paths


def git_state(root: Path | str) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git work tree at ``root`` (``(None, None)`` outside git).

    ``dirty`` is true when a file differs from the commit or an untracked file is not ignored —
    except what DVC itself writes there (``dvc.lock``, ``*.dvc`` files, ``.gitignore`` entries
    for outputs, metrics and plots files tracked in git): those record *results*, not inputs.
    """
    r = Path(root)
    commit = _git(r, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(r, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if status is None:
        return commit.strip(), None
    prefix = (_git(r, "rev-parse", "--show-prefix") or "").strip()
    bookkeeping = {prefix + p for p in _dvc_bookkeeping(r)}
    changed: list[str] = []
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            i += 1  # a rename/copy is followed by its source path
        name = Path(path).name
        inside_output = any(path == b or path.startswith(b.rstrip("/") + "/") for b in bookkeeping)
        if inside_output or name == ".gitignore" or name.endswith(".dvc"):  # directory outs too
            continue
        changed.append(path)
    return commit.strip(), bool(changed)


# ----------------------------------------------------------------------------------- dvc
def read_lock(root: Path | str) -> dict[str, Any]:
    """``dvc.lock`` of the project at ``root`` (``{}`` when there is none)."""
    path = Path(root) / "dvc.lock"
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else {}


def _defined_stages(root: Path) -> set[str] | None:
    """Names of the stages ``dvc.yaml`` defines now (``None`` when DVC cannot read it):
    ``dvc.lock`` keeps the entries of renamed or removed stages, which must not be trusted."""
    try:
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            return {str(s.name) for s in repo.index.stages if getattr(s, "cmd", None)}
    except Exception:  # not a DVC project, or a dvc.yaml DVC refuses: use the lock as it is
        return None


def stage_producing(root: Path | str, path: Path | str) -> tuple[str, dict[str, Any]] | None:
    """``(stage name, its dvc.lock entry)`` of the stage of ``dvc.yaml`` whose output is
    ``path``, if any."""
    r = Path(root).resolve()
    try:
        rel = Path(path).resolve().relative_to(r).as_posix()
    except ValueError:
        return None
    defined = _defined_stages(r)
    for name, entry in read_lock(r).get("stages", {}).items():
        if defined is not None and name not in defined:
            continue
        if any(str(o.get("path")) == rel for o in entry.get("outs", []) or []):
            return name, entry
    return None


def stage_dataset(entry: dict[str, Any]) -> tuple[str, str] | None:
    """``(path, md5)`` of the dataset a locked stage consumed: its ``--data`` argument's dep."""
    try:
        argv = shlex.split(str(entry.get("cmd", "")))
    except ValueError:
        return None
    data = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--data"), None)
    if data is None:
        return None
    for dep in entry.get("deps", []) or []:
        if str(dep.get("path")) == data and dep.get("md5"):
            return data, str(dep["md5"])
    return None


def data_stage_version(root: Path | str, stage: str = "data") -> str | None:
    """The md5 DVC recorded for the output of stage ``data`` (the dataset version)."""
    entry = read_lock(root).get("stages", {}).get(stage)
    outs = (entry or {}).get("outs") or []
    return str(outs[0]["md5"]) if outs and outs[0].get("md5") else None


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_params(checkpoint_uri: str | None) -> dict[str, Any] | None:
    """The params a training run used, from its checkpoint's ``train_state.json`` (a local path
    or ``s3://``; the endpoint comes from ``AWS_ENDPOINT_URL``), or ``None`` when unreachable."""
    if not checkpoint_uri:
        return None
    parsed = urlparse(checkpoint_uri)
    try:
        if parsed.scheme == "s3":
            import boto3

            key = f"{parsed.path.strip('/')}/{TRAIN_STATE_JSON}"
            body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=key)["Body"].read()
            doc = json.loads(body)
        else:
            local = Path(parsed.path if parsed.scheme == "file" else checkpoint_uri)
            doc = json.loads((local / TRAIN_STATE_JSON).read_text(encoding="utf-8"))
    except Exception:  # unreachable storage, missing or foreign checkpoint: the caller decides
        return None
    params = doc.get("params") if isinstance(doc, dict) else None
    return params if isinstance(params, dict) else None


# -------------------------------------------------------------------------------- lineage
def gather_lineage(
    model_dir: Path | str,
    *,
    source: Literal["pipeline", "cli"],
    flow_run_id: str | None = None,
    project_root: Path | str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything known about how ``model_dir`` was produced (keys: :data:`LINEAGE_KEYS`).

    Args:
        model_dir: the registered directory (``models/NAME/model`` for a training output).
        source: who registers it (``pipeline`` or ``cli``).
        flow_run_id: the Prefect flow run registering it.
        project_root: the DVC project (default: the git work tree holding ``model_dir``).
        params: the params to record when the checkpoint's own copy is unreachable (the flow
            passes the params it ran DVC with).

    Raises:
        RegistryError: ``model_dir`` is a training output directory, or its ``run.json`` is
            unreadable.
    """
    out = training_output(model_dir)
    root = Path(project_root) if project_root is not None else project_root_of(model_dir)
    commit, dirty = git_state(root) if root is not None else (None, None)
    run = out.run if out else {}
    dataset = None
    if root is not None:
        produced = stage_producing(root, model_dir)
        dataset = stage_dataset(produced[1]) if produced else None
    recorded = checkpoint_params(run.get("checkpoint_uri"))
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "params_hash": run.get("params_hash"),
        "params": recorded if recorded is not None else (params if out else None),
        "dataset_version": dataset[1] if dataset else None,
        "dataset_path": dataset[0] if dataset else None,
        "ray_run_name": run.get("run_name"),
        "run_uri": run.get("run_uri"),
        "train_metrics": out.metrics if out else None,
        "source": source,
        "flow_run_id": flow_run_id,
    }
