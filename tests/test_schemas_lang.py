"""The cover-letter schema's language field: langcodes decides what a language is, so codes no standard
defines ("xx") are rejected and names in any language ("Deutsch", "français") are understood."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from extractor.schemas import load_schema

from .conftest import ROOT

COVER = load_schema(ROOT / "schemas", "cover_letter")

# The hand-written table the schema had before langcodes: ISO 639-1 code -> ISO 639-2/B, 639-2/T codes and
# English names. Every entry is correct, so every entry must still be accepted and mean the same code.
OLD_TABLE = {
    "ar": ("ara", "arabic"), "bg": ("bul", "bulgarian"), "bn": ("ben", "bengali"), "ca": ("cat", "catalan"),
    "cs": ("ces", "cze", "czech"), "da": ("dan", "danish"), "de": ("deu", "ger", "german"),
    "el": ("ell", "gre", "greek"), "en": ("eng", "english"), "es": ("spa", "spanish"),
    "et": ("est", "estonian"), "fa": ("fas", "per", "persian", "farsi"), "fi": ("fin", "finnish"),
    "fr": ("fra", "fre", "french"), "he": ("heb", "hebrew"), "hi": ("hin", "hindi"),
    "hr": ("hrv", "croatian"), "hu": ("hun", "hungarian"), "id": ("ind", "indonesian"),
    "it": ("ita", "italian"), "ja": ("jpn", "japanese"), "ko": ("kor", "korean"),
    "lt": ("lit", "lithuanian"), "lv": ("lav", "latvian"), "ms": ("msa", "may", "malay"),
    "nl": ("nld", "dut", "dutch"), "no": ("nor", "norwegian"), "pl": ("pol", "polish"),
    "pt": ("por", "portuguese"), "ro": ("ron", "rum", "romanian"), "ru": ("rus", "russian"),
    "sk": ("slk", "slo", "slovak"), "sl": ("slv", "slovenian"), "sr": ("srp", "serbian"),
    "sv": ("swe", "swedish"), "ta": ("tam", "tamil"), "th": ("tha", "thai"), "tr": ("tur", "turkish"),
    "uk": ("ukr", "ukrainian"), "ur": ("urd", "urdu"), "vi": ("vie", "vietnamese"),
    "zh": ("zho", "chi", "chinese", "mandarin"),
}


def language(given: str) -> str:
    return COVER.model.model_validate({"applicant_name": "Ada", "language": given}).language  # type: ignore[attr-defined]


def test_every_entry_of_the_old_table_still_means_its_code() -> None:
    wrong = {alias: language(alias) for code, aliases in OLD_TABLE.items() for alias in (code, *aliases)
             if language(alias) != code}
    wrong |= {alias.title(): language(alias.title()) for code, aliases in OLD_TABLE.items() for alias in aliases
              if len(alias) > 3 and language(alias.title()) != code}
    assert wrong == {}


@pytest.mark.parametrize(("given", "expected"), [
    ("de", "de"), ("German", "de"), ("Deutsch", "de"), ("en-US", "en"), ("en_GB", "en"), ("EN", "en"),
    ("français", "fr"), ("Spanish", "es"), ("español", "es"), ("Nederlands", "nl"), ("日本語", "ja"),
    ("русский", "ru"), ("zh-Hant-TW", "zh"), ("cmn", "zh"), ("Brazilian Portuguese", "pt"),
    ("English (US)", "en"), ("English language", "en"),
    # deprecated ISO 639-1 codes become their replacements
    ("iw", "he"), ("in", "id"), ("sh", "sr"),
    # valid codes that CLDR would rewrite to a three-letter code or a macrolanguage keep their own
    ("tl", "tl"), ("Tagalog", "tl"), ("tw", "tw"), ("nb", "nb"),
    # four-letter names parse as (invalid) tags, but are names
    ("Thai", "th"), ("Urdu", "ur"), ("Zulu", "zu"),
])
def test_codes_tags_and_names_are_normalized(given: str, expected: str) -> None:
    assert language(given) == expected


@pytest.mark.parametrize("given", [
    "xx", "zz", "qq", "XX", "xx-US", "ci", "xyz", "qaa", "und", "zxx", "tlh", "Klingon", "fil", "Swiss German",
    "Latn", "Gibberish", "", " ", "e", "e1", "-en", "n/a",
])
def test_made_up_codes_and_languages_without_an_iso_639_1_code_are_rejected(given: str) -> None:
    with pytest.raises(ValidationError, match="language must be the ISO 639-1 two-letter code"):
        language(given)


@pytest.mark.integration
def test_the_cli_does_not_import_langcodes() -> None:
    """`extractor --help` stays fast: langcodes (~50 ms) comes with the schema, which the CLI loads per run."""
    code = "import sys, extractor.cli; print('langcodes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
