"""A throw-away S3 endpoint for the benchmarks: moto's server mode on a free loopback port.

Not :func:`reasonbrain.registry.infra.start_s3`: that one is the long-lived ``infra up``
endpoint (fixed port, state file, credentials); a benchmark wants a private server it stops
itself, so that two runs never share a bucket.
"""

from __future__ import annotations

import subprocess
import sys
import time


def start_moto(wait_s: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m moto.server`` on a free port; returns the process and its URL.

    Raises:
        RuntimeError: the server did not answer within ``wait_s`` seconds or exited.
    """
    from reasonbrain.registry.infra import _http_ok, free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while not _http_ok(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("moto server did not start")
        time.sleep(0.1)
    return proc, url
