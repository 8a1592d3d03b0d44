"""A test that needs a missing tool fails under CI and `make test`, and
only skips for a developer running it by hand."""

import pytest

from tests.hub import conftest as hub_conftest
from tests.tools import require_tool


@pytest.fixture
def no_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CLINIC_KIOSK_REQUIRE_TOOLS", raising=False)
    return monkeypatch


@pytest.mark.parametrize("flag", ["CI", "CLINIC_KIOSK_REQUIRE_TOOLS"])
def test_a_missing_program_fails_under_ci_and_make_test_naming_its_package(no_tools, flag):
    no_tools.setenv(flag, "true" if flag == "CI" else "1")
    with pytest.raises(pytest.fail.Exception, match=r"pdftotext not found: install it with `apt-get install poppler-utils`"):
        require_tool("pdftotext", "poppler-utils")


def test_a_missing_program_only_skips_outside_ci(no_tools):
    with pytest.raises(pytest.skip.Exception, match="pdftotext not found"):
        require_tool("pdftotext", "poppler-utils")


def test_postgresql_missing_fails_under_ci_instead_of_skipping(no_tools):
    no_tools.setattr(hub_conftest, "PG_BINS", [])
    no_tools.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"PostgreSQL server binaries not installed.*apt-get install postgresql"):
        hub_conftest.require_postgres()
    no_tools.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        hub_conftest.require_postgres()


def test_make_test_asks_for_every_tool():
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1].joinpath("Makefile").read_text()
    test_recipe = recipe.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "CLINIC_KIOSK_REQUIRE_TOOLS=1" in test_recipe
