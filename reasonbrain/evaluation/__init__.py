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
- :mod:`~reasonbrain.evaluation.predictors` — which model (resolved, pinned) produces the edits,
  or which directory of edits made elsewhere (``--predictions``) is read.
- :mod:`~reasonbrain.evaluation.adversarial` — outputs without reasoning the verifier must reject.
- :mod:`~reasonbrain.evaluation.worker` — edits and scores a batch (one per Ray Data actor).
- :mod:`~reasonbrain.evaluation.engines` — runs the worker: Ray Data actors or a plain loop.
- :mod:`~reasonbrain.evaluation.store` — the output directory: resumable, crash-safe.
- :mod:`~reasonbrain.evaluation.runkey` — the resume key (what must match to reuse rows).
- :mod:`~reasonbrain.evaluation.describe` — ``metrics.json`` and the configuration behind it.
- :mod:`~reasonbrain.evaluation.runner` — ``evaluate()``: the steps above, in order.
- :mod:`~reasonbrain.evaluation.bootstrap` — bootstrap CIs and paired comparisons.
- :mod:`~reasonbrain.evaluation.aggregate` — ``metrics.json`` from ``samples.jsonl``.
- :mod:`~reasonbrain.evaluation.report` — the comparison report (``reasonbrain report``).
- :mod:`~reasonbrain.evaluation.diagnostics` — its learning diagnostics (per family, verdicts,
  worst failures, training curves); :mod:`~reasonbrain.evaluation.curves` — the curves.
- :mod:`~reasonbrain.evaluation.ladder` — ablation figures over training seeds and paired
  differences (``reasonbrain ablate``).
- :mod:`~reasonbrain.evaluation.markdown` — Markdown cells and tables.

Nothing heavy is imported here; import the submodule you need.
"""
