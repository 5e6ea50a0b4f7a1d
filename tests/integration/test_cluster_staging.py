"""The RayCluster's data-staging init container, run for real against the S3 endpoint (moto).

Until training streams from S3, every Ray pod copies the dataset from ``DATASET_URI`` into a local
volume before Ray starts (``infra/k8s/raycluster.yaml``). Its script is taken from the manifest
as is and run here with the same environment variables the pod gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.mini_dataset import make_mini_dataset

pytestmark = [pytest.mark.s3, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _init_containers() -> list[dict[str, Any]]:
    rc = yaml.safe_load((ROOT / "infra" / "k8s" / "raycluster.yaml").read_text())["spec"]
    pods = [rc["headGroupSpec"]["template"]["spec"]]
    pods += [g["template"]["spec"] for g in rc["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["initContainers"] if c["name"] == "stage-data"]


def _stage(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    container = _init_containers()[0]
    assert container["command"] == ["python", "-c"]
    return subprocess.run(
        [sys.executable, "-c", container["args"][0]], env=env, capture_output=True, text=True
    )


def test_every_ray_pod_stages_the_data_the_same_way() -> None:
    containers = _init_containers()
    assert len(containers) == 2  # the head and the GPU worker group
    assert all(c == containers[0] for c in containers)


def test_staging_copies_the_dataset_atomically(s3_uri: str, s3_env: str, tmp_path: Path) -> None:
    import boto3

    src = make_mini_dataset(tmp_path / "src", n_per_split=2)
    bucket = s3_uri.removeprefix("s3://").split("/")[0]
    s3 = boto3.client("s3", endpoint_url=s3_env)
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    for rel in files:
        s3.upload_file(str(src / rel), bucket, f"datasets/mini/{rel}")
    dest = tmp_path / "data" / "dataset"
    dest.parent.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATASET_URI": f"s3://{bucket}/datasets/mini/",
        "DATASET_DIR": str(dest),
    }
    res = _stage(env)
    assert res.returncode == 0, res.stderr
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == files
    assert all((dest / f).read_bytes() == (src / f).read_bytes() for f in files)
    assert not Path(f"{dest}.partial").exists()

    # a prefix that is not a dataset: one clear line, exit != 0, the staged copy left as it was
    s3.put_object(Bucket=bucket, Key="datasets/not-a-dataset/readme.txt", Body=b"hello")
    res = _stage({**env, "DATASET_URI": f"s3://{bucket}/datasets/not-a-dataset"})
    assert res.returncode != 0
    assert "no train.jsonl under" in res.stderr.strip().splitlines()[-1]
    assert (dest / "train.jsonl").is_file()
