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
    model_size: bool = typer.Option(
        False, "--model-size", help="write the model's working resolution, not the input's size"
    ),
) -> None:
    """Edit IMAGE following INSTRUCTION and write the result to OUT.

    The edit has IMAGE's size: the model edits at its working resolution (``image_size`` of its
    config) and the result is resized back (bicubic), as diffusers' pipelines return the input's
    size. ``--model-size`` keeps the working resolution instead.
    """
    import os
    import tempfile

    from PIL import Image, UnidentifiedImageError

    if not image.is_file():
        raise DatasetError("image not found", where=str(image), fix="pass an existing image file")
    out_dir = out.parent if str(out.parent) not in ("", ".") else Path(".")
    if not out_dir.is_dir():
        raise ConfigError(
            "output directory does not exist", where=str(out.parent), fix="create it first"
        )
    if out.is_dir():
        raise ConfigError("--out is a directory", where=str(out), fix="pass a file name")
    try:
        with Image.open(image) as im:
            src = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"cannot read image: {err}", where=str(image)) from None
    # claim the output's temporary name now: an unwritable --out fails before the model loads
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out_dir)
    except OSError as err:
        raise ConfigError(
            f"cannot write the output: {err.strerror or err}",
            where=str(out),
            fix="choose a --out in a directory you can write to",
        ) from None
    os.close(fd)
    try:
        import torch

        from reasonbrain.inference.pipeline import ReasonBrainPipeline

        pipe = ReasonBrainPipeline.from_pretrained(model)
        result = pipe(
            image=src,
            prompt=instruction,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale,
            generator=torch.Generator().manual_seed(seed),
            output_size="model" if model_size else "input",
        )
        edited = result.images[0]
        try:
            edited.save(tmp, format="PNG")
            os.replace(tmp, out)
        except OSError as err:
            raise ConfigError(
                f"cannot write the output: {err.strerror or err}", where=str(out)
            ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if result.rationales[0]:
        console.print(f"rationale: {result.rationales[0]}", highlight=False)
    work = pipe.model.config.image_size
    w, h = edited.size
    note = "" if (w, h) == (work, work) else f", edited at {work}×{work} and resized back"
    console.print(f"wrote {out} ({w}×{h}{note})", highlight=False, soft_wrap=True)
