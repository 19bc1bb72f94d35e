"""Where one schema's outputs live: every file name under `<output>/<schema>/` is spelled here once; and where
`--schema auto` keeps its routing decisions (`<output>/_routing/`, a name no schema can have: schema files
starting with "_" are not schemas)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """The output folder of one schema (`<output_dir>/<schema>`)."""

    root: Path

    @classmethod
    def of(cls, output_dir: Path, schema: str) -> Layout:
        return cls(Path(output_dir) / schema)

    @property
    def journal(self) -> Path:
        """SQLite journal: every finished document, labels, runs, batch submissions, metrics."""
        return self.root / "journal.sqlite3"

    @property
    def results(self) -> Path:
        return self.root / "results.parquet"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence.parquet"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.parquet"

    @property
    def calibration(self) -> Path:
        """What the newest `extractor eval` measured of the label-free confidence (calibration.json)."""
        return self.root / "calibration.json"

    @property
    def runs(self) -> Path:
        return self.root / "runs.parquet"

    @property
    def summary(self) -> Path:
        return self.root / "run_summary.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, run_id: str) -> Path:
        return self.logs / f"{run_id}.jsonl"

    @property
    def lock(self) -> Path:
        return self.root / "run.lock"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def review(self) -> Path:
        return self.root / "review.html"

    @property
    def finetune(self) -> Path:
        """Folder of train.jsonl / validation.jsonl."""
        return self.root / "finetune"

    @property
    def finetuned(self) -> Path:
        """`extractor finetune-local`'s models: one folder per training (`finetuned_model`)."""
        return self.root / "finetuned"

    def finetuned_model(self, name: str) -> Path:
        """One locally fine-tuned model: `finetuned/<name>/<name>.gguf`, its manifest beside it
        (`llm.finetuned.manifest_path`). The file's own name is unique to its training: results are cached under
        a model file's name."""
        return self.finetuned / name / f"{name}.gguf"

    @property
    def experiments(self) -> Path:
        """`extractor experiment`'s comparisons: one row per experiment, variant and field
        (table.experiments_schema)."""
        return self.root / "experiments.parquet"

    @property
    def experiment_output(self) -> Path:
        """The output folder experiment variants run in: their own journal and results, so a trial model's
        values never become the team's results."""
        return self.root / "experiments"

    def export(self, fmt: str) -> Path:
        """The spreadsheet export: results.xlsx or results.csv."""
        return self.root / f"results.{fmt}"

    def child(self, field: str) -> Path:
        """The child table of a schema's list-of-objects field: `line_items` -> line_items.parquet (one row per
        item; extractor.table.child_frame)."""
        return self.root / f"{field}.parquet"

    @staticmethod
    def child_export(export: Path, field: str) -> Path:
        """A CSV export's file for a child table, next to it: results.csv -> results.line_items.csv."""
        return export.with_name(f"{export.stem}.{field}{export.suffix}")


# The stems of the Parquet files above, and the export's summary sheet: a child table may not be named so
# (schemas.load_schema_file says so).
TAKEN_STEMS = ("results", "evidence", "metrics", "runs", "experiments", "summary")

@dataclass(frozen=True)
class RoutingLayout:
    """The output folder of `--schema auto`'s routing (`<output_dir>/_routing`)."""

    root: Path

    @classmethod
    def of(cls, output_dir: Path) -> RoutingLayout:
        return cls(Path(output_dir) / "_routing")

    @property
    def store(self) -> Path:
        """SQLite: every routing decision by content hash, each document's newest route, reviewers' re-routes."""
        return self.root / "routes.sqlite3"

    @property
    def routes(self) -> Path:
        """One row per document of the folder: the schema it went to (or why none), how, how sure, at what cost."""
        return self.root / "routes.parquet"

    def export(self, fmt: str) -> Path:
        """`routes.xlsx` / `routes.csv`: the routes as a sheet to check and correct (`extractor route --import`)."""
        return self.root / f"routes.{fmt}"

    @property
    def summary(self) -> Path:
        """The last routed run: routing's own figures and each schema's run summary."""
        return self.root / "run_summary.json"

    @property
    def lock(self) -> Path:
        return self.root / "run.lock"
