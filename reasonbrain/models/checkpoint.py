"""Model directories: ``save_pretrained`` / ``from_pretrained`` (DESIGN §6 "Model directory").

Layout::

    model-dir/
      config.json           ReasonBrainConfig (+ "meta": params hash, data version, metrics)
      model.safetensors     every trained tensor (tiny: all of them; paper: all but frozen
                            pretrained towers, which are reloaded from their sources)
      processor_config.json the processor (text/images → tensors; reasonbrain.models.processor)
      tokenizer/            the MLLM tokenizer ([IMG_i] included)
      text_tokenizer/       the CLIP text tokenizer
(a directory saved before processors existed has no processor_config.json: its processor is
derived from config.json, so it still loads)
      README.md             model card

Writing goes to a temporary sibling directory that is renamed into place only when complete.
Loading rebuilds the network from ``config.json`` and loads the weights **strictly**: any missing
or unexpected key (or shape mismatch) is a :class:`~reasonbrain.errors.CheckpointError` naming
them — never a silent partial load (the "checkpoint keeps only LoRA" trap). No pickle anywhere.

A paper-preset model reloads only its *frozen* parts from their sources (in the compute dtype of
:mod:`reasonbrain.models.precision`); the parts the checkpoint replaces — the trained UNet — are
built as an empty skeleton on the ``meta`` device from the saved config and take the checkpoint's
tensors directly (``load_state_dict(assign=True)``), so no pretrained UNet is read (3.4 GB for
SD-1.5) only to be overwritten, on every Ray worker start and every ``edit``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasonbrain.errors import CheckpointError, ConfigError, RegistryError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _model_card(model: Any, meta: dict[str, Any]) -> str:
    from reasonbrain.models.presets import parameter_counts

    c = model.config
    counts = parameter_counts(model)
    lines = [
        f"# ReasonBrain model ({c.kind}, preset `{c.preset}`)",
        "",
        "Reasoning-aware image editor (He et al., *Reasoning to Edit*, ICML 2026), saved with",
        "`save_pretrained`. Load with `ReasonBrainPipeline.from_pretrained(<this directory>)`.",
        "",
        "| field | value |",
        "|---|---|",
        f"| preset | `{c.preset}` |",
        f"| kind | `{c.kind}` |",
        f"| image size | {c.image_size} |",
        f"| ablations | patch={c.use_patch_branch} region={c.use_region_branch} "
        f"id={c.use_id_controller} cme={c.use_cme} rationale={c.use_rationale} |",
        f"| params hash | `{meta.get('params_hash') or 'unknown'}` |",
        f"| data version | `{meta.get('data_version') or 'unknown'}` |",
        f"| parameters | {counts['total']:,} |",
        f"| pretrained sources | {json.dumps(c.sources) if c.sources else 'none'} |",
        "",
        "## Metrics",
        "",
    ]
    metrics = meta.get("metrics") or {}
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    else:
        lines.append("Not evaluated yet.")
    return "\n".join(lines) + "\n"


def save_pretrained(
    model: Any,
    directory: str | Path,
    *,
    params_hash: str | None = None,
    data_version: str | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically (replacing it if present)."""
    from safetensors.torch import save_file

    from reasonbrain.data.staging import staged_dir

    out = Path(directory)
    meta = {"params_hash": params_hash, "data_version": data_version, "metrics": metrics or {}}
    state = {k: v.detach().contiguous().cpu() for k, v in model.checkpoint_state().items()}
    with staged_dir(out, force=True) as tmp:
        cfg = model.config.model_dump(mode="json")
        cfg["meta"] = meta
        (tmp / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        model.processor.save_pretrained(tmp)  # processor_config.json + both tokenizers
        (tmp / "README.md").write_text(_model_card(model, meta), encoding="utf-8")
    return out


def resolve_ref(ref: str | Path) -> Path:
    """A model directory for ``ref`` (a path, or ``registry://NAME@ALIAS``).

    Raises:
        RegistryError: a registry ref when the registry is unavailable or cannot resolve it.
        CheckpointError: the directory does not hold a saved model.
    """
    text = str(ref)
    if text.startswith("registry://"):
        try:
            from reasonbrain.registry import resolve_model_ref
        except ImportError:
            raise RegistryError(
                "the model registry is not available in this installation",
                where=text,
                fix="pass a local model directory instead",
            ) from None
        path = Path(resolve_model_ref(text))
    else:
        path = Path(text).expanduser()
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            "not a saved model directory (config.json and model.safetensors expected)",
            where=str(path),
            fix="pass a directory written by save_pretrained / `reasonbrain train`",
        )
    return path


