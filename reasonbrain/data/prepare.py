"""Stage ``data``: build the dataset directory that params.yaml describes.

The base dataset is generated (ReasonSynth) or imported; then the landing-zone drops that the
``ingest`` flow merged into ``data.ingested_dir`` are appended (:mod:`reasonbrain.data.merge`).
"""

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
    """Generate ReasonSynth or import a dataset into ``params.dir``, as ``params.source`` says,
    then append the drops merged into ``params.ingested_dir``.

    Raises:
        ConfigError: ``source=import`` without ``import_format``/``import_src``.
        DatasetError: a merged drop is not checked out or repeats a sample id.
    """
    from dataclasses import replace

    from reasonbrain.data.merge import merge_ingested

    summary = _prepare_base(params, force=force, progress=progress)
    added = merge_ingested(params.dir, params.ingested_dir)
    if not added:
        return summary
    counts = dict(summary.counts)
    for split, n in added.items():
        counts[split] = counts.get(split, 0) + n
    return replace(summary, counts=counts)


def _prepare_base(params: DataParams, *, force: bool, progress: bool) -> DatasetSummary:
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
