"""The in-flight marker of a registration, kept fresh by a heartbeat thread.

``gc`` must never delete a registration that is still uploading, however long its upload takes
(a multipart upload is invisible in a listing until it completes; a ``file://`` upload is a hidden
``.part`` file). So a registration writes ``_registry/staging.json`` under its version root
*before* its first upload and rewrites it every ``heartbeat_s`` seconds until it has committed
(or failed); ``gc`` leaves every root alone whose marker is younger than its in-flight grace
(:data:`IN_FLIGHT_GRACE_S`, far above the heartbeat interval), whatever ``--min-age`` says.

If the heartbeat cannot refresh the marker for several intervals (store unreachable, process
stalled), :meth:`StagingMarker.check_alive` fails the registration before it commits: ``gc`` may
have judged it dead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from types import TracebackType

from reasonbrain.errors import StoreError
from reasonbrain.registry.store import ObjectStore

log = logging.getLogger("reasonbrain.registry")

#: default seconds between two refreshes of the in-flight marker
HEARTBEAT_S = 30.0
#: ``gc`` keeps a root whose in-flight marker is younger than this (20 heartbeats)
IN_FLIGHT_GRACE_S = 600.0
#: a registration whose marker has not been refreshed for this many heartbeats gives up
STALL_BEATS = 5


class StagingMarker:
    """Context manager: write the marker, refresh it on a thread, remove it at exit.

    Args:
        store: the object store.
        key: the marker's key (``<root>/_registry/staging.json``).
        name: the model name (recorded in the marker, for people reading the store).
        heartbeat_s: seconds between refreshes.
    """

    def __init__(self, store: ObjectStore, key: str, *, name: str, heartbeat_s: float) -> None:
        self.store = store
        self.key = key
        self.name = name
        self.heartbeat_s = heartbeat_s
        self.beats = 0
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-heartbeat", daemon=True)
        self._started = datetime.now(UTC).isoformat()

    def _write(self) -> None:
        doc = {
            "name": self.name,
            "started_at": self._started,
            "heartbeat_at": datetime.now(UTC).isoformat(),
            "heartbeat_s": self.heartbeat_s,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.store.put_bytes(json.dumps(doc).encode(), self.key)
        self._last_ok = time.monotonic()
        self.beats += 1

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self._write()
            except Exception as err:  # keep beating; check_alive() decides when it is too late
                log.warning("registration heartbeat failed (%s): %s", self.key, err)

    def __enter__(self) -> StagingMarker:
        self._write()  # before the first upload: a failure here stops the registration
        self._thread.start()
        return self

    def check_alive(self) -> None:
        """Raise if the marker has not been refreshed for :data:`STALL_BEATS` heartbeats.

        Raises:
            StoreError: the registration stalled; ``gc`` may have removed its staged files.
        """
        silent = time.monotonic() - self._last_ok
        if silent > STALL_BEATS * self.heartbeat_s:
            raise StoreError(
                f"registration stalled: its in-flight marker was not refreshed for {silent:.0f} s",
                where=self.store.uri_for(self.key),
                fix="check the object store is reachable, then register again",
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.store.delete([self.key])
        except Exception as err:  # gc removes stale markers of committed versions
            log.warning("could not remove the in-flight marker %s: %s", self.key, err)
