"""The staff call button and lights: what patients and staff see and get.

Hardware tests run on gpiozero's MockFactory (swapped in and restored by the
``mock_factory`` fixture, as in gpiozero's own tests); the button is pressed
with ``pin.drive_low()``. LED patterns over time are checked by calling
``tick(now=...)`` with chosen instants.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import types

import pytest
from click.testing import CliRunner
from gpiozero import LED, Device
from gpiozero.pins.mock import MockFactory, MockPin

from kiosk.alerts import AlertBus
from kiosk.cli import gpio_test_command
from kiosk.config import Config, GpioSection
from kiosk.hardware import (
    EMERGENCY_PATTERN,
    CallController,
    CallPanel,
    CallState,
    CallTiming,
    Outputs,
    outputs,
    pattern_on,
)

BUTTON, CALL_LED, EMERGENCY_LED, BUZZER = 17, 27, 22, 23


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Recorder:
    """An alert channel that remembers what it was sent."""

    def __init__(self):
        self.alerts = []

    def send(self, alert):
        self.alerts.append(alert)

    @property
    def kinds(self):
        return [a.kind for a in self.alerts]


def wait_until(predicate, timeout=5.0):
    """Bounded polling for gpiozero's background threads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def gpio(**changes) -> GpioSection:
    base = dict(
        call_button_pin=BUTTON,
        call_led_pin=CALL_LED,
        emergency_led_pin=EMERGENCY_LED,
        buzzer_pin=BUZZER,
        hold_time_s=3.0,  # tests of the hold pass a short one
        escalate_after_s=60.0,
    )
    base.update(changes)
    return GpioSection(**base)


@pytest.fixture()
def mock_factory():
    save_factory = Device.pin_factory
    Device.pin_factory = MockFactory(pin_class=MockPin)
    try:
        yield Device.pin_factory
    finally:
        if Device.pin_factory is not None:
            Device.pin_factory.reset()
        Device.pin_factory = save_factory


@pytest.fixture()
def no_factory():
    """No pin factory yet, so gpiozero picks one from GPIOZERO_PIN_FACTORY."""
    save_factory = Device.pin_factory
    Device.pin_factory = None
    try:
        yield
    finally:
        if Device.pin_factory is not None:
            Device.pin_factory.reset()
        Device.pin_factory = save_factory


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def recorder():
    return Recorder()


@pytest.fixture()
def make_panel(mock_factory, clock, recorder):
    panels = []
    events = {"call": 0, "ack": 0}

    def make(**changes):
        def on_call():
            events["call"] += 1

        def on_ack():
            events["ack"] += 1

        panel = CallPanel(
            gpio(**changes),
            on_call=on_call,
            on_ack=on_ack,
            alert_bus=AlertBus([recorder]),
            kiosk_id="kiosk-7",
            now=clock,
        )
        panel.events = events
        panels.append(panel)
        return panel

    try:
        yield make
    finally:
        for panel in panels:
            panel.close()


def pin(factory, number):
    return factory.pin(number)


def signature(state, start, *, shared_led, field="call_led", escalate_after_s=60.0):
    """What one output does over 2.4 s, sampled every 50 ms."""
    return tuple(
        getattr(
            outputs(state, start + i * 0.05, escalate_after_s=escalate_after_s, shared_led=shared_led),
            field,
        )
        for i in range(48)
    )


# -- the pure rules -----------------------------------------------------------


def test_press_creates_one_call_and_repeats_do_not_duplicate():
    c = CallController(CallTiming())
    assert c.press(0.0) is True
    assert [c.press(t) for t in (0.001, 0.5, 5.0, 100.0)] == [False] * 4
    assert c.state.call_since == 0.0


def test_hold_acknowledges_and_release_bounce_is_not_a_new_call():
    c = CallController(CallTiming(bounce_s=0.05, repeat_window_s=1.0))
    c.press(0.0)
    assert c.hold(3.0) is True
    assert not c.state.call_active
    # Staff keep holding, then let go: the contacts chatter.
    assert c.press(9.0) is False  # still the acknowledging press
    c.release(9.0)
    assert c.press(9.01) is False
    c.release(9.02)
    assert c.press(9.5) is False
    assert c.press(10.5) is True  # a real press later is a new call


def test_hold_with_nothing_active_acknowledges_nothing():
    c = CallController()
    assert c.hold(1.0) is False
    assert c.acknowledge(1.0) is False


