"""finetune-local without torch: the held-back split, the data (the strategy's questions answered from labels,
packed), the manifest, refusals on too little data, and experiments never scoring a model's training documents."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from extractor.documents import sha256_file
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.extraction.fields import answered_questions
from extractor.extraction.prompts import wrap_document
from extractor.finetune.data import IGNORE, conversation, data_digest, held_back_split, pack, split_key
from extractor.finetune.local import LocalFinetuneConfig, finetune_local, prepare
from extractor.ladder.experiment import ExperimentConfig, run_experiment
from extractor.ladder.finetune import FinetuneConfig, select_examples
from extractor.llm.finetuned import Manifest, manifest_path, read_manifest
from extractor.schemas import load_schema
from extractor.store import PERSON, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, settings, write_docs

SCHEMA = load_schema(ROOT / "schemas", "cover_letter")
# SmolLM2-135M-Instruct's chat template, as its GGUF carries it (tokenizer.chat_template)
TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
            "<|im_end|>\n' }}"
            "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LETTER = ("Dear Hiring Team at Corrib Energy Analytics DAC,\n\nI am applying for the Data Engineer role. I have six "
          "years of experience with Python and SQL.\n\nKind regards,\nAda Lovelace\nada@example.org\n")


def _encode(text: str) -> list[int]:
    return [ord(c) for c in text]  # one "token" a character: the lengths and masks are then readable


def test_split_is_seeded_by_sha_not_by_name_or_order() -> None:
    docs = [(f"d{i}.txt", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(8)]
    split = held_back_split(docs, 0.25, seed=0)
    assert len(split.held_back) == 2 and len(split.train) == 6
    assert set(split.train) | set(split.held_back) == {d for d, _ in docs}
    assert not set(split.train) & set(split.held_back)
    assert held_back_split(list(reversed(docs)), 0.25, seed=0).held_back == sorted(split.held_back, reverse=True)
    renamed = [(f"renamed_{d}", sha) for d, sha in docs]
    held = held_back_split(renamed, 0.25, seed=0).held_back
    assert {d.removeprefix("renamed_") for d in held} == set(split.held_back)
    assert set(split.held_back) == {d for d, sha in sorted(docs, key=lambda x: split_key(0, x[1]))[:2]}
    draws = {tuple(held_back_split(docs, 0.25, seed=s).held_back) for s in range(6)}
    assert len(draws) > 1, "the seed changes the draw"


def test_a_copy_of_a_held_back_document_is_held_back_too() -> None:
    docs = [("a.txt", "s1"), ("b.txt", "s2"), ("c.txt", "s3"), ("a_copy.txt", "s1")]
    for seed in range(10):
        split = held_back_split(docs, 0.25, seed)
        assert ("a.txt" in split.held_back) == ("a_copy.txt" in split.held_back)
        assert split.train, "something is left to train on"


def test_too_few_labeled_documents_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        held_back_split([("a.txt", "s1")], 0.25, seed=0)
    with pytest.raises(ConfigError, match="held_back must be above 0"):
        held_back_split([("a.txt", "s1"), ("b.txt", "s2")], 0.0, seed=0)
    assert held_back_split([("a.txt", "s1"), ("b.txt", "s2")], 0.25, seed=0).train, "two: one trains, one is held"


def test_questions_are_the_strategys_prompts_answered_from_the_labels() -> None:
    values = {"applicant_name": "Ada Lovelace", "desired_role": "Data Engineer", "skills": ["Python", "SQL"],
              "years_experience": 6, "language": "en"}
    answered = asyncio.run(answered_questions(SCHEMA, LETTER, values))
    by_field = {next(iter(json.loads(a.answer))): a for a in answered}
    assert json.loads(by_field["applicant_name"].answer) == {"applicant_name": "Ada Lovelace"}
    assert json.loads(by_field["desired_role"].answer) == {"desired_role": "Data Engineer"}
    for pair in answered:  # exactly what the strategy sends: its system prompt, the document first
        assert [m["role"] for m in pair.messages] == ["system", "user"]
        assert pair.messages[1]["content"].startswith(wrap_document(LETTER) + "\n\n")
        assert "Question: " in pair.messages[1]["content"]
    assert "email" not in by_field and "language" not in by_field, "fields the finders settle are not asked"
    unlabeled = {next(iter(json.loads(a.answer))): json.loads(a.answer) for a in
                 asyncio.run(answered_questions(SCHEMA, LETTER, {}))}
    assert unlabeled["applicant_name"] == {"applicant_name": None}, "no label: the answer is null"


def test_packed_sequence_has_the_document_once_and_loss_on_answers_only() -> None:
    values = {"applicant_name": "Ada Lovelace", "desired_role": "Data Engineer", "years_experience": 6}
    answered = asyncio.run(answered_questions(SCHEMA, LETTER, values))
    assert len(answered) >= 3
    [seq] = pack("a.txt", LETTER, answered, TEMPLATE, _encode, "<|im_end|>", max_tokens=20_000)
    text = "".join(map(chr, seq.input_ids))
    assert text.count(LETTER.strip()) == 1 and seq.questions == len(answered)
    lossy = "".join(chr(t) if label != IGNORE else "\0" for t, label in zip(seq.input_ids, seq.labels, strict=True))
    spans = [s for s in lossy.split("\0") if s]
    assert spans == [a.answer + "<|im_end|>" for a in answered], "the loss is on each answer and its end of turn"
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_end|>\n")
    # the first question is the strategy's prompt as the server renders it
    assert text.startswith(f"<|im_start|>system\n{answered[0].messages[0]['content']}<|im_end|>\n<|im_start|>user\n"
                           f"{answered[0].messages[1]['content']}<|im_end|>\n<|im_start|>assistant\n")
    assert conversation(LETTER, answered)[3]["content"].startswith(answered[1].messages[1]["content"]
                                                                   .removeprefix(wrap_document(LETTER) + "\n\n"))


def test_questions_that_overflow_start_a_sequence_with_the_document_again() -> None:
    values = {"applicant_name": "Ada Lovelace", "desired_role": "Data Engineer", "years_experience": 6}
    answered = asyncio.run(answered_questions(SCHEMA, LETTER, values))
    [whole] = pack("a.txt", LETTER, answered, TEMPLATE, _encode, "<|im_end|>", max_tokens=20_000)
    first = pack("a.txt", LETTER, answered[:1], TEMPLATE, _encode, "<|im_end|>", max_tokens=20_000)[0]
    limit = len(first.input_ids) + 200  # room for the first question and a few more, not for all
    seqs = pack("a.txt", LETTER, answered, TEMPLATE, _encode, "<|im_end|>", max_tokens=limit)
    assert len(seqs) > 1 and sum(s.questions for s in seqs) == len(answered)
    for seq in seqs:
        assert len(seq.input_ids) <= limit
        assert "".join(map(chr, seq.input_ids)).count(LETTER.strip()) == 1
    assert pack("a.txt", LETTER, answered, TEMPLATE, _encode, "<|im_end|>", max_tokens=100) == []
    assert data_digest(seqs) != data_digest([whole])


def test_manifest_round_trip_and_a_broken_one_refused(tmp_path: Path) -> None:
    model = tmp_path / "m-ft-1.gguf"
    manifest = Manifest(schema="cover_letter", base_model="base.gguf", base_sha256="b" * 64, data_digest="d" * 64,
                        settings={"epochs": 1}, train_doc_ids=["a.txt"], train_shas=["s1"],
                        held_back_doc_ids=["b.txt"], held_back_shas=["s2"], training_s=1.5, compute_s=2.5,
                        device="cpu", steps=3, sequences=1, tokens=100)
    assert manifest.write(model) == manifest_path(model) == tmp_path / "m-ft-1.manifest.json"
    assert read_manifest(model) == manifest and manifest.trained_on == {"a.txt", "s1"}
    assert read_manifest(tmp_path / "other.gguf") is None and read_manifest(None) is None
    manifest_path(model).write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable fine-tuning manifest"):
        read_manifest(model)


LETTERS = {f"{name}.txt": f"Dear team,\nI apply for the {role} role.\nRegards,\n{person}\n"
           for name, role, person in [("a", "Data Engineer", "Ada Lovelace"), ("b", "Designer", "Bea Boole"),
                                      ("c", "Analyst", "Cy Young"), ("d", "Tester", "Di Dane")]}


@pytest.fixture
def labeled(tmp_path: Path, fake_server: FakeOpenAI) -> Path:
    """Results of a run over the fake server, with people's labels for a, b and c (not d)."""
    write_docs(tmp_path / "in", LETTERS)
    assert runner.run(make_config(tmp_path, fake_server)).ok == 4
    labels = Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3")
    for doc_id, person in [("a.txt", "Ada Lovelace"), ("b.txt", "Bea Boole"), ("c.txt", "Cy Young")]:
        labels.add(doc_id, "applicant_name", person, source="test", content_sha256=None, kind=PERSON)
        labels.add(doc_id, "language", "en", source="test", content_sha256=None, kind=PERSON)
    labels.close()
    return tmp_path


