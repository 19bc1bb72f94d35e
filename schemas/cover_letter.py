"""Cover letters: who is applying, for what, where, and on which terms."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Annotated, Literal

import langcodes
from pydantic import BaseModel, Field, field_validator, model_validator

Seniority = Literal["intern", "junior", "mid", "senior", "lead", "principal", "executive"]
RemotePreference = Literal["onsite", "hybrid", "remote"]
Period = Literal["year", "month", "day", "hour"]

# Bounded strings and lists keep small local models from looping (the bounds become the grammar).
ShortStr = Annotated[str, Field(max_length=120)]

_CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR",
                     "CHF": "CHF", "FR.": "CHF", "KR": "SEK", "ZŁ": "PLN", "R$": "BRL", "C$": "CAD",
                     "A$": "AUD"}
_PERIODS = {"annual": "year", "annually": "year", "yearly": "year", "per year": "year", "pa": "year",
            "p.a.": "year", "monthly": "month", "per month": "month", "daily": "day", "per day": "day",
            "hourly": "hour", "per hour": "hour"}
_REMOTE = {"on-site": "onsite", "on site": "onsite", "office": "onsite", "in-office": "onsite",
           "fully remote": "remote", "remote-first": "remote"}


class Salary(BaseModel):
    """Expected pay as the letter states it."""

    min: float | None = Field(None, ge=0, description="lower bound (or the single figure)")
    max: float | None = Field(None, ge=0, description="upper bound (or the single figure)")
    currency: str | None = Field(None, description="ISO 4217 code, e.g. EUR, USD, GBP")
    period: Period | None = Field(None, description="what the amount is paid per")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if isinstance(value, str):
            code = value.strip().upper()
            code = _CURRENCY_SYMBOLS.get(code, code)
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise ValueError(f"currency must be an ISO 4217 code like EUR or USD, not {value!r}")
            return code
        return value

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _PERIODS.get(lowered, lowered)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Salary:
        if self.min is not None and self.max is not None and self.min > self.max:
            self.min, self.max = self.max, self.min
        if self.min is None and self.max is not None:
            self.min = self.max
        if self.max is None and self.min is not None:
            self.max = self.min
        return self


class CoverLetter(BaseModel):
    """Fields of a job application cover letter."""

    applicant_name: ShortStr = Field(description="full name of the person applying")
    email: ShortStr | None = Field(None, description="address the applicant asks to be contacted at")
    phone: ShortStr | None = Field(None, description="phone number exactly as written")
    location: ShortStr | None = Field(None, description='where the applicant lives, as "City, Country"')
    desired_role: ShortStr | None = Field(None, description="job title applied for")
    company: ShortStr | None = Field(None, description="the employer the letter is addressed to")
    years_experience: float | None = Field(
        None, ge=0, le=70, json_schema_extra={"x-evidence": "derived"},
        description="total professional years; compute from dates when only dates are given")
    seniority: Seniority | None = Field(None, description="level of the role or of the applicant")
    skills: list[ShortStr] = Field(default_factory=list, max_length=20,
                                   description="concrete skills, tools and technologies named")
    salary: Salary | None = Field(None, description="expected pay, null if the letter names none")
    remote_preference: RemotePreference | None = None
    available_from: dt.date | None = Field(None, description="earliest start date (YYYY-MM-DD)")
    notice_period_days: int | None = Field(None, ge=0, le=730, json_schema_extra={"x-evidence": "derived"},
                                           description="notice period in days")
    language: str = Field(json_schema_extra={"x-evidence": "derived"},
                          description="ISO 639-1 code of the letter's language, e.g. en, de, fr")

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

    @field_validator("seniority", "remote_preference", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _REMOTE.get(lowered, lowered) or None
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        """ISO 639-1 code from a language tag ("de", "en-US", "en_GB", "ger", "cmn") or a language's name in any
        language ("German", "Deutsch", "français"); a code no standard defines ("xx") is an error."""
        if isinstance(value, str):
            text = value.strip().replace("_", "-")
            tags = []
            with contextlib.suppress(ValueError):  # not a tag
                tags = [langcodes.get(text), langcodes.get(text, normalize=False)]
            if not tags or len(tags[1].language or "") not in (2, 3):  # a name ("Thai" parses as a tag)
                with contextlib.suppress(LookupError):
                    tags = [langcodes.find(text)]  # names need the language-data package
            # The first two-letter code: "iw" is now "he"; "cmn" is in "zh"; "tl" stays (CLDR prefers "fil").
            codes = [code for tag in tags for code in (tag.language, tag.prefer_macrolanguage().language)
                     if code and len(code) == 2 and langcodes.tag_is_valid(code)]
            if not codes:
                raise ValueError(f"language must be the ISO 639-1 two-letter code of a language, such as en, de "
                                 f"or fr (or a tag or name of a language that has one), not {value!r}")
            return codes[0]
        return value

    @field_validator("skills", mode="before")
    @classmethod
    def _skills(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, list):
            seen: dict[str, str] = {}
            for item in value:
                if isinstance(item, str) and item.strip():
                    seen.setdefault(item.strip().lower(), item.strip())
            return list(seen.values())
        return value


MODEL = CoverLetter
DESCRIPTION = "Job application cover letters (recruiting)"
# Routing hints for `--schema auto`: what a letter applying for a job says, in the words of the trade (counted as
# whole words in a document's beginning; a few decide without asking the model).
KEYWORDS = ["cover letter", "dear", "apply", "applying", "application for", "position", "vacancy", "I am writing",
            "sincerely", "kind regards", "best regards", "yours faithfully", "interview", "look forward",
            "consideration", "notice period", "my resume", "my CV", "candidacy",
            # the same conventions in French, German, Spanish, Italian and Portuguese letters
            "candidature", "madame", "monsieur", "cordialement", "Bewerbung", "sehr geehrte", "sehr geehrter",
            "freundlichen Grüßen", "estimado", "estimada", "candidatura", "atentamente", "egregio", "gentile",
            "distinti saluti", "prezado"]
# ... and its shape in any language (`extractor.extraction.shapes`): a greeting line, a sign-off and a name.
SHAPES = ["salutation", "closing"]

INSTRUCTIONS = """\
You extract structured fields from one job application cover letter.
Rules:
- Use only what the letter states or clearly implies; use null for anything it does not say.
- email: the address the applicant asks to be contacted at (not the recruiter's).
- phone: copy exactly as written.
- location: where the applicant is based, as "City, Country" (country in English).
- company: the employer the letter is addressed to.
- years_experience: total professional years as a number; if only dates are given, compute
  the total from them (a range up to "now" ends in the letter's date or today).
- seniority: one of intern, junior, mid, senior, lead, principal, executive.
- skills: concrete skills, tools and technologies, at most 20, each once.
- salary: min and max as plain numbers (a single figure goes in both), currency as an ISO 4217
  code, period one of year, month, day, hour. "k" means thousand.
- remote_preference: onsite, hybrid or remote, only if the applicant states a preference.
- available_from: an ISO date; notice_period_days: convert weeks and months to days (1 month = 30).
- language: ISO 639-1 code of the language the letter is written in.
"""

EXAMPLES = [
    (
        """Berlin, 15 September 2025

Dear Hiring Team at Nordlicht Energie GmbH,

I am applying for the Senior Data Engineer position. I have worked as a data engineer since
March 2016, first at Kiwi.com and since 2020 at Zalando, building Spark and Airflow pipelines
on AWS. I live in Berlin and would prefer a hybrid setup.

My salary expectation is 85,000-95,000 EUR per year. I can start on 1 February 2026; my notice
period is three months.

Best regards,
Jana Nováková
jana.novakova@posteo.de | +49 151 2345 6789""",
        CoverLetter(
            applicant_name="Jana Nováková", email="jana.novakova@posteo.de", phone="+49 151 2345 6789",
            location="Berlin, Germany", desired_role="Senior Data Engineer",
            company="Nordlicht Energie GmbH", years_experience=9.5, seniority="senior",
            skills=["Spark", "Airflow", "AWS"],
            salary=Salary(min=85000, max=95000, currency="EUR", period="year"),
            remote_preference="hybrid", available_from=dt.date(2026, 2, 1), notice_period_days=90,
            language="en",
        ),
    ),
    (
        """Hello,

please consider me for the junior frontend role at Pixelwerk. I finished a web development
bootcamp last year and have built projects with React and TypeScript.

Thanks,
Tom Okafor (tom.okafor@gmail.com)""",
        CoverLetter(
            applicant_name="Tom Okafor", email="tom.okafor@gmail.com", desired_role="Junior Frontend Developer",
            company="Pixelwerk", seniority="junior", skills=["React", "TypeScript"], language="en",
        ),
    ),
]
