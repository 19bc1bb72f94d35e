"""`extractor finetune-local`: select, split, pack, train, export, and record what was done."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from extractor.config import RunConfig
from extractor.documents.sources import sha256_file
from extractor.errors import ConfigError
from extractor.extraction.fields import answered_questions
from extractor.finetune.data import Split, TrainingSequence, data_digest, held_back_split, pack
from extractor.finetune.export import write_merged
from extractor.finetune.train import TrainSettings, load_model, load_tokenizer, require, train
from extractor.ladder import assumed
from extractor.ladder.finetune import Example, FinetuneConfig, Selection, Skipped, select_examples
from extractor.llm.embedded import default_model_path
from extractor.llm.finetuned import Manifest

FEW_HELD_BACK = 5  # below this many held-back documents an accuracy's 95% interval spans tens of points


@dataclass(frozen=True)
class LocalFinetuneConfig:
    """`extractor finetune-local`: the invocation's settings (schema, folders, --model-path as the base model) and
    the training's own."""

    settings: RunConfig
    held_back: float = 0.25  # of the labeled documents, never trained on: the experiment scores these
    seed: int = 0
    epochs: int = 2
    learning_rate: float = 5e-4
    rank: int = 8
    max_steps: int | None = None  # None: epochs x sequences; 0: export the base weights untrained
    max_tokens: int = 2048  # of one packed sequence (a document and its questions)
    min_agreement: float = 0.9  # unlabelled rows as `export finetune` takes them

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, not {self.epochs}")
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be above 0, not {self.learning_rate}")
        if self.rank < 1:
            raise ConfigError(f"--rank must be at least 1, not {self.rank}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ConfigError(f"--max-steps must be 0 or more, not {self.max_steps}")
        if self.max_tokens < 256:
            raise ConfigError(f"--max-tokens must be at least 256, not {self.max_tokens}")

    def training(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, learning_rate=self.learning_rate, rank=self.rank, alpha=2 * self.rank,
                             seed=self.seed, max_steps=self.max_steps)


@dataclass
class LocalFinetuneReport:
    schema: str
    model_path: Path
    manifest: Manifest
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        m = self.manifest
        loss = (f", loss {m.loss_first:.3f} -> {m.loss_last:.3f}" if m.loss_first is not None
                and m.loss_last is not None else "")
        lines = [
            f"Fine-tuned {m.base_model} for {self.schema} -> {self.model_path}",
            f"  trained on:  {len(m.train_doc_ids)} document(s), {m.sequences} sequence(s), {m.tokens:,} tokens an "
            f"epoch, {m.steps} step(s){loss}",
            f"  held back:   {len(m.held_back_doc_ids)} labeled document(s), never trained on",
            f"  took:        {m.training_s:,.1f} s training on {m.device} ({m.compute_s:,.1f} CPU s)",
        ]
        if self.skipped:
            shown = ", ".join(f"{s.doc_id}: {s.kind}" for s in self.skipped[:5])
            lines.append(f"  skipped:     {len(self.skipped)} ({shown})")
        lines += [f"  note: {n}" for n in m.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += ["Next:",
                  f"  1. score it on the held-back documents: extractor experiment INPUT_DIR --variant "
                  f"model_path={self.model_path}",
                  "  2. read the verdict: extractor breakeven --target 0.95"]
        return "\n".join(lines)


def _template(model_path: Path) -> str:
    import gguf

    reader = gguf.GGUFReader(str(model_path))
    template = reader.fields.get("tokenizer.chat_template")
    if template is None:
        raise ConfigError(f"{model_path} carries no chat template: the embedded server would not know how to "
                          "prompt it either")
    return str(template.contents())


@dataclass
class Prepared:
    """What training will learn from, before anything heavy is loaded: the selection, the split and the
    training examples (the held-back ones and any copy of their bytes left out)."""

    base: Path
    selection: Selection
    split: Split
    training: list[Example]
    warnings: list[str]


def prepare(config: LocalFinetuneConfig) -> Prepared:
    """Select as `export finetune` does, hold back a seeded share of the labeled documents (refusing when fewer
    than two can be used) and say what is thin."""
    settings = config.settings
    base = settings.model_path or default_model_path()
    selection = select_examples(FinetuneConfig(settings, min_agreement=config.min_agreement))
    split = held_back_split([(e.doc_id, e.sha256) for e in selection.labeled], config.held_back, config.seed)
    held = set(split.held_back)
    held_shas = {e.sha256 for e in selection.labeled if e.doc_id in held and e.sha256}
    training = [e for e in selection.examples if e.doc_id not in held and e.sha256 not in held_shas]
    warnings: list[str] = []
    if len(split.held_back) < FEW_HELD_BACK:
        warnings.append(f"{len(split.held_back)} held-back document(s): an accuracy measured on so few has a wide "
                        "interval; label more to narrow it")
    if len(training) < assumed.TRAINING_EXAMPLES:
        warnings.append(f"{len(training)} training document(s), far below the {assumed.TRAINING_EXAMPLES} "
                        "`extractor breakeven` assumes a fine-tune needs: measure it before relying on it")
    return Prepared(base, selection, split, training, warnings)


def finetune_local(config: LocalFinetuneConfig,
                   progress: Callable[[int, int, float], None] | None = None) -> LocalFinetuneReport:
    """Train a LoRA adapter of the embedded model (or `--model-path`) on the labels store and write the merged
    GGUF and its manifest under the layout's `finetuned/` folder (see the package docstring)."""
    prepared = prepare(config)
    require()
    settings = config.settings
    base, selection, split, training = prepared.base, prepared.selection, prepared.split, prepared.training
    schema, report = selection.schema, selection.report
    tokenizer = load_tokenizer(base)
    template = _template(base)
    end_of_turn = str(tokenizer.eos_token or "")

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    sequences: list[TrainingSequence] = []
    notes: list[str] = []
    for example in training:
        answered = asyncio.run(answered_questions(schema, example.text, example.values))
        packed = pack(example.doc_id, example.text, answered, template, encode, end_of_turn, config.max_tokens)
        if not packed:
            notes.append(f"{example.doc_id}: its first question is longer than --max-tokens {config.max_tokens}; "
                         "not trained on")
        sequences += packed
    if not sequences:
        raise ConfigError("no training sequence: every training document's questions were empty or too long "
                          f"(--max-tokens {config.max_tokens})")
    trained_on = sorted({s.doc_id for s in sequences})
    digest = data_digest(sequences)
    train_settings = config.training()
    recorded = {**asdict(train_settings), "held_back": config.held_back, "max_tokens": config.max_tokens,
                "min_agreement": config.min_agreement, "targets": "q_proj,k_proj,v_proj,o_proj"}
    base_sha = sha256_file(base)  # ~100 MB: read once, for the name and the manifest
    name = f"{base.stem}-ft-" + hashlib.sha256(
        json.dumps([digest, recorded, base_sha], sort_keys=True).encode()).hexdigest()[:10]

    model = load_model(base)
    result = train(model, sequences, train_settings, progress)
    out = settings.layout.finetuned_model(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_merged(base, out, result.weights)
    by_id = {e.doc_id: e for e in selection.examples}
    manifest = Manifest(
        schema=schema.name, base_model=base.name, base_sha256=base_sha, data_digest=digest, settings=recorded,
        train_doc_ids=trained_on, train_shas=[by_id[d].sha256 for d in trained_on],
        held_back_doc_ids=split.held_back, held_back_shas=[by_id[d].sha256 for d in split.held_back],
        training_s=result.training_s, compute_s=result.compute_s, device=result.device, steps=result.steps,
        sequences=len(sequences), tokens=sum(len(s.input_ids) for s in sequences),
        loss_first=result.losses[0] if result.losses else None,
        loss_last=result.losses[-1] if result.losses else None,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), notes=notes)
    manifest.write(out)
    return LocalFinetuneReport(schema=schema.name, model_path=out, manifest=manifest, skipped=report.skipped,
                               warnings=prepared.warnings)
