"""Uncertainty: bootstrap confidence intervals and paired comparisons (scipy.stats.bootstrap).

Every aggregate in ``metrics.json`` is a mean over samples with a percentile-bootstrap CI (the
percentile method never leaves the range of resampled means and behaves for 0/1 data such as
reasoning accuracy, where BCa is undefined when all values agree). A *paired* comparison of two
runs uses only the samples both runs scored and bootstraps the mean per-sample difference, which
is far tighter than comparing two independent CIs. Resampling is seeded, so reruns give the same
intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap CI (``ci_low``/``ci_high`` are ``None`` when n < 2)."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _ci(
    data: tuple[np.ndarray, ...], statistic: Any, resamples: int, level: float, seed: int
) -> tuple[float, float]:
    from scipy.stats import bootstrap

    res = bootstrap(
        data,
        statistic,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        paired=len(data) > 1,
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean of ``values`` with a percentile-bootstrap CI.

    Raises:
        ValueError: ``values`` is empty.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to estimate from")
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(mean, None, None, 1)
    if np.all(x == x[0]):
        return Estimate(mean, mean, mean, int(x.size))
    lo, hi = _ci((x,), lambda s, axis: s.mean(axis=axis), resamples, level, seed)
    # the percentile interval of a mean contains the mean except in pathological resamples;
    # widen to include it so that reported intervals are never inconsistent with the estimate
    return Estimate(mean, min(lo, mean), max(hi, mean), int(x.size))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (B − A) over shared samples, its CI, and how often B beats A."""

    metric: str
    mean_a: float
    mean_b: float
    diff: Estimate
    b_better_share: float
    lower_is_better: bool

    @property
    def significant(self) -> bool:
        """True when the CI of the difference excludes 0."""
        lo, hi = self.diff.ci_low, self.diff.ci_high
        return lo is not None and hi is not None and (lo > 0 or hi < 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["significant"] = self.significant
        return d


def paired_values(
    a_rows: Mapping[str, Mapping[str, Any]], b_rows: Mapping[str, Mapping[str, Any]], metric: str
) -> tuple[list[float], list[float]]:
    """Aligned per-sample values of ``metric`` in two runs' rows (sample id → row with a
    ``metrics`` dict): the ids both runs scored, in id order, where both rows have the metric."""
    pairs = [
        (a_rows[i]["metrics"].get(metric), b_rows[i]["metrics"].get(metric))
        for i in sorted(set(a_rows) & set(b_rows))
    ]
    kept = [(x, y) for x, y in pairs if x is not None and y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    metric: str = "",
    lower_is_better: bool = False,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Paired bootstrap of mean(b − a) over aligned samples.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.shape != xb.shape or xa.size == 0:
        raise ValueError("paired comparison needs two equally long, non-empty sequences")
    d = xb - xa
    diff = bootstrap_mean(d.tolist(), resamples=resamples, level=level, seed=seed)
    better = (d < 0) if lower_is_better else (d > 0)
    return PairedDifference(
        metric=metric,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        diff=diff,
        b_better_share=float(better.mean()),
        lower_is_better=lower_is_better,
    )
