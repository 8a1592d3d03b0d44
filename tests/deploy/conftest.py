"""Fixtures for the deployment checks: the tools they need, found or a
clear failure under CI, and the hub fixtures shared with tests/hub."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.hub.conftest import db_url, pg_cluster, sqlite_url  # noqa: F401  (fixtures)


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; under CI a missing tool fails the test (a check
    that silently does not run is worse than none), elsewhere it skips."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install it with `apt-get install {package}` (tests/system-deps.sh does)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
