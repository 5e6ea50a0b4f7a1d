"""User-facing error types.

Every error a user can cause (bad input, missing weights, an unreachable store …) is one of these.
Each carries *what* went wrong, *where* and *how to fix it*; the CLI turns it into one red line and
exit code 2 (no traceback unless ``--debug``).
"""

from __future__ import annotations


class ReasonBrainError(Exception):
    """Base class: a problem the user can fix.

    Args:
        what: what is wrong, in a few words.
        where: the file, line, key or URI concerned (optional).
        fix: how to fix it (optional).
    """

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as a single line: ``what (where) — fix``."""
        msg = self.what
        if self.where:
            msg += f" ({self.where})"
        if self.fix:
            msg += f" — {self.fix}"
        return msg.replace("\n", " ")


class ConfigError(ReasonBrainError):
    """params.yaml, a ``--set`` override or a setting is invalid."""


class ManifestError(ReasonBrainError):
    """A dataset manifest line or dataset directory is malformed."""


class DatasetError(ReasonBrainError):
    """A dataset directory is missing, incomplete or fails validation."""


class ImportFormatError(ReasonBrainError):
    """A source given to an importer does not match its declared format."""


class MissingWeightsError(ReasonBrainError):
    """Pretrained weights are not available locally (and network access is not allowed)."""


class CheckpointError(ReasonBrainError):
    """A model directory or checkpoint does not match its config (missing/unexpected keys …)."""


class StoreError(ReasonBrainError):
    """The object store is unreachable or an object is missing/corrupted."""


class RegistryError(ReasonBrainError):
    """A registry reference or operation is invalid (unknown name, version, alias …)."""
