"""Helpers for the flow tests: a micro copy of the project in a temporary git repository, landing
drops, a local webhook receiver, a flaky S3 proxy and temporary PostgreSQL databases."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432

#: a pipeline that runs in about two minutes here: 40 records at 32 px, 3 optimiser steps,
#: 4 denoising steps; one CPU per Ray worker/actor (leaves one for Ray itself)
MICRO: dict[str, Any] = {
    "data": {"synth": {"n_train": 24, "n_val": 8, "n_test": 8, "workers": 1}},
    "train": {
        "max_steps": 3,
        "batch_size": 4,
        "val_every": 1000,
        "val_samples": 0,
        "sample_images": 0,
        "checkpoint_every": 1000,
        "cpus_per_worker": 1,
    },
    "eval": {
        "concurrency": 1,
        "num_cpus_per_actor": 1,
        "num_inference_steps": 4,
        "bootstrap_resamples": 100,
    },
    "pipeline": {"retry_delay_s": 0.2},
}


def deep_update(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``upd`` merged in (nested dicts merged, other values replaced)."""
    out = dict(base)
    for k, v in upd.items():
        out[k] = deep_update(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (fixed identity); returns stdout."""
    r = subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


def make_project(dest: Path, params: dict[str, Any] | None = None) -> Path:
    """A copy of this project (code, flows, DVC pipeline, micro params) committed to a new git
    repository at ``dest``, with ``.venv`` linked to the interpreter running the tests."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("reasonbrain", "flows", "bin"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "prefect.yaml"):
        shutil.copy(REPO / name, dest / name)
    (dest / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy(REPO / ".dvc" / name, dest / ".dvc" / name)
    (dest / "data" / "ingested").mkdir(parents=True)
    shutil.copy(REPO / "data" / ".gitignore", dest / "data" / ".gitignore")
    shutil.copy(REPO / "data/ingested/README.md", dest / "data/ingested/README.md")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = deep_update(raw, deep_update(MICRO, params or {}))
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (dest / ".venv").symlink_to(Path(sys.prefix))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "micro project")
    return dest


def read_params(root: Path) -> dict[str, Any]:
    """The project's params.yaml as a dict."""
    return dict(yaml.safe_load((root / "params.yaml").read_text()))


def dvc(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``python -m dvc ARGS`` in ``root`` (stages use this interpreter); returns stdout."""
    full = {**os.environ, "REASONBRAIN_PYTHON": sys.executable, **(env or {})}
    r = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=full, capture_output=True, text=True
    )
    assert r.returncode == 0, f"dvc {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def make_drop(
    dest: Path,
    prefix: str,
    *,
    n_per_split: int = 2,
    category: str = "physical",
    size: int = 32,
    ready: bool = True,
) -> Path:
    """A small Reason50K-layout drop; ids ``<prefix>-<split>-<i>``; ``_READY`` when ``ready``."""
    (dest / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    for split in ("train", "val", "test"):
        lines = []
        for i in range(n_per_split):
            sid = f"{prefix}-{split}-{i}"
            src = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            tgt = src.copy()
            tgt[: size // 2, : size // 2] = (255, 255, 0)
            Image.fromarray(src).save(dest / "images" / f"{sid}-src.png")
            Image.fromarray(tgt).save(dest / "images" / f"{sid}-tgt.png")
            lines.append(
                json.dumps(
                    {
                        "id": sid,
                        "category": category,
                        "src_image": f"images/{sid}-src.png",
                        "tgt_image": f"images/{sid}-tgt.png",
                        "instruction": f"What would happen if the box number {i} were painted?",
                        "objects": ["box"],
                        "target_caption": "a yellow corner",
                    }
                )
            )
        (dest / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    if ready:
        (dest / "_READY").write_text("")
    return dest


# ------------------------------------------------------------------------------- webhook
class Webhook:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/SECRET"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- flaky proxy
class FlakyS3Proxy:
    """An HTTP proxy in front of an S3 endpoint that answers ``503 SlowDown`` to the first
    ``fail_first`` write requests (PUT/POST), then forwards everything."""

    def __init__(self, upstream: str, fail_first: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.remaining = fail_first
        self.failed = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self._body()
                if self.command in ("PUT", "POST"):
                    with proxy.lock:
                        fail = proxy.remaining > 0
                        if fail:
                            proxy.remaining -= 1
                            proxy.failed += 1
                    if fail:
                        msg = b"<Error><Code>SlowDown</Code><Message>slow down</Message></Error>"
                        self.send_response(503)
                        self.send_header("Content-Length", str(len(msg)))
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                hop = {"host", "expect", "connection", "transfer-encoding", "content-length"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                # urllib would label a body as a form, which the server then parses away
                headers.setdefault("Content-Type", "application/octet-stream")
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command, headers=headers
                )
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, rh, data = r.status, r.headers, r.read()
                except urllib.error.HTTPError as err:
                    status, rh, data = err.code, err.headers, err.read()
                self.send_response(status)
                for k, v in rh.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                length = rh.get("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes | None:
                """The request body (botocore streams uploads with chunked encoding)."""
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline().strip():  # trailers
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length", 0) or 0)
                return self.rfile.read(n) if n else None

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop the proxy."""
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- PostgreSQL
@contextlib.contextmanager
def pg_database(admin_user: str) -> Iterator[str]:
    """A temporary PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"rb_flow_{uuid.uuid4().hex[:12]}"
    admin = {"host": PG_HOST, "port": PG_PORT, "user": admin_user, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{admin_user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or unset, with ``None``) environment variables for a block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
