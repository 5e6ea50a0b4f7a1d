"""Ray Data streams the training split: the same samples, in the same order, as the pre-loaded
path — from a directory and from an S3 prefix (moto), from the start or from a resume step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from reasonbrain.training.data import BatchSource, PreloadedBatches, PreloadedSplit
from reasonbrain.training.datasource import DataLocation
from reasonbrain.training.stream import StreamedBatches, StreamPlan, build_rank_dataset
from tests.mini_dataset import make_mini_dataset

pytestmark = [pytest.mark.ray]

BATCH, ACCUM, WORLD, STEPS = 8, 2, 2, 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_mini_dataset(tmp_path_factory.mktemp("stream-data"), n_per_split=6, size=24)
    # one record with an affected-region mask (meta.mask), the rest without
    import json

    from PIL import Image

    Image.new("L", (24, 24), 255).save(root / "images" / "mask0.png")
    lines = (root / "train.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["meta"] = {"mask": "images/mask0.png"}
    lines[0] = json.dumps(first)
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def s3_data(data_dir: Path, moto_endpoint: str) -> Iterator[str]:
    """The same dataset under ``s3://rb-stream/data`` (credentials in the environment)."""
    import boto3

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDREASONBRAINTEST")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "stream-secret")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", endpoint_url=moto_endpoint)
        s3.create_bucket(Bucket="rb-stream")
        for p in sorted(data_dir.rglob("*")):
            if p.is_file():
                s3.upload_file(str(p), "rb-stream", f"data/{p.relative_to(data_dir).as_posix()}")
        yield "s3://rb-stream/data"


def _plan(location: DataLocation) -> StreamPlan:
    return StreamPlan(
        location=location,
        image_size=16,  # decoded and resized (24 → 16 px) inside Ray Data
        seed=7,
        batch_size=BATCH,
        world_size=WORLD,
        accum=ACCUM,
        max_steps=STEPS,
        data_cpus=0.5,
    )


def _preloaded(location: DataLocation, rank: int) -> PreloadedBatches:
    split = PreloadedSplit(location, "train", 16)
    return PreloadedBatches(
        BatchSource(split), seed=7, batch_size=BATCH, rank=rank, world=WORLD, accum=ACCUM
    )


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
        else:
            assert value == b[key], key


def _streamed(location: DataLocation, rank: int, start: int) -> StreamedBatches:
    ds = build_rank_dataset(_plan(location), rank, start)
    return StreamedBatches(ds.iterator(), micro=BATCH // (WORLD * ACCUM), accum=ACCUM, n_records=6)


def test_streamed_batches_equal_preloaded_batches(ray_session: Any, data_dir: Path) -> None:
    location = DataLocation.parse(data_dir)
    masked = 0
    for rank in range(WORLD):
        stream, ref = _streamed(location, rank, 0), _preloaded(location, rank)
        for step in range(STEPS):
            got, want = stream.step_batches(step), ref.step_batches(step)
            assert len(got) == ACCUM
            for g, w in zip(got, want, strict=True):
                _same(g, w)
                masked += int(g["has_mask"].sum())
    assert masked > 0  # the record with a mask was streamed (and its mask compared)


def test_resumed_stream_starts_at_the_checkpoint_step(ray_session: Any, data_dir: Path) -> None:
    location = DataLocation.parse(data_dir)
    stream, ref = _streamed(location, 1, 2), _preloaded(location, 1)
    for g, w in zip(stream.step_batches(2), ref.step_batches(2), strict=True):
        _same(g, w)
    with pytest.raises(RuntimeError, match="ended"):
        stream.step_batches(3)


@pytest.mark.s3
def test_stream_from_s3_equals_the_local_directory(
    ray_session: Any, data_dir: Path, s3_data: str
) -> None:
    remote, local = DataLocation.parse(s3_data), DataLocation.parse(data_dir)
    assert remote.has_split("train") and not remote.has_split("nope")
    assert [r.id for r in remote.records("train")] == [r.id for r in local.records("train")]
    stream, ref = _streamed(remote, 0, 0), _preloaded(local, 0)
    for step in range(STEPS):
        for g, w in zip(stream.step_batches(step), ref.step_batches(step), strict=True):
            _same(g, w)


def test_preloaded_split_equals_edit_dataset(data_dir: Path) -> None:
    from reasonbrain.data.torch_dataset import EditDataset

    ours = PreloadedSplit(DataLocation.parse(data_dir), "train", 16)
    theirs = EditDataset(data_dir, "train", 16, preload=True)
    assert len(ours) == len(theirs) == 6
    for i in range(len(ours)):
        _same(ours[i], theirs[i])
