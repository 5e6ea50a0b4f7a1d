"""DVC as the single truth of what is up to date: stage order, running a stage, params, add, push.

The ``pipeline`` flow runs one task per DVC stage, each ``dvc repro --single-item STAGE`` in
dependency order, so DVC decides whether the stage runs (its deps or params changed) or is
skipped (up to date, or restored from DVC's run cache). DVC runs in a subprocess of the same
interpreter (``python -m dvc``) with ``REASONBRAIN_PYTHON`` set to it, so the stage commands
(``bin/reasonbrain …``) run the same Python as the flow. Its output is handed line by line to a
callback (the flow's logger).

``--set key=value`` overrides and ``--params FILE`` overlays are written into ``params.yaml``
like ``dvc exp run -S`` does (comments kept), after the result has been validated: DVC stages
read ``params.yaml``, so that is where a run's params must be for ``dvc repro``, ``dvc params
diff`` and the next run to agree.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from reasonbrain.config import Params, apply_overrides, params_from_dict, parse_override
from reasonbrain.errors import ConfigError, ReasonBrainError

RAN, SKIPPED, FAILED = "ran", "skipped", "failed"
#: output lines that mean a failure may pass if retried (lost Ray worker/node, network, S3
#: throttling, another DVC process holding the lock); anything else is deterministic
TRANSIENT_MARKERS: tuple[str, ...] = (
    "ActorDiedError",
    "RayActorError",
    "NodeDiedError",
    "WorkerCrashedError",
    "OutOfMemoryError",
    "RaySystemError",
    "GetTimeoutError",
    "EndpointConnectionError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "ReadTimeoutError",
    "Temporary failure in name resolution",
    "SlowDown",
    "ServiceUnavailable",
    "Unable to acquire lock",
)
LineSink = Callable[[str], None]


class StageFailed(ReasonBrainError):
    """A DVC stage (or ``dvc`` command) exited non-zero.

    Attributes:
        stage: the stage address (``train@reasonbrain``) or the DVC command.
        returncode: its exit code.
        tail: its last output lines.
        transient: whether the output shows a failure that a retry can fix.
    """

    exit_code = 1  # a run that failed, not bad input

    def __init__(self, stage: str, returncode: int, tail: list[str]) -> None:
        self.stage, self.returncode, self.tail = stage, returncode, tail
        text = "\n".join(tail)
        self.transient = any(m in text for m in TRANSIENT_MARKERS)
        last = next((t.strip() for t in reversed(tail) if t.strip()), "no output")
        super().__init__(
            f"DVC stage {stage} failed (exit {returncode}): {last}",
            where=stage,
            fix="see the stage's log above; fix the cause and run the pipeline again",
        )


def dvc_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of DVC subprocesses: stage commands use this interpreter."""
    env = dict(os.environ)
    env.setdefault("REASONBRAIN_PYTHON", sys.executable)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _lines(stream: Iterable[str]) -> Iterator[str]:
    """Lines of a text stream without terminal colours, also split at carriage returns."""
    for raw in stream:
        for part in _ANSI.sub("", raw.rstrip("\n")).split("\r"):
            if part.strip():
                yield part


