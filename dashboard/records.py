"""The records the dashboard's queries return: plain frozen dataclasses, built inside a session.

No ORM object escapes a session, so pages can cache and pickle what they get, and nothing lazy-loads
behind a page's back. The pure metric helpers (headline order, primary metric, lower-is-better)
live here too, shared by every page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from reasonbrain.evaluation.aggregate import HEADLINE
from reasonbrain.evaluation.bootstrap import PairedDifference
from reasonbrain.evaluation.scoring import LOWER_IS_BETTER
from reasonbrain.registry.tables import Evaluation, EvaluationSample, ModelVersion, Run

#: a sample whose ``verdict`` column is NULL (not a ReasonSynth sample) in verdict filters
NO_VERDICT = "none"
#: primary metrics in order of preference (the first one an evaluation has is its headline)
PRIMARY_METRICS: tuple[str, ...] = ("reasoning_acc", "instruction_alignment", "mllm_score")
SORT_BY_ID = "sample_id"

Outcome = Literal["any", "correct", "incorrect", "excluded"]


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Counts:
    """How much the database holds (an all-zero count means "run the pipeline first")."""

    model_versions: int
    evaluations: int
    runs: int
    datasets: int

    @property
    def empty(self) -> bool:
        """True when nothing has been recorded yet."""
        return not (self.model_versions or self.evaluations or self.runs or self.datasets)


@dataclass(frozen=True)
class Estimate:
    """A mean with its CI as ``metrics.json`` stores it."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    n: int | None

    @staticmethod
    def from_json(d: Any) -> Estimate | None:
        """Parse ``{"mean", "ci_low", "ci_high", "n"}`` (``None`` for anything else)."""
        if not isinstance(d, dict) or not isinstance(d.get("mean"), int | float):
            return None
        lo, hi, n = d.get("ci_low"), d.get("ci_high"), d.get("n")
        return Estimate(
            float(d["mean"]),
            float(lo) if isinstance(lo, int | float) else None,
            float(hi) if isinstance(hi, int | float) else None,
            int(n) if isinstance(n, int) else None,
        )

    def text(self, digits: int = 3) -> str:
        """``0.387 [0.352, 0.427]``."""
        if self.ci_low is None or self.ci_high is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


@dataclass(frozen=True)
class EvaluationInfo:
    """One ``evaluations`` row, for selectors and headers."""

    id: int
    label: str
    key: str | None
    split: str
    n_samples: int | None
    created_at: datetime
    model_ref: str | None
    model_name: str | None
    dataset_version: str | None
    store_prefix: str | None
    primary: str | None
    headline: Estimate | None

    @property
    def title(self) -> str:
        """What a selector shows: ``reasonbrain@3 · test · 600 samples · #12``."""
        n = f"{self.n_samples} samples" if self.n_samples is not None else "? samples"
        return f"{self.label} · {self.split} · {n} · #{self.id}"


@dataclass(frozen=True)
class RunRow:
    """One ``runs`` row."""

    id: str
    kind: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    parent_id: str | None
    git_commit: str | None
    params_hash: str | None
    details: dict[str, Any] | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        """Wall time (``None`` while running)."""
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class CurvePoint:
    """One logged training value."""

    run_id: str
    name: str
    step: int
    value: float


@dataclass(frozen=True)
class VersionRow:
    """One registered model version with its aliases."""

    id: int
    name: str
    version: int
    aliases: tuple[str, ...]
    created_at: datetime
    size_bytes: int
    sha256: str
    store_uri: str
    run_id: str | None
    lineage: dict[str, Any]
    description: str | None
    archived: bool
    files: tuple[dict[str, Any], ...]

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ModelSummary:
    """A model name: how many versions, the newest, and where each alias points."""

    name: str
    n_versions: int
    latest: int
    aliases: dict[str, int]


@dataclass(frozen=True)
class PromotionRow:
    """One decision of the promotion gate."""

    id: int
    name: str
    candidate: str | None
    incumbent: str | None
    decision: str
    metric: str
    margin: float
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    n_pairs: int | None
    reason: str
    created_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class DatasetRow:
    """A dataset version and its validation status."""

    id: int
    name: str
    version: str
    validation_status: str
    split_counts: dict[str, Any]
    created_at: datetime
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class SampleRow:
    """One evaluation sample (what the edit browser shows)."""

    id: int
    evaluation_id: int
    sample_id: str
    category: str
    family: str | None
    holdout: str | None
    instruction: str
    rationale: str | None
    verdict: str | None
    correct: bool | None
    metrics: dict[str, Any]
    image_uris: dict[str, Any]


