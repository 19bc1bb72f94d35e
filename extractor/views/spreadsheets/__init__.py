"""Spreadsheets both ways: safe XLSX/CSV exports of the latest results, and people's edits back in.

Export flattens the typed rows for people (lists joined with "; ", nested objects as `salary.min`
columns, dates as dates, numbers as numbers, each column with a number format that shows its values)
and applies people's corrections (named in `corrected`); a labels file is a measuring stick for `eval`, so
the cells keep what the model said. Document text is untrusted, so no exported cell can become a formula: XLSX
text cells are written as strings, CSV text starting with = + - @ tab or CR gets a leading apostrophe.

Each field cell says where its value came from (evidence.parquet, extractor.values.evidence): a value not found in the
document is filled red and its comment says so (for a list, which items); a value found carries the document's
quote as a comment (with its page for PDFs, and how it matched when not verbatim); derived values carry none.
`needs_review` and `grounded` stand next to `status`.

Every export leaves a snapshot of the field cells it wrote next to the file (`.results.xlsx.exported.json`),
and an XLSX carries the export's id as a document property. Import diffs an edited file against that snapshot (what
the person saw), validates each edit with the schema (its validators included) and stores the good ones
as a person's labels. An export refuses to replace a file whose cells hold edits that were not imported.

- `cells`: flattening rows into cells, a cell's canonical text, reading an edited file back;
- `snapshot`: what an export wrote, and the guard against replacing unimported edits;
- `notes`: evidence as cell notes; `xlsx`: formats, widths and the XLSX writer;
- `export` and `imports`: the two library entry points (`export_routes`: `--schema auto`'s routes sheet, read
  back by `extractor route --import`).
"""

from extractor.views.spreadsheets.cells import FORMULA_TRIGGERS, flatten, neutralize_csv
from extractor.views.spreadsheets.export import DEFAULT_CSV_ENCODING, ExportConfig, export, export_routes
from extractor.views.spreadsheets.imports import ImportConfig, ImportReport, import_corrections
from extractor.views.spreadsheets.notes import NOT_FOUND, CellNote, NotFoundTally, _column_of, cell_notes
from extractor.views.spreadsheets.snapshot import snapshot_path, unimported_edits

__all__ = [
    "DEFAULT_CSV_ENCODING", "FORMULA_TRIGGERS", "NOT_FOUND", "CellNote", "ExportConfig", "ImportConfig",
    "ImportReport", "NotFoundTally", "_column_of", "cell_notes", "export", "export_routes", "flatten",
    "import_corrections",
    "neutralize_csv", "snapshot_path", "unimported_edits",
]
