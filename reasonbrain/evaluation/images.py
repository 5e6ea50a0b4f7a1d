"""One convention for every metric: RGB float32 arrays in [0, 1], shape (H, W, 3).

Resize policy (recorded with every number): when an output's size differs from the reference's,
the output is resized to the reference size with bicubic resampling before any comparison.
Masks are L-mode images; a pixel is inside when its value is >= 128 (ReasonSynth writes 255).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

FloatImage = NDArray[np.float32]
BoolMask = NDArray[np.bool_]

#: Stated next to every pixel metric.
IMAGE_CONVENTION: dict[str, str] = {
    "range": "[0, 1] float RGB",
    "resize": "output resized to the reference size (bicubic) when sizes differ",
}


def load_rgb(path: Path | str) -> Image.Image:
    """Open an image file as an RGB PIL image (fully decoded)."""
    with Image.open(path) as im:
        return im.convert("RGB")


def to_array(image: Image.Image, size: tuple[int, int] | None = None) -> FloatImage:
    """RGB PIL image → float32 (H, W, 3) in [0, 1], resized (bicubic) to ``size`` = (W, H)."""
    im = image.convert("RGB")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def load_mask(path: Path | str, size: tuple[int, int] | None = None) -> BoolMask:
    """L-mode mask → bool (H, W); inside where value >= 128; nearest resize to ``size``."""
    with Image.open(path) as im:
        m = im.convert("L")
    if size is not None and m.size != size:
        m = m.resize(size, Image.Resampling.NEAREST)
    return np.asarray(m) >= 128


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG encoding of an image (what ``OUT/images/<id>.png`` holds)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image_digest(image: Image.Image) -> str:
    """sha256 of the RGB pixels and size: identical pictures ⇒ identical digests."""
    im = image.convert("RGB")
    h = hashlib.sha256(f"{im.size[0]}x{im.size[1]}".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling + rename (never a half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
