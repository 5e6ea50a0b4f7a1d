"""ReasonSynth renders at every supported size, not only the default 64 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import SynthParams
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.synth import FAMILIES, generate_dataset


@pytest.mark.parametrize("size", [32, 48, 96])
def test_every_family_renders_at_size(tmp_path: Path, size: int) -> None:
    n = 2 * len(FAMILIES)
    params = SynthParams(n_train=n, n_val=0, n_test=n, size=size, workers=1)
    out = tmp_path / "ds"
    generate_dataset(out, params, progress=False)
    recs = read_manifest(out / "test.jsonl")
    assert {r.meta["family"] for r in recs if r.meta} == {f.name for f in FAMILIES}
    for r in recs:
        assert r.meta is not None
        src = np.asarray(Image.open(out / r.src_image))
        tgt = np.asarray(Image.open(out / r.tgt_image))
        mask = np.asarray(Image.open(out / r.meta["mask"])) > 0
        assert src.shape == (size, size, 3)
        assert (src[~mask] == tgt[~mask]).all()  # untouched outside the mask
        assert (src[mask] != tgt[mask]).any()  # and an edit inside it
