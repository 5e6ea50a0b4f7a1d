"""Per-GPU memory of a training run, estimated before paying for a cluster
(``reasonbrain train --dry-run``).

Nothing is loaded: the architecture is built on the ``meta`` device (the paper preset from the
published configs, :func:`~reasonbrain.models.presets.build_paper_on_meta`; the tiny preset from
its config), which has shapes and dtypes but no memory. Per GPU, for ``train.workers`` ranks:

- **parameters**: frozen pretrained parts in the compute dtype, trained ones as fp32 master
  weights (:mod:`reasonbrain.models.precision`); DDP keeps a full replica, FSDP a ``1/workers``
  shard of the sharding units and of the trained root parameters, while frozen parts outside the
  units stay replicated (:mod:`reasonbrain.training.distributed`);
- **gradients**: fp32, of the trained parameters (sharded under FSDP; DDP adds its all-reduce
  buckets, another copy);
- **optimiser**: AdamW's two fp32 moments per trained parameter (sharded under FSDP), plus the EMA
  copy when ``train.ema_decay > 0``;
- **FSDP gather buffers**: the largest unit all-gathered (and the next one prefetched), and the
  root's trained parameters, gathered for the whole forward;
- **activations** at the configured micro-batch (``batch_size / workers / grad_accum_steps``):
  the tensors autograd saves for the backward pass, *measured* by running the blocks on meta
  tensors of the real shapes under ``torch.autograd.graph.saved_tensors_hooks`` — LLaVA's
  language model (one decoder layer × the layer count, over the MLLM sequence), the UNet, the
  Q-Former and the CME branches. With ``train.gradient_checkpointing`` each checkpointed block
  keeps only its input, and one block's activations come back during its recomputation. Frozen
  towers (CLIP, SAM, the VAE, LLaVA's vision tower) keep none: nothing they compute needs a
  gradient. Not counted: the FRCE branches and the ID controller (a few hundred tokens of width
  1024: small next to the rest), the loss heads, the CUDA context and allocator fragmentation
  (budget ~10 % and ~1–2 GB).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reasonbrain.config import Params
from reasonbrain.models.precision import frozen_dtype
from reasonbrain.training.distributed import fsdp_units

GIB = 2**30


@dataclass
class MemoryEstimate:
    """Bytes per GPU by kind (see the module docstring) and what they were computed for."""

    preset: str
    strategy: str
    workers: int
    micro_batch: int
    compute_dtype: str
    gradient_checkpointing: bool
    parameter_counts: dict[str, int]
    bytes_per_gpu: dict[str, int]
    activations: dict[str, int]
    not_counted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Sum of :attr:`bytes_per_gpu`."""
        return sum(self.bytes_per_gpu.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the total and GiB figures."""
        d = asdict(self)
        d["total_bytes_per_gpu"] = self.total
        d["gib_per_gpu"] = {k: round(v / GIB, 2) for k, v in self.bytes_per_gpu.items()}
        d["gib_per_gpu"]["total"] = round(self.total / GIB, 2)
        return d

    def to_json(self) -> str:
        """Pretty JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------ the model
def build_on_meta(params: Params) -> nn.Module:
    """The configured architecture on the ``meta`` device (no weights read, no memory)."""
    from reasonbrain.models.presets import build_paper_on_meta

    if params.model.preset == "paper":
        return build_paper_on_meta(params.model)
    from reasonbrain.models.presets import model_from_config, tiny_config
    from reasonbrain.models.tokenizer import add_img_tokens, train_tokenizer

    tok = train_tokenizer(["a tiny corpus for the dry run"], params.model.tokenizer_vocab_size)
    add_img_tokens(tok, 8)
    with torch.device("meta"):
        return model_from_config(tiny_config(params.model, tok), tok, tok)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# -------------------------------------------------------------------------- parameters
def _parameter_bytes(
    model: nn.Module, params: Params, compute: torch.dtype
) -> tuple[dict[str, int], dict[str, int]]:
    tp = params.train
    world = tp.workers
    fsdp = tp.strategy == "fsdp"
    units = fsdp_units(model)
    in_unit = {id(p) for _, u in units for p in u.parameters()}
    size = torch.tensor([], dtype=compute).element_size()

    def stored(p: nn.Parameter) -> int:
        return p.numel() * (4 if p.requires_grad else size)

    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    counts = {"trainable": n_train, "frozen": sum(p.numel() for p in frozen)}
    if fsdp:
        sharded = sum(stored(p) for p in model.parameters() if p.requires_grad or id(p) in in_unit)
        replicated = sum(stored(p) for p in frozen if id(p) not in in_unit)
        unit_sizes = [sum(stored(p) for p in u.parameters()) for _, u in units]
        root_trained = sum(stored(p) for p in trainable if id(p) not in in_unit)
        gather = 2 * max(unit_sizes, default=0) + root_trained
        out = {
            "parameters": sharded // world + replicated,
            "gradients": 4 * n_train // world,
            "optimizer": 8 * n_train // world,
            "fsdp_gather": gather,
        }
    else:
        out = {
            "parameters": sum(stored(p) for p in model.parameters()),
            "gradients": 4 * n_train,
            "optimizer": 8 * n_train,
        }
        if world > 1:
            out["ddp_buckets"] = 4 * n_train
    if tp.ema_decay > 0:
        out["ema"] = 4 * n_train // (world if fsdp else 1)
    return counts, out


# ------------------------------------------------------------------------- activations
class _SavedBytes:
    """Bytes autograd saves for backward (parameters excluded), total and per block."""

    def __init__(self, model: nn.Module, blocks: list[nn.Module]) -> None:
        # a tensor saved by several ops (a layer input read by q, k and v) is one storage
        self.seen = {p.untyped_storage()._cdata for p in model.parameters()}
        # Every counted storage is kept alive until the count ends: a storage freed mid-forward
        # (a saved tensor of a graph branch that is dropped) would let a new one reuse its
        # address and go uncounted, making the figure depend on allocation order (on which
        # estimates ran before in the process).
        self._kept: list[Any] = []
        self.total = 0
        self.per_block: dict[int, int] = {}
        self._stack: list[int] = []
        self._handles = [
            h
            for b in blocks
            for h in (
                b.register_forward_pre_hook(self._enter),
                b.register_forward_hook(self._leave),
            )
        ]

    def _enter(self, module: nn.Module, args: Any) -> None:
        self._stack.append(id(module))

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self._stack.pop()

    def pack(self, t: torch.Tensor) -> Any:
        storage = t.untyped_storage()
        if storage._cdata not in self.seen:
            self.seen.add(storage._cdata)
            self._kept.append(storage)
            n = storage.nbytes()
            self.total += n
            if self._stack:
                self.per_block[self._stack[-1]] = self.per_block.get(self._stack[-1], 0) + n
        return t

    def run(self, fn: Callable[[], Any]) -> None:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            fn()
        for h in self._handles:
            h.remove()
        self._kept.clear()


def _meta(*shape: int, dtype: torch.dtype, grad: bool = False) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype, requires_grad=grad)


