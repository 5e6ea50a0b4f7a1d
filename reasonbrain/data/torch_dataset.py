"""A torch ``Dataset`` over a Reason50K-layout manifest, and the batch ``collate`` for it.

Images are loaded as RGB, resized to ``image_size`` (bicubic when the size differs) and scaled to
``[-1, 1]`` (the range diffusion models use). With ``preload=True`` every image is decoded once into
a shared ``uint8`` tensor, so training never waits on PNG decoding (a 6k-sample 64-px set is
~150 MB).

Batch contract (what models and training code receive from :func:`collate_edits`)::

    {
      "id":             list[str]                 # B record ids
      "src":            FloatTensor[B, 3, H, W]   # source images in [-1, 1]
      "tgt":            FloatTensor[B, 3, H, W]   # target images in [-1, 1]
      "instruction":    list[str]
      "objects":        list[list[str]]           # object phrases (may be empty lists)
      "target_caption": list[str]                 # "" when the record has none
      "category":       list[str]
      "mask":           FloatTensor[B, 1, H, W]   # affected region in [0, 1] (meta.mask), 0 if none
      "has_mask":       BoolTensor[B]             # whether the record has a mask
      # with a processor (collate_edits(items, processor=model.processor)), its tensors too:
      # input_ids, attention_mask, target_mask, text_input_ids, object_input_ids, … — see
      # reasonbrain.models.processor. ``objects`` is the record's gold field: models never read
      # it (phrases are extracted from the instruction, the same way at inference).
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from reasonbrain.data.schema import (
    Record,
    manifest_path,
    meta_mask_path,
    read_manifest,
    resolve_in_root,
)
from reasonbrain.errors import DatasetError


def _decode(path: Path, mode: str, size: int, resample: Image.Resampling, what: str) -> np.ndarray:
    """Decode ``path`` in PIL ``mode`` at ``size`` × ``size`` as a writable ``uint8`` array.

    Raises:
        DatasetError: the file is missing or does not decode as an image.
    """
    try:
        with Image.open(path) as im:
            img = im.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), resample)
            return np.array(img, dtype=np.uint8)  # a writable copy for torch.from_numpy
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"cannot read {what}: {err}",
            where=str(path),
            fix="run `reasonbrain data validate` on the dataset",
        ) from None


def load_image(path: Path, image_size: int) -> np.ndarray:
    """Decode ``path`` as RGB ``uint8 [H, W, 3]`` at ``image_size`` (bicubic when resized)."""
    return _decode(path, "RGB", image_size, Image.Resampling.BICUBIC, "image")


def load_mask(path: Path, image_size: int) -> np.ndarray:
    """Decode a mask as ``uint8 [H, W]``, 255 where the L value is >= 128 (nearest resize)."""
    gray = _decode(path, "L", image_size, Image.Resampling.NEAREST, "mask")
    return np.where(gray >= 128, 255, 0).astype(np.uint8)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``float32 [3, H, W]`` in ``[-1, 1]``."""
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1.0)


def to_pil(img: torch.Tensor) -> Image.Image:
    """``float [3, H, W]`` in ``[-1, 1]`` → PIL RGB image (clamped, rounded)."""
    arr = img.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), mode="RGB")


class EditDataset(Dataset[dict[str, Any]]):
    """One split of a dataset directory.

    Args:
        root: dataset directory (``train.jsonl`` … beside ``images/``).
        split: ``train``, ``val`` or ``test``.
        image_size: side length images are resized to.
        preload: decode every image once into memory (recommended for training on CPU).
        limit: keep only the first ``limit`` records (``None`` = all).
    """

    def __init__(
        self,
        root: Path | str,
        split: str,
        image_size: int,
        *,
        preload: bool = False,
        limit: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.image_size = image_size
        self.records: list[Record] = read_manifest(manifest_path(self.root, split))
        if limit is not None:
            self.records = self.records[:limit]
        self._src: torch.Tensor | None = None
        self._tgt: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        if preload:
            self._src = self._load_all("src_image")
            self._tgt = self._load_all("tgt_image")
            self._mask = (
                torch.stack([self._load_mask(r) for r in self.records]) if self.records else None
            )

    def _load_all(self, field: str) -> torch.Tensor:
        arrs = [self._load(getattr(r, field)) for r in self.records]
        if not arrs:
            return torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()

    def _load(self, rel: str) -> np.ndarray:
        return load_image(resolve_in_root(self.root, rel), self.image_size)

    def _load_mask(self, record: Record) -> torch.Tensor:
        """``uint8 [1, H, W]`` (zeros when the record has no mask)."""
        rel = meta_mask_path(record.meta)
        if rel is None:
            return torch.zeros(1, self.image_size, self.image_size, dtype=torch.uint8)
        return torch.from_numpy(load_mask(resolve_in_root(self.root, rel), self.image_size))[None]

    def __len__(self) -> int:
        return len(self.records)

    def _image(self, cache: torch.Tensor | None, idx: int, rel: str) -> torch.Tensor:
        if cache is not None:
            return cache[idx].float().div(127.5).sub(1.0)
        return to_tensor(self._load(rel))

    def __getitem__(self, idx: int) -> dict[str, Any]:
        r = self.records[idx]
        mask = self._mask[idx] if self._mask is not None else self._load_mask(r)
        return {
            "id": r.id,
            "src": self._image(self._src, idx, r.src_image),
            "tgt": self._image(self._tgt, idx, r.tgt_image),
            "instruction": r.instruction,
            "objects": list(r.objects),
            "target_caption": r.target_caption or "",
            "category": r.category,
            "mask": mask.float().div(255.0),
            "has_mask": meta_mask_path(r.meta) is not None,
        }


class TextProcessor(Protocol):
    """What :func:`collate_edits` needs from a model's processor
    (``reasonbrain.models.processor.ReasonBrainProcessor``; ``data`` never imports ``models``)."""

    def collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Token/phrase tensors for the items' ``instruction`` and ``target_caption``."""
        ...


def collate_edits(
    items: list[dict[str, Any]], processor: TextProcessor | None = None
) -> dict[str, Any]:
    """Stack images, keep text fields as lists and, with a model's ``processor``, add the token
    tensors its ``forward`` reads (see the module docstring for the contract)."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    batch = {
        "id": [it["id"] for it in items],
        "src": torch.stack([it["src"] for it in items]),
        "tgt": torch.stack([it["tgt"] for it in items]),
        "instruction": [it["instruction"] for it in items],
        "objects": [it["objects"] for it in items],
        "target_caption": [it["target_caption"] for it in items],
        "category": [it["category"] for it in items],
        "mask": torch.stack([it["mask"] for it in items]),
        "has_mask": torch.tensor([bool(it["has_mask"]) for it in items]),
    }
    if processor is not None:
        batch.update(processor.collate_text(items))
    return batch