def test_on_screen_acknowledge_then_quick_press_is_ignored_then_later_press_calls():
    c = CallController(CallTiming(repeat_window_s=1.0))
    c.press(0.0, physical=False)
    assert c.acknowledge(2.0) is True
    assert c.press(2.5, physical=False) is False
    assert c.press(3.5, physical=False) is True


def test_emergency_set_and_clear():
    c = CallController()
    assert c.emergency(1.0) is True
    assert c.emergency(2.0) is False
    assert c.state.emergency_since == 1.0
    assert c.clear_emergency(3.0) is True
    assert c.clear_emergency(3.0) is False


def test_call_light_is_steady_then_blinks_fast_with_buzzer_after_escalation():
    state = CallState(call_since=100.0)
    before = [outputs(state, 100.0 + i * 0.1, escalate_after_s=60) for i in range(590)]
    assert all(o == Outputs(call_led=True) for o in before)
    after = [outputs(state, 160.0 + i * 0.05, escalate_after_s=60) for i in range(40)]
    leds = [o.call_led for o in after]
    assert True in leds and False in leds
    assert any(o.buzzer for o in after) and not all(o.buzzer for o in after)
    assert outputs(state, 160.0, escalate_after_s=60) == Outputs(call_led=True, buzzer=True)


def test_emergency_pattern_is_distinct_on_its_own_led_and_on_a_shared_led():
    call = CallState(call_since=0.0)
    emergency = CallState(emergency_since=0.0)
    steady = signature(call, 1.0, shared_led=True)
    escalated = signature(call, 61.0, shared_led=True)
    shared_emergency = signature(emergency, 1.0, shared_led=True)
    assert len({steady, escalated, shared_emergency}) == 3
    # On its own LED the emergency uses the same double flash, and the call
    # LED stays dark.
    assert signature(emergency, 1.0, shared_led=False, field="emergency_led") == shared_emergency
    assert not any(signature(emergency, 1.0, shared_led=False))
    # A double flash: two separate "on" runs in one period.
    period = [pattern_on(EMERGENCY_PATTERN, i * 0.05) for i in range(24)]
    assert sum(EMERGENCY_PATTERN) == pytest.approx(1.2)
    assert sum(1 for i, on in enumerate(period) if on and (i == 0 or not period[i - 1])) == 2


def test_emergency_takes_the_shared_led_over_a_call():
    both = CallState(call_since=0.0, emergency_since=0.0)
    assert signature(both, 1.0, shared_led=True) == signature(
        CallState(emergency_since=0.0), 1.0, shared_led=True
    )


def test_pattern_on_starts_lit():
    assert pattern_on((0.25, 0.25), 0.0)
    assert not pattern_on((0.25, 0.25), 0.3)
    assert pattern_on((0.25, 0.25), 0.55)


# -- the panel on mock GPIO ---------------------------------------------------


def test_press_sends_exactly_one_staff_call_alert(make_panel, mock_factory, recorder):
    panel = make_panel()
    health = panel.health()
    assert (health["mode"], health["ok"], health["call_active"]) == ("mock", True, False)
    assert "call button on BCM 17 (header pin 11)" in health["message"]
    button = pin(mock_factory, BUTTON)
    button.drive_low()
    # Contact bounce and impatient presses while the call is active.
    for _ in range(5):
        button.drive_high()
        button.drive_low()
    button.drive_high()
    assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call"]
    assert recorder.alerts[0].kiosk_id == "kiosk-7"
    assert recorder.alerts[0].intake_id is None  # no patient data
    assert panel.events == {"call": 1, "ack": 0}
    assert panel.health()["call_active"] is True


def test_press_lights_the_call_led_at_once(make_panel, mock_factory):
    make_panel()
    pin(mock_factory, BUTTON).drive_low()
    assert pin(mock_factory, CALL_LED).state is True
    pin(mock_factory, BUTTON).drive_high()


def test_closing_while_the_button_is_down_does_not_acknowledge(make_panel, mock_factory, recorder):
    panel = make_panel(hold_time_s=0.2)
    pin(mock_factory, BUTTON).drive_low()
    panel.close()
    assert recorder.kinds == ["staff-call"]
    assert panel.events["ack"] == 0


def test_hold_acknowledges_and_its_release_does_not_call_again(make_panel, mock_factory, clock, recorder):
    panel = make_panel(hold_time_s=0.05)
    button = pin(mock_factory, BUTTON)
    button.drive_low()
    assert wait_until(lambda: panel.events["ack"] == 1)
    # Release with bounce, all at the same instant of the controlled clock.
    button.drive_high()
    button.drive_low()
    button.drive_high()
    assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call", "acknowledged"]
    assert panel.tick().call_led is False
    assert pin(mock_factory, CALL_LED).state is False
    # A press a few seconds later is a new call.
    clock.t += 5
    button.drive_low()
    button.drive_high()
    assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call", "acknowledged", "staff-call"]


