"""Readability rules that are checkable without a window: colour contrast of
every text/background pair the screens use (WCAG 2.2 AA: at least 4.5:1)."""

import pytest

from screens.palette import CONTRAST_PAIRS, PALETTE


def luminance(rgba):
    def channel(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_formula_matches_wcag_reference_values():
    assert contrast((0, 0, 0, 1), (1, 1, 1, 1)) == pytest.approx(21.0)
    assert contrast((0.4627, 0.4627, 0.4627, 1), (1, 1, 1, 1)) == pytest.approx(4.54, abs=0.01)  # #767676


@pytest.mark.parametrize("text,background", CONTRAST_PAIRS)
def test_text_contrast_is_at_least_4_5_to_1(text, background):
    assert contrast(PALETTE[text], PALETTE[background]) >= 4.5
