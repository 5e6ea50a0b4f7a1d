"""Imported benchmarks satisfy the dataset contract that `data validate` enforces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import ValidateParams
from reasonbrain.data.importers import import_dataset
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.validation import validate_dataset
from tests.data.test_importers_fixtures import make_magicbrush, make_reason_edit


@pytest.mark.parametrize(
    ("fmt", "make"), [("magicbrush", make_magicbrush), ("reason_edit", make_reason_edit)]
)
def test_imported_benchmark_validates(tmp_path: Path, fmt: str, make: object) -> None:
    src = make(tmp_path / "src")  # type: ignore[operator]
    summary = import_dataset(fmt, src, tmp_path / "out")
    params = ValidateParams(categories=sorted(summary.categories), min_image_size=4)
    report = validate_dataset(
        tmp_path / "out", params, report_path=None, docs_dir=None, quarantine_dir=None
    )
    failed = [
        c for c in report.to_dict()["checks"] if not c["passed"] and c["severity"] == "blocking"
    ]
    assert report.ok, failed
    # masks are normalised to the contract: single-channel PNG, 255 inside the edit region
    for rec in read_manifest(tmp_path / "out" / "test.jsonl"):
        assert rec.meta is not None
        with Image.open(tmp_path / "out" / rec.meta["mask"]) as m:
            assert m.format == "PNG" and m.mode == "L"
            assert set(np.unique(np.asarray(m)).tolist()) <= {0, 255}


def test_transparent_mask_region_becomes_inside(tmp_path: Path) -> None:
    src = make_magicbrush(tmp_path / "src")
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:4, :4, 3] = 0  # DALL·E-2 style: the transparent corner is the region to edit
    Image.fromarray(rgba, mode="RGBA").save(src / "test/images/a1/a1-mask1.png")
    import_dataset("magicbrush", src, tmp_path / "out")
    rec = next(r for r in read_manifest(tmp_path / "out" / "test.jsonl") if r.id.endswith("a1-t1"))
    assert rec.meta is not None
    mask = np.asarray(Image.open(tmp_path / "out" / rec.meta["mask"]))
    assert (mask[:4, :4] == 255).all() and mask.sum() == 16 * 255
