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

**MagicBrush turns** (``eval.magicbrush_protocol``; see
:mod:`reasonbrain.data.importers.magicbrush`). ``single_turn``: each turn is a sample of its own
(its ground-truth input is edited). ``final_turn``: each *session* is one sample
(:func:`eval_units`): the editor starts from ``meta.session_input`` and applies the turns'
instructions in order, each to its own previous output; the last output is compared with the final
turn's target and local caption (:func:`final_turn_record`), under the ``reference`` rules above.
Records of other benchmarks are single samples under either setting.

**How a sample is produced** is a small strategy (:func:`plan_sample`): :class:`SingleEdit`
edits the record's own ``src_image`` once; :class:`SessionChain` starts from the session input
and applies every turn in order. Either turns an :class:`EvalUnit` into a :class:`SamplePlan` —
where editing starts, the edits in order (instruction and seed of each), the record the last
output is scored against and the fields it adds to the sample's row — which is all the worker
needs to know; it never looks at MagicBrush metadata itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from reasonbrain.data.importers.magicbrush import session_chains
from reasonbrain.data.schema import Record, SynthMeta, meta_mask_path, resolve_in_root
from reasonbrain.errors import DatasetError
from reasonbrain.evaluation.images import BoolMask, load_mask, load_rgb
from reasonbrain.evaluation.predictors import sample_seed

PROTOCOLS: tuple[str, ...] = ("reasonsynth", "reference", "emu_edit", "reason_edit")

#: ``eval.magicbrush_protocol`` values and what each one compares (recorded in metrics.json).
MAGICBRUSH_PROTOCOLS: dict[str, str] = {
    "single_turn": "each turn edits its ground-truth input; compared with that turn's target",
    "final_turn": (
        "per session, the turns' instructions are applied in order from meta.session_input, each "
        "to the model's own previous output; the last output is compared with the final turn's "
        "target and local caption"
    ),
}

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
        mp = meta_mask_path(meta)
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


# ------------------------------------------------------------------------ MagicBrush sessions
@dataclass(frozen=True)
class EvalUnit:
    """One evaluated sample: a record, or a MagicBrush session chained under final-turn.

    ``turns`` are edited one after the other; the last one names the sample (id, target,
    caption). ``session`` is the MagicBrush session id when the unit is a final-turn chain
    (editing then starts from ``meta.session_input``), else ``None`` (one edit of the record's
    own ``src_image``).
    """

    turns: tuple[Record, ...]
    session: str | None = None

    @property
    def id(self) -> str:
        """The sample id: the last turn's record id."""
        return self.turns[-1].id


def eval_units(records: Sequence[Record], magicbrush_protocol: str) -> list[EvalUnit]:
    """The samples to evaluate, in manifest order.

    Under ``final_turn`` each MagicBrush session is one unit (its turns in order, placed where the
    session's first record is); every other record is a unit of its own. Under ``single_turn``
    every record is a unit of its own.

    Raises:
        DatasetError: a MagicBrush session whose turns are not exactly 1..num_turns, whose last
            turn is not marked ``final_turn`` or whose turns disagree on ``session_input``.
    """
    if magicbrush_protocol == "single_turn":
        return [EvalUnit((r,)) for r in records]
    chains = session_chains(records)
    for sid, chain in chains.items():
        _check_session(sid, chain)
    units: list[EvalUnit] = []
    emitted: set[str] = set()
    for r in records:
        meta = r.meta or {}
        if meta.get("benchmark") != "magicbrush":
            units.append(EvalUnit((r,)))
        elif (sid := str(meta["session_id"])) not in emitted:
            emitted.add(sid)
            units.append(EvalUnit(tuple(chains[sid]), session=sid))
    return units


def _check_session(sid: str, chain: Sequence[Record]) -> None:
    metas = [r.meta or {} for r in chain]
    turns = [int(m["turn"]) for m in metas]
    expected = list(range(1, int(metas[-1].get("num_turns", 0)) + 1))
    problem = None
    if turns != expected:
        problem = f"turns {turns} are not 1..num_turns ({len(expected)})"
    elif not metas[-1].get("final_turn"):
        problem = f"its last turn {chain[-1].id!r} is not marked final_turn"
    elif len({m.get("session_input") for m in metas}) != 1 or not metas[0].get("session_input"):
        problem = "its turns disagree on (or lack) meta.session_input"
    if problem:
        raise DatasetError(
            f"MagicBrush session {sid!r} cannot be chained for final-turn evaluation: {problem}",
            where=f"records {', '.join(r.id for r in chain)}",
            fix="re-import the whole session (reasonbrain import magicbrush), or evaluate with "
            "eval.magicbrush_protocol=single_turn",
        )


