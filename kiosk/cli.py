"""``clinic-kiosk``: the device's command line (see shared/contract.md).

Every command is declared here and nowhere else, in the same way: with
:func:`command`, which gives it ``--config FILE`` (default
``/etc/clinic-kiosk/kiosk.toml`` when it exists, else built-in defaults) and
``--data DIR`` after its name, as the group has them before it. A command's
body imports the module that does the work when it runs, so listing the
commands (``clinic-kiosk --help``) imports nothing but Click. ``run`` and
``replay`` need the Kivy front end; they load it by name
(:func:`front_end`), so the core never imports Kivy. A new command::

    @command("frobnicate")
    @click.pass_obj
    def frobnicate_command(obj):
        # its docstring is the command's help
        from .frob import frobnicate

        frobnicate(obj.config)

Problems are reported as ``path:location: message`` lines, never as a
traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

_CONFIG_HELP = "Configuration file (default /etc/clinic-kiosk/kiosk.toml when it exists)."
_DATA_HELP = "Folder for the database, keys and tokens."
#: ``--config`` and ``--data`` after a command's name: one pair of options,
#: shared by every command (a Click option holds no state of its own).
_AFTER_NAME_OPTIONS = (
    click.Option(["--config", "config_path"], type=click.Path(dir_okay=False), default=None, help=_CONFIG_HELP),
    click.Option(["--data", "data_dir"], type=click.Path(file_okay=False), default=None, help=_DATA_HELP),
)


def _load_config(config_path, data_dir):
    from . import config as config_mod

    try:
        cfg = config_mod.load(config_path)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(1)
    if data_dir:
        cfg = cfg.with_data_dir(data_dir)
    return cfg


def fail_lines(lines, code=1):
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


class CliState:
    """What every command shares: where the config is, loaded on first use
    (a command reads ``obj.config`` with ``@click.pass_obj``)."""

    def __init__(self, config_path, data_dir):
        self.config_path = config_path
        self.data_dir = data_dir
        self._config = None

    def override(self, config_path=None, data_dir=None) -> None:
        """``--config``/``--data`` given after the command name win over the
        ones given before it."""
        if config_path or data_dir:
            self.config_path = config_path or self.config_path
            self.data_dir = data_dir or self.data_dir
            self._config = None

    def try_config(self):
        """(config, problems): when the file cannot be used, the built-in
        defaults (with ``--data``) and its problems, for ``run``, which shows
        the out-of-order screen rather than exiting."""
        from . import config as config_mod

        try:
            cfg, problems = config_mod.load(self.config_path), []
        except config_mod.ConfigError as exc:
            cfg, problems = config_mod.Config(), exc.problems
        if self.data_dir:
            cfg = cfg.with_data_dir(self.data_dir)
        return cfg, problems

    @property
    def config(self):
        """The loaded :class:`kiosk.config.Config` (exits with the problems
        when the file cannot be used)."""
        if self._config is None:
            self._config = _load_config(self.config_path, self.data_dir)
        return self._config


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=_CONFIG_HELP)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None, help=_DATA_HELP)
@click.pass_context
def cli(ctx, config_path, data_dir):
    """The clinic intake kiosk."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config_path, data_dir)


def command(name: str, **attrs):
    """Declares a ``clinic-kiosk`` command: :meth:`cli.command` plus the
    ``--config`` and ``--data`` options after its name, applied to the shared
    :class:`CliState` before the body runs (so the body just reads
    ``obj.config``). A command invoked on its own with an ``obj`` that has a
    ``config`` (the tests' ``CliRunner().invoke(cmd, obj=...)``) uses that."""

    def decorate(fn):
        @functools.wraps(fn)
        def callback(*args, config_path=None, data_dir=None, **kwargs):
            state = click.get_current_context().find_object(CliState)
            if state is not None:
                state.override(config_path, data_dir)
            return fn(*args, **kwargs)

        cmd = cli.command(name, **attrs)(callback)
        cmd.params.extend(_AFTER_NAME_OPTIONS)
        return cmd

    return decorate


def front_end(module: str):
    """``screens.<module>``, the Kivy front end, imported by name when a
    command needs it: the core (``kiosk/``) never imports the screens, so
    only ``run`` and ``replay`` load Kivy."""
    import importlib

    return importlib.import_module(f"screens.{module}")


