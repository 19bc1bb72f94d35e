"""Routing with the embedded default: how often `--schema auto` sends a document to the right schema (or to none),
and how much of a routed run's time routing takes. Not a test: prints measured figures.

The mixed folder: the 24 sample letters (`inputs/`), the 10 held-out letters (`bench/heldout/letters`), 20 resumes
of the shared dataset that no test uses (`scripts/make_resumes.py --limit 60`, the last 20: cv_041 to cv_060),
the 5 documents of no known kind in `bench/routing_unknown/` (a recipe, minutes, two notices, a returns page), and
the 30 sample invoices (`samples/invoices`) where an invoice schema exists.

    python bench/routing.py                  # all five measurements below
    python bench/routing.py --only 1,2       # some of them
    python bench/routing.py --run-docs 12    # (3) on a spread of 12 documents only (the whole folder by default)
    python bench/routing.py --only 3 --run-docs 12 --run-kinds cover_letter,resume,none   # ... without invoices

0. **The hints alone** (the schemas' `KEYWORDS` and `SHAPES`, no model): how many documents they decide (a kind,
   or "none" where no candidate's hint is in it at all), and how many of those right. Seconds in all.
1. **The question alone**: every document asked the constrained question (schema names and "none"), no hints,
   no neighbours: the embedded model's own accuracy at it, and its seconds per document.
2. **The cascade** (what `--schema auto` decides: hints, then the question for the rest), every document, no
   extraction: its accuracy against the truth above, how each document was decided, and routing's seconds:
   the model server's start apart (any run pays it), then where routing's own time went (reading the texts,
   the hints, the neighbours, the model question).
3. **The routed run** (`run --schema auto`, embedded default, fresh outputs) on `--run-docs` documents (a stable
   spread over the kinds): the model server's start (`startup_s`, timed apart: a run with a fixed schema pays
   it too), routing's own time (`routing_s`: deciding every document, the start excluded) as a share of the
   whole run's wall time and of the run without the start, where routing's time went, routing's share of the
   model server's CPU seconds, and its accuracy there too; then (3') the same documents extracted with their own
   schemas over one backend, no routing: what routing adds is the routed run's time and model tokens beyond them
   (the embedded default asks an open document's question in its run, just before its extraction: `routing.InRun`).
4. **The cascade as the routed run asks it** (the embedded default): the hints, then the open documents' question
   with their extraction's prompt start (the whole document); its accuracy, and its seconds a question.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.documents import DocumentReader, discover, split_emails  # noqa: E402
from extractor.extraction import routing  # noqa: E402
from extractor.llm.backends import open_backend  # noqa: E402
from extractor.llm.pricing import Pricer  # noqa: E402
from extractor.schemas import NONE_OF_THEM, load_candidates  # noqa: E402

# The embedded server's verbose log (EXTRACTOR_LLAMA_LOG) prints, per request, the prompt tokens it evaluated (the
# longest prefix shared with the last prompt is not evaluated again) and the tokens it generated: the model's work,
# which the load on shared cores does not change.
PROMPT_EVAL = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
GENERATED = re.compile(r"^llama_perf_context_print:\s+eval time =\s*[\d.]+ ms /\s*(\d+) runs", re.MULTILINE)
TOTAL_MS = re.compile(r"^llama_perf_context_print:\s+total time =\s*([\d.]+) ms", re.MULTILINE)


def model_seconds(log: str) -> float:
    """The seconds the model spent on the requests of a stretch of the server's log (its own timings)."""
    return sum(float(ms) for ms in TOTAL_MS.findall(log)) / 1000


def evaluated(log: str) -> tuple[int, int, int]:
    """(requests, prompt tokens evaluated, tokens generated) in a stretch of the server's log."""
    prompts = [int(n) for n in PROMPT_EVAL.findall(log)]
    return len(prompts), sum(prompts), sum(int(n) for n in GENERATED.findall(log))


DATASET = ROOT.parent / "shared" / "datasets" / "resumes-dotin" / "545_cvs_train_v2.zip"


