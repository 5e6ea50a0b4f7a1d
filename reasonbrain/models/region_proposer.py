"""Region proposers for the FRCE region branch (DESIGN §4.2; paper: SAM "segment everything").

A proposer maps source images to at most ``K`` binary masks per image:
``propose(images [B, 3, H, W] in [-1, 1]) -> (masks [B, K, H, W] float, valid [B, K] bool)``.
Masks are sorted by area (largest first); missing slots are zero and ``valid`` False. An image may
have zero regions — everything downstream must stay finite then.

- :class:`ColorComponentsProposer` (tiny preset): colour quantisation + connected components
  (``scipy.ndimage.label``); the dominant colour is taken as background. Fast (about 1 ms per
  64-px image), deterministic, no weights — right for flat-shaded synthetic scenes.
- :class:`SamProposer` (paper preset): transformers' ``SamModel`` prompted with a regular grid of
  points; the best of SAM's three masks per point is kept when its predicted IoU is high enough,
  then masks are de-duplicated and the ``K`` largest kept. SAM-H costs far more than the rest of
  a training step's image path, and training revisits each image every epoch, so its proposals
  are computed **once per image**: :class:`RegionCache` keys them by the image's 8-bit content
  and the proposer's fingerprint (weights sample, config, settings), in memory and, when a
  directory is given (``<REASONBRAIN_HOME>/cache/regions`` in the paper preset), on disk — shared
  by every worker and run on the machine, written atomically.

Proposals are non-differentiable preprocessing, computed under ``torch.no_grad``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn


class RegionProposer(Protocol):
    """What the region branch needs from a proposer."""

    max_regions: int

    def propose(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``masks [B, K, H, W]`` (float 0/1) and ``valid [B, K]`` (bool)."""
        ...


def _pack(
    per_image: list[list[np.ndarray]], k: int, h: int, w: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(len(per_image), k, h, w, device=device)
    valid = torch.zeros(len(per_image), k, dtype=torch.bool, device=device)
    for b, regions in enumerate(per_image):
        for j, m in enumerate(regions[:k]):
            masks[b, j] = torch.from_numpy(m.astype(np.float32))
            valid[b, j] = True
    return masks, valid


class ColorComponentsProposer:
    """Colour-quantised connected components as object regions.

    Args:
        max_regions: K, the most regions kept per image.
        levels: quantisation levels per RGB channel.
        min_area: smallest kept region as a fraction of the image area.
    """

    def __init__(self, max_regions: int, levels: int = 4, min_area: float = 0.004) -> None:
        self.max_regions = max_regions
        self.levels = levels
        self.min_area = min_area

    def regions(self, image: np.ndarray) -> list[np.ndarray]:
        """Masks (bool ``[H, W]``) for one ``uint8 [H, W, 3]`` image, largest first."""
        from scipy import ndimage

        q = (image.astype(np.int32) * self.levels) // 256
        code = (q[..., 0] * self.levels + q[..., 1]) * self.levels + q[..., 2]
        values, counts = np.unique(code, return_counts=True)
        background = values[np.argmax(counts)]
        min_px = max(1, round(self.min_area * code.size))
        found: list[np.ndarray] = []
        for v in values[counts >= min_px]:  # a rarer colour cannot hold a big-enough region
            if v == background:
                continue
            labels, n = ndimage.label(code == v)
            if n == 0:
                continue
            sizes = np.bincount(labels.ravel())[1:]
            for lab in np.nonzero(sizes >= min_px)[0]:
                found.append(labels == lab + 1)
        found.sort(key=lambda m: -int(m.sum()))
        return found[: self.max_regions]

    @torch.no_grad()
    def propose(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """See :class:`RegionProposer`."""
        arr = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
        arr_np = arr.permute(0, 2, 3, 1).cpu().numpy()
        per_image = [self.regions(a) for a in arr_np]
        _, _, h, w = images.shape
        return _pack(per_image, self.max_regions, h, w, images.device)


def image_key(image: torch.Tensor) -> str:
    """A content key for one ``[3, H, W]`` image in ``[-1, 1]``: sha256 of its 8-bit pixels."""
    arr = image.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().cpu().numpy()
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


class RegionCache:
    """Region masks per image content, in memory (LRU) and optionally on disk.

    Masks are stored bit-packed (``np.packbits``), so a 256-px image with 16 regions costs 128 KiB.
    The disk layout is ``<directory>/<fingerprint>/<key[:2]>/<key>.npz``; a different proposer
    (other weights, config or settings) has another fingerprint and never reads stale entries.

    Args:
        fingerprint: identifies the proposer that computed the masks.
        directory: on-disk cache root (``None`` = memory only).
        max_items: entries kept in memory.
    """

    def __init__(self, fingerprint: str, directory: Path | None = None, max_items: int = 1024):
        self.fingerprint = fingerprint
        self.directory = None if directory is None else Path(directory) / fingerprint
        self.max_items = max_items
        self._memory: OrderedDict[str, tuple[np.ndarray, tuple[int, ...]]] = OrderedDict()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str) -> np.ndarray | None:
        """Masks ``[n, H, W]`` bool for ``key``, or None when not cached."""
        hit = self._memory.get(key)
        if hit is None and self.directory is not None:
            path = self._path(key)
            try:
                with np.load(path) as z:
                    hit = (z["bits"], tuple(int(v) for v in z["shape"]))
            except (OSError, KeyError, ValueError):  # absent, or a torn/foreign file: recompute
                hit = None
            if hit is not None:
                self._remember(key, hit)
        if hit is None:
            return None
        self._memory.move_to_end(key)
        bits, shape = hit
        n = int(np.prod(shape))
        return np.unpackbits(bits, count=n).reshape(shape).astype(bool)

    def put(self, key: str, masks: np.ndarray) -> None:
        """Store masks ``[n, H, W]`` (bool) for ``key`` (atomically on disk)."""
        entry = (np.packbits(masks.astype(bool).ravel()), tuple(int(v) for v in masks.shape))
        self._remember(key, entry)
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, bits=entry[0], shape=np.asarray(entry[1]))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _remember(self, key: str, entry: tuple[np.ndarray, tuple[int, ...]]) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)