def pack_or_exit(cfg):
    from .content import load_current_pack
    from .questionnaire import PackError

    try:
        return load_current_pack(cfg)
    except PackError as exc:
        fail_lines(exc.problems)


def visit_or_exit(cfg, visit_file):
    """The pack and the checked visit file; exit 2 naming the linkId when a
    required answer is missing, warnings for answers the pack does not ask."""
    from .visit import VisitFileError, read_visit_file

    pack = pack_or_exit(cfg)
    try:
        vf = read_visit_file(visit_file, pack)
    except VisitFileError as exc:
        fail_lines([str(exc)], code=2)
    for w in vf.warnings:
        click.echo(f"warning: {w}", err=True)
    return pack, vf


# -- the commands (alphabetical, as --help lists them) ------------------------


@command("enroll")
@click.argument("url")
@click.argument("code")
@click.pass_obj
def enroll_command(obj, url, code):
    """Pairs the kiosk with a hub using a one-time code from `clinic-hub enroll-code`."""
    import json

    from .enroll import EnrollError, enroll

    try:
        info = enroll(obj.config, url, code)
    except EnrollError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(info, indent=2))


@command("export")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The clinic's private key file (clinic.key from the hub).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File for the JSON lines (default: standard output).")
@click.pass_obj
def export_command(obj, key_file, out):
    """Recovers every record still on the device as JSON lines, with the
    clinic's private key (e.g. when the hub is gone for good)."""
    import json

    from .crypto import KeyFileError, read_key_file
    from .store import Store
    from .sync import recover_records

    config = obj.config
    try:
        private_key = read_key_file(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    db_path = config.database_path
    if not Path(db_path).exists():
        raise click.ClickException(f"{db_path}: no kiosk database here")
    store = Store.open(db_path)
    failed = 0
    count = 0
    fh = None
    try:
        if out is not None:
            # Plain patient data: readable by the owner only.
            out.touch(mode=0o600, exist_ok=True)
            out.chmod(0o600)
            fh = out.open("w", encoding="utf-8")
        target = fh or sys.stdout
        for row, payload in recover_records(store, private_key):
            if payload is None:
                failed += 1
                click.echo(f"{db_path}:record {row['id']}: does not open with this key", err=True)
                continue
            line = {
                "id": row["id"],
                "kind": row["kind"],
                "created_at": row["created_at"],
                "acked_at": row["acked_at"],
                "payload": payload,
            }
            target.write(json.dumps(line, sort_keys=True) + "\n")
            count += 1
    finally:
        if fh is not None:
            fh.close()
        store.close()
    click.echo(f"{count} record(s) recovered", err=True)
    if failed:
        sys.exit(1)


@command("gpio-test")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for the call button to be pressed.")
@click.option("--on-time", type=click.FloatRange(min=0), default=1.5, show_default=True,
              help="Seconds each light (and the buzzer) stays on.")
@click.pass_obj
def gpio_test_command(obj, timeout, on_time):
    """Checks the wiring of the call button, lights and buzzer.

    Switches each output on in turn, saying which pin it is on, then waits
    for a press of the call button. Exits 0 when the button was seen, 1 when
    the pins cannot be opened or no press came in time. Stop the kiosk first
    (the pins can only be held by one program).
    """
    from .hardware import wiring_test

    if not wiring_test(obj.config.gpio, timeout=timeout, on_time=on_time, say=click.echo):
        sys.exit(1)


@command("replay")
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.option("--screenshots", type=click.Path(file_okay=False), default=None,
              help="Save a PNG of every screen into this folder.")
@click.pass_obj
def replay_command(obj, visit_file, screenshots):
    """Taps through VISIT_FILE in the real UI, submits it, prints the result."""
    import json

    cfg = obj.config
    pack, vf = visit_or_exit(cfg, visit_file)
    from .crypto import NotEnrolled, SealedBoxSealer, generate_keypair
    from .runtime import Runtime

    try:
        runtime = Runtime.create(cfg, pack=pack)
    except NotEnrolled:
        # A self-test before enrollment still runs the whole UI and a durable
        # commit, sealed to a key nobody keeps: nothing readable is left.
        click.echo("warning: this kiosk is not enrolled with a hub; the replayed visit is sealed "
                   "to a throwaway key and cannot be read back", err=True)
        runtime = Runtime.create(cfg, sealer=SealedBoxSealer(generate_keypair()[1]), pack=pack)
    try:
        out = front_end("replay").replay_visit(cfg, vf, screenshots=screenshots, runtime=runtime)
    except RuntimeError as exc:
        fail_lines([f"{visit_file}: replay failed: {exc}"], code=1)
    finally:
        runtime.close()
    click.echo(json.dumps(out))


@command("run")
@click.option("--windowed", is_flag=True, help="Run in a window instead of full screen.")
@click.pass_obj
def run_command(obj, windowed):
    """The full-screen kiosk.

    A broken config (one without a staff PIN included), content pack or
    media manifest, a data folder that cannot be written, or a kiosk not yet
    paired with a hub shows the "out of order, staff have been told" screen
    instead: the problem is logged as one line per problem and the process
    keeps running (and feeding systemd's watchdog) rather than crash-looping.
    """
    from .crypto import NotEnrolled
    from .runtime import Runtime, startup_problems

    cfg, problems = obj.try_config()
    runtime = None
    if not problems:
        pack, catalogue, problems = startup_problems(cfg)
    if not problems:
        try:
            runtime = Runtime.create(cfg, pack=pack, catalogue=catalogue)
        except NotEnrolled as exc:
            # Not paired yet: nothing could be sealed, so no patient may start.
            problems = [f"{cfg.source}: {exc}"]
    if problems:
        front_end("outoforder").run_out_of_order(problems, languages=cfg.clinic.languages,
                                                 windowed=windowed or not cfg.kiosk.fullscreen,
                                                 display=cfg.display)
        return
    front_end("app").run_kiosk(runtime, windowed=windowed)


@command("score")
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.pass_obj
def score_command(obj, visit_file):
    """Runs the content pack's rules on VISIT_FILE; prints the result JSON."""
    import json

    pack, vf = visit_or_exit(obj.config, visit_file)
    from .visit import score_visit_file

    click.echo(json.dumps(score_visit_file(vf, pack).as_json()))


@command("set-pin")
def set_pin_command():
    """Reads a new staff PIN from standard input and prints the line to put
    in the config file (the PIN itself is never stored, only its hash)."""
    from .staff import hash_pin

    pin = sys.stdin.readline().strip()
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        fail_lines(["<stdin>:1: the PIN must be 4 to 12 digits"])
    click.echo(f'staff_pin_hash = "{hash_pin(pin)}"')


@command("status")
@click.pass_obj
def status_command(obj):
    """Prints the kiosk's health as JSON."""
    import json

    from .status import collect

    click.echo(json.dumps(collect(obj.config), indent=2))


@command("sync")
@click.option("--once", is_flag=True, help="Drain the outbox and exit: 0 when empty, 1 when the hub could not be reached.")
@click.pass_obj
def sync_command(obj, once):
    """Runs the sync worker in the foreground."""
    import dataclasses
    import json
    import signal

    from .crypto import NotEnrolled
    from .sync import SyncWorker

    worker = SyncWorker(obj.config)
    if once:
        try:
            result = worker.drain()
        except NotEnrolled as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        finally:
            worker.close()
        click.echo(json.dumps(dataclasses.asdict(result)))
        if result.certificate_changed:
            click.echo(f"error: {result.error}; {result.remaining} record(s) waiting", err=True)
            sys.exit(1)
        if not result.reachable:
            click.echo(f"hub could not be reached: {result.error}; {result.remaining} record(s) waiting", err=True)
            sys.exit(1)
        if result.remaining:
            click.echo(f"warning: {result.remaining} record(s) still waiting", err=True)
        if result.rejected or result.set_aside:
            click.echo(f"warning: {result.rejected + result.set_aside} record(s) set aside this time; "
                       "they stay on the device (see `clinic-kiosk status`)", err=True)
        sys.exit(0 if result.remaining == 0 else 1)

    def _stop(signum, frame):
        worker.stop(timeout=0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()


@command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.pass_obj
def validate_command(obj, paths):
    """Checks config files, content packs and media manifests.

    With no PATH, checks the configured config, content pack and media.
    Exit 0 when everything is valid; otherwise one line per problem.
    """
    from .validate import validate_paths

    problems, warnings = validate_paths(list(paths), obj.config_path)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    for p in problems:
        click.echo(p)
    sys.exit(1 if problems else 0)


def main():
    os.umask(0o077)  # everything the kiosk writes is for the kiosk user only
    cli(prog_name="clinic-kiosk")


if __name__ == "__main__":
    main()