def test_training_uses_export_finetunes_selection_minus_the_held_back(labeled: Path) -> None:
    config = LocalFinetuneConfig(settings=settings(labeled / "out"), held_back=0.34)
    prepared = prepare(config)
    selection = select_examples(FinetuneConfig(settings(labeled / "out")))
    assert [e.doc_id for e in prepared.selection.examples] == [e.doc_id for e in selection.examples]
    assert [e.values for e in prepared.selection.labeled] == [e.values for e in selection.labeled]
    assert {e.values["applicant_name"] for e in prepared.selection.labeled} == {"Ada Lovelace", "Bea Boole", "Cy Young"}
    assert len(prepared.split.held_back) == 1 and len(prepared.split.train) == 2
    assert {e.doc_id for e in prepared.training} == set(prepared.split.train), "held-back documents never train"
    assert any("held-back document(s)" in w for w in prepared.warnings)
    assert prepared.split == prepare(config).split, "the same split every time"


def test_finetune_local_refuses_one_labeled_document(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": LETTERS["a.txt"]})
    runner.run(make_config(tmp_path, fake_server))
    labels = Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3")
    labels.add("a.txt", "applicant_name", "Ada Lovelace", source="test", content_sha256=None, kind=PERSON)
    labels.close()
    with pytest.raises(ConfigError, match="1 labeled document"):
        finetune_local(LocalFinetuneConfig(settings=settings(tmp_path / "out")))


def test_experiment_never_scores_a_model_on_its_training_documents(labeled: Path, fake_server: FakeOpenAI) -> None:
    """A model trained on a.txt and on b.txt's bytes (under another name): every variant is scored on c.txt only."""
    model = labeled / "m" / "tiny-ft-0123456789.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")  # never loaded: the variant is served by the fake server
    Manifest(schema="cover_letter", base_model="base.gguf", base_sha256="b" * 64, data_digest="d" * 64,
             settings={}, train_doc_ids=["a.txt", "renamed_b.txt"],
             train_shas=["", sha256_file(labeled / "in" / "b.txt")],
             held_back_doc_ids=["c.txt"], held_back_shas=[""], training_s=1.0, compute_s=1.0, device="cpu",
             steps=1, sequences=2, tokens=10).write(model)
    before = len(server_log(fake_server))
    report = run_experiment(ExperimentConfig(settings=make_config(labeled, fake_server),
                                             variants=("examples=none", f"model_path={model}")))
    assert report.sample == 1
    for variant in report.variants:
        assert variant.overall["documents"] == 1
    sent = json.dumps(server_log(fake_server)[before:])
    assert "Cy Young" in sent and "Ada Lovelace" not in sent and "Bea Boole" not in sent
    (labeled / "in" / "c.txt").unlink()
    with pytest.raises(ConfigError, match="nothing held back"):
        run_experiment(ExperimentConfig(settings=make_config(labeled, fake_server), variants=(f"model_path={model}",)))


