"""Distributed training on Ray Train (issue 4).

Modules, in the order a run uses them:

- :mod:`~reasonbrain.training.protocol` — what a trainable model must offer (forward → loss,
  parameter groups, ``save_pretrained``/``from_pretrained``) and :class:`ModelSpec`, how a worker
  builds or reloads one.
- :mod:`~reasonbrain.training.data` — data order as a pure function of ``(seed, step)`` and
  pre-loaded batches (no decode on the training path).
- :mod:`~reasonbrain.training.optim` — parameter groups with their own learning rates, weight-decay
  exclusions, warm-up + cosine schedule.
- :mod:`~reasonbrain.training.checkpoint` — checkpoint layout, RNG capture, storage (local or S3),
  run names and run discovery for ``--resume``.
- :mod:`~reasonbrain.training.metrics` — JSON-lines step log, DVC plots/metrics files, progress.
- :mod:`~reasonbrain.training.loop` — the per-worker loop Ray Train runs.
- :mod:`~reasonbrain.training.trainer` — :func:`train`, behind ``reasonbrain train``.
- :mod:`~reasonbrain.training.ablation` — the paper's ablation ladder (``reasonbrain ablate``).

Nothing heavy is imported here: ``from reasonbrain.training.trainer import train``.
"""
