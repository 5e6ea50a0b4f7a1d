"""The local stack: an S3 endpoint, a PostgreSQL database and a Prefect server (issue 6, part 4).

``reasonbrain infra up`` starts what the production column of the design needs, on loopback:

- **S3**: moto's server mode (``python -m moto.server``) as a background process, then the
  bucket. moto keeps every object *in memory*: it is for trying the S3 code path locally and
  in CI; production uses real S3 (or any S3-compatible service) through the same settings.
- **PostgreSQL**: when a server answers on 127.0.0.1:5432 (trust auth, user ``postgres`` or
  ``root``), the database is created if missing. Otherwise the SQLite default stays in use.
- **Prefect**: ``prefect server start`` in the background, so deployments' cron schedules run
  (the ephemeral API schedules nothing). Optional (``--no-prefect``); it takes ~30 s to start.

Process ids, ports and logs live under ``<home>/infra/``; ``up`` is idempotent (a component that
is already running is reused), ``status`` says what is running, ``down`` stops what ``up``
started. The environment to export is printed and written to ``<home>/infra/env.sh``.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonbrain.errors import ReasonBrainError

HOST = "127.0.0.1"
#: moto accepts any credentials; these dummy values are the local stack's, never real ones
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class InfraError(ReasonBrainError):
    """A local-stack component could not be started."""


@dataclass
class Component:
    """State of one component of the stack."""

    name: str
    running: bool
    detail: str
    pid: int | None = None
    url: str | None = None


@dataclass
class StackStatus:
    """State of the whole stack and the environment that points the project at it."""

    components: list[Component] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return asdict(self)


def infra_dir(home: Path | None = None) -> Path:
    """``<home>/infra`` (pid files, ports, logs, env.sh)."""
    from reasonbrain.config import get_settings

    return (home or get_settings().home).resolve() / "infra"


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------- processes
def _pid_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and its command line contains ``marker`` (pid reuse guard)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def _read_state(d: Path, name: str) -> dict[str, int | str] | None:
    p = d / f"{name}.json"
    try:
        state: dict[str, int | str] = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return state


def _write_state(d: Path, name: str, state: dict[str, int | str]) -> None:
    tmp = d / f".{name}.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(d / f"{name}.json")


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(200 <= r.status < 500)
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ValueError):
        return False


def _check_port_free(port: int, what: str) -> None:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise InfraError(
                f"port {port} is already in use (not by a {what} this stack started)",
                where=f"{HOST}:{port}",
                fix="free the port or choose another one (--s3-port / --prefect-port)",
            ) from None


def _spawn(
    d: Path, name: str, argv: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = open(d / f"{name}.log", "ab")  # noqa: SIM115 — handed to the child process
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the CLI; its own process group for `down`
        env={**os.environ, **(env or {})},
        cwd=d,
    )
    log.close()
    return proc


def _wait_ready(url: str, alive: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _http_ok(url):
            return
        if not alive():
            tail = log.read_text(errors="replace")[-300:] if log.is_file() else ""
            raise InfraError(f"process exited during start-up: {tail!r}", where=str(log))
        time.sleep(0.2)
    raise InfraError(
        f"not ready after {timeout_s:.0f} s",
        where=url,
        fix=f"see {log}; raise --wait for slow machines",
    )


def _await_spawned(
    d: Path, name: str, proc: subprocess.Popen[bytes], url: str, wait_s: float
) -> None:
    """Wait until the component ``name`` just spawned as ``proc`` answers at ``url``.

    Its liveness comes from the ``Popen`` handle, not from ``/proc/<pid>/cmdline``: right after
    ``exec`` the new command line can still read empty, and on a loaded machine a check landing
    there took a healthy server for one that had exited. If it exits or is not ready in time,
    it is stopped and its state file removed, so nothing is left half-started.

    Raises:
        InfraError: the process exited during start-up, or was not ready after ``wait_s``.
    """
    running = lambda: proc.poll() is None  # noqa: E731 — not reaped: its group is still ours
    try:
        _wait_ready(url, running, wait_s, d / f"{name}.log")
    except InfraError:
        _stop(proc.pid, running)
        proc.wait()
        (d / f"{name}.json").unlink(missing_ok=True)
        raise


def _stop(pid: int, alive: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Stop process group ``pid`` (SIGTERM, then SIGKILL after ``timeout_s``) while ``alive()``."""
    if not alive():
        return
    try:
        os.killpg(pid, signal.SIGTERM)  # the whole group: servers may fork workers
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        time.sleep(0.1)
    if alive():
        os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------- components
