"""The dtype policy: frozen parts in the compute dtype, trainable weights in fp32.

Pretrained checkpoints come in whatever dtype they were published in (LLaVA-1.5: fp16), and
transformers 5 loads them in that dtype by default. Training straight on fp16 weights fails:
PEFT creates the LoRA weights in the base layer's dtype, AdamW's ``eps=1e-8`` rounds to zero in
fp16 and a zero-initialised LoRA pair turns NaN after one step; mixing fp16 towers with fp32 layers
without autocast fails on the first matmul. So:

- **frozen** pretrained parts (CLIP towers, VAE, SAM, the LLaVA base weights) are loaded in the
  *compute dtype*: bf16 when the run autocasts to bf16, else fp32 (:func:`frozen_dtype` — the same
  rule as the training loop's autocast, so a frozen bf16 tower always runs under bf16 autocast);
- **trainable** parameters (LoRA, the new modules, the UNet) are fp32 master weights
  (:func:`fp32_master_weights`), whatever dtype a library created them in;
- autocast runs on the model's own device type (``torch.autocast(device.type, …)``), in training
  (``reasonbrain.training.loop``) and inference (``ReasonBrainPipeline``).

``train.precision`` decides: ``bf16`` → bf16 (GPU, or CPUs with AVX-512 bf16), ``fp32`` → fp32,
``auto`` → bf16 on CUDA, fp32 elsewhere. The tiny preset has no frozen pretrained parts, so only
the fp32-master rule applies to it (and it already holds).
"""

from __future__ import annotations

import torch
from torch import nn


def frozen_dtype(precision: str, device_type: str) -> torch.dtype:
    """The dtype frozen pretrained parts are loaded in for ``train.precision`` on a device type."""
    if precision == "bf16" or (precision == "auto" and device_type == "cuda"):
        return torch.bfloat16
    return torch.float32


def fp32_master_weights(model: nn.Module) -> list[str]:
    """Cast every trainable floating-point parameter to fp32 in place.

    Returns:
        The names of the parameters that were cast (e.g. LoRA weights PEFT created in fp16).
    """
    cast: list[str] = []
    for name, p in model.named_parameters():
        if p.requires_grad and p.is_floating_point() and p.dtype != torch.float32:
            p.data = p.data.float()
            cast.append(name)
    return cast
