"""How many tokens a text costs a model: the one estimate, from characters.

No tokenizer can be downloaded offline, so tokens are counted from characters at a rate calibrated on what the API
reported for earlier documents of the same model (the journal's prompt tokens per prompt character and mean
completion tokens, `Journal.tokens_per_char`); with no such history, 4 characters a token and the completion
estimated from the schema (`answer_tokens`: its examples' answers, else its fields; an 18-line invoice billed 544
completion tokens where a flat 200 was assumed). The run's `--max-cost` budget, the dry run, the fine-tuning
export's estimate and the break-even analysis all count through `TokenRate`; a fine-tuning example (what the export
writes and the break-even prices a fine-tuned model and its training on) through `RequestRate.request_tokens`, its
per-request form, calibrated on the journal's one-call extractions only (a field-by-field request asks one
question: another shape).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from extractor.schemas import Schema

DEFAULT_TOKENS_PER_CHAR = 0.25  # 4 characters a token, with no earlier run of the model to calibrate on
DEFAULT_COMPLETION_TOKENS = 200.0  # a schema-less caller's guess; a run and a dry run use `answer_tokens`
# With no example answer: characters of one field's value in an answer's JSON, by kind (a date's ISO form is 12
# with its quotes; a short name or title ~20), and the items a list is assumed to hold.
VALUE_CHARS = {"text": 22, "email": 26, "phone": 16, "url": 32, "date": 12, "number": 7, "currency": 5,
               "bool": 5}
LIST_ITEMS = 5  # items of a list of values (skills)
ROWS = 10  # items of a list of objects (an invoice's line items)

Calibration = tuple[float, float, int]  # (prompt tokens per prompt character, mean completion tokens, documents)


@dataclass(frozen=True)
class TokenRate:
    """Prompt tokens per character and completion tokens per document for one model."""

    per_char: float = DEFAULT_TOKENS_PER_CHAR
    completion: float = DEFAULT_COMPLETION_TOKENS
    documents: int = 0  # earlier documents it was calibrated on; 0: the defaults

    @classmethod
    def observed(cls, calibration: Calibration | None, completion: float = DEFAULT_COMPLETION_TOKENS) -> TokenRate:
        """The rate `Journal.tokens_per_char` observed for a model, or the defaults where it observed none
        (`completion`: the completion tokens to assume then, `answer_tokens` of the schema)."""
        if calibration is None:
            return cls(completion=completion)
        per_char, completion, documents = calibration
        return cls(per_char=per_char, completion=completion, documents=documents)

    @property
    def calibrated(self) -> bool:
        return self.documents > 0

    @property
    def chars_per_token(self) -> float:
        return 1 / self.per_char

    def tokens(self, chars: float) -> float:
        """Tokens of `chars` characters, unrounded (a mean per request, as break-even prices them)."""
        return chars * self.per_char

    def chars(self, tokens: float) -> int:
        """Characters that make `tokens` prompt tokens at this rate, rounded down (how much text fits a budget)."""
        return math.floor(tokens / self.per_char)

    def prompt_tokens(self, chars: int, unmeasured_chars: int = 0) -> int:
        """Prompt tokens of `chars` characters, rounded up. `unmeasured_chars`: what is sent besides them but not
        counted in a document's prompt characters (a tool definition): a calibrated rate already includes it (the
        API billed it in the tokens the rate was measured on), the default rate counts it too."""
        return math.ceil(self.tokens(chars if self.calibrated else chars + unmeasured_chars))


def answer_tokens(schema: Schema) -> float:
    """Completion tokens of one answer, with no earlier run to measure them: the mean JSON of the schema's example
    answers where it has examples, else its fields' JSON (a key, a value of VALUE_CHARS, punctuation; a list
    LIST_ITEMS values, a list of objects ROWS rows), at 4 characters a token."""
    if schema.examples:
        chars = sum(_example_chars(schema.model, e.output.model_dump(mode="json")) for e in schema.examples)
        return max(1.0, chars / len(schema.examples) * DEFAULT_TOKENS_PER_CHAR)
    return max(1.0, _answer_chars(schema.model) * DEFAULT_TOKENS_PER_CHAR)


def _example_chars(model: type[BaseModel], answer: dict[str, Any]) -> float:
    """An example answer's JSON length, its lists of objects counted at ROWS rows at least: an example shows the
    shape of a row, not how many rows a document has (the shipped invoice's examples have 2 and 3 lines; an
    18-line invoice was billed 514 completion tokens against 125 estimated from them as they stand)."""
    from extractor.schemas import field_kinds

    chars = float(len(json.dumps(answer, ensure_ascii=False)))
    for name, kind in field_kinds(model).items():
        rows = answer.get(name)
        if kind.nested is None or not kind.is_list or not isinstance(rows, list) or len(rows) >= ROWS:
            continue
        row = (len(json.dumps(rows, ensure_ascii=False)) - 2) / len(rows) if rows else _answer_chars(kind.nested)
        chars += (ROWS - len(rows)) * (row + 2)  # a row and its separator
    return chars


def _answer_chars(model: type[BaseModel]) -> float:
    from extractor.schemas import field_kinds

    chars = 2.0  # the braces
    for name, kind in field_kinds(model).items():
        key = len(name) + 4  # "name": and the comma
        if kind.nested is not None:
            value = _answer_chars(kind.nested) * (ROWS if kind.is_list else 1) + (2 if kind.is_list else 0)
        else:
            one = VALUE_CHARS.get(kind.kind, VALUE_CHARS["text"]) if kind.options is None else max(
                (len(str(o)) + 2 for o in kind.options), default=8)
            value = (one + 2) * LIST_ITEMS if kind.is_list else one
        chars += key + value
    return chars


def fit_tokens_per_char(points: list[tuple[int, int]]) -> tuple[float, float] | None:
    """(tokens per character, fixed tokens per request) by least squares over one-request documents.

    Prompt tokens also count what has no characters in the messages (the tool schema, message framing),
    so the whole prompt's tokens per character overstates the rate, and with it what dropping the
    few-shot examples saves. Documents of different lengths separate the two. None when there are
    fewer than 5 documents, when the rate is not pinned down (its standard error is over 10% of it:
    lengths too alike for the tokenizer's noise), or when the fit is not physical (rate <= 0 or a
    negative fixed part).
    """
    n = len(points)
    if n < 5:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    rate = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    overhead = mean_y - rate * mean_x
    residual = sum((y - overhead - rate * x) ** 2 for x, y in points)
    standard_error = math.sqrt(residual / (n - 2) / sxx)
    if rate <= 0 or overhead < 0 or standard_error > 0.1 * rate:
        return None
    return rate, overhead


@dataclass(frozen=True)
class RequestRate:
    """Tokens per character of one request's prompt, with its fixed part apart where documents allowed a fit."""

    rate: TokenRate  # per request: TokenRate.tokens(characters of one request)
    overhead_tokens: float | None  # fitted fixed tokens per request (tool schema, framing); None: averaged rate
    fitted_from: int  # one-request documents the fit used; 0: the averaged rate

    def tokens(self, chars: float) -> float:
        return self.rate.tokens(chars)

    def request_tokens(self, chars: float, unmeasured_chars: float = 0) -> float:
        """Prompt tokens of one request whose system prompt and document have `chars` characters (what the journal
        counts as a document's prompt characters), `unmeasured_chars` more sent around them (the tool definition,
        the document's fence, the messages' framing): fitted, the fixed part plus the rate; calibrated but not
        fitted, the rate alone (the fixed part is inside it); the default rate counts both."""
        if self.overhead_tokens is not None:
            return self.overhead_tokens + self.rate.tokens(chars)
        return self.rate.tokens(chars if self.rate.calibrated else chars + unmeasured_chars)

    @property
    def basis(self) -> str:
        """How `request_tokens` counts, in words."""
        if self.overhead_tokens is not None:
            return (f"{self.rate.per_char:.4f} tokens a character plus {self.overhead_tokens:,.0f} a request (tool "
                    f"schema, framing), fitted across {self.fitted_from} one-request documents of the journal")
        if self.rate.calibrated:
            return (f"{self.rate.per_char:.4f} prompt tokens a character over {self.rate.documents} one-call "
                    "document(s) of the journal (the tool schema inside the rate: an upper bound)")
        return (f"{self.rate.chars_per_token:g} characters a token over everything sent (no one-call extraction in "
                "the journal to calibrate on)")


