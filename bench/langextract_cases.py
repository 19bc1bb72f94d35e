"""Regenerates tests/data/langextract_alignment_cases.json from a checkout of google/langextract (not a test).

langextract (Apache-2.0) tests its alignment of extracted text to the source in tests/resolver_test.py,
tests/annotation_test.py and tests/fuzzy_alignment_cases_test.py. This script runs those test modules
with langextract itself replaced by recording stand-ins (langextract need not be installed): every
aligner, resolver or annotator call hands back placeholders for the extractions it was given, and the
tests' own assertions (`assertEqual(result.char_interval.start_pos, 22)`, `assertEqual(groups,
expected_output)`, `assertIsNone(result)`, ...) write down what langextract is expected to answer for
each value in each source text. Token intervals are turned into characters with langextract's
RegexTokenizer pattern (read from its tokenizer.py); offsets the test added are taken off again.

One case per unique (text, value): the answer of a complete observation (a span or "unaligned"), the
one langextract gives the value on its own where several tests disagree, else the first in file order.
`alone` is what langextract's WordAligner answers for the value by itself with the case's options,
computed by importing the checkout's resolver (needs `regex` and `yaml`; absl's logging is stood in for
where absl is missing); --no-alone leaves it out.

    python bench/langextract_cases.py /work/.mirror/google+langextract/repo   # a bare git dir or a work tree
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import dataclasses
import enum
import functools
import io
import json
import logging
import re
import subprocess
import sys
import tarfile
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "data" / "langextract_alignment_cases.json"
TEST_FILES = ("tests/resolver_test.py", "tests/annotation_test.py", "tests/fuzzy_alignment_cases_test.py")
OPTION_NAMES = ("enable_fuzzy_alignment", "accept_match_lesser", "exact_alignment_algorithm",
                "fuzzy_alignment_algorithm", "fuzzy_only")


# ---- langextract's records, as plain attribute bags ------------------------------------------------

class Record:
    """A data.Extraction, CharInterval, AnnotatedDocument... built by a test: its fields, nothing else."""

    def __init__(self, kind: str, names: tuple[str, ...], *args: Any, **kwargs: Any) -> None:
        fields = dict(zip(names, args, strict=False))
        fields.update(kwargs)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "fields", fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.fields.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.fields[name] = value

    def replaced(self, **changes: Any) -> Record:
        return Record(self.kind, (), **{**self.fields, **changes})


def _record(kind: str, *names: str) -> Callable[..., Record]:
    return functools.partial(Record, kind, names)


class AlignmentStatus(enum.Enum):
    MATCH_EXACT = "match_exact"
    MATCH_GREATER = "match_greater"
    MATCH_LESSER = "match_lesser"
    MATCH_FUZZY = "match_fuzzy"


class Anything:
    """Whatever else a test touches (models, prompts, chunking): answers every call and attribute."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Anything()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return Anything()

    def __getitem__(self, key: Any) -> Any:
        return Anything()

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __enter__(self) -> Anything:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


# ---- what langextract answered, filled in by the tests' assertions ----------------------------------

class Unknown(Exception):
    """A test used a position nobody asserted (to slice the source): that assertion is lost, not the rest."""


class Leaf:
    """One asserted quantity of one answer: start, end, token_start, token_end or status."""

    def __init__(self, owner: Aligned, key: str) -> None:
        self.owner, self.key = owner, key

    def __index__(self) -> int:
        value = self.owner.asserted.get(self.key)
        if isinstance(value, int):
            return value
        self.owner.asserted["sliced"] = True  # the test compares source[start:end] with the value
        raise Unknown(self.key)


class _Interval:
    def __init__(self, owner: Aligned, first: str, second: str) -> None:
        self.owner, self.first, self.second = owner, first, second

    def __getattr__(self, name: str) -> Any:
        if name in ("start_pos", "start_index"):
            return Leaf(self.owner, self.first)
        if name in ("end_pos", "end_index"):
            return Leaf(self.owner, self.second)
        raise AttributeError(name)


