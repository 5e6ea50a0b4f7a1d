"""ReasonBrainPipeline: edit images with a saved model (diffusers-style API).

::

    pipe = ReasonBrainPipeline.from_pretrained("models/tiny")
    out = pipe(image=photo, prompt="What if the red candle burned for hours?",
               num_inference_steps=20, guidance_scale=2.0, image_guidance_scale=1.5,
               generator=torch.Generator().manual_seed(0))
    out.images[0].save("edit.png"); print(out.rationales[0])

- Text and images go through the model's processor (tokens, object phrases, pixel tensors),
  then the model runs on tensors; edits come back at each input's size (``output_size``).

- The reasoning path (encoders, FRCE, MLLM, QFormer, CME) runs **once per edit**; only the UNet
  runs per denoising step.
- Guidance is InstructPix2Pix's three-way classifier-free guidance over (text+image, image only,
  neither), the same three branches conditioning dropout trained::

      ε̃ = ε(∅, ∅) + s_I · (ε(c_I, ∅) − ε(∅, ∅)) + s_T · (ε(c_I, c_T) − ε(c_I, ∅))

  where "no text" is the model's null conditioning (learned, or the encoding of ``""`` as in
  InstructPix2Pix; and no grounding cue, for models with one) and "no image" a zero source latent.
  Only the branches the scales need are run (as diffusers skips guidance at scale 1):
  ``s_I = 1`` drops ``ε(∅, ∅)``, and ``s_I = s_T = 1`` runs the conditional branch alone.
- DDIM sampling from the model's scheduler config (the diffusion repo's own in the paper preset);
  with a seeded ``generator`` the output is deterministic, and an edit does not depend on the
  other images in its batch.
- bf16 autocast (``autocast=True``) runs on the model's own device type (CPU or CUDA).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from reasonbrain.data.torch_dataset import to_pil
from reasonbrain.models.grounding import cue_map

#: ``callback_on_step_end(pipe, step_index, timestep, tensors) -> dict | None`` (diffusers' shape)
StepCallback = Callable[
    [Any, int, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor] | None
]


@dataclass
class EditPipelineOutput:
    """Edited images (PIL) and the rationale the model decoded for each ("" when none)."""

    images: list[Image.Image]
    rationales: list[str]
    timings: dict[str, float] = field(default_factory=dict)


def _input_size(image: Image.Image | torch.Tensor) -> tuple[int, int]:
    """``(width, height)`` of a PIL image or a ``[3, H, W]`` tensor."""
    if isinstance(image, torch.Tensor):
        return int(image.shape[-1]), int(image.shape[-2])
    return image.size


class ReasonBrainPipeline:
    """Wraps an :class:`~reasonbrain.models.base.EditModel` and its processor for inference.

    Args:
        model: a ReasonBrain (or ``ip2p``) model.
        processor: its :class:`~reasonbrain.models.processor.ReasonBrainProcessor` (the model's
            own when None).
        autocast: run under bf16 autocast on the model's device (faster; fp32 when False,
            bit-reproducible).
    """

    def __init__(self, model: Any, processor: Any = None, autocast: bool = False) -> None:
        self.model = model.eval()
        self.processor = processor if processor is not None else model.processor
        self.autocast = autocast

    @classmethod
    def from_pretrained(
        cls, ref: str | Path, autocast: bool = False, device: str | torch.device | None = None
    ) -> ReasonBrainPipeline:
        """Load a model directory (or ``registry://NAME@ALIAS``) saved by ``save_pretrained``.

        Frozen pretrained parts (paper preset) are loaded in bf16 with ``autocast``, else fp32
        (the dtype policy, :mod:`reasonbrain.models.precision`); ``device`` moves the model.
        """
        from reasonbrain.models.checkpoint import from_pretrained

        dtype = torch.bfloat16 if autocast else torch.float32
        model = from_pretrained(ref, dtype=dtype)
        if device is not None:
            model.to(device)
        return cls(model, autocast=autocast)

    @property
    def device(self) -> torch.device:
        """Where the model lives."""
        return torch.device(self.model.device)

    @torch.no_grad()
    def __call__(
        self,
        *,
        image: Image.Image | torch.Tensor | Sequence[Image.Image | torch.Tensor],
        prompt: str | Sequence[str],
        objects: Sequence[Sequence[str]] | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_size: Literal["input", "model"] = "input",
        callback_on_step_end: StepCallback | None = None,
    ) -> EditPipelineOutput:
        """Edit a batch of images (keyword arguments as in diffusers' InstructPix2Pix pipeline).

        Args:
            image: one image or a list (PIL, or ``[3, H, W]`` tensors in ``[-1, 1]``).
            prompt: one instruction per image.
            objects: object phrases per image, overriding the processor's extractor (which the
                model was trained with; use only when you know better).
            num_inference_steps: DDIM steps.
            guidance_scale: text guidance s_T (model default when None).
            image_guidance_scale: image guidance s_I (model default when None).
            generator: seeds the initial noise (CPU generator); a list gives one generator
                per image (the diffusers convention), so each image's noise depends on its own
                generator only, not on its position in the batch.
            output_size: ``"input"`` (default) resizes each edit from the model's working
                resolution back to its input's size (bicubic), as diffusers returns the input's
                size; ``"model"`` returns the working resolution (``config.image_size``).
            callback_on_step_end: called after every denoising step as in diffusers,
                ``callback(pipe, step_index, timestep, tensors)`` with ``tensors`` =
                ``{"latents": the next latents, "pred_original_sample": the guided prediction of
                the clean latent at this step}``; a returned dict's ``"latents"`` replaces the
                latents (``benchmarks/sampling_path.py`` reads the x0 prediction along the path).

        Raises:
            ValueError: the numbers of images and prompts differ.
        """
        model = self.model
        cfg = model.config
        imgs: list[Image.Image | torch.Tensor] = (
            list(image) if isinstance(image, (list, tuple)) else [image]  # type: ignore[list-item]
        )
        texts = [prompt] if isinstance(prompt, str) else list(prompt)
        if len(imgs) != len(texts):
            raise ValueError(f"{len(imgs)} images but {len(texts)} prompts")
        s_t = cfg.guidance_scale if guidance_scale is None else guidance_scale
        s_i = cfg.image_guidance_scale if image_guidance_scale is None else image_guidance_scale
        dev = self.device
        t0 = time.perf_counter()
        src = self.processor.preprocess_images(imgs).to(dev)
        inputs = self.processor(texts, objects=objects, inference=True)
        b = src.shape[0]
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.autocast)

        with ctx:
            conditioning = model.condition(src, inputs, inference=True)
        t1 = time.perf_counter()

        diffusion = model.diffusion
        src_lat = diffusion.codec.encode_source(src)  # unscaled in IP2P (paper preset)
        cond = conditioning.cond.float()
        null = model.null_condition(b).float()
        zeros = torch.zeros_like(src_lat)
        # branches in order (text+image, image only, neither); keep only what the scales need
        n_branch = 1 if s_i == 1 and s_t == 1 else 2 if s_i == 1 else 3
        cond_n = torch.cat([cond, null, null][:n_branch])
        img_n = torch.cat([src_lat, src_lat, zeros][:n_branch])
        spatial_n = None
        if conditioning.ground_logits is not None:
            # the grounding cue is text conditioning: absent from the "no text" branches
            spatial = cue_map(conditioning.ground_logits, src_lat.shape[-1])
            spatial_n = torch.cat([spatial, *[torch.zeros_like(spatial)] * 2][:n_branch])
        scheduler = diffusion.sampling_scheduler()
        scheduler.set_timesteps(num_inference_steps, device=dev)
        latents = initial_noise(src_lat.shape, generator).to(dev)
        latents = latents * scheduler.init_noise_sigma
        for i, t in enumerate(scheduler.timesteps):
            x = scheduler.scale_model_input(torch.cat([latents] * n_branch), t)
            with ctx:
                out = diffusion.predict(x, t.expand(n_branch * b), img_n, cond_n, spatial_n).float()
            guided = combine_guidance(out.chunk(n_branch), s_t, s_i)
            step = scheduler.step(guided, t, latents)
            latents = step.prev_sample
            if callback_on_step_end is not None:
                tensors = {"latents": latents, "pred_original_sample": step.pred_original_sample}
                changed = callback_on_step_end(self, i, t, tensors)
                latents = (changed or {}).get("latents", latents)
        pixels = diffusion.codec.decode(latents.to(src_lat.dtype)).float().clamp(-1, 1)
        t2 = time.perf_counter()
        edits = [to_pil(p) for p in pixels]
        if output_size == "input":
            edits = [
                e
                if e.size == _input_size(im)
                else e.resize(_input_size(im), Image.Resampling.BICUBIC)
                for e, im in zip(edits, imgs, strict=True)
            ]
        rationales = conditioning.rationales or ["" for _ in texts]
        return EditPipelineOutput(
            edits, rationales, {"reasoning_s": t1 - t0, "denoising_s": t2 - t1}
        )


def combine_guidance(
    branches: tuple[torch.Tensor, ...], text_scale: float, image_scale: float
) -> torch.Tensor:
    """Three-way guidance from the branches that were run (see the module docstring).

    ``branches`` is ``(full,)``, ``(full, image_only)`` or ``(full, image_only, uncond)``; the
    shorter forms are exact when the missing terms have weight zero (``s_I = 1``, ``s_T = 1``).
    """
    full = branches[0]
    if len(branches) == 1:
        return full
    image_only = branches[1]
    uncond = branches[2] if len(branches) == 3 else image_only
    return uncond + image_scale * (image_only - uncond) + text_scale * (full - image_only)


def initial_noise(
    shape: torch.Size, generator: torch.Generator | list[torch.Generator] | None
) -> torch.Tensor:
    """Standard-normal starting latents; with a list, image ``i`` uses ``generator[i]``.

    Raises:
        ValueError: a list whose length is not the batch size.
    """
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator])
    return torch.randn(shape, generator=generator)
