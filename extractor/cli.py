"""Command line: parse flags, build one frozen config, call one library function, print the result."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from extractor.ladder import assumed

if TYPE_CHECKING:
    from extractor.config import RunConfig

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Extract typed fields from a folder of documents into Parquet.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file (default ./extractor.toml)")]
SchemasOpt = Annotated[Path | None, typer.Option("--schemas", help="folder of schema modules [./schemas]")]
OutputOpt = Annotated[Path | None, typer.Option("--output", help="output folder [./outputs]")]
ModelOpt = Annotated[str | None, typer.Option(help="model name \\[gpt-4o-mini, or the embedded model]")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")]
BackendOpt = Annotated[str | None, typer.Option(help="auto | openai | embedded")]
ModelPathOpt = Annotated[Path | None, typer.Option(help="GGUF file for the embedded backend")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Any ExtractorError ends the command with its message on stderr and its own exit code."""
    from extractor.errors import ExtractorError

    try:
        yield
    except ExtractorError as exc:
        raise _fail(str(exc), int(exc.exit_code)) from None


def _settings(config_file: Path | None, **flags: Any) -> RunConfig:
    """The one settings object of this invocation: flags (None: not given) > config file > environment."""
    from extractor.config import build_config

    return build_config(flags, config_file)


@app.command()
def run(
    input_dir: Annotated[Path, typer.Argument(help="folder of documents (read recursively)")],
    schema: Annotated[str | None, typer.Option(
        help="schema name, a file in the schemas folder, or auto: route each document to the schema of its kind "
             "\\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    mode: Annotated[str | None, typer.Option(help="tools | json_schema | json | md_json")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="auto | whole | fields: one call for the whole schema, or one grounded question per field "
             "(small local models) [auto: fields for the embedded model, whole otherwise]")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="documents asking the model at once [8; 1 for the embedded model]")] = None,
    max_chars: Annotated[int | None, typer.Option(help="longest document text read [2000000]")] = None,
    context_tokens: Annotated[int | None, typer.Option(
        help="the model's context window: longer documents are chunked [known window]")] = None,
    samples: Annotated[int | None, typer.Option(help="self-consistency: answers per sampled document")] = None,
    sample_fraction: Annotated[float | None, typer.Option(help="share of documents sampled [1.0]")] = None,
    examples: Annotated[str | None, typer.Option(
        help="few-shot examples: static (the schema's) | none | similar:K (K most similar labeled documents too)",
    )] = None,
    pages: Annotated[str | None, typer.Option(
        help="pages read by OCR go to the model as: text | images | both (images need a model that reads them)"
             " \\[text]")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be sent, and its cost")] = False,
    force: Annotated[bool, typer.Option("--force", help="re-extract documents that have a stored result")] = False,
    xlsx: Annotated[bool, typer.Option(
        "--xlsx", help="also write outputs/<schema>/results.xlsx (with --schema auto: each schema's, and "
                       "outputs/_routing/routes.xlsx)")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="with --xlsx: replace results.xlsx even if it holds edits that were not imported",
    )] = False,
    archive: Annotated[Path | None, typer.Option(help="move ok inputs here once their result is saved")] = None,
    batch: Annotated[bool, typer.Option(
        "--batch", help="submit through the OpenAI Batch API (half price; a later run collects the answers)",
    )] = False,
    max_cost: Annotated[float | None, typer.Option(
        help="USD: send no new document once the run would spend more (the rest waits for the next run; exit 4)",
    )] = None,
    engine: Annotated[str | None, typer.Option(
        help="local (one process) | ray (documents read and extracted in Ray actors; RAY_ADDRESS or ray_address "
             "for a cluster) [local]")] = None,
    logprobs: Annotated[bool, typer.Option(
        "--logprobs", help="field strategy: the model's token probabilities of each answer enter its confidence",
    )] = False,
    config: ConfigOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging on stderr")] = False,
) -> None:
    """Extract SCHEMA fields from every document under INPUT_DIR."""
    from rich.console import Console

    from extractor.extraction import runner
    from extractor.views.progress import LogProgress, RichProgress, progress_for
    from extractor.views.terminal import print_summary

    console = Console(stderr=True)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    with _errors():
        cfg = _settings(config, input_dir=input_dir, schema=schema, schemas_dir=schemas, output_dir=output,
                        model=model, base_url=base_url, backend=backend, model_path=model_path, mode=mode,
                        strategy=strategy, concurrency=concurrency, max_chars=max_chars, samples=samples,
                        sample_fraction=sample_fraction, force=force or None, archive_dir=archive,
                        max_cost_usd=max_cost, batch=batch or None, examples=examples,
                        context_tokens=context_tokens, pages=pages, engine=engine,
                        logprobs=logprobs or None)
        if dry_run and cfg.routed:
            from extractor.extraction.routing import plan_routed
            from extractor.views.terminal import print_routed_plan

            print_routed_plan(plan_routed(cfg), Console())
            return
        if dry_run:
            from extractor.extraction.plan import plan
            from extractor.views.terminal import print_plan

            print_plan(plan(cfg), Console())
            return
        if cfg.resolved_backend == "embedded":
            shape = "one question per field" if cfg.resolved_strategy == "fields" else "one call per document"
            console.print("No API key or base URL configured: using the embedded local model "
                          f"(SmolLM2-135M via llama.cpp, offline, {shape}).")
        observer: RichProgress | LogProgress | None = None
        if progress:
            observer = progress_for(console)
        if cfg.routed:
            from extractor.extraction.routing import run_routed
            from extractor.views.terminal import print_routed_summary

            try:
                routed = run_routed(cfg, observer)
            finally:
                if observer is not None:
                    observer.close()
            print_routed_summary(routed, Console())
            exit_code = routed.exit_code
            if xlsx:
                ran = list(dict.fromkeys(part.schema_name for part in routed.runs))  # a schema may run twice
                exit_code = _export_routed(cfg, ran, overwrite) or exit_code
            if routed.cost_limited:
                typer.echo(f"error: {routed.cost_limited}", err=True)
            for part in routed.runs:
                for message in (part.aborted, part.batch_failed, part.cost_limited):
                    if message:
                        typer.echo(f"error: {part.schema_name}: {message}", err=True)
            raise typer.Exit(exit_code)
        try:
            summary = runner.run(cfg, observer)
        finally:
            if observer is not None:
                observer.close()
    print_summary(summary, Console())
    exit_code = summary.exit_code
    if xlsx:
        from extractor.views.spreadsheets import ExportConfig, export

        try:
            with _errors():
                sheet = export(ExportConfig(settings=cfg, overwrite=overwrite))
            typer.echo(f"wrote {sheet}")
        except typer.Exit as refused:  # said why on stderr; the run's results are saved, so go on
            exit_code = exit_code or refused.exit_code
    if summary.aborted:
        typer.echo(f"error: {summary.aborted}", err=True)
    if summary.interrupted:
        typer.echo(f"error: interrupted ({summary.interrupted}): {summary.documents} document(s) finished "
                   "and saved; run again to continue", err=True)
    if summary.batch_failed:
        typer.echo(f"error: {summary.batch_failed}", err=True)
    if summary.cost_limited:
        typer.echo(f"error: {summary.cost_limited}", err=True)
    raise typer.Exit(exit_code)


