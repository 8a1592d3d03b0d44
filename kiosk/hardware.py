"""The staff call button and alert lights, behind gpiozero.

A patient who needs help presses a big button on the kiosk (or the on-screen
one); staff see a light, and hear a buzzer if nobody has come after a while.
Staff acknowledge by holding the same button for ``hold_time_s`` (or from the
screen), which clears the lights.

Two layers, so the rules can be tested without a clock or a Pi:

* :class:`CallController` and :func:`outputs` are pure: every method takes
  ``now`` (monotonic seconds) and nothing reads a clock, a pin or a thread.
* :class:`CallPanel` owns the gpiozero devices, feeds button events into the
  controller under a lock, and applies :func:`outputs` to the LEDs and buzzer
  whenever :meth:`CallPanel.tick` is called.

The pin factory is gpiozero's own business: ``GPIOZERO_PIN_FACTORY`` (``lgpio``
on a Pi 5, ``mock`` for the demo and tests) or an injected ``pin_factory``.
When the pins cannot be opened the panel keeps working without lights, so
the on-screen button still calls staff::

    >>> from kiosk.config import GpioSection
    >>> from gpiozero.pins.mock import MockFactory
    >>> panel = CallPanel(GpioSection(), pin_factory=MockFactory())
    >>> panel.request_call()
    True
    >>> panel.tick().call_led
    True
    >>> panel.close()
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, NamedTuple

from gpiozero import LED, Button, Buzzer
from gpiozero.exc import GPIODeviceClosed, GPIOPinInUse, GPIOZeroError
from gpiozero.pins.mock import MockPin

from .alerts import Alert, AlertBus
from .config import GpioSection

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Light and buzzer patterns
#
# A pattern is a tuple of durations in seconds, alternating on, off, on, off...
# starting "on" at the moment the state began, so a press lights the LED at
# once. ``None`` means steady on.

#: Call received, help is on the way: steady, calm for the patient.
CALL_PATTERN = None
#: Call not acknowledged after ``escalate_after_s``: fast even blink (2 Hz).
ESCALATED_PATTERN = (0.25, 0.25)
#: Emergency from triage: a double flash, which reads differently from both
#: of the above even on a single shared LED.
EMERGENCY_PATTERN = (0.15, 0.15, 0.15, 0.75)
#: Buzzer when a call is escalated: one short beep a second, with the LED.
ESCALATED_BEEP = (0.25, 0.75)
#: Buzzer when an emergency is escalated: double beep, with the LED.
EMERGENCY_BEEP = EMERGENCY_PATTERN


def pattern_on(pattern: tuple[float, ...] | None, elapsed: float) -> bool:
    """Whether ``pattern`` is in an "on" phase ``elapsed`` seconds after it
    started.

    >>> pattern_on((0.25, 0.25), 0.1), pattern_on((0.25, 0.25), 0.3)
    (True, False)
    >>> pattern_on(None, 42.0)
    True
    """
    if pattern is None:
        return True
    if elapsed < 0:
        return False
    t = elapsed % sum(pattern)
    for index, duration in enumerate(pattern):
        if t < duration:
            return index % 2 == 0
        t -= duration
    return False  # only reached through float rounding at the period's end


# --------------------------------------------------------------------------
# The pure state machine


@dataclass(frozen=True)
class CallTiming:
    """The times the call rules depend on, taken from ``[gpio]``.

    ``repeat_window_s`` is how long after an acknowledgement (or after the
    acknowledging press is released) a press is taken as contact bounce or
    the same hand still pressing, not as a new call.
    """

    bounce_s: float = 0.05
    hold_s: float = 3.0
    escalate_after_s: float = 120.0
    repeat_window_s: float = 1.0

    @classmethod
    def from_config(cls, gpio: GpioSection) -> "CallTiming":
        return cls(
            bounce_s=gpio.bounce_time_s,
            hold_s=gpio.hold_time_s,
            escalate_after_s=gpio.escalate_after_s,
        )

    @property
    def quiet_s(self) -> float:
        return max(self.bounce_s, self.repeat_window_s)


@dataclass(frozen=True)
class CallState:
    """What the kiosk is signalling, as of some instant. Immutable: the
    controller replaces it on every change, so a snapshot handed to another
    thread never changes under it."""

    #: When the current staff call started, or None.
    call_since: float | None = None
    #: When the current emergency started, or None.
    emergency_since: float | None = None
    #: The button is still down from the press that acknowledged by holding;
    #: its release (and the bounce that comes with it) is not a new call.
    ack_press_down: bool = False
    #: Presses before this instant do not start a call (bounce, repeats).
    quiet_until: float = float("-inf")

    @property
    def call_active(self) -> bool:
        return self.call_since is not None

    @property
    def emergency_active(self) -> bool:
        return self.emergency_since is not None


class Outputs(NamedTuple):
    """What the lights and buzzer should be doing at one instant."""

    call_led: bool = False
    emergency_led: bool = False
    buzzer: bool = False


def outputs(
    state: CallState,
    now: float,
    *,
    escalate_after_s: float = 120.0,
    shared_led: bool = False,
) -> Outputs:
    """The light pattern at ``now``, as a pure function of the state.

    * staff call: call LED steady on; after ``escalate_after_s`` without an
      acknowledgement, fast blink and a beep a second on the buzzer;
    * emergency: double flash on the emergency LED (or, with ``shared_led``,
      on the call LED, where it takes precedence over the call pattern);
      after ``escalate_after_s``, a double beep.

    >>> s = CallState(call_since=10.0)
    >>> outputs(s, 11.0, escalate_after_s=60)
    Outputs(call_led=True, emergency_led=False, buzzer=False)
    >>> outputs(s, 70.1, escalate_after_s=60)
    Outputs(call_led=True, emergency_led=False, buzzer=True)
    """
    call_led = emergency_led = buzzer = False
    if state.call_since is not None:
        elapsed = now - state.call_since
        if elapsed >= escalate_after_s:
            # The pattern restarts at escalation so the change is visible at once.
            call_led = pattern_on(ESCALATED_PATTERN, elapsed - escalate_after_s)
            buzzer = pattern_on(ESCALATED_BEEP, elapsed - escalate_after_s)
        else:
            call_led = pattern_on(CALL_PATTERN, elapsed)
    if state.emergency_since is not None:
        elapsed = now - state.emergency_since
        flash = pattern_on(EMERGENCY_PATTERN, elapsed)
        if shared_led:
            call_led = flash
        else:
            emergency_led = flash
        if elapsed >= escalate_after_s:
            buzzer = pattern_on(EMERGENCY_BEEP, elapsed - escalate_after_s)
    return Outputs(call_led, emergency_led, buzzer)


class CallController:
    """The rules of the call button, with the time passed in.

    >>> c = CallController(CallTiming(escalate_after_s=60))
    >>> c.press(0.0)            # a patient presses: a new call
    True
    >>> c.press(0.5)            # pressing again does not call twice
    False
    >>> c.hold(3.0)             # staff hold the button: acknowledged
    True
    >>> c.release(3.2); c.press(3.21)   # contact bounce on release
    False
    >>> c.press(10.0)           # a later press is a new call
    True

    Not thread-safe: :class:`CallPanel` serialises access with a lock.
    """

    def __init__(self, timing: CallTiming | None = None, state: CallState | None = None):
        self.timing = timing or CallTiming()
        self.state = state or CallState()

    def press(self, now: float, *, physical: bool = True) -> bool:
        """A press of the button (``physical``) or of the on-screen button.
        Returns True when it started a new staff call."""
        s = self.state
        if s.call_active or now < s.quiet_until:
            return False
        if physical and s.ack_press_down:
            return False
        self.state = dataclasses.replace(s, call_since=now)
        return True

    def release(self, now: float) -> None:
        """The physical button went up."""
        s = self.state
        if s.ack_press_down:
            # The staff member's hand leaves the button: bounce follows.
            quiet = now + self.timing.quiet_s
        else:
            quiet = now + self.timing.bounce_s
        self.state = dataclasses.replace(
            s, ack_press_down=False, quiet_until=max(s.quiet_until, quiet)
        )

    def hold(self, now: float) -> bool:
        """The button has been held for ``hold_time_s``: staff are here.
        Acknowledges the call and any emergency; returns True if there was
        something to acknowledge."""
        if not self.acknowledge(now):
            return False
        self.state = dataclasses.replace(self.state, ack_press_down=True)
        return True

    def acknowledge(self, now: float) -> bool:
        """Staff acknowledged (by holding the button or on screen): clears the
        call and any emergency. Returns True if anything was active."""
        s = self.state
        if not (s.call_active or s.emergency_active):
            return False
        self.state = dataclasses.replace(
            s,
            call_since=None,
            emergency_since=None,
            quiet_until=max(s.quiet_until, now + self.timing.quiet_s),
        )
        return True

    def emergency(self, now: float) -> bool:
        """Triage found an emergency. Returns True if it was not already on."""
        if self.state.emergency_active:
            return False
        self.state = dataclasses.replace(self.state, emergency_since=now)
        return True

    def clear_emergency(self, now: float) -> bool:
        """The emergency is over. Returns True if one was on."""
        if not self.state.emergency_active:
            return False
        self.state = dataclasses.replace(self.state, emergency_since=None)
        return True

    def outputs(self, now: float, *, shared_led: bool = False) -> Outputs:
        return outputs(
            self.state, now, escalate_after_s=self.timing.escalate_after_s, shared_led=shared_led
        )


# --------------------------------------------------------------------------
# The devices

#: BCM GPIO number -> physical pin on the 40-pin header (all 40-pin Pis).
HEADER_PIN = MappingProxyType({
    2: 3, 3: 5, 4: 7, 17: 11, 27: 13, 22: 15, 10: 19, 9: 21, 11: 23, 0: 27,
    5: 29, 6: 31, 13: 33, 19: 35, 26: 37, 14: 8, 15: 10, 18: 12, 23: 16,
    24: 18, 25: 22, 8: 24, 7: 26, 1: 28, 12: 32, 16: 36, 20: 38, 21: 40,
})  # fmt: skip


def describe_pin(bcm: int) -> str:
    """``"BCM 17 (header pin 11)"``: both numbers, as installers need both."""
    return f"BCM {bcm} (header pin {HEADER_PIN.get(bcm, '?')})"


def hardware_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "no usable GPIO here".

    gpiozero's own (BadPinFactory, GPIOPinInUse, PinInvalidPin,
    PinUnknownPi...), plus what the driver libraries raise through it without
    wrapping: ImportError for a missing library, OSError for a missing or
    forbidden /dev/gpiochip, RuntimeError from RPi.GPIO off a Pi, and
    ``lgpio.error`` ("GPIO busy") when another process holds a pin.
    """
    errors: tuple[type[BaseException], ...] = (GPIOZeroError, ImportError, OSError, RuntimeError)
    try:
        import lgpio
    except ImportError:
        return errors
    return errors + (lgpio.error,)