def run_dvc(
    root: Path | str,
    args: Sequence[str],
    *,
    on_line: LineSink | None = None,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> list[str]:
    """Run ``python -m dvc ARGS`` in ``root``, streaming its output; returns all output lines.

    Raises:
        StageFailed: the command exited non-zero (``what`` names it).
    """
    cmd = [sys.executable, "-m", "dvc", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=str(root),
        env=dvc_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: stage commands spawn Ray workers
    )
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=40)
    try:
        assert proc.stdout is not None
        for line in _lines(proc.stdout):
            lines.append(line)
            tail.append(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    except BaseException:  # interrupted/cancelled: take the stage's processes down with us
        _kill_group(proc)
        raise
    if code != 0:
        raise StageFailed(what or " ".join(args), code, list(tail))
    return lines


def _kill_group(proc: subprocess.Popen[str]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def stage_outcome(stage: str, lines: Sequence[str]) -> str:
    """``ran`` when DVC ran the stage's command, else ``skipped`` (up to date or run-cache)."""
    running = f"Running stage '{stage}'"
    return RAN if any(line.startswith(running) for line in lines) else SKIPPED


def run_stage(
    root: Path | str,
    stage: str,
    *,
    on_line: LineSink | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """``dvc repro --single-item STAGE``: returns ``ran`` or ``skipped``.

    Raises:
        StageFailed: the stage's command failed (``transient`` says whether to retry).
    """
    lines = run_dvc(root, ["repro", "--single-item", stage], on_line=on_line, env=env, what=stage)
    return stage_outcome(stage, lines)


def pipeline_stages(root: Path | str) -> list[str]:
    """The stages of ``dvc.yaml`` (``foreach`` items expanded) in dependency order; ties keep
    the order of ``dvc.yaml``. Data sources (``.dvc`` files) are not stages to run. Stages of
    other ``dvc.yaml`` files are addressed ``path/dvc.yaml:name`` (relative to ``root``)."""
    import networkx as nx
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    base = Path(root).resolve()

    def address(stage: PipelineStage) -> str:
        path = Path(stage.path).resolve()
        if path == base / "dvc.yaml":
            return str(stage.name)
        return f"{os.path.relpath(path, base)}:{stage.name}"

    with Repo(str(base)) as repo:
        stages = [s for s in repo.index.stages if isinstance(s, PipelineStage)]
        order = {id(s): i for i, s in enumerate(stages)}
        graph = repo.index.graph.reverse()  # edges dependency → dependant
        ranked = nx.lexicographical_topological_sort(
            graph, key=lambda s: f"{order.get(id(s), len(order)):06d}"
        )
        return [address(s) for s in ranked if isinstance(s, PipelineStage)]


def dvc_add(root: Path | str, target: Path | str, *, on_line: LineSink | None = None) -> str:
    """``dvc add TARGET``: track a directory; returns the md5 DVC recorded for it."""
    run_dvc(root, ["add", str(target)], on_line=on_line, what=f"dvc add {target}")
    dvc_file = Path(root) / f"{target}.dvc"
    doc = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
    return str(doc["outs"][0]["md5"])


def dvc_push(root: Path | str, *, on_line: LineSink | None = None) -> list[str]:
    """``dvc push`` (to the default remote); returns its output."""
    return run_dvc(root, ["push"], on_line=on_line, what="dvc push")


# ---------------------------------------------------------------------------------- params
def _leaves(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for k, v in doc.items():
        if isinstance(v, Mapping) and v:
            yield from _leaves(v, (*prefix, str(k)))
        else:
            yield ".".join((*prefix, str(k))), v


def overlay_overrides(params_file: Path | str) -> list[str]:
    """A params file (whole or partial, same shape as ``params.yaml``) as ``key=value`` items.

    Raises:
        ConfigError: the file is missing, not YAML or not a mapping.
    """
    p = Path(params_file)
    if not p.is_file():
        raise ConfigError("params file not found", where=str(p), fix="pass an existing file")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError("params file is not valid YAML", where=str(p)) from None
    if not isinstance(doc, Mapping):
        raise ConfigError("params file must be a mapping of sections", where=str(p))
    return [f"{k}={json.dumps(v, default=str)}" for k, v in _leaves(doc)]  # JSON is YAML


def write_params(root: Path | str, overrides: Sequence[str]) -> tuple[Params, list[str]]:
    """Apply ``key=value`` overrides to ``ROOT/params.yaml`` in place (comments kept) and
    return the resulting params and the keys whose value changed.

    The result is validated first: an invalid override leaves the file untouched.

    Raises:
        ConfigError: no params.yaml, an unknown key or an invalid value.
    """
    from ruamel.yaml import YAML

    path = Path(root) / "params.yaml"
    if not path.is_file():
        raise ConfigError(
            "the project has no params.yaml", where=str(path), fix="run from the project root"
        )
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    new_raw = apply_overrides(raw, overrides)
    params = params_from_dict(new_raw, f"{path} + overrides")
    changed: list[str] = []
    if not overrides:
        return params, changed
    ry = YAML()
    ry.preserve_quotes = True
    ry.width = 4096
    doc = ry.load(path.read_text(encoding="utf-8"))
    for item in overrides:
        keys, value = parse_override(item)
        node = doc
        for k in keys[:-1]:
            if k not in node or not isinstance(node[k], dict):
                node[k] = {}
            node = node[k]
        if node.get(keys[-1]) != value:
            changed.append(".".join(keys))
        node[keys[-1]] = value
    if changed:
        buf = io.StringIO()
        ry.dump(doc, buf)
        from reasonbrain.data.schema import atomic_write_text

        atomic_write_text(path, buf.getvalue())
    return params, changed
