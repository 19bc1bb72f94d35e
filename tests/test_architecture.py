"""The seams every path goes through: one intake (run, --batch and --dry-run decide alike), one settings
object per invocation (the config file reaches every command), and no import cycles."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from extractor.extraction import runner
from extractor.extraction.plan import plan
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, serving, write_docs

LETTERS = {f"d{i}.txt": f"Cover letter number {i}." for i in range(3)}


def test_dry_run_agrees_with_the_run_after_a_batch_submission(tmp_path: Path) -> None:
    with serving(batch_polls=5) as server:
        write_docs(tmp_path / "in", {**LETTERS, "new.txt": "A letter that came after the batch."})
        (tmp_path / "in" / "new.txt").rename(tmp_path / "later.txt")
        assert runner.run(make_config(tmp_path, server, batch=True)).submitted == 3
        (tmp_path / "later.txt").rename(tmp_path / "in" / "new.txt")

        dry = plan(make_config(tmp_path, server))
        assert [d.doc_id for d in dry.to_send] == ["new.txt"], "documents waiting in a batch are not sent"
        assert dry.pending == 3
        real = runner.run(make_config(tmp_path, server))
        assert (real.pending, real.ok) == (3, 1)
        assert len(server_log(server)) == 1, "the run sent exactly what the dry run listed"
        # --batch's own dry run agrees too: nothing new to submit, the three still wait.
        after = plan(make_config(tmp_path, server, batch=True))
        assert (after.to_send, after.pending, after.cached) == ([], 3, 1)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([sys.executable, "-m", "extractor", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.mark.integration
def test_export_finetune_finds_inputs_in_the_config_files_archive(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": 'Letter A [[answer:{"applicant_name": "Ada Lovelace"}]]'})
    (tmp_path / "extractor.toml").write_text(
        f'archive_dir = "done"\nschemas_dir = "{ROOT / "schemas"}"\noutput_dir = "out"\n')
    ran = _cli("run", "in", "--base-url", fake_server.base_url, "--model", "gpt-4o-mini", "--no-progress",
               cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "done" / "a.txt").is_file() and not (tmp_path / "in" / "a.txt").exists()
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"doc_id": "a.txt", "applicant_name": "Ada Lovelace", "language": "en"}) + "\n")
    assert _cli("eval", "--labels", str(labels), cwd=tmp_path).returncode == 0

    exported = _cli("export", "finetune", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "source file missing" not in exported.stdout
    train = tmp_path / "out" / "cover_letter" / "finetune" / "train.jsonl"
    validation = tmp_path / "out" / "cover_letter" / "finetune" / "validation.jsonl"
    lines = [line for path in (train, validation) if path.exists() for line in path.read_text().splitlines()]
    assert len(lines) == 1 and "Ada Lovelace" in lines[0]


def _imports(package: Path) -> dict[str, set[str]]:
    """Module -> extractor modules it imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("extractor"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("extractor"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = found
    modules = set(graph)
    return {name: {m for m in deps if m in modules and m != name} for name, deps in graph.items()}


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _imports(ROOT / "extractor")
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in graph[node]:
                if dep == start and dep not in ("extractor",):
                    cycles.append(" -> ".join([*path, dep]))
                elif dep not in seen and dep != "extractor":
                    seen.add(dep)
                    stack.append((dep, [*path, dep]))
    assert cycles == [], "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_command_configs_hold_the_one_settings_object_and_only_their_own_options() -> None:
    """Schema, folders, prices, base_url, archive_dir and max_chars come from `settings`, never a copy."""
    import dataclasses

    from extractor.config import RunConfig
    from extractor.ladder.breakeven import BreakEvenConfig
    from extractor.ladder.finetune import FinetuneConfig
    from extractor.quality.evaluation import EvalConfig
    from extractor.views.htmlreport import ReportConfig
    from extractor.views.spreadsheets import ExportConfig, ImportConfig

    copies = {"schema", "schemas_dir", "output_dir", "prices", "finetune_prices", "price_overrides", "base_url",
              "archive_dir", "max_chars"}
    for cls in (ExportConfig, ImportConfig, EvalConfig, FinetuneConfig, BreakEvenConfig, ReportConfig):
        fields = dataclasses.fields(cls)
        assert (fields[0].name, fields[0].type) == ("settings", "RunConfig"), cls.__name__
        assert fields[0].default is dataclasses.MISSING, f"{cls.__name__}: settings is required"
        copied = copies & {f.name for f in fields}
        assert not copied, f"{cls.__name__} copies settings: {', '.join(sorted(copied))}"
    settings = RunConfig(output_dir=Path("o"), schema="s")
    assert ReportConfig(settings=settings).breakeven_config().settings is settings
    assert ReportConfig(settings=settings).report_path == settings.layout.report
    assert FinetuneConfig(settings=settings).out_dir == settings.layout.finetune