def _export_routed(cfg: Any, schemas: list[str], overwrite: bool) -> int:
    """`run --schema auto --xlsx`: each schema's results.xlsx and the routes sheet; the exit code of a refusal."""
    from extractor.views.spreadsheets import ExportConfig, export, export_routes

    code = 0
    for name in [*schemas, None]:  # None: the routes sheet, last
        try:
            with _errors():
                if name is None:
                    path = export_routes(ExportConfig(settings=cfg, overwrite=overwrite))
                else:
                    path = export(ExportConfig(settings=cfg.for_schema(name), overwrite=overwrite))
            typer.echo(f"wrote {path}")
        except typer.Exit as refused:  # said why on stderr; the run's results are saved, so go on
            code = code or refused.exit_code
    return code


@app.command("export")
def export_results(
    what: Annotated[str, typer.Argument(help="results (a spreadsheet) | finetune (OpenAI chat JSONL)")] = "results",
    min_agreement: Annotated[float, typer.Option(help="finetune: least consistency of unlabeled rows")] = 0.9,
    target_model: Annotated[str | None, typer.Option(help="finetune: model to fine-tune (for the estimate)")] = None,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="xlsx | csv")] = "xlsx",
    out: Annotated[Path | None, typer.Option(
        help="file to write \\[outputs/<schema>/results.<format>; with --schema auto: "
             "outputs/_routing/routes.<format>]")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="replace the file even if it holds edits that were not imported (they are lost)",
    )] = False,
    encoding: Annotated[str, typer.Option(
        help="csv: text encoding; the default's byte order mark makes Excel read UTF-8",
    )] = "utf-8-sig",
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
) -> None:
    """Write the latest results as a spreadsheet, or fine-tuning data (`extractor export finetune`)."""
    from extractor.config import given

    if what not in ("results", "finetune"):
        raise _fail(f"export what? 'results' or 'finetune', not {what!r}")
    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output)
        if what == "finetune":
            from extractor.ladder.finetune import FinetuneConfig, export_finetune

            report = export_finetune(FinetuneConfig(settings=cfg, out_dir=out, min_agreement=min_agreement,
                                                    **given(target_model=target_model)))
            typer.echo(report.as_text())
            return
        from extractor.views.spreadsheets import ExportConfig, export, export_routes

        options = ExportConfig(settings=cfg, fmt=fmt, out=out, overwrite=overwrite, encoding=encoding)
        path = export_routes(options) if cfg.routed else export(options)
    typer.echo(f"wrote {path}")