def sam_fingerprint(sam: Any, settings: dict[str, Any]) -> str:
    """A short id of a SAM model + proposer settings: config, parameter count and a sample of
    every parameter's values (cheap even for SAM-H, and different for different weights)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(sam.config.to_json_string(use_diff=False).encode())
    for name, p in sam.named_parameters():
        h.update(name.encode())
        flat = p.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 16)][:16]
        h.update(sample.float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class SamProposer(nn.Module):
    """SAM prompted with a grid of points (the paper's region source).

    Args:
        sam: a ``transformers.SamModel`` (pretrained in the paper preset; frozen).
        max_regions: K.
        points_per_side: the point grid is ``points_per_side``².
        iou_threshold: minimum predicted IoU for a mask to be kept.
        dedup_iou: masks overlapping a kept mask more than this are dropped.
        cache_dir: on-disk region cache (see :class:`RegionCache`); memory-only when None.
        cache: False turns the cache off (every call runs SAM).
    """

    def __init__(
        self,
        sam: Any,
        max_regions: int,
        points_per_side: int = 8,
        iou_threshold: float = 0.8,
        dedup_iou: float = 0.7,
        cache_dir: Path | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__()
        self.sam = sam
        self.max_regions = max_regions
        self.points_per_side = points_per_side
        self.iou_threshold = iou_threshold
        self.dedup_iou = dedup_iou
        self.cache_dir = cache_dir
        self.use_cache = cache
        self._cache: RegionCache | None = None
        #: SAM forward passes run so far (how many images missed the cache)
        self.sam_images = 0

    def region_cache(self) -> RegionCache:
        """The cache, created on first use (the fingerprint reads the loaded weights)."""
        if self._cache is None:
            settings = {
                "k": self.max_regions,
                "points": self.points_per_side,
                "iou": self.iou_threshold,
                "dedup": self.dedup_iou,
                "version": 1,
            }
            self._cache = RegionCache(sam_fingerprint(self.sam, settings), self.cache_dir)
        return self._cache

    @torch.no_grad()
    def propose(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """See :class:`RegionProposer`; SAM runs only on images not seen before."""
        _, _, h, w = images.shape
        if not self.use_cache:
            return _pack(self.regions(images), self.max_regions, h, w, images.device)
        cache = self.region_cache()
        keys = [f"{image_key(im)}-{h}x{w}" for im in images]
        per_image: list[list[np.ndarray] | None] = []
        for key in keys:
            hit = cache.get(key)
            per_image.append(None if hit is None else list(hit))
        todo = [i for i, r in enumerate(per_image) if r is None]
        if todo:
            fresh = self.regions(images[todo])
            for i, regions in zip(todo, fresh, strict=True):
                stacked = np.stack(regions) if regions else np.zeros((0, h, w), dtype=bool)
                cache.put(keys[i], stacked)
                per_image[i] = regions
        done = [r if r is not None else [] for r in per_image]
        return _pack(done, self.max_regions, h, w, images.device)

    @torch.no_grad()
    def regions(self, images: torch.Tensor) -> list[list[np.ndarray]]:
        """Run SAM: masks (bool ``[H, W]``) per image, largest first (no cache)."""
        import torch.nn.functional as F

        b, _, h, w = images.shape
        self.sam_images += b
        size = int(self.sam.config.vision_config.image_size)
        x = ((images.float() + 1) / 2).clamp(0, 1)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        mean = x.new_tensor([0.485, 0.456, 0.406])[None, :, None, None]
        std = x.new_tensor([0.229, 0.224, 0.225])[None, :, None, None]
        pixels = ((x - mean) / std).to(next(self.sam.parameters()).dtype)
        n = self.points_per_side
        coords = (torch.arange(n, device=images.device, dtype=torch.float32) + 0.5) * size / n
        gy, gx = torch.meshgrid(coords, coords, indexing="ij")
        points = torch.stack([gx.ravel(), gy.ravel()], -1)  # [n², 2] (x, y)
        # [B, n² prompts, 1 point each, 2]
        input_points = points[None, :, None, :].expand(b, -1, -1, -1).to(pixels.dtype)
        out = self.sam(pixel_values=pixels, input_points=input_points, multimask_output=True)
        # pred_masks [B, n², 3, h', w'], iou_scores [B, n², 3]
        best = out.iou_scores.argmax(-1)  # [B, n²]
        scores = out.iou_scores.gather(-1, best[..., None])[..., 0]
        low = out.pred_masks.gather(
            2, best[..., None, None, None].expand(-1, -1, 1, *out.pred_masks.shape[-2:])
        )[:, :, 0]
        masks = F.interpolate(low.float(), size=(h, w), mode="bilinear") > 0
        per_image: list[list[np.ndarray]] = []
        for i in range(b):
            keep: list[torch.Tensor] = []
            order = torch.argsort(masks[i].flatten(1).sum(-1), descending=True)
            for j in order.tolist():
                m = masks[i, j]
                if scores[i, j] < self.iou_threshold or not m.any():
                    continue
                if any((m & k).sum() / (m | k).sum() > self.dedup_iou for k in keep):
                    continue
                keep.append(m)
                if len(keep) == self.max_regions:
                    break
            per_image.append([k.cpu().numpy() for k in keep])
        return per_image