def test_led_and_buzzer_over_time(make_panel, mock_factory, clock):
    panel = make_panel()
    call_led, buzzer = pin(mock_factory, CALL_LED), pin(mock_factory, BUZZER)
    emergency_led = pin(mock_factory, EMERGENCY_LED)
    start = clock.t
    assert panel.request_call() is True
    for dt in (0.0, 0.3, 10.0, 59.9):
        panel.tick(now=start + dt)
        assert (call_led.state, emergency_led.state, buzzer.state) == (True, False, False)
    seen = set()
    for i in range(40):
        panel.tick(now=start + 60.0 + i * 0.05)
        seen.add((call_led.state, buzzer.state))
    assert (False, False) in seen and (True, True) in seen  # blinking, beeping
    assert panel.acknowledge() is True
    panel.tick(now=start + 70.0)
    assert (call_led.state, buzzer.state) == (False, False)


def test_emergency_uses_its_own_led(make_panel, mock_factory, clock):
    panel = make_panel()
    call_led, emergency_led = pin(mock_factory, CALL_LED), pin(mock_factory, EMERGENCY_LED)
    panel.set_emergency(True)
    states = []
    for i in range(24):
        panel.tick(now=clock.t + i * 0.05)
        states.append((call_led.state, emergency_led.state))
    assert {c for c, _ in states} == {False}
    assert {e for _, e in states} == {True, False}
    panel.set_emergency(False)
    panel.tick(now=clock.t + 2)
    assert emergency_led.state is False


def test_emergency_on_shared_led_differs_from_a_call(make_panel, mock_factory, clock):
    panel = make_panel(emergency_led_pin=0)
    call_led = pin(mock_factory, CALL_LED)

    def trace():
        out = []
        for i in range(48):
            panel.tick(now=clock.t + i * 0.05)
            out.append(call_led.state)
        return out

    panel.request_call()
    call_trace = trace()
    panel.acknowledge()
    clock.t += 10
    panel.set_emergency(True)
    emergency_trace = trace()
    assert all(call_trace)
    assert True in emergency_trace and False in emergency_trace
    assert "emergency shares the call LED" in panel.health()["message"]


def test_hold_clears_an_emergency_too(make_panel, mock_factory, recorder):
    panel = make_panel(hold_time_s=0.05)
    panel.set_emergency(True)
    pin(mock_factory, BUTTON).drive_low()  # the press itself starts a call
    assert wait_until(lambda: panel.events["ack"] == 1)
    pin(mock_factory, BUTTON).drive_high()
    assert not panel.state.emergency_active and not panel.state.call_active


def test_a_failing_callback_does_not_break_the_button(mock_factory, recorder, caplog):
    def broken():
        raise RuntimeError("widget touched from the wrong thread")

    with CallPanel(gpio(), on_call=broken, alert_bus=AlertBus([recorder])) as panel:
        pin(mock_factory, BUTTON).drive_low()
        pin(mock_factory, BUTTON).drive_high()
        assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call"]
    assert "callback failed" in caplog.text


def test_demo_key_drives_the_mock_button(make_panel, mock_factory):
    panel = make_panel(hold_time_s=0.05)
    panel.demo_key_down()
    assert wait_until(lambda: panel.events["ack"] == 1)  # held past hold_time_s
    panel.demo_key_up()
    assert panel.events["call"] == 1


def test_close_releases_the_pins(make_panel, mock_factory):
    panel = make_panel()
    panel.request_call()
    panel.close()
    # The pins are free again: a new panel can claim them.
    with CallPanel(gpio(), pin_factory=mock_factory) as again:
        assert again.health()["ok"]


# -- when the hardware is not there -------------------------------------------


def assert_unavailable_but_working(panel, recorder):
    health = panel.health()
    assert health["mode"] == "unavailable" and health["ok"] is False
    assert panel.request_call() is True
    assert panel.tick().call_led is True  # the state is kept, for the screen
    assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call"]
    assert panel.acknowledge() is True
    panel.close()


