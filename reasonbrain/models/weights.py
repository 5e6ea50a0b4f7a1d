"""Loading pretrained parts (paper preset) offline-first, with a clear error when missing.

A component's reference is, in order: the ``params.yaml`` override (``model.weights.<name>``),
a directory under ``settings.weights_dir`` named like the hub id (``<weights_dir>/<org>/<name>``
or ``<weights_dir>/<name>``), else the hub id itself. Hub access happens only when
``settings.allow_network`` is true and ``HF_HUB_OFFLINE`` is not set; otherwise a missing file is
a :class:`~reasonbrain.errors.MissingWeightsError` naming the component and where it looked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reasonbrain.errors import MissingWeightsError

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