@app.command("finetune-local")
def finetune_local(
    held_back: Annotated[float, typer.Option(
        help="share of the labeled documents never trained on (the experiment scores these)")] = 0.25,
    seed: Annotated[int, typer.Option(help="seed of the held-back draw and of training")] = 0,
    epochs: Annotated[int, typer.Option(help="passes over the training documents")] = 2,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate of the LoRA adapter")] = 5e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank (alpha is twice it)")] = 8,
    max_steps: Annotated[int | None, typer.Option(
        help="stop after this many steps \\[epochs x sequences]; 0 exports the base weights untrained")] = None,
    max_tokens: Annotated[int, typer.Option(help="tokens of one packed sequence (a document and its questions)")
                          ] = 2048,
    min_agreement: Annotated[float, typer.Option(help="least consistency of unlabeled rows (as export finetune)")
                             ] = 0.9,
    model_path: Annotated[Path | None, typer.Option(help="base GGUF \\[the embedded model]")] = None,
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Fine-tune the embedded model (a LoRA adapter, merged into a GGUF) on the labels store, holding some back.

    Needs the `finetune` extra (torch, transformers, peft, gguf); CPU works, slowly."""
    from extractor.finetune.local import LocalFinetuneConfig
    from extractor.finetune.local import finetune_local as train_local

    def progress(step: int, steps: int, loss: float) -> None:
        typer.echo(f"step {step}/{steps}: loss {loss:.4f}", err=True)

    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output, model_path=model_path)
        report = train_local(LocalFinetuneConfig(
            settings=cfg, held_back=held_back, seed=seed, epochs=epochs, learning_rate=learning_rate, rank=rank,
            max_steps=max_steps, max_tokens=max_tokens, min_agreement=min_agreement), progress)
    typer.echo(report.as_text())


@app.command("import-corrections")
def import_corrections(
    file: Annotated[Path, typer.Argument(help="an exported .xlsx or .csv, edited by a person")],
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Store the edited cells of an exported file as gold labels (bad edits are reported and skipped)."""
    from extractor.views.spreadsheets import ImportConfig
    from extractor.views.spreadsheets import import_corrections as run_import

    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output)
        report = run_import(ImportConfig(settings=cfg, file=file))
    typer.echo(f"{report.rows_read} row(s) read, {len(report.applied)} correction(s) stored as labels")
    for doc_id, field in report.applied:
        typer.echo(f"  stored  {doc_id} / {field}")
    for message in report.rejected:
        typer.echo(f"  skipped {message}", err=True)
    for doc_id in report.unknown_docs:
        typer.echo(f"  skipped {doc_id}: no such document in the results", err=True)
    raise typer.Exit(report.exit_code)


