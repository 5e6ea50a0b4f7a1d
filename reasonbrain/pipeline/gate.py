"""The promotion gate: does the candidate go to ``production`` or stay in ``staging``?

On the **same samples** (paired by sample id), the candidate's per-sample values of
``promote.metric`` are compared with

- the current ``production`` version of the same name, when there is one (evaluated on the same
  dataset version, split and eval params — the flow evaluates it again when no such evaluation
  is recorded); or
- every baseline in ``promote.baselines`` (identity, ip2p …) when there is no production model yet.

Each comparison is a paired bootstrap of the mean per-sample improvement
(:func:`reasonbrain.evaluation.bootstrap.paired_difference`). The candidate is promoted only when
the ``promote.ci_level`` CI of *every* improvement lies entirely above ``promote.margin``;
otherwise it gets the ``staging`` alias. A candidate whose bytes are already the production
version is "the same model": production stays, and the decision says so. Every decision is a
``promotions`` row holding the numbers and the reason in words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonbrain.config import PromoteParams
from reasonbrain.errors import RegistryError
from reasonbrain.evaluation.bootstrap import paired_difference
from reasonbrain.pipeline.evaluations import sample_values
from reasonbrain.registry.api import Registry
from reasonbrain.registry.tables import ModelVersion, PromotionDecision, utcnow

PRODUCTION, STAGING = "production", "staging"


@dataclass(frozen=True)
class Comparison:
    """The candidate against one reference (the production version or a baseline).

    ``improvement`` is candidate − reference for a higher-is-better metric and reference −
    candidate otherwise, so a positive value always means "the candidate is better".
    """

    against: str
    evaluation_id: int
    n_pairs: int
    candidate_mean: float | None
    reference_mean: float | None
    improvement: float | None
    ci_low: float | None
    ci_high: float | None
    passed: bool

    def describe(self, metric: str) -> str:
        """``reasoning_acc +0.202 [0.163, 0.240] vs ip2p (600 pairs)``."""
        if self.n_pairs == 0 or self.improvement is None:
            return f"{metric}: no shared samples with {self.against}"
        ci = (
            f" [{self.ci_low:+.3f}, {self.ci_high:+.3f}]"
            if self.ci_low is not None and self.ci_high is not None
            else " [no CI: fewer than 2 pairs]"
        )
        return f"{metric} {self.improvement:+.3f}{ci} vs {self.against} ({self.n_pairs} pairs)"


@dataclass
class Decision:
    """What the gate decided, and why."""

    name: str
    candidate: str
    candidate_version_id: int
    decision: str
    reason: str
    metric: str
    margin: float
    incumbent: str | None = None
    incumbent_version_id: int | None = None
    same_model: bool = False
    comparisons: list[Comparison] = field(default_factory=list)
    promotion_id: int | None = None

    @property
    def promoted(self) -> bool:
        """True when this decision moved ``production`` to a new version."""
        return self.decision == PRODUCTION and not self.same_model

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the flow's result)."""
        d = asdict(self)
        d["promoted"] = self.promoted
        return d


def compare(
    registry: Registry,
    candidate_eval: int,
    reference_eval: int,
    against: str,
    p: PromoteParams,
) -> Comparison:
    """Paired comparison of two recorded evaluations on their shared samples."""
    cand = sample_values(registry, candidate_eval, p.metric)
    ref = sample_values(registry, reference_eval, p.metric)
    shared = sorted(set(cand) & set(ref))
    if not shared:
        return Comparison(against, reference_eval, 0, None, None, None, None, None, False)
    a, b = [ref[i] for i in shared], [cand[i] for i in shared]
    if not p.higher_is_better:  # improvement = reference − candidate
        a, b = [-x for x in a], [-x for x in b]
    d = paired_difference(
        a, b, metric=p.metric, resamples=p.bootstrap_resamples, level=p.ci_level, seed=p.seed
    )
    lo, hi = d.diff.ci_low, d.diff.ci_high
    sign = 1.0 if p.higher_is_better else -1.0
    return Comparison(
        against=against,
        evaluation_id=reference_eval,
        n_pairs=len(shared),
        candidate_mean=sign * d.mean_b,
        reference_mean=sign * d.mean_a,
        improvement=d.diff.mean,
        ci_low=lo,
        ci_high=hi,
        passed=lo is not None and lo > p.margin,
    )


