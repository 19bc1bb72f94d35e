"""Quality against labels: `evaluation` scores results against the labels store (field by field, with the
same comparison as consistency), `calibration` maps label-free confidence to measured accuracy, `routing` scores
`--schema auto`'s routes against re-routes and labeled documents.

May import: `values`, `store`, `documents`, `llm` and the shared top modules; never `extraction`, `ladder`,
`views` or the CLI.
"""
