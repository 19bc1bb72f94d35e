"""The defaults of what the ladder assumes rather than measures, in one module that imports nothing: the cost
model's `Assumptions`, the fine-tuning export and the command line's help all read them from here (the CLI
shows them without importing the cost model, so `extractor --help` stays fast)."""

FINETUNE_TARGET = "gpt-4.1-nano-2025-04-14"  # a model in the fine-tuning price table (extractor/data)
TRAINING_EXAMPLES = 500  # labelled documents a fine-tune is priced (and later trained) on
EPOCHS = 3
REASK_RATE_FINETUNED = 0.02  # extra requests a document after fine-tuning (validation re-asks)