class Aligned:
    """langextract's answer for one extraction in one call made by one test."""

    def __init__(self, value: str, source: Any, options: dict[str, Any], char_offset: Any = 0,
                 token_offset: Any = 0) -> None:
        self.value, self.source, self.options = value, source, options
        self.char_offset, self.token_offset = char_offset, token_offset
        self.test = RUN.test
        self.asserted: dict[str, Any] = {}
        RUN.answers.append(self)

    extraction_class = "entity"

    @property
    def extraction_text(self) -> str:
        return self.value

    @property
    def char_interval(self) -> _Interval:
        return _Interval(self, "start", "end")

    @property
    def token_interval(self) -> _Interval:
        return _Interval(self, "token_start", "token_end")

    @property
    def alignment_status(self) -> Leaf:
        return Leaf(self, "status")

    def expect(self, record: Record) -> None:
        """The test expects this data.Extraction here: its intervals and status are the answer."""
        chars, tokens, status = record.char_interval, record.token_interval, record.alignment_status
        self.asserted["status"] = status.value if isinstance(status, AlignmentStatus) else None
        if chars is None and status is None:
            self.asserted["aligned"] = False
        if isinstance(chars, Record):
            self.asserted["start"], self.asserted["end"] = chars.start_pos, chars.end_pos
        if isinstance(tokens, Record):
            self.asserted["token_start"], self.asserted["token_end"] = tokens.start_index, tokens.end_index


class Document:
    """What annotate_text answered for one text; the expected AnnotatedDocument names its extractions."""

    def __init__(self, text: Any, options: dict[str, Any]) -> None:
        self.text, self.options = text, options


def _pair(actual: Any, expected: Any) -> None:
    """An assertion that `actual` (an answer, or part of one) equals `expected`."""
    if isinstance(expected, Leaf | Aligned | Document) and not isinstance(actual, Leaf | Aligned | Document):
        actual, expected = expected, actual
    if isinstance(actual, Leaf):
        if isinstance(expected, Leaf):
            RUN.links.append((actual, expected))
        elif isinstance(expected, AlignmentStatus) or expected is None:
            actual.owner.asserted[actual.key] = expected.value if expected is not None else None
        elif isinstance(expected, int):
            actual.owner.asserted[actual.key] = expected
    elif isinstance(actual, Aligned) and isinstance(expected, Record) and expected.kind == "Extraction":
        actual.expect(expected)
    elif isinstance(actual, Document) and isinstance(expected, Record) and expected.kind == "AnnotatedDocument":
        text = expected.text if isinstance(expected.text, str) else actual.text
        for record in expected.extractions or ():
            Aligned(record.extraction_text, text, actual.options).expect(record)
    elif isinstance(actual, list | tuple) and isinstance(expected, list | tuple) and len(actual) == len(expected):
        for a, e in zip(actual, expected, strict=True):
            _pair(a, e)


@dataclasses.dataclass
class Run:
    test: str = ""
    answers: list[Aligned] = dataclasses.field(default_factory=list)
    links: list[tuple[Leaf, Leaf]] = dataclasses.field(default_factory=list)


RUN = Run()


