"""The tools some tests need, found or refused out loud.

A check that silently does not run is worse than none. Under CI (``CI`` set)
and under ``make test``, which installs every tool the suite needs
(tests/system-deps.sh) and says so with ``CLINIC_KIOSK_REQUIRE_TOOLS=1``, a
missing tool fails the test and names the package to install. Anywhere else
(a developer running one file by hand) it skips with the same words.
"""

from __future__ import annotations

import os
import shutil

import pytest

TRUE = ("1", "true", "yes")


def tools_required() -> bool:
    """Whether a missing tool is a failure here rather than a skip."""
    return any(os.environ.get(name, "").strip().lower() in TRUE for name in ("CI", "CLINIC_KIOSK_REQUIRE_TOOLS"))


def missing(message: str) -> None:
    """Fails (under CI or ``make test``) or skips, saying ``message``."""
    if tools_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_tool(name: str, package: str) -> str:
    """The path of the program ``name``, from the Debian package ``package``."""
    path = shutil.which(name)
    if path:
        return path
    missing(f"{name} not found: install it with `apt-get install {package}` (tests/system-deps.sh does)")
    raise AssertionError("unreachable")  # missing() always raises
