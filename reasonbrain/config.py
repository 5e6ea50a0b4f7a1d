"""Typed configuration: *params* say what a run does, *settings* say where things live.

- :class:`Params` mirrors ``params.yaml`` (sections ``data``, ``validate``, ``model``, ``train``,
  ``eval``, and for the Prefect flows ``pipeline``, ``promote``, ``ingest``). Every key is
  declared; an unknown key is an error, never silently ignored. DVC stages declare the keys they
  read, so ``dvc repro`` reruns only what changed.
- **Preset profiles.** The declared defaults are the ``tiny`` demo's (``params.yaml``). With
  ``model.preset: paper``, every key a file does not set comes from :data:`PAPER_PROFILE` instead
  (the recipe ``params.paper.yaml`` spells out): image size 256, per-group learning rates,
  guidance 7.5 / 1.5, … — tiny defaults never silently apply to the paper preset. Combinations
  that cannot work (the paper preset below 256 px or off the 64-px grid, with the tiny-only
  grounding cue or source residual) are refused with one line naming the key and the fix.
- :class:`Settings` comes from the environment (``REASONBRAIN_*``): the object store, the metadata
  database, local weight paths, whether network access is allowed. Settings never change results.

Nothing here has import-time side effects: no directory is created, no file is read until a
function is called.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from reasonbrain.errors import ConfigError

CATEGORIES: tuple[str, ...] = ("physical", "temporal", "causal", "story")


class StrictModel(BaseModel):
    """Base for params sections: unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------- data
class SynthParams(StrictModel):
    """ReasonSynth generation (``reasonbrain data generate``)."""

    n_train: int = Field(6000, ge=0)
    n_val: int = Field(300, ge=0)
    n_test: int = Field(600, ge=0)
    size: int = Field(32, ge=32, le=1024, description="image side in pixels")
    seed: int = 0
    categories: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(CATEGORIES, 0.25),
        description="proportion of each category (normalised)",
    )
    workers: int = Field(0, ge=0, description="processes; 0 = all cores")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected a subset of {CATEGORIES}")
        if any(p < 0 for p in v.values()) or sum(v.values()) <= 0:
            raise ValueError("category proportions must be >= 0 and not all zero")
        return v


class DataParams(StrictModel):
    """Where the dataset comes from (stage ``data``)."""

    source: Literal["reasonsynth", "import"] = "reasonsynth"
    dir: Path = Path("data/reasonsynth")
    import_format: str | None = Field(None, description="importer name when source=import")
    import_src: Path | None = Field(None, description="source directory/file when source=import")
    import_options: dict[str, Any] = Field(
        default_factory=dict, description="importer options (`reasonbrain data formats`)"
    )
    synth: SynthParams = Field(default_factory=SynthParams)
    ingested_dir: Path = Field(
        Path("data/ingested"),
        description="landing-zone drops merged by the `ingest` flow (one DVC-tracked directory "
        "per drop); stage `data` appends their records to the dataset",
    )


class ValidateParams(StrictModel):
    """Dataset validation rules (stage ``validate``)."""

    categories: list[str] = Field(default_factory=lambda: list(CATEGORIES))
    image_modes: list[str] = Field(default_factory=lambda: ["RGB"])
    min_image_size: int = Field(16, ge=1)
    max_image_size: int = Field(4096, ge=1)
    min_instruction_chars: int = Field(8, ge=1)
    max_instruction_chars: int = Field(600, ge=1)
    report: Path = Path("reports/validation.json")


#: resolutions of the tiny UNet (16, 8 and 4 latent positions at 32 px): model.unet_channels
TINY_UNET_LEVELS = 3


