"""Loading pretrained parts (paper preset) offline-first, with a clear error when missing.

A component's reference is, in order: the ``params.yaml`` override (``model.weights.<name>``),
a directory under ``settings.weights_dir`` named like the hub id (``<weights_dir>/<org>/<name>``
or ``<weights_dir>/<name>``), else the hub id itself. Hub access happens only when
``settings.allow_network`` is true and ``HF_HUB_OFFLINE`` is not set; otherwise a missing file is
a :class:`~reasonbrain.errors.MissingWeightsError` naming the component and where it looked.

What comes from where (:func:`load_pretrained`):

| part | source | loaded as |
|---|---|---|
| E_I (CLIP vision tower) | ``clip`` (``CLIPVisionModel``) | frozen, compute dtype |
| E_T (CLIP text tower), tokenizer | ``diffusion``: ``text_encoder/``, ``tokenizer/`` | frozen |
| UNet | ``diffusion`` repo's ``unet/`` | trained, fp32 master weights |
| VAE | ``diffusion`` repo's ``vae/`` | frozen, compute dtype |
| noise schedule | ``diffusion`` repo's ``scheduler/`` config | — |
| LLaVA + tokenizer | ``llava`` | frozen base (LoRA trained), compute dtype |
| SAM | ``sam`` | frozen, compute dtype |

The text tower comes from the diffusion repo (as in diffusers' pipelines), so the UNet always gets
the text features it was trained on; for SD-1.5 that is CLIP ViT-L/14's text tower. The compute
dtype is :func:`reasonbrain.models.precision.frozen_dtype`'s (bf16 or fp32, never the file's fp16).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reasonbrain.errors import CheckpointError, MissingWeightsError

T = TypeVar("T")

#: Default hub ids of the paper preset (DESIGN §1).
PAPER_SOURCES: dict[str, str] = {
    "llava": "llava-hf/llava-1.5-7b-hf",
    "diffusion": "timbrooks/instruct-pix2pix",
    "clip": "openai/clip-vit-large-patch14",
    "sam": "facebook/sam-vit-huge",
}


def offline(allow_network: bool) -> bool:
    """True when no hub request may be made."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return not allow_network or flag in {"1", "true", "yes", "on"}


def resolve_source(ref: str, weights_dir: Path | None) -> str:
    """A local directory for ``ref`` if one exists, else ``ref`` unchanged."""
    p = Path(ref).expanduser()
    if p.exists():
        return str(p)
    if weights_dir is not None:
        for cand in (weights_dir / ref, weights_dir / ref.split("/")[-1]):
            if cand.exists():
                return str(cand)
    return ref


def load_component(
    name: str, ref: str, loader: Callable[..., T], *, allow_network: bool, **kwargs: Any
) -> T:
    """Call ``loader(ref, local_files_only=…, **kwargs)``; turn "not found" into a clear error.

    Raises:
        MissingWeightsError: the weights are not available locally and network access is off
            (or the hub does not have them).
    """
    local_only = offline(allow_network)
    try:
        return loader(ref, local_files_only=local_only, **kwargs)
    except (OSError, ValueError) as err:
        mode = "offline" if local_only else "online"
        raise MissingWeightsError(
            f"pretrained weights for {name!r} not found ({mode}): {str(err).splitlines()[0][:160]}",
            where=ref,
            fix=(
                "download them to a local directory and set model.weights."
                f"{name.split('_')[0]} or REASONBRAIN_WEIGHTS_DIR"
                + ("" if not local_only else ", or set REASONBRAIN_ALLOW_NETWORK=1")
            ),
        ) from None


