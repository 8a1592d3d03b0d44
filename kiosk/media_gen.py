"""Render the demo technique videos and posters, so nothing is downloaded
and no large binary is committed.

Each technique in ``media/manifest.json`` that names a ``scene`` gets a
short, calm, silent animation drawn with Pillow (a stylised back with the
therapist's hands, a knot easing, a cat-and-cow stretch...) encoded with PyAV
as H.264 in MP4 at 640x360, 24 fps (plays on a Pi 4 and a Pi 5 alike), plus
a PNG poster. There is no text in the picture: captions are separate WebVTT
files, so they can be translated and switched off.

Run it as ``python -m kiosk.media_gen [--out DIR]`` (``make media``). Files
that are already there and were made by the same recipe are skipped, so it is
cheap to call on every start::

    >>> from kiosk.media_gen import generate
    >>> generate("media/generated")          # doctest: +SKIP
    [Path('media/generated/swedish.mp4'), ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw

from kiosk.media import DEFAULT_MANIFEST

WIDTH, HEIGHT, FPS = 640, 360, 24
SECONDS = 12.0
#: Drawing happens at twice the size and is then halved: cheap anti-aliasing.
SCALE = 2
STAMPS = ".stamps.json"

# Calm, low-saturation colours.
BACKGROUND = (214, 226, 234)
TABLE = (176, 194, 208)
SHEET = (242, 241, 236)
SKIN = (228, 192, 164)
SKIN_SHADE = (208, 166, 138)
HAIR = (92, 74, 62)
HAND = (196, 146, 114)
HAND_EDGE = (150, 104, 78)
TEAL = (34, 122, 130)
TEAL_LIGHT = (120, 186, 190)
KNOT = (214, 98, 70)
CALM = (96, 168, 120)
AVOID = (190, 70, 60)
MAT = (120, 150, 178)
FIGURE = (70, 96, 128)


def _ease(x: float) -> float:
    """0..1 -> 0..1, slow at both ends (a calm movement)."""
    x = min(1.0, max(0.0, x))
    return 0.5 - 0.5 * math.cos(math.pi * x)


def _mix(a: tuple, b: tuple, k: float) -> tuple:
    return tuple(int(round(x + (y - x) * k)) for x, y in zip(a, b))


# -- the body lying face down, seen from above (head on the left) ----------

SPINE_Y = 385
MUSCLE_YS = (335, 435)


def _prone_body() -> Image.Image:
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), BACKGROUND)
    d = ImageDraw.Draw(image)
    d.rounded_rectangle((90, 215, 1230, 555), radius=40, fill=TABLE)
    # Arms along the sides, then the torso over them.
    d.rounded_rectangle((300, 195, 760, 250), radius=27, fill=SKIN_SHADE)
    d.rounded_rectangle((300, 520, 760, 575), radius=27, fill=SKIN_SHADE)
    d.rounded_rectangle((280, 240, 930, 530), radius=120, fill=SKIN)
    # Shoulder blades and the long muscles either side of the spine.
    for y in (300, 470):
        d.ellipse((350, y - 45, 500, y + 45), outline=SKIN_SHADE, width=4)
    for y in MUSCLE_YS:
        d.rounded_rectangle((470, y - 24, 900, y + 24), radius=24, outline=SKIN_SHADE, width=3)
    # Vertebrae along the middle of the back.
    for x in range(310, 900, 42):
        d.rounded_rectangle((x, SPINE_Y - 12, x + 26, SPINE_Y + 12), radius=8, fill=SKIN_SHADE)
    # Head, hair, and the sheet over the hips and legs.
    d.ellipse((140, 320, 280, 450), fill=SKIN)
    d.chord((140, 320, 280, 450), 90, 270, fill=HAIR)
    d.rectangle((900, 235, 1230, 540), fill=SHEET)
    d.line((900, 235, 900, 540), fill=(214, 212, 204), width=6)
    for y in (330, 440):
        d.line((960, y, 1220, y), fill=(226, 224, 216), width=4)
    return image


def _hand(d: ImageDraw.ImageDraw, x: float, y: float, flip: bool = False, scale: float = 1.0) -> None:
    """A simple mitten-shaped hand, palm down, fingers pointing left."""
    w, h = 88 * scale, 58 * scale
    d.ellipse((x - w, y - h, x + w, y + h), fill=HAND, outline=HAND_EDGE, width=4)
    # Thumb on the side nearer the spine.
    ty = y + (h * 0.8 if flip else -h * 0.8)
    d.ellipse((x - 20 * scale, ty - 22 * scale, x + 40 * scale, ty + 22 * scale),
              fill=HAND, outline=HAND_EDGE, width=4)
    for k in (-0.45, 0.0, 0.45):
        d.line((x - w * 0.85, y + h * k, x - w * 0.45, y + h * k), fill=HAND_EDGE, width=3)


def _swedish(d: ImageDraw.ImageDraw, t: float) -> None:
    # Long strokes from the low back up to the shoulders and back, a 4 s cycle.
    phase = (t % 4.0) / 4.0
    k = _ease(phase * 2) if phase < 0.5 else 1 - _ease(phase * 2 - 1)
    x = 840 - 380 * k
    for step in range(5, 0, -1):  # a fading trail shows the stroke's path
        kt = k - step * 0.04 * (1 if phase < 0.5 else -1)
        tx = 840 - 380 * min(1, max(0, kt))
        colour = _mix(SKIN, TEAL_LIGHT, 0.12 * (6 - step))
        for y in MUSCLE_YS:
            d.ellipse((tx - 30, y - 30, tx + 30, y + 30), fill=colour)
    _hand(d, x, MUSCLE_YS[0] - 8)
    _hand(d, x, MUSCLE_YS[1] + 8, flip=True)


def _deep_tissue(d: ImageDraw.ImageDraw, t: float) -> None:
    # One slow stroke every 6 s; rings under the hand show pressure going deep.
    k = _ease((t % 6.0) / 6.0 * 2) if (t % 6.0) < 3 else 1 - _ease((t % 6.0) / 6.0 * 2 - 1)
    x = 820 - 300 * k
    y = MUSCLE_YS[1]
    pulse = 0.5 + 0.5 * math.sin(t * 2 * math.pi / 2.0)
    for i, colour in enumerate((TEAL_LIGHT, _mix(TEAL_LIGHT, TEAL, 0.5), TEAL)):
        r = 95 - i * 28 + 6 * pulse
        d.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.6), outline=colour, width=7)
    _hand(d, x + 30, y - 10, flip=True, scale=1.05)


def _trigger_point(d: ImageDraw.ImageDraw, t: float, duration: float) -> None:
    kx, ky = 600, MUSCLE_YS[0]
    # The knot eases from red to green while the thumb holds it.
    ease = _ease((t - 2.0) / max(1.0, duration - 4.0))
    colour = _mix(KNOT, CALM, ease)
    r = 36 - 12 * ease
    d.ellipse((kx - r, ky - r, kx + r, ky + r), fill=colour)
    # The thumb arrives, holds, then lifts.
    arrive = _ease(t / 2.0)
    leave = _ease((t - (duration - 1.5)) / 1.5)
    hx = kx + 60 + 260 * (1 - arrive) + 260 * leave
    if 2.0 <= t <= duration - 1.5:
        # A ring that fills while the pressure is held (10 to 30 s in life).
        held = (t - 2.0) / max(0.1, duration - 3.5)
        d.arc((kx - 62, ky - 62, kx + 62, ky + 62), -90, -90 + 360 * held, fill=TEAL, width=10)
        breath = 4 * math.sin(t * 2 * math.pi / 3.0)
        d.ellipse((kx - 80 - breath, ky - 80 - breath, kx + 80 + breath, ky + 80 + breath),
                  outline=TEAL_LIGHT, width=4)
    _hand(d, hx + 70, ky - 40, scale=0.9)
    d.ellipse((hx - 30, ky - 26, hx + 24, ky + 26), fill=HAND, outline=HAND_EDGE, width=4)


def _myofascial(d: ImageDraw.ImageDraw, t: float, duration: float) -> None:
    # Two hands slowly draw apart, hold the stretch, then ease back; the grid
    # (the fascia) stretches with them.
    if t < 5:
        spread = _ease(t / 5)
    elif t < duration - 3:
        spread = 1.0
    else:
        spread = 1 - _ease((t - (duration - 3)) / 3)
    cx, cy = 640, SPINE_Y
    gap = 70 + 90 * spread

    def warp(x: float, y: float) -> tuple[float, float]:
        r2 = ((x - cx) / 260) ** 2 + ((y - cy) / 150) ** 2
        pull = 0.55 * spread * math.exp(-r2)
        return x + (x - cx) * pull, y

    grid = TEAL_LIGHT
    for gx in range(400, 900, 40):
        d.line([warp(gx, gy) for gy in range(270, 505, 15)], fill=grid, width=3)
    for gy in range(270, 505, 39):
        d.line([warp(gx, gy) for gx in range(400, 885, 15)], fill=grid, width=3)
    _hand(d, cx - gap, cy - 40)
    _hand(d, cx + gap + 60, cy + 40, flip=True)


def _percussion(d: ImageDraw.ImageDraw, t: float) -> None:
    # Muscles beside the spine are marked as the place to work; the spine
    # itself is marked as a place the device never goes.
    for y in MUSCLE_YS:
        d.rounded_rectangle((470, y - 24, 900, y + 24), radius=24, outline=CALM, width=6)
    for x in range(330, 900, 84):
        d.line((x, SPINE_Y - 10, x + 20, SPINE_Y + 10), fill=AVOID, width=5)
        d.line((x, SPINE_Y + 10, x + 20, SPINE_Y - 10), fill=AVOID, width=5)
    k = _ease((t % 8.0) / 4.0) if (t % 8.0) < 4 else 1 - _ease((t % 8.0) / 4.0 - 1)
    x = 560 + 280 * k
    y = MUSCLE_YS[0] if (t % 16.0) < 8 else MUSCLE_YS[1]
    # Taps: rings leave the head four times a second.
    for i in range(3):
        age = ((t * 4) + i / 3) % 1.0
        r = 34 + 22 * age  # small rings: the taps stay on the muscle, off the spine
        colour = _mix(TEAL, BACKGROUND, age * 0.9)
        d.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=5)
    bob = 5 * math.sin(t * 2 * math.pi * 4)
    d.ellipse((x - 32, y - 32 + bob, x + 32, y + 32 + bob), fill=(70, 78, 88))
    top = y - 180 if y < SPINE_Y else y + 40
    d.rounded_rectangle((x - 26, min(top, y) + (40 if y < SPINE_Y else 0), x + 26,
                         max(top + 140, y) - (0 if y < SPINE_Y else 40)), radius=18, fill=(92, 102, 116))
    d.rounded_rectangle((x + 18, (y - 150 if y < SPINE_Y else y + 90), x + 150,
                         (y - 110 if y < SPINE_Y else y + 130)), radius=18, fill=(92, 102, 116))


# -- a person on hands and knees, seen from the side (cat and cow) ----------

def _floor() -> Image.Image:
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), BACKGROUND)
    d = ImageDraw.Draw(image)
    d.rectangle((0, 600, WIDTH * SCALE, HEIGHT * SCALE), fill=(200, 212, 222))
    d.rounded_rectangle((240, 585, 1140, 615), radius=15, fill=MAT)
    return image


def _bezier(p0, p1, p2, n=24):
    return [((1 - s) ** 2 * p0[0] + 2 * (1 - s) * s * p1[0] + s * s * p2[0],
             (1 - s) ** 2 * p0[1] + 2 * (1 - s) * s * p1[1] + s * s * p2[1])
            for s in (i / n for i in range(n + 1))]


def _stretching(d: ImageDraw.ImageDraw, t: float) -> None:
    # One slow breath cycle every 6 s: round the back up (cat), let it sink
    # (cow), in step with the captions (cat from 3.3 s, cow from 6.3 s).
    arch = math.sin((t - 3.3) * 2 * math.pi / 6.0)
    shoulder, hip = (450, 370), (850, 380)
    hands, knees, feet = (450, 580), (850, 580), (1090, 580)
    mid = ((shoulder[0] + hip[0]) / 2, 375 - 95 * arch)
    width = 44
    d.line((shoulder, hands), fill=FIGURE, width=width, joint="curve")
    d.line((hip, knees, feet), fill=FIGURE, width=width, joint="curve")
    d.line(_bezier(shoulder, mid, hip), fill=FIGURE, width=width + 20, joint="curve")
    for p in (shoulder, hip, knees, hands):
        d.ellipse((p[0] - width / 2, p[1] - width / 2, p[0] + width / 2, p[1] + width / 2), fill=FIGURE)
    # The head follows the spine: down in cat, up in cow.
    hx, hy = 360, 360 + 55 * arch
    d.ellipse((hx - 48, hy - 48, hx + 48, hy + 48), fill=SKIN)
    d.line((shoulder, (hx + 20, hy)), fill=SKIN, width=30)
    # A soft breath marker above the back.
    r = 16 + 10 * (0.5 + 0.5 * arch)
    d.ellipse((650 - r, 200 - r, 650 + r, 200 + r), outline=TEAL, width=5)


Scene = Callable[[ImageDraw.ImageDraw, float, float], None]

SCENES: dict[str, tuple[Callable[[], Image.Image], Scene, float]] = {
    # name: (background, drawing(d, t, duration), poster time in seconds)
    "swedish": (_prone_body, lambda d, t, n: _swedish(d, t), 1.4),
    "deep-tissue": (_prone_body, lambda d, t, n: _deep_tissue(d, t), 2.0),
    "trigger-point": (_prone_body, _trigger_point, 4.0),
    "myofascial": (_prone_body, _myofascial, 6.0),
    "percussion": (_prone_body, lambda d, t, n: _percussion(d, t), 2.0),
    "stretching": (_floor, lambda d, t, n: _stretching(d, t), 4.8),
}


def render_frame(scene: str, t: float, duration: float = SECONDS, _base: Image.Image | None = None) -> Image.Image:
    """The RGB picture of ``scene`` at ``t`` seconds, WIDTH x HEIGHT."""
    background, draw, _ = SCENES[scene]
    image = (_base or background()).copy()
    draw(ImageDraw.Draw(image), t, duration)
    return image.reduce(SCALE)


def render_clip(scene: str, path: Path, seconds: float = SECONDS, fps: int = FPS) -> Path:
    """Encode ``scene`` as H.264 MP4 (yuv420p, no audio) at ``path``."""
    import av

    background = SCENES[scene][0]()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    # faststart puts the index first so the player starts without seeking.
    with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # A keyframe every second so replay and seeking are quick on a Pi.
        stream.options = {"crf": "24", "preset": "veryfast", "g": str(fps), "profile": "high"}
        for i in range(max(1, round(seconds * fps))):
            frame = av.VideoFrame.from_image(render_frame(scene, i / fps, seconds, background))
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    partial.replace(path)  # never leave a half-written video under the real name
    return path


def render_poster(scene: str, path: Path, seconds: float = SECONDS) -> Path:
    """Save the scene's representative frame as a PNG poster."""
    path.parent.mkdir(parents=True, exist_ok=True)
    when = min(SCENES[scene][2], seconds * 0.5)
    render_frame(scene, when, seconds).save(path, optimize=True)
    return path


