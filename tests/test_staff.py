"""The staff PIN guard."""

from kiosk.staff import PinGuard, hash_pin


def test_without_a_configured_pin_the_demo_pin_opens_the_pad_and_nothing_else_does():
    guard = PinGuard.from_config("")
    assert not guard.check("1357", now=0.0)
    assert guard.check("2468", now=0.0)


def test_a_configured_pin_replaces_the_demo_pin():
    guard = PinGuard.from_config(hash_pin("8642"))
    assert not guard.check("2468", now=0.0)
    assert guard.check("8642", now=0.0)


def test_five_wrong_pins_lock_the_pad_even_for_the_right_one():
    guard = PinGuard.from_config("")
    for _ in range(5):
        assert not guard.check("0000", now=10.0)
    assert not guard.check("2468", now=11.0)
    assert guard.check("2468", now=10.0 + guard.lockout_s)