def strict_transformers(loader: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Wrap a transformers ``from_pretrained`` so that a checkpoint *missing* weights of the model
    is an error (transformers would random-initialise them with a warning), while keys the model
    does not use stay quiet (a ``CLIPVisionModel`` read from a full CLIP checkpoint skips the text
    tower: expected, and transformers would print a table of 200 keys on every load).

    Raises:
        CheckpointError: weights of the model are missing from the checkpoint, or have other
            shapes.
    """

    def load(ref: str, **kwargs: Any) -> Any:
        from transformers.utils import logging as hf_logging

        before = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = loader(ref, output_loading_info=True, **kwargs)
        finally:
            hf_logging.set_verbosity(before)
        bad = sorted(info.get("missing_keys") or []) + sorted(
            str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or []
        )
        if bad:
            raise CheckpointError(
                f"the {name!r} checkpoint lacks {len(bad)} weights of "
                f"{type(model).__name__} (e.g. {', '.join(bad[:3])})",
                where=ref,
                fix=f"point model.weights.{name} at a checkpoint of that architecture",
            )
        return model

    return load


@dataclass
class PretrainedParts:
    """What :func:`load_pretrained` returns.

    Attributes:
        modules: loaded sub-models by name (``clip_vision``, ``clip_text``, ``unet``, ``vae``,
            ``llava``, ``sam``); frozen ones have ``requires_grad=False``.
        tokenizer: the LLaVA tokenizer (``None`` for ip2p or when tokenizers were not asked for).
        text_tokenizer: the text tower's tokenizer (``None`` when not asked for).
        scheduler: the diffusion repo's ``scheduler/`` config (``_``-keys dropped).
    """

    modules: dict[str, Any] = field(default_factory=dict)
    tokenizer: Any = None
    text_tokenizer: Any = None
    scheduler: dict[str, Any] = field(default_factory=dict)


def load_pretrained(
    sources: dict[str, str],
    *,
    kind: str,
    use_region_branch: bool,
    settings: Any,
    dtype: Any,
    skip: Collection[str] = (),
    tokenizers: bool = True,
) -> PretrainedParts:
    """Load the pretrained parts a model of ``kind`` needs (see the module docstring's table).

    Args:
        sources: component → hub id or local path (``llava``, ``diffusion``, ``clip``, ``sam``).
        kind: ``reasonbrain`` (everything) or ``ip2p`` (the diffusion repo only).
        use_region_branch: whether SAM is needed.
        settings: :class:`~reasonbrain.config.Settings` (weights_dir, allow_network).
        dtype: the compute dtype of frozen parts (a ``torch.dtype``).
        skip: module names not to load (e.g. ``{"unet"}`` when a checkpoint replaces it).
        tokenizers: also load the tokenizers (a saved model brings its own).

    Raises:
        MissingWeightsError: a part is not available (offline, or not on the hub).
    """
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    allow = settings.allow_network
    src = {k: resolve_source(v, settings.weights_dir) for k, v in sources.items()}
    parts = PretrainedParts()
    mods = parts.modules

    def want(name: str) -> bool:
        return name not in skip

    if kind == "reasonbrain" and want("clip_vision"):
        from transformers import CLIPVisionModel

        mods["clip_vision"] = load_component(
            "clip",
            src["clip"],
            strict_transformers(CLIPVisionModel.from_pretrained, "clip"),
            allow_network=allow,
            dtype=dtype,
        )
    diffusion = src["diffusion"]
    if want("clip_text"):
        mods["clip_text"] = load_component(
            "diffusion",
            diffusion,
            strict_transformers(CLIPTextModel.from_pretrained, "diffusion"),
            allow_network=allow,
            subfolder="text_encoder",
            dtype=dtype,
        )
    if tokenizers:
        parts.text_tokenizer = load_component(
            "diffusion",
            diffusion,
            AutoTokenizer.from_pretrained,
            allow_network=allow,
            subfolder="tokenizer",
        )
    if want("unet"):
        mods["unet"] = load_component(
            "diffusion",
            diffusion,
            UNet2DConditionModel.from_pretrained,
            allow_network=allow,
            subfolder="unet",
            dtype=torch.float32,  # trained: fp32 master weights
        )
    if want("vae"):
        mods["vae"] = load_component(
            "diffusion",
            diffusion,
            AutoencoderKL.from_pretrained,
            allow_network=allow,
            subfolder="vae",
            dtype=dtype,
        )
    scheduler = load_component(
        "diffusion",
        diffusion,
        DDPMScheduler.load_config,
        allow_network=allow,
        subfolder="scheduler",
    )
    parts.scheduler = {k: v for k, v in dict(scheduler).items() if not k.startswith("_")}
    if kind == "reasonbrain":
        from transformers import LlavaForConditionalGeneration

        if tokenizers:
            parts.tokenizer = load_component(
                "llava", src["llava"], AutoTokenizer.from_pretrained, allow_network=allow
            )
        if want("llava"):
            mods["llava"] = load_component(
                "llava",
                src["llava"],
                strict_transformers(LlavaForConditionalGeneration.from_pretrained, "llava"),
                allow_network=allow,
                dtype=dtype,
            )
        if use_region_branch and want("sam"):
            from transformers import SamModel

            mods["sam"] = load_component(
                "sam",
                src["sam"],
                strict_transformers(SamModel.from_pretrained, "sam"),
                allow_network=allow,
                dtype=dtype,
            )
    for name in ("clip_text", "clip_vision", "vae", "sam", "llava"):
        if name in mods:
            mods[name].requires_grad_(False)
    return parts
