"""``reason_edit``: SmartEdit's Reason-Edit benchmark (no ground-truth edited images).

Source: a directory holding the category folders ``1-Left-Right``, ``2-Relative-Size``,
``3-Mirror``, ``4-Color``, ``5-Multiple-Objects`` and ``6-Reasoning`` (any ``<number>-<Name>``
folder is taken; a trailing date such as ``-231115`` is not part of the category). Each folder
holds ``NNN.png`` source images, ``NNN_mask.jpg`` edit-region masks and exactly one ``.txt``
file whose i-th line is ``<instruction> CLIP: <target-region caption>`` for the i-th source image
in sorted file-name order — the pairing SmartEdit's own evaluation script uses.

**No target**, as for Emu Edit: ``tgt_image`` is the source image itself and
``meta.has_target`` is ``false``. The benchmark's protocol needs the mask and the caption:
background fidelity (PSNR/SSIM/LPIPS) between output and source on the *inverted* mask, and a
CLIP score of the output cropped to the mask's bounding box against ``meta.clip_caption``.

Records: all in ``test``; id ``<category>-<NNN>``; category = the folder name without its number,
lower snake case (``left_right``, ``relative_size``, ``mirror``, ``color``, ``multiple_objects``,
``reasoning``); ``target_caption`` = the CLIP caption; ``meta``: ``benchmark="reason_edit"``,
``has_target=false``, ``folder``, ``mask`` (output path), ``clip_caption``, ``line`` (1-based
line in the text file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

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

CLIP_MARK = "CLIP:"
_FOLDER = re.compile(r"^(\d+)-(.+?)(?:-\d{4,})?$")


def folder_category(name: str) -> str | None:
    """``"1-Left-Right"`` → ``"left_right"``; ``"6-Reasoning-231115"`` → ``"reasoning"``;
    ``None`` for a folder that is not a category folder."""
    m = _FOLDER.match(name)
    if m is None:
        return None
    return re.sub(r"[^a-z0-9]+", "_", m.group(2).lower()).strip("_") or None


class ReasonEditImporter(Importer[ImportOptions]):
    """Reason-Edit: source image, mask and instruction + CLIP caption per line."""

    name = "reason_edit"
    description = (
        "SmartEdit's Reason-Edit (1-Left-Right … 6-Reasoning folders: NNN.png, NNN_mask.jpg, "
        "one .txt); no targets"
    )
    options_model = ImportOptions

    def scan(self, src: Path, options: ImportOptions, report: ImportReport) -> Iterator[ImportItem]:
        """Yield one item per text line of every category folder, folders in number order."""
        if not src.is_dir():
            raise ImportFormatError(
                "a reason_edit source must be a directory",
                where=str(src),
                fix="point at the directory holding 1-Left-Right … 6-Reasoning",
            )
        folders = sorted(
            (int(m.group(1)), d)
            for d in src.iterdir()
            if d.is_dir() and (m := _FOLDER.match(d.name)) and folder_category(d.name)
        )
        if not folders:
            raise ImportFormatError(
                "no category folders (1-Left-Right, 2-Relative-Size, …) in the source",
                where=str(src),
                fix="point at the Reason-Edit directory holding the numbered folders",
            )
        report.note("no ground-truth targets: tgt_image is the source image, meta.has_target=false")
        report.note("split: all records in test (Reason-Edit is a test benchmark)")
        for _, folder in folders:
            yield from self._folder(SourceRoot(src), folder)

    @staticmethod
    def _folder(src: SourceRoot, folder: Path) -> Iterator[ImportItem]:
        category = folder_category(folder.name)
        assert category is not None
        texts = sorted(p for p in folder.glob("*.txt") if p.is_file())
        if len(texts) != 1:
            raise ImportFormatError(
                f"expected exactly one .txt file, found {len(texts)}",
                where=str(folder),
                fix="keep the benchmark's single instruction file in each folder",
            )
        text = texts[0]
        try:
            lines = text.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ImportFormatError(
                f"cannot read instruction file ({err})", where=str(text)
            ) from None
        while lines and not lines[-1].strip():
            lines.pop()
        images = sorted(p for p in folder.glob("*.png") if p.is_file() and "_mask" not in p.stem)
        if len(lines) != len(images):
            raise ImportFormatError(
                f"{len(lines)} instruction lines but {len(images)} source images",
                where=str(text),
                fix="line i must describe the i-th NNN.png in sorted order",
            )
        for lineno, (line, image) in enumerate(zip(lines, images, strict=True), start=1):
            where = f"{text}:{lineno}"
            instruction, mark, caption = line.partition(CLIP_MARK)
            if not mark or not instruction.strip() or not caption.strip():
                raise ImportFormatError(
                    f"line is not '<instruction> {CLIP_MARK} <caption>'",
                    where=where,
                    fix="restore the original line from the benchmark release",
                )
            mask = folder / f"{image.stem}_mask.jpg"
            if not mask.is_file():
                raise ImportFormatError(
                    f"mask not found: {mask.name}", where=str(folder), fix="restore the mask file"
                )
            rid = safe_id(f"{category}-{image.stem}", where=where)
            src_rel = f"images/{category}/{image.stem}{image.suffix.lower()}"
            mask_rel = f"images/{category}/{image.stem}_mask.png"  # normalised to L-mode PNG
            record = Record(
                id=rid,
                category=category,
                src_image=src_rel,
                tgt_image=src_rel,
                instruction=instruction.strip(),
                objects=[],
                target_caption=caption.strip(),
                meta={
                    "benchmark": "reason_edit",
                    "has_target": False,
                    "folder": folder.name,
                    "mask": mask_rel,
                    "clip_caption": caption.strip(),
                    "line": lineno,
                },
            )
            files = {
                src_rel: ImageSource(
                    origin=where, path=src.file(f"{folder.name}/{image.name}", where=where)
                ),
                mask_rel: ImageSource(
                    origin=where,
                    path=src.file(f"{folder.name}/{mask.name}", where=where, what="mask"),
                    mask="grey",
                ),
            }
            yield ImportItem(split="test", record=record, files=files, origin=where)
