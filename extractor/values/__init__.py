"""Values: what a field's value is, how two values compare, and where a value stands in its document.

- `metrics`: how each field kind compares (the kinds are `schemas.FieldKind`), leaves of a record, normalization
  and similarity, scores and consensus;
- `evidence`: grounding a value in the document text (exact, normalized, fuzzy, not found) with its span;
- `detect`: typed candidates found deterministically in a text (e-mails, phones, dates, money, languages);
- `tables`: the rows of a document's table (line items), found deterministically in the text as the parsers
  render it, each cell with its span and number.

May import: the shared top modules only (`config`, `errors`, `schemas`, `table`, `layout`, `formatting`).
"""
