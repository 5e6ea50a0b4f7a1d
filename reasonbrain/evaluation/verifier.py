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

**Reasoning accuracy.** A sample is *correct* when all four criteria hold:

1. **nearest** — the output is strictly closer to the target than to every counterfactual over
   the decision region: ``d(target) + TIE_EPS < min_k d(cf_k)``. Ties (within :data:`TIE_EPS`)
   fail, and ``nearest`` is then ``"tie"``.
2. **edit** — inside the mask the output has done most of the edit:
   ``d_M(output, target) <= edit_bound · d_M(source, target)`` (``edit_ratio``). With the default
   0.4 the output must close at least 60 % of the source→target distance there, so a faint or
   half-strength edit fails, as does any output that is merely "less wrong" than the
   alternatives (a constant grey image was nearest to the target for 60 % of ``party_over``
   samples under criterion 1 alone).
3. **no collateral edit** — on the pixels outside the mask where a counterfactual differs from
   the target (e.g. the twin object that ``wrong_object`` changes), the output must stay at most
   ``edit_bound`` of the way towards that counterfactual (``collateral_ratio``, the worst one).
   Editing the right object *and* its twin fails here.
4. **background** — everywhere else (outside the mask and those regions) the output preserves the
   source: mean absolute difference ``<= background_bound`` (``background_error``), so constant
   images, noise and global damage fail.

The bounds were calibrated on data (``benchmarks/verifier_calibration.py``, README): benign
perturbations of the target (±2 grey-level noise) keep ``edit_ratio`` below 0.07 and
``background_error`` below 0.007, while every adversarial output tried — constant colours, noise,
the source, the blurred source, a half-strength edit, the target with the twin also edited —
fails on every family. ``correct_nearest`` keeps criterion 1 alone (the pre-calibration rule) so
old and new numbers can be compared side by side.

So the true target scores 1 on every verifiable sample, and the source image — which *is* the
``no_change`` outcome — scores 0 with ``nearest == "no_change"``. ``outcome`` names what the
output is: ``"target"`` when correct; else the nearest wrong outcome (``no_change``,
``wrong_object``, ``wrong_change``, ``tie``); else the first failed bound (``faint_edit``,
``collateral_edit``, ``background_changed``); ``no_output`` when there was no output to score
(a missing or unreadable prediction, :func:`verify_missing`: wrong whenever the sample is
verifiable, so leaving hard samples out never raises accuracy); or ``unverifiable``. A sample
whose target equals one of its counterfactuals inside the region, or equals the source inside
the mask, is *not verifiable* (no output could pass); it is reported and left out of the
accuracy. Chance level for a sample with k counterfactuals is 1 / (1 + k) (for criterion 1; the
bounds only make passing harder).

