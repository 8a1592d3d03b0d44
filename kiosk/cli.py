"""``clinic-kiosk``: the device's command line (see shared/contract.md).

Every command takes ``--config FILE`` (default ``/etc/clinic-kiosk/kiosk.toml``
when it exists, else built-in defaults) and ``--data DIR``, which overrides
where the database, keys and tokens live. Problems are reported as
``path:location: message`` lines, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import click

from . import config as config_mod
from .pack import PackError, load_pack
from .visit import VisitFileError, read_visit_file, score_visit_file


def _load_config(config_path, data_dir) -> config_mod.Config:
    try:
        cfg = config_mod.load(config_path)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(1)
    if data_dir:
        cfg = cfg.with_data_dir(data_dir)
    return cfg


def _fail_lines(lines, code=1):
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Configuration file (default /etc/clinic-kiosk/kiosk.toml when it exists).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the database, keys and tokens.")
@click.pass_context
def cli(ctx, config_path, data_dir):
    """The clinic intake kiosk."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config_path, data_dir)


class CliState:
    """What every command shares: where the config is, loaded on first use
    (commands of other modules read ``ctx.obj.config``)."""

    def __init__(self, config_path, data_dir):
        self.config_path = config_path
        self.data_dir = data_dir
        self._config = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = _load_config(self.config_path, self.data_dir)
        return self._config


def _config(ctx, config_path=None, data_dir=None) -> config_mod.Config:
    """The config for a command: its own --config/--data win over the group's."""
    obj = ctx.obj
    if config_path or data_dir:
        obj.config_path = config_path or obj.config_path
        obj.data_dir = data_dir or obj.data_dir
        obj._config = None
    return obj.config


def config_options(f):
    """Lets ``--config`` and ``--data`` also follow the command name."""
    f = click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                     help="Folder for the database, keys and tokens.")(f)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="Configuration file.")(f)
    return f


def _pack_or_exit(cfg):
    try:
        return load_pack(cfg.kiosk.content_pack or None)
    except PackError as exc:
        _fail_lines(exc.problems)


def _visit_or_exit(cfg, visit_file):
    """The pack and the checked visit file; exit 2 naming the linkId when a
    required answer is missing, warnings for answers the pack does not ask."""
    pack = _pack_or_exit(cfg)
    try:
        vf = read_visit_file(visit_file, pack)
    except VisitFileError as exc:
        _fail_lines([str(exc)], code=2)
    for w in vf.warnings:
        click.echo(f"warning: {w}", err=True)
    return pack, vf


@cli.command()
@config_options
@click.option("--windowed", is_flag=True, help="Run in a window instead of full screen.")
@click.pass_context
def run(ctx, config_path, data_dir, windowed):
    """The full-screen kiosk."""
    from .crypto import NotEnrolled
    from .runtime import Runtime

    cfg = _config(ctx, config_path, data_dir)
    pack = _pack_or_exit(cfg)
    try:
        runtime = Runtime.create(cfg, pack=pack)
    except NotEnrolled as exc:
        _fail_lines([f"{cfg.source}: {exc}"])
    from screens.app import run_kiosk

    run_kiosk(runtime, windowed=windowed)


@cli.command()
@config_options
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.pass_context
def score(ctx, config_path, data_dir, visit_file):
    """Runs the content pack's rules on VISIT_FILE; prints the result JSON."""
    cfg = _config(ctx, config_path, data_dir)
    pack, vf = _visit_or_exit(cfg, visit_file)
    click.echo(json.dumps(score_visit_file(vf, pack).as_json()))


@cli.command()
@config_options
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.option("--screenshots", type=click.Path(file_okay=False), default=None,
              help="Save a PNG of every screen into this folder.")
@click.pass_context
def replay(ctx, config_path, data_dir, visit_file, screenshots):
    """Taps through VISIT_FILE in the real UI, submits it, prints the result."""
    cfg = _config(ctx, config_path, data_dir)
    pack, vf = _visit_or_exit(cfg, visit_file)
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
    from screens.replay import replay_visit

    try:
        out = replay_visit(cfg, vf, screenshots=screenshots, runtime=runtime)
    except RuntimeError as exc:
        _fail_lines([f"{visit_file}: replay failed: {exc}"], code=1)
    finally:
        runtime.close()
    click.echo(json.dumps(out))


@cli.command()
@config_options
@click.argument("paths", nargs=-1, type=click.Path())
@click.pass_context
def validate(ctx, config_path, data_dir, paths):
    """Checks config files, content packs and media manifests.

    With no PATH, checks the configured config, content pack and media.
    Exit 0 when everything is valid; otherwise one line per problem.
    """
    from .validate import validate_paths

    obj = ctx.obj
    problems, warnings = validate_paths(list(paths), config_path or obj.config_path)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    for p in problems:
        click.echo(p)
    sys.exit(1 if problems else 0)


@cli.command()
@config_options
@click.pass_context
def status(ctx, config_path, data_dir):
    """Prints the kiosk's health as JSON."""
    from .status import collect

    cfg = _config(ctx, config_path, data_dir)
    click.echo(json.dumps(collect(cfg), indent=2))


@cli.command("set-pin")
@config_options
@click.pass_context
def set_pin(ctx, config_path, data_dir):
    """Reads a new staff PIN from standard input and prints the line to put
    in the config file (the PIN itself is never stored, only its hash)."""
    from .staff import hash_pin

    pin = sys.stdin.readline().strip()
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        _fail_lines(["<stdin>:1: the PIN must be 4 to 12 digits"])
    click.echo(f'staff_pin_hash = "{hash_pin(pin)}"')


def _register_commands():
    from .hardware import gpio_test_command
    from .sync import enroll_command, export_command, sync_command

    cli.add_command(gpio_test_command, "gpio-test")
    cli.add_command(enroll_command, "enroll")
    cli.add_command(sync_command, "sync")
    cli.add_command(export_command, "export")


_register_commands()


def main():
    os.umask(0o077)  # everything the kiosk writes is for the kiosk user only
    cli(prog_name="clinic-kiosk")


if __name__ == "__main__":
    main()
