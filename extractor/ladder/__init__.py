"""The ladder: when prompting has hit its wall and fine-tuning pays.

- `experiment`: variants of the run settings measured on the labeled documents;
- `breakeven`: `extractor breakeven`'s settings and entry points (what it reads where, the `Decision`), over
  - `costmodel`: the workload the journal observed, the assumptions, and prompting vs fine-tuned vs the Batch API
    in numbers;
  - `compare`: the variants experiments.parquet measured, against each other and the fine-tuned model, priced,
    and the choices for a target;
  - `verdict`: the words: the text blocks, the recommendations and every assumption spelled out;
- `finetune`: the fine-tuning export (chat JSONL in the request format the backend sends).

May import: `extraction`, `quality` and everything below them; never `views` or the CLI.
"""
