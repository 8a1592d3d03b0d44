"""The media catalogue, WebVTT parsing, probing and the demo generator.

Kivy-free: these run without a window. The clips they need are generated
into a temporary folder once per session, so nothing depends on
``make media`` having run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import media
from kiosk.media import (Cue, MediaError, VideoInfo, VttError, board_warnings, caption_at,
                         check, cues_at, load_catalogue, parse_vtt, playable, probe, validate)
from kiosk import media_gen

REPO = Path(__file__).resolve().parent.parent
REAL_MANIFEST = REPO / "media" / "manifest.json"

VTT = "WEBVTT\n\n00:00.000 --> 00:00.500\nFirst\n\n00:00.500 --> 00:01.000\nSecond\n"


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """A one-second clip, its poster and a corrupt 'video'."""
    folder = tmp_path_factory.mktemp("clips")
    media_gen.render_clip("swedish", folder / "demo.mp4", seconds=1.0)
    media_gen.render_poster("swedish", folder / "demo.png", seconds=1.0)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return folder


def technique(tid="demo", **changes):
    entry = {
        "id": tid,
        "title": {"en": "Demo", "es": "Demostración"},
        "summary": {"en": "A demo.", "es": "Una demostración."},
        "expect": {"en": "Nothing.", "es": "Nada."},
        "not_suitable": {"en": "Never.", "es": "Nunca."},
        "video": "demo.mp4",
        "poster": "demo.png",
        "captions": {"en": "demo.en.vtt", "es": "demo.es.vtt"},
    }
    entry.update(changes)
    return entry


@pytest.fixture
def folder(tmp_path, clips):
    """A valid media folder: manifest, clip, poster, captions."""
    for name in ("demo.mp4", "demo.png", "corrupt.mp4"):
        shutil.copy(clips / name, tmp_path / name)
    (tmp_path / "demo.en.vtt").write_text(VTT, encoding="utf-8")
    (tmp_path / "demo.es.vtt").write_text(VTT.replace("First", "Primero"), encoding="utf-8")
    write_manifest(tmp_path, [technique()])
    return tmp_path


def write_manifest(folder: Path, techniques, **top) -> Path:
    data = {"version": 1, "languages": ["en", "es"], "techniques": techniques, **top}
    path = folder / "manifest.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


# -- the shipped manifest ----------------------------------------------------


def test_shipped_manifest_is_well_formed():
    catalogue = load_catalogue(REAL_MANIFEST)
    assert catalogue.languages == ("en", "es")
    assert [t.id for t in catalogue] == [
        "swedish", "deep-tissue", "trigger-point", "myofascial", "percussion", "stretching"]
    assert catalogue.problems == ()  # every caption file parses
    for t in catalogue:
        for language in ("en", "es"):
            for name in media.TEXT_FIELDS:
                assert t.text(name, language).strip()
            cues = t.cues_for(language)
            assert cues and cues[-1].end <= media_gen.SECONDS
        assert t.scene in media_gen.SCENES


def test_shipped_texts_carry_the_safety_facts():
    catalogue = load_catalogue(REAL_MANIFEST)
    percussion = catalogue["percussion"].text("not_suitable", "en").lower()
    for word in ("bones", "joints", "wounds", "fractures"):
        assert word in percussion
    deep = catalogue["deep-tissue"].text("not_suitable", "en").lower()
    assert "blood thinners" in deep and "osteoporosis" in deep
    assert "anticoagulantes" in catalogue["deep-tissue"].text("not_suitable", "es")


def test_core_never_imports_kivy():
    code = "import sys, kiosk.media, kiosk.media_gen; assert 'kivy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- validation ------------------------------------------------------------------


def test_valid_folder_has_no_errors(folder):
    assert validate(folder / "manifest.json") == []
    catalogue = load_catalogue(folder / "manifest.json")
    assert catalogue["demo"].video == folder / "demo.mp4"
    assert catalogue["demo"].cues_for("es")[0].text == "Primero"


def test_bad_json_names_line_and_column(folder):
    path = folder / "manifest.json"
    path.write_text('{"version": 1,\n "languages": ["en" "es"]}', encoding="utf-8")
    problems = validate(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:2:")
    assert "not valid JSON" in problems[0]
    with pytest.raises(MediaError) as caught:
        load_catalogue(path)
    assert caught.value.problems == problems


def test_missing_manifest(tmp_path):
    assert validate(tmp_path / "nope.json") == [f"{tmp_path / 'nope.json'}:$: manifest not found"]


def test_missing_files_are_named(folder):
    path = write_manifest(folder, [technique(video="gone.mp4", poster="gone.png",
                                             captions={"en": "demo.en.vtt", "es": "gone.vtt"})])
    problems = validate(path)
    assert f"{path}:techniques[0].video: file not found: {folder / 'gone.mp4'}" in problems
    assert f"{path}:techniques[0].poster: file not found: {folder / 'gone.png'}" in problems
    assert f"{path}:techniques[0].captions.es: file not found: {folder / 'gone.vtt'}" in problems
    # Loading still works: the kiosk shows the poster/text fallback instead.
    catalogue = load_catalogue(path)
    assert catalogue["demo"].cues_for("es") == catalogue["demo"].cues_for("en")
    assert any("gone.vtt" in p for p in catalogue.problems)


def test_bad_languages(folder):
    entry = technique(title={"en": "Demo", "fr": "Démo"})
    problems = validate(write_manifest(folder, [entry]))
    assert any(p.endswith("techniques[0].title.fr: language 'fr' is not one of the manifest's "
                          "languages (en, es)") for p in problems)
    assert any(p.endswith("techniques[0].title: missing language 'es'") for p in problems)

    problems = validate(write_manifest(folder, [technique()], languages=["english"]))
    assert any("languages[0]: 'english' is not a language code" in p for p in problems)


def test_structure_problems_are_all_reported(folder):
    path = write_manifest(folder, [technique(id="Bad Id", captons={}), technique(), technique(),
                                   "not an object"], extra=1)
    problems = validate(path)
    locations = [p.split(":")[1] for p in problems]
    assert "extra" in locations
    assert "techniques[0].id" in locations
    assert "techniques[0].captons" in locations
    assert any("duplicate id 'demo'" in p for p in problems)
    assert "techniques[3]" in locations
    with pytest.raises(MediaError):
        load_catalogue(path)


@pytest.mark.parametrize("data", [[], "text", {"version": 2}, {"version": 1, "languages": "en"}])
def test_nonsense_never_raises(folder, data):
    path = folder / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    problems = validate(path)
    assert problems and all(p.startswith(f"{path}:") for p in problems)


def test_broken_vtt_names_file_and_line(folder):
    (folder / "demo.es.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHola\n\n"
                                        "00:01.000 -> 00:02.000\nAdiós\n", encoding="utf-8")
    problems = validate(folder / "manifest.json")
    assert problems == [f"{folder / 'demo.es.vtt'}:6: expected a cue timing line 'start --> end'"]


def test_corrupt_video_is_an_error_not_a_traceback(folder):
    path = write_manifest(folder, [technique(video="corrupt.mp4")])
    problems = validate(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{folder / 'corrupt.mp4'}:video: cannot be decoded")


def test_unsupported_file_and_broken_poster(folder):
    (folder / "notes.mp4").write_text("just some text, not a video\n" * 50)
    (folder / "bad.png").write_bytes(b"not a png")
    problems = validate(write_manifest(folder, [technique(video="notes.mp4", poster="bad.png")]))
    assert any(p.startswith(f"{folder / 'notes.mp4'}:video:") for p in problems)
    assert any(p.startswith(f"{folder / 'bad.png'}:poster: not a readable image") for p in problems)


def test_captions_longer_than_video_warn(folder):
    (folder / "demo.en.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:09.000\nLong\n", encoding="utf-8")
    found = check(folder / "manifest.json")
    assert [p.severity for p in found] == ["warning"]
    assert "after the video ends" in str(found[0])
    assert validate(folder / "manifest.json") == []


# -- probing ---------------------------------------------------------------------


def test_probe_generated_clip(clips):
    info = probe(clips / "demo.mp4")
    assert (info.codec, info.width, info.height, info.pix_fmt) == ("h264", 640, 360, "yuv420p")
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert info.warnings == ()  # 360p H.264 is fine on both boards


def test_probe_corrupt_and_missing(clips, tmp_path):
    with pytest.raises(MediaError) as caught:
        probe(clips / "corrupt.mp4")
    assert str(clips / "corrupt.mp4") in str(caught.value)
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4"):
        probe(empty)


def test_playable_checks_in_a_child_and_names_each_bad_file(clips, tmp_path):
    good, corrupt, missing = clips / "demo.mp4", clips / "corrupt.mp4", tmp_path / "missing.mp4"
    found = playable([good, corrupt, missing])
    assert found[str(good)] is None
    assert found[str(corrupt)].startswith(f"{corrupt}: cannot be decoded")
    assert found[str(missing)] == f"{missing}: file not found"


def test_a_checker_that_dies_leaves_its_files_unchecked_not_the_kiosk_down(clips, tmp_path):
    # A file that crashes FFmpeg kills the checker, never the kiosk: the
    # stand-in "python" here dies of a segmentation fault whatever it is given.
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    found = playable([clips / "demo.mp4"], python=str(crashing))
    assert found == {str(clips / "demo.mp4"): f"{clips / 'demo.mp4'}: not checked: the checker stopped (exit status -11)"}
    hanging = tmp_path / "slow"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    found = playable([clips / "demo.mp4"], python=str(hanging), timeout=0.5)
    assert found[str(clips / "demo.mp4")].endswith("not checked: the check took longer than 0.5 s")


def info(codec="h264", width=1920, height=1080, fps=30.0, pix_fmt="yuv420p"):
    return VideoInfo(Path("x.mp4"), codec, width, height, fps, 10.0, pix_fmt)


def test_board_warnings():
    assert board_warnings(info(), "pi4") == []
    pi5 = board_warnings(info(), "pi5")
    assert len(pi5) == 1 and "no H.264 hardware decoder" in pi5[0] and "HEVC" in pi5[0]
    assert board_warnings(info(width=1280, height=720), "pi5") == []
    assert board_warnings(info(codec="hevc", width=3840, height=2160), None) == []
    assert "up to 1920x1080 at 30 fps" in board_warnings(info(width=3840, height=2160), "pi4")[0]
    assert board_warnings(info(fps=60), "pi4")
    assert "software" in board_warnings(info(codec="vp9"), "pi4")[0]
    assert "yuv420p" in board_warnings(info(pix_fmt="yuv444p"), "pi4")[0]
    assert board_warnings(info(width=1080, height=1920), "pi4") == []  # portrait 1080p


# -- WebVTT -----------------------------------------------------------------------


def test_parse_vtt_full_syntax():
    text = ("\ufeffWEBVTT - demo\nKind: captions\n\nNOTE written by hand\nover two lines\n\n"
            "STYLE\n::cue { color: white }\n\n"
            "intro\r\n01:00:01.500 --> 01:00:03.000 align:center line:90%\r\n"
            "<v Therapist>Hello &amp; <i>welcome</i></v>\r\nsecond line\r\n\r\n"
            "00:00.000 --> 00:01.000\nFirst\n")
    cues = parse_vtt(text)
    assert cues == (Cue(0.0, 1.0, "First"), Cue(3601.5, 3603.0, "Hello & welcome\nsecond line"))


@pytest.mark.parametrize("text, line, message", [
    ("WEBVT\n\n00:00.000 --> 00:01.000\nA\n", 1, "must start with the line 'WEBVTT'"),
    ("WEBVTT\n\n00:00.000 --> 00:01\nA\n", 3, "not a WebVTT timestamp"),
    ("WEBVTT\n\n00:02.000 --> 00:01.000\nA\n", 3, "before it starts"),
    ("WEBVTT\n\nid\n00:00.000 --> 00:01.000\n", 4, "no text"),
    ("WEBVTT\n\nid\nno timing here\n", 4, "expected a cue timing line"),
    ("WEBVTT\n", 2, "no cues"),
])
def test_parse_vtt_errors(text, line, message):
    with pytest.raises(VttError) as caught:
        parse_vtt(text)
    assert caught.value.line == line
    assert message in caught.value.message


def test_cue_timing():
    cues = parse_vtt("WEBVTT\n\n00:01.000 --> 00:03.000\nA\n\n00:02.000 --> 00:04.000\nB\n\n"
                     "00:05.000 --> 00:06.000\nC\n")
    assert cues_at(cues, 0.0) == []
    assert [c.text for c in cues_at(cues, 1.0)] == ["A"]  # start is inclusive
    assert [c.text for c in cues_at(cues, 2.5)] == ["A", "B"]  # overlap
    assert [c.text for c in cues_at(cues, 3.0)] == ["B"]  # end is exclusive
    assert caption_at(cues, 4.5) == ""
    assert caption_at(cues, 5.999) == "C"
    assert caption_at(cues, 2.5) == "A\nB"
    assert caption_at((), 1.0) == ""


# -- the generator -------------------------------------------------------------------


def test_generate_skips_up_to_date_files(tmp_path, monkeypatch):
    manifest = write_manifest(tmp_path, [technique(video="generated/a.mp4", poster="generated/a.png",
                                                   scene="stretching"),
                                         technique(tid="own", video="own.mp4")])
    out = tmp_path / "generated"
    made = media_gen.generate(out, manifest, seconds=0.5, workers=1)
    assert sorted(p.name for p in made) == ["a.mp4", "a.png"]  # "own" has no scene
    assert probe(out / "a.mp4").duration == pytest.approx(0.5, abs=0.1)
    assert media_gen.generate(out, manifest, seconds=0.5, workers=1) == []
    # A changed recipe (here: the length) makes them again.
    assert len(media_gen.generate(out, manifest, seconds=1.0, workers=1)) == 2
    assert not list(out.glob("*.part"))


def test_every_scene_renders():
    for scene in media_gen.SCENES:
        for t in (0.0, 5.5, 11.9):
            image = media_gen.render_frame(scene, t)
            assert image.size == (media_gen.WIDTH, media_gen.HEIGHT)


def test_validate_all_splits_errors_and_warnings(folder):
    (folder / "demo.en.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:09.000\nLong\n", encoding="utf-8")
    errors, warnings = media.validate_all(folder / "manifest.json")
    assert errors == []
    assert len(warnings) == 1 and warnings[0].startswith(f"{folder / 'demo.en.vtt'}:$: the last caption")
    errors, _ = media.validate_all(write_manifest(folder, [technique(video="gone.mp4")]))
    assert errors == [f"{folder / 'manifest.json'}:techniques[0].video: file not found: {folder / 'gone.mp4'}"]


def test_missing_demo_media_says_how_to_make_it(folder):
    path = write_manifest(folder, [technique(video="generated/x.mp4", scene="swedish")])
    (problem,) = validate(path)
    assert problem.endswith("generated/x.mp4; run `python -m kiosk.media_gen` (make media) to render it")


def test_a_manifest_version_must_be_the_number_1(folder):
    path = write_manifest(folder, [technique()], version=True)
    assert validate(path) == [f"{path}:version: unsupported manifest version True (expected 1)"]


def test_unknown_keys_are_named_the_same_way_in_every_file(folder, tmp_path):
    """Config, media manifest and pack.json: one formatter, one shape, and
    the keys that would have been right."""
    from kiosk import config

    manifest = write_manifest(folder, [technique(captons={})], extra=1)
    problems = validate(manifest)
    assert f"{manifest}:extra: unknown key (known: version, languages, techniques)" in problems
    assert any(p.startswith(f"{manifest}:techniques[0].captons: unknown key (known: id, title, ") for p in problems)
    toml = tmp_path / "kiosk.toml"
    toml.write_text("[audio]\nvolum = 3\n")
    with pytest.raises(config.ConfigError) as exc:
        config.load(toml)
    assert exc.value.problems == [f"{toml}:audio.volum: unknown key (known: read_aloud, device, volume)"]
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.json").write_text(json.dumps({"id": "p", "version": "1", "languages": ["en"],
                                                "parts": [{"builtin": "default", "buildin": "x"}]}))
    from kiosk.questionnaire import PackError, load_pack

    with pytest.raises(PackError) as caught:
        load_pack(pack)
    assert any(p.startswith(f"{pack / 'pack.json'}:parts[0].buildin: unknown key (known: id, builtin, ")
               for p in caught.value.problems), caught.value.problems
