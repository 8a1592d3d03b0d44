"""Staff mode, behind a PIN: kiosk status, dismiss an emergency screen,
acknowledge a call. Opened by a long press in the top-left corner."""

from __future__ import annotations


from kivy.properties import BooleanProperty, StringProperty

from .base import KioskScreen, load_kv


class StaffScreen(KioskScreen):
    offers_staff_call = False
    entered = StringProperty("")
    unlocked = BooleanProperty(False)
    message = StringProperty("")
    status_text = StringProperty("")

    def on_activate(self):
        self.entered = ""
        self.unlocked = False
        self.message = ""
        self.status_text = ""

    def press(self, key: str):
        if key == "back":
            self.entered = self.entered[:-1]
        elif key == "ok":
            self.check()
        elif len(self.entered) < 12:
            self.entered += key

    def check(self):
        app = self.app
        guard = app.pin_guard
        if not guard.configured:
            self.message = app.t("No staff PIN is set on this kiosk. Set one with clinic-kiosk set-pin.")
        elif guard.locked(app.now()):
            self.message = app.t("Too many wrong PINs. Please wait a few minutes.")
        elif guard.check(self.entered, app.now()):
            self.unlocked = True
            self.message = ""
            # the queue depth is read on the writer thread, never on this one
            app.session.run_in_background(app.runtime.store.depth, then=self.show_status)
        else:
            self.message = app.t("That PIN is not right.")
        self.entered = ""

    def show_status(self, depth: int) -> None:
        app = self.app
        panel = app.call_panel
        gpio = panel.health() if panel is not None else {"mode": "none", "ok": False, "message": "no GPIO panel"}
        self.status_text = "\n".join([
            f"Kiosk: {app.config_.kiosk.kiosk_id}",
            f"Content: {app.runtime.pack.content_version}",
            f"Records waiting to sync: {depth}",
            f"Call button: {gpio.get('mode')} ({'working' if gpio.get('ok') else gpio.get('message', '')})",
        ])

    def wipe(self):
        self.entered = ""
        self.unlocked = False


load_kv(__file__)
