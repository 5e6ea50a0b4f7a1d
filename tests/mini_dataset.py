"""A hand-built dataset in the Reason50K layout for tests that must not depend on the generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reasonbrain.data.schema import Record, write_manifest


def make_mini_dataset(root: Path, n_per_split: int = 3, size: int = 32) -> Path:
    """Write ``n_per_split`` records per split: distinct solid-colour sources, edited targets."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    cats = ["physical", "temporal", "causal", "story"]
    k = 0
    for split in ("train", "val", "test"):
        recs = []
        for i in range(n_per_split):
            src = np.full((size, size, 3), (10 * k % 256, 40, 200), dtype=np.uint8)
            tgt = src.copy()
            tgt[: size // 2, : size // 2] = (255, 255, 0)
            Image.fromarray(src).save(root / "images" / f"{split}-{i}-src.png")
            Image.fromarray(tgt).save(root / "images" / f"{split}-{i}-tgt.png")
            recs.append(
                Record(
                    id=f"{split}-{i}",
                    category=cats[k % 4],
                    src_image=f"images/{split}-{i}-src.png",
                    tgt_image=f"images/{split}-{i}-tgt.png",
                    instruction=f"What would happen if the blue box number {i} were painted?",
                    objects=["blue box"],
                    target_caption="a yellow corner" if i % 2 else None,
                )
            )
            k += 1
        write_manifest(root / f"{split}.jsonl", recs)
    return root


def reasonsynth_per_family(out: Path, train: bool = True, val: bool = True) -> Path:
    """A real ReasonSynth dataset (the generator's files) with one record per family in each
    requested split and no test split: what the benchmark scripts' tests score."""
    from reasonbrain.config import SynthParams
    from reasonbrain.data.synth import FAMILIES, generate_dataset

    n = len(FAMILIES)
    params = SynthParams(n_train=n * train, n_val=n * val, n_test=0, workers=1)
    generate_dataset(out, params, progress=False)
    return out