def _recipe(scene: str, kind: str, seconds: float) -> str:
    """A hash that changes whenever the output would: this module's source,
    the scene and the clip's length."""
    source = Path(__file__).read_bytes()
    return hashlib.sha256(source + f"|{scene}|{kind}|{seconds}|{WIDTH}x{HEIGHT}@{FPS}".encode()).hexdigest()[:16]


def _jobs(manifest: Path, out: Path, seconds: float) -> list[tuple[str, str, Path, float]]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    jobs = []
    for entry in data.get("techniques", []):
        scene = entry.get("scene")
        if scene not in SCENES:
            continue
        jobs.append((scene, "video", out / Path(entry["video"]).name, seconds))
        jobs.append((scene, "poster", out / Path(entry["poster"]).name, seconds))
    return jobs


def _run(job: tuple[str, str, Path, float]) -> Path:
    scene, kind, path, seconds = job
    if kind == "video":
        return render_clip(scene, path, seconds)
    return render_poster(scene, path, seconds)


def generate(out: str | Path | None = None, manifest: str | Path = DEFAULT_MANIFEST, *,
             seconds: float = SECONDS, force: bool = False, workers: int | None = None,
             log: Callable[[str], None] | None = None) -> list[Path]:
    """Render every missing or outdated demo video and poster of ``manifest``
    into ``out`` (default: ``generated/`` next to the manifest).

    Returns the paths written (empty when all were up to date). ``workers``
    processes share the work (default: one per CPU core).
    """
    manifest = Path(manifest)
    out = Path(out) if out is not None else manifest.parent / "generated"
    out.mkdir(parents=True, exist_ok=True)
    stamps_path = out / STAMPS
    try:
        stamps = json.loads(stamps_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    todo = []
    for job in _jobs(manifest, out, seconds):
        scene, kind, path, _ = job
        if not force and path.is_file() and stamps.get(path.name) == _recipe(scene, kind, seconds):
            if log:
                log(f"up to date: {path}")
            continue
        todo.append(job)
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(todo) > 2:
        # Videos first: they are the long jobs, so the pool stays busy.
        todo.sort(key=lambda job: job[1] != "video")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            written = list(pool.map(_run, todo))
    else:
        written = [_run(job) for job in todo]
    for (scene, kind, path, _), done in zip(todo, written):
        stamps[path.name] = _recipe(scene, kind, seconds)
        if log:
            log(f"made: {done}")
    if todo:
        stamps_path.write_text(json.dumps(stamps, indent=1, sort_keys=True), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.media_gen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the files (default: media/generated)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="length of each clip")
    parser.add_argument("--force", action="store_true", help="render even when up to date")
    args = parser.parse_args(argv)
    try:
        generate(args.out, args.manifest, seconds=args.seconds, force=args.force, log=print)
    except (OSError, ValueError, KeyError) as exc:
        print(f"{args.manifest}: cannot generate media: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