def request_rate(observed: TokenRate, single: list[tuple[int, int]], documents: int, requests: int) -> RequestRate:
    """Tokens per character of one request: fitted over the one-request documents' (characters, prompt tokens)
    where they allow it (`fit_tokens_per_char`), else the journal's rate per document spread over the requests
    (it divides the tokens of ALL of a document's requests by the characters of ONE request)."""
    fit = fit_tokens_per_char(single)
    if fit is not None:
        per_char, overhead = fit
        return RequestRate(TokenRate(per_char, observed.completion, len(single)), overhead, len(single))
    return RequestRate(TokenRate(observed.per_char * documents / requests, observed.completion, observed.documents),
                       None, 0)


# -- page images (`pages = "images" | "both"`) ------------------------------------------------------------------
# How OpenAI counts an image's prompt tokens (its vision guide, "Calculating costs"; genai-prices bills them as
# input tokens at the text rate, which is what the provider's usage reports them as):
# - tiles (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3): with detail "high" the image is scaled to fit 2048 x 2048,
#   then so that its short side is at most 768; it costs BASE + TILE a 512 px tile (gpt-4o: 85 + 170; a letter
#   page of 1236 x 1600 px is 768 x 994 after scaling, 4 tiles, 765 tokens). gpt-4o-mini counts 33x the tokens at
#   a 33x lower price (2833 + 5667), so a page costs it what it costs gpt-4o.
# - patches (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano): 32 px patches, at most 1536 of them (a
#   larger image is scaled down to fit), times a per-model multiplier.
# A model the table does not know (a self-hosted vision model) is estimated by gpt-4o's tile rule.
_TILE_RULES: tuple[tuple[str, int, int], ...] = (  # (model prefix, base tokens, tokens a tile); longest prefix first
    ("gpt-4o-mini", 2833, 5667), ("gpt-5-chat", 70, 140), ("gpt-5", 70, 140), ("gpt-4o", 85, 170),
    ("gpt-4.1", 85, 170), ("gpt-4.5", 85, 170), ("chatgpt-4o", 85, 170), ("gpt-4-turbo", 85, 170),
    ("o1", 75, 150), ("o3", 75, 150),
)
_PATCH_RULES: tuple[tuple[str, float], ...] = (  # (model prefix, multiplier)
    ("gpt-4.1-mini", 1.62), ("gpt-4.1-nano", 2.46), ("o4-mini", 1.72), ("gpt-5-mini", 1.62), ("gpt-5-nano", 2.46),
)
PATCH = 32
MAX_PATCHES = 1536
# Models known to read no image (a `pages = images` run with them is refused before anything is sent).
_TEXT_ONLY = ("gpt-3.5", "gpt-4-0", "gpt-4-32k", "o1-mini", "o3-mini", "text-", "davinci", "babbage")
_SEES = tuple(prefix for prefix, _, _ in _TILE_RULES) + tuple(prefix for prefix, _ in _PATCH_RULES)


