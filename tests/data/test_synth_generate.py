"""ReasonSynth end to end: layout, ground truth, hold-outs, determinism, staging and the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import SynthParams
from reasonbrain.data.schema import SPLITS, SynthMeta, read_manifest, resolve_in_root
from reasonbrain.data.synth import FAMILIES, generate_dataset
from reasonbrain.data.synth.families import family_by_name
from reasonbrain.data.synth.generate import category_counts
from reasonbrain.errors import DatasetError

N_FAM = len(FAMILIES)
PARAMS = SynthParams(n_train=4 * N_FAM, n_val=N_FAM, n_test=3 * N_FAM, seed=7, workers=1)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    summary = generate_dataset(out, PARAMS, progress=False)
    assert summary.counts == {"train": 4 * N_FAM, "val": N_FAM, "test": 3 * N_FAM}
    return out


def _records(root: Path, split: str):  # type: ignore[no-untyped-def]
    return read_manifest(root / f"{split}.jsonl")


def _img(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(resolve_in_root(root, rel)))


def test_counts_categories_and_family_balance(dataset: Path) -> None:
    for split in SPLITS:
        recs = _records(dataset, split)
        n = getattr(PARAMS, f"n_{split}")
        assert len(recs) == n
        assert [r.id for r in recs] == [f"{split}-{i:06d}" for i in range(n)]
        assert Counter(r.category for r in recs) == +Counter(category_counts(n, PARAMS.categories))
        for cat in {r.category for r in recs}:
            fams = Counter(r.meta["family"] for r in recs if r.meta and r.category == cat)
            assert max(fams.values()) - min(fams.values()) <= 1, fams


def test_category_proportions_are_configurable(tmp_path: Path) -> None:
    params = SynthParams(
        n_train=10, n_val=0, n_test=0, workers=1, categories={"physical": 3, "story": 1}
    )
    generate_dataset(tmp_path / "p", params, progress=False)
    recs = _records(tmp_path / "p", "train")
    assert Counter(r.category for r in recs) == {"physical": 8, "story": 2}
    assert _records(tmp_path / "p", "val") == []


def test_records_and_ground_truth(dataset: Path) -> None:
    for split in SPLITS:
        for rec in _records(dataset, split):
            meta = SynthMeta.model_validate(rec.meta)
            fam = family_by_name(meta.family)
            assert rec.category == fam.category
            assert rec.objects and rec.objects[0] in rec.instruction
            assert rec.target_caption and meta.affected_object in rec.target_caption
            src, tgt = _img(dataset, rec.src_image), _img(dataset, rec.tgt_image)
            mask_img = Image.open(resolve_in_root(dataset, meta.mask))
            assert mask_img.mode == "L"
            mask = np.asarray(mask_img)
            assert src.shape == tgt.shape == (PARAMS.size, PARAMS.size, 3)
            assert set(np.unique(mask)) <= {0, 255}
            inside = mask == 255
            assert np.array_equal(src[~inside], tgt[~inside]), rec.id
            assert np.any(src != tgt, axis=-1)[inside].mean() >= 0.2, rec.id
            bboxes = [o["bbox"] for o in rec.meta["objects"]]  # type: ignore[index]
            assert len(bboxes) == 3 and all(0 <= v < 64 for b in bboxes for v in b)
            if split == "train":
                assert meta.counterfactuals == {}
                continue
            assert set(meta.counterfactuals) == {"no_change", "wrong_object", "wrong_change"}
            assert meta.counterfactuals["no_change"] == rec.src_image
            for kind, rel in meta.counterfactuals.items():
                cf = _img(dataset, rel)
                assert cf.shape == tgt.shape
                assert np.any(cf != tgt, axis=-1)[inside].mean() >= 0.1, (rec.id, kind)


def test_paths_relative_and_inside_root(dataset: Path) -> None:
    root = dataset.resolve()
    for split in SPLITS:
        for rec in _records(dataset, split):
            rels = [rec.src_image, rec.tgt_image, rec.meta["mask"]]  # type: ignore[index]
            rels += list(rec.meta["counterfactuals"].values())  # type: ignore[index]
            for rel in rels:
                assert not rel.startswith("/") and ".." not in rel.split("/")
                full = resolve_in_root(dataset, rel)
                assert full.is_file() and root in full.parents


def test_holdouts(dataset: Path) -> None:
    train = _records(dataset, "train")
    held_templates = {p.id for f in FAMILIES for p in f.test_phrasings()}
    held_texts = {p.template for f in FAMILIES for p in f.test_phrasings()}
    train_texts = {p.template for f in FAMILIES for p in f.train_phrasings()}
    for rec in train + _records(dataset, "val"):
        meta = rec.meta or {}
        fam = family_by_name(meta["family"])
        assert meta["holdout"] == "seen"
        assert meta["template"] not in held_templates
        assert meta["colour"] != fam.held_out_colour(), rec.id
    test = _records(dataset, "test")
    # every family cycles through the hold-outs in order: seen, phrasing, combination, seen …
    per_family: dict[str, list[str]] = {}
    for rec in test:
        per_family.setdefault(rec.meta["family"], []).append(rec.meta["holdout"])  # type: ignore[index]
    for kinds in per_family.values():
        assert kinds == [("seen", "phrasing", "combination")[i % 3] for i in range(len(kinds))]
    assert set(Counter(k for kinds in per_family.values() for k in kinds)) == {
        "seen",
        "phrasing",
        "combination",
    }
    for rec in test:
        meta = rec.meta or {}
        fam = family_by_name(meta["family"])
        if meta["holdout"] == "phrasing":
            assert meta["template"] in held_templates
            assert meta["colour"] != fam.held_out_colour()
        else:
            assert meta["template"] not in held_templates
        if meta["holdout"] == "combination":
            assert meta["colour"] == fam.held_out_colour()
            assert meta["colour"] in rec.instruction
    # no held-out phrasing's text ever equals a train phrasing's text
    assert not held_texts & train_texts


def test_same_seed_same_bytes_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_dataset(again, PARAMS.model_copy(update={"workers": 2}), progress=False)
    assert _digest(again) == _digest(dataset)


def test_different_seed_different_bytes(tmp_path: Path) -> None:
    small = SynthParams(n_train=6, n_val=2, n_test=3, workers=1)
    generate_dataset(tmp_path / "a", small, progress=False)
    generate_dataset(tmp_path / "b", small.model_copy(update={"seed": 1}), progress=False)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a.keys() == b.keys()
    differing = [k for k in a if k.startswith("images/") and a[k] != b[k]]
    assert len(differing) > len([k for k in a if k.startswith("images/")]) // 2


def test_refuses_non_empty_out_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    small = SynthParams(n_train=2, n_val=1, n_test=1, workers=1)
    with pytest.raises(DatasetError, match="not empty"):
        generate_dataset(out, small, progress=False)
    assert (out / "keep.txt").read_text() == "precious"
    generate_dataset(out, small, force=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "train.jsonl").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "from reasonbrain.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_generate_end_to_end_and_refusal(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["data", "generate", "--out", str(out), "--n-train", "5", "--n-val", "2"]
    args += ["--n-test", "3", "--seed", "3", "--workers", "1"]
    ok = _cli(*args, "--force", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "generated" in ok.stdout and "10 samples" in ok.stdout
    assert [len(read_manifest(out / f"{s}.jsonl")) for s in SPLITS] == [5, 2, 3]

    refused = _cli(*args, cwd=tmp_path)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not empty" in lines[0] and "--force" in lines[0]
    assert "Traceback" not in refused.stderr


def test_sample_of_rebuilds_every_record_byte_for_byte(dataset: Path) -> None:
    """``sample_of`` (the benchmarks' way back from a record to its scene) makes the same random
    choices as generation: the scene renders the stored source and target exactly."""
    from reasonbrain.data.synth.generate import plan, sample_of
    from reasonbrain.data.synth.scene import AFFECTED

    specs = {s.id: s for s in plan(PARAMS)}
    for split in ("val", "test"):
        for rec in read_manifest(dataset / f"{split}.jsonl"):
            family, scene, instr = sample_of(specs[rec.id], PARAMS.size, PARAMS.seed)
            assert instr.text == rec.instruction
            src = np.asarray(Image.open(dataset / rec.src_image).convert("RGB"))
            tgt = np.asarray(Image.open(dataset / rec.tgt_image).convert("RGB"))
            assert np.array_equal(np.asarray(scene.render()[0]), src)
            assert np.array_equal(np.asarray(scene.render({AFFECTED: family.after})[0]), tgt)


def test_verifier_ceiling_finds_the_outcomes_the_source_allows(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmarks/verifier_ceiling.py: the true outcome is always among the consistent ones,
    the oracle scores 100 %, and a dataset the generator cannot re-render is refused."""
    import json
    import shutil

    from benchmarks.verifier_ceiling import consistent_outcomes, main
    from reasonbrain.data.synth.generate import plan, sample_of

    specs = {s.id: s for s in plan(PARAMS)}
    rec = next(iter(read_manifest(dataset / "test.jsonl")))
    family, scene, _ = sample_of(specs[rec.id], PARAMS.size, PARAMS.seed)
    outcomes, distinct = consistent_outcomes(scene, family.after, grid=21)
    tgt = np.asarray(Image.open(dataset / rec.tgt_image).convert("RGB"))
    assert 1 <= distinct <= len(outcomes)
    assert any(np.array_equal(o, tgt) for o in outcomes)

    assert main(["--data", str(dataset), "--split", "val", "--grid", "11"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == N_FAM and out["accuracy"]["oracle"] == 1.0
    assert 0.0 <= out["accuracy"]["conditional_mean"] <= 1.0

    tampered = tmp_path / "ds"
    shutil.copytree(dataset, tampered)
    first = next(iter(read_manifest(tampered / "val.jsonl")))
    Image.new("RGB", src_size(tampered / first.src_image), "grey").save(tampered / first.src_image)
    assert main(["--data", str(tampered), "--split", "val", "--grid", "11"]) == 2
    err = capsys.readouterr().err
    assert first.id in err and "regenerate" in err and "Traceback" not in err

    (tampered / first.tgt_image).unlink()  # a missing reference image: one line, not a traceback
    assert main(["--data", str(tampered), "--split", "val", "--grid", "11"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and first.id in err[0] and "cannot read" in err[0]


def src_size(path: Path) -> tuple[int, int]:
    """The pixel size of an image file."""
    with Image.open(path) as im:
        return im.size