@app.command("eval")
def evaluate_results(
    labels: Annotated[Path | None, typer.Option(help="labels file (.jsonl, .csv, .parquet) keyed by doc_id")] = None,
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: fields, overall, calibration")] = False,
    routing: Annotated[bool, typer.Option(
        "--routing", help="score `run --schema auto`'s routes against re-routes and labeled documents instead",
    )] = False,
) -> None:
    """Score the latest results against gold labels (a file, plus stored corrections)."""
    import json

    from rich.console import Console

    if routing:
        from extractor.quality.routing import evaluate_routing
        from extractor.views.terminal import print_routing_eval

        with _errors():
            routed = evaluate_routing(_settings(config, schema="auto", schemas_dir=schemas, output_dir=output))
        if as_json:
            typer.echo(json.dumps(routed.as_dict(), ensure_ascii=False))
        else:
            print_routing_eval(routed, Console(width=160))
        return

    from extractor.quality.evaluation import EvalConfig, evaluate
    from extractor.views.terminal import print_eval

    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output)
        report = evaluate(EvalConfig(settings=cfg, labels_file=labels))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print_eval(report, Console(width=160))


@app.command("route")
def route(
    doc_id: Annotated[str | None, typer.Argument(help="the document, as its doc_id in routes.parquet")] = None,
    schema: Annotated[str | None, typer.Argument(help="the schema it is, or none (of no known kind)")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--import", help="a sheet (.csv, .xlsx, .parquet) with doc_id and schema_name columns: its changed rows",
    )] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Re-route documents of `run --schema auto`: a person's label of a document's kind, followed by the next run."""
    import getpass

    from extractor.extraction.routing import import_routes, reroute

    with _errors():
        cfg = _settings(config, schema="auto", schemas_dir=schemas, output_dir=output)
        if from_file is not None:
            report = import_routes(cfg, from_file)
            typer.echo(f"{report.rows_read} row(s) read, {len(report.stored)} re-route(s) stored")
        elif doc_id and schema:
            report = reroute(cfg, [(doc_id, schema)], source=f"person:{getpass.getuser()}")
        else:
            raise _fail("give DOC_ID SCHEMA, or --import FILE")
    for stored_id, name in report.stored:
        typer.echo(f"  {stored_id} -> {name} (the next `run --schema auto` routes it so)")
    for message in report.rejected:
        typer.echo(f"  skipped {message}", err=True)
    raise typer.Exit(report.exit_code)


@app.command("experiment")
def experiment(
    input_dir: Annotated[Path, typer.Argument(help="folder of documents; the labeled ones are the sample")],
    variant: Annotated[list[str], typer.Option(
        help="a variant: setting=value[,setting=value...] over this command's settings, e.g. examples=none, "
             "examples=similar:3, model=gpt-4.1-mini,examples=static, strategy=whole, samples=3, "
             "schemas=schemas_v2 (repeat --variant for each)")],
    labels: Annotated[Path | None, typer.Option(
        help="labels file (.jsonl, .csv, .parquet) keyed by doc_id, stored with the team's labels first")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many labeled documents (a stable draw)")] = None,
    max_cost: Annotated[float | None, typer.Option(
        help="USD per variant: a variant sends no new document once it would spend more")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="what each variant would send, and its cost")] = False,
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    config: ConfigOpt = None,
    progress: Annotated[bool, typer.Option(help="show progress")] = True,
) -> None:
    """Run VARIANTs over the labeled documents of INPUT_DIR and compare accuracy, tokens, cost and latency."""
    from rich.console import Console

    from extractor.ladder.experiment import ExperimentConfig, plan_experiment, run_experiment
    from extractor.views.progress import LogProgress, RichProgress, progress_for
    from extractor.views.terminal import print_experiment, print_experiment_plan

    console = Console(stderr=True)

    def observer(spec: str, settings: RunConfig) -> RichProgress | LogProgress | None:
        console.print(f"variant {spec}: {settings.resolved_model} ({settings.resolved_backend}), "
                      f"examples {settings.examples}, strategy {settings.resolved_strategy}", markup=False)
        return progress_for(console) if progress else None

    with _errors():
        cfg = _settings(config, input_dir=input_dir, schema=schema, schemas_dir=schemas, output_dir=output,
                        model=model, base_url=base_url, backend=backend, model_path=model_path,
                        max_cost_usd=max_cost)
        experiment_config = ExperimentConfig(settings=cfg, variants=tuple(variant), labels_file=labels, limit=limit)
        if dry_run:
            print_experiment_plan(plan_experiment(experiment_config), Console(width=160))
            return
        report = run_experiment(experiment_config, observer)
    print_experiment(report, Console(width=200))
    raise typer.Exit(report.exit_code)


@app.command("breakeven")
def breakeven(
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    model: Annotated[str | None, typer.Option(help="today's model \\[the latest run's]")] = None,
    target_model: Annotated[str | None, typer.Option(
        help=f"model to fine-tune \\[{assumed.FINETUNE_TARGET}]")] = None,
    training_examples: Annotated[int | None, typer.Option(
        help=f"labelled examples to train on \\[{assumed.TRAINING_EXAMPLES}]")] = None,
    epochs: Annotated[int | None, typer.Option(help=f"training epochs \\[{assumed.EPOCHS}]")] = None,
    reask_rate: Annotated[float | None, typer.Option(
        help=f"re-asks per document after fine-tuning \\[{assumed.REASK_RATE_FINETUNED}]")] = None,
    target: Annotated[float | None, typer.Option(
        help="share of fields right to reach (0.95): recommend the cheapest measured option that reaches it "
             "(needs `extractor experiment`)")] = None,
    docs_per_month: Annotated[float | None, typer.Option(
        help="documents a month, for every figure \\[new documents a production night in the journal x 30]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the same figures and verdict as one JSON object")] = False,
    config: ConfigOpt = None,
) -> None:
    """When would fine-tuning pay for itself, and which rung is next? Observed runs priced, and one verdict.

    With experiments.parquet (`extractor experiment`): the measured variants' accuracy against their cost."""
    from extractor.config import given
    from extractor.ladder.breakeven import BreakEvenConfig, decide
    from extractor.ladder.costmodel import Assumptions

    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output)
        assumptions = Assumptions(**given(target_model=target_model, training_examples=training_examples,
                                          epochs=epochs, reask_rate_finetuned=reask_rate,
                                          docs_per_month=docs_per_month))
        decision = decide(BreakEvenConfig(settings=cfg, model=model, assumptions=assumptions, target=target))
    if as_json:
        import json

        typer.echo(json.dumps(decision.as_dict(), indent=2))
        return
    typer.echo(decision.text())


