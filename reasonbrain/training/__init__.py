"""Distributed training on Ray Train (issue 4).

Modules, in the order a run uses them:

- :mod:`~reasonbrain.training.protocol` — what a trainable model must offer (forward → loss and
  ``log_terms()``, parameter groups, ``save_pretrained``/``from_pretrained``) and
  :class:`ModelSpec`, how a worker builds or reloads one.
- :mod:`~reasonbrain.training.datasource` — where the data lives (a directory or ``s3://``) and
  how a sample is read and decoded.
- :mod:`~reasonbrain.training.data` — data order as a pure function of ``(seed, step)`` and the
  pre-loaded batches; :mod:`~reasonbrain.training.stream` — the same samples streamed by Ray Data.
- :mod:`~reasonbrain.training.optim` — parameter groups with their own learning rates, weight-decay
  exclusions, warm-up + cosine schedule.
- :mod:`~reasonbrain.training.distributed` — DDP or FSDP (auto-wrap policy, dtype per group).
- :mod:`~reasonbrain.training.checkpoint` — checkpoint files, RNG capture, storage (local or S3),
  run names and run discovery for ``--resume``.
- :mod:`~reasonbrain.training.state` — ``TrainState``: restore / save (full or sharded).
- :mod:`~reasonbrain.training.step` — ``train_step`` and ``eval_step``.
- :mod:`~reasonbrain.training.metrics` — JSON-lines step log, DVC plots/metrics files, progress.
- :mod:`~reasonbrain.training.loop` — the per-worker loop Ray Train runs (composes the above).
- :mod:`~reasonbrain.training.trainer` — :func:`train`, behind ``reasonbrain train``.
- :mod:`~reasonbrain.training.memory` — the per-GPU memory estimate of ``train --dry-run``.
- :mod:`~reasonbrain.training.ablation` — the paper's ablation ladder (``reasonbrain ablate``).

Nothing heavy is imported here: ``from reasonbrain.training.trainer import train``.
"""