def _production(registry: Registry, name: str) -> ModelVersion | None:
    try:
        return registry.get(f"{name}@{PRODUCTION}")
    except RegistryError:
        return None


def decide(
    registry: Registry,
    candidate: ModelVersion,
    candidate_eval: int,
    baselines: dict[str, int],
    p: PromoteParams,
    *,
    incumbent_eval: Callable[[ModelVersion], int],
    run_id: str | None = None,
) -> Decision:
    """Run the gate for ``candidate`` (see the module docstring), move its alias, record it.

    Args:
        registry: the registry (aliases, ``promotions`` rows).
        candidate: the registered candidate version.
        candidate_eval: its evaluation id (the same samples the references are compared on).
        baselines: ``baseline label → evaluation id`` on the same dataset version and split.
        p: the ``promote`` params.
        incumbent_eval: gives the production version's evaluation id on the same dataset
            version, split and eval params (the flow looks it up, or evaluates it now).
        run_id: the flow run deciding.
    """
    ci = f"{p.ci_level:.0%} CI"
    incumbent = _production(registry, candidate.name)
    comparisons: list[Comparison] = []
    same = incumbent is not None and (
        incumbent.id == candidate.id or incumbent.sha256 == candidate.sha256
    )
    if incumbent is not None and same:
        decision = PRODUCTION
        reason = (
            f"{candidate.ref} is the production model already ({incumbent.ref}, same sha256 "
            f"{candidate.sha256[:12]}): the gate saw the same model, production is unchanged"
        )
    else:
        if incumbent is not None:
            refs = {f"production {incumbent.ref}": incumbent_eval(incumbent)}
        else:
            refs = {label: ev for label, ev in baselines.items() if label in p.baselines}
            missing = sorted(set(p.baselines) - set(refs))
            if missing:
                raise RegistryError(
                    f"no evaluation of baseline(s) {', '.join(missing)} to compare with",
                    where="promote.baselines",
                    fix="evaluate them in the pipeline (dvc.yaml) or remove them from the list",
                )
        comparisons = [compare(registry, candidate_eval, ev, lab, p) for lab, ev in refs.items()]
        ok = bool(comparisons) and all(c.passed for c in comparisons)
        decision = PRODUCTION if ok else STAGING
        shown = "; ".join(c.describe(p.metric) for c in comparisons) or "nothing to compare with"
        if ok:
            what = "the production model" if incumbent else "every baseline"
            reason = (
                f"promoted {candidate.ref} to production: it beats {what} ({shown}); the {ci} "
                f"of each paired improvement lies above the margin {p.margin:g}"
            )
        else:
            failed = [c.against for c in comparisons if not c.passed] or ["—"]
            reason = (
                f"kept {candidate.ref} in staging: not measurably better than "
                f"{', '.join(failed)} ({shown}); production needs the {ci} of the paired "
                f"improvement above the margin {p.margin:g}"
            )
    registry.promote(candidate.ref, decision)
    deciding = min(
        comparisons,
        key=lambda c: c.ci_low if c.ci_low is not None else float("-inf"),
        default=None,
    )
    result = Decision(
        name=candidate.name,
        candidate=candidate.ref,
        candidate_version_id=candidate.id,
        decision=decision,
        reason=reason,
        metric=p.metric,
        margin=p.margin,
        incumbent=incumbent.ref if incumbent else None,
        incumbent_version_id=incumbent.id if incumbent else None,
        same_model=same,
        comparisons=comparisons,
    )
    with registry.db.sessions.begin() as s:
        row = PromotionDecision(
            name=candidate.name,
            candidate_version_id=candidate.id,
            incumbent_version_id=result.incumbent_version_id,
            decision=decision,
            metric=p.metric,
            margin=p.margin,
            difference=deciding.improvement if deciding else None,
            ci_low=deciding.ci_low if deciding else None,
            ci_high=deciding.ci_high if deciding else None,
            n_pairs=deciding.n_pairs if deciding else None,
            reason=reason,
            details={
                "comparisons": [asdict(c) for c in comparisons],
                "same_model": same,
                "higher_is_better": p.higher_is_better,
                "ci_level": p.ci_level,
                "bootstrap_resamples": p.bootstrap_resamples,
                "baselines": list(p.baselines) if incumbent is None else [],
            },
            run_id=run_id,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        result.promotion_id = int(row.id)
    return result