MOTO_MARKER = "moto.server"
PREFECT_MARKER = "prefect server start"


def _moto_status(d: Path) -> Component:
    st = _read_state(d, "s3")
    if st and _pid_alive(int(st["pid"]), MOTO_MARKER):
        url = f"http://{HOST}:{st['port']}"
        ok = _http_ok(url)
        return Component(
            "s3", ok, f"moto server (in memory), bucket {st.get('bucket')}", int(st["pid"]), url
        )
    return Component("s3", False, "not running")


def start_s3(d: Path, *, port: int, bucket: str, wait_s: float) -> Component:
    """Start (or reuse) the moto S3 server and create ``bucket``."""
    comp = _moto_status(d)
    if not comp.running:
        _check_port_free(port, "S3 endpoint")
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
        proc = _spawn(d, "s3", argv)
        _write_state(d, "s3", {"pid": proc.pid, "port": port, "bucket": bucket})
        _await_spawned(d, "s3", proc, f"http://{HOST}:{port}", wait_s)
        comp = _moto_status(d)
    assert comp.url is not None
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=comp.url,
        aws_access_key_id=LOCAL_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS["AWS_DEFAULT_REGION"],
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    st = _read_state(d, "s3") or {}
    _write_state(d, "s3", {**st, "bucket": bucket})
    return _moto_status(d)


