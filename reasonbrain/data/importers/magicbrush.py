"""``magicbrush``: the MagicBrush test set (multi-turn editing sessions).

Source (SRC may be the release root holding ``test/``, or the ``test`` directory itself)::

    test/edit_sessions.json        {img_id: [{"input", "mask", "output", "instruction"}, …]}
    test/images/<img_id>/<img_id>-input.png, <img_id>-output{k}.png, <img_id>-mask{k}.png
    test/local_descriptions.json   optional {img_id: {"<img_id>-output{k}.png": caption}}
    test/global_descriptions.json  optional {img_id: {"<file>.png": caption}}

One record per turn, all in the ``test`` split, id ``<img_id>-t<k>`` (k from 1), category
``magicbrush`` (option). ``src_image`` is the turn's *ground-truth* input (turn k's input is
turn k-1's ground-truth output), ``tgt_image`` its ground-truth output, ``target_caption`` the
local caption of the output (MagicBrush's CLIP-T text) when the caption file has it. Images are
copied to ``images/<img_id>/`` under their original names (shared files are written once).

``meta`` holds what evaluation needs for both of MagicBrush's protocols:
``benchmark="magicbrush"``, ``session_id``, ``turn``, ``num_turns``, ``final_turn`` (bool),
``session_input`` (turn 1's input image), ``mask`` (the turn's edit-region mask) and, when
available, ``input_caption``/``output_caption`` (global captions, for CLIP-dir).

- *single-turn*: every record on its own — edit ``src_image`` with ``instruction``, compare with
  ``tgt_image``.
- *final-turn*: per session (see :func:`session_chains`), start from ``session_input``, apply the
  turns' instructions in ``turn`` order each to the model's *own* previous output, and compare
  the last output with the ``tgt_image`` of the record whose ``final_turn`` is true.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from reasonbrain.data.importers.base import (
    ImageSource,
    Importer,
    ImportItem,
    ImportOptions,
    ImportReport,
    SourceRoot,
    safe_id,
)
from reasonbrain.data.schema import Record
from reasonbrain.errors import ImportFormatError

SESSIONS_FILE = "edit_sessions.json"
TURN_KEYS: tuple[str, ...] = ("input", "mask", "output", "instruction")


class MagicBrushOptions(ImportOptions):
    """Settings of the ``magicbrush`` importer."""

    category: str = Field("magicbrush", min_length=1)
    local_captions: str = "local_descriptions.json"
    global_captions: str = "global_descriptions.json"


def load_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names its line and column.

    Raises:
        ImportFormatError: unreadable or invalid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ImportFormatError(
            f"not valid JSON ({err.msg})",
            where=f"{path}:{err.lineno}:{err.colno}",
            fix="restore the original file from the benchmark release",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ImportFormatError(f"cannot read file ({err})", where=str(path)) from None


def session_chains(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Group MagicBrush records by session, sorted by turn (for the final-turn protocol)."""
    chains: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        meta = r.meta or {}
        if meta.get("benchmark") == "magicbrush":
            chains[str(meta["session_id"])].append(r)
    return {k: sorted(v, key=lambda r: int((r.meta or {})["turn"])) for k, v in chains.items()}


class MagicBrushImporter(Importer[MagicBrushOptions]):
    """MagicBrush test set: one record per turn, single-turn and final-turn facts in ``meta``."""

    name = "magicbrush"
    description = (
        "MagicBrush test set (test/edit_sessions.json + test/images/<id>/); one record per turn"
    )
    options_model = MagicBrushOptions

    def scan(
        self, src: Path, options: MagicBrushOptions, report: ImportReport
    ) -> Iterator[ImportItem]:
        """Yield one item per turn, sessions in sorted id order (see the module docstring)."""
        root = self._test_dir(src)
        sessions_path = root / SESSIONS_FILE
        sessions = load_json(sessions_path)
        if not isinstance(sessions, dict):
            raise ImportFormatError(
                "edit_sessions.json must map image ids to lists of turns",
                where=str(sessions_path),
            )
        local = self._captions(root / options.local_captions)
        global_ = self._captions(root / options.global_captions)
        if not local:
            report.note(f"no {options.local_captions}: records have no target_caption")
        report.note("split: all turns in test (MagicBrush test set)")
        files_root = SourceRoot(root)
        for img_id in sorted(sessions):
            turns = sessions[img_id]
            where = f"{sessions_path}: session {img_id!r}"
            if not isinstance(turns, list) or not turns:
                raise ImportFormatError("a session must be a non-empty list of turns", where=where)
            yield from self._session(files_root, str(img_id), turns, where, options, local, global_)

    @staticmethod
    def _test_dir(src: Path) -> Path:
        for cand in (src / "test", src):
            if (cand / SESSIONS_FILE).is_file():
                return cand
        raise ImportFormatError(
            f"no test/{SESSIONS_FILE} in the source",
            where=str(src),
            fix="point at the MagicBrush release directory (holding test/) or at test/ itself",
        )

    @staticmethod
    def _captions(path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        data = load_json(path)
        if not isinstance(data, dict):
            raise ImportFormatError("a caption file must map image ids to objects", where=str(path))
        return data

    def _session(
        self,
        root: SourceRoot,
        img_id: str,
        turns: list[Any],
        where: str,
        options: MagicBrushOptions,
        local: dict[str, Any],
        global_: dict[str, Any],
    ) -> Iterator[ImportItem]:
        sid = safe_id(img_id, where=where)
        folder = f"images/{img_id}"
        out_folder = f"images/{sid}"
        first_input: str | None = None
        for k, turn in enumerate(turns, start=1):
            twhere = f"{where} turn {k}"
            if not isinstance(turn, dict) or any(
                not isinstance(turn.get(key), str) or not turn[key].strip() for key in TURN_KEYS
            ):
                raise ImportFormatError(
                    f"a turn needs non-empty text fields {', '.join(TURN_KEYS)}",
                    where=twhere,
                    fix="restore the original edit_sessions.json",
                )
            files: dict[str, ImageSource] = {}
            rel: dict[str, str] = {}
            for key in ("input", "output", "mask"):
                name = turn[key]
                path = root.file(f"{folder}/{name}", where=twhere, what=f"{key} image")
                if key == "mask":  # normalised to the contract's L-mode PNG (see ImageSource)
                    rel[key] = f"{out_folder}/{PurePosixPath(name).stem}.png"
                    files[rel[key]] = ImageSource(origin=twhere, path=path, mask="transparent")
                else:
                    rel[key] = f"{out_folder}/{name}"
                    files[rel[key]] = ImageSource(origin=twhere, path=path)
            if first_input is None:
                first_input = rel["input"]
            meta: dict[str, Any] = {
                "benchmark": "magicbrush",
                "session_id": img_id,
                "turn": k,
                "num_turns": len(turns),
                "final_turn": k == len(turns),
                "session_input": first_input,
                "mask": rel["mask"],
            }
            g = global_.get(img_id, {})
            if isinstance(g, dict):
                for key, field_ in (("input", "input_caption"), ("output", "output_caption")):
                    if isinstance(g.get(turn[key]), str):
                        meta[field_] = g[turn[key]]
            loc = local.get(img_id, {})
            caption = loc.get(turn["output"]) if isinstance(loc, dict) else None
            record = Record(
                id=f"{sid}-t{k}",
                category=options.category,
                src_image=rel["input"],
                tgt_image=rel["output"],
                instruction=turn["instruction"].strip(),
                objects=[],
                target_caption=caption if isinstance(caption, str) and caption else None,
                meta=meta,
            )
            yield ImportItem(split="test", record=record, files=files, origin=twhere)
