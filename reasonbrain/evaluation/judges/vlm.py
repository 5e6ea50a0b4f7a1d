"""A judge that runs a local vision-language model through transformers.

Any ``AutoModelForImageTextToText`` checkpoint with a processor that has a chat template works
(LLaVA, Qwen2-VL, Idefics …). Loaded once per judge instance (once per Ray actor), greedy
decoding, the answer text kept verbatim. Weights come only from a local directory
(``REASONBRAIN_JUDGE_VLM_WEIGHTS`` or ``weights_dir/judge_vlm``). The judge is identified by the
sha256 of every file in that directory (``judge_id`` = ``vlm:<folder>@<sha256[:12]>``), so
weights swapped under the same folder name never reuse old verdicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from reasonbrain.errors import MissingWeightsError
from reasonbrain.evaluation.judges.base import Judge, Judgement, JudgeRequest, Prompt, combine

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings


class LocalVlmJudge(Judge):
    """VIEScore-style judging with a local transformers VLM."""

    def __init__(
        self,
        path: Path,
        prompt: Prompt,
        *,
        follow_threshold: float = 5.0,
        max_new_tokens: int = 64,
        device: str = "cpu",
    ) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(path)
            model: Any = AutoModelForImageTextToText.from_pretrained(path)
            self.model: Any = model.to(device).eval()
        except (OSError, ValueError) as err:
            raise MissingWeightsError(
                f"cannot load the judge VLM: {str(err).splitlines()[0][:200]}",
                where=str(path),
                fix="point REASONBRAIN_JUDGE_VLM_WEIGHTS at a local save_pretrained directory",
            ) from None
        self.prompt = prompt
        self.follow_threshold = follow_threshold
        self.max_new_tokens = max_new_tokens
        self.device = device
        from reasonbrain.registry.checksums import manifest_digest, scan_dir

        name = getattr(self.model.config, "_name_or_path", "") or path.name
        self.weights_sha256 = manifest_digest(scan_dir(Path(path)))
        self.judge_id = f"vlm:{Path(str(name)).name}@{self.weights_sha256[:12]}"
        self.prompt_version = prompt.version

    @classmethod
    def from_settings(cls, params: EvalParams, settings: Settings, prompt: Prompt) -> LocalVlmJudge:
        """Build from ``eval.*`` params and the judge weight settings.

        Raises:
            MissingWeightsError: no local judge weights.
        """
        path = settings.judge_vlm_weights or (
            settings.weights_dir / "judge_vlm" if settings.weights_dir else None
        )
        if path is None or not path.is_dir():
            raise MissingWeightsError(
                "no local VLM for the judge",
                where=str(path) if path else "REASONBRAIN_JUDGE_VLM_WEIGHTS",
                fix="set REASONBRAIN_JUDGE_VLM_WEIGHTS, or use eval.judge=oracle/http/none",
            )
        return cls(path, prompt, follow_threshold=params.judge_follow_threshold)

    def _ask(self, text: str, images: list[Image.Image]) -> str:
        import torch

        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": text})
        chat = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True
        )
        inputs = self.processor(
            images=[im.convert("RGB") for im in images], text=chat, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1] :]
        return str(self.processor.batch_decode(new, skip_special_tokens=True)[0])

    def identity(self) -> dict[str, Any]:
        """The weights (content digest), decoding and prompt."""
        return {
            "judge_id": self.judge_id,
            "weights_sha256": self.weights_sha256,
            "decoding": {"greedy": True, "max_new_tokens": self.max_new_tokens},
            "prompt_version": self.prompt_version,
        }

    def from_raw(self, raw: dict[str, str]) -> Judgement:
        """Re-read a cached answer with the current threshold and parser."""
        return combine(self.judge_id, self.prompt, raw["sc"], raw["pq"], self.follow_threshold)

    def judge(self, request: JudgeRequest) -> Judgement:
        """Ask SC (source + output) and PQ (output) and combine them (an unreadable answer is
        recorded, never raised)."""
        sc_text = self._ask(
            self.prompt.sc.format(instruction=request.instruction),
            [request.source, request.output],
        )
        pq_text = self._ask(
            self.prompt.pq.format(instruction=request.instruction), [request.output]
        )
        return combine(self.judge_id, self.prompt, sc_text, pq_text, self.follow_threshold)
