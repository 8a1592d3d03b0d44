from pathlib import Path

import pytest

from kiosk import config


def write(tmp_path, text):
    p = tmp_path / "kiosk.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file(tmp_path):
    cfg = config.load(None) if not config.DEFAULT_CONFIG_PATH.exists() else config.Config()
    assert cfg.kiosk.idle_timeout_s == 90
    assert cfg.clinic.languages == ["en", "es"]


def test_a_file_changes_only_what_it_names(tmp_path):
    cfg = config.load(write(tmp_path, '[clinic]\nname = "Riverside"\n[kiosk]\nidle_timeout_s = 120\n'))
    assert cfg.clinic.name == "Riverside"
    assert cfg.kiosk.idle_timeout_s == 120
    assert cfg.gpio.call_button_pin == 17


def test_unknown_key_and_wrong_type_name_file_and_key(tmp_path):
    path = write(tmp_path, '[kiosk]\nidle_timout_s = 120\nfullscreen = "yes"\n[gpoi]\nx = 1\n')
    with pytest.raises(config.ConfigError) as exc:
        config.load(path)
    problems = "\n".join(exc.value.problems)
    assert f"{path}:kiosk.idle_timout_s: unknown key" in problems
    assert f"{path}:kiosk.fullscreen: expected true or false" in problems
    assert f"{path}:gpoi: unknown section" in problems


def test_too_short_idle_timeout_is_refused(tmp_path):
    with pytest.raises(config.ConfigError) as exc:
        config.load(write(tmp_path, "[kiosk]\nidle_timeout_s = 5\n"))
    assert "at least 20 seconds" in exc.value.problems[0]


def test_broken_toml_says_where(tmp_path):
    path = write(tmp_path, "[kiosk\nidle = 1\n")
    with pytest.raises(config.ConfigError) as exc:
        config.load(path)
    assert exc.value.problems[0].startswith(f"{path}:1: not valid TOML")


def test_shipped_example_config_is_the_documented_defaults():
    shipped = Path(__file__).resolve().parent.parent / "deploy" / "kiosk.toml"
    assert shipped.read_text() == config.documented_defaults() + "\n"
    assert config.load(shipped) == config.Config(source=str(shipped))


def test_validate_refuses_a_configuration_without_a_staff_pin(tmp_path):
    from kiosk.staff import hash_pin
    from kiosk.validate import validate_paths

    bare = write(tmp_path, '[clinic]\nname = "Riverside"\n')
    problems, _ = validate_paths([str(bare)], None)
    assert problems == [f"{bare}:kiosk.staff_pin_hash: no staff PIN set; run `echo NEW-PIN | clinic-kiosk set-pin` "
                        "and put the line it prints under [kiosk]"]
    garbled = tmp_path / "garbled.toml"
    garbled.write_text('[kiosk]\nstaff_pin_hash = "2468"\n')
    assert "not a PIN hash" in validate_paths([str(garbled)], None)[0][0]
    good = tmp_path / "good.toml"
    good.write_text(f'[kiosk]\nstaff_pin_hash = "{hash_pin("8642")}"\n')
    assert validate_paths([str(good)], None)[0] == []


def test_display_rotation_and_resolution_are_checked():
    with pytest.raises(config.ConfigError) as err:
        config.parse({"display": {"rotation": 45, "touch_rotation": 90, "width": 800}}, "k.toml")
    assert err.value.problems == [
        "k.toml:display.rotation: 45 is not a rotation (0, 90, 180 or 270)",
        "k.toml:display.width: 800x0: give both width and height in pixels, or 0 for both",
    ]


def test_settings_added_for_staff_language_screening_and_audio_have_defaults(tmp_path):
    cfg = config.load(write(tmp_path, '[kiosk]\nstaff_language = "es"\n[audio]\nread_aloud = true\n'
                                      'device = "hw:1,0"\nvolume = 55\n'))
    assert (cfg.kiosk.staff_language, cfg.kiosk.screening) == ("es", "on")
    assert (cfg.audio.read_aloud, cfg.audio.device, cfg.audio.volume) == (True, "hw:1,0", 55)
    default = config.Config()
    assert (default.kiosk.staff_language, default.audio.read_aloud, default.audio.device,
            default.audio.volume) == ("en", False, "", 80)


def test_bad_values_of_the_new_settings_are_all_reported_at_once(tmp_path):
    path = write(tmp_path, '[kiosk]\nstaff_language = "English"\nscreening = "maybe"\n'
                           '[audio]\nread_aloud = "yes"\nvolume = 140\nloudness = 3\n')
    with pytest.raises(config.ConfigError) as exc:
        config.load(path)
    assert exc.value.problems == [
        f"{path}:kiosk.staff_language: 'English' is not a language code (e.g. 'en' or 'es')",
        f"{path}:kiosk.screening: 'maybe' must be \"on\" or \"off\"",
        f"{path}:audio.read_aloud: expected true or false, got 'yes'",
        f"{path}:audio.loudness: unknown key (known: read_aloud, device, volume)",
    ]
    with pytest.raises(config.ConfigError) as exc:
        config.load(write(tmp_path, "[audio]\nvolume = 140\n"))
    assert exc.value.problems == [f"{tmp_path / 'kiosk.toml'}:audio.volume: 140 is not a volume from 0 to 100"]


def test_a_setting_takes_exactly_its_own_type(tmp_path):
    # TOML says what a value is: "90" is text, 1 is not true, 2.5 is not a whole number
    path = write(tmp_path, '[kiosk]\nidle_timeout_s = "90"\nlarge_text = 1\n[gpio]\ncall_button_pin = 2.5\n'
                           'hold_time_s = 2\n')
    with pytest.raises(config.ConfigError) as exc:
        config.load(path)
    assert exc.value.problems == [
        f"{path}:kiosk.idle_timeout_s: expected a whole number, got '90'",
        f"{path}:kiosk.large_text: expected true or false, got 1",
        f"{path}:gpio.call_button_pin: expected a whole number, got 2.5",
    ]
    assert config.load(write(tmp_path, "[gpio]\nhold_time_s = 2\n")).gpio.hold_time_s == 2.0


def test_a_staff_language_the_pack_does_not_offer_is_refused(tmp_path):
    from kiosk.staff import hash_pin
    from kiosk.validate import validate_paths

    path = write(tmp_path, f'[kiosk]\nstaff_pin_hash = "{hash_pin("8642")}"\nstaff_language = "fr"\n'
                           f'content_pack = "{Path(config.__file__).parent / "packs" / "default"}"\n')
    problems, _ = validate_paths([str(path)], None)
    assert problems == [f"{path}:kiosk.staff_language: 'fr' is not a language of the content pack "
                        "(it offers en, es)"]
