"""Builders for importer tests: tiny sources in each documented layout, and output checks.

No tests here; the importer test modules import these helpers.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reasonbrain.data.importers.reason50k import meta_image_paths
from reasonbrain.data.schema import SPLITS, Record, read_manifest, resolve_in_root


def png(path: Path, colour: tuple[int, int, int], size: int = 8, fmt: str = "PNG") -> Path:
    """Write a small image with a solid colour and one marker pixel; returns ``path``."""
    arr = np.full((size, size, 3), colour, dtype=np.uint8)
    arr[0, 0] = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def png_bytes(colour: tuple[int, int, int], size: int = 8, fmt: str = "PNG") -> bytes:
    """The bytes of an image like :func:`png` writes."""
    buf = io.BytesIO()
    arr = np.full((size, size, 3), colour, dtype=np.uint8)
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``root``: relative path → (sha256 of content or 'dir'/'link', mode)."""
    state: dict[str, tuple[str, int]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        st = p.lstat()
        if p.is_symlink():
            state[rel] = (f"link:{p.readlink()}", st.st_mode)
        elif p.is_dir():
            state[rel] = ("dir", st.st_mode)
        else:
            state[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
    return state


def load_output(out: Path) -> dict[str, list[Record]]:
    """Read all three manifests and check every image they name resolves inside ``out`` and
    decodes (masks and other ``meta`` images included)."""
    assert sorted(p.name for p in out.glob("*.jsonl")) == sorted(f"{s}.jsonl" for s in SPLITS)
    splits = {s: read_manifest(out / f"{s}.jsonl") for s in SPLITS}
    for records in splits.values():
        for r in records:
            for rel in (r.src_image, r.tgt_image, *meta_image_paths(r.meta)):
                full = resolve_in_root(out, rel)
                assert full.is_file(), rel
                with Image.open(full) as im:
                    im.load()
    return splits


def no_leftovers(out: Path) -> bool:
    """True when neither ``out`` nor a staging sibling of it exists."""
    return not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


def make_reason50k(root: Path) -> Path:
    """A Reason50K-layout source: 3 train, 1 val, 2 test records; test ones carry a mask and a
    counterfactual image in ``meta`` (as ReasonSynth writes them)."""
    cats = ["physical", "temporal", "causal", "story"]
    sizes = {"train": 3, "val": 1, "test": 2}
    k = 0
    for split, n in sizes.items():
        lines = []
        for i in range(n):
            rid = f"{split}{i:03d}"
            png(root / "images/src" / f"{rid}.png", (10 * k, 50, 90))
            png(root / "images/tgt" / f"{rid}.png", (10 * k, 200, 90))
            rec: dict[str, Any] = {
                "id": rid,
                "category": cats[k % 4],
                "src_image": f"images/src/{rid}.png",
                "tgt_image": f"images/tgt/{rid}.png",
                "instruction": f"What would happen if object {i} were left in the sun?",
                "objects": ["ice cube"],
                "target_caption": "a puddle",
            }
            if split == "test":
                png(root / "images/mask" / f"{rid}.png", (255, 255, 255))
                png(root / "images/cf" / f"{rid}-none.png", (1, 2, 3))
                rec["meta"] = {
                    "family": "melt",
                    "mask": f"images/mask/{rid}.png",
                    "counterfactuals": {"no_change": f"images/cf/{rid}-none.png"},
                }
            lines.append(json.dumps(rec))
            k += 1
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_magicbrush(root: Path) -> Path:
    """A MagicBrush release: session 'a1' with 2 turns, session 'b2' with 1 turn, captions."""
    test = root / "test"
    sessions: dict[str, list[dict[str, str]]] = {}
    for sid, n in (("a1", 2), ("b2", 1)):
        folder = test / "images" / sid
        png(folder / f"{sid}-input.png", (20, 20, 20))
        turns = []
        for k in range(1, n + 1):
            png(folder / f"{sid}-output{k}.png", (40 * k, 80, 20))
            png(folder / f"{sid}-mask{k}.png", (255, 255, 255))
            prev = f"{sid}-input.png" if k == 1 else f"{sid}-output{k - 1}.png"
            turns.append(
                {
                    "input": prev,
                    "mask": f"{sid}-mask{k}.png",
                    "output": f"{sid}-output{k}.png",
                    "instruction": f"make it brighter, step {k}",
                }
            )
        sessions[sid] = turns
    (test / "edit_sessions.json").write_text(json.dumps(sessions, indent=1), encoding="utf-8")
    local = {"a1": {"a1-output1.png": "a bright cat", "a1-output2.png": "a brighter cat"}}
    (test / "local_descriptions.json").write_text(json.dumps(local), encoding="utf-8")
    glob_ = {"a1": {"a1-input.png": "a cat", "a1-output1.png": "a bright cat"}}
    (test / "global_descriptions.json").write_text(json.dumps(glob_), encoding="utf-8")
    return root


def make_reason_edit(root: Path) -> Path:
    """Reason-Edit: '1-Left-Right' with 2 images, '6-Reasoning-231115' with 1 image."""
    layout = {
        "1-Left-Right": [
            ("001", "Replace the left cup with a bowl CLIP: a bowl"),
            ("002", "Remove the right apple CLIP: a table"),
        ],
        "6-Reasoning-231115": [("001", "What could keep me warm? CLIP: a blanket")],
    }
    for folder, items in layout.items():
        d = root / folder
        for stem, _ in items:
            png(d / f"{stem}.png", (60, 60, int(stem) * 50))
            png(d / f"{stem}_mask.jpg", (255, 255, 255), fmt="JPEG")
        text = "\n".join(line for _, line in items) + "\n\n"
        (d / f"{folder.split('-')[1]}_text.txt").write_text(text, encoding="utf-8")
    return root
