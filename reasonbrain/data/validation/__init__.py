"""Dataset validation with Great Expectations (issue 2 §5; DVC stage ``validate``).

Pipeline: :mod:`.manifests` reads every manifest line without stopping at bad ones →
:mod:`.images` probes each referenced image file once (in parallel) → :mod:`.facts` builds one
row of facts per line (inside root, decodes, mode, size, hashes, instruction length …) →
:mod:`.suite` lets a GX Core 1.x suite built from :mod:`.checks` judge the fact columns →
:mod:`.report` (JSON + terminal summary), GX HTML data docs, and :mod:`.quarantine` (cleaned
dataset + ``rejected.jsonl``).

Usage::

    from reasonbrain.data.validation import validate_dataset
    report = validate_dataset(Path("data/reasonsynth"), params.validate_,
                              report_path=Path("reports/validation.json"), docs_dir=None,
                              quarantine_dir=None)
    report.ok  # False when a blocking check failed
"""

from reasonbrain.data.validation.checks import CHECKS, Check
from reasonbrain.data.validation.core import validate_dataset
from reasonbrain.data.validation.report import CheckResult, ValidationReport

__all__ = ["CHECKS", "Check", "CheckResult", "ValidationReport", "validate_dataset"]
