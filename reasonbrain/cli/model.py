"""``reasonbrain edit``: edit one image with a saved model (thin: parse, call, print)."""

from __future__ import annotations

from pathlib import Path

import typer

from reasonbrain.cli._common import console
from reasonbrain.errors import ConfigError, DatasetError


def edit(
    model: str = typer.Option(..., "--model", help="model directory or registry://NAME@ALIAS"),
    image: Path = typer.Option(..., "--image", help="source image (any format PIL reads)"),
    instruction: str = typer.Option(..., "--instruction", help="the (hypothetical) instruction"),
    out: Path = typer.Option(..., "--out", help="where to write the edited image (PNG)"),
    steps: int = typer.Option(20, "--steps", min=1, help="denoising steps"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed → same edit)"),
    guidance_scale: float | None = typer.Option(None, "--guidance-scale"),
    image_guidance_scale: float | None = typer.Option(None, "--image-guidance-scale"),
) -> None:
    """Edit IMAGE following INSTRUCTION and write the result to OUT."""
    import os
    import tempfile

    from PIL import Image, UnidentifiedImageError

    if not image.is_file():
        raise DatasetError("image not found", where=str(image), fix="pass an existing image file")
    if not out.parent.exists() and str(out.parent) not in ("", "."):
        raise ConfigError("output directory does not exist", where=str(out.parent))
    if out.is_dir():
        raise ConfigError("--out is a directory", where=str(out), fix="pass a file name")
    try:
        with Image.open(image) as im:
            src = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"cannot read image: {err}", where=str(image)) from None

    import torch

    from reasonbrain.inference.pipeline import ReasonBrainPipeline

    pipe = ReasonBrainPipeline.from_pretrained(model)
    result = pipe(
        src,
        instruction,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        image_guidance_scale=image_guidance_scale,
        generator=torch.Generator().manual_seed(seed),
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out.parent or ".")
    os.close(fd)
    try:
        result.images[0].save(tmp, format="PNG")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if result.rationales[0]:
        console.print(f"rationale: {result.rationales[0]}", highlight=False)
    console.print(f"wrote {out}", highlight=False)
