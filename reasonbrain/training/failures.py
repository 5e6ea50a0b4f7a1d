"""Where a training failure happened, in words that survive the trip from a Ray worker.

Ray Train hands the driver a worker's exception without its traceback (and a traceback *text*
cut in the middle to 1,000 characters), so ``reasonbrain train`` used to print only the tail of
that text. The worker therefore writes :func:`failure_note` on the exception (``add_note``: notes
are pickled with it) before Ray sees it, and the CLI prints the exception's type, message, rank
and note as one line (``reasonbrain.cli.train.describe_failure``).
"""

from __future__ import annotations

import traceback
from pathlib import Path


def failure_note(err: BaseException) -> str:
    """``"at <our file>:<line> in <function>"`` — the innermost frame in our package — with the
    innermost frame overall in brackets when that is a library's ("" without a traceback)."""
    import reasonbrain

    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return ""
    package = Path(reasonbrain.__file__).resolve().parent

    def ours(f: traceback.FrameSummary) -> bool:
        return Path(f.filename).resolve().is_relative_to(package)

    def where(f: traceback.FrameSummary) -> str:
        path = Path(f.filename).resolve()
        short = path.relative_to(package.parent) if ours(f) else Path(path.name)
        return f"{short.as_posix()}:{f.lineno} in {f.name}"

    mine = [f for f in frames if ours(f)]
    inner = frames[-1]
    if mine and mine[-1] is not inner:
        return f"at {where(mine[-1])} (innermost: {where(inner)})"
    return f"at {where(inner)}"
