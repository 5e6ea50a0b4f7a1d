"""Which references each benchmark compares an output with (its own protocol).

A record's protocol comes from ``meta.protocol`` (or ``meta.benchmark``) when an importer set it,
else from its shape: a record whose ``meta`` is valid :class:`~reasonbrain.data.schema.SynthMeta`
with counterfactuals is ``reasonsynth``; anything else is ``reference``.

- ``reasonsynth``: pixel, CLIP-I, DINO and LPIPS vs the target; CLIP-T vs ``target_caption``;
  plus the verifier (reasoning accuracy, edit error, preservation).
- ``reference`` (Reason50K, MagicBrush single-turn, InstructPix2Pix-style): as above, without
  the verifier.
- ``emu_edit`` (no target): pixel, CLIP-I and DINO vs the **input** image; CLIP-T vs
  ``meta.output_caption``; CLIP-dir with ``meta.input_caption``.
- ``reason_edit`` (no target): PSNR/SSIM/LPIPS vs the input *outside* the mask (background
  fidelity); CLIP-T of the output cropped to the mask's bounding box vs ``meta.clip_caption``.

Records whose ``meta.has_target`` is false and that name no known benchmark use ``emu_edit``'s
rules (compare with the input image).

CLIP-dir needs an input caption (``meta.input_caption`` or ``meta.source_caption``) and an
output caption; it is skipped (with a note) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from reasonbrain.data.schema import Record, SynthMeta, resolve_in_root
from reasonbrain.evaluation.images import BoolMask, load_mask, load_rgb

PROTOCOLS: tuple[str, ...] = ("reasonsynth", "reference", "emu_edit", "reason_edit")

_ALIASES = {
    "reasonsynth": "reasonsynth",
    "reference": "reference",
    "reason50k": "reference",
    "magicbrush": "reference",
    "ip2p": "reference",
    "instructpix2pix": "reference",
    "emu_edit": "emu_edit",
    "emu-edit": "emu_edit",
    "emuedit": "emu_edit",
    "reason_edit": "reason_edit",
    "reason-edit": "reason_edit",
    "reasonedit": "reason_edit",
}


def protocol_of(record: Record) -> str:
    """The evaluation protocol for a record (see the module table)."""
    meta = record.meta or {}
    for key in ("protocol", "benchmark"):
        name = str(meta.get(key, "")).lower()
        if name in _ALIASES:
            return _ALIASES[name]
    if meta.get("counterfactuals") and {"family", "mask"} <= set(meta):
        return "reasonsynth"
    return "reference"


@dataclass
class SampleRefs:
    """Everything an output of one record is compared with."""

    protocol: str
    source: Image.Image
    reference: Image.Image | None
    reference_name: str | None
    caption: str | None
    caption_name: str | None
    input_caption: str | None = None
    target: Image.Image | None = None
    counterfactuals: dict[str, Image.Image] = field(default_factory=dict)
    mask: BoolMask | None = None
    notes: list[str] = field(default_factory=list)
    synth: dict[str, Any] = field(default_factory=dict)


def _mask_path(meta: dict[str, Any]) -> str | None:
    value = meta.get("mask")
    return value if isinstance(value, str) else None


def load_refs(record: Record, root: Path) -> SampleRefs:
    """Load the images and captions the record's protocol compares against.

    Raises:
        DatasetError: an image path escapes the dataset root.
        OSError: an image is missing or unreadable.
    """
    protocol = protocol_of(record)
    meta = record.meta or {}
    source = load_rgb(resolve_in_root(root, record.src_image))
    input_caption = meta.get("input_caption") or meta.get("source_caption")
    if protocol == "emu_edit":
        caption = meta.get("output_caption") or record.target_caption
        return SampleRefs(
            protocol,
            source,
            reference=source,
            reference_name="input",
            caption=caption,
            caption_name="meta.output_caption" if meta.get("output_caption") else "target_caption",
            input_caption=input_caption,
        )
    if protocol == "reason_edit":
        mp = _mask_path(meta)
        mask = load_mask(resolve_in_root(root, mp), source.size) if mp else None
        refs = SampleRefs(
            protocol,
            source,
            reference=None,
            reference_name=None,
            caption=record.target_caption or meta.get("clip_caption"),
            caption_name="target_caption (mask crop)",
            input_caption=input_caption,
            mask=mask,
        )
        if mask is None:
            refs.notes.append("reason_edit record without meta.mask: background metrics skipped")
        return refs
    target = load_rgb(resolve_in_root(root, record.tgt_image))
    refs = SampleRefs(
        protocol,
        source,
        reference=target,
        reference_name="target",
        caption=record.target_caption,
        caption_name="target_caption",
        input_caption=input_caption,
        target=target,
    )
    if protocol == "reasonsynth":
        sm = SynthMeta.model_validate(meta)
        refs.mask = load_mask(resolve_in_root(root, sm.mask), target.size)
        refs.counterfactuals = {
            kind: load_rgb(resolve_in_root(root, rel)) for kind, rel in sm.counterfactuals.items()
        }
        refs.synth = {"family": sm.family, "holdout": sm.holdout}
    return refs
