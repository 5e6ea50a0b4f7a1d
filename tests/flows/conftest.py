"""Fixtures of the flow tests: real Prefect (``prefect_test_harness``) with its home and result
storage isolated in a temporary directory, and a local webhook receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.helpers import Webhook


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Flows run against a temporary Prefect API (its own database); results, home and logs of
    this session stay in a temporary directory, so nothing leaks between test sessions."""
    home: Path = tmp_path_factory.mktemp("prefect-home")
    os.environ.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(
            {
                PREFECT_HOME: home,
                PREFECT_LOCAL_STORAGE_PATH: home / "results",
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
            }
        ),
        prefect_test_harness(server_startup_timeout=120),
    ):
        yield


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local HTTP server recording the notifications POSTed to it."""
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()
