"""The docs site keeps up with the code: every command and every setting is named in docs/, every command
also in a guide (not only in the generated reference), and the generated reference is current.

A new command, option or setting fails here until `python scripts/docgen.py` has regenerated the reference
and (for a setting) `scripts/docgen.py` describes it; a new command until a guide shows it in use.
"""

from __future__ import annotations

import dataclasses
import sys

import pytest

from extractor.config import ModelPrice, RunConfig
from extractor.llm.pricing import FinetunePrice

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import docgen

DOCS = ROOT / "docs"


def _text(*folders: str) -> str:
    pages = [p for f in folders for p in sorted((DOCS / f).rglob("*.md"))] if folders else sorted(DOCS.rglob("*.md"))
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


ALL = _text()
GUIDES = _text("guides") + (DOCS / "index.md").read_text(encoding="utf-8")
CONFIG_PAGE = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
COMMANDS = [" ".join(path) for path in docgen.commands()]
SETTINGS = [f.name for f in dataclasses.fields(RunConfig)]
TABLE_KEYS = sorted({f.name for f in dataclasses.fields(ModelPrice)} |
                    {f.name for f in dataclasses.fields(FinetunePrice)} - {"model"})


def test_the_app_has_commands() -> None:
    assert {"run", "export", "eval", "experiment", "breakeven"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_docs(command: str) -> None:
    assert f"## extractor {command}\n" in ALL, f"run `python scripts/docgen.py`: `extractor {command}` has no --help"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_shown_in_a_guide(command: str) -> None:
    assert f"extractor {command}" in GUIDES, f"no guide in docs/guides/ shows `extractor {command}` in use"


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_setting_is_in_the_settings_reference(setting: str) -> None:
    assert f"| `{setting}` |" in CONFIG_PAGE, f"run `python scripts/docgen.py`: setting {setting} is not in the docs"


@pytest.mark.parametrize("key", TABLE_KEYS)
def test_every_price_table_key_is_in_the_settings_reference(key: str) -> None:
    assert f"| `{key}` |" in CONFIG_PAGE


def test_a_setting_without_a_description_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    described = dict(docgen.SETTINGS)
    described.pop("grace_s")
    monkeypatch.setattr(docgen, "SETTINGS", described)
    with pytest.raises(docgen.Undocumented, match="grace_s"):
        docgen.config_reference()


def test_the_generated_reference_is_current() -> None:
    assert docgen.run_cog(check=True) == 0, "the generated docs are out of date: run `python scripts/docgen.py`"


def test_the_pages_name_the_images_they_show() -> None:
    for image in ("morning-after.png", "review.png", "review-app-queue.png", "review-app-document.png"):
        assert (DOCS / image).is_file() and f"../{image})" in GUIDES