class _Devices(NamedTuple):
    button: Button
    call_led: LED
    emergency_led: LED | None
    buzzer: Buzzer | None

    def outputs(self) -> list[tuple[str, int, LED | Buzzer]]:
        found = [("call LED", self.call_led.pin.info.name, self.call_led)]
        if self.emergency_led is not None:
            found.append(("emergency LED", self.emergency_led.pin.info.name, self.emergency_led))
        if self.buzzer is not None:
            found.append(("buzzer", self.buzzer.pin.info.name, self.buzzer))
        return found

    def close(self) -> None:
        for device in (self.buzzer, self.emergency_led, self.call_led, self.button):
            if device is not None:
                device.close()


def _open_devices(gpio: GpioSection, pin_factory=None) -> _Devices:
    """Opens the button and outputs; on any failure closes what was opened
    (so the pins are free for a retry) and re-raises."""
    opened = []

    def keep(device):
        opened.append(device)
        return device

    try:
        button = keep(
            Button(
                gpio.call_button_pin,
                pull_up=gpio.pull_up,
                bounce_time=gpio.bounce_time_s or None,
                hold_time=gpio.hold_time_s,
                pin_factory=pin_factory,
            )
        )
        call_led = keep(LED(gpio.call_led_pin, pin_factory=pin_factory))
        emergency_led = (
            keep(LED(gpio.emergency_led_pin, pin_factory=pin_factory))
            if gpio.emergency_led_pin
            else None
        )
        buzzer = keep(Buzzer(gpio.buzzer_pin, pin_factory=pin_factory)) if gpio.buzzer_pin else None
    except BaseException:
        for device in reversed(opened):
            device.close()
        raise
    return _Devices(button, call_led, emergency_led, buzzer)


