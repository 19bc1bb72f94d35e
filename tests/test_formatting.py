"""extractor.formatting: the one place money, numbers and percentages are turned into text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from extractor.formatting import number, pct, usd, usd_as_given

from .conftest import ROOT


@pytest.mark.parametrize(("value", "text"), [
    (0, "$0"),
    (0.0, "$0"),
    (0.000973, "$0.000973"),  # a typical per-document cost keeps three significant digits
    (0.0012345, "$0.00123"),
    (0.0417, "$0.0417"),
    (0.05, "$0.0500"),
    (0.5, "$0.500"),
    (0.99, "$0.990"),
    (0.9996, "$1.00"),  # rounds up to a dollar: printed as one, not "$1.000"
    (1, "$1.00"),
    (12.345, "$12.35"),  # cents from a dollar up
    (1234.5, "$1,234.50"),
    (-0.25, "-$0.250"),
    (-1234.5, "-$1,234.50"),
])
def test_usd_adapts_its_precision_to_the_amount(value: float, text: str) -> None:
    assert usd(value) == text


def test_usd_says_unknown_for_no_value() -> None:
    assert usd(None) == "unknown"
    assert usd(None, unknown="?") == "?"
    assert usd(None, "no price") == "no price"


@pytest.mark.parametrize(("value", "text"), [(0.15, "$0.15"), (1.5, "$1.5"), (2.0, "$2"), (1e-7, "$1e-07")])
def test_usd_as_given_is_the_shortest_form(value: float, text: str) -> None:
    assert usd_as_given(value) == text


def test_pct() -> None:
    assert pct(0.873) == "87%"
    assert pct(0.873, 1) == "87.3%"
    assert pct(1.0) == "100%"
    assert pct(0) == "0%"
    assert pct(None) == "-"
    assert pct(None, unknown="n/a") == "n/a"


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (3.0, "3"), (2.5, "2.5"), (9.96, "10"), (10.4, "10"),
                                             (1234.6, "1,235"), (1_000_000, "1,000,000")])
def test_number(value: float, text: str) -> None:
    assert number(value) == text


def test_formatting_is_a_bottom_layer() -> None:
    tree = ast.parse((ROOT / "extractor" / "formatting.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name == "extractor" or name.startswith("extractor.") for name in imported), imported


def _extractor_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.startswith("extractor.views.htmlreport")}


def test_report_parts_depend_only_on_earlier_parts() -> None:
    package, pkg = ROOT / "extractor" / "views" / "htmlreport", "extractor.views.htmlreport"
    assert _extractor_imports(package / "data.py") == set()
    assert _extractor_imports(package / "charts.py") == {f"{pkg}.data"}
    assert _extractor_imports(package / "html.py") == {f"{pkg}.data", f"{pkg}.charts"}
    assert _extractor_imports(package / "terminal.py") == {f"{pkg}.data"}
