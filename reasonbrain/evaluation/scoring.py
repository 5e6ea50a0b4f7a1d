"""Every per-sample number for one output: pixel and embedding metrics, verifier, judge.

A :class:`Scorer` is built once per worker (it may hold CLIP, DINO, LPIPS and a judge) and turns
``(record, output image, rationale)`` into one ``samples.jsonl`` row. Which references are used
follows the record's protocol (:mod:`reasonbrain.evaluation.protocols`). Metrics whose weights are
missing are skipped; :attr:`Scorer.skipped` says why, and :meth:`Scorer.describe` records the
configuration behind each number.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from reasonbrain.data.schema import Record
from reasonbrain.evaluation import pixel
from reasonbrain.evaluation.images import to_array
from reasonbrain.evaluation.judges.base import JudgeRequest
from reasonbrain.evaluation.protocols import SampleRefs, load_refs
from reasonbrain.evaluation.verifier import VerifierConfig, verify, verify_missing

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings
    from reasonbrain.evaluation.encoders import ClipEmbedder, DinoEmbedder
    from reasonbrain.evaluation.judges.base import Judge
    from reasonbrain.evaluation.lpips import LPIPS

#: Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER: frozenset[str] = frozenset({"l1", "l2", "lpips", "edit_error", "bg_lpips"})


class Scorer:
    """Computes one row of ``samples.jsonl`` per output (see the module docstring)."""

    def __init__(
        self,
        params: EvalParams,
        settings: Settings,
        *,
        judge: Judge | None = None,
        device: str = "cpu",
    ) -> None:
        from reasonbrain.evaluation.encoders import resolve_weight_dirs

        self.params = params
        self.wanted = set(params.metrics)
        self.verifier = VerifierConfig.from_params(params)
        self.judge = judge
        found, missing = resolve_weight_dirs(settings)
        self.skipped: dict[str, str] = {}
        self.clip: ClipEmbedder | None = None
        self.dino: DinoEmbedder | None = None
        self.lpips: LPIPS | None = None
        needs = {
            "clip": self.wanted & {"clip_i", "clip_t", "clip_dir"},
            "dino": self.wanted & {"dino"},
            "lpips": self.wanted & {"lpips"},
        }
        for name, metrics in needs.items():
            if not metrics:
                continue
            if name in missing:
                for m in sorted(metrics):
                    self.skipped[m] = missing[name]
                continue
            if name == "clip":
                from reasonbrain.evaluation.encoders import ClipEmbedder

                self.clip = ClipEmbedder(found[name], device)
            elif name == "dino":
                from reasonbrain.evaluation.encoders import DinoEmbedder

                self.dino = DinoEmbedder(found[name], device)
            else:
                from reasonbrain.evaluation.lpips import LPIPS

                self.lpips = LPIPS(found[name])
                self._lpips_path = found[name]

    def describe(self) -> dict[str, Any]:
        """The configuration behind every number (stored in ``metrics.json``)."""
        from reasonbrain.evaluation.lpips import LPIPS

        cfg: dict[str, Any] = {
            "pixel": pixel.PIXEL_CONFIG,
            "verifier": self.verifier.describe(),
            "clip": self.clip.config if self.clip else None,
            "dino": self.dino.config if self.dino else None,
            "lpips": LPIPS.describe(self._lpips_path) if self.lpips else None,
            "judge": (
                {"id": self.judge.judge_id, "prompt_version": self.judge.prompt_version}
                if self.judge
                else None
            ),
            "embedding_scores": "raw cosine in [-1, 1] (papers often print 100 x cosine)",
        }
        return cfg

    # ------------------------------------------------------------------------------- scoring
    def score(
        self,
        record: Record,
        root: Path,
        output: Image.Image | None,
        rationale: str | None = None,
        *,
        prediction: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One ``samples.jsonl`` row (without the run-specific ``image``/``seed`` fields).

        ``output=None`` scores a sample that has no output (a missing or unreadable prediction,
        described by ``prediction``): it counts as wrong wherever correctness is defined —
        ``reasoning_acc`` and ``reasoning_acc_nearest`` 0 on verifiable ReasonSynth samples,
        ``instruction_alignment`` 0 when a judge is configured — and every other metric is left
        out (never guessed). ``prediction`` is stored in the row as given.
        """
        refs = load_refs(record, root)
        metrics: dict[str, float | None] = {}
        notes = list(refs.notes)
        out = output.convert("RGB") if output is not None else None
        if out is not None:
            if refs.reference is not None:
                self._reference_metrics(out, refs, metrics)
            if refs.protocol == "reason_edit":
                self._reason_edit_metrics(out, refs, metrics)
            self._text_metrics(out, refs, metrics, notes)
        else:
            status = (prediction or {}).get("status", "missing")
            notes.append(f"no output ({status}): scored as wrong, other metrics left out")
        verdict_d: dict[str, Any] | None = None
        if refs.protocol == "reasonsynth" and refs.target is not None and refs.mask is not None:
            verdict_d = self._verdict(out, refs, metrics)
        judgement_d: dict[str, Any] | None = None
        if self.judge is not None and out is not None:
            j = self.judge.judge(
                JudgeRequest(record.id, record.instruction, refs.source, out, verdict_d)
            )
            judgement_d = j.to_dict()
            metrics["instruction_alignment"] = None if j.follows is None else float(j.follows)
            metrics["mllm_sc"] = j.sc
            metrics["mllm_pq"] = j.pq
            metrics["mllm_score"] = j.overall
        elif self.judge is not None:
            metrics["instruction_alignment"] = 0.0  # nothing was produced: nothing follows
        row = {
            "id": record.id,
            "category": record.category,
            "protocol": refs.protocol,
            "family": refs.synth.get("family"),
            "holdout": refs.synth.get("holdout"),
            "instruction": record.instruction,
            "rationale": rationale,
            "reference": refs.reference_name,
            "caption": refs.caption_name if refs.caption else None,
            "metrics": metrics,
            "verifier": verdict_d,
            "judge": judgement_d,
            "notes": notes,
        }
        if prediction is not None:
            row["prediction"] = prediction
        return row

    def _verdict(
        self, out: Image.Image | None, refs: SampleRefs, metrics: dict[str, float | None]
    ) -> dict[str, Any]:
        """The ReasonSynth verifier's verdict (stored whole) and its per-sample metrics."""
        assert refs.target is not None and refs.mask is not None
        size = refs.target.size
        target = to_array(refs.target)
        cfs = {k: to_array(v, size) for k, v in refs.counterfactuals.items()}
        if out is None:
            verdict = verify_missing(target, cfs, refs.mask, self.verifier)
        else:
            verdict = verify(to_array(out, size), target, cfs, refs.mask, self.verifier)
        verdict_d = asdict(verdict)
        verdict_d["chance"] = verdict.chance
        metrics["reasoning_acc"] = None if verdict.correct is None else float(verdict.correct)
        # the rule before the calibrated bounds (nearest candidate only), kept beside it
        metrics["reasoning_acc_nearest"] = (
            None if verdict.correct_nearest is None else float(verdict.correct_nearest)
        )
        # chance is stated over the samples accuracy counts: the verifiable ones
        metrics["chance"] = verdict.chance if verdict.verifiable else None
        if out is not None:
            metrics["edit_error"] = verdict.edit_error
            metrics["preservation_psnr"] = verdict.preservation_psnr
            metrics["preservation_ssim"] = verdict.preservation_ssim
        return verdict_d

    def _reference_metrics(
        self, out: Image.Image, refs: SampleRefs, metrics: dict[str, float | None]
    ) -> None:
        assert refs.reference is not None
        ref = to_array(refs.reference)
        o = to_array(out, refs.reference.size)
        for name, fn in (("l1", pixel.l1), ("l2", pixel.l2), ("psnr", pixel.psnr)):
            if name in self.wanted:
                metrics[name] = fn(o, ref)
        if "ssim" in self.wanted:
            metrics["ssim"] = pixel.ssim(o, ref)
        if self.lpips is not None:
            metrics["lpips"] = self.lpips.distance(o, ref)
        if self.clip is not None and "clip_i" in self.wanted:
            from reasonbrain.evaluation.encoders import cosine

            e = self.clip.images([out, refs.reference])
            metrics["clip_i"] = cosine(e[0], e[1])
        if self.dino is not None:
            from reasonbrain.evaluation.encoders import cosine

            e = self.dino.images([out, refs.reference])
            metrics["dino"] = cosine(e[0], e[1])

    def _reason_edit_metrics(
        self, out: Image.Image, refs: SampleRefs, metrics: dict[str, float | None]
    ) -> None:
        if refs.mask is None:
            return
        src = to_array(refs.source)
        o = to_array(out, refs.source.size)
        background = ~refs.mask
        metrics["bg_psnr"] = pixel.psnr(o, src, background)
        metrics["bg_ssim"] = pixel.ssim(o, src, background)
        if self.lpips is not None:
            metrics["bg_lpips"] = self.lpips.distance(o, src, background)

    def _text_metrics(
        self,
        out: Image.Image,
        refs: SampleRefs,
        metrics: dict[str, float | None],
        notes: list[str],
    ) -> None:
        if self.clip is None or not (self.wanted & {"clip_t", "clip_dir"}):
            return
        from reasonbrain.evaluation.encoders import cosine

        if refs.caption is None:
            notes.append("no caption: CLIP-T and CLIP-dir skipped")
            return
        scored = out
        if refs.protocol == "reason_edit" and refs.mask is not None and refs.mask.any():
            import numpy as np

            ys, xs = np.nonzero(refs.mask)
            sx, sy = out.size[0] / refs.mask.shape[1], out.size[1] / refs.mask.shape[0]
            box = (
                int(xs.min() * sx),
                int(ys.min() * sy),
                int((xs.max() + 1) * sx),
                int((ys.max() + 1) * sy),
            )
            scored = out.crop(box)
        if "clip_t" in self.wanted:
            img = self.clip.images([scored])[0]
            metrics["clip_t"] = cosine(img, self.clip.texts([refs.caption])[0])
        if "clip_dir" in self.wanted:
            if refs.input_caption is None:
                notes.append("no input caption: CLIP-dir skipped")
                return
            imgs = self.clip.images([out, refs.source])
            txts = self.clip.texts([refs.caption, refs.input_caption])
            metrics["clip_dir"] = cosine(imgs[0] - imgs[1], txts[0] - txts[1])
