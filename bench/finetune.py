"""The ladder's top rung measured: the embedded model fine-tuned locally on labeled letters, scored on held-back ones.

Not a test: prints what it measured (and writes it as JSON with `--json FILE`). The dataset is the 24 labeled
cover letters of `inputs/` (`bench/labels/cover_letters.jsonl`):

1. result rows for the letters come from a run against the fake OpenAI-compatible server (the selection `export
   finetune` makes reads result rows; every value it trains on is a label, since the labels file covers every
   field of every letter);
2. the labels go into the labels store; `finetune-local`'s library call (`extractor.finetune.local`) holds back a
   seeded share of them by document sha and trains a LoRA adapter of SmolLM2-135M on the rest, on this machine's
   CPU (an accelerator where torch sees one);
3. `extractor experiment`'s library call scores `examples=static` (today's prompt), `examples=similar:3`
   (retrieved examples, from every other labeled letter) and `model_path=<the fine-tuned GGUF>` on the held-back
   letters only (the experiment leaves out every document the model was trained on, for every variant);
4. `extractor breakeven --target`'s library call reads the result and its recommendation is printed.

    python bench/finetune.py                               # held back 25% (6 of 24), 2 epochs
    python bench/finetune.py --epochs 1 --max-steps 6      # a smoke run
    python bench/finetune.py --seed 1 --json out.json      # another held-back draw
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.finetune.local import LocalFinetuneConfig, finetune_local  # noqa: E402
from extractor.ladder.breakeven import BreakEvenConfig, decide  # noqa: E402
from extractor.ladder.costmodel import Assumptions  # noqa: E402
from extractor.ladder.experiment import ExperimentConfig, run_experiment  # noqa: E402
from extractor.quality.evaluation import store_labels_file  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.store import Labels  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"
INPUTS = ROOT / "inputs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held-back", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--variants", default="examples=static;examples=similar:3",
                        help="the prompting rungs to score beside the fine-tuned model (';'-separated SPECs)")
    parser.add_argument("--docs-per-month", type=float, default=1000.0, help="volume for breakeven")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    try:
        shutil.copytree(INPUTS, work / "in")
        flags: dict[str, Any] = {"input_dir": work / "in", "schemas_dir": ROOT / "schemas", "output_dir": work / "out",
                                 "schema": "cover_letter"}
        server = FakeOpenAI()
        server.start()
        try:
            rows = runner.run(build_config({**flags, "base_url": server.base_url, "api_key": "sk-bench-0000",
                                            "model": "gpt-4o-mini", "concurrency": 4}, env={}))
        finally:
            server.stop()
        settings = build_config(flags, env={})
        schema = load_schema(ROOT / "schemas", "cover_letter")
        with Labels(settings.layout.journal) as labels:
            imported, rejected = store_labels_file(labels, LABELS, schema)
        print(f"letters: {rows.ok} result rows, {imported} labels stored ({len(rejected)} rejected)", flush=True)

        started = time.perf_counter()
        last = [time.perf_counter()]

        def progress(step: int, steps: int, loss: float) -> None:
            now = time.perf_counter()
            print(f"  step {step}/{steps}: loss {loss:.4f} ({now - last[0]:.1f} s)", flush=True)
            last[0] = now

        report = finetune_local(LocalFinetuneConfig(settings=settings, held_back=args.held_back, seed=args.seed,
                                                    epochs=args.epochs, learning_rate=args.learning_rate,
                                                    max_steps=args.max_steps), progress)
        finetune_s = time.perf_counter() - started
        print(report.as_text(), flush=True)
        m = report.manifest

        variants = (*[v for v in args.variants.split(";") if v], f"model_path={report.model_path}")
        started = time.perf_counter()
        experiment = run_experiment(ExperimentConfig(settings=settings, variants=variants))
        experiment_s = time.perf_counter() - started
        measured = []
        for v in experiment.variants:
            o = v.overall
            measured.append({"variant": v.spec, "documents": o["documents"], "accuracy": o["accuracy"],
                             "labeled_values": o["labeled_values"], "latency_s_per_doc": o["latency_s_per_doc"],
                             "compute_s_per_doc": o.get("compute_s_per_doc")})
        decision = decide(BreakEvenConfig(settings=settings, target=0.95,
                                          assumptions=Assumptions(docs_per_month=args.docs_per_month)))
        text = decision.text()
        result = {
            "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "held_back": m.held_back_doc_ids, "trained_on": len(m.train_doc_ids), "steps": m.steps,
            "sequences": m.sequences, "tokens_per_epoch": m.tokens, "training_s": m.training_s,
            "training_cpu_s": m.compute_s, "device": m.device, "loss_first": m.loss_first, "loss_last": m.loss_last,
            "finetune_command_s": round(finetune_s, 1), "experiment_s": round(experiment_s, 1),
            "variants": measured, "breakeven": text,
            "settings": {"held_back": args.held_back, "epochs": args.epochs, "seed": args.seed,
                         "learning_rate": args.learning_rate, "max_steps": args.max_steps},
        }
        print(f"\nheld back: {len(m.held_back_doc_ids)} letters ({', '.join(m.held_back_doc_ids)})")
        print(f"training: {len(m.train_doc_ids)} letters, {m.steps} steps, {m.training_s:.0f} s wall "
              f"({m.compute_s:.0f} CPU s) on {m.device}; finetune-local took {finetune_s:.0f} s in all")
        print(f"{'variant':<60} {'docs':>4} {'accuracy':>9} {'values':>6} {'s/doc':>6}")
        for row in measured:
            accuracy = f"{row['accuracy']:.1%}" if row["accuracy"] is not None else "-"
            latency = f"{row['latency_s_per_doc']:.1f}" if row["latency_s_per_doc"] is not None else "-"
            print(f"{row['variant'][-60:]:<60} {row['documents']:>4} {accuracy:>9} {row['labeled_values']:>6} "
                  f"{latency:>6}")
        print("\nextractor breakeven --target 0.95:\n" + text)
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
