"""The ladder: when prompting has hit its wall and fine-tuning pays.

- `experiment`: variants of the run settings measured on the labeled documents;
- `breakeven`: `extractor breakeven`'s settings and entry points (what it reads where, the `Decision`), over
  - `costmodel`: the workload the journal observed, the assumptions, and prompting vs fine-tuned vs the Batch API
    in numbers;
  - `compare`: the variants experiments.parquet measured, against each other and the fine-tuned model, priced,
    with the 95% interval of each accuracy, and the one verdict read off the numbers (`choose`: keep prompting,
    use retrieved examples, try a stronger model with the same prompt, or fine-tune);
  - `verdict`: the words: the text blocks, the one verdict and every assumption spelled out;
- `finetune`: the fine-tuning export (chat JSONL in the request format the backend sends).

May import: `extraction`, `quality` and everything below them; never `views` or the CLI.
"""
