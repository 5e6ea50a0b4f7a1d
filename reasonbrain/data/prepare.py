"""Stage ``data``: build the dataset directory that params.yaml describes."""

from __future__ import annotations

from dataclasses import dataclass, field

from reasonbrain.config import DataParams
from reasonbrain.errors import ConfigError


@dataclass(frozen=True)
class DatasetSummary:
    """What a generate/import run produced."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """All records over all splits."""
        return sum(self.counts.values())


def prepare_dataset(
    params: DataParams, *, force: bool = False, progress: bool = True
) -> DatasetSummary:
    """Generate ReasonSynth or import a dataset into ``params.dir``, as ``params.source`` says.

    Raises:
        ConfigError: ``source=import`` without ``import_format``/``import_src``.
    """
    if params.source == "reasonsynth":
        from reasonbrain.data.synth import generate_dataset

        return generate_dataset(params.dir, params.synth, force=force, progress=progress)
    if params.import_format is None or params.import_src is None:
        raise ConfigError(
            "data.source is 'import' but data.import_format or data.import_src is not set",
            where="params.yaml: data",
            fix="set both, e.g. import_format: reason50k, import_src: /path/to/Reason50K",
        )
    from reasonbrain.data.importers import import_dataset

    return import_dataset(
        params.import_format,
        params.import_src,
        params.dir,
        force=force,
        options=params.import_options,
        progress=None if progress else False,  # None: a bar only when stderr is a terminal
    )