def _open_with_diagnostics(gpio: GpioSection, pin_factory=None) -> tuple[_Devices, list[str]]:
    """:func:`_open_devices`, collecting gpiozero's fallback warnings
    ("Falling back from lgpio: No module named 'lgpio'") so a failure can
    say what was tried. Raises one of :func:`hardware_errors` with those
    notes attached as ``exc.gpio_notes``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            devices = _open_devices(gpio, pin_factory)
        except hardware_errors() as exc:
            exc.gpio_notes = [str(w.message) for w in caught]
            raise
    return devices, [str(w.message) for w in caught]


def _failure_message(exc: BaseException, gpio: GpioSection) -> str:
    text = str(exc) or type(exc).__name__
    notes = getattr(exc, "gpio_notes", [])
    if notes:
        text += " (" + "; ".join(notes) + ")"
    if isinstance(exc, ImportError):  # BadPinFactory is one too
        text += (
            ". Set GPIOZERO_PIN_FACTORY (lgpio on a Raspberry Pi, after"
            " `sudo apt install python3-lgpio`; see deploy/wiring.md)"
        )
    elif isinstance(exc, GPIOPinInUse) or "busy" in text.lower():
        text += (
            ". Another device or program holds one of the pins"
            " (is the kiosk already running? check the [gpio] pins are all different)"
        )
    return text


def _factory_name(factory) -> str:
    """``"lgpio"``, ``"mock"``, ``"rpigpio"``... from the factory's class."""
    return type(factory).__name__.removesuffix("Factory").lower()