# ---------------------------------------------------------------------------------- profiles
#: What the paper preset uses for every key a params file leaves out (``params.paper.yaml``
#: writes it all out). The keys marked "IP2P" follow InstructPix2Pix (Brooks et al. 2023), the
#: rest are our reading of the paper's setting (it does not state them); see the README.
PAPER_PROFILE: dict[str, dict[str, Any]] = {
    "model": {
        "image_size": 256,  # IP2P trains at 256 px; 512 works too (a multiple of 64)
        "prediction_type": None,  # from the diffusion repo's scheduler config (epsilon for IP2P)
        "source_residual": False,  # tiny-only addition: the pretrained UNet keeps its target
        "spatial_cue": False,  # tiny-only addition: the UNet keeps its 8 input channels
        "ip2p_spatial_cue": False,  # the same addition for the ip2p baseline
        "null_text": "empty_prompt",  # IP2P: the unconditional text is the encoding of ""
        "edit_loss_weight": 0.0,  # IP2P's plain MSE
        "pooled_cond_embedding": False,  # tiny-only addition: the UNet has no such embedding
        "unet_channels": None,  # tiny-only: the pretrained UNet's own architecture
        "unet_layers_per_block": None,
        "dm_loss": "mse",  # the paper's L_DM (IP2P)
    },
    "train": {
        "batch_size": 64,  # global: 8 GPUs x 2 per micro-batch x 4 accumulation steps
        "grad_accum_steps": 4,
        "max_steps": 10000,
        "workers": 8,
        "cpus_per_worker": 8,
        "use_gpu": True,
        "precision": "auto",  # bf16 on GPU (frozen parts bf16, fp32 master weights), fp32 on CPU
        "lr": 1e-4,
        "group_lr": {"new_modules": 1e-4, "lora": 2e-4, "diffusion": 1e-5},
        "warmup_steps": 500,
        "checkpoint_every": 1000,
        "val_every": 1000,
        "val_samples": 64,
        "sample_steps": 50,
        "preload": False,  # 51K image pairs at 256 px do not belong in every worker's memory
    },
    "eval": {
        "num_inference_steps": 100,  # IP2P (diffusers' pipeline default)
        "guidance_scale": 7.5,  # IP2P
        "image_guidance_scale": 1.5,  # IP2P
        "batch_size": 4,
        "concurrency": 1,
        "num_cpus_per_actor": 4.0,
        "num_gpus_per_actor": 1.0,
        "torch_threads": 4,
        "judge": "vlm",  # Reason50K has no exact verifier (the oracle judges ReasonSynth only)
    },
}

PAPER_MIN_IMAGE_SIZE = 256
PAPER_SIZE_MULTIPLE = 64  # VAE factor 8 x the UNet's three downsamplings