def _bare(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org::id` and `openai/gpt-4o` name the model they are: `gpt-4o-mini-...`."""
    name = model.lower().removeprefix("ft:")
    return name.rsplit("/", 1)[-1]


def accepts_images(model: str) -> bool | None:
    """Whether `model` reads image content parts: True or False where known (OpenAI's models by name), None for a
    model this table does not know (a self-hosted one: the setting `vision` says)."""
    name = _bare(model)
    if name.startswith(_TEXT_ONLY):
        return False
    if name.startswith(_SEES):
        return True
    return None


def image_tokens(model: str, width: int, height: int, detail: str = "high") -> int:
    """Prompt tokens one image of `width` x `height` pixels costs `model` (see the rules above)."""
    name = _bare(model)
    for prefix, multiplier in _PATCH_RULES:
        if name.startswith(prefix):
            patches = math.ceil(width / PATCH) * math.ceil(height / PATCH)
            if patches > MAX_PATCHES:  # scaled down so that whole patches fit the cap
                shrink = math.sqrt(PATCH * PATCH * MAX_PATCHES / (width * height))
                w, h = width * shrink, height * shrink
                shrink *= min(math.floor(w / PATCH) / (w / PATCH), math.floor(h / PATCH) / (h / PATCH))
                patches = min(MAX_PATCHES, math.ceil(width * shrink / PATCH) * math.ceil(height * shrink / PATCH))
            return math.ceil(patches * multiplier)
    base, tile = next(((b, t) for prefix, b, t in _TILE_RULES if name.startswith(prefix)), (85, 170))
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return base + tile * math.ceil(w / 512) * math.ceil(h / 512)
