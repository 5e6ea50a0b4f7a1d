"""Checkpoints, storage and run names.

A checkpoint directory (uploaded by Ray Train to ``<storage>/<run name>/checkpoint_<step>``)
holds, under DDP (written by rank 0)::

    model/              the model in save_pretrained format (config, safetensors, tokenizer…)
    train_state.pt      optimiser, scheduler, EMA, RNG states, step, data position (tensors and
                        plain values only: loaded with ``torch.load(weights_only=True)``)
    train_state.json    the same scalars, human-readable (step, data position, run name, params)
    train_log.jsonl     the step log up to this step (so a resumed run's log has no gaps/repeats)
    samples/            sample edits of the validation passes

and under FSDP ``base_model/`` + ``sharded/`` (every rank's shards) instead of ``model/`` and the
optimiser state (:mod:`reasonbrain.training.state`).

Atomicity: Ray Train registers a checkpoint in the run's snapshot only after the whole directory is
uploaded, and ``ray.train.get_checkpoint()`` only returns registered checkpoints; the last
``keep_checkpoints`` are kept (``CheckpointConfig(num_to_keep=…)``).

Run names are ``<kind>-<preset>-<params hash>-<UTC timestamp>``: unique per experiment, so an old
run is never resumed by accident (Ray resumes silently when a name is reused). ``--resume`` looks
up the newest run whose name carries the same params hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from reasonbrain.config import Params
from reasonbrain.errors import CheckpointError, ConfigError

MODEL_DIR = "model"
STATE_FILE = "train_state.pt"
STATE_JSON = "train_state.json"
LOG_FILE = "train_log.jsonl"


# ------------------------------------------------------------------------------------ RNG
def capture_rng() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy and ``random`` as weights-only-loadable values."""
    np_state = np.random.get_state(legacy=False)
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
        "numpy_pos": int(np_state["state"]["pos"]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {
                "key": state["numpy_key"].numpy().astype(np.uint32),
                "pos": state["numpy_pos"],
            },
            "has_gauss": 0,
            "gauss": 0.0,
        }
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- train state
def save_train_state(directory: Path, state: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write ``train_state.pt`` (tensors/plain values) and ``train_state.json`` (scalars)."""
    torch.save(state, directory / STATE_FILE)
    (directory / STATE_JSON).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def load_train_state(directory: Path) -> dict[str, Any]:
    """Read ``train_state.pt`` with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing or unreadable.
    """
    path = directory / STATE_FILE
    if not path.is_file():
        raise CheckpointError("checkpoint has no train_state.pt", where=str(directory))
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(f"cannot read train state: {err}", where=str(path)) from None
    return state


# -------------------------------------------------------------------------------- storage
@dataclass(frozen=True)
class Storage:
    """Where Ray Train writes run directories.

    Attributes:
        uri: what the user gave (a local path or ``s3://bucket/prefix``).
        path: the ``storage_path`` for ``RunConfig`` (absolute local path, or ``bucket/prefix``).
        filesystem: a ``pyarrow.fs.FileSystem`` for S3, ``None`` for local paths.
    """

    uri: str
    path: str
    filesystem: Any | None = None

    def run_uri(self, name: str) -> str:
        """URI of a run directory."""
        return f"{self.uri.rstrip('/')}/{name}"


def s3_filesystem(endpoint: str | None = None) -> Any:
    """A ``pyarrow.fs.S3FileSystem`` for the configured endpoint and credentials.

    Credentials are read from the environment here and passed explicitly, so the (pickled)
    filesystem works in Ray worker processes whose environment predates them.
    """
    from pyarrow import fs

    from reasonbrain.config import get_settings

    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or get_settings().s3_endpoint_url
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    kwargs: dict[str, Any] = {"region": region}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        kwargs.update(access_key=key, secret_key=secret)
        if os.environ.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    return fs.S3FileSystem(**kwargs)


def resolve_storage(uri: str | Path) -> Storage:
    """Turn a local directory or ``s3://bucket/prefix`` into a :class:`Storage`.

    Raises:
        ConfigError: an unsupported scheme or an S3 URI without a bucket.
    """
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file"):
        local = Path(parsed.path if parsed.scheme == "file" else text).expanduser().resolve()
        return Storage(uri=str(local), path=str(local))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(
                "S3 storage URI has no bucket", where=text, fix="use s3://bucket/prefix"
            )
        path = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Storage(uri=text.rstrip("/"), path=path, filesystem=s3_filesystem())
    raise ConfigError(
        f"unsupported checkpoint storage scheme {parsed.scheme!r}",
        where=text,
        fix="use a local directory or s3://bucket/prefix",
    )


def _fs_and_path(storage: Storage) -> tuple[Any, str]:
    from pyarrow import fs

    return (storage.filesystem or fs.LocalFileSystem()), storage.path


def list_runs(storage: Storage) -> list[str]:
    """Names of the run directories in ``storage`` (empty if it does not exist yet)."""
    from pyarrow import fs

    filesystem, base = _fs_and_path(storage)
    try:
        infos = filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True))
    except OSError:
        return []
    return sorted(Path(i.path).name for i in infos if i.type == fs.FileType.Directory)


# -------------------------------------------------------------------------------- run names
OPERATIONAL_TRAIN_KEYS: frozenset[str] = frozenset(
    {
        "max_steps",
        "workers",
        "cpus_per_worker",
        "use_gpu",
        "placement_strategy",
        "strategy",
        "gradient_checkpointing",
        "checkpoint_every",
        "keep_checkpoints",
        "max_failures",
        "val_every",
        "val_samples",
        "sample_images",
        "sample_steps",
        "preload",
        "data_cpus",
        "prefetch_batches",
    }
)
"""``train`` keys that say how a run executes, not what it learns: left out of the run identity
so that a run can be resumed longer, on other hardware, or with more restarts allowed."""


def run_identity(params: Params) -> str:
    """``<kind>-<preset>-<hash>`` of ``model`` and the learning-relevant ``train`` keys."""
    d = params.to_dict()
    chosen = {
        "model": d["model"],
        "train": {k: v for k, v in d["train"].items() if k not in OPERATIONAL_TRAIN_KEYS},
    }
    blob = json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(blob).hexdigest()[:12]
    kind = getattr(params.model, "kind", "reasonbrain")
    return f"{kind}-{params.model.preset}-{h}"


def new_run_name(params: Params, now: datetime | None = None) -> str:
    """A fresh, unique run name for ``params``."""
    ts = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-%f")
    return f"{run_identity(params)}-{ts}"


def latest_run(storage: Storage, params: Params) -> str:
    """The newest run in ``storage`` started with the same params (for ``--resume``).

    Raises:
        CheckpointError: there is none.
    """
    prefix = run_identity(params) + "-"
    runs = [r for r in list_runs(storage) if r.startswith(prefix)]
    if not runs:
        raise CheckpointError(
            f"no run with these params ({prefix}*) to resume",
            where=storage.uri,
            fix="drop --resume to start a new run, or pass the params the run was started with",
        )
    return max(runs)  # timestamps sort lexicographically
