"""Field kinds: one taxonomy per loaded schema (`schemas.FieldKind`), read by comparing, grounding and the fields
strategy alike; a schema can declare a field's kind (`x-kind`), and a kind that is not one is refused on load."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from extractor.errors import ConfigError
from extractor.extraction.fields import describe
from extractor.schemas import VALUE_KINDS, load_schema, load_schema_file
from extractor.values.evidence import ground, leaves
from extractor.values.metrics import compared_kinds, score, similarity

from .conftest import ROOT

CONTACTS = '''
from pydantic import BaseModel, Field

class Contact(BaseModel):
    name: str
    contact: str | None = Field(None{extra}, description="how to reach the person")

MODEL = Contact
INSTRUCTIONS = "Extract the contact."
'''


def _kinds(name: str) -> dict[str, tuple[str, bool, bool]]:
    return {path: (k.kind, k.is_list, k.derived) for path, k in load_schema(ROOT / "schemas", name).kinds.items()}


def test_the_shipped_schemas_kinds() -> None:
    assert _kinds("cover_letter") == {
        "applicant_name": ("name", False, False), "email": ("email", False, False),
        "phone": ("phone", False, False), "location": ("name", False, False),
        "desired_role": ("name", False, False), "company": ("name", False, False),
        "years_experience": ("number", False, True), "seniority": ("choice", False, True),
        "skills": ("text", True, False), "salary": ("object", False, False),
        "salary.min": ("number", False, False), "salary.max": ("number", False, False),
        "salary.currency": ("currency", False, False), "salary.period": ("choice", False, True),
        "remote_preference": ("choice", False, True), "available_from": ("date", False, False),
        "notice_period_days": ("number", False, True), "language": ("text", False, True),
    }
    assert _kinds("resume") == {
        "name": ("name", False, False), "email": ("email", False, False), "location": ("name", False, False),
        "current_title": ("name", False, False), "companies": ("name", True, False),
        "degrees": ("name", True, False), "colleges": ("name", True, False),
        "graduation_years": ("number", True, False), "skills": ("text", True, False),
        "years_experience": ("number", False, True),
    }
    cover = load_schema(ROOT / "schemas", "cover_letter")
    assert cover.kinds["seniority"].options == ("intern", "junior", "mid", "senior", "lead", "principal", "executive")
    assert cover.kinds["salary"].nested is cover.model.model_fields["salary"].annotation.__args__[0]


def _contacts(tmp_path: Path, extra: str = "") -> type[BaseModel]:
    path = tmp_path / "contacts.py"
    path.write_text(CONTACTS.format(extra=extra))
    return load_schema_file(path).model


def test_a_declared_kind_changes_how_the_field_is_compared_grounded_and_asked(tmp_path: Path) -> None:
    plain = _contacts(tmp_path)
    phone = _contacts(tmp_path, ', json_schema_extra={"x-kind": "phone"}')
    written, said = "+49 (151) 234-5678", "0151 2345678"

    # compared: as text the two spellings differ, as a phone (its digits, trunk 0 aside) they agree
    assert compared_kinds(plain)["contact"] == "text" and compared_kinds(phone)["contact"] == "phone"
    assert similarity("text", "+49 151 2345678", written) == 0.0
    assert similarity("phone", "+49 151 2345678", written) == 1.0
    rows, labels = [{"doc_id": "a", "name": "Ada", "contact": "+49 151 2345678"}], {"a": {"contact": written}}
    assert [s.accuracy for s in score(rows, labels, plain)] == [0.0]
    assert [s.accuracy for s in score(rows, labels, phone)] == [1.0]

    # grounded: a phone is found by its digits however it is written
    text = f"Ada Lovelace, call me on {said}."
    value = {"name": "Ada Lovelace", "contact": "+49 151 2345678"}
    assert [leaf.kind for leaf in leaves(plain, value)] == ["text", "text"]
    assert [leaf.kind for leaf in leaves(phone, value)] == ["text", "phone"]
    assert ground(plain, value, text)[1].status == "not_found"
    found = ground(phone, value, text)[1]
    assert (found.status, found.quote) == ("normalized", said)

    # asked: the fields strategy looks for phone numbers in the text rather than asking for words
    assert [i.kind for i in describe(plain)] == ["text", "text"] and [i.kind for i in describe(phone)][1] == "phone"


def test_a_number_declared_on_a_text_field_is_grounded_as_a_number_or_as_text(tmp_path: Path) -> None:
    model = _contacts(tmp_path, ', json_schema_extra={"x-kind": "number"}')
    found = ground(model, {"name": "Ada", "contact": "85000"}, "Ada asks for 85,000 a year.")[1]
    assert (found.status, found.quote) == ("normalized", "85,000")
    words = ground(model, {"name": "Ada", "contact": "by post"}, "Ada, reachable by post.")[1]
    assert (words.status, words.quote) == ("exact", "by post"), "a value that is not a number is looked up as text"


@pytest.mark.parametrize(("extra", "said"), [
    (', json_schema_extra={"x-kind": "telephone"}', "'telephone' is not a kind"),
    (', json_schema_extra={"x-kind": ["phone"]}', "is not a kind"),
])
def test_an_unknown_kind_is_refused_naming_the_file_and_the_field(tmp_path: Path, extra: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _contacts(tmp_path, extra)
    message = str(raised.value)
    assert message.startswith("schema contacts.py: field Contact.contact: x-kind") and said in message
    assert all(kind in message for kind in VALUE_KINDS), "the message lists the kinds there are"


def test_a_kind_declared_on_a_nested_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.py"
    path.write_text('''
from pydantic import BaseModel, Field

class Pay(BaseModel):
    amount: float | None = None

class Offer(BaseModel):
    pay: Pay | None = Field(None, json_schema_extra={"x-kind": "number"})

MODEL = Offer
INSTRUCTIONS = "Extract the offer."
''')
    with pytest.raises(ConfigError, match=r"schema nested.py: field Offer.pay: x-kind does not apply to a nested"):
        load_schema_file(path)