def _under(defaults: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with ``defaults`` filled in where ``raw`` has no key (one level deep)."""
    return {**defaults, **raw}


# -------------------------------------------------------------------------------------- model
class PretrainedWeights(StrictModel):
    """Hub ids or local paths of the paper preset's pretrained parts (``None`` = preset default,
    looked up under ``settings.weights_dir`` first)."""

    llava: str | None = None
    diffusion: str | None = Field(None, description="InstructPix2Pix/SD repo (unet/ + vae/)")
    clip: str | None = None
    sam: str | None = None


class ModelParams(StrictModel):
    """Architecture and preset (see ``reasonbrain.models.presets``)."""

    preset: Literal["tiny", "paper"] = "tiny"
    kind: Literal["reasonbrain", "ip2p"] = Field("reasonbrain", description="ip2p = baseline")
    image_size: int = Field(32, ge=32)
    use_patch_branch: bool = True
    use_region_branch: bool = True
    use_id_controller: bool = True
    use_cme: bool = True
    use_rationale: bool = Field(True, description="L_MLLM also on the target caption")
    prediction_type: Literal["epsilon", "v_prediction", "sample"] | None = Field(
        "sample",
        description="tiny: x0 learns fastest; paper: null = the diffusion repo's own target",
    )
    source_residual: bool = Field(
        True, description="x0 = source latent + UNet output (prediction_type=sample only)"
    )
    spatial_cue: bool = Field(
        True,
        description="tiny preset: grounding head → one UNet input channel saying where the "
        "named object is (reasonbrain.models.grounding); needs the patch branch + ID controller",
    )
    ip2p_spatial_cue: bool = Field(
        False,
        description="tiny preset, kind ip2p: give the InstructPix2Pix baseline the same grounding "
        "head, mask supervision and UNet channel as spatial_cue (no reasoning path) — the fair "
        "baseline for the cue; ignored by kind reasonbrain, as spatial_cue is by kind ip2p",
    )
    loss_weight_ground: float = Field(1.0, ge=0, description="weight of the grounding BCE")
    dm_loss: Literal["mse", "l1"] = Field(
        "mse",
        description="L_DM's distance: mse (the paper's, IP2P's; x0 prediction → conditional mean) "
        "or l1 (→ conditional median: an uncertain pixel takes one value instead of a blend)",
    )
    timestep_logit_mean: float | None = Field(
        None,
        description="L_DM's training timesteps: null = uniform (DDPM, IP2P); a number = SD3's "
        "logit-normal density with this mean (> 0 favours noisy timesteps, where the x0 "
        "prediction must come from the condition)",
    )
    timestep_logit_std: float = Field(1.0, gt=0, description="std of the logit-normal timesteps")
    pooled_cond_embedding: bool = Field(
        False,
        description="tiny preset: the conditioning sequence, attention-pooled and projected, is "
        "added to the UNet's timestep embedding (diffusers addition_embed_type='text'), so "
        "every ResNet block at every resolution sees the instruction, not only the two "
        "cross-attention levels",
    )
    unet_channels: list[int] | None = Field(
        None,
        description="tiny preset: the UNet's block_out_channels, one per resolution (16, 8, 4 "
        "latent positions at 32 px), each a multiple of 32; null = the preset's [32, 64, 128]",
    )
    unet_layers_per_block: int | None = Field(
        None, ge=1, description="tiny preset: ResNet layers per UNet block; null = the preset's 1"
    )
    edit_loss_weight: float = Field(
        10.0,
        ge=0,
        description="extra L_DM weight at latent positions where the target differs from the "
        "source (1 + w there, 1 elsewhere; 0 = plain MSE): the edit is a few % of the image",
    )
    cond_drop_text: float = Field(0.05, ge=0, le=1)
    cond_drop_image: float = Field(0.05, ge=0, le=1)
    cond_drop_both: float = Field(0.05, ge=0, le=1)
    loss_weight_mllm: float = Field(1.0, ge=0)
    loss_weight_dm: float = Field(1.0, ge=0)
    lora_rank: int = Field(8, ge=0, description="paper preset: LoRA rank on the LLM (0 = off)")
    lora_alpha: int = Field(16, ge=1)
    tokenizer_vocab_size: int = Field(1024, ge=64, description="tiny preset: BPE vocabulary")
    null_text: Literal["learned", "empty_prompt"] = Field(
        "learned",
        description="unconditional text branch: learned (tiny), or the text encoder's encoding "
        'of "" (paper, as InstructPix2Pix)',
    )
    weights: PretrainedWeights = Field(default_factory=PretrainedWeights)

    @model_validator(mode="before")
    @classmethod
    def _preset_profile(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("preset") == "paper":
            return _under(PAPER_PROFILE["model"], data)
        return data

    @model_validator(mode="after")
    def _possible(self) -> ModelParams:
        channels = self.unet_channels
        if channels is not None and (
            len(channels) != TINY_UNET_LEVELS or any(c <= 0 or c % 32 for c in channels)
        ):
            raise ValueError(
                f"model.unet_channels {channels} must be {TINY_UNET_LEVELS} positive multiples "
                "of 32 (the UNet's group norm has 32 groups), e.g. [64, 64, 128]"
            )
        if self.preset != "paper":
            return self
        size = self.image_size
        if size < PAPER_MIN_IMAGE_SIZE or size % PAPER_SIZE_MULTIPLE:
            raise ValueError(
                f"model.image_size {size} does not work with the paper preset (at least "
                f"{PAPER_MIN_IMAGE_SIZE} and a multiple of {PAPER_SIZE_MULTIPLE}, e.g. 256 or "
                "512): use params.paper.yaml or set model.image_size=256"
            )
        tiny_only = (
            "spatial_cue",
            "ip2p_spatial_cue",
            "source_residual",
            "pooled_cond_embedding",
            "unet_channels",
            "unet_layers_per_block",
        )
        for key in tiny_only:
            if getattr(self, key):
                off = "null" if key.startswith("unet_") else "false"
                raise ValueError(
                    f"model.{key} is a tiny-preset addition the pretrained UNet cannot take: "
                    f"set model.{key}={off} (params.paper.yaml does)"
                )
        return self


# -------------------------------------------------------------------------------------- train
class TrainParams(StrictModel):
    """Training loop (``reasonbrain train``; see ``reasonbrain.training``).

    ``batch_size`` is the *global* batch of one optimiser step: it is split over ``workers`` and
    ``grad_accum_steps``, so changing the number of workers does not change what is learned.
    """

    seed: int = 0
    batch_size: int = Field(16, ge=1, description="global batch per optimiser step")
    grad_accum_steps: int = Field(1, ge=1)
    max_steps: int = Field(600, ge=1, description="the tiny demo budget")
    workers: int = Field(1, ge=1, description="Ray Train workers (data-parallel ranks)")
    cpus_per_worker: int = Field(2, ge=1)
    use_gpu: bool = False
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK",
        description="how Ray places the workers on a cluster's nodes (Ray placement-group "
        "strategy): PACK fills a node first, SPREAD puts them on different nodes when it can",
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp: a full replica per worker; fsdp: parameters, gradients and optimiser "
        "states sharded over the workers (reasonbrain.training.distributed)",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "bf16", description="bf16 autocast (CPUs with AVX-512 bf16 too); auto = bf16 on GPU only"
    )
    lr: float = Field(1e-3, gt=0, description="learning rate of every parameter group")
    group_lr: dict[str, float] = Field(
        default_factory=dict, description="per-group lr by kind (new_modules, lora, diffusion)"
    )
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(50, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor, fraction of the lr")
    grad_clip: float = Field(1.0, ge=0, description="max gradient norm (0 = off)")
    gradient_checkpointing: bool = Field(
        False,
        description="recompute activations in the backward pass (LLaVA's language model, the "
        "UNet, trained CLIP towers): less memory, ~30 % more compute",
    )
    ema_decay: float = Field(0.0, ge=0, lt=1, description="EMA of trained weights (0 = off)")
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=0, description="worker-group restarts before giving up")
    val_every: int = Field(200, ge=1)
    val_samples: int = Field(32, ge=0, description="fixed val subset (first N records)")
    sample_images: int = Field(4, ge=0, description="sample edits saved at each validation")
    sample_steps: int = Field(20, ge=1, description="denoising steps of the sample edits")
    preload: bool = Field(
        True,
        description="decode every image once into each worker's memory (fast for a small set); "
        "false streams the training split with Ray Data (reasonbrain.training.stream)",
    )
    data_cpus: float = Field(
        1.0, gt=0, description="CPUs per Ray Data read/decode task when streaming"
    )
    prefetch_batches: int = Field(
        4, ge=1, description="micro-batches Ray Data prepares ahead of each worker (streaming)"
    )


# --------------------------------------------------------------------------------------- eval
EVAL_METRICS: tuple[str, ...] = (
    "l1",
    "l2",
    "psnr",
    "ssim",
    "clip_i",
    "clip_t",
    "clip_dir",
    "dino",
    "lpips",
)


class EvalParams(StrictModel):
    """Evaluation (``reasonbrain evaluate``; see ``reasonbrain.evaluation``)."""

    split: Literal["train", "val", "test"] = "test"
    num_inference_steps: int = Field(20, ge=1)
    guidance_scale: float = 2.0
    image_guidance_scale: float = 1.0
    seed: int = Field(0, description="eval seed; each sample's seed = hash(sample id, seed)")
    batch_size: int = Field(8, ge=1, description="samples per predictor call")
    concurrency: int = Field(2, ge=1, description="predictor actors (Ray Data)")
    num_cpus_per_actor: float = Field(0.5, gt=0)
    num_gpus_per_actor: float = Field(0.0, ge=0)
    torch_threads: int = Field(
        0,
        ge=0,
        description="intra-op threads per predictor (0: this machine's CPUs / concurrency). Ray "
        "pins an actor to its num_cpus, which on a small machine leaves cores idle while the "
        "driver mostly waits",
    )
    metrics: list[str] = Field(default_factory=lambda: list(EVAL_METRICS))
    verifier_region: Literal["mask", "union"] = Field(
        "union", description="mask, or mask ∪ pixels where a counterfactual differs from target"
    )
    verifier_change_threshold: float = Field(
        0.02, ge=0, le=1, description="per-pixel max-channel difference counted as a change"
    )
    verifier_edit_bound: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="correct only if, inside the mask, d(output, target) <= this x d(source, "
        "target) (and the same share towards any counterfactual on the twin); calibrated, README",
    )
    verifier_background_bound: float = Field(
        0.05,
        gt=0,
        le=1,
        description="correct only if the mean |output - source| outside the edited regions is at "
        "most this ([0, 1] range); calibrated, README",
    )
    judge: Literal["none", "oracle", "vlm", "http"] = "oracle"
    judge_model: str | None = Field(None, description="model name sent to the HTTP judge")
    judge_prompt: str = Field("viescore_v1", description="prompt file (versioned) for judges")
    judge_follow_threshold: float = Field(5.0, ge=0, le=10, description="SC >= this ⇒ follows")
    judge_max_retries: int = Field(4, ge=0)
    judge_requests_per_s: float = Field(2.0, gt=0)
    judge_timeout_s: float = Field(60.0, gt=0)
    bootstrap_resamples: int = Field(1000, ge=10)
    ci_level: float = Field(0.95, gt=0, lt=1)
    gallery_per_category: int = Field(3, ge=0, description="report: worst samples per category")
    gallery_per_family: int = Field(
        1, ge=0, description="report: worst failures per ReasonSynth family (replaces categories)"
    )
    magicbrush_protocol: Literal["single_turn", "final_turn"] = Field(
        "single_turn",
        description="MagicBrush: each turn from its ground-truth input, or one sample per session "
        "with the turns chained on the model's own outputs (scored at the final turn)",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(EVAL_METRICS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; expected a subset of {EVAL_METRICS}")
        return v


# ------------------------------------------------------------------------------ orchestration
class ModelVariant(StrictModel):
    """One model the ``pipeline`` flow trains (DVC stage ``train@NAME``) and registers as NAME."""

    kind: Literal["reasonbrain", "ip2p"] = "reasonbrain"


class PipelineParams(StrictModel):
    """The ``pipeline`` flow (``flows/pipeline.py``): DVC stages as tasks, then register, record,
    promote; and its schedule (``reasonbrain pipeline serve``)."""

    models: dict[str, ModelVariant] = Field(
        default_factory=lambda: {
            "reasonbrain": ModelVariant(kind="reasonbrain"),
            "ip2p": ModelVariant(kind="ip2p"),
        },
        description="trained by `train@NAME` into models/NAME, evaluated by `evaluate@NAME` into "
        "reports/eval/NAME, registered as NAME",
    )
    cron: str = Field("0 2 * * *", description="schedule of the `pipeline` deployment (nightly)")
    timezone: str = Field("UTC", description="time zone of the cron schedule")
    push: bool = Field(True, description="`dvc push` the artefacts after the stages")
    stage_retries: int = Field(
        1,
        ge=0,
        description="retries of a stage that failed for a transient reason (lost Ray "
        "worker, network); a stage that fails for its inputs is never retried",
    )
    task_retries: int = Field(3, ge=0, description="retries of store/DB steps (register, record)")
    retry_delay_s: float = Field(
        10.0, ge=0, description="first retry delay; doubles at each retry (exponential backoff)"
    )
    lock_timeout_s: float = Field(
        3600.0, ge=0, description="how long a run waits for another flow holding the workspace"
    )


class PromoteParams(StrictModel):
    """The promotion gate: the candidate goes to ``production`` only when, on the same samples,
    its paired difference to the production model (or, with none yet, to every baseline) on
    ``metric`` has a CI entirely above ``margin``; otherwise ``staging``."""

    model: str = Field("reasonbrain", description="the candidate: a key of pipeline.models")
    metric: str = Field("reasoning_acc", description="per-sample metric in samples.jsonl")
    higher_is_better: bool = True
    margin: float = Field(0.0, description="in the metric's units (0.02 = 2 points of accuracy)")
    baselines: list[str] = Field(
        default_factory=lambda: ["identity", "ip2p"],
        description="evaluations a first model must beat (identity, or keys of pipeline.models)",
    )
    ci_level: float = Field(0.95, gt=0, lt=1)
    bootstrap_resamples: int = Field(1000, ge=100)
    seed: int = 0


class IngestParams(StrictModel):
    """The ``ingest`` flow (``flows/ingest.py``): the landing zone and its schedule."""

    landing: str = Field(
        "data/landing",
        description="directory, file:// or s3://bucket/prefix; each sub-directory is one drop",
    )
    format: str = Field("reason50k", description="importer of drops that carry no drop.json")
    options: dict[str, Any] = Field(default_factory=dict, description="importer options")
    settle_s: float = Field(
        120.0, ge=0, description="a drop without a _READY marker is taken once unchanged this long"
    )
    stale_after_s: float = Field(
        3600.0, gt=0, description="a drop left 'processing' this long (crashed run) is retried"
    )
    update_dataset: bool = Field(
        True, description="after a merge, run DVC stages data + validate (the new version now)"
    )
    interval_s: int = Field(900, ge=1, description="schedule of the `ingest` deployment")


class Params(StrictModel):
    """The whole of ``params.yaml``."""

    data: DataParams = Field(default_factory=DataParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    model: ModelParams = Field(default_factory=ModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    pipeline: PipelineParams = Field(default_factory=PipelineParams)
    promote: PromoteParams = Field(default_factory=PromoteParams)
    ingest: IngestParams = Field(default_factory=IngestParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _preset_profile(cls, data: Any) -> Any:
        """Keys a paper-preset file leaves out come from :data:`PAPER_PROFILE`."""
        if not isinstance(data, Mapping):
            return data
        model = data.get("model")
        if not (isinstance(model, Mapping) and model.get("preset") == "paper"):
            return data
        out = dict(data)
        for section in ("train", "eval"):
            raw = out.get(section)
            if raw is None or isinstance(raw, Mapping):  # anything else fails validation later
                out[section] = _under(PAPER_PROFILE[section], raw or {})
        return out

    @model_validator(mode="after")
    def _gate_names_known(self) -> Params:
        known = set(self.pipeline.models)
        if self.promote.model not in known:
            raise ValueError(
                f"promote.model {self.promote.model!r} is not one of pipeline.models "
                f"{sorted(known)}"
            )
        unknown = sorted(set(self.promote.baselines) - known - {"identity"})
        if unknown:
            raise ValueError(
                f"promote.baselines {unknown} are neither 'identity' nor pipeline.models"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with the same keys as ``params.yaml``."""
        return self.model_dump(mode="json", by_alias=True)

    def section_hash(self, *sections: str) -> str:
        """Short sha256 of the given sections (all when none given) — names runs and caches."""
        d = self.to_dict()
        chosen = {k: d[k] for k in (sections or tuple(d))}
        blob = json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# ----------------------------------------------------------------------------------- loading
