"""Resumes / CVs: who the candidate is, where they worked, what they studied and what they can do."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

# Bounded strings and lists keep small local models from looping (the bounds become the grammar).
ShortStr = Annotated[str, Field(max_length=120)]
Year = Annotated[int, Field(ge=1950, le=2035)]


def _dedupe(value: object) -> object:
    """Strip items, drop empty ones and keep the first spelling of case-insensitive duplicates."""
    if value is None:
        return []
    if isinstance(value, list):
        seen: dict[str, str] = {}
        for item in value:
            if isinstance(item, str):
                item = " ".join(item.split())
                if item:
                    seen.setdefault(item.casefold(), item)
            else:
                return value  # let pydantic report the wrong type
        return list(seen.values())
    return value


class Resume(BaseModel):
    """Fields of a resume (CV)."""

    name: ShortStr = Field(description="full name of the candidate")
    email: ShortStr | None = Field(None, description="the candidate's e-mail address")
    location: ShortStr | None = Field(None, description="where the candidate lives, as written")
    current_title: ShortStr | None = Field(None, description="most recent or current job title")
    companies: list[ShortStr] = Field(default_factory=list, max_length=15,
                                      description="employers worked at, most recent first, each once")
    degrees: list[ShortStr] = Field(default_factory=list, max_length=10,
                                    description="degrees, diplomas and certificates earned, as written")
    colleges: list[ShortStr] = Field(default_factory=list, max_length=10,
                                     description="universities, colleges and schools attended")
    graduation_years: list[Year] = Field(default_factory=list, max_length=10,
                                         description="four-digit years in which studies were completed")
    skills: list[ShortStr] = Field(default_factory=list, max_length=40,
                                   description="job-specific skills, tools and technologies (no soft skills)")
    years_experience: float | None = Field(None, ge=0, le=70, json_schema_extra={"x-evidence": "derived"},
                                           description="total professional experience in years, as stated")

    @field_validator("name", "location", "current_title", mode="before")
    @classmethod
    def _squash(cls, value: object) -> object:
        if isinstance(value, str):
            return " ".join(value.split())
        return value

    @field_validator("location", "current_title", mode="after")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().strip("<>").removeprefix("mailto:").lower()
            if not value:
                return None
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                raise ValueError(f"not an e-mail address: {value!r}")
        return value

    @field_validator("companies", "degrees", "colleges", "skills", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _dedupe(value)

    @field_validator("graduation_years", mode="before")
    @classmethod
    def _years(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, list):
            unique: list[object] = []
            for item in value:
                if isinstance(item, str) and item.strip().isdigit():
                    item = int(item.strip())
                if item not in unique:
                    unique.append(item)
            return unique
        return value


MODEL = Resume
DESCRIPTION = "Resumes and CVs (recruiting)"
# Routing hints for `--schema auto`: the headings and words of a CV (whole words in a document's beginning).
KEYWORDS = ["resume", "curriculum vitae", "work experience", "professional experience", "employment history",
            "education", "skills", "technical skills", "certifications", "projects", "languages", "references",
            "summary", "objective", "profile", "responsibilities", "achievements", "B.Tech", "Bachelor", "Master",
            "university", "college", "years of experience"]
# ... and its shape in any language (`extractor.extraction.shapes`): spans of years, headings in capitals.
SHAPES = ["date-ranges", "headings"]

INSTRUCTIONS = """\
You extract structured fields from one resume (CV).
Rules:
- Use only what the resume states; use null (or an empty list) for anything it does not say.
- name: the candidate's full name as written at the top of the resume.
- email: the candidate's own e-mail address.
- location: where the candidate lives or is based, copied as written (e.g. "Pune, Maharashtra").
- current_title: the job title of the current or most recent position.
- companies: the employers the candidate worked at, most recent first, each once, at most 15.
- degrees: degrees, diplomas and certifications earned, as written (e.g. "B.Tech in Computer Science").
- colleges: universities, colleges and schools attended, as written.
- graduation_years: four-digit years in which a degree was completed or studies ended.
- skills: job-specific skills, tools and technologies (e.g. "Java", "SAP FICO", "financial reporting"),
  at most 40, each once; leave out soft skills such as "teamwork" or "communication".
- years_experience: total professional experience in years only when the resume states it
  ("over 8 years of experience" -> 8, "2 years 6 months" -> 2.5); do not compute it from dates.
"""

EXAMPLES = [
    (
        """Priya Raghunathan
Senior QA Engineer - Helix Payments
Chennai, Tamil Nadu - priya.raghu@example.in

SUMMARY
Detail-oriented tester with 7+ years of experience in manual and automated testing of payment systems.
Strong team player with excellent communication skills.

WORK EXPERIENCE
Senior QA Engineer
Helix Payments - Chennai, Tamil Nadu
March 2019 to Present
- Built Selenium and TestNG regression suites for card payment APIs; CI with Jenkins.

QA Engineer
Bluefin Softworks - Coimbatore, Tamil Nadu
June 2016 to February 2019
- Wrote SQL checks against Oracle databases and tracked defects in JIRA.

EDUCATION
B.E. in Electronics and Communication
Anna University, Chennai
2016

SKILLS
Selenium, TestNG, Java, SQL, Jenkins, JIRA, API testing, regression testing""",
        Resume(
            name="Priya Raghunathan", email="priya.raghu@example.in", location="Chennai, Tamil Nadu",
            current_title="Senior QA Engineer", companies=["Helix Payments", "Bluefin Softworks"],
            degrees=["B.E. in Electronics and Communication"], colleges=["Anna University"],
            graduation_years=[2016],
            skills=["manual testing", "automated testing", "Selenium", "TestNG", "Jenkins", "SQL", "Oracle",
                    "JIRA", "Java", "API testing", "regression testing"],
            years_experience=7,
        ),
    ),
    (
        """Marcus T. Holloway
Columbus, OH | (555) 014-2288 | M.Holloway@Mailbox.example

OBJECTIVE
Dependable warehouse lead seeking a logistics coordinator role.

EXPERIENCE
Warehouse Team Lead, Riverbend Distribution, 2021 - present
Forklift Operator, Riverbend Distribution, 2018 - 2021
Stock Associate, Carter & Sons Hardware, 2015 - 2018
  - Inventory control, cycle counts, shipping and receiving, WMS (Manhattan SCALE)

EDUCATION
Associate of Applied Science, Supply Chain Management - Columbus State Community College, 2017
Certified Forklift Operator (OSHA), 2018""",
        Resume(
            name="Marcus T. Holloway", email="m.holloway@mailbox.example", location="Columbus, OH",
            current_title="Warehouse Team Lead",
            companies=["Riverbend Distribution", "Carter & Sons Hardware"],
            degrees=["Associate of Applied Science, Supply Chain Management", "Certified Forklift Operator (OSHA)"],
            colleges=["Columbus State Community College"], graduation_years=[2017, 2018],
            skills=["inventory control", "cycle counts", "shipping and receiving", "WMS", "Manhattan SCALE"],
        ),
    ),
]
