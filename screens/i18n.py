"""The app's own strings, translated with gettext catalogues (Babel).

Strings are marked in kv as ``app.t("First visit", app.language)`` and in Python
as ``app.t("...")``. Catalogues live in ``screens/locale/<lang>/LC_MESSAGES/
kiosk.po``; they are read with Babel at start-up, so there is no compile step.
``make`` target ``i18n`` (``pybabel extract``) refreshes the template.
"""

from __future__ import annotations

import re
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kiosk"


def load_catalogue(lang: str, locale_dir: Path = LOCALE_DIR) -> dict[str, str]:
    """{msgid: msgstr} of one language; empty when there is no catalogue
    (English, the source language, needs none)."""
    from babel.messages.pofile import read_po

    po = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return {}
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


_MSGID = re.compile(r'\bt\("((?:[^"\\]|\\.)+)"')


def used_msgids(folder: Path = Path(__file__).parent) -> dict[str, str]:
    """{msgid: "file:line"} for every ``t("...")`` in the screens' .py and .kv
    files, so a missing translation is found before a patient sees it."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")) + sorted(folder.glob("*.kv")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for msgid in _MSGID.findall(line):
                if msgid != "...":
                    found.setdefault(msgid, f"{path.name}:{n}")
    return found


#: Each language's name in that language, as Babel's locale data gives it
#: (capitalised), for the languages a clinic is likely to offer. Reading
#: Babel's locale data took a noticeable part of the kiosk's start-up; a
#: language not listed here is still named, by Babel, when first needed.
#: ``tests/test_i18n.py`` keeps this table equal to Babel's names.
LANGUAGE_NAMES = {
    "ar": "العربية", "ca": "Català", "de": "Deutsch", "en": "English", "es": "Español",
    "eu": "Euskara", "fa": "فارسی", "fr": "Français", "gl": "Galego", "hi": "हिन्दी",
    "ht": "Kreyòl Ayisyen", "it": "Italiano", "ja": "日本語", "ko": "한국어", "nl": "Nederlands",
    "pl": "Polski", "pt": "Português", "ro": "Română", "ru": "Русский", "so": "Soomaali",
    "uk": "Українська", "vi": "Tiếng Việt", "zh": "中文",
}


def language_name(code: str) -> str:
    """A language's name in that language, for the welcome screen's buttons
    (``"es"`` -> ``"Español"``); the code itself when Babel does not know it."""
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    return babel_language_name(code)


def babel_language_name(code: str) -> str:
    """A language's name in that language from Babel's locale data."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code
    return name[:1].upper() + name[1:]


class Translator:
    """Looks strings up, reading a language's catalogue on first use so
    start-up does not pay for languages nobody picked."""

    def __init__(self, locale_dir: Path = LOCALE_DIR, source_language: str = "en"):
        self.locale_dir = locale_dir
        self.source_language = source_language
        self.catalogues: dict[str, dict[str, str]] = {}

    def catalogue(self, lang: str) -> dict[str, str]:
        if lang not in self.catalogues:
            self.catalogues[lang] = {} if lang == self.source_language else load_catalogue(lang, self.locale_dir)
        return self.catalogues[lang]

    def get(self, msgid: str, lang: str) -> str:
        return self.catalogue(lang).get(msgid, msgid)

    def missing(self, msgids: set[str], lang: str) -> list[str]:
        have = self.catalogue(lang)
        return sorted(m for m in msgids if m not in have)