def _options(kwargs: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    chosen = {**defaults, **{k: v for k, v in kwargs.items() if k in OPTION_NAMES}}
    return {k: v for k, v in chosen.items() if isinstance(v, bool | str)}


class FakeAligner:
    """resolver.WordAligner: one placeholder answer per extraction, in the groups it was given."""

    def align_extractions(self, extraction_groups: Any, source_text: Any, token_offset: Any = 0, char_offset: Any = 0,
                          delim: str = "\u241f", enable_fuzzy_alignment: bool = True,
                          fuzzy_alignment_threshold: float = 0.75, accept_match_lesser: bool = True,
                          tokenizer_impl: Any = None, **kwargs: Any) -> list[list[Aligned]]:
        options = _options(kwargs, enable_fuzzy_alignment=enable_fuzzy_alignment,
                           accept_match_lesser=accept_match_lesser)
        return [[Aligned(e.extraction_text, source_text, options, char_offset, token_offset) for e in group]
                for group in extraction_groups]


class FakeResolver(Anything):
    def align(self, extractions: Any, source_text: Any, token_offset: Any = 0, char_offset: Any = None,
              enable_fuzzy_alignment: bool = True, fuzzy_alignment_threshold: float = 0.75,
              accept_match_lesser: bool = True, tokenizer_inst: Any = None, **kwargs: Any) -> list[Aligned]:
        options = _options(kwargs, enable_fuzzy_alignment=enable_fuzzy_alignment,
                           accept_match_lesser=accept_match_lesser)
        return [Aligned(e.extraction_text, source_text, options, char_offset or 0, token_offset) for e in extractions]


class FakeAnnotator(Anything):
    def annotate_text(self, text: Any, *args: Any, **kwargs: Any) -> Document:
        return Document(text, _options(kwargs, enable_fuzzy_alignment=True, accept_match_lesser=True))

    def annotate_documents(self, documents: Any, *args: Any, **kwargs: Any) -> Iterator[Document]:
        options = _options(kwargs, enable_fuzzy_alignment=True, accept_match_lesser=True)
        for document in documents:
            yield Document(document.text, options)


def fake_run(source: str, extraction_text: str, tokenizer: Any, aligner: Any, algorithm: str = "lcs",
             token_offset: int = 0, char_offset: int = 0) -> Aligned:
    """fuzzy_alignment_cases_test._run: the fuzzy aligner alone, on one extraction."""
    options = {"enable_fuzzy_alignment": True, "fuzzy_alignment_algorithm": algorithm, "fuzzy_only": True}
    return Aligned(extraction_text, source, options, char_offset, token_offset)


def fake_match_source(*args: Any) -> None:
    """assert_char_interval_match_source(test, text, extractions): the text the answers' spans are in."""
    source, extractions = args[-2], args[-1]
    for answer in extractions:
        if isinstance(answer, Aligned) and isinstance(source, str) and answer.source is not source:
            answer.source, answer.char_offset, answer.token_offset = source, 0, 0


@contextlib.contextmanager
def _swallow(*args: Any, **kwargs: Any) -> Iterator[None]:
    with contextlib.suppress(Exception):
        yield


class RecordingTestCase:
    """absltest.TestCase and parameterized.TestCase: assertions pair answers with what the test expects."""

    maxDiff = None

    def setUp(self) -> None:
        pass

    def enter_context(self, manager: Any) -> Any:
        return Anything()

    def assertEqual(self, first: Any, second: Any, msg: Any = None) -> None:
        _pair(first, second)

    assertDataclassEqual = assertIs = assertEqual

    def assertIsNone(self, value: Any, msg: Any = None) -> None:
        if isinstance(value, Aligned):
            value.asserted["aligned"] = False
        elif isinstance(value, Leaf):
            value.owner.asserted[value.key] = None

    def assertIsNotNone(self, value: Any, msg: Any = None) -> None:
        if isinstance(value, Aligned):
            value.asserted["aligned"] = True
        elif isinstance(value, Leaf) and value.key == "status":
            value.owner.asserted["aligned"] = True

    def assertRaises(self, *args: Any, **kwargs: Any) -> Any:
        return _swallow()

    assertRaisesRegex = assertRaises
    subTest = assertRaises

    def __getattr__(self, name: str) -> Any:
        if name.startswith("assert"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def named_parameters(*cases: Any) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        function.le_cases = [
            (case["testcase_name"], (), {k: v for k, v in case.items() if k != "testcase_name"})
            if isinstance(case, dict) else (case[0], tuple(case[1:]), {})
            for case in cases]
        return function
    return decorate


def _stub_modules() -> dict[str, types.ModuleType]:
    """langextract and absl as the test modules import them, with the recording stand-ins inside."""

    def module(name: str, **attrs: Any) -> types.ModuleType:
        made = types.ModuleType(name)
        made.__dict__.update(attrs)
        made.__getattr__ = lambda attr: Anything()  # type: ignore[method-assign]
        return made

    point = _record("CharInterval", "start_pos", "end_pos")
    data = module("langextract.core.data", Extraction=_record("Extraction", "extraction_class", "extraction_text"),
                  CharInterval=point, AnnotatedDocument=_record("AnnotatedDocument"),
                  Document=_record("Document", "text"), AlignmentStatus=AlignmentStatus,
                  EXTRACTIONS_KEY="extractions", ATTRIBUTE_SUFFIX="_attributes")
    tokenizer = module("langextract.core.tokenizer", TokenInterval=_record("TokenInterval", "start_index", "end_index"),
                       CharInterval=point,
                       InvalidTokenIntervalError=type("InvalidTokenIntervalError", (Exception,), {}))
    resolver = module("langextract.resolver", WordAligner=FakeAligner, Resolver=FakeResolver,
                      ResolverParsingError=type("ResolverParsingError", (Exception,), {}),
                      DEFAULT_INDEX_SUFFIX="_index")
    annotation = module("langextract.annotation", Annotator=FakeAnnotator)
    exceptions = module("langextract.core.exceptions",
                        InvalidDocumentError=type("InvalidDocumentError", (Exception,), {}))
    core = module("langextract.core", data=data, tokenizer=tokenizer, exceptions=exceptions,
                  types=module("langextract.core.types"))
    providers = module("langextract.providers", gemini=module("langextract.providers.gemini"))
    langextract = module("langextract", core=core, resolver=resolver, annotation=annotation, providers=providers,
                         chunking=module("langextract.chunking"), prompting=module("langextract.prompting"),
                         prompt_validation=module("langextract.prompt_validation"))
    absltest = module("absl.testing.absltest", TestCase=RecordingTestCase, main=lambda: None)
    parameterized = module("absl.testing.parameterized", TestCase=RecordingTestCase, named_parameters=named_parameters)
    testing = module("absl.testing", absltest=absltest, parameterized=parameterized)
    absl = module("absl", testing=testing)
    stubs = {m.__name__: m for m in (data, tokenizer, resolver, annotation, exceptions, core, providers, langextract,
                                     absltest, parameterized, testing, absl)}
    fields = {k: getattr(dataclasses, k) for k in dir(dataclasses) if not k.startswith("__")}
    stubs["dataclasses"] = module("dataclasses", **{
        **fields, "replace": lambda obj, **kw: obj.replaced(**kw) if isinstance(obj, Record) else dataclasses.replace(
            obj, **kw)})
    return stubs


def run_test_module(source: str, filename: str) -> None:
    """Executes one langextract test module against the stand-ins and runs every test method in it."""
    stubs = _stub_modules()

    def importer(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if name in stubs:
            return stubs[name] if fromlist or "." not in name else stubs[name.split(".")[0]]
        return builtins.__import__(name, globals, locals, fromlist, level)

    namespace: dict[str, Any] = {"__name__": "langextract_tests", "__builtins__": {**vars(builtins),
                                                                                  "__import__": importer}}
    exec(compile(source, filename, "exec"), namespace)  # the tests' own code, against stand-ins only
    if "_run" in namespace:
        namespace["_run"] = fake_run
    if "assert_char_interval_match_source" in namespace:
        namespace["assert_char_interval_match_source"] = fake_match_source
    for class_name, cls in list(namespace.items()):
        if not (isinstance(cls, type) and issubclass(cls, RecordingTestCase)) or cls is RecordingTestCase:
            continue
        if "assert_char_interval_match_source" in vars(cls):
            cls.assert_char_interval_match_source = fake_match_source
        for method_name in [n for n in vars(cls) if n.startswith("test")]:
            method = getattr(cls, method_name)
            for case_name, args, kwargs in getattr(method, "le_cases", [(None, (), {})]):
                RUN.test = f"{Path(filename).name}::{class_name}.{method_name}" + (
                    f"[{case_name}]" if case_name else "")
                test = cls()
                with contextlib.suppress(Exception):
                    test.setUp()
                    method(test, *args, **kwargs)


# ---- from answers to cases ----------------------------------------------------------------------------

def token_spans(tokenizer_source: str) -> Callable[[str], list[tuple[int, int]]]:
    """langextract's RegexTokenizer (letters | digits | a run of one symbol), patterns read from its source."""
    constants = {}
    for node in ast.parse(tokenizer_source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.endswith("_PATTERN"):
                constants[target.id] = node.value.value
    pattern = re.compile("|".join(constants[k] for k in ("_LETTERS_PATTERN", "_DIGITS_PATTERN", "_SYMBOLS_PATTERN")))
    return lambda text: [m.span() for m in pattern.finditer(text)]


def observation(answer: Aligned, tokens: Callable[[str], list[tuple[int, int]]]) -> dict[str, Any] | None:
    """What one test expects langextract to answer for a value, or None where it asserts nothing usable."""
    got, text, value = dict(answer.asserted), answer.source, answer.value
    if not isinstance(text, str) or not isinstance(value, str) or not text or not got:
        return None
    for key, offset in (("start", answer.char_offset), ("end", answer.char_offset),
                        ("token_start", answer.token_offset), ("token_end", answer.token_offset)):
        if isinstance(got.get(key), int) and isinstance(offset, int):
            got[key] -= offset
    status = got.get("status", "aligned" if got.get("aligned") else None)
    if got.get("aligned") is False:
        status, got["start"], got["end"] = None, None, None
    start, end = got.get("start"), got.get("end")
    if start is None and isinstance(got.get("token_start"), int) and isinstance(got.get("token_end"), int):
        spans = tokens(text)
        start, end = spans[got["token_start"]][0], spans[got["token_end"] - 1][1]
    if isinstance(start, int) and end is None and status == "match_exact":
        end = start + len(value)  # an exact match quotes the value (assert_char_interval_match_source)
    occurrences = [m.start() for m in re.finditer(re.escape(value.casefold()), text.casefold())]
    if start is None and status is not None and len(occurrences) == 1 and (
            status == "match_exact" or got.get("sliced")):
        start, end = occurrences[0], occurrences[0] + len(value)  # the test asserts the span reads as the value
    unaligned = status is None and got.get("aligned") is False
    complete = unaligned or (status is not None and isinstance(start, int) and isinstance(end, int))
    if status is None and not complete:
        return None
    return {"test": answer.test, "start": start if status else None, "end": end if status else None,
            "status": status, "complete": complete, "options": answer.options}


def alone_aligner(tree: Path) -> Callable[[str, str, dict[str, Any]], dict[str, Any] | None] | None:
    """langextract's own WordAligner from the checkout, for one value at a time; None where it cannot load."""
    try:
        import regex  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        return None
    try:
        import absl.logging
    except ImportError:
        absl = types.ModuleType("absl")
        absl.logging = logging.getLogger("langextract")  # type: ignore[attr-defined]
        absl.__path__ = []  # type: ignore[attr-defined]
        sys.modules.update({"absl": absl, "absl.logging": absl.logging})  # type: ignore[dict-item]
    package = types.ModuleType("langextract")
    package.__path__ = [str(tree / "langextract")]  # skip its __init__ (providers, network clients)
    sys.modules["langextract"] = package
    from langextract import resolver as resolver_lib  # type: ignore[import-not-found]
    from langextract.core import data  # type: ignore[import-not-found]

    def align(text: str, value: str, options: dict[str, Any]) -> dict[str, Any] | None:
        kwargs = {k: v for k, v in options.items() if k in OPTION_NAMES and k != "fuzzy_only"}
        try:
            (group,) = resolver_lib.WordAligner().align_extractions(
                [[data.Extraction(extraction_class="value", extraction_text=value)]], text, **kwargs)
        except ValueError:
            return None
        found = group[0]
        if found.char_interval is None or found.alignment_status is None:
            return {"start": None, "end": None, "status": None}
        return {"start": found.char_interval.start_pos, "end": found.char_interval.end_pos,
                "status": found.alignment_status.value}

    logging.getLogger("langextract").setLevel(logging.ERROR)
    return align


def cases(observations: list[tuple[str, str, dict[str, Any]]],
          alone: Callable[[str, str, dict[str, Any]], dict[str, Any] | None] | None) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for text, value, seen in observations:
        grouped.setdefault((text, value), []).append(seen)
    made, ids = [], set()
    for (text, value), seen in grouped.items():
        complete = [s for s in seen if s["complete"]] or seen
        first = complete[0]
        on_its_own = alone(text, value, first["options"]) if alone else None
        chosen = next((s for s in complete if on_its_own and (s["start"], s["end"]) == (
            on_its_own["start"], on_its_own["end"])), first)
        name = re.sub(r"^test_", "", re.sub(r".*[.\[]", "", chosen["test"].rstrip("]")))
        case_id = f"{name}:{value}"
        while case_id in ids:
            case_id += "'"
        ids.add(case_id)
        case = {"id": case_id, "text": text, "value": value, "start": chosen["start"], "end": chosen["end"],
                "status": chosen["status"], "options": chosen["options"],
                "tests": [{k: s[k] for k in ("test", "start", "end", "status")} for s in seen]}
        if alone:
            case["alone"] = on_its_own
        made.append(case)
    return made


def checkout(path: Path, stack: contextlib.ExitStack) -> tuple[Path, str]:
    """A work tree of the repository and its commit (a bare git dir is unpacked into a temporary folder)."""
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    git = ["git", f"--git-dir={path}"] if bare else ["git", "-C", str(path)]
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    if not bare:
        return path, commit
    tree = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    archive = subprocess.run([*git, "archive", "--format=tar", "HEAD", "tests",
                              "langextract/core", "langextract/resolver.py", "LICENSE"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree, commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path, help="google/langextract: a work tree or a bare git dir")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-alone", action="store_true", help="do not run langextract's aligner on each value")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tree, commit = checkout(args.repository, stack)
        for name in TEST_FILES:
            run_test_module((tree / name).read_text(encoding="utf-8"), name)
        for a, b in RUN.links:  # assertEqual(second.char_interval.start_pos, first.char_interval.start_pos)
            for x, y in ((a, b), (b, a)):
                if x.key not in x.owner.asserted and isinstance(y.owner.asserted.get(y.key), int):
                    x.owner.asserted[x.key] = y.owner.asserted[y.key]
        tokens = token_spans((tree / "langextract/core/tokenizer.py").read_text(encoding="utf-8"))
        observations = [(a.source, a.value, seen) for a in RUN.answers if (seen := observation(a, tokens))]
        made = cases(observations, None if args.no_alone else alone_aligner(tree))
    payload = {
        "_source": f"google/langextract (https://github.com/google/langextract) at commit {commit}: the expected "
                   f"alignments in {', '.join(TEST_FILES)}; regenerate with bench/langextract_cases.py",
        "_license": "Apache-2.0; Copyright 2025 Google LLC. The texts and values below are taken from langextract's "
                    "tests (http://www.apache.org/licenses/LICENSE-2.0).",
        "_fields": "start/end: the span langextract's test expects for the value (null: unaligned); status: its "
                   "AlignmentStatus (\"aligned\": the test asserts a span but not its status); options: the "
                   "alignment options of that test; tests: every test that expects something of this (text, "
                   "value); alone: what langextract's WordAligner answers for the value on its own",
        "cases": made,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(made)} unique cases from {len(observations)} expectations -> {args.output}")


if __name__ == "__main__":
    main()