def load_config(path: Path) -> tuple[Any, dict[str, Any]]:
    """Read ``config.json`` → (``ReasonBrainConfig``, meta)."""
    from pydantic import ValidationError

    from reasonbrain.models.config import CONFIG_VERSION, ReasonBrainConfig

    try:
        raw = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
        meta = raw.pop("meta", {}) or {}
        cfg = ReasonBrainConfig.model_validate(raw)
    except (json.JSONDecodeError, ValidationError) as err:
        raise CheckpointError(
            f"invalid model config: {str(err).splitlines()[0]}", where=str(path / CONFIG_NAME)
        ) from None
    if cfg.config_version > CONFIG_VERSION:
        raise ConfigError(
            f"model config version {cfg.config_version} is newer than this code supports",
            where=str(path),
            fix="upgrade reasonbrain",
        )
    return cfg, meta


def load_state_strict(model: Any, path: Path) -> None:
    """Load ``model.safetensors`` into ``model``; every expected key exactly once, same shapes.

    Raises:
        CheckpointError: naming missing / unexpected / mis-shaped keys.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = path / WEIGHTS_NAME
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"cannot read weights: {err}", where=str(file)) from None
    expected = model.checkpoint_state()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)}≠{tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or shapes:

        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes: {few(shapes)}")
        raise CheckpointError(
            "weights do not match the config: " + "; ".join(parts),
            where=str(file),
            fix="save and load with the same config (the checkpoint may be from another model)",
        )
    skeleton = any(t.is_meta for t in model.state_dict().values())
    if skeleton:  # meta tensors take the checkpoint's (fp32 master) tensors as they are
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False, assign=skeleton)
    # Keys not in the checkpoint must be exactly the frozen pretrained ones.
    leftover = [k for k in result.missing_keys if k in expected]
    if leftover or result.unexpected_keys:
        raise CheckpointError(f"partial load: {leftover[:5]} {result.unexpected_keys[:5]}")
    empty = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if empty:
        raise CheckpointError(
            f"{len(empty)} tensors neither in the checkpoint nor loaded: {empty[:3]}",
            where=str(file),
        )


def from_pretrained(ref: str | Path, *, dtype: Any = None) -> Any:
    """Rebuild and load a model saved with :func:`save_pretrained`.

    Args:
        ref: a model directory or ``registry://NAME@ALIAS``.
        dtype: compute dtype of the frozen pretrained parts (paper preset; default fp32).
    """
    import torch
    from transformers import PreTrainedTokenizerFast

    from reasonbrain.config import get_settings
    from reasonbrain.models.presets import load_paper_parts, model_from_config

    path = resolve_ref(ref)
    cfg, meta = load_config(path)

    def tok(sub: str) -> Any:
        d = path / sub
        if not d.is_dir():
            raise CheckpointError(f"{sub}/ missing", where=str(path), fix="re-save the model")
        return PreTrainedTokenizerFast.from_pretrained(str(d))

    tokenizer, text_tokenizer = tok("tokenizer"), tok("text_tokenizer")
    pretrained = None
    if cfg.sources:
        # frozen parts from their sources; the trained UNet is a skeleton the checkpoint fills
        parts = load_paper_parts(
            cfg, get_settings(), dtype=dtype or torch.float32, skip=("unet",), tokenizers=False
        )
        pretrained = dict(parts.modules)
        from diffusers import UNet2DConditionModel

        with torch.device("meta"):
            pretrained["unet"] = UNet2DConditionModel.from_config(cfg.unet)
    model = model_from_config(cfg, tokenizer, text_tokenizer, pretrained=pretrained)
    load_state_strict(model, path)
    model.meta = meta
    model.eval()
    return model
