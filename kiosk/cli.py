"""``clinic-kiosk``: the device's command line (see shared/contract.md).

Every command takes ``--config FILE`` (default ``/etc/clinic-kiosk/kiosk.toml``
when it exists, else built-in defaults) and ``--data DIR``, which overrides
where the database, keys and tokens live. Problems are reported as
``path:location: message`` lines, never as a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import click

#: Commands that live in other modules, imported only when they run, with the
#: one-line help ``clinic-kiosk --help`` shows for them (so listing the
#: commands imports none of them).
LAZY_COMMANDS = {
    # The two that need the Kivy front end live in it: kiosk/ never imports it.
    "run": ("screens.commands:run_command", "The full-screen kiosk."),
    "replay": ("screens.commands:replay_command", "Taps through a visit file in the real UI and prints the result."),
    "enroll": ("kiosk.sync:enroll_command", "Pairs the kiosk with a hub using a one-time code."),
    "sync": ("kiosk.sync:sync_command", "Runs the sync worker in the foreground."),
    "export": ("kiosk.sync:export_command", "Recovers the kiosk's records with the clinic's private key."),
    "gpio-test": ("kiosk.hardware:gpio_test_command", "Checks the wiring of the call button, lights and buzzer."),
}

_CONFIG_HELP = "Configuration file (default /etc/clinic-kiosk/kiosk.toml when it exists)."
_DATA_HELP = "Folder for the database, keys and tokens."


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
    (commands of other modules read ``click.get_current_context().obj.config``)."""

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


def with_config_options(cmd: click.Command) -> click.Command:
    """Gives ``cmd`` the ``--config`` and ``--data`` options after its name.

    The options are applied to the shared :class:`CliState` before the
    command's own body runs, so the body (in whichever module) just reads
    ``ctx.obj.config``. Doing it here, once, is what makes *every* command
    take them, including those defined in other modules.
    """
    if getattr(cmd, "_has_config_options", False):
        return cmd
    cmd.params.extend([
        click.Option(["--config", "config_path"], type=click.Path(dir_okay=False), default=None, help=_CONFIG_HELP),
        click.Option(["--data", "data_dir"], type=click.Path(file_okay=False), default=None, help=_DATA_HELP),
    ])
    inner = cmd.callback

    @functools.wraps(inner)
    def callback(*args, config_path=None, data_dir=None, **kwargs):
        click.get_current_context().find_object(CliState).override(config_path, data_dir)
        return inner(*args, **kwargs)

    cmd.callback = callback
    cmd._has_config_options = True
    return cmd


class KioskGroup(click.Group):
    """A click group that imports a command's module only when that command
    runs (Click's "lazy group" pattern), and adds ``--config``/``--data`` to
    every command it hands out."""

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is None and name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name][0].split(":")
            cmd = getattr(importlib.import_module(module), attr)
            self.add_command(cmd, name)
        return with_config_options(cmd) if cmd is not None else None

    def format_commands(self, ctx, formatter):
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_COMMANDS[name][1]))
            else:
                cmd = self.commands[name]
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width - 6 - max(map(len, self.list_commands(ctx))))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=KioskGroup)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=_CONFIG_HELP)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None, help=_DATA_HELP)
@click.pass_context
def cli(ctx, config_path, data_dir):
    """The clinic intake kiosk."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config_path, data_dir)


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


@cli.command()
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.pass_context
def score(ctx, visit_file):
    """Runs the content pack's rules on VISIT_FILE; prints the result JSON."""
    cfg = ctx.obj.config
    pack, vf = visit_or_exit(cfg, visit_file)
    from .visit import score_visit_file

    click.echo(json.dumps(score_visit_file(vf, pack).as_json()))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.pass_context
def validate(ctx, paths):
    """Checks config files, content packs and media manifests.

    With no PATH, checks the configured config, content pack and media.
    Exit 0 when everything is valid; otherwise one line per problem.
    """
    from .validate import validate_paths

    problems, warnings = validate_paths(list(paths), ctx.obj.config_path)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    for p in problems:
        click.echo(p)
    sys.exit(1 if problems else 0)


@cli.command()
@click.pass_context
def status(ctx):
    """Prints the kiosk's health as JSON."""
    from .status import collect

    cfg = ctx.obj.config
    click.echo(json.dumps(collect(cfg), indent=2))


@cli.command("set-pin")
@click.pass_context
def set_pin(ctx):
    """Reads a new staff PIN from standard input and prints the line to put
    in the config file (the PIN itself is never stored, only its hash)."""
    from .staff import hash_pin

    pin = sys.stdin.readline().strip()
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        fail_lines(["<stdin>:1: the PIN must be 4 to 12 digits"])
    click.echo(f'staff_pin_hash = "{hash_pin(pin)}"')


def main():
    os.umask(0o077)  # everything the kiosk writes is for the kiosk user only
    cli(prog_name="clinic-kiosk")


if __name__ == "__main__":
    main()
