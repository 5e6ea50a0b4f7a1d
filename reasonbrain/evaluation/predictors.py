"""What produces the edits being evaluated: which model (resolved once), and the predictor API.

**Resolving ``--model``** (:func:`resolve_model`, once, in the driver): ``identity``, a saved
model directory, or ``registry://NAME@ALIAS|@VERSION``. The result, :class:`ResolvedModel`, pins
*exactly* what is evaluated — a registry alias becomes ``NAME@VERSION`` with the version's sha256,
a directory gets the sha256 of its file manifest (the digest the registry records, so a pulled
copy and its registered version agree) — and names the local directory every worker loads. The
resume key uses it (:mod:`~reasonbrain.evaluation.runkey`): after a promotion or an in-place
retrain a rerun into the same ``--out`` never mixes two models' rows. Workers load the resolved
directory, never the alias, so a promotion mid-run cannot change the model either.

**Predictors** map a batch of :class:`EditRequest` (image, instruction, seed, and which sample
and record it is for) to :class:`Edit` (edited image, rationale). The seed is per edit (derived
from the record id and the eval seed, :func:`sample_seed`), so an output never depends on which
batch or actor it landed in.

- :class:`IdentityPredictor` (``--model identity``): output = source. The lower bound every
  report shows: it scores 0 reasoning accuracy on ReasonSynth (it *is* the ``no_change`` outcome).
- :class:`PipelinePredictor` (``--model DIR`` or a registry ref): a saved model directory
  (ReasonBrain, its ablations or the ``ip2p`` baseline) run through
  ``reasonbrain.inference.ReasonBrainPipeline``.
- :class:`PredictionsPredictor` (``--predictions DIR``, spec ``predictions:DIR``): edits made
  elsewhere (SmartEdit, a hosted model …), one image per sample named by its id —
  ``<id>.png`` (or ``.jpg``/``.jpeg``/``.webp``, any case; an evaluation's own ``images/`` names
  work too, see :func:`~reasonbrain.evaluation.store.image_name`). Its fingerprint is the sha256
  of the directory's files, so adding or replacing a prediction changes the resume key. A sample
  whose prediction is missing, unreadable or ambiguous (two files for one id) gets no image and
  an :class:`Edit` that says why (``prediction``); the scorer counts it as wrong, never as a
  crash and never as left out.

The worker, the engines and the output store are the same for every kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from PIL import Image

from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.store import image_name

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams

IDENTITY = "identity"
REGISTRY_SCHEME = "registry://"
PREDICTIONS = "predictions"
PREDICTIONS_PREFIX = f"{PREDICTIONS}:"

#: File types a predictions directory may hold (lower-cased suffixes).
PREDICTION_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")


def sample_seed(sample_id: str, eval_seed: int) -> int:
    """Deterministic 63-bit seed from (eval seed, sample id): independent of batching/order."""
    digest = hashlib.sha256(f"{eval_seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


@dataclass(frozen=True)
class EditRequest:
    """One edit to make.

    Attributes:
        sample_id: the evaluated sample (names its output image; for a chained MagicBrush
            session, the final turn's id).
        record_id: the record whose instruction this edit applies (a session's turn; else the
            sample id).
        image: the image to edit.
        instruction: the instruction.
        seed: this edit's seed.
        step: 0-based position of this edit in the sample's chain (0 for a single edit).
    """

    sample_id: str
    record_id: str
    image: Image.Image
    instruction: str
    seed: int
    step: int = 0


class Edit(NamedTuple):
    """A predictor's answer for one request.

    ``image`` is ``None`` only when a stored prediction could not be used; ``prediction`` then
    says why (``{"status": "missing" | "unreadable" | "ambiguous", …}``). Predictors that read
    stored predictions set it for every edit (``{"status": "ok", "file": …}``).
    """

    image: Image.Image | None
    rationale: str | None
    prediction: dict[str, Any] | None = None


class Predictor(Protocol):
    """Produces edits for a batch."""

    name: str

    def predict(self, requests: Sequence[EditRequest]) -> list[Edit]:
        """One :class:`Edit` per request, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """What to record about the predictor (path, preset, fingerprint …)."""
        ...


class IdentityPredictor:
    """Output = source (the identity baseline)."""

    name = IDENTITY

    def predict(self, requests: Sequence[EditRequest]) -> list[Edit]:
        """Return each source image unchanged."""
        return [Edit(r.image.convert("RGB").copy(), None) for r in requests]

    def describe(self) -> dict[str, Any]:
        """The identity baseline has no weights."""
        return {"name": IDENTITY, "kind": "baseline", "description": "output = source"}


class PipelinePredictor:
    """A saved model directory run through ``ReasonBrainPipeline`` (loaded once per worker)."""

    def __init__(self, path: Path | str, params: EvalParams, device: str = "cpu") -> None:
        import importlib

        pipeline_cls = importlib.import_module("reasonbrain.inference").ReasonBrainPipeline
        self.path = Path(path)
        self.name = self.path.name
        self.params = params
        self.device = device
        self.pipe = pipeline_cls.from_pretrained(str(self.path))
        if device != "cpu":
            self.pipe.model.to(device)

    def predict(self, requests: Sequence[EditRequest]) -> list[Edit]:
        """Edit the batch with one seeded generator per request.

        Each edit's initial noise comes from its own generator (the pipeline accepts a list,
        as diffusers pipelines do), so an output is a function of its own seed, whatever batch
        it lands in (up to float rounding of batched kernels).
        """
        import torch

        out = self.pipe(
            image=[r.image.convert("RGB") for r in requests],
            prompt=[r.instruction for r in requests],
            num_inference_steps=self.params.num_inference_steps,
            guidance_scale=self.params.guidance_scale,
            image_guidance_scale=self.params.image_guidance_scale,
            generator=[torch.Generator(device="cpu").manual_seed(r.seed) for r in requests],
        )
        rationales = list(getattr(out, "rationales", None) or [None] * len(requests))
        return [Edit(img, r or None) for img, r in zip(out.images, rationales, strict=True)]

    def describe(self) -> dict[str, Any]:
        """Path and the model config's fingerprint."""
        cfg = self.path / "config.json"
        fp = hashlib.sha256(cfg.read_bytes()).hexdigest()[:12] if cfg.is_file() else None
        return {"name": self.name, "path": str(self.path.resolve()), "config_sha": fp}


def prediction_index(directory: Path) -> dict[str, list[str]]:
    """File stem → file names of the images in ``directory`` (not recursive; any case of the
    :data:`PREDICTION_SUFFIXES`). Sample ids are looked up here, never joined into paths."""
    index: dict[str, list[str]] = {}
    for p in sorted(directory.iterdir()):
        if p.suffix.lower() in PREDICTION_SUFFIXES and p.is_file():
            index.setdefault(p.stem, []).append(p.name)
    return index


def prediction_files(index: dict[str, list[str]], sample_id: str) -> list[str]:
    """The files that hold ``sample_id``'s prediction: ``<id>.<ext>``, or the file name an
    evaluation gives an id that is not file-name safe (``store.image_name``)."""
    stems = dict.fromkeys([sample_id, image_name(sample_id).removesuffix(".png")])
    return [name for stem in stems for name in index.get(stem, [])]


class PredictionsPredictor:
    """Edits made elsewhere, read from a directory (see the module docstring)."""

    name = "predictions"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.index = prediction_index(self.path)

    def predict(self, requests: Sequence[EditRequest]) -> list[Edit]:
        """The stored image of each request's sample (every step of a chained sample gets the
        same, final image); an :class:`Edit` without image when it cannot be used."""
        return [self._load(r.sample_id) for r in requests]

    def _load(self, sample_id: str) -> Edit:
        files = prediction_files(self.index, sample_id)
        if not files:
            return Edit(None, None, {"status": "missing"})
        if len(files) > 1:
            return Edit(None, None, {"status": "ambiguous", "files": files})
        try:
            with Image.open(self.path / files[0]) as img:
                img.load()
                rgb = img.convert("RGB")
        except Exception as err:  # an untrusted file: any decoder error is "unreadable"
            detail = f"{type(err).__name__}: {err}"[:200]
            return Edit(None, None, {"status": "unreadable", "file": files[0], "error": detail})
        return Edit(rgb, None, {"status": "ok", "file": files[0]})

    def describe(self) -> dict[str, Any]:
        """The directory and how many image files it holds."""
        return {
            "name": self.name,
            "path": str(self.path.resolve()),
            "files": sum(len(v) for v in self.index.values()),
        }


# ------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class ResolvedModel:
    """Exactly which model an evaluation runs (see the module docstring).

    Attributes:
        spec: ``--model`` as given (``predictions:DIR`` for ``--predictions DIR``).
        kind: ``identity``, ``directory``, ``registry`` or ``predictions``.
        path: the local directory workers load (``None`` for identity).
        sha256: content digest of the model's (or the predictions') files (the registry's
            manifest digest).
        ref: the pinned registry version, ``registry://NAME@VERSION`` (registry models only).
    """

    spec: str
    kind: str
    path: str | None = None
    sha256: str | None = None
    ref: str | None = None

    def key(self) -> dict[str, Any]:
        """What identifies the model in the resume key: its content, not where it lies."""
        return {"kind": self.kind, "sha256": self.sha256, "ref": self.ref}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``run.json``, ``metrics.json``, worker arguments)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResolvedModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            spec=str(d["spec"]),
            kind=str(d["kind"]),
            path=d.get("path"),
            sha256=d.get("sha256"),
            ref=d.get("ref"),
        )

    @property
    def label(self) -> str:
        """For people: ``identity``, ``registry://NAME@VERSION`` or the directory."""
        return self.ref or self.path or self.spec