**Edit error**: mean absolute difference to the target inside the mask. **Preservation**: PSNR
and SSIM against the target outside the mask (the inverted mask; the target equals the source
there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from reasonbrain.evaluation import pixel
from reasonbrain.evaluation.images import BoolMask, FloatImage

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams

#: Distances closer than this are a tie (1/100 of one 8-bit grey level, averaged).
TIE_EPS = 1e-5

#: Default bounds (calibrated on ReasonSynth; see the module docstring and the README).
EDIT_BOUND = 0.4
BACKGROUND_BOUND = 0.05

#: Names of the failed bounds, in the order ``outcome`` reports them.
BOUND_FAILURES: tuple[str, ...] = ("faint_edit", "collateral_edit", "background_changed")

COUNTERFACTUAL_KINDS: tuple[str, ...] = ("no_change", "wrong_object", "wrong_change")

#: The outcome of a sample that has no output to score (:func:`verify_missing`).
NO_OUTPUT = "no_output"

#: Every ``Verdict.outcome`` of a verifiable sample, in the order reports list them.
OUTCOMES: tuple[str, ...] = (
    "target",
    *COUNTERFACTUAL_KINDS,
    "tie",
    *BOUND_FAILURES,
    NO_OUTPUT,
)


@dataclass(frozen=True)
class VerifierConfig:
    """How the decision region is built (recorded with every verifier number)."""

    region: Literal["mask", "union"] = "union"
    change_threshold: float = 0.02
    edit_bound: float = EDIT_BOUND
    background_bound: float = BACKGROUND_BOUND

    def __post_init__(self) -> None:
        if not 0 < self.edit_bound < 1:
            raise ValueError(f"edit_bound must be in (0, 1), got {self.edit_bound}")
        if not 0 < self.background_bound <= 1:
            raise ValueError(f"background_bound must be in (0, 1], got {self.background_bound}")

    @classmethod
    def from_params(cls, params: EvalParams) -> VerifierConfig:
        """The verifier the ``eval`` params describe (``eval.verifier_*``)."""
        return cls(
            region=params.verifier_region,
            change_threshold=params.verifier_change_threshold,
            edit_bound=params.verifier_edit_bound,
            background_bound=params.verifier_background_bound,
        )

    def describe(self) -> dict[str, Any]:
        """The configuration as stored in ``metrics.json``."""
        return {
            **asdict(self),
            "distance": "mean |a-b| over region pixels and channels, [0,1] range",
            "correct": (
                f"nearest: d(target) + {TIE_EPS:g} < min over counterfactuals (ties incorrect); "
                f"edit: d_mask(out, target) <= {self.edit_bound:g} x d_mask(source, target); "
                f"collateral: on pixels outside the mask where a counterfactual differs from "
                f"the target, d(out, target) <= {self.edit_bound:g} x d(counterfactual, target); "
                f"background: mean |out - source| elsewhere <= {self.background_bound:g}"
            ),
            "correct_nearest": "the nearest criterion alone (the rule before the bounds)",
            "unverifiable": (
                "target equals a counterfactual inside the region, or the source inside the "
                "mask (excluded)"
            ),
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
    outcome: str
    correct_nearest: bool | None
    edit_ratio: float | None
    collateral_ratio: float | None
    background_error: float | None
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


def _mean_abs(a: FloatImage, b: FloatImage, where: BoolMask) -> float:
    return float(np.abs(a[where] - b[where]).mean())


def _changed(a: FloatImage, b: FloatImage, threshold: float) -> BoolMask:
    return np.asarray(np.abs(a - b).max(axis=-1) > threshold)


def bounds_check(
    output: FloatImage,
    target: FloatImage,
    source: FloatImage,
    counterfactuals: Mapping[str, FloatImage],
    mask: BoolMask,
    config: VerifierConfig,
) -> tuple[float | None, float | None, float | None]:
    """``(edit_ratio, collateral_ratio, background_error)`` — criteria 2–4 of the module
    docstring; ``None`` where the region is empty (the criterion then holds vacuously, except
    ``edit_ratio``: ``None`` there means the sample is not verifiable)."""
    edit_ratio = None
    if mask.any():
        gap = _mean_abs(source, target, mask)
        if gap > TIE_EPS:
            edit_ratio = _mean_abs(output, target, mask) / gap
    elsewhere = mask.copy()
    collateral: list[float] = []
    for cf in counterfactuals.values():
        region = _changed(cf, target, config.change_threshold) & ~mask
        if region.any():
            elsewhere |= region
            collateral.append(_mean_abs(output, target, region) / _mean_abs(cf, target, region))
    background = ~elsewhere
    return (
        edit_ratio,
        max(collateral) if collateral else None,
        _mean_abs(output, source, background) if background.any() else None,
    )


def verify(
    output: FloatImage,
    target: FloatImage,
    counterfactuals: Mapping[str, FloatImage],
    mask: BoolMask,
    config: VerifierConfig | None = None,
    *,
    source: FloatImage | None = None,
) -> Verdict:
    """Score one output against its true outcome and counterfactual outcomes.

    Args:
        output: the model's edit, same size as ``target`` (see ``images.to_array``).
        target: the true outcome.
        counterfactuals: kind → wrong outcome image (at least one).
        mask: the affected region (True inside).
        config: decision-region settings and bounds.
        source: the source image (default: the ``no_change`` counterfactual, which is it).

    Raises:
        ValueError: no counterfactuals, no source, or shapes that do not match.
    """
    cfg = config or VerifierConfig()
    if not counterfactuals:
        raise ValueError("the verifier needs at least one counterfactual outcome")
    src = source if source is not None else counterfactuals.get("no_change")
    if src is None:
        raise ValueError("the verifier needs the source image (or a 'no_change' counterfactual)")
    for name, img in {"output": output, "source": src, **counterfactuals}.items():
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
    best = min(dist.values())
    at_best = [k for k, d in dist.items() if d - best <= TIE_EPS]
    nearest = at_best[0] if len(at_best) == 1 else "tie"
    cf_min = min(dist[k] for k in counterfactuals)
    margin = cf_min - dist["target"]
    edit_ratio, collateral_ratio, background_error = bounds_check(
        output, target, src, counterfactuals, mask, cfg
    )
    verifiable = min(gap.values()) > TIE_EPS and edit_ratio is not None
    failed = [
        name
        for name, ok in zip(
            BOUND_FAILURES,
            (
                edit_ratio is not None and edit_ratio <= cfg.edit_bound,
                collateral_ratio is None or collateral_ratio <= cfg.edit_bound,
                background_error is None or background_error <= cfg.background_bound,
            ),
            strict=True,
        )
        if not ok
    ]
    correct_nearest: bool | None = (margin > TIE_EPS) if verifiable else None
    correct: bool | None = (bool(correct_nearest) and not failed) if verifiable else None
    if not verifiable:
        outcome = "unverifiable"
    elif correct:
        outcome = "target"
    elif nearest != "target":
        outcome = nearest
    else:  # nearest to the target, but a bound failed
        outcome = failed[0]
    inside = mask if mask.any() else None
    outside = ~mask
    return Verdict(
        verifiable=verifiable,
        correct=correct,
        nearest=nearest,
        distances=dist,
        margin=margin if verifiable else None,
        n_counterfactuals=len(counterfactuals),
        outcome=outcome,
        correct_nearest=correct_nearest,
        edit_ratio=edit_ratio,
        collateral_ratio=collateral_ratio,
        background_error=background_error,
        edit_error=pixel.l1(output, target, inside),
        preservation_psnr=pixel.psnr(output, target, outside) if outside.any() else None,
        preservation_ssim=pixel.ssim(output, target, outside) if outside.any() else None,
        region_fraction=float(region.mean()),
    )


def verify_missing(
    target: FloatImage,
    counterfactuals: Mapping[str, FloatImage],
    mask: BoolMask,
    config: VerifierConfig | None = None,
    *,
    source: FloatImage | None = None,
) -> Verdict:
    """The verdict for a sample without an output (missing or unreadable prediction).

    Whether a sample is verifiable does not depend on the output, so it is decided exactly as
    :func:`verify` decides it; a verifiable sample is then *wrong* under both rules (outcome
    :data:`NO_OUTPUT`, nearest ``"none"``), and every distance-based figure is ``None``.
    """
    src = source if source is not None else counterfactuals.get("no_change")
    if src is None:
        raise ValueError("the verifier needs the source image (or a 'no_change' counterfactual)")
    probe = verify(src, target, counterfactuals, mask, config, source=src)
    ok = probe.verifiable
    return Verdict(
        verifiable=ok,
        correct=False if ok else None,
        nearest="none",
        distances={},
        margin=None,
        n_counterfactuals=probe.n_counterfactuals,
        outcome=NO_OUTPUT if ok else "unverifiable",
        correct_nearest=False if ok else None,
        edit_ratio=None,
        collateral_ratio=None,
        background_error=None,
        edit_error=None,
        preservation_psnr=None,
        preservation_ssim=None,
        region_fraction=probe.region_fraction,
    )
