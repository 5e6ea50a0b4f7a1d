"""Bootstrap CIs contain the estimate and shrink with more samples; paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from reasonbrain.evaluation.bootstrap import bootstrap_mean, paired_difference


@pytest.mark.parametrize("seed", range(5))
def test_ci_contains_the_point_estimate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for values in (rng.normal(size=30), rng.integers(0, 2, 25), rng.exponential(size=10)):
        e = bootstrap_mean(values.tolist(), resamples=500, seed=seed)
        assert e.mean == pytest.approx(float(np.mean(values)))
        assert e.ci_low is not None and e.ci_high is not None
        assert e.ci_low <= e.mean <= e.ci_high
        assert e.ci_low < e.ci_high


def test_ci_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        e = bootstrap_mean(rng.integers(0, 2, n).tolist(), resamples=500)
        assert e.ci_low is not None and e.ci_high is not None
        widths.append(e.ci_high - e.ci_low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.06  # ~ 2 * 1.96 * sqrt(.25 / 2000) = 0.044


def test_degenerate_inputs() -> None:
    assert bootstrap_mean([1.0, 1.0, 1.0]).to_dict() == {
        "mean": 1.0,
        "ci_low": 1.0,
        "ci_high": 1.0,
        "n": 3,
    }
    one = bootstrap_mean([0.3])
    assert one.n == 1 and one.ci_low is None
    with pytest.raises(ValueError):
        bootstrap_mean([])


def test_same_seed_same_interval() -> None:
    x = np.random.default_rng(1).normal(size=50).tolist()
    assert bootstrap_mean(x, seed=3) == bootstrap_mean(x, seed=3)


def test_paired_difference() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=100)
    b = a + 0.1 + rng.normal(scale=0.01, size=100)  # b is better on every sample by ~0.1
    pd = paired_difference(a.tolist(), b.tolist(), metric="clip_t", resamples=500)
    assert pd.diff.mean == pytest.approx(0.1, abs=0.01)
    assert pd.significant and pd.b_better_share == 1.0
    assert pd.diff.ci_low is not None and 0.09 < pd.diff.ci_low < 0.1 < pd.diff.ci_high + 0.001
    # the paired CI is far tighter than the spread of either run
    assert pd.diff.ci_high - pd.diff.ci_low < 0.01
    same = paired_difference(a.tolist(), a.tolist())
    assert same.diff.mean == 0.0 and not same.significant
    lower = paired_difference([0.5, 0.4], [0.2, 0.3], lower_is_better=True)  # l1 went down
    assert lower.b_better_share == 1.0 and lower.to_dict()["lower_is_better"]
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])
