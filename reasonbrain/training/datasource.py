"""Where the training data lives (a directory or an ``s3://`` prefix) and how one sample is read.

A :class:`DataLocation` is a Reason50K-layout dataset (``train.jsonl`` … and the images they name)
in a local directory or under an S3 prefix (``AWS_ENDPOINT_URL`` for an S3-compatible service; the
same credentials as checkpoint storage, :func:`~reasonbrain.training.checkpoint.s3_filesystem`).
Every worker reads what it needs itself — no path has to exist on the driver's machine only.

:func:`decode_sample` turns a record and its image bytes into the item of
:class:`~reasonbrain.data.torch_dataset.EditDataset` — the same PIL decoding and resizing
(bicubic for images, nearest + threshold for masks), so the pre-loaded and streamed paths feed the
model the same pixels.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

from reasonbrain.data.schema import (
    Record,
    check_relative_path,
    meta_mask_path,
    parse_line,
    resolve_in_root,
)
from reasonbrain.errors import ConfigError, DatasetError

IO_THREADS = 16
"""Files fetched at once by one reader (a Ray Data task, or a worker pre-loading a split)."""


@dataclass(frozen=True)
class DataLocation:
    """A dataset directory or ``s3://bucket/prefix``.

    Picklable: it travels to Ray workers and Ray Data tasks with its S3 filesystem, which holds
    the endpoint and credentials of the process that parsed the URI (those processes' own
    environment may predate them), as checkpoint storage does.
    """

    uri: str
    filesystem: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: str | Path) -> DataLocation:
        """A local path (made absolute) or an ``s3://`` URI.

        Raises:
            ConfigError: another scheme, or an S3 URI without a bucket.
        """
        text = str(value)
        parsed = urlparse(text)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ConfigError(
                    "S3 data URI has no bucket", where=text, fix="use s3://bucket/prefix"
                )
            from reasonbrain.training.checkpoint import s3_filesystem

            return cls(text.rstrip("/"), s3_filesystem())
        if parsed.scheme not in ("", "file"):
            raise ConfigError(
                f"unsupported data location scheme {parsed.scheme!r}",
                where=text,
                fix="use a dataset directory or s3://bucket/prefix",
            )
        local = Path(parsed.path if parsed.scheme == "file" else text).expanduser().resolve()
        return cls(str(local))

    @property
    def is_s3(self) -> bool:
        """Whether the data is under an S3 prefix."""
        return self.uri.startswith("s3://")

    def _fs(self) -> Any:
        if self.filesystem is None:
            from reasonbrain.training.checkpoint import s3_filesystem

            return s3_filesystem()
        return self.filesystem

    def _s3_key(self, rel: str) -> str:
        try:
            check_relative_path(rel)
        except ValueError as err:
            raise DatasetError(str(err), where=f"{self.uri}/{rel}") from None
        parsed = urlparse(self.uri)
        return f"{parsed.netloc}/{parsed.path.strip('/')}/{rel}".replace("//", "/")

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of a file named relative to the dataset root.

        Raises:
            DatasetError: the file is missing, unreadable or escapes the root.
        """
        if not self.is_s3:
            path = resolve_in_root(self.uri, rel)
            try:
                return path.read_bytes()
            except OSError as err:
                raise DatasetError(
                    f"cannot read {rel}: {err.strerror or err}",
                    where=str(path),
                    fix="run `reasonbrain data validate` on the dataset",
                ) from None
        key = self._s3_key(rel)
        try:
            with self._fs().open_input_stream(key) as fh:
                return bytes(fh.read())
        except OSError as err:
            raise DatasetError(
                f"cannot read {rel} from S3: {err}",
                where=f"s3://{key}",
                fix="check the prefix, the credentials and AWS_ENDPOINT_URL",
            ) from None

    def has_split(self, split: str) -> bool:
        """Whether ``<split>.jsonl`` exists."""
        if not self.is_s3:
            return (Path(self.uri) / f"{split}.jsonl").is_file()
        from pyarrow import fs

        try:
            info = self._fs().get_file_info(self._s3_key(f"{split}.jsonl"))
        except OSError:
            return False
        return bool(info.type == fs.FileType.File)

    def records(self, split: str, limit: int | None = None) -> list[Record]:
        """The records of a split's manifest (strict: the first malformed line raises).

        Raises:
            DatasetError: the manifest is missing; ManifestLineError: a line is malformed.
        """
        name = f"{split}.jsonl"
        text = self.read_bytes(name).decode("utf-8")
        where = Path(self.uri) / name if not self.is_s3 else Path(f"{self.uri}/{name}")
        out: list[Record] = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                out.append(parse_line(line, where, lineno))
                if limit is not None and len(out) >= limit:
                    break
        return out


