"""The validation result: per-check outcomes, JSON report, one-screen terminal summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reasonbrain.data.schema import atomic_write_text

#: How many failing rows a check lists in the report.
MAX_EXAMPLES = 10


@dataclass
class Example:
    """One failing row: where it is, its id (if it has one) and what is wrong."""

    where: str
    id: str | None
    detail: str


@dataclass
class CheckResult:
    """The outcome of one check."""

    name: str
    severity: str
    description: str
    passed: bool
    failing_rows: int
    examples: list[Example] = field(default_factory=list)


@dataclass
class QuarantineSummary:
    """What ``--quarantine`` wrote."""

    dir: Path
    kept: dict[str, int]
    rejected: int
    images_copied: int


@dataclass
class ValidationReport:
    """Everything :func:`reasonbrain.data.validation.validate_dataset` found.

    ``ok`` is false when any *blocking* check failed; warnings never make it false.
    """

    root: Path
    rows: int
    rows_per_split: dict[str, int]
    blank_lines: dict[str, int]
    invalid_rows: int
    images_probed: int
    checks: list[CheckResult]
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    gx_statistics: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    docs_index: Path | None = None
    quarantine: QuarantineSummary | None = None

    @property
    def ok(self) -> bool:
        """True when every blocking check passed."""
        return all(c.passed for c in self.checks if c.severity == "blocking")

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``.

        Raises:
            KeyError: no such check.
        """
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed_checks(self) -> list[str]:
        """Names of the checks that failed (blocking and warning)."""
        return [c.name for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the report file's content)."""
        blocking = [c for c in self.checks if c.severity == "blocking"]
        warnings = [c for c in self.checks if c.severity == "warning"]
        out: dict[str, Any] = {
            "dataset": str(self.root),
            "ok": self.ok,
            "totals": {
                "rows": self.rows,
                "valid_rows": self.rows - self.invalid_rows,
                "invalid_rows": self.invalid_rows,
                "images_probed": self.images_probed,
                "checks": len(self.checks),
                "checks_failed": len(self.failed_checks),
                "blocking_failed": sum(not c.passed for c in blocking),
                "warnings_failed": sum(not c.passed for c in warnings),
            },
            "rows_per_split": dict(self.rows_per_split),
            "blank_lines": dict(self.blank_lines),
            "checks": [asdict(c) for c in self.checks],
            "great_expectations": {"statistics": self.gx_statistics},
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "docs_index": str(self.docs_index) if self.docs_index else None,
        }
        if self.quarantine is not None:
            q = self.quarantine
            out["quarantine"] = {
                "dir": str(q.dir),
                "kept": q.kept,
                "rejected": q.rejected,
                "images_copied": q.images_copied,
            }
        return out

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_dict` as JSON atomically (temporary file + rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        self.report_path = path

    def print_summary(self, console: Console) -> None:
        """Print a one-screen summary: one line per check, verdict, where the outputs are."""
        splits = " · ".join(f"{k} {v}" for k, v in self.rows_per_split.items())
        console.print(
            f"[bold]Validation[/] of [bold]{self.root}[/]: {self.rows} rows ({splits}), "
            f"{self.images_probed} image files, {self.seconds:.1f} s"
        )
        table = Table(show_edge=False, pad_edge=False, expand=False)
        # fixed columns keep their width; the example column takes what is left (and is cut)
        width = max(len(c.name) for c in self.checks) if self.checks else 5
        table.add_column("check", no_wrap=True, min_width=width)
        table.add_column("severity", no_wrap=True, min_width=8)
        table.add_column("result", no_wrap=True, min_width=6)
        table.add_column("rows", justify="right", no_wrap=True, min_width=4)
        rest = console.width - (width + 8 + 6 + 4) - 4 * 3
        table.add_column("first example", overflow="ellipsis", no_wrap=True, max_width=max(rest, 8))
        for c in self.checks:
            if c.passed:
                status = "[green]pass[/]"
            elif c.severity == "blocking":
                status = "[bold red]FAIL[/]"
            else:
                status = "[yellow]warn[/]"
            first = f"{c.examples[0].where}: {c.examples[0].detail}" if c.examples else ""
            table.add_row(c.name, c.severity, status, str(c.failing_rows or ""), first)
        console.print(table)
        failed = [c for c in self.checks if not c.passed and c.severity == "blocking"]
        if failed:
            console.print(
                f"[bold red]INVALID[/]: {len(failed)} blocking check(s) failed; "
                f"{self.invalid_rows} of {self.rows} rows are invalid"
            )
        else:
            warned = sum(not c.passed for c in self.checks)
            note = f" ({warned} warning(s))" if warned else ""
            console.print(f"[bold green]valid[/]{note}")
        for label, value in (("report", self.report_path), ("data docs", self.docs_index)):
            if value is not None:
                console.print(f"{label}: {value}", highlight=False)
        if self.quarantine is not None:
            q = self.quarantine
            console.print(
                f"quarantine: {sum(q.kept.values())} rows kept, {q.rejected} rejected "
                f"→ {q.dir} (rejected.jsonl lists why)",
                highlight=False,
            )
