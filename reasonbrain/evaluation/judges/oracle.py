"""The ReasonSynth oracle: a "judge" that reads the verifier's exact verdict.

It follows the same interface as model judges, so Instruction Alignment can be computed without
any model on ReasonSynth (``follows`` = the verifier's *correct*; SC = 10 × correct). Records
without ReasonSynth ground truth get ``follows = None`` and are left out of the share.
"""

from __future__ import annotations

import json

from reasonbrain.evaluation.judges.base import Judge, Judgement, JudgeRequest

ORACLE_VERSION = "verifier-v1"


class OracleJudge(Judge):
    """Exact judge for ReasonSynth records (see the module docstring)."""

    judge_id = "reasonsynth-oracle"
    prompt_version = ORACLE_VERSION

    def judge(self, request: JudgeRequest) -> Judgement:
        """``follows`` = verifier correctness; no answer for records without ground truth."""
        gt = request.ground_truth
        if gt is None or gt.get("correct") is None:
            reason = "no ReasonSynth ground truth" if gt is None else "sample not verifiable"
            return Judgement(
                self.judge_id,
                self.prompt_version,
                follows=None,
                error=reason,
                error_kind="not_applicable",
            )
        correct = bool(gt["correct"])
        return Judgement(
            self.judge_id,
            self.prompt_version,
            follows=correct,
            sc=10.0 if correct else 0.0,
            raw={"verdict": json.dumps(gt, sort_keys=True)},
        )