# ------------------------------------------------------------------------------ decoding
def _decode(data: bytes, mode: str, size: int, resample: Image.Resampling, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            img = im.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), resample)
            return np.array(img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"cannot decode {what}: {err}", fix="run `reasonbrain data validate` on the dataset"
        ) from None


def decode_image(data: bytes, size: int) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` at ``size`` (bicubic when resized), as ``EditDataset`` loads it."""
    return _decode(data, "RGB", size, Image.Resampling.BICUBIC, "image")


def decode_mask(data: bytes, size: int) -> np.ndarray:
    """``uint8 [H, W]``: 255 where L ≥ 128 (nearest resize), as ``EditDataset`` loads it."""
    gray = _decode(data, "L", size, Image.Resampling.NEAREST, "mask")
    return np.where(gray >= 128, 255, 0).astype(np.uint8)


def read_samples(
    location: DataLocation, records: list[Record], size: int, *, io_threads: int = IO_THREADS
) -> list[dict[str, Any]]:
    """The records' decoded arrays (``uint8``) and text fields — what a stream row holds.

    The files are fetched concurrently (``io_threads``: an S3 GET waits on the network, not on
    the CPU), then decoded in order.
    """
    wanted: list[str] = []
    for r in records:
        mask_rel = meta_mask_path(r.meta)
        wanted += [r.src_image, r.tgt_image] + ([mask_rel] if mask_rel is not None else [])
    unique = list(dict.fromkeys(wanted))
    with ThreadPoolExecutor(max_workers=max(1, min(io_threads, len(unique)))) as pool:
        blobs = dict(zip(unique, pool.map(location.read_bytes, unique), strict=True))
    out = []
    for r in records:
        mask_rel = meta_mask_path(r.meta)
        mask = (
            decode_mask(blobs[mask_rel], size)
            if mask_rel is not None
            else np.zeros((size, size), dtype=np.uint8)
        )
        out.append(
            {
                "id": r.id,
                "src": decode_image(blobs[r.src_image], size),
                "tgt": decode_image(blobs[r.tgt_image], size),
                "mask": mask,
                "has_mask": mask_rel is not None,
                "instruction": r.instruction,
                "objects": json.dumps(list(r.objects)),
                "target_caption": r.target_caption or "",
                "category": r.category,
            }
        )
    return out


def _tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, copy=True))


def to_item(row: dict[str, Any]) -> dict[str, Any]:
    """A stream/pre-loaded row → the ``EditDataset`` item (float images in ``[-1, 1]``)."""
    objects = row["objects"]
    return {
        "id": str(row["id"]),
        "src": _tensor(row["src"]).permute(2, 0, 1).float().div(127.5).sub(1.0),
        "tgt": _tensor(row["tgt"]).permute(2, 0, 1).float().div(127.5).sub(1.0),
        "instruction": str(row["instruction"]),
        "objects": json.loads(objects) if isinstance(objects, str) else list(objects),
        "target_caption": str(row["target_caption"]),
        "category": str(row["category"]),
        "mask": _tensor(row["mask"])[None].float().div(255.0),
        "has_mask": bool(row["has_mask"]),
    }
