from pathlib import Path

import numpy as np
import pytest
import torch

from reasonbrain.data.stats import dataset_stats
from reasonbrain.data.torch_dataset import EditDataset, collate_edits, to_pil, to_tensor
from reasonbrain.errors import DatasetError
from tests.mini_dataset import make_mini_dataset


@pytest.fixture(scope="module")
def ds_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mini_dataset(tmp_path_factory.mktemp("mini") / "ds", n_per_split=4, size=32)


@pytest.mark.parametrize("preload", [False, True])
def test_items_and_batch_contract(ds_root: Path, preload: bool) -> None:
    ds = EditDataset(ds_root, "train", image_size=32, preload=preload)
    assert len(ds) == 4
    batch = collate_edits([ds[i] for i in range(3)])
    assert batch["src"].shape == (3, 3, 32, 32) and batch["src"].dtype == torch.float32
    assert batch["src"].min() >= -1 and batch["tgt"].max() <= 1
    assert batch["id"] == ["train-0", "train-1", "train-2"]
    assert batch["objects"] == [["blue box"]] * 3
    assert batch["target_caption"] == ["", "a yellow corner", ""]
    # the edit (a yellow top-left quarter) is where the manifest says it is
    diff = (batch["tgt"] - batch["src"]).abs().sum(0).sum(0)
    assert diff[:16, :16].min() > 0 and diff[16:, 16:].max() == 0


@pytest.mark.parametrize("preload", [False, True])
def test_masks_come_from_meta_and_default_to_none(tmp_path: Path, preload: bool) -> None:
    import json

    from PIL import Image

    root = make_mini_dataset(tmp_path / "ds", n_per_split=2, size=32)
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:16, :16] = 255  # where the mini dataset's edit is
    Image.fromarray(mask).convert("RGB").save(root / "images" / "train-0-mask.png")  # 3-channel
    manifest = root / "train.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[0]["meta"] = {**(rows[0].get("meta") or {}), "mask": "images/train-0-mask.png"}
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    ds = EditDataset(root, "train", image_size=16, preload=preload)  # resized with nearest
    batch = collate_edits([ds[0], ds[1]])
    assert batch["mask"].shape == (2, 1, 16, 16) and batch["has_mask"].tolist() == [True, False]
    assert batch["mask"][0, 0, :8, :8].eq(1).all() and batch["mask"][0].sum() == 64
    assert not batch["mask"][1].any()


def test_preload_equals_lazy_loading(ds_root: Path) -> None:
    lazy = EditDataset(ds_root, "val", image_size=32)
    eager = EditDataset(ds_root, "val", image_size=32, preload=True)
    for i in range(len(lazy)):
        assert torch.equal(lazy[i]["src"], eager[i]["src"])
        assert torch.equal(lazy[i]["tgt"], eager[i]["tgt"])


def test_resize_and_limit(ds_root: Path) -> None:
    ds = EditDataset(ds_root, "test", image_size=16, limit=2)
    assert len(ds) == 2 and ds[0]["src"].shape == (3, 16, 16)


def test_tensor_pil_round_trip_is_exact(ds_root: Path) -> None:
    x = EditDataset(ds_root, "train", image_size=32)[1]["tgt"]
    assert torch.equal(to_tensor(np.array(to_pil(x))), x)


def test_missing_image_is_a_clear_error(ds_root: Path, tmp_path: Path) -> None:
    root = make_mini_dataset(tmp_path / "ds", n_per_split=1)
    (root / "images" / "train-0-src.png").unlink()
    with pytest.raises(DatasetError, match="cannot read image"):
        EditDataset(root, "train", image_size=32)[0]


def test_stats_counts(ds_root: Path) -> None:
    s = dataset_stats(ds_root)
    assert s["total"] == 12
    assert s["splits"]["train"]["records"] == 4
    assert sum(s["splits"]["test"]["categories"].values()) == 4
    assert s["image_sizes"] == {"32x32": 24}
    assert s["objects_per_record"]["max"] == 1