def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse one ``key.sub=value`` override; the value is read as YAML (``3``, ``true``, ``[a]``).

    Raises:
        ConfigError: when the item has no ``=`` or an empty key.
    """
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {item!r} is not of the form key.sub=value",
            where="--set",
            fix="write e.g. --set data.synth.n_train=100",
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return [p for p in key.strip().split(".")], value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.sub=value`` overrides applied (validated later)."""
    out: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    for item in overrides:
        keys, value = parse_override(item)
        node = out
        for k in keys[:-1]:
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"cannot set {'.'.join(keys)}: {k!r} is not a section",
                    where="--set",
                    fix="check the key path against params.yaml",
                )
            node = child
        node[keys[-1]] = value
    return out


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown key {loc!r} in {source}"
    if first["type"] == "value_error" and not loc.count("."):  # a cross-key rule: its own words
        return str(first["msg"]).removeprefix("Value error, ")
    return f"invalid value for {loc!r} in {source}: {first['msg']}"


def params_from_dict(raw: Mapping[str, Any], source: str = "params") -> Params:
    """Validate a params dict.

    Raises:
        ConfigError: naming the first unknown key or invalid value.
    """
    try:
        return Params.model_validate(dict(raw))
    except ValidationError as err:
        n = err.error_count()
        more = f" (+{n - 1} more)" if n > 1 else ""
        raise ConfigError(
            _format_validation_error(err, source) + more,
            where=source,
            fix="fix the key/value (see the defaults in params.yaml)",
        ) from None


