"""A locally fine-tuned model file and its manifest: what it was trained on, from what, how long.

`extractor finetune-local` writes `NAME.gguf` and `NAME.manifest.json` beside it; anything that serves or
scores a model file (`--model-path`, an experiment's `model_path=` variant) reads the manifest to know which
documents the model has seen, so that none of them is ever scored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from extractor.errors import ConfigError

MANIFEST_VERSION = 1


def manifest_path(model_path: Path) -> Path:
    """`NAME.gguf` -> `NAME.manifest.json`."""
    return model_path.with_suffix(".manifest.json")


@dataclass(frozen=True)
class Manifest:
    """What a fine-tuned model was made of (JSON beside the model file)."""

    schema: str
    base_model: str  # the base GGUF's file name
    base_sha256: str
    data_digest: str  # sha256 over the training sequences' token ids and loss masks
    settings: dict[str, Any]  # epochs, learning rate, LoRA rank, seed, held-back fraction, ...
    train_doc_ids: list[str]
    train_shas: list[str]  # the training documents' content sha256, parallel to train_doc_ids
    held_back_doc_ids: list[str]
    held_back_shas: list[str]
    training_s: float  # wall seconds of the training loop (loading and export apart)
    compute_s: float  # CPU seconds of the process over the training loop
    device: str  # "cpu", "cuda", ...
    steps: int
    sequences: int  # packed training sequences (one per document, more where a document's questions overflow)
    tokens: int  # training tokens per epoch
    loss_first: float | None = None
    loss_last: float | None = None
    created: str = ""
    notes: list[str] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    @property
    def trained_on(self) -> frozenset[str]:
        """Every doc_id and content sha the model was trained on: neither may be scored."""
        return frozenset(self.train_doc_ids) | frozenset(s for s in self.train_shas if s)

    def write(self, model_path: Path) -> Path:
        path = manifest_path(model_path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def read_manifest(model_path: Path | None) -> Manifest | None:
    """The manifest beside a model file; None for a model without one (a base model, a remote model)."""
    if model_path is None:
        return None
    path = manifest_path(Path(model_path))
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a readable fine-tuning manifest ({exc}): it says which documents "
                          f"{Path(model_path).name} was trained on, so the model cannot be scored without it; "
                          "train it again with extractor finetune-local") from None
