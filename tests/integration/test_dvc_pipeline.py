"""`dvc repro validate` of a tiny params set in a temporary git repository (data → validate).

Training and evaluation stages are exercised by their own tests; here DVC's behaviour is the
subject: stage order, parameter-level dependencies, idempotence and the default remote.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.dvc, pytest.mark.slow]


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on a timeout kill its whole process group (stage commands spawn children)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["REASONBRAIN_PYTHON"] = sys.executable  # what bin/reasonbrain (the stage commands) runs
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("dvcrepo")
    for name in ("reasonbrain", "bin"):
        shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "data" / "ingested").mkdir(parents=True)
    shutil.copy(REPO / "data/ingested/README.md", repo / "data/ingested/README.md")
    shutil.copytree(REPO / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, repo / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["synth"].update(
        {"n_train": 24, "n_val": 8, "n_test": 8, "size": 32, "workers": 1}
    )
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], repo)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], repo)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], repo)
    return repo


def test_repro_builds_validates_and_is_idempotent(dvc_repo: Path) -> None:
    first = _run(["dvc", "repro", "validate"], dvc_repo)
    assert "Running stage 'data'" in first.stdout and "Running stage 'validate'" in first.stdout
    data_dir = dvc_repo / "data" / "reasonsynth"
    assert sum(1 for _ in (data_dir / "train.jsonl").open()) == 24
    report = json.loads((dvc_repo / "reports" / "validation.json").read_text())
    assert report["ok"] is True
    lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"data", "validate"}  # train was not asked for
    data_params = lock["stages"]["data"]["params"]["params.yaml"]
    assert data_params["data.synth.n_train"] == 24
    assert "data.synth.workers" not in data_params  # output does not depend on worker count

    second = _run(["dvc", "repro", "validate"], dvc_repo)
    assert "Running stage" not in second.stdout  # nothing changed → nothing reruns

    # changing the worker count reruns nothing; a validate-only change reruns validate only
    params = yaml.safe_load((dvc_repo / "params.yaml").read_text())
    params["data"]["synth"]["workers"] = 2
    (dvc_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "Running stage" not in _run(["dvc", "repro", "validate"], dvc_repo).stdout

    params = yaml.safe_load((dvc_repo / "params.yaml").read_text())
    params["validate"]["max_instruction_chars"] = 599
    (dvc_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = _run(["dvc", "repro", "validate"], dvc_repo)
    assert "Running stage 'validate'" in third.stdout
    assert "Running stage 'data'" not in third.stdout


def test_push_and_pull_through_the_default_local_remote(dvc_repo: Path) -> None:
    _run(["dvc", "repro", "validate"], dvc_repo)
    _run(["dvc", "push", "data"], dvc_repo)
    data_dir = dvc_repo / "data" / "reasonsynth"
    before = (data_dir / "test.jsonl").read_bytes()
    shutil.rmtree(data_dir)
    shutil.rmtree(dvc_repo / ".dvc" / "cache")
    _run(["dvc", "pull", "data"], dvc_repo)
    assert (data_dir / "test.jsonl").read_bytes() == before
