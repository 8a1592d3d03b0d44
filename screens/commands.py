"""The ``clinic-kiosk`` commands that need the Kivy front end: ``run`` and
``replay``. ``kiosk.cli`` names them by string and imports this module only
when one of them runs, so the core never imports Kivy."""

from __future__ import annotations

import json

import click

from kiosk.cli import fail_lines, visit_or_exit


@click.command("run")
@click.option("--windowed", is_flag=True, help="Run in a window instead of full screen.")
@click.pass_context
def run_command(ctx, windowed):
    """The full-screen kiosk.

    A broken config (one without a staff PIN included), content pack or
    media manifest, a data folder that cannot be written, or a kiosk not yet
    paired with a hub shows the "out of order, staff have been told" screen
    instead: the problem is logged as one line per problem and the process
    keeps running (and feeding systemd's watchdog) rather than crash-looping.
    """
    from kiosk.crypto import NotEnrolled
    from kiosk.runtime import Runtime, startup_problems

    cfg, problems = ctx.obj.try_config()
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
        from .outoforder import run_out_of_order

        run_out_of_order(problems, languages=cfg.clinic.languages,
                         windowed=windowed or not cfg.kiosk.fullscreen, display=cfg.display)
        return
    from .app import run_kiosk

    run_kiosk(runtime, windowed=windowed)


@click.command("replay")
@click.argument("visit_file", type=click.Path(dir_okay=False))
@click.option("--screenshots", type=click.Path(file_okay=False), default=None,
              help="Save a PNG of every screen into this folder.")
@click.pass_context
def replay_command(ctx, visit_file, screenshots):
    """Taps through VISIT_FILE in the real UI, submits it, prints the result."""
    cfg = ctx.obj.config
    pack, vf = visit_or_exit(cfg, visit_file)
    from kiosk.crypto import NotEnrolled, SealedBoxSealer, generate_keypair
    from kiosk.runtime import Runtime

    try:
        runtime = Runtime.create(cfg, pack=pack)
    except NotEnrolled:
        # A self-test before enrollment still runs the whole UI and a durable
        # commit, sealed to a key nobody keeps: nothing readable is left.
        click.echo("warning: this kiosk is not enrolled with a hub; the replayed visit is sealed "
                   "to a throwaway key and cannot be read back", err=True)
        runtime = Runtime.create(cfg, sealer=SealedBoxSealer(generate_keypair()[1]), pack=pack)
    from .replay import replay_visit

    try:
        out = replay_visit(cfg, vf, screenshots=screenshots, runtime=runtime)
    except RuntimeError as exc:
        fail_lines([f"{visit_file}: replay failed: {exc}"], code=1)
    finally:
        runtime.close()
    click.echo(json.dumps(out))