@pytest.mark.integration
def test_the_command_refuses_one_labeled_document_with_its_reason(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    from .test_cli import cli

    write_docs(tmp_path / "in", {"a.txt": LETTERS["a.txt"]})
    runner.run(make_config(tmp_path, fake_server))
    with Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3") as labels:
        labels.add("a.txt", "applicant_name", "Ada Lovelace", source="test", content_sha256=None, kind=PERSON)
    result = cli("finetune-local", "--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "1 labeled document(s) can be used" in result.stderr and "one held back" in result.stderr
    assert not (tmp_path / "out" / "cover_letter" / "finetuned").exists()


def test_the_export_puts_back_the_rows_transformers_reorders() -> None:
    """llama.cpp's q/k row order (`export.permute`) is the inverse of what transformers' GGUF loader undoes."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("transformers")
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from extractor.finetune.export import gguf_name, permute

    processor = LlamaTensorProcessor(config={"num_attention_heads": 9, "num_key_value_heads": 3})
    for name, rows, heads in (("blk.0.attn_q.weight", 576, 9), ("blk.0.attn_k.weight", 192, 3)):
        hf = np.random.default_rng(0).standard_normal((rows, 576)).astype(np.float32)
        assert np.array_equal(processor.process(permute(hf, heads), name).weights, hf)
    assert gguf_name("model.layers.29.self_attn.k_proj.weight") == "blk.29.attn_k.weight"
