"""Per-row facts: one DataFrame row per manifest line, one column per thing a check judges.

Facts are computed once (images probed per file, see :mod:`.images`); the Great Expectations
suite (:mod:`.suite`) then judges the columns. A column is null where a fact does not apply
(the line did not parse, the image did not decode …), and GX's column expectations ignore nulls,
so a broken row fails exactly the check that describes its fault and not every later one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from reasonbrain.config import ValidateParams
from reasonbrain.data.schema import Record
from reasonbrain.data.validation.images import ImageFacts
from reasonbrain.data.validation.manifests import ManifestRow

#: A mask is single-channel by contract (binary or 8-bit grey), whatever ``image_modes`` says.
MASK_MODES: tuple[str, ...] = ("1", "L")


def _target_differs(
    rec: Record | None, src: ImageFacts | None, tgt: ImageFacts | None
) -> bool | None:
    """Whether an edit happened; ``True`` when the record declares it has no target.

    Imported benchmarks without ground truth (Emu Edit, Reason-Edit) store the source as
    ``tgt_image`` on purpose and say so with ``meta.has_target = false``.
    """
    if rec is not None and (rec.meta or {}).get("has_target") is False:
        return True
    return (src.pixels_sha256 != tgt.pixels_sha256) if src and tgt else None


_STRING_COLUMNS = (
    "split",
    "where",
    "id",
    "parse_error",
    "category",
    "path_error",
    "missing_file",
    "decode_error",
    "src_mode",
    "tgt_mode",
    "aux_mode_error",
    "aux_size_mismatch",
    "src_sha256",
    "tgt_sha256",
    "duplicate_of",
    "src_leaks_from",
    "unmentioned_objects",
)
_INT_COLUMNS = (
    "line",
    "instruction_chars",
    "n_objects",
    "n_images",
    "min_side",
    "max_side",
    "src_width",
    "src_height",
    "tgt_width",
    "tgt_height",
)
_BOOL_COLUMNS = ("tgt_differs",)
#: Column order of the facts table.
COLUMNS: tuple[str, ...] = (
    "split",
    "line",
    "where",
    "id",
    "parse_error",
    "category",
    "instruction_chars",
    "n_objects",
    "n_images",
    "path_error",
    "missing_file",
    "decode_error",
    "src_mode",
    "tgt_mode",
    "aux_mode_error",
    "min_side",
    "max_side",
    "src_width",
    "src_height",
    "tgt_width",
    "tgt_height",
    "aux_size_mismatch",
    "src_sha256",
    "tgt_sha256",
    "tgt_differs",
    "duplicate_of",
    "src_leaks_from",
    "unmentioned_objects",
)
assert set(_STRING_COLUMNS) | set(_INT_COLUMNS) | set(_BOOL_COLUMNS) == set(COLUMNS)


@lru_cache(maxsize=4096)
def _word_pattern(phrase: str) -> re.Pattern[str]:
    # whole words, case-insensitive, with an optional plural ending ("candle" matches "candles")
    return re.compile(rf"\b{re.escape(phrase)}(?:e?s)?\b", re.IGNORECASE)


def head_nouns(obj: str) -> list[str]:
    """Words that may stand for an object phrase: the whole phrase and its head noun.

    The head noun is the last word (``"red candle"`` → ``candle``) or, for ``X of Y`` phrases,
    the word before ``of`` (``"glass of water"`` → ``glass``).
    """
    phrase = " ".join(obj.lower().split())
    words = re.findall(r"[\w'-]+", phrase)
    out = [phrase] if phrase else []
    if words:
        out.append(words[-1])
    if " of " in f" {phrase} ":
        before = phrase.split(" of ", 1)[0].split()
        if before:
            out.append(before[-1])
    return list(dict.fromkeys(out))


def unmentioned_objects(instruction: str, objects: Iterable[str]) -> list[str]:
    """The objects that the instruction names neither in full nor by head noun."""
    missing = []
    for obj in objects:
        names = head_nouns(obj)
        if names and not any(_word_pattern(n).search(instruction) for n in names):
            missing.append(obj)
    return missing


def _join(parts: list[str]) -> str | None:
    return "; ".join(parts) if parts else None


def build_facts(
    rows: list[ManifestRow], images: Mapping[str, ImageFacts], params: ValidateParams
) -> pd.DataFrame:
    """Compute the facts table (one row per manifest line, in manifest order).

    Args:
        rows: the manifest rows (:func:`.manifests.read_rows`).
        images: the probed image files by manifest path (:func:`.images.probe_images`).
        params: the validation rules (only ``image_modes`` is used here: for the
            variable-length mask/counterfactual images, which are summarised into one column).
    """
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    allowed_modes = set(params.image_modes)
    first_id: dict[str, str] = {}
    train_src: dict[str, str] = {}
    for row in rows:
        rec = row.record
        facts = {role: images[rel] for role, rel in row.refs}
        decoded = {role: f for role, f in facts.items() if f.mode is not None}
        src, tgt = decoded.get("src_image"), decoded.get("tgt_image")
        aux = {role: f for role, f in decoded.items() if role not in ("src_image", "tgt_image")}

        path_errors = list(row.ref_errors)
        path_errors += [f"{role}: {f.path_error}" for role, f in facts.items() if f.path_error]
        mode_errors = [
            f"{role} has mode {f.mode}"
            for role, f in aux.items()
            if f.mode not in (MASK_MODES if role == "meta.mask" else allowed_modes)
        ]
        size_mismatch = [
            f"{role} is {f.width}x{f.height}, src_image is {src.width}x{src.height}"
            for role, f in aux.items()
            if src is not None and (f.width, f.height) != (src.width, src.height)
        ]
        sides = [
            (min(f.width, f.height), max(f.width, f.height))
            for f in decoded.values()
            if f.width is not None and f.height is not None
        ]

        duplicate_of = None
        leaks_from = None
        missing: list[str] = []
        if rec is not None:
            duplicate_of = first_id.setdefault(rec.id, row.where)
            duplicate_of = None if duplicate_of == row.where else duplicate_of
            if src is not None and src.pixels_sha256:
                if row.split == "train":
                    train_src.setdefault(src.pixels_sha256, row.where)
                elif row.split == "test":
                    leaks_from = train_src.get(src.pixels_sha256)
            missing = unmentioned_objects(rec.instruction, rec.objects)

        values: dict[str, Any] = {
            "split": row.split,
            "line": row.line,
            "where": row.where,
            "id": row.raw_id,
            "parse_error": row.parse_error,
            "category": rec.category if rec else None,
            "instruction_chars": len(rec.instruction.strip()) if rec else None,
            "n_objects": len(rec.objects) if rec else None,
            "n_images": len(row.refs) if rec else None,
            "path_error": _join(path_errors),
            "missing_file": _join([f.file_error for f in facts.values() if f.file_error]),
            "decode_error": _join([f.decode_error for f in facts.values() if f.decode_error]),
            "src_mode": src.mode if src else None,
            "tgt_mode": tgt.mode if tgt else None,
            "aux_mode_error": _join(mode_errors),
            "min_side": min(s[0] for s in sides) if sides else None,
            "max_side": max(s[1] for s in sides) if sides else None,
            "src_width": src.width if src else None,
            "src_height": src.height if src else None,
            "tgt_width": tgt.width if tgt else None,
            "tgt_height": tgt.height if tgt else None,
            "aux_size_mismatch": _join(size_mismatch),
            "src_sha256": src.sha256 if src else None,
            "tgt_sha256": tgt.sha256 if tgt else None,
            "tgt_differs": _target_differs(rec, src, tgt),
            "duplicate_of": duplicate_of,
            "src_leaks_from": leaks_from,
            "unmentioned_objects": ", ".join(missing) if missing else None,
        }
        for c in COLUMNS:
            cols[c].append(values[c])

    data: dict[str, Any] = {}
    for c in COLUMNS:
        if c in _STRING_COLUMNS:
            data[c] = pd.array(cols[c], dtype="string")
        elif c in _INT_COLUMNS:
            data[c] = pd.array(cols[c], dtype="Int64")
        else:
            data[c] = pd.array(cols[c], dtype="boolean")
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
