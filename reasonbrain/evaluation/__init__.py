"""Evaluation: batch inference, the paper's metrics, an exact reasoning verifier, judges, reports.

Follows the pipeline step ``evaluate`` (DESIGN §2); one module per job:

- :mod:`~reasonbrain.evaluation.images` — loading images/masks in one documented convention.
- :mod:`~reasonbrain.evaluation.pixel` — L1, L2, PSNR, SSIM (masked variants for preservation).
- :mod:`~reasonbrain.evaluation.verifier` — judge-free ReasonSynth reasoning accuracy.
- :mod:`~reasonbrain.evaluation.encoders` — CLIP-I, CLIP-T, CLIP-dir, DINO from local weights.
- :mod:`~reasonbrain.evaluation.lpips` — LPIPS (AlexNet backbone) from local weights.
- :mod:`~reasonbrain.evaluation.judges` — the ``Judge`` interface: local VLM, HTTP, oracle; cache.
- :mod:`~reasonbrain.evaluation.protocols` — which references each benchmark compares against.
- :mod:`~reasonbrain.evaluation.scoring` — every per-sample number for one output.
- :mod:`~reasonbrain.evaluation.predictors` — what produces edits (model dir, ``identity``).
- :mod:`~reasonbrain.evaluation.runner` — resumable batch evaluation on Ray Data (or a plain loop).
- :mod:`~reasonbrain.evaluation.bootstrap` — bootstrap CIs and paired comparisons.
- :mod:`~reasonbrain.evaluation.aggregate` — ``metrics.json`` from ``samples.jsonl``.
- :mod:`~reasonbrain.evaluation.report` — the comparison report (``reasonbrain report``).

Nothing heavy is imported here; import the submodule you need.
"""