class _AlertSender:
    """Sends staff alerts on one background thread, in order, so neither the
    GPIO thread nor the UI thread waits on a database write or the network."""

    def __init__(self, bus: AlertBus, kiosk_id: str):
        self.bus = bus
        self.kiosk_id = kiosk_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staff-alerts")

    def send(self, kind: str) -> None:
        # Kind and kiosk only: a call from the waiting room carries no patient data.
        alert = Alert(kind=kind, kiosk_id=self.kiosk_id)
        try:
            self._pool.submit(self.bus.send, alert)
        except RuntimeError:  # after close(): send inline rather than lose it
            self.bus.send(alert)

    def flush(self, timeout: float) -> bool:
        try:
            return self._pool.submit(lambda: None).result(timeout) is None
        except (TimeoutError, RuntimeError):
            return False

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._pool.shutdown(wait=False)


class CallPanel:
    """The call button, the call and emergency lights and the buzzer.

    Connect the button between a GPIO pin and ground (see
    ``deploy/wiring.md``); a press calls staff, a long press by staff
    acknowledges::

        panel = CallPanel(
            config.gpio,
            on_call=lambda: Clock.schedule_once(show_help_coming),
            on_ack=lambda: Clock.schedule_once(show_staff_here),
            alert_bus=bus, kiosk_id=config.kiosk.kiosk_id,
        )
        Clock.schedule_interval(lambda dt: panel.tick(), 0.1)

    ``on_call`` runs once per new call and ``on_ack`` once per
    acknowledgement, whichever way they happened. They run on the thread
    that caused them: gpiozero's thread for the physical button, the
    caller's thread for :meth:`request_call` and :meth:`acknowledge`. They
    must not touch widgets; hand over with ``Clock.schedule_once``, which is
    safe from any thread.

    With ``alert_bus``, a new call sends ``Alert(kind="staff-call")`` and an
    acknowledgement ``Alert(kind="acknowledged")``, from a background thread.

    If the pins cannot be opened (no GPIO, missing driver, a pin in use), the
    panel logs one warning and runs in ``"unavailable"`` mode: no lights, but
    :meth:`request_call` and the alerts still work. It never raises from the
    constructor.

    :param gpio_config: the ``[gpio]`` section (:class:`~kiosk.config.GpioSection`).
    :param pin_factory: a gpiozero pin factory; None uses gpiozero's default
        (``GPIOZERO_PIN_FACTORY``).
    :param now: the monotonic clock; tests pass a controllable one.
    """

    def __init__(
        self,
        gpio_config: GpioSection,
        *,
        pin_factory=None,
        on_call: Callable[[], object] | None = None,
        on_ack: Callable[[], object] | None = None,
        alert_bus: AlertBus | None = None,
        kiosk_id: str = "kiosk-1",
        now: Callable[[], float] = time.monotonic,
    ):
        self.config = gpio_config
        self._on_call = on_call
        self._on_ack = on_ack
        self._now = now
        self._shared_led = gpio_config.emergency_led_pin == 0
        self._controller = CallController(CallTiming.from_config(gpio_config))
        self._lock = threading.Lock()
        self._alerts = _AlertSender(alert_bus, kiosk_id) if alert_bus is not None else None
        self._devices: _Devices | None = None
        self._written: Outputs | None = None
        self._closed = False

        if not gpio_config.enabled:
            self._mode, self._ok = "disabled", True
            self._message = "GPIO is switched off ([gpio] enabled = false); the on-screen button still works"
            return
        try:
            devices, notes = _open_with_diagnostics(gpio_config, pin_factory)
        except hardware_errors() as exc:
            self._go_unavailable(f"could not open the GPIO pins: {_failure_message(exc, gpio_config)}")
            return
        for note in notes:
            log.info("gpiozero: %s", note)
        self._devices = devices
        devices.button.when_pressed = self._pressed
        devices.button.when_released = self._released
        devices.button.when_held = self._held
        self._mode, self._ok = _factory_name(devices.button.pin_factory), True
        parts = [f"call button on {describe_pin(gpio_config.call_button_pin)}"]
        parts += [f"{label} on {describe_pin(_bcm(name))}" for label, name, _ in devices.outputs()]
        self._message = ", ".join(parts)
        if self._shared_led:
            self._message += " (emergency shares the call LED)"
        with self._lock:
            self._apply_locked(self._now())

    # -- state ----------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"lgpio"``, ``"mock"``... (the pin factory), ``"disabled"`` or
        ``"unavailable"``."""
        return self._mode

    @property
    def state(self) -> CallState:
        """A snapshot of the call state (immutable, safe to keep)."""
        return self._controller.state

    def health(self) -> dict:
        """For ``clinic-kiosk status``: ``{"mode", "ok", "message",
        "call_active", "emergency"}``."""
        s = self._controller.state
        return {
            "mode": self._mode,
            "ok": self._ok,
            "message": self._message,
            "call_active": s.call_active,
            "emergency": s.emergency_active,
        }

    # -- what the UI calls -------------------------------------------------

    def request_call(self) -> bool:
        """The on-screen call button: same rules as a press of the physical
        button. Returns True if it started a new call."""
        now = self._now()
        with self._lock:
            new = self._controller.press(now, physical=False)
            self._apply_locked(now)
        if new:
            self._announce("staff-call", self._on_call)
        return new

    def acknowledge(self) -> bool:
        """Staff acknowledged on screen. Returns True if anything was active."""
        now = self._now()
        with self._lock:
            acked = self._controller.acknowledge(now)
            self._apply_locked(now)
        if acked:
            self._announce("acknowledged", self._on_ack)
        return acked

    def set_emergency(self, active: bool) -> None:
        """Triage found an emergency (True) or it is over (False). Only the
        lights: the triage code sends its own emergency alert with the
        intake id."""
        now = self._now()
        with self._lock:
            if active:
                self._controller.emergency(now)
            else:
                self._controller.clear_emergency(now)
            self._apply_locked(now)

    def tick(self, now: float | None = None) -> Outputs:
        """Applies the light pattern for ``now`` to the devices and returns it
        (the UI can mirror it on screen). Call it about ten times a second."""
        if now is None:
            now = self._now()
        with self._lock:
            return self._apply_locked(now)

    def demo_key_down(self) -> None:
        """The demo keyboard key went down. With mock GPIO it drives the
        button's pin, so holding the key acknowledges exactly like holding the
        button; otherwise it is the on-screen call button."""
        pin = self._mock_pin()
        if pin is not None:
            pin.drive_low() if self.config.pull_up else pin.drive_high()
        else:
            self.request_call()

    def demo_key_up(self) -> None:
        """The demo keyboard key went up."""
        pin = self._mock_pin()
        if pin is not None:
            pin.drive_high() if self.config.pull_up else pin.drive_low()

    def flush_alerts(self, timeout: float = 5.0) -> bool:
        """Waits until the alerts sent so far have gone through the bus."""
        return self._alerts.flush(timeout) if self._alerts is not None else True

    def close(self) -> None:
        """Switches the outputs off and releases the pins."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            devices, self._devices = self._devices, None
        if devices is not None:
            # Detach first: gpiozero fires when_held while closing a button
            # that is still down, which must not acknowledge anything.
            devices.button.when_pressed = None
            devices.button.when_released = None
            devices.button.when_held = None
            try:
                for _, _, device in devices.outputs():
                    device.off()
            except hardware_errors():
                pass  # closing anyway; the pins reset on release
            devices.close()
        if self._alerts is not None:
            self._alerts.close()

    def __enter__(self) -> "CallPanel":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- gpiozero callbacks (gpiozero's thread) ----------------------------

    def _pressed(self) -> None:
        if self._closed:
            return
        now = self._now()
        with self._lock:
            new = self._controller.press(now)
            self._apply_locked(now)
        if new:
            self._announce("staff-call", self._on_call)

    def _released(self) -> None:
        if self._closed:
            return
        now = self._now()
        with self._lock:
            self._controller.release(now)

    def _held(self) -> None:
        if self._closed:
            return
        now = self._now()
        with self._lock:
            acked = self._controller.hold(now)
            self._apply_locked(now)
        if acked:
            self._announce("acknowledged", self._on_ack)

    # -- internals -------------------------------------------------------

    def _announce(self, kind: str, callback: Callable[[], object] | None) -> None:
        if self._alerts is not None:
            self._alerts.send(kind)
        if callback is not None:
            try:
                callback()
            except Exception:  # a broken UI hook must not kill gpiozero's thread
                log.exception("call panel %s callback failed", kind)

    def _apply_locked(self, now: float) -> Outputs:
        wanted = self._controller.outputs(now, shared_led=self._shared_led)
        devices = self._devices
        if devices is None or wanted == self._written or not self._ok:
            return wanted
        try:
            devices.call_led.value = wanted.call_led
            if devices.emergency_led is not None:
                devices.emergency_led.value = wanted.emergency_led
            if devices.buzzer is not None:
                devices.buzzer.value = wanted.buzzer
        except (GPIODeviceClosed, *hardware_errors()) as exc:
            # Keep the devices for close(): closing here could be on the
            # button's own thread, which cannot join itself.
            self._go_unavailable(f"lost the GPIO outputs: {exc}")
            return wanted
        self._written = wanted
        return wanted

    def _go_unavailable(self, message: str) -> None:
        self._mode, self._ok = "unavailable", False
        self._message = message + "; the on-screen call button still works, without lights"
        log.warning("call panel: %s", self._message)

    def _mock_pin(self) -> MockPin | None:
        devices = self._devices
        if devices is None or not isinstance(devices.button.pin, MockPin):
            return None
        return devices.button.pin


def _bcm(pin_name: str) -> int:
    """``"GPIO27"`` -> 27."""
    return int(pin_name.removeprefix("GPIO"))


# --------------------------------------------------------------------------
# The installer's check: `clinic-kiosk gpio-test`


def wiring_test(gpio: GpioSection, *, timeout: float, on_time: float, say: Callable[..., None]) -> bool:
    """The installer's check behind ``clinic-kiosk gpio-test``: switches each
    output on for ``on_time`` seconds in turn, saying which pin it is on,
    then waits up to ``timeout`` seconds for a press of the call button.
    True when the press was seen; False when the pins cannot be opened or no
    press came in time. ``say(text, err=False)`` prints (``click.echo``).
    """
    if not gpio.enabled:
        say("Note: [gpio] enabled = false in the configuration; testing the pins anyway.")
    try:
        devices, _ = _open_with_diagnostics(gpio)
    except hardware_errors() as exc:
        say(f"GPIO test failed: could not open the GPIO pins: {_failure_message(exc, gpio)}", err=True)
        say(
            "Check: on a Raspberry Pi 5 run `sudo apt install python3-lgpio` and set"
            " GPIOZERO_PIN_FACTORY=lgpio; the user must be in the `gpio` group."
            " To try this without hardware, set GPIOZERO_PIN_FACTORY=mock.",
            err=True,
        )
        return False
    try:
        say(f"Pin factory: {_factory_name(devices.button.pin_factory)}")
        for label, name, device in devices.outputs():
            say(f"{label} on {describe_pin(_bcm(name))}: on for {on_time:g} s")
            device.on()
            time.sleep(on_time)
            device.off()
        if gpio.emergency_led_pin == 0:
            say("emergency LED: none ([gpio] emergency_led_pin = 0), emergencies use the call LED")
        if gpio.buzzer_pin == 0:
            say("buzzer: none ([gpio] buzzer_pin = 0)")
        where = describe_pin(gpio.call_button_pin)
        say(f"Press the call button on {where} within {timeout:g} s...")
        if devices.button.wait_for_press(timeout):
            say(f"Call button on {where}: press seen. Wiring OK.")
            return True
        say(
            f"GPIO test failed: no press of the call button on {where} within {timeout:g} s."
            f" Check it is wired between header pin {HEADER_PIN.get(gpio.call_button_pin, '?')}"
            " and a ground pin (e.g. header pin 9 or 14).",
            err=True,
        )
        return False
    finally:
        devices.close()
