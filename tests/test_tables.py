"""Table rows found without a model (`extractor.values.tables`), in the shapes the parsers render tables, written
here by hand rather than by the sample generator (so the finder is not checked only against its own samples)."""

from __future__ import annotations

from extractor.values.tables import table


def cells(text: str) -> list[list[object]]:
    found = table(text)
    assert found is not None
    return [[c.number if c.number is not None else c.text for c in row.cells] for row in found.rows]


def test_pipes_as_docx_and_markdown_render_them() -> None:
    text = ("Order 7781\n| Item | Hours | Rate | Total |\n|---|--:|--:|--:|\n"
            "| Audit, phase 2 | 12,5 | 90,00 | 1.125,00 |\n| Travel | 1 | 45,00 | 45,00 |\n\nTotal: 1.170,00")
    assert cells(text) == [["Audit, phase 2", 12.5, 90.0, 1125.0], ["Travel", 1.0, 45.0, 45.0]]
    assert table(text).header == ("Item", "Hours", "Rate", "Total")  # type: ignore[union-attr]
    docx = "Item | Qty | Price\nBolts M8 | 200 | 0.12\nWashers | 200 | 0.03"
    assert cells(docx) == [["Bolts M8", 200.0, 0.12], ["Washers", 200.0, 0.03]]


def test_aligned_columns_without_a_position_column() -> None:
    text = """ACME Tools GmbH
Artikel                 Anzahl   Preis      Summe
-------------------------------------------------
Akkuschrauber 18 V           2   129,00 €   258,00 €
Bits-Set, 32-teilig          1    19,90 €    19,90 €

Summe netto                          277,90 €
"""
    assert cells(text) == [["Akkuschrauber 18 V", 2.0, 129.0, 258.0], ["Bits-Set, 32-teilig", 1.0, 19.9, 19.9]]
    found = table(text)
    assert found is not None and found.header == ("Artikel", "Anzahl", "Preis", "Summe")
    assert [found.position(i) for i in range(found.width)] == [False] * 4


def test_single_spaced_pdf_lines_keep_a_description_that_ends_in_a_number() -> None:
    text = ("Invoice 55\n1 Cable ties, pack of 50 3 $4.10 $12.30\n2 Shelf bracket 2 $7.00 $14.00\n"
            "3 Desk lamp, LED 1 $23.10 $23.10\nPage 1\n4 Paper A4 (box of 5) 2 $30.00 $60.00\nTotal $109.40")
    assert cells(text) == [[1.0, "Cable ties, pack of 50", 3.0, 4.1, 12.3], [2.0, "Shelf bracket", 2.0, 7.0, 14.0],
                           [3.0, "Desk lamp, LED", 1.0, 23.1, 23.1], [4.0, "Paper A4 (box of 5)", 2.0, 30.0, 60.0]]
    found = table(text)
    assert found is not None and found.position(0) and not found.position(2)


def test_codes_and_thousands_in_every_notation() -> None:
    text = ("1 Beratung 2 CHF 1'250.00 CHF 2'500.00\n2 Reise 1 CHF 300.00 CHF 300.00\n"
            "3 Matériel 4 1\u00a0095,00 EUR 4\u00a0380,00 EUR\n")
    assert [row[2:] for row in cells(text)] == [[2.0, 1250.0, 2500.0], [1.0, 300.0, 300.0], [4.0, 1095.0, 4380.0]]


def test_a_letter_has_no_table() -> None:
    assert table("Dear team,\n\nI have 8 years of experience in Python and 3 in Go.\n\nBest, Ana") is None