def check_model_spec(spec: str) -> str:
    """Validate ``--model``: ``identity``, ``registry://NAME@ALIAS``, ``predictions:DIR`` or an
    existing directory (directories come back absolute).

    Raises:
        ConfigError: neither.
    """
    if spec == IDENTITY or spec.startswith(REGISTRY_SCHEME):
        return spec
    if spec.startswith(PREDICTIONS_PREFIX):
        d = Path(spec.removeprefix(PREDICTIONS_PREFIX))
        if not d.is_dir():
            raise ConfigError(
                "predictions directory not found",
                where=str(d),
                fix="pass a directory of edited images named <sample id>.png (or .jpg/.webp)",
            )
        return PREDICTIONS_PREFIX + str(d.resolve())
    p = Path(spec)
    if not p.is_dir():
        raise ConfigError(
            "model directory not found",
            where=spec,
            fix="pass a saved model directory (save_pretrained) or `identity`",
        )
    return str(p.resolve())


def resolve_model(spec: str) -> ResolvedModel:
    """Pin ``--model`` to one exact model (see the module docstring).

    Raises:
        ConfigError: no such directory; RegistryError / StoreError: an unknown registry ref, or
            its bytes cannot be fetched and verified.
    """
    checked = check_model_spec(spec)
    if checked == IDENTITY:
        return ResolvedModel(spec, IDENTITY)
    if checked.startswith(REGISTRY_SCHEME):
        from reasonbrain.registry.api import open_registry

        with open_registry() as reg:
            mv = reg.get(checked)
            pinned = f"{mv.name}@{mv.version}"
            path = reg.resolve(pinned)  # the version just looked up, whatever aliases do next
        return ResolvedModel(spec, "registry", str(path), mv.sha256, f"{REGISTRY_SCHEME}{pinned}")
    from reasonbrain.registry.checksums import manifest_digest, scan_dir

    if checked.startswith(PREDICTIONS_PREFIX):
        d = checked.removeprefix(PREDICTIONS_PREFIX)
        return ResolvedModel(checked, PREDICTIONS, d, manifest_digest(scan_dir(Path(d))))
    return ResolvedModel(spec, "directory", checked, manifest_digest(scan_dir(Path(checked))))


def load_predictor(model: ResolvedModel, params: EvalParams, device: str = "cpu") -> Predictor:
    """Build the predictor for a resolved model."""
    if model.kind == IDENTITY:
        return IdentityPredictor()
    assert model.path is not None
    if model.kind == PREDICTIONS:
        return PredictionsPredictor(model.path)
    return PipelinePredictor(model.path, params, device)
