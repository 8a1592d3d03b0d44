"""The window's settings, made before the window exists: kiosk hardening
(no escape key, no cursor, no signal handling by SDL) and the ``[display]``
section. Both the kiosk and the out-of-order app start with it."""

from __future__ import annotations

import os


def configure_kivy(fullscreen: bool, display=None) -> None:
    """Kiosk hardening and the ``[display]`` settings; must run before the
    window exists. ``display`` is a :class:`kiosk.config.DisplaySection`."""
    from kivy.config import Config

    from kiosk.config import DisplaySection

    display = display or DisplaySection()
    # SDL would turn SIGTERM into a window close, which a kiosk refuses;
    # the app handles SIGTERM itself (screens/lifecycle.py).
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "log_level", os.environ.get("KIOSK_KIVY_LOG", "warning"))
    # no red dots from right-click multitouch emulation
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("graphics", "width", str(display.width or 1280))
    Config.set("graphics", "height", str(display.height or 800))
    # "auto" takes the display's own resolution; "1" the one configured
    Config.set("graphics", "fullscreen", ("1" if display.width else "auto") if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    Config.set("graphics", "rotation", str(display.rotation))
    # No multisampling. Kivy asks for it by default (Mesa gives 4 samples a
    # pixel), and a software renderer (a Pi without its GPU driver, the
    # tests) then blends every pixel four times: half of each frame, most
    # of a question switch. What it smooths is the edge pixels of the
    # rounded shapes only (0.2 % of a question screen, measured); text is
    # antialiased in its own textures either way.
    Config.set("graphics", "multisamples", "0")
    if display.touch_adjusted:
        # Kivy's own reader of the Linux touch device, which can turn and
        # mirror what the panel reports (kivy.input.providers.hidinput).
        params = [f"param=rotation={display.touch_rotation}"]
        params += [f"param={axis}=1" for axis in ("invert_x", "invert_y") if getattr(display, f"touch_{axis}")]
        Config.set("input", "kiosk_touch", ",".join(["probesysfs", "provider=hidinput", *params]))
