"""SAM region proposals are computed once per image (memory and disk cache keyed by content)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reasonbrain.models.region_proposer import RegionCache, SamProposer


@pytest.fixture(scope="module")
def sam(paper_weights: dict[str, str]) -> Any:
    from transformers import SamModel

    return SamModel.from_pretrained(paper_weights["sam"]).eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 64, 64, generator=g) * 255).round() / 127.5 - 1


def _proposer(sam: Any, cache_dir: Path | None, **kw: Any) -> SamProposer:
    # iou_threshold 0: the random SAM's scores are low, keep its masks so there is something
    return SamProposer(
        sam, max_regions=4, points_per_side=2, iou_threshold=0.0, cache_dir=cache_dir, **kw
    )


def test_each_image_runs_sam_once_and_gets_the_same_regions(sam: Any, tmp_path: Path) -> None:
    images = _images(3)
    uncached = _proposer(sam, None, cache=False)
    want_masks, want_valid = uncached.propose(images)
    assert bool(want_valid.any())
    p = _proposer(sam, tmp_path)
    masks, valid = p.propose(images)
    assert p.sam_images == 3
    assert torch.equal(masks, want_masks) and torch.equal(valid, want_valid)
    # a batch mixing seen and new images runs SAM on the new one only, in its batch position
    mixed = torch.stack([images[2], _images(1, seed=7)[0], images[0]])
    masks2, valid2 = p.propose(mixed)
    assert p.sam_images == 4
    assert torch.equal(masks2[0], want_masks[2]) and torch.equal(masks2[2], want_masks[0])
    assert torch.equal(valid2[0], want_valid[2])


def test_disk_cache_is_shared_by_a_new_process_and_survives_torn_files(
    sam: Any, tmp_path: Path
) -> None:
    images = _images(2)
    first = _proposer(sam, tmp_path)
    want, _ = first.propose(images)
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == 2 and not list(tmp_path.rglob(".tmp-*"))
    files[0].write_bytes(b"torn")  # a crash half-way through someone else's write
    second = _proposer(sam, tmp_path)  # e.g. another Ray worker
    got, _ = second.propose(images)
    assert second.sam_images == 1 and torch.equal(got, want)


def test_other_weights_or_settings_never_read_stale_regions(sam: Any, tmp_path: Path) -> None:
    a = _proposer(sam, tmp_path).region_cache().fingerprint
    b = _proposer(sam, tmp_path, dedup_iou=0.5).region_cache().fingerprint
    other = type(sam)(sam.config)  # same architecture, other (random) weights
    c = _proposer(other, tmp_path).region_cache().fingerprint
    assert len({a, b, c}) == 3


def test_cache_packs_bits_and_evicts_least_recently_used() -> None:
    cache = RegionCache("fp", None, max_items=2)
    m = np.random.default_rng(0).random((3, 17, 5)) > 0.5
    cache.put("a", m)
    cache.put("b", m[:1])
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", m[:0])
    assert cache.get("b") is None
    got = cache.get("a")
    assert got is not None and got.dtype == bool and np.array_equal(got, m)
    empty = cache.get("c")
    assert empty is not None and empty.shape == (0, 17, 5)
