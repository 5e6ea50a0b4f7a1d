"""Judge the facts table with a Great Expectations (GX Core 1.x) suite.

One ephemeral (in-memory) GX context per validation: a pandas data source, a dataframe asset with
a whole-dataframe batch definition, the suite built from :data:`.checks.CHECKS`, a
``ValidationDefinition`` and a ``Checkpoint``. When HTML data docs are wanted, the context gets a
filesystem docs site and the checkpoint an ``UpdateDataDocsAction``.

Building the context and suite takes a few milliseconds (the one-off cost is importing GX, about
3 s, paid once per process), so nothing is cached across calls: every run starts from a clean
context and the docs site holds exactly this run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonbrain.config import ValidateParams
from reasonbrain.data.validation.checks import CHECKS

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.data_context import AbstractDataContext

SUITE_NAME = "reasonbrain_dataset"
_DOCS_SITE = "reasonbrain_docs"


@dataclass
class SuiteOutcome:
    """What the suite found.

    Attributes:
        failing_rows: check name → sorted indices of the facts rows that fail it.
        failed: check name → whether any of its expectations failed (also table-level ones).
        statistics: GX's counts of evaluated/successful expectations.
        docs_index: the data docs ``index.html`` (when docs were built).
    """

    failing_rows: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, bool] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    docs_index: Path | None = None


def _context(docs_dir: Path | None) -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),  # GX needs an absolute path
            },
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _raised(result: Any) -> str | None:
    """The error message when GX could not evaluate an expectation (a bug, never bad data)."""
    info = result.exception_info or {}
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for item in candidates:
        if item.get("raised_exception"):
            return str(item.get("exception_message") or "unknown error")
    return None


def run_suite(df: pd.DataFrame, params: ValidateParams, *, docs_dir: Path | None) -> SuiteOutcome:
    """Evaluate every check's expectations on ``df`` (the facts table).

    Args:
        df: the facts table (:func:`.facts.build_facts`), indexed 0..n-1.
        params: validation rules (thresholds, allowed sets).
        docs_dir: an empty directory for GX's HTML data docs, or ``None`` for none.

    Raises:
        RuntimeError: GX failed to evaluate an expectation (an internal error, not bad data).
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction, ValidationAction

    context = _context(docs_dir)
    source = context.data_sources.add_pandas("manifests")
    asset = source.add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("all_rows")
    expectations = []
    for check in CHECKS:
        for exp in check.expectations(params):
            exp.meta = {"check": check.name, "severity": check.severity}
            exp.description = f"**{check.name}** ({check.severity}): {check.description}"
            expectations.append(exp)
    # one store write for the whole suite (adding expectations one by one re-saves it each time)
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="dataset_rows")
    )
    actions: list[ValidationAction] = []
    if docs_dir is not None:
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=[_DOCS_SITE]))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="validate_dataset",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "COMPLETE"},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": df})
    (result,) = run.run_results.values()

    out = SuiteOutcome(statistics=dict(result.statistics))
    rows: dict[str, set[int]] = {c.name: set() for c in CHECKS}
    failed = dict.fromkeys(rows, False)
    for res in result.results:
        config = res.expectation_config
        assert config is not None and config.meta is not None  # set for every expectation above
        error = _raised(res)
        if error is not None:
            raise RuntimeError(f"Great Expectations could not evaluate {config.type}: {error}")
        name = config.meta["check"]
        failed[name] |= not res.success
        rows[name].update(int(i) for i in (res.result.get("unexpected_index_list") or []))
    out.failing_rows = {name: sorted(idx) for name, idx in rows.items()}
    out.failed = failed
    if docs_dir is not None:
        index = docs_dir / "index.html"
        out.docs_index = index if index.is_file() else None
    return out
