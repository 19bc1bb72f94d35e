"""The held-back split and the training sequences (no torch here: a tokenizer is passed in as a function)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from extractor.errors import ConfigError
from extractor.extraction.fields import Answered
from extractor.extraction.prompts import wrap_document
from extractor.ladder.finetune import split_sizes

IGNORE = -100  # the label torch's cross-entropy skips: prompt tokens carry no loss
MIN_LABELED = 2  # one document to train on and one to hold back


@dataclass(frozen=True)
class Split:
    """Which labeled documents train and which are held back (never trained on, the only ones scored)."""

    train: list[str]  # doc_ids, in the examples' order
    held_back: list[str]


def split_key(seed: int, sha: str) -> str:
    """A document's place in the draw: the seeded hash of its bytes' sha (so the same documents are held back
    whatever their names or order, and a renamed copy is never on both sides)."""
    return hashlib.sha256(f"{seed}:{sha}".encode()).hexdigest()


def held_back_split(labeled: Sequence[tuple[str, str]], fraction: float, seed: int) -> Split:
    """Hold back `fraction` of the labeled documents (`(doc_id, sha)`, at least one), chosen by `split_key`.
    Raises ConfigError with fewer than MIN_LABELED: no test split can be held back."""
    if len(labeled) < MIN_LABELED:
        raise ConfigError(
            f"{len(labeled)} labeled document(s) can be used: fine-tuning needs at least {MIN_LABELED}, one to train "
            "on and one held back to score it on; label more (extractor export, correct, import-corrections)")
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"held_back must be above 0 and below 1, not {fraction}: a model scored on its own "
                          "training documents says nothing")
    n = split_sizes(len(labeled), fraction)
    ranked = sorted(labeled, key=lambda d: split_key(seed, d[1] or d[0]))
    held = {doc_id for doc_id, _ in ranked[:n]}
    shas = {sha for doc_id, sha in labeled if doc_id in held and sha}
    # Two documents with the same bytes are one document: a copy of a held-back one is held back too.
    held |= {doc_id for doc_id, sha in labeled if sha and sha in shas}
    return Split(train=[d for d, _ in labeled if d not in held], held_back=[d for d, _ in labeled if d in held])


@dataclass(frozen=True)
class TrainingSequence:
    """One packed sequence: a document, then its questions, each followed by its answer."""

    doc_id: str
    input_ids: list[int]
    labels: list[int]  # the token where it is an answer's (or its end-of-turn), IGNORE elsewhere
    questions: int

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def render(template: str, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """The chat template the model's GGUF carries (what the embedded server applies), rendered sandboxed."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ConfigError(f"the model's chat template refused the conversation: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            raise_exception=raise_exception, bos_token="", eos_token="")


def conversation(text: str, answered: Sequence[Answered]) -> list[dict[str, str]]:
    """The questions of one document as one conversation: the first question exactly as the strategy sends it
    (the document, then the question), each later one as a user turn without the document (it is already in
    the sequence), each answered."""
    prefix = wrap_document(text) + "\n\n"
    messages: list[dict[str, str]] = []
    for i, pair in enumerate(answered):
        if i == 0:
            messages += pair.messages
        else:
            content = pair.messages[-1]["content"]
            messages.append({"role": "user", "content": content.removeprefix(prefix)})
        messages.append({"role": "assistant", "content": pair.answer})
    return messages


def pack(doc_id: str, text: str, answered: Sequence[Answered], template: str, encode: Callable[[str], list[int]],
         end_of_turn: str, max_tokens: int) -> list[TrainingSequence]:
    """A document's questions packed into sequences of at most `max_tokens`: one where they fit (the document is
    processed once), more where they do not, each starting with the document again. The loss is on each answer
    and the end-of-turn after it. A document whose first question alone is longer gives none."""
    out: list[TrainingSequence] = []
    pending = list(answered)
    while pending:
        ids: list[int] = []
        labels: list[int] = []
        taken = 0
        rendered = ""
        messages: list[dict[str, str]] = []
        for pair in pending:
            turn = conversation(text, [pair]) if taken == 0 else conversation(text, [answered[0], pair])[-2:]
            prompt_text = _grown(rendered, render(template, [*messages, *turn[:-1]], True))
            full = render(template, [*messages, *turn], False)
            answer_text = _grown(rendered + prompt_text, full)
            answer = turn[-1]["content"]
            lossy = answer + end_of_turn if answer_text.startswith(answer + end_of_turn) else answer_text
            rest = answer_text[len(lossy):]
            prompt_ids, lossy_ids = encode(prompt_text), encode(lossy)
            rest_ids = encode(rest) if rest else []
            if len(ids) + len(prompt_ids) + len(lossy_ids) + len(rest_ids) > max_tokens:
                break
            ids += prompt_ids + lossy_ids + rest_ids
            labels += [IGNORE] * len(prompt_ids) + lossy_ids + [IGNORE] * len(rest_ids)
            messages += turn
            rendered = full
            taken += 1
        if taken == 0:
            break  # the document and one question do not fit
        out.append(TrainingSequence(doc_id, ids, labels, taken))
        pending = pending[taken:]
    return out


def _grown(before: str, after: str) -> str:
    """What a longer rendering adds; the template must render a conversation's start the same way whatever
    follows (every chat template the embedded server applies does: it renders messages in turn)."""
    if not after.startswith(before):
        raise ConfigError("the model's chat template renders a conversation's start differently as it grows: "
                          "its questions cannot be packed into one sequence")
    return after[len(before):]


def data_digest(sequences: Sequence[TrainingSequence]) -> str:
    """sha256 over what training sees (each sequence's document, token ids and loss mask), in order."""
    digest = hashlib.sha256()
    for seq in sequences:
        digest.update(json.dumps([seq.doc_id, seq.input_ids, seq.labels], separators=(",", ":")).encode())
    return digest.hexdigest()

