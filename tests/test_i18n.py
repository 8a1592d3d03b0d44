"""Language names on the welcome screen, without Babel at start-up."""

import pytest

from screens.i18n import LANGUAGE_NAMES, babel_language_name, language_name


@pytest.mark.parametrize("code", sorted(LANGUAGE_NAMES))
def test_the_table_of_language_names_matches_babel(code):
    assert LANGUAGE_NAMES[code] == babel_language_name(code)


def test_a_language_missing_from_the_table_is_still_named_by_babel():
    assert "sw" not in LANGUAGE_NAMES
    assert language_name("sw") == "Kiswahili"
    assert language_name("xx-nonsense") == "xx-nonsense"
