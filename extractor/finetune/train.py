"""The LoRA training loop: transformers reads the base GGUF's weights (dequantized), peft adds the adapter, torch
trains it one packed sequence at a time, and the merged weights of the adapted layers come back as arrays."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractor.errors import ConfigError
from extractor.finetune.data import TrainingSequence

log = logging.getLogger("extractor.finetune.train")

# The attention projections: the adapter's targets (LoRA's usual choice; the MLP would triple the merged tensors
# the export writes at full precision).
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 2
    learning_rate: float = 5e-4
    rank: int = 8
    alpha: int = 16
    seed: int = 0
    max_steps: int | None = None  # None: epochs x sequences; 0: no training at all (the export's identity check)


@dataclass
class Trained:
    """What training produced and what it took."""

    weights: dict[str, Any]  # HF parameter name -> merged float32 numpy array, for every adapted layer
    steps: int
    losses: list[float] = field(default_factory=list)
    training_s: float = 0.0
    compute_s: float = 0.0
    device: str = "cpu"


def require() -> None:
    """The extra is installed, or a ConfigError saying how to install it."""
    import importlib.util

    missing = [m for m in ("torch", "transformers", "peft", "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"local fine-tuning needs {', '.join(missing)}: pip install -e '.[finetune]'")


def load_tokenizer(model_path: Path) -> Any:
    """The base GGUF's tokenizer (transformers reads it from the GGUF's metadata)."""
    require()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path.parent), gguf_file=model_path.name)


def load_model(model_path: Path) -> Any:
    """The base GGUF's weights, dequantized to float32, as a transformers causal LM."""
    require()
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-tensor bars would fill a terminal or a CI log: steps are reported
    try:
        return AutoModelForCausalLM.from_pretrained(str(model_path.parent), gguf_file=model_path.name,
                                                    dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ConfigError(f"transformers cannot read the weights of {model_path} ({exc}): fine-tune a GGUF whose "
                          "architecture and quantization transformers reads (SmolLM2's llama, Q4_1)") from None


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def train(model: Any, sequences: Sequence[TrainingSequence], settings: TrainSettings,
          progress: Callable[[int, int, float], None] | None = None) -> Trained:
    """Train a LoRA adapter on `sequences` (shuffled each epoch with the seed), merge it, and return the adapted
    layers' merged weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(settings.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    where = device()
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, target_modules=list(TARGETS),
                        bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config).to(where)
    order: list[int] = []
    rng = random.Random(settings.seed)
    for _ in range(settings.epochs):
        epoch = list(range(len(sequences)))
        rng.shuffle(epoch)
        order += epoch
    if settings.max_steps is not None:
        order = order[: settings.max_steps]
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=settings.learning_rate)
    losses: list[float] = []
    peft_model.train()
    wall, cpu = time.perf_counter(), time.process_time()
    for step, index in enumerate(order, 1):
        seq = sequences[index]
        ids = torch.tensor([seq.input_ids], device=where)
        labels = torch.tensor([seq.labels], device=where)
        loss = peft_model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, len(order), losses[-1])
    training_s, compute_s = time.perf_counter() - wall, time.process_time() - cpu
    merged = peft_model.merge_and_unload()
    weights = {name: param.detach().to("cpu", torch.float32).numpy().copy()
               for name, param in merged.named_parameters()
               if name.endswith(".weight") and any(f".{t}." in name for t in TARGETS)}
    return Trained(weights=weights, steps=len(order), losses=losses, training_s=round(training_s, 3),
                   compute_s=round(compute_s, 3), device=where)