def _mllm_tokens(model: Any) -> int:
    """Length of the MLLM sequence in training: BOS, image tokens, FRCE cues, instruction,
    rationale, ``[IMG_i]`` (the processor's maxima)."""
    c = model.config
    cues = 0
    if getattr(model, "image_encoder", None) is not None:
        grid = model.image_encoder.grid
        cues += grid * grid if c.use_patch_branch else 0
        cues += c.max_regions + 1 if c.use_region_branch else 0
    if getattr(model, "id_controller", None) is not None:
        cues += c.max_objects
    rationale = c.max_rationale_tokens if c.use_rationale else 0
    return int(
        1
        + model.mllm.n_image_tokens
        + cues
        + c.max_instruction_tokens
        + rationale
        + c.num_img_tokens
    )


def _language_model(model: Any, b: int, dtype: torch.dtype, ckpt: bool) -> tuple[int, str] | None:
    lm = getattr(getattr(getattr(model, "mllm", None), "llava", None), "model", None)
    lm = getattr(lm, "language_model", None)
    if lm is None or not len(getattr(lm, "layers", [])):
        return None
    layer = lm.layers[0].to(dtype)
    t, h = _mllm_tokens(model), lm.config.hidden_size
    hidden = _meta(b, t, h, dtype=dtype, grad=True)
    pos = torch.arange(t, device="meta")[None].expand(b, -1)
    rope = lm.rotary_emb(hidden, pos)
    meter = _SavedBytes(layer, [])
    meter.run(
        lambda: layer(hidden, attention_mask=None, position_ids=pos, position_embeddings=rope)
    )
    n = len(lm.layers)
    per_layer = meter.total
    if ckpt:  # each layer keeps its input; one layer is recomputed at a time
        return n * _nbytes(hidden) + per_layer, f"{n} layers × {t} tokens (checkpointed)"
    return n * per_layer, f"{n} layers × {t} tokens"