def final_turn_record(turns: Sequence[Record]) -> Record:
    """The record a final-turn output is scored against: the final turn's target and local
    caption, with the *session's* input as the source (CLIP-dir, judges) and turn 1's input
    caption as the input caption (CLIP-dir is skipped when turn 1 has none)."""
    first, last = (turns[0].meta or {}), (turns[-1].meta or {})
    meta = {k: v for k, v in last.items() if k not in ("input_caption", "source_caption")}
    if first.get("input_caption"):
        meta["input_caption"] = first["input_caption"]
    data = turns[-1].model_dump()
    data.update(src_image=str(last["session_input"]), meta=meta)
    return Record.model_validate(data)


# --------------------------------------------------------------------- how a sample is made
@dataclass(frozen=True)
class EditStep:
    """One edit of a sample's chain: the record whose instruction is applied, and its seed."""

    record_id: str
    instruction: str
    seed: int


@dataclass(frozen=True)
class SamplePlan:
    """Everything a worker needs to produce and score one sample.

    Attributes:
        sample_id: the sample's id (its row and output image are named after it).
        start: the image editing starts from (relative to the dataset root).
        steps: the edits, in order; each edits the previous one's output.
        scored: the record the last output is compared with.
        extras: fields added to the sample's ``samples.jsonl`` row.
    """

    sample_id: str
    start: str
    steps: tuple[EditStep, ...]
    scored: Record
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The sample's seed: the last edit's."""
        return self.steps[-1].seed

    def to_json(self) -> str:
        """Plain JSON (plans travel to Ray actors as strings)."""
        return json.dumps(
            {
                "sample_id": self.sample_id,
                "start": self.start,
                "steps": [[st.record_id, st.instruction, st.seed] for st in self.steps],
                "scored": self.scored.model_dump(mode="json"),
                "extras": self.extras,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> SamplePlan:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(
            sample_id=str(d["sample_id"]),
            start=str(d["start"]),
            steps=tuple(EditStep(str(r), str(i), int(s)) for r, i, s in d["steps"]),
            scored=Record.model_validate(d["scored"]),
            extras=dict(d["extras"]),
        )


class EditStrategy(Protocol):
    """Turns an :class:`EvalUnit` into a :class:`SamplePlan`."""

    def plan(self, unit: EvalUnit, eval_seed: int) -> SamplePlan:
        """The plan for ``unit``; each edit's seed derives from its record id and the eval seed."""
        ...


class SingleEdit:
    """One edit of the record's own ``src_image``, scored against the record."""

    def plan(self, unit: EvalUnit, eval_seed: int) -> SamplePlan:
        """See :class:`EditStrategy`."""
        rec = unit.turns[-1]
        step = EditStep(rec.id, rec.instruction, sample_seed(rec.id, eval_seed))
        return SamplePlan(rec.id, rec.src_image, (step,), rec)


class SessionChain:
    """A MagicBrush session under ``final_turn``: from ``meta.session_input``, every turn's
    instruction in order on the previous output; scored by :func:`final_turn_record`."""

    def plan(self, unit: EvalUnit, eval_seed: int) -> SamplePlan:
        """See :class:`EditStrategy`."""
        steps = tuple(
            EditStep(t.id, t.instruction, sample_seed(t.id, eval_seed)) for t in unit.turns
        )
        session = {
            "id": unit.session,
            "protocol": "final_turn",
            "turns_applied": len(steps),
            "turn_ids": [st.record_id for st in steps],
            "turn_seeds": [st.seed for st in steps],
        }
        start = str((unit.turns[0].meta or {})["session_input"])
        return SamplePlan(
            unit.id, start, steps, final_turn_record(unit.turns), {"session": session}
        )


def plan_sample(unit: EvalUnit, eval_seed: int) -> SamplePlan:
    """The plan for one unit: a chained session, or a single edit."""
    strategy: EditStrategy = SessionChain() if unit.session else SingleEdit()
    return strategy.plan(unit, eval_seed)
