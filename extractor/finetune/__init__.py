"""Local fine-tuning: a LoRA adapter of the embedded model trained on the labels store, merged into a GGUF the
embedded llama.cpp server loads, with a manifest of what it was trained on.

- `data`: the held-back split (by document sha, seeded) and the training sequences: each document's field
  questions (`extraction.fields.answered_questions`, the strategy's own prompts) answered from its labels and
  packed after the document, in the model's chat template, with the loss on the answers only;
- `train`: the LoRA training loop (torch, transformers reading the GGUF's weights, peft), on CPU or an
  accelerator;
- `export`: the merged weights written into a copy of the base GGUF (its metadata and tokenizer; llama.cpp's
  row order of the attention's q and k weights);
- `local`: `extractor finetune-local`'s settings and entry point: select (as `export finetune` does), split,
  pack, train, export, write the manifest (`llm.finetuned`).

torch, transformers, peft and gguf are the optional extra `finetune`, imported only inside the functions that
need them (`extractor --help` never loads them).

May import: `ladder`, `extraction`, `quality`, `llm` and everything below them; never `views` or the CLI.
"""