@dataclass(frozen=True)
class Facets:
    """The values an evaluation's samples take (filter choices) and its metric names."""

    categories: tuple[str, ...]
    families: tuple[str, ...]
    holdouts: tuple[str, ...]
    verdicts: tuple[str, ...]
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class SampleFilter:
    """What the edit browser shows. Empty tuples mean "no restriction".

    Attributes:
        categories, families, holdouts: keep samples whose value is one of these.
        verdicts: automatic verdicts to keep (:data:`NO_VERDICT` selects NULL verdicts).
        outcome: ``correct`` / ``incorrect`` / ``excluded`` (``correct`` is NULL) or ``any``.
        metric, metric_min, metric_max: keep samples whose per-sample ``metric`` lies in the
            closed range (either bound may be ``None``); samples without the metric drop out.
        search: case-insensitive substring of the instruction or the sample id.
        sort: :data:`SORT_BY_ID` or a metric name (NULLs last); ties broken by sample id.
        descending: sort direction.
    """

    categories: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    holdouts: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    outcome: Outcome = "any"
    metric: str | None = None
    metric_min: float | None = None
    metric_max: float | None = None
    search: str = ""
    sort: str = SORT_BY_ID
    descending: bool = False


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of two evaluations on one metric (B − A over shared samples)."""

    metric: str
    n_shared: int
    overall: PairedDifference | None
    by_category: dict[str, PairedDifference] = field(default_factory=dict)
    #: for 0/1 metrics: how many shared samples only A / only B / both / neither got right
    both: int | None = None
    only_a: int | None = None
    only_b: int | None = None
    neither: int | None = None


def order_metrics(names: Iterable[str]) -> list[str]:
    """Headline metrics first (the evaluation's own order), then the rest alphabetically."""
    seen = set(names)
    return [m for m in HEADLINE if m in seen] + sorted(seen - set(HEADLINE))


def primary_metric(summary: dict[str, Any]) -> str | None:
    """The metric an evaluation is judged by (reasoning accuracy for ReasonSynth)."""
    metrics = (summary.get("overall") or {}).get("metrics") or {}
    for m in PRIMARY_METRICS:
        if m in metrics:
            return m
    names = order_metrics(metrics)
    return names[0] if names else None


def summary_estimate(summary: dict[str, Any], metric: str) -> Estimate | None:
    """The overall estimate of ``metric`` in an evaluation summary (``metrics.json``)."""
    return Estimate.from_json(((summary.get("overall") or {}).get("metrics") or {}).get(metric))


def lower_is_better(metric: str) -> bool:
    """True for distances/errors (L1, L2, LPIPS, edit error)."""
    return metric in LOWER_IS_BETTER


def evaluation_info(e: Evaluation, headlines: dict[str, Any] | None = None) -> EvaluationInfo:
    """The record of an ``evaluations`` row.

    Args:
        e: the row (its model version and dataset loaded).
        headlines: the overall estimates of :data:`PRIMARY_METRICS`, when the query fetched
            them by JSON path instead of loading the whole summary (see
            :func:`dashboard.queries.evaluation_infos`).
    """
    if headlines is None:
        summary = e.summary or {}
        primary = primary_metric(summary)
        headline = summary_estimate(summary, primary) if primary else None
    else:
        found = [(m, Estimate.from_json(headlines.get(m))) for m in PRIMARY_METRICS]
        primary, headline = next(((m, h) for m, h in found if h is not None), (None, None))
    mv = e.model_version
    return EvaluationInfo(
        id=e.id,
        label=e.label or (mv.ref if mv is not None else f"evaluation {e.id}"),
        key=e.key,
        split=e.split,
        n_samples=e.n_samples,
        created_at=e.created_at,
        model_ref=mv.ref if mv is not None else None,
        model_name=mv.name if mv is not None else None,
        dataset_version=e.dataset.version if e.dataset is not None else None,
        store_prefix=e.store_prefix,
        primary=primary,
        headline=headline,
    )


def run_row(r: Run) -> RunRow:
    return RunRow(
        id=r.id,
        kind=r.kind,
        status=r.status,
        started_at=r.started_at,
        ended_at=r.ended_at,
        parent_id=r.parent_id,
        git_commit=r.git_commit,
        params_hash=r.params_hash,
        details=r.details,
        error=r.error,
    )


def sample_row(s: EvaluationSample) -> SampleRow:
    return SampleRow(
        id=s.id,
        evaluation_id=s.evaluation_id,
        sample_id=s.sample_id,
        category=s.category,
        family=s.family,
        holdout=s.holdout,
        instruction=s.instruction,
        rationale=s.rationale,
        verdict=s.verdict,
        correct=s.correct,
        metrics=dict(s.metrics or {}),
        image_uris=dict(s.image_uris or {}),
    )


def version_row(mv: ModelVersion) -> VersionRow:
    return VersionRow(
        id=mv.id,
        name=mv.name,
        version=mv.version,
        aliases=tuple(sorted(a.alias for a in mv.aliases)),
        created_at=mv.created_at,
        size_bytes=mv.size_bytes,
        sha256=mv.sha256,
        store_uri=mv.store_uri,
        run_id=mv.run_id,
        lineage=dict(mv.lineage or {}),
        description=mv.description,
        archived=mv.archived_at is not None,
        files=tuple(dict(f) for f in (mv.files or [])),
    )


def summary_metric_names(summary: dict[str, Any]) -> list[str]:
    """Metric names of a summary, headline first."""
    return order_metrics(((summary.get("overall") or {}).get("metrics") or {}).keys())


def group_estimates(
    summary: dict[str, Any], group: str, metric: str
) -> list[tuple[str, Estimate, int | None]]:
    """``(group value, estimate, n)`` for ``group`` in ``by_category``/``by_family``/…"""
    out: list[tuple[str, Estimate, int | None]] = []
    for value, block in sorted((summary.get(group) or {}).items()):
        if not isinstance(block, dict):
            continue
        est = Estimate.from_json((block.get("metrics") or {}).get(metric))
        if est is not None:
            n = block.get("n")
            out.append((str(value), est, int(n) if isinstance(n, int) else None))
    return out
