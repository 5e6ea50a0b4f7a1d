"""ReasonBrainPipeline: edit images with a saved model (diffusers-style API).

::

    pipe = ReasonBrainPipeline.from_pretrained("models/tiny")
    out = pipe(images, instructions, num_inference_steps=20, guidance_scale=2.0,
               image_guidance_scale=1.5, generator=torch.Generator().manual_seed(0))
    out.images[0].save("edit.png"); print(out.rationales[0])

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from reasonbrain.data.torch_dataset import to_pil
from reasonbrain.models.grounding import cue_map


@dataclass
class EditPipelineOutput:
    """Edited images (PIL) and the rationale the model decoded for each ("" when none)."""

    images: list[Image.Image]
    rationales: list[str]
    timings: dict[str, float] = field(default_factory=dict)


def _to_tensor(image: Image.Image | torch.Tensor, size: int) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        x = image.float()
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bicubic")[0]
        return x.clamp(-1, 1)
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    import numpy as np

    arr = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


class ReasonBrainPipeline:
    """Wraps an :class:`~reasonbrain.models.base.EditModel` for inference.

    Args:
        model: a ReasonBrain (or ``ip2p``) model.
        autocast: run under bf16 autocast on the model's device (faster; fp32 when False,
            bit-reproducible).
    """

    def __init__(self, model: Any, autocast: bool = False) -> None:
        self.model = model.eval()
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
        images: Image.Image | torch.Tensor | list[Any],
        instructions: str | list[str],
        *,
        objects: list[list[str]] | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> EditPipelineOutput:
        """Edit a batch of images.

        Args:
            images: one image or a list (PIL, or ``[3, H, W]`` tensors in ``[-1, 1]``).
            instructions: one instruction per image.
            objects: object phrases per image (extracted from the instruction when None).
            num_inference_steps: DDIM steps.
            guidance_scale: text guidance s_T (model default when None).
            image_guidance_scale: image guidance s_I (model default when None).
            generator: seeds the initial noise (CPU generator); a list gives one generator
                per image (the diffusers convention), so each image's noise depends on its own
                generator only, not on its position in the batch.

        Raises:
            ValueError: the numbers of images and instructions differ.
        """
        model = self.model
        cfg = model.config
        imgs = images if isinstance(images, list) else [images]
        texts = [instructions] if isinstance(instructions, str) else list(instructions)
        if len(imgs) != len(texts):
            raise ValueError(f"{len(imgs)} images but {len(texts)} instructions")
        s_t = cfg.guidance_scale if guidance_scale is None else guidance_scale
        s_i = cfg.image_guidance_scale if image_guidance_scale is None else image_guidance_scale
        dev = self.device
        src = torch.stack([_to_tensor(im, cfg.image_size) for im in imgs]).to(dev)
        b = src.shape[0]
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.autocast)

        t0 = time.perf_counter()
        with ctx:
            conditioning = model.condition(src, texts, objects, inference=True)
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
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(torch.cat([latents] * n_branch), t)
            with ctx:
                out = diffusion.predict(x, t.expand(n_branch * b), img_n, cond_n, spatial_n).float()
            guided = combine_guidance(out.chunk(n_branch), s_t, s_i)
            latents = scheduler.step(guided, t, latents).prev_sample
        pixels = diffusion.codec.decode(latents.to(src_lat.dtype)).float().clamp(-1, 1)
        t2 = time.perf_counter()
        rationales = conditioning.rationales or ["" for _ in texts]
        return EditPipelineOutput(
            [to_pil(p) for p in pixels],
            rationales,
            {"reasoning_s": t1 - t0, "denoising_s": t2 - t1},
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
