"""The staff PIN guard."""

import pytest

from kiosk.staff import DEMO_PIN, PinGuard, hash_pin


@pytest.mark.parametrize("empty", ["", "   "])
def test_without_a_configured_pin_nothing_opens_the_pad_not_even_the_published_demo_pin(empty):
    guard = PinGuard.from_config(empty)
    assert not guard.configured
    assert not guard.check(DEMO_PIN, now=0.0)
    assert not guard.check("1357", now=0.0)
    assert not guard.check("", now=0.0)


def test_a_configured_pin_opens_the_pad_and_the_demo_pin_does_not():
    guard = PinGuard.from_config(hash_pin("8642"))
    assert not guard.check("2468", now=0.0)
    assert guard.check("8642", now=0.0)


def test_the_demo_configuration_opens_with_the_demo_pin():
    # `make run` writes a hash of the demo PIN into its own configuration.
    assert PinGuard.from_config(hash_pin(DEMO_PIN)).check(DEMO_PIN, now=0.0)


def test_five_wrong_pins_lock_the_pad_even_for_the_right_one():
    guard = PinGuard.from_config(hash_pin("8642"))
    for _ in range(5):
        assert not guard.check("0000", now=10.0)
    assert not guard.check("8642", now=11.0)
    assert guard.check("8642", now=10.0 + guard.lockout_s)
