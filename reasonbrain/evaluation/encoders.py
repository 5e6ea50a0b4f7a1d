"""Embedding metrics from local weights: CLIP-I, CLIP-T, CLIP-dir (CLIP) and DINO.

Definitions (``../shared/notes/benchmarks.md``), all cosine similarities of L2-normalised
embeddings, reported as raw cosines in [-1, 1] (papers often print 100 × cosine):

- **CLIP-I** = cos(E_img(output), E_img(reference image));
- **CLIP-T** = cos(E_img(output), E_txt(caption)) — which caption is recorded per sample;
- **CLIP-dir** = cos(E_img(output) − E_img(source), E_txt(output caption) − E_txt(input caption));
- **DINO** = cos of the CLS token of the last hidden state (after the final layer norm).

Weights are read only from local directories (``Settings.clip_weights`` / ``dino_weights``, or
``weights_dir/clip`` and ``weights_dir/dino``) holding a transformers ``save_pretrained`` model,
its image processor and (CLIP) tokenizer. Nothing is ever downloaded: when a directory is absent
the metric is skipped and :func:`resolve_weight_dirs` says why.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from reasonbrain.errors import MissingWeightsError

if TYPE_CHECKING:
    import torch

    from reasonbrain.config import Settings


def resolve_weight_dirs(settings: Settings) -> tuple[dict[str, Path], dict[str, str]]:
    """Local weight locations for the model-based metrics, and a note for each one missing.

    Returns:
        ``(found, missing)``: ``found`` maps ``clip``/``dino``/``lpips`` to an existing path;
        ``missing`` maps the others to a one-line note saying where they were looked for.
    """
    base = settings.weights_dir
    wanted: dict[str, tuple[Path | None, str]] = {
        "clip": (settings.clip_weights or (base / "clip" if base else None), "CLIP dir"),
        "dino": (settings.dino_weights or (base / "dino" if base else None), "DINO dir"),
        "lpips": (
            settings.lpips_weights or (base / "lpips" / "alexnet.safetensors" if base else None),
            "LPIPS AlexNet safetensors",
        ),
    }
    env = {"clip": "CLIP_WEIGHTS", "dino": "DINO_WEIGHTS", "lpips": "LPIPS_WEIGHTS"}
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name, (path, what) in wanted.items():
        if path is not None and path.exists():
            found[name] = path
        else:
            where = str(path) if path is not None else "no REASONBRAIN_WEIGHTS_DIR"
            missing[name] = (
                f"skipped: no local {what} ({where}); set REASONBRAIN_{env[name]} or "
                "REASONBRAIN_WEIGHTS_DIR"
            )
    return found, missing


def weights_fingerprint(path: Path) -> str:
    """Short sha256 of a weights location's config (dir) or bytes (file): names the backbone."""
    target = path / "config.json" if path.is_dir() else path
    h = hashlib.sha256()
    with target.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def _features(out: Any) -> torch.Tensor:
    """transformers 5 returns an output whose ``pooler_output`` is the projected embedding."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled: torch.Tensor = out.pooler_output
    return pooled


def _load_error(path: Path, err: Exception) -> MissingWeightsError:
    return MissingWeightsError(
        f"cannot load metric weights: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
        where=str(path),
        fix="point the setting at a transformers save_pretrained directory "
        "(model + image processor, and tokenizer for CLIP)",
    )


class ClipEmbedder:
    """A local CLIP model: normalised image and text embeddings."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        try:
            model: Any = CLIPModel.from_pretrained(path)
            self.model: Any = model.to(device).eval()
            self.processor = AutoImageProcessor.from_pretrained(path)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise _load_error(path, err) from None
        self.device = device
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.config: dict[str, Any] = {
            "weights": str(path),
            "fingerprint": weights_fingerprint(path),
            "embedding": "projected CLIP embeddings, L2-normalised",
            "similarity": "cosine",
        }

    def images(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, D) normalised image embeddings."""
        import torch

        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        with torch.inference_mode():
            feats = _features(self.model.get_image_features(pixels["pixel_values"].to(self.device)))
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def texts(self, texts: list[str]) -> torch.Tensor:
        """(N, D) normalised text embeddings (truncated to the model's context length)."""
        import torch

        tok = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            feats = _features(
                self.model.get_text_features(
                    input_ids=tok["input_ids"].to(self.device),
                    attention_mask=tok["attention_mask"].to(self.device),
                )
            )
        return torch.nn.functional.normalize(feats.float(), dim=-1)


class DinoEmbedder:
    """A local DINO-style ViT (ViTModel / Dinov2Model …): normalised CLS features."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModel

        try:
            model: Any = AutoModel.from_pretrained(path)
            self.model: Any = model.to(device).eval()
            self.processor = AutoImageProcessor.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise _load_error(path, err) from None
        self.device = device
        self.config: dict[str, Any] = {
            "weights": str(path),
            "fingerprint": weights_fingerprint(path),
            "model_type": str(self.model.config.model_type),
            "embedding": "CLS token of last_hidden_state, L2-normalised",
            "similarity": "cosine",
        }

    def images(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, D) normalised CLS features."""
        import torch

        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        with torch.inference_mode():
            out = self.model(pixel_values=pixels["pixel_values"].to(self.device))
        return torch.nn.functional.normalize(out.last_hidden_state[:, 0].float(), dim=-1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of two 1-D vectors (normalised here, so inputs need not be)."""
    import torch

    return float(torch.nn.functional.cosine_similarity(a[None].float(), b[None].float()).item())
