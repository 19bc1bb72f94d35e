"""The ladder: when prompting has hit its wall and fine-tuning pays.

- `experiment`: variants of the run settings measured on the labeled documents;
- `breakeven`: the cost model and the comparison of measured options against a fine-tuned model;
- `finetune`: the fine-tuning export (chat JSONL in the request format the backend sends).

May import: `extraction`, `quality` and everything below them; never `views` or the CLI.
"""