@app.command("report")
def report(
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    out: Annotated[Path | None, typer.Option(help="HTML file \\[outputs/<schema>/report.html]")] = None,
    target_model: Annotated[str | None, typer.Option(help="model to fine-tune in the break-even")] = None,
    target: Annotated[float | None, typer.Option(
        help="share of fields right to reach (0.95): the verdict recommends the cheapest measured option that "
             "reaches it")] = None,
    docs_per_month: Annotated[float | None, typer.Option(
        help="documents a month, for every figure \\[new documents a production night in the journal x 30]")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write a self-contained HTML report (costs, agreement, accuracy, drift, break-even) and summarize it."""
    from rich.console import Console

    from extractor.config import given
    from extractor.ladder.costmodel import Assumptions
    from extractor.views.htmlreport import ReportConfig, build_report, print_report_summary, write_report

    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output)
        report_config = ReportConfig(settings=cfg, out=out, target=target,
                                     assumptions=Assumptions(**given(target_model=target_model,
                                                                     docs_per_month=docs_per_month)))
        data = build_report(report_config)
        path = write_report(report_config, data)
    print_report_summary(data, Console(width=120))
    typer.echo(f"wrote {path}")


@app.command("review")
def review(
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    schemas: SchemasOpt = None,
    output: OutputOpt = None,
    out: Annotated[Path | None, typer.Option(help="HTML file \\[outputs/<schema>/review.html]")] = None,
    archive: Annotated[Path | None, typer.Option(help="where `run --archive` moved the inputs")] = None,
    serve: Annotated[bool, typer.Option(
        "--serve", help="a local web app instead of the page: review by keyboard, store accepts and edits as "
                        "your labels (Ctrl-C stops it)")] = False,
    port: Annotated[int | None, typer.Option(help="--serve: port to listen on, 0 for a free one \\[8765]")] = None,
    host: Annotated[str | None, typer.Option(
        help="--serve: address to listen on; anything but this machine is warned about \\[127.0.0.1]")] = None,
    reviewer: Annotated[str | None, typer.Option(help="--serve: whose labels they are \\[the OS user]")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write an HTML page of each document's text with its extracted values marked (needs review first).

    With --serve: a local web app over the same, which stores what you accept or correct as your labels."""
    if not serve and (port is not None or host is not None or reviewer is not None):
        raise _fail("--port, --host and --reviewer are for the app: add --serve")
    if serve and out is not None:
        raise _fail("--out is for the page `extractor review` writes; --serve writes no file")
    with _errors():
        cfg = _settings(config, schema=schema, schemas_dir=schemas, output_dir=output, archive_dir=archive,
                        reviewer=reviewer)
        if serve:
            _serve_review(cfg, host, port)
            return
        from extractor.views.review import ReviewConfig, write_review

        path = write_review(ReviewConfig(settings=cfg, out=out))
    typer.echo(f"wrote {path}")


def _serve_review(cfg: RunConfig, host: str | None, port: int | None) -> None:
    """`review --serve`: the app's URL on stdout (one line), until Ctrl-C or SIGTERM."""
    from extractor.config import given
    from extractor.views.reviewapp import ReviewApp, ServeConfig, serve

    def announce(app: ReviewApp) -> None:
        if app.warning:
            typer.echo(f"warning: {app.warning}", err=True)
        typer.echo(f"reviewing {app.desk.schema.name} as {app.desk.reviewer}; Ctrl-C stops the app", err=True)
        typer.echo(app.url)

    serve(ServeConfig(settings=cfg, **given(host=host, port=port)), announce)


@app.command("text")
def text(
    file: Annotated[Path, typer.Argument(help="a document (txt, md, pdf, docx, html, eml, or a scan: png, jpg, "
                                              "tif, webp, bmp)")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON with page boundaries and OCR boxes")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print exactly the text the model sees for FILE (evidence offsets index into it)."""
    import json

    from extractor.documents import read_text, text_json

    with _errors():
        cfg = _settings(config)
        # Any length: evidence offsets of a chunked long document index into this text, whatever max_chars is.
        doc = read_text(file, max_chars=sys.maxsize, timeout_s=cfg.parse_timeout_s,
                        ocr_max_pages=cfg.ocr_max_pages, ocr_page_timeout_s=cfg.ocr_page_timeout_s)
    if as_json:
        typer.echo(json.dumps(text_json(doc), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(doc.text + "\n")


@app.command("runs")
def list_runs(
    schema: Annotated[str | None, typer.Option(help="schema name \\[cover_letter]")] = None,
    output: OutputOpt = None,
    last: Annotated[int, typer.Option(help="how many recent runs to show")] = 20,
    config: ConfigOpt = None,
) -> None:
    """Print the history of runs (outputs/<schema>/runs.parquet)."""
    from rich.console import Console

    from extractor.views.terminal import load_runs, print_runs

    with _errors():
        cfg = _settings(config, schema=schema, output_dir=output)
        runs = load_runs(cfg.layout)
    print_runs(runs.tail(last), Console(width=200))


@app.command("schemas")
def list_schemas(schemas: SchemasOpt = None, config: ConfigOpt = None) -> None:
    """List the schemas found in the schemas folder."""
    from rich.console import Console
    from rich.table import Table

    from extractor.schemas import list_schemas as load_all

    with _errors():
        found = load_all(_settings(config, schemas_dir=schemas).schemas_dir)
    table = Table("schema", "version", "fields", "description")
    for s in found:
        table.add_row(s.name, s.version, str(len(s.field_names)), s.description)
    Console().print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