def build_folder(work: Path) -> dict[str, str]:
    """The mixed folder under `work/in`; doc_id -> its true kind ("none": of no known kind)."""
    folder = work / "in"
    shutil.copytree(ROOT / "inputs", folder / "letters")
    shutil.copytree(ROOT / "bench" / "heldout" / "letters", folder / "heldout")
    import subprocess

    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_resumes.py"), "--source", str(DATASET),
                    "--out", str(work / "dataset"), "--limit", "60"], check=True, capture_output=True)
    (folder / "resumes").mkdir(parents=True)
    for path in sorted((work / "dataset" / "resumes").glob("*.txt"))[40:60]:
        shutil.copy(path, folder / "resumes" / path.name)
    shutil.copytree(ROOT / "bench" / "routing_unknown", folder / "misc")
    if (ROOT / "schemas" / "invoice.py").is_file():
        shutil.copytree(ROOT / "samples" / "invoices", folder / "invoices")
    truth = {}
    for src in discover(folder):
        top = src.doc_id.split("/")[0]
        kinds = {"letters": "cover_letter", "heldout": "cover_letter", "resumes": "resume", "invoices": "invoice"}
        truth[src.doc_id] = kinds.get(top, NONE_OF_THEM)
    return truth


def config(work: Path, out: str):
    return build_config(dict(input_dir=work / "in", schema="auto", schemas_dir=ROOT / "schemas",
                             output_dir=work / out, backend="embedded"), env={})


async def hints_only(work: Path, truth: dict[str, str]) -> None:
    cfg = config(work, "out-hints")
    hints = routing.Hints(load_candidates(cfg.schemas_dir))
    reader = DocumentReader(max_chars=cfg.max_chars, timeout_s=cfg.parse_timeout_s)
    decided, right, started = Counter(), Counter(), time.perf_counter()
    try:
        for src in discover(cfg.input_dir):
            text = (await reader.read(src, DocumentReader.small_text(src))).text
            hits = hints.hits(text)
            decision = hints.decide(hits) or hints.abstain(hits)
            if decision is not None:
                decided[decision.method] += 1
                right[decision.method] += (decision.schema or NONE_OF_THEM) == truth[src.doc_id]
    finally:
        reader.close()
    n = sum(decided.values())
    print(f"(0) the hints alone (keywords and shapes): decided {n}/{len(truth)} documents, "
          f"{sum(right.values())}/{n} of them right (" + ", ".join(f"{m} {right[m]}/{k}" for m, k in decided.items())
          + f"; {time.perf_counter() - started:.1f} s, reading included)", flush=True)


async def model_only(work: Path, truth: dict[str, str]) -> None:
    cfg = config(work, "out-model-only")
    candidates = load_candidates(cfg.schemas_dir)
    reader = DocumentReader(max_chars=cfg.max_chars, timeout_s=cfg.parse_timeout_s)
    router = routing.Router(cfg, candidates, None, reader, Pricer.for_config(cfg))
    right, seconds, confusion = 0, 0.0, Counter()
    files = [s for s in split_emails(discover(cfg.input_dir)) if s.part is None]  # whole documents only
    try:
        async with open_backend(cfg) as backend:
            for src in files:
                text = (await reader.read(src, DocumentReader.small_text(src))).text
                started = time.perf_counter()
                try:
                    decision = await router.ask(backend.complete_json, text, {})
                    answer = decision.schema or NONE_OF_THEM
                except Exception as exc:
                    answer = f"failed ({type(exc).__name__})"
                seconds += time.perf_counter() - started
                right += answer == truth[src.doc_id]
                confusion[(truth[src.doc_id], answer)] += 1
    finally:
        reader.close()
    n = len(files)
    print(f"(1) the question alone: {right}/{n} = {right / n:.1%} right, {seconds / n:.2f} s/document", flush=True)
    for (want, got), count in sorted(confusion.items()):
        print(f"      truth {want:12} answered {got:12} {count}")


