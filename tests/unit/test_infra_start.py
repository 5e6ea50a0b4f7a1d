"""Starting a local-stack process (`reasonbrain infra up`): what counts as started, and what is
left behind when start-up fails. Real processes (a stdlib HTTP server, a sleeper, a crasher)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reasonbrain.registry import infra


def _spawn(d: Path, name: str, code: str) -> subprocess.Popen[bytes]:
    proc = infra._spawn(d, name, [sys.executable, "-c", code])
    infra._write_state(d, name, {"pid": proc.pid, "port": 0})
    return proc


def _http_server(port: int) -> str:
    return (
        "import http.server, socketserver\n"
        f"socketserver.TCPServer(('127.0.0.1', {port}), "
        "http.server.SimpleHTTPRequestHandler).serve_forever()"
    )


def test_a_server_whose_command_line_cannot_be_read_yet_still_counts_as_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after exec, /proc/<pid>/cmdline can read empty; on a loaded host that once made
    `prefect server start` look dead while it was starting (and left it running). The wait
    must follow the process it spawned. A stdlib HTTP server stands in for Prefect's (it
    answers /api/health with a 404, which counts as up, as Prefect's 200 does)."""
    real_spawn = infra._spawn

    def spawn_web(d: Path, name: str, argv: list[str], env: object = None) -> object:
        port = int(argv[argv.index("--port") + 1])
        return real_spawn(d, name, [sys.executable, "-c", _http_server(port)])

    monkeypatch.setattr(infra, "_spawn", spawn_web)
    monkeypatch.setattr(infra, "_pid_alive", lambda pid, marker: False)  # unreadable cmdline
    state = tmp_path / "prefect.json"
    try:
        infra.start_prefect(tmp_path, port=infra.free_port(), wait_s=30)  # no InfraError
        assert Path(f"/proc/{json.loads(state.read_text())['pid']}").exists()
    finally:
        if state.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(json.loads(state.read_text())["pid"]), signal.SIGKILL)


def test_a_process_that_exits_during_start_up_is_named_with_its_log(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "crash", "print('cannot bind: port taken'); raise SystemExit(3)")
    port = infra.free_port()
    with pytest.raises(infra.InfraError, match=r"exited during start-up.*port taken") as err:
        infra._await_spawned(tmp_path, "crash", proc, f"http://127.0.0.1:{port}/", 30)
    assert err.value.where == str(tmp_path / "crash.log")
    assert not (tmp_path / "crash.json").exists()  # no state left pointing at a dead pid


def test_a_process_not_ready_in_time_is_stopped_not_leaked(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "slow", "import time; time.sleep(120)")
    port = infra.free_port()
    with pytest.raises(infra.InfraError, match="not ready after 1 s"):
        infra._await_spawned(tmp_path, "slow", proc, f"http://127.0.0.1:{port}/", 1)
    assert proc.poll() is not None  # stopped (and reaped), not left running
    assert not (tmp_path / "slow.json").exists()


def test_a_server_left_starting_is_waited_for_and_a_stale_state_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up --wait 0` leaves a server starting: the next `up` waits for that one (no second
    server). A state file whose process is gone is stale: a new server is started."""
    port = infra.free_port()
    # a process whose command line carries the marker, as `prefect server start` does
    starting = infra._spawn(
        tmp_path, "prefect", [sys.executable, "-c", _http_server(port), "prefect server start"]
    )
    infra._write_state(tmp_path, "prefect", {"pid": starting.pid, "port": port})
    spawned: list[list[str]] = []
    real_spawn = infra._spawn

    def spawn_web(d: Path, name: str, argv: list[str], env: object = None) -> object:
        spawned.append(argv)
        new_port = int(argv[argv.index("--port") + 1])
        return real_spawn(d, name, [sys.executable, "-c", _http_server(new_port)])

    monkeypatch.setattr(infra, "_spawn", spawn_web)
    try:
        comp = infra.start_prefect(tmp_path, port=infra.free_port(), wait_s=30)
        assert spawned == [] and comp.pid == starting.pid and comp.running
    finally:
        starting.kill()
        starting.wait()
    state = tmp_path / "prefect.json"
    try:
        infra.start_prefect(tmp_path, port=infra.free_port(), wait_s=30)
        assert len(spawned) == 1  # the dead pid's state did not stop a new start
        assert json.loads(state.read_text())["pid"] != starting.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(json.loads(state.read_text())["pid"]), signal.SIGKILL)
