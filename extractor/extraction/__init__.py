"""A run: from a folder of files to committed rows.

- `intake`: the decision per file (`Unreadable | Carry | Pending | Fresh`) every path walks;
- `runner`: the async run (concurrency, stop rules, checkpoints) over a backend;
- `work`: a ready document extracted and grounded into its row, the part an engine may move elsewhere;
- `rayengine`: `engine = "ray"`, that work in Ray actors while the intake and the journal stay in the driver;
- `recorder`: a document's row, its evidence and accounting, committed to the journal;
- `batch`: the Batch API's books (submit, adopt, collect) over the same intake and recorder;
- `plan`: the dry run; `budget`: `--max-cost` and token estimates; `lock`: one run per output folder;
- `prompts`: the messages sent (document text is data, never template source);
- `retrieval`: examples chosen for a document (static, BM25, embeddings);
- `fields`: the field-by-field strategy of small local models;
- `routing`: `--schema auto`, each document to the schema of its kind or to none; `shapes`: the kinds' shapes
  (a letter's greeting and sign-off, a CV's spans of years and headings) it counts as hints.

May import: `llm`, `store`, `values`, `documents` and the shared top modules; never `quality`, `ladder`,
`views` or the CLI.
"""