def _unet(model: Any, b: int, dtype: torch.dtype, ckpt: bool, cond_len: int) -> int | None:
    diffusion = getattr(model, "diffusion", None)
    unet = getattr(diffusion, "unet", None)
    if unet is None:
        return None
    nn.Module.to(unet, dtype)  # (diffusers' own .to warns about casting; these are meta tensors)
    cfg = unet.config
    side = int(cfg.sample_size)
    cross = cfg.cross_attention_dim
    width = int(cross[0] if isinstance(cross, (list, tuple)) else cross)
    x = _meta(b, int(cfg.in_channels), side, side, dtype=dtype)
    cond = _meta(b, cond_len, width, dtype=dtype, grad=True)
    t = torch.zeros(b, dtype=torch.long, device="meta")
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    plain = _SavedBytes(unet, blocks)
    plain.run(lambda: unet(x, t, encoder_hidden_states=cond))
    if not ckpt:
        return plain.total
    unet.enable_gradient_checkpointing()
    unet.train()
    kept = _SavedBytes(unet, [])
    kept.run(lambda: unet(x, t, encoder_hidden_states=cond))
    return kept.total + max(plain.per_block.values(), default=0)


def _small_modules(model: Any, b: int, dtype: torch.dtype) -> dict[str, int]:
    """The Q-Former and the CME branches, on meta tensors of their real shapes."""
    c = model.config
    out: dict[str, int] = {}
    guidance = _meta(b, c.num_img_tokens, c.llm_dim, dtype=dtype, grad=True)
    qformer = getattr(model, "qformer", None)
    if qformer is not None:
        meter = _SavedBytes(qformer, [])
        meter.run(lambda: qformer.to(dtype)(guidance))
        out["qformer"] = meter.total
    v_hat = _meta(b, c.num_queries, c.cond_dim, dtype=dtype, grad=True)
    grid = model.image_encoder.grid if getattr(model, "image_encoder", None) is not None else 0
    branches = (
        ("cme_visual", grid * grid, c.frce_dim, c.max_regions + 1 + grid * grid),
        (
            "cme_text",
            c.max_text_tokens,
            getattr(model.text_encoder, "hidden_size", 0),
            c.max_objects,
        )
        if getattr(model, "text_encoder", None) is not None
        else ("cme_text", 0, 0, 0),
    )
    for name, length, width, n_cues in branches:
        branch = getattr(model, name, None)
        if branch is None or not length:
            continue
        feats = _meta(b, length, width, dtype=dtype)
        cues = _meta(b, n_cues, c.frce_dim, dtype=dtype, grad=True)
        ones = torch.ones(b, length, dtype=torch.bool, device="meta")
        cue_mask = torch.ones(b, n_cues, dtype=torch.bool, device="meta")
        meter = _SavedBytes(branch, [])
        call = functools.partial(branch.to(dtype), feats, ones, v_hat, cues, cue_mask)
        meter.run(call)
        out[name] = meter.total
    return out


def _activations(
    model: Any, params: Params, compute: torch.dtype
) -> tuple[dict[str, int], list[str]]:
    tp = params.train
    b = max(1, tp.batch_size // (tp.workers * tp.grad_accum_steps))
    ckpt = tp.gradient_checkpointing
    acts: dict[str, int] = {}
    notes = [
        "FRCE branches and the ID controller",
        "loss heads",
        "CUDA context and allocator fragmentation (budget ~10 % and 1–2 GB)",
    ]
    lm = _language_model(model, b, compute, ckpt)
    if lm is not None:
        acts["mllm_language_model"] = lm[0]
    null = getattr(model, "null_cond", None)
    cond_len = int(null.shape[1]) if null is not None else int(model.config.max_text_tokens)
    unet = _unet(model, b, compute, ckpt, cond_len)
    if unet is not None:
        acts["unet"] = unet
    try:
        acts.update(_small_modules(model, b, compute))
    except Exception as err:  # meta support varies across library versions: say so, not crash
        notes.append(f"Q-Former/CME (meta forward failed: {type(err).__name__})")
    return acts, notes


# ---------------------------------------------------------------------------- estimate
def estimate_memory(params: Params) -> MemoryEstimate:
    """The per-GPU memory estimate of a run with ``params`` (see the module docstring)."""
    tp = params.train
    device = "cuda" if tp.use_gpu else "cpu"
    compute = frozen_dtype(tp.precision, device)
    model = build_on_meta(params)
    model.train()
    counts, by_kind = _parameter_bytes(model, params, compute)
    acts, notes = _activations(model, params, compute)
    by_kind["activations"] = sum(acts.values())
    return MemoryEstimate(
        preset=params.model.preset,
        strategy=tp.strategy,
        workers=tp.workers,
        micro_batch=max(1, tp.batch_size // (tp.workers * tp.grad_accum_steps)),
        compute_dtype=str(compute).removeprefix("torch."),
        gradient_checkpointing=tp.gradient_checkpointing,
        parameter_counts=counts,
        bytes_per_gpu=by_kind,
        activations=acts,
        not_counted=notes,
    )