def load_params(path: Path | str | None = None, overrides: Sequence[str] = ()) -> Params:
    """Load ``params.yaml`` (or defaults when ``path`` is None and no params.yaml exists).

    Args:
        path: a params file; ``None`` means ``./params.yaml`` if present, else built-in defaults.
        overrides: ``key.sub=value`` strings applied on top (the CLI's ``--set``).

    Raises:
        ConfigError: the file is missing/unreadable/not a mapping, or a key/value is invalid.
    """
    raw: dict[str, Any] = {}
    if path is None:
        candidate = Path("params.yaml")
        path = candidate if candidate.is_file() else None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("params file not found", where=str(p), fix="pass an existing file")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
            raise ConfigError(
                "params file is not valid YAML", where=where, fix="fix the syntax"
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("params file must be a mapping of sections", where=str(p))
        raw = loaded
    source = str(path) if path is not None else "defaults"
    if overrides:
        raw = apply_overrides(raw, overrides)
        source += " + --set"
    return params_from_dict(raw, source)


# ---------------------------------------------------------------------------------- settings
class Settings(BaseSettings):
    """Where things live, from ``REASONBRAIN_*`` environment variables.

    The embedded defaults need no set-up: a ``file://`` object store and a SQLite database under
    ``home`` (``.reasonbrain/``). Production points ``store_uri`` at ``s3://bucket/prefix`` and
    ``db_url`` at PostgreSQL (``postgresql+psycopg://…``).
    """

    model_config = SettingsConfigDict(env_prefix="REASONBRAIN_", extra="ignore")

    home: Path = Path(".reasonbrain")
    store_uri: str | None = None
    db_url: str | None = None
    allow_network: bool = False
    weights_dir: Path | None = Field(
        None, description="directory holding local pretrained weights (paper preset, metrics)"
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (AWS_ENDPOINT_URL wins when both are set)"
    )
    s3_part_size_mb: int = Field(8, ge=5, description="multipart threshold and part size, MiB")
    store_retries: int = Field(4, ge=1, description="attempts for transient store errors")
    clip_weights: Path | None = Field(None, description="local CLIP dir (default weights_dir/clip)")
    dino_weights: Path | None = Field(None, description="local DINO dir (default weights_dir/dino)")
    lpips_weights: Path | None = Field(
        None, description="LPIPS AlexNet file (default weights_dir/lpips/alexnet.safetensors)"
    )
    judge_vlm_weights: Path | None = Field(
        None, description="local VLM dir for the judge (default weights_dir/judge_vlm)"
    )
    judge_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. vLLM /v1")
    judge_api_key: str | None = Field(None, description="API key for the HTTP judge")
    notify_webhook_url: str | None = Field(
        None, description="flows POST failures/promotions/quarantines here (Slack-compatible JSON)"
    )
    notify_timeout_s: float = Field(10.0, gt=0, description="webhook request timeout")

    def resolved_store_uri(self) -> str:
        """The object-store URI (``file://<home>/store`` unless set)."""
        return self.store_uri or (self.home.resolve() / "store").as_uri()

    def resolved_db_url(self) -> str:
        """The SQLAlchemy URL (SQLite under ``home`` unless set)."""
        return self.db_url or f"sqlite:///{(self.home.resolve() / 'reasonbrain.db').as_posix()}"


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests change the environment)."""
    return Settings()