async def cascade(work: Path, truth: dict[str, str]) -> None:
    log = work / "llama-cascade.log"
    os.environ["EXTRACTOR_LLAMA_LOG"] = str(log)
    cfg = config(work, "out-cascade")
    candidates = load_candidates(cfg.schemas_dir)
    reader = DocumentReader(max_chars=cfg.max_chars, timeout_s=cfg.parse_timeout_s)
    router = routing.Router(cfg, candidates, None, reader, Pricer.for_config(cfg))
    opening = time.perf_counter()
    try:
        async with open_backend(cfg) as backend:
            started = time.perf_counter()
            decided = await routing.decide_all(router, split_emails(discover(cfg.input_dir)), backend.complete_json,
                                               "bench")
            seconds = time.perf_counter() - started
            startup = started - opening
    finally:
        reader.close()
        os.environ.pop("EXTRACTOR_LLAMA_LOG", None)
    requests, prompt, generated = evaluated(log.read_text(errors="replace"))
    sent = sum(d.prompt_tokens for _, _, d, _ in decided if d is not None)
    right = sum((d.schema or NONE_OF_THEM) == truth[src.doc_id] for src, _, d, _ in decided if d is not None)
    methods = Counter(d.method if d is not None else "failed" for _, _, d, _ in decided)
    n = len(truth)
    print(f"(2) the cascade: {right}/{n} = {right / n:.1%} routed right; decided by {dict(methods)}; "
          f"{seconds:.1f} s for {len(decided)} documents ({seconds / len(decided):.2f} s/document; the model "
          f"server's start apart: {startup:.1f} s); {parts(router.spent, seconds)}; the model evaluated "
          f"{prompt} of the {sent} prompt tokens sent and generated {generated} over {requests} question(s)",
          flush=True)
    for src, _, d, row in decided:
        if d is None or (d.schema or NONE_OF_THEM) != truth.get(src.doc_id):
            print(f"      wrong: {src.doc_id} truth {truth.get(src.doc_id)} routed {d and d.schema} "
                  f"({d and d.method}: {row['error_message']})")


async def cascade_in_run(work: Path, truth: dict[str, str]) -> None:
    """(4): the cascade as the routed run asks it with the embedded default (`routing.InRun`): the hints first, then
    each open document's question with its extraction's prompt start (the whole document, `fields.prompt_start`)."""
    from extractor.extraction.fields import prompt_start

    cfg = config(work, "out-cascade-in-run")
    candidates = load_candidates(cfg.schemas_dir)
    reader = DocumentReader(max_chars=cfg.max_chars, timeout_s=cfg.parse_timeout_s)
    router = routing.Router(cfg, candidates, None, reader, Pricer.for_config(cfg))
    right, asked, asked_right, seconds, wrong = 0, 0, 0, 0.0, []
    files = [s for s in split_emails(discover(cfg.input_dir)) if s.part is None]  # whole documents only
    try:
        async with open_backend(cfg) as backend:
            for src in files:
                text = (await reader.read(src, DocumentReader.small_text(src))).text
                sha, _ = await router.identify(src)
                decision, seen, hits = router.without_model(text, sha, src.doc_id)
                if decision is None:
                    started = time.perf_counter()
                    try:
                        decision = await router.ask(backend.complete_json, text, seen, hits, within=prompt_start(text))
                    except Exception as exc:
                        wrong.append(f"{src.doc_id}: failed ({type(exc).__name__}: {exc})")
                        continue
                    finally:
                        seconds += time.perf_counter() - started
                    asked += 1
                    asked_right += (decision.schema or NONE_OF_THEM) == truth[src.doc_id]
                ok = (decision.schema or NONE_OF_THEM) == truth[src.doc_id]
                right += ok
                if not ok:
                    wrong.append(f"{src.doc_id}: truth {truth[src.doc_id]} routed {decision.schema} "
                                 f"({decision.method})")
    finally:
        reader.close()
    n = len(files)
    print(f"(4) the cascade, asked as the routed run asks (the extraction's prompt start): {right}/{n} = "
          f"{right / n:.1%} routed right; {asked} asked the question, {asked_right} of them right, "
          f"{seconds / max(asked, 1):.2f} s a question (the whole document evaluated: its extraction would reuse it)",
          flush=True)
    for line in wrong:
        print(f"      wrong: {line}")