def ensure_postgres(db_name: str, *, port: int = 5432) -> Component:
    """Create ``db_name`` on the local PostgreSQL server when one answers."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover — psycopg is a dependency
        return Component("postgres", False, "psycopg not installed")
    for user in ("postgres", "root"):
        try:
            with psycopg.connect(
                host=HOST, port=port, user=user, dbname="postgres", connect_timeout=3
            ) as conn:
                conn.autocommit = True
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{db_name}"')
                url = f"postgresql+psycopg://{user}@{HOST}:{port}/{db_name}"
                return Component("postgres", True, f"database {db_name}", url=url)
        except psycopg.Error:
            continue
    return Component(
        "postgres", False, f"no server on {HOST}:{port}; the SQLite default stays in use"
    )


def _prefect_status(d: Path) -> Component:
    st = _read_state(d, "prefect")
    if st and _pid_alive(int(st["pid"]), PREFECT_MARKER):
        url = f"http://{HOST}:{st['port']}/api"
        ok = _http_ok(url + "/health")
        return Component(
            "prefect", ok, "prefect server" + ("" if ok else " (starting)"), int(st["pid"]), url
        )
    return Component("prefect", False, "not running")


def start_prefect(d: Path, *, port: int, wait_s: float) -> Component:
    """Start (or reuse) ``prefect server start`` (its own PREFECT_HOME under ``d``)."""
    comp = _prefect_status(d)
    pid = comp.pid
    if pid is None:
        _check_port_free(port, "Prefect server")
        argv = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        proc = _spawn(d, "prefect", argv, env={"PREFECT_HOME": str(d / "prefect")})
        _write_state(d, "prefect", {"pid": proc.pid, "port": port})
        if wait_s > 0:
            _await_spawned(d, "prefect", proc, f"http://{HOST}:{port}/api/health", wait_s)
    elif wait_s > 0:  # one an earlier `up --wait 0` left starting
        st = _read_state(d, "prefect") or {}
        _wait_ready(
            f"http://{HOST}:{st['port']}/api/health",
            lambda: _pid_alive(pid, PREFECT_MARKER),
            wait_s,
            d / "prefect.log",
        )
    return _prefect_status(d)


# --------------------------------------------------------------------- stack
def stack_env(components: list[Component], bucket: str | None) -> dict[str, str]:
    """The environment variables that point the project at the running components."""
    env: dict[str, str] = {}
    by = {c.name: c for c in components}
    s3 = by.get("s3")
    if s3 and s3.running and s3.url:
        env.update({"AWS_ENDPOINT_URL": s3.url, **LOCAL_AWS})
        env["REASONBRAIN_STORE_URI"] = f"s3://{bucket}/registry"
    pg = by.get("postgres")
    if pg and pg.running and pg.url:
        env["REASONBRAIN_DB_URL"] = pg.url
    pf = by.get("prefect")
    if pf and pf.pid is not None and pf.url:
        env["PREFECT_API_URL"] = pf.url
    return env


def _write_env(d: Path, env: dict[str, str]) -> None:
    text = "".join(f"export {k}={v}\n" for k, v in env.items())
    tmp = d / ".env.sh.tmp"
    tmp.write_text(text)
    tmp.replace(d / "env.sh")


def up(
    *,
    home: Path | None = None,
    s3_port: int = 9000,
    bucket: str = "reasonbrain",
    postgres: bool = True,
    db_name: str = "reasonbrain",
    prefect: bool = True,
    prefect_port: int = 4200,
    wait_s: float = 90.0,
) -> StackStatus:
    """Start the local stack (idempotent) and write ``<home>/infra/env.sh``.

    Raises:
        InfraError: a component did not start (the message names its log file).
    """
    d = infra_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    comps = [start_s3(d, port=s3_port, bucket=bucket, wait_s=wait_s)]
    comps.append(ensure_postgres(db_name) if postgres else Component("postgres", False, "skipped"))
    if prefect:
        comps.append(start_prefect(d, port=prefect_port, wait_s=wait_s))
    else:
        comps.append(_prefect_status(d))
    env = stack_env(comps, bucket)
    _write_env(d, env)
    return StackStatus(comps, env)


def status(*, home: Path | None = None, db_name: str = "reasonbrain") -> StackStatus:
    """What is running now (never starts anything; PostgreSQL is only probed)."""
    d = infra_dir(home)
    s3 = _moto_status(d)
    st = _read_state(d, "s3") or {}
    comps = [s3, _probe_postgres(db_name), _prefect_status(d)]
    return StackStatus(comps, stack_env(comps, str(st.get("bucket", "reasonbrain"))))


def _probe_postgres(db_name: str) -> Component:
    import psycopg

    for user in ("postgres", "root"):
        try:
            with psycopg.connect(
                host=HOST, port=5432, user=user, dbname=db_name, connect_timeout=2
            ):
                url = f"postgresql+psycopg://{user}@{HOST}:5432/{db_name}"
                return Component("postgres", True, f"database {db_name}", url=url)
        except psycopg.Error:
            continue
    return Component("postgres", False, f"database {db_name} not reachable")


def down(*, home: Path | None = None) -> StackStatus:
    """Stop the processes ``up`` started (the PostgreSQL database and its data are kept)."""
    d = infra_dir(home)
    for name, marker in (("s3", MOTO_MARKER), ("prefect", PREFECT_MARKER)):
        st = _read_state(d, name)
        if st:
            pid = int(st["pid"])
            _stop(pid, functools.partial(_pid_alive, pid, marker))
            (d / f"{name}.json").unlink(missing_ok=True)
    (d / "env.sh").unlink(missing_ok=True)
    return StackStatus([_moto_status(d), _prefect_status(d)], {})
