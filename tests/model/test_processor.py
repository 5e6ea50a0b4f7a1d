"""ReasonBrainProcessor: saved with the model, the same tensors in training and inference."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from reasonbrain.data.torch_dataset import collate_edits
from reasonbrain.inference.pipeline import ReasonBrainPipeline
from reasonbrain.models.checkpoint import from_pretrained
from reasonbrain.models.processor import PROCESSOR_CONFIG, ReasonBrainProcessor
from reasonbrain.training.data import BatchSource
from tests.model.conftest import INSTRUCTIONS, make_batch


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_saved_processor_reloads_alone_and_for_old_directories(
    tiny_model: Any, saved_tiny: Path, tmp_path: Path
) -> None:
    assert (saved_tiny / PROCESSOR_CONFIG).is_file()
    texts, rats = INSTRUCTIONS, ["a stub", "", "tall", ""]
    expected = tiny_model.processor(texts, rats)
    assert _same(ReasonBrainProcessor.from_pretrained(saved_tiny)(texts, rats), expected)
    # a model directory saved before processors existed: derived from config.json + tokenizers
    old = tmp_path / "old"
    shutil.copytree(saved_tiny, old)
    (old / PROCESSOR_CONFIG).unlink()
    assert _same(ReasonBrainProcessor.from_pretrained(old)(texts, rats), expected)
    model = from_pretrained(old)
    images = list(make_batch(1)["src"])
    gen = [torch.Generator().manual_seed(1)]
    a = ReasonBrainPipeline(model)(
        image=images, prompt=texts[:1], num_inference_steps=1, generator=gen
    )
    gen = [torch.Generator().manual_seed(1)]
    b = ReasonBrainPipeline(tiny_model)(
        image=images, prompt=texts[:1], num_inference_steps=1, generator=gen
    )
    assert a.images[0].tobytes() == b.images[0].tobytes()


def test_collate_uses_the_processor_and_ignores_gold_objects(tiny_model: Any) -> None:
    batch = make_batch(3)
    items = [
        {k: (v[i] if isinstance(v, (list, torch.Tensor)) else v) for k, v in batch.items()}
        for i in range(3)
    ]
    with_gold = collate_edits(items, processor=tiny_model.processor)
    for it in items:
        it["objects"] = ["something the instruction does not say"]
    with_junk = collate_edits(items, processor=tiny_model.processor)
    keys = tiny_model.processor.input_keys
    assert set(keys) <= with_gold.keys()
    assert _same({k: with_gold[k] for k in keys}, {k: with_junk[k] for k in keys})
    assert _same(
        {k: with_gold[k] for k in keys},
        tiny_model.processor(batch["instruction"], batch["target_caption"]),
    )
    # phrases come from the instruction, exactly as the pipeline extracts them at inference
    prompt = tiny_model.processor(batch["instruction"], inference=True)
    for k in ("object_input_ids", "object_attention_mask", "object_mask"):
        assert torch.equal(prompt[k], with_gold[k])


class _Items:
    """A minimal dataset: items by index, counting reads."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["id"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            k: (v[i] if isinstance(v, (list, torch.Tensor)) else v) for k, v in self.batch.items()
        }


def test_batch_source_tokenises_each_record_once(tiny_model: Any, monkeypatch: Any) -> None:
    calls: list[str] = []
    proc = tiny_model.processor
    original = proc.encode
    monkeypatch.setattr(
        proc, "encode", lambda t, r=None, o=None: calls.append(t) or original(t, r, o)
    )
    source = BatchSource(_Items(make_batch(4)), proc)  # type: ignore[arg-type]
    first = source.batch([0, 1, 2])
    again = source.batch([2, 1, 0])
    assert len(calls) == 3  # the second batch only pads
    assert torch.equal(first["input_ids"][0], again["input_ids"][2])