def parts(spent: dict[str, float], total: float) -> str:
    """Where routing's own seconds went."""
    named = ("read", "signals", "neighbours", "question")
    rest = total - sum(spent.get(k, 0.0) for k in named)
    return "routing's time: " + ", ".join(f"{k} {spent.get(k, 0.0):.2f} s" for k in named) + f", other {rest:.2f} s"


class Split:
    """An observer that notes where the server's log stood when the first schema's run started: before it, routing's
    requests; after it, extraction's (every document is routed before any is extracted)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.at: int | None = None

    def started(self, total: int, backend: str, model: str) -> None:
        if self.at is None:
            self.at = len(self.log.read_text(errors="replace")) if self.log.exists() else 0

    def finished(self, row: dict, totals: object) -> None:
        pass


def routed_run(work: Path, truth: dict[str, str], docs: int, kinds: set[str] | None = None, fixed: bool = True) -> None:
    import polars as pl

    if kinds:  # only these kinds in the run (the others' files removed)
        for doc_id in [d for d, kind in truth.items() if kind not in kinds]:
            (work / "in" / doc_id).unlink()
        truth = {d: k for d, k in truth.items() if k in kinds}
    if docs and docs < len(truth):  # every k-th document: a spread over the kinds, the same one each time
        keep = set(sorted(truth)[:: max(1, len(truth) // docs)][:docs])
        for doc_id in sorted(truth):
            if doc_id not in keep:
                (work / "in" / doc_id).unlink()
        truth = {d: k for d, k in truth.items() if d in keep}
    log = work / "llama-routed.log"
    os.environ["EXTRACTOR_LLAMA_LOG"] = str(log)
    cfg = config(work, "out-routed")
    split = Split(log)
    try:
        summary = routing.run_routed(cfg, split)
    finally:
        os.environ.pop("EXTRACTOR_LLAMA_LOG", None)
    text = log.read_text(errors="replace") if log.exists() else ""
    at = split.at if split.at is not None else len(text)
    (rq, rp, rg), (eq, ep, eg) = evaluated(text[:at]), evaluated(text[at:])
    routes = {r["doc_id"]: r for r in pl.read_parquet(cfg.routing_layout.routes).to_dicts()}
    cpu = summary.routing_compute_s + sum(r.compute_s for r in summary.runs)
    right = sum((routes[d]["schema_name"] or NONE_OF_THEM) == kind for d, kind in truth.items() if d in routes)
    missing = [d for d in truth if d not in routes]
    wrong = [(d, kind, routes[d]["schema_name"], routes[d]["method"]) for d, kind in truth.items()
             if d in routes and (routes[d]["schema_name"] or NONE_OF_THEM) != kind]
    n = len(truth)
    questions = summary.methods.get("model", 0)
    print(f"(3) the routed run on {n} documents ({dict(Counter(truth.values()))}): {right}/{n} = {right / n:.1%} "
          f"routed right; decided by {dict(summary.methods)}; the model server's start {summary.startup_s:.1f} s "
          f"(any run pays it); routing {summary.routing_s:.1f} s of {summary.wall_s:.1f} s = "
          f"{summary.routing_share:.1%} of the run's wall time, {summary.routing_share_after_start:.1%} of it "
          f"without the start ({summary.wall_s - summary.startup_s:.1f} s); "
          f"{parts(summary.routing_parts, summary.routing_s)}"
          f" ({questions} question(s), {summary.routing_prompt_tokens} prompt tokens); model CPU "
          f"{summary.routing_compute_s:.1f} of {cpu:.1f} s = {summary.routing_compute_s / max(cpu, 1e-9):.1%}; "
          "extraction: " + ", ".join(f"{r.schema_name} {r.ok}/{r.documents} ok in {r.wall_s:.1f} s"
                                     for r in summary.runs)
          + f"; the model's work (its log): routing {rq} request(s), {rp} prompt tokens evaluated, {rg} generated; "
          f"extraction {eq} requests, {ep} evaluated, {eg} generated: routing {rp + rg} of {rp + rg + ep + eg} "
          f"tokens = {(rp + rg) / max(rp + rg + ep + eg, 1):.1%}",
          flush=True)
    for item in wrong:
        print(f"      wrong: {item}")
    if missing:
        print(f"      no route: {missing}")
    if fixed:
        asyncio.run(fixed_runs(work, truth, summary, (rp + rg + ep + eg), model_seconds(text)))


async def fixed_runs(work: Path, truth: dict[str, str], routed: routing.RoutedSummary, routed_tokens: int,
                     routed_model_s: float) -> None:
    """The same documents extracted with their true schemas (no routing; those of no known kind not at all) over one
    backend: what routing adds is the routed run's time and model tokens beyond these."""
    from extractor.extraction.runner import run_async

    log = work / "llama-fixed.log"
    os.environ["EXTRACTOR_LLAMA_LOG"] = str(log)
    cfg = config(work, "out-fixed")
    by_kind: dict[str, list] = {}
    for src in discover(cfg.input_dir):
        if truth.get(src.doc_id, NONE_OF_THEM) != NONE_OF_THEM:
            by_kind.setdefault(truth[src.doc_id], []).append(src)
    walls: list[str] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            opening = time.perf_counter()
            backend = await stack.enter_async_context(open_backend(cfg))
            startup = time.perf_counter() - opening

            async def opened():
                return backend

            started = time.perf_counter()
            for kind in sorted(by_kind):  # the routed run's order: the candidates' file names
                sub = cfg.for_schema(kind)
                result = await run_async(sub, None, None, files=by_kind[kind], backend=opened)
                walls.append(f"{kind} {result.ok}/{result.documents} ok in {result.wall_s:.1f} s")
            wall = time.perf_counter() - started
    finally:
        os.environ.pop("EXTRACTOR_LLAMA_LOG", None)
    fixed_log = log.read_text(errors="replace") if log.exists() else ""
    requests, prompt, generated = evaluated(fixed_log)
    fixed_tokens = prompt + generated
    fixed_model_s = model_seconds(fixed_log)
    routed_wall = routed.wall_s - routed.startup_s
    added = routed_wall - wall
    print(f"(3') the same documents with their own schemas, no routing: {', '.join(walls)}; {wall:.1f} s (the model "
          f"server's start apart: {startup:.1f} s), the model evaluated {prompt} prompt tokens and generated "
          f"{generated} over {requests} requests. Routing added {added:.1f} s = {added / routed_wall:.1%} of the "
          f"routed run ({routed_wall:.1f} s without the start) and {routed_tokens - fixed_tokens} model tokens = "
          f"{(routed_tokens - fixed_tokens) / max(routed_tokens, 1):.1%} of its {routed_tokens}; the model's own "
          f"seconds (its log): {routed_model_s:.1f} routed, {fixed_model_s:.1f} fixed, added "
          f"{(routed_model_s - fixed_model_s) / max(routed_model_s, 1e-9):.1%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="0,1,2,3,4", help="which measurements, e.g. 0,2")
    parser.add_argument("--run-docs", type=int, default=0, help="(3) on this many documents (0: all)")
    parser.add_argument("--run-kinds", default="", help="(3) only documents of these kinds, e.g. cover_letter,resume,"
                                                        "none (an invoice takes the embedded model minutes)")
    parser.add_argument("--no-fixed", action="store_true", help="(3) without the fixed-schema runs it is compared with")
    args = parser.parse_args()
    if not DATASET.is_file():
        raise SystemExit(f"the shared resume dataset is not here: {DATASET}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        truth = build_folder(work)
        kinds = Counter(truth.values())
        print(f"mixed folder: {len(truth)} documents ({dict(kinds)})", flush=True)
        only = set(args.only.split(","))
        if "0" in only:
            asyncio.run(hints_only(work, truth))
        if "1" in only:
            asyncio.run(model_only(work, truth))
        if "2" in only:
            asyncio.run(cascade(work, truth))
        if "3" in only:
            with contextlib.suppress(KeyboardInterrupt):
                routed_run(work, truth, args.run_docs, set(filter(None, args.run_kinds.split(","))) or None,
                           fixed=not args.no_fixed)
        if "4" in only:
            asyncio.run(cascade_in_run(work, truth))


if __name__ == "__main__":
    main()
