"""The ReasonSynth verifier: "did the model reason right?" as an exact, judge-free number.

Every ReasonSynth test record carries its true outcome (the target) and counterfactual outcomes
(``no_change``; ``wrong_object``: the right change on the wrong object; ``wrong_change``: a wrong
change on the right object) plus the affected-region mask (see
:class:`reasonbrain.data.schema.SynthMeta`). The verifier compares the model's output with each
candidate outcome inside a *decision region*:

- ``region="mask"``: the affected-region mask, as in the issue's wording;
- ``region="union"`` (default): the mask plus every pixel where a counterfactual differs from the
  target (max channel difference > ``change_threshold``). Inside the mask alone, ``wrong_object``
  equals ``no_change`` (its change lies on another object), so only the union can tell "changed
  the wrong object" from "changed nothing".

Distance = mean absolute difference over the region (all channels, [0, 1] range).

**Reasoning accuracy.** A sample is *correct* when the output is strictly closer to the target
than to every counterfactual: ``d(target) + TIE_EPS < min_k d(cf_k)``. Ties (within
:data:`TIE_EPS`) count as *not* correct, and ``nearest`` is then ``"tie"``. So the true target
scores 1 on every verifiable sample, and the source image — which *is* the ``no_change``
outcome — scores 0 with ``nearest == "no_change"`` (the "no change" rate is 100 %). A sample
whose target equals one of its counterfactuals inside the region is *not verifiable* (no output
could be strictly closer to the target); it is reported and left out of the accuracy. Chance level
for a sample with k counterfactuals is 1 / (1 + k).

**Edit error**: mean absolute difference to the target inside the mask. **Preservation**: PSNR
and SSIM against the target outside the mask (the inverted mask; the target equals the source
there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from reasonbrain.evaluation import pixel
from reasonbrain.evaluation.images import BoolMask, FloatImage

#: Distances closer than this are a tie (1/100 of one 8-bit grey level, averaged).
TIE_EPS = 1e-5

COUNTERFACTUAL_KINDS: tuple[str, ...] = ("no_change", "wrong_object", "wrong_change")


@dataclass(frozen=True)
class VerifierConfig:
    """How the decision region is built (recorded with every verifier number)."""

    region: Literal["mask", "union"] = "union"
    change_threshold: float = 0.02

    def describe(self) -> dict[str, Any]:
        """The configuration as stored in ``metrics.json``."""
        return {
            **asdict(self),
            "distance": "mean |a-b| over region pixels and channels, [0,1] range",
            "correct": f"d(target) + {TIE_EPS:g} < min over counterfactuals (ties incorrect)",
            "unverifiable": "target equals a counterfactual inside the region (excluded)",
            "edit_error": "mean |output-target| inside the mask",
            "preservation": "PSNR/SSIM vs target outside the mask (inverted mask)",
        }


@dataclass
class Verdict:
    """The verifier's answer for one output."""

    verifiable: bool
    correct: bool | None
    nearest: str
    distances: dict[str, float]
    margin: float | None
    n_counterfactuals: int
    edit_error: float | None
    preservation_psnr: float | None
    preservation_ssim: float | None
    region_fraction: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chance(self) -> float:
        """1 / (1 + number of counterfactuals)."""
        return 1.0 / (1 + self.n_counterfactuals)


def decision_region(
    target: FloatImage,
    counterfactuals: Mapping[str, FloatImage],
    mask: BoolMask,
    config: VerifierConfig,
) -> BoolMask:
    """The pixels on which candidate outcomes are compared (see the module docstring)."""
    region = mask.copy()
    if config.region == "union":
        for cf in counterfactuals.values():
            region |= np.abs(cf - target).max(axis=-1) > config.change_threshold
    return region


def verify(
    output: FloatImage,
    target: FloatImage,
    counterfactuals: Mapping[str, FloatImage],
    mask: BoolMask,
    config: VerifierConfig | None = None,
) -> Verdict:
    """Score one output against its true outcome and counterfactual outcomes.

    Args:
        output: the model's edit, same size as ``target`` (see ``images.to_array``).
        target: the true outcome.
        counterfactuals: kind → wrong outcome image (at least one).
        mask: the affected region (True inside).
        config: decision-region settings.

    Raises:
        ValueError: no counterfactuals, or shapes that do not match.
    """
    cfg = config or VerifierConfig()
    if not counterfactuals:
        raise ValueError("the verifier needs at least one counterfactual outcome")
    for name, img in {"output": output, **counterfactuals}.items():
        if img.shape != target.shape:
            raise ValueError(f"{name} shape {img.shape} != target shape {target.shape}")
    region = decision_region(target, counterfactuals, mask, cfg)
    if not region.any():
        region = np.ones_like(mask)
    dist = {"target": float(np.abs(output[region] - target[region]).mean())}
    gap = {}
    for kind, cf in counterfactuals.items():
        dist[kind] = float(np.abs(output[region] - cf[region]).mean())
        gap[kind] = float(np.abs(target[region] - cf[region]).mean())
    verifiable = min(gap.values()) > TIE_EPS
    best = min(dist.values())
    at_best = [k for k, d in dist.items() if d - best <= TIE_EPS]
    nearest = at_best[0] if len(at_best) == 1 else "tie"
    cf_min = min(dist[k] for k in counterfactuals)
    margin = cf_min - dist["target"]
    correct: bool | None = (margin > TIE_EPS) if verifiable else None
    inside = mask if mask.any() else None
    outside = ~mask
    return Verdict(
        verifiable=verifiable,
        correct=correct,
        nearest=nearest,
        distances=dist,
        margin=margin if verifiable else None,
        n_counterfactuals=len(counterfactuals),
        edit_error=pixel.l1(output, target, inside),
        preservation_psnr=pixel.psnr(output, target, outside) if outside.any() else None,
        preservation_ssim=pixel.ssim(output, target, outside) if outside.any() else None,
        region_fraction=float(region.mean()),
    )
