"""Which failures a retry can fix (transient infrastructure), and which it cannot.

Flow steps retry — with exponential backoff — only when the failure is transient: the object
store or the database did not answer, a network connection dropped, a Ray worker or node was
lost, another DVC process held the lock. A stage that fails because of its inputs (bad data, a
bug, invalid params) fails the same way every time and is not retried.
"""

from __future__ import annotations

from typing import Any

from reasonbrain.errors import RegistryError, StoreError


def is_transient(err: BaseException) -> bool:
    """True when retrying the step that raised ``err`` may succeed."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    from reasonbrain.pipeline.dvc import StageFailed

    if isinstance(err, StageFailed):
        return err.transient
    if isinstance(err, StoreError):
        return True
    if isinstance(err, RegistryError):
        return err.what.startswith("cannot open the metadata database")
    if isinstance(err, OperationalError | InterfaceError | DisconnectionError):
        return True
    return isinstance(err, ConnectionError | TimeoutError)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """A Prefect ``retry_condition_fn``: retry only transient failures."""
    try:
        err = state.result(raise_on_failure=False)
    except BaseException as raised:  # some states re-raise when read
        err = raised
    return isinstance(err, BaseException) and is_transient(err)
