"""Test-session isolation shared by every test area.

Area-specific fixtures live in their own plugin modules listed in ``pytest_plugins`` below (one
line per area), so that areas never edit each other's fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "tests.integration.registry_fixtures",
    "tests.ray_fixtures",
    "tests.model.paper_fixtures",
]

#: The longest test files (minutes each), collected first. `make test` runs files in parallel
#: (pytest-xdist, ``--dist loadfile``), handing them out in collection order: a long file
#: collected late would run on alone after every other file had finished.
LONGEST_FIRST = ("tests/flows/test_pipeline_flow.py", "tests/integration/test_cluster.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests of ``LONGEST_FIRST`` to the front (a stable sort: order kept otherwise)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test writes under the repo's .reasonbrain/ or reaches a network service by accident."""
    home: Path = tmp_path_factory.mktemp("reasonbrain-home")
    os.environ["REASONBRAIN_HOME"] = str(home)
    for key in ("REASONBRAIN_STORE_URI", "REASONBRAIN_DB_URL", "RAY_ADDRESS", "PREFECT_API_URL"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "DVC_NO_ANALYTICS": "1",
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "DO_NOT_TRACK": "1",
        }
    )