def test_unknown_pin_factory_leaves_a_working_panel(no_factory, monkeypatch, recorder, caplog):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    panel = CallPanel(gpio(), alert_bus=AlertBus([recorder]))
    assert "no-such-factory" in panel.health()["message"]
    assert caplog.text.count("call panel:") == 1
    assert_unavailable_but_working(panel, recorder)


def test_pin_in_use_leaves_a_working_panel(mock_factory, recorder):
    other = LED(BUZZER)  # something else holds the pin opened last
    try:
        panel = CallPanel(gpio(), alert_bus=AlertBus([recorder]))
        assert "in use" in panel.health()["message"]
        assert_unavailable_but_working(panel, recorder)
        # What it opened before the failure was released again.
        LED(BUTTON).close()
        LED(CALL_LED).close()
    finally:
        other.close()


def test_driver_error_from_the_factory_leaves_a_working_panel(recorder):
    class BusyFactory(MockFactory):
        def pin(self, name, pin_class=None, **kwargs):
            raise OSError("GPIO busy")

    factory = BusyFactory()
    try:
        panel = CallPanel(gpio(), pin_factory=factory, alert_bus=AlertBus([recorder]))
        assert "GPIO busy" in panel.health()["message"]
        assert_unavailable_but_working(panel, recorder)
    finally:
        factory.reset()


def test_disabled_gpio_is_healthy_and_on_screen_call_works(recorder):
    panel = CallPanel(gpio(enabled=False), alert_bus=AlertBus([recorder]))
    assert panel.health()["mode"] == "disabled" and panel.health()["ok"] is True
    assert panel.request_call() is True
    assert panel.flush_alerts()
    assert recorder.kinds == ["staff-call"]
    panel.close()


# -- clinic-kiosk gpio-test ---------------------------------------------------


def run_gpio_test(args, env, **gpio_changes):
    cfg = dataclasses.replace(Config(), gpio=gpio(**gpio_changes))
    return CliRunner().invoke(
        gpio_test_command, args, obj=types.SimpleNamespace(config=cfg), env=env
    )


def test_gpio_test_lights_each_output_and_sees_a_press(no_factory):
    done = threading.Event()

    def installer():
        # Once the command has switched the call LED on, every device is
        # open (the button first), so pressing cannot race its set-up. The
        # button stays down: the command may ask for the press after it.
        deadline = time.monotonic() + 10
        while not done.is_set() and time.monotonic() < deadline:
            factory = Device.pin_factory
            # dict() copies in one step, so the command may add pins meanwhile.
            pins = dict(factory.pins) if factory is not None else {}
            by_name = {info.name: p for info, p in pins.items()}
            led = by_name.get(f"GPIO{CALL_LED}")
            if led is not None and len(led.states) > 1:
                by_name[f"GPIO{BUTTON}"].drive_low()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=installer)
    thread.start()
    try:
        result = run_gpio_test(
            ["--on-time", "0.05", "--timeout", "10"],
            {"GPIOZERO_PIN_FACTORY": "mock"},
            hold_time_s=0.1,  # closing a button that is down waits out the hold time
        )
    finally:
        done.set()
        thread.join(5)
    assert result.exit_code == 0, result.output
    assert "Pin factory: mock" in result.output
    for line in (
        "call LED on BCM 27 (header pin 13)",
        "emergency LED on BCM 22 (header pin 15)",
        "buzzer on BCM 23 (header pin 16)",
        "press seen",
    ):
        assert line in result.output
    # Each output went on, then off again.
    factory = Device.pin_factory
    assert isinstance(factory, MockFactory)  # chosen through GPIOZERO_PIN_FACTORY
    for number in (CALL_LED, EMERGENCY_LED, BUZZER):
        assert [s.state for s in factory.pin(number).states] == [False, True, False]


def test_gpio_test_reports_no_press(no_factory):
    result = run_gpio_test(
        ["--on-time", "0", "--timeout", "0.05"], {"GPIOZERO_PIN_FACTORY": "mock"},
        emergency_led_pin=0, buzzer_pin=0,
    )
    assert result.exit_code == 1
    assert "no press of the call button on BCM 17 (header pin 11)" in result.output
    assert "emergencies use the call LED" in result.output


def test_gpio_test_without_hardware_exits_1_with_a_clear_message(no_factory):
    result = run_gpio_test(["--timeout", "0.05"], {"GPIOZERO_PIN_FACTORY": "no-such-factory"})
    assert result.exit_code == 1
    assert "could not open the GPIO pins" in result.output
    assert "GPIOZERO_PIN_FACTORY=mock" in result.output
    assert "Traceback" not in result.output
