"""What the conventions of a letter say, without a model: the organization it is addressed to, and the things
it enumerates (skills, tools, technologies).

The addressee (`addressees`): the lines of the address block (just before the salutation, back to the writer's
contact line: "Hiring Committee / Lonestar Robotics Inc."), the salutation itself ("Hello Maplebyte team", "Dear
Hiring Team at X"), an application's own sentence ("the role at X", "apply to X", "join X") and a name with a
legal form (cleanco's list of business entity terms: "GmbH", "Pvt. Ltd.", "Sp. z o.o."); an employer the writer
works or worked for ("since 2019 at Y", "currently at Y") is told apart (role "employed").

The enumerations (`enumerated`): the items of a list a sentence or a bullet makes ("Python, PyTorch and ONNX
Runtime") and of a labeled line ("Skills: ..."), where a list names two things or more and an item names
something (a proper name, an acronym, a product written with digits or symbols: "C++", "Node.js", "ISO 27001"),
and is not a place, a language, a month, a job title or an institution.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from extractor.values import detect, places
from extractor.values.evidence import fold

_UPPER = "A-ZÀ-ÞĀ-Žł"
# a word of a name: Capitalized, a number, "&", or a legal form's lower-case pieces ("s.r.o.", "z o.o.")
_NAME_WORD = rf"(?:[{_UPPER}0-9][\w'’.&+-]*|&|[a-z](?:\.[a-z])+\.?|z(?=\s+o\.o\.))"
_JOINERS = r"(?:of|and|for|de|du|des|la|le|del|di|da|do|dos|das|der|und|the|van|von|y|e|&)"
_ORG = re.compile(rf"(?<![\w@./-]){_NAME_WORD}(?:[ \t]+(?:{_JOINERS}[ \t]+)?(?:\(?{_NAME_WORD}\)?))*")

_SALUTATION = re.compile(
    r"^\W*(?:dear|hello|hi|hey|greetings|to whom|sehr geehrte[rn]?|liebe[rs]?|hallo|guten tag|madame|monsieur|"
    r"bonjour|estimad[oa]s?|hola|gentil[ei]|egregi[oa]|spettabile|car[oa]|prezad[oa]s?|olá|ol[aá]|geachte|beste|"
    r"szanown[aiy]|dzień dobry|witam|hej|bästa)\b", re.IGNORECASE)
# Lines of a letter's head that are no addressee: its subject, the reference, a person's attention.
_LABEL_LINE = re.compile(
    r"^\W*(?:subject|re|ref|betreff|objet|oggetto|asunto|assunto|onderwerp|temat|application|bewerbung|"
    r"candidature|candidatura|sollicitatie|aplikacja|attn|attention|à l'attention|z\.\s?hd|c/o|from|date|sent|cc|"
    r"name|e-?mail|phone|tel|location)\b", re.IGNORECASE)
_DATE_LINE = re.compile(r"\b(?:19|20)\d{2}\b")
# Names that are a person, a department or a title rather than the organization.
_NOT_ORG = re.compile(
    r"\b(?:team|teams|committee|department|dept|resources|hr|recruit\w*|hiring|talent|acquisition|manager|"
    r"director|head|board|directors|personal\w*|abteilung|service|ressources|humaines|equipo|selección|risorse|"
    r"umane|equipe|afdeling|dział|kadr|mr|mrs|ms|dr|prof|frau|herr|mme|mlle|sr|sra|sig|dott|pan|pani|dhr|mevr|"
    r"cto|ceo|cfo)\b\.?", re.IGNORECASE)
# Words of the sentence before a name that make it the employer applied to ...
_APPLICATION = re.compile(
    r"\b(?:position|role|job|opening|post|vacancy|internship|opportunity|apply\w*|application|candidacy|join\w*|"
    r"stelle|bewerb\w*|poste|candidature|rejoindre|puesto|candidatura|vaga|posizione|ruolo|functie|vacature|"
    r"stanowisko|aplikuj\w*)\b", re.IGNORECASE)
_BEFORE_NAME = re.compile(r"\b(?:at|join|joining|to|bei|chez|rejoindre|presso|bij|w|na|en|em)"
                          r"(?:\s+(?:the|der|die|das|dem|den|la|le|el|il|lo|a|o|de))?\s*[*_]*$",
                          re.IGNORECASE)
_AT = re.compile(r"\b(?:at|for|by|with|bei|chez|presso|bij|для|dla)\s*[*_]*$", re.IGNORECASE)
# ... and words that make it one the writer works or worked for.
_EMPLOYED = re.compile(
    r"\b(?:since|currently|current|now|recently|previously|formerly|former|first|then|worked|work|working|"
    r"employed|employer|seit|derzeit|aktuell|depuis|actuellement|desde|actualmente|dal|attualmente|sinds|"
    r"momenteel|obecnie|od)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Named:
    text: str  # as written
    start: int
    end: int
    role: str  # "addressed" (address block, salutation), "applied" (the application's sentence), "legal" (a legal
    # form alone), "employed" (where the writer works or worked)
    legal: bool  # ends with a business entity's legal form


@functools.cache
def _legal_terms() -> tuple[tuple[str, ...], ...]:
    """Business entity terms (cleanco), as word tuples without punctuation, longest first: ("sp", "z", "oo")."""
    from cleanco import prepare_default_terms

    terms = {tuple(words) for _, words in prepare_default_terms()}
    return tuple(sorted(terms, key=len, reverse=True))


@functools.cache
def _legal_words() -> frozenset[str]:
    return frozenset(w for term in _legal_terms() for w in term)


@functools.cache
def _legal_pairs() -> frozenset[tuple[str, str]]:
    """Consecutive words of the legal forms: ("pte", "ltd"), ("sp", "z")."""
    return frozenset(pair for term in _legal_terms() for pair in itertools.pairwise(term))


def _words(text: str) -> list[tuple[str, int, int]]:
    """Words with their spans, folded and without their punctuation ("s.r.o." -> "sro", "(Pty)" -> "pty")."""
    out = []
    for match in re.finditer(r"[^\s,;:]+", text):
        bare = re.sub(r"[^\w&]", "", fold(match.group(0)))
        if bare:
            out.append((bare, match.start(), match.end()))
    return out


def legal_form(name: str) -> int | None:
    """Where the legal form that ends `name` starts ("Lonestar Robotics Inc." -> at "Inc."), None without one.
    A form that is also a word ("AS", "Co", "SE") counts only written with a capital or a dot, after a name."""
    words = _words(name)
    for term in _legal_terms():
        n = len(term)
        if len(words) <= n or tuple(w for w, _, _ in words[-n:]) != term:
            continue
        written = name[words[-n][1]:]
        if not re.search(rf"[{_UPPER}.]", written) or (n == 1 and written.istitle() and len(written) <= 3
                                                       and not written.endswith(".")):
            continue  # "as", "and co", "At"
        return words[-n][1]
    return None


def _clean(name: str) -> str:
    """A name without what surrounds it: markup, a leading article or salutation, a sentence that follows it
    ("Atlas Secure Networks. I ..."), a full stop that is not its legal form's ("Nordvik Analytics AB.")."""
    name = re.sub(r"^[\W_]+|[\s*_,;:(\[]+$", "", name)
    name = re.sub(rf"^(?:the|la|le|les|die|der|das|el|il|lo|de)\s+(?=[{_UPPER}])", "", name, flags=re.IGNORECASE)
    while (salute := _SALUTATION.match(name)) is not None and salute.end() < len(name):
        name = name[salute.end():].strip()
    for stop in re.finditer(r"(\w+)\.\s+(?=(\S+))", name):  # a full stop ends the name unless a legal form goes on
        word = name[:stop.end(1)].split()[-1]
        pair = (re.sub(r"[^\w&]", "", fold(word)), re.sub(r"[^\w&]", "", fold(stop.group(2))))
        if pair in _legal_pairs():
            continue  # "Pte. Ltd.", "Sp. z o.o."
        if legal_form(name[:stop.end(1) + 1]) is not None:
            name = name[:stop.end(1) + 1]  # "PolderLogic B.V. Ik ...": the legal form ends the name
            break
        if len(stop.group(1)) == 1:
            continue  # an initial
        name = name[:stop.end(1) + (1 if fold(stop.group(1)) in _legal_words() else 0)]
        break
    if name.endswith("."):
        last = name.split()[-1][:-1]
        if "." not in last and (last.isupper() or fold(last) not in _legal_words()):
            name = name[:-1]  # "AB." and "Insurance." end a sentence; "Inc." and "s.r.o." keep theirs
    return name.strip()


def _looks_like_name(name: str) -> bool:
    words = name.split()
    if not words or len(name) < 2 or len(words) > 8 or _DATE_LINE.search(name) or "@" in name:
        return False
    capitalized = [w for w in words if re.match(rf"[{_UPPER}0-9&(]", w)]
    return len(capitalized) * 2 >= len(words) and bool(re.match(rf"[{_UPPER}]", words[0]))


_CONTACT = re.compile(r"@|\+?\d[\d ()./-]{7,}\d")


def _address_block(text: str) -> tuple[int, int] | None:
    """The lines just before the letter's salutation, back to the writer's contact line (an e-mail address, a phone
    number) or at most eight lines."""
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*", text) if m.end() > m.start()]
    salute = next((i for i, (s, e) in enumerate(lines) if _SALUTATION.match(text[s:e])), None)
    if salute is None or salute == 0:
        return None
    start = salute
    while start > 0 and salute - start < 8 and not _CONTACT.search(text[lines[start - 1][0]:lines[start - 1][1]]):
        start -= 1
    if start >= salute:
        return None
    return lines[start][0], lines[salute - 1][1]


def addressees(text: str, exclude: tuple[str, ...] = ()) -> list[Named]:
    """Names of organizations a letter is addressed or applies to, and those its writer works for (role
    "employed"), in document order. `exclude`: names that are someone else's (the writer's own)."""
    out: list[Named] = []
    block = _address_block(text)
    folded_excluded = {fold(e) for e in exclude if e}
    for match in _ORG.finditer(text):
        raw = match.group(0)
        for piece in re.split(r"\s*[|·•]\s*|\s+[-–—]\s+", raw):
            offset = match.start() + raw.find(piece)
            name = _clean(piece)
            if not name:
                continue
            start = text.find(name, offset)
            end = start + len(name)
            if not _looks_like_name(name) or fold(name) in folded_excluded or places.cities(name) or \
                    places.is_country(name) or _SALUTATION.fullmatch(name):
                continue
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", end)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            before = text[max(line_start, start - 200):start]
            sentence = re.split(r"[.!?;]\s", before)[-1]
            legal = legal_form(name) is not None
            role = ""
            if _SALUTATION.match(line):
                if re.search(r"\b(?:at|from|of|bei|chez)\s*$", before, re.IGNORECASE) or \
                        re.match(r"\s+team\b", text[end:], re.IGNORECASE):
                    role = "addressed"  # "Dear Hiring Team at X", "Hello X team"
            elif block is not None and block[0] <= start < block[1] and not _LABEL_LINE.match(line) and \
                    not _NOT_ORG.search(name) and not re.search(r"\d", line):
                role = "addressed"
            elif _EMPLOYED.search(sentence) and _AT.search(before):
                role = "employed"
            elif _APPLICATION.search(sentence) and _BEFORE_NAME.search(before):
                role = "applied"
            elif legal:
                role = "legal"
            if role:
                out.append(Named(name, start, end, role, legal))
    return out


# -- enumerations ----------------------------------------------------------------------------------------------

_AND = r"(?:and|or|as well as|plus|und|oder|sowie|et|ou|y|o|e|i|oraz|en|och|og)"
_LABELED = re.compile(r"^\W*(?:skills|tools|technologies|tech stack|stack|languages|frameworks|competenc\w*|"
                      r"kenntnisse|compétences|competencias|competências|competenze|vaardigheden|umiejętności)"
                      r"\W*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_HEADER = re.compile(r"^\W*(?:from|to|cc|date|sent|subject|re|betreff|objet|asunto|assunto|oggetto|onderwerp|"
                     r"temat|application|bewerbung|candidature|candidatura|attn)\b\W*:?", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^\W*[\w-]+(?:\s[\w-]+){0,2}\s?[:|]\s")  # "Expected salary: ...", "Name | ..."
# A job title ends with what the person is ("Senior Staff Nurse", "Backend Engineer II"): not a skill.
_TITLE = re.compile(r"\b(?:manager|engineer|developer|analyst|nurse|intern|designer\w*|architect|scientist|"
                    r"consultant|officer|director|specialist|administrator|lead|head|vp|entwickler\w*|ingenieur\w*|"
                    r"d[ée]veloppeu\w+|ingénieur\w*|analista|desarrollador\w*|sviluppat\w+)(?:\s+[IVX]+)?$",
                    re.IGNORECASE)
_CONTINENTS = {"europe", "asia", "africa", "north america", "south america", "latin america", "oceania", "emea",
               "apac", "americas", "middle east", "europa", "afrika", "amérique", "américa", "asien", "asie"}
_LANGUAGE_WORDS = {"english", "german", "french", "spanish", "italian", "portuguese", "dutch", "polish", "swedish",
                   "japanese", "chinese", "mandarin", "arabic", "hindi", "russian", "czech", "romanian", "danish",
                   "norwegian", "finnish", "turkish", "korean", "greek", "hungarian", "deutsch", "englisch",
                   "anglais", "français", "inglés", "español", "inglese", "italiano", "inglês", "português"}
# A word that names something: Capitalized, an acronym, a name with a capital inside ("PyTorch"), digits or symbols
# ("C++", "Node.js", "62304" after a name).
_THING = re.compile(rf"(?:[{_UPPER}][\w'’&+#./-]*|\.?[a-z]+[{_UPPER}][\w.+#-]*|[a-z]+\.[a-z]+|\w+(?:\+\+|#))$")


@functools.cache
def _currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


@functools.cache
def _calendar_words() -> frozenset[str]:
    from babel.dates import get_day_names, get_month_names

    words: set[str] = set()
    for locale in ("en", "de", "fr", "es", "it", "pt", "nl", "pl"):
        for width in ("wide", "abbreviated"):
            words |= {fold(n).rstrip(".") for n in get_month_names(width, locale=locale).values()}
            words |= {fold(n).rstrip(".") for n in get_day_names(width, locale=locale).values()}
    return frozenset(words)


def _runs(part: str, first: bool, nouns: bool) -> list[str]:
    """The runs of words that name something in one item of a list ("My core tools are Python" -> "Python",
    "Azure Data Factory jobs" -> "Azure Data Factory"); a sentence's first word, and any word in
    a language that capitalizes its nouns (`nouns`), counts only if it is more than Capitalized ("PyTorch", "SQL")."""
    words = [w.strip("*_`\"'“”‘’") for w in part.split()]
    runs: list[list[str]] = [[]]
    for i, word in enumerate(words):
        bare = word.rstrip(".")
        plain = bool(re.fullmatch(rf"[{_UPPER}][^{_UPPER}0-9+#.]*", bare))  # only its first letter is a capital
        thing = bool(bare) and bool(_THING.match(bare)) and not (plain and ((first and i == 0) or nouns)) \
            and bare not in ("I", "A")
        if thing or (runs[-1] and re.fullmatch(r"\d[\d.]*", bare)):
            runs[-1].append(bare)
        elif runs[-1] and bare in ("of", "for", "de") and i + 1 < len(words) and \
                _THING.match(words[i + 1].rstrip(".")):
            runs[-1].append(bare)  # a joiner inside a name ("Bureau of Labor Statistics")
        elif runs[-1]:
            runs.append([])
    return [" ".join(r) for r in runs if r]


_INSTITUTIONS = re.compile(r"\b(?:universit\w*|universidad\w*|college|school|hochschule|politecnico|polytechnic|"
                           r"academy|akademie|institut\w*|bank|ministry|sir|madam|board|directors|members)\b",
                           re.IGNORECASE)


def _is_thing(item: str, owners: set[str]) -> bool:
    words = item.split()
    if len(words) > 4 or len(item) > 40 or fold(item) in _LANGUAGE_WORDS or fold(item).rstrip(".") in \
            _calendar_words() or fold(item) in owners:
        return False
    if re.search(r"\d", item) and not re.search(r"[A-Za-z]{2,}", item):
        return False
    if fold(words[0]).rstrip(".") in _calendar_words() or _INSTITUTIONS.search(item) or _TITLE.search(item) or \
            fold(item) in _CONTINENTS:
        return False
    if len(words) > 1 and words[0] in _currencies() and re.fullmatch(r"[\d.,]+[kKmM]?", words[-1]):
        return False  # "AED 55" (an amount)
    # a place is no skill, nor is "Dublin-based"
    return not (places.is_country(item) or places.is_code(item) or places.is_big_city(item)
                or places.is_big_city(re.split(r"-(?=[a-z])", item)[0]))


def _capitalizes_nouns(text: str) -> bool:
    """The text's language capitalizes every noun (German, Luxembourgish): there a capital names nothing."""
    return detect.language(text) in ("de", "lb")


def enumerated(text: str, exclude: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    """Things a text enumerates, as written, each once (case-blind), with where each is: the items of its lists
    (a sentence's "A, B and C", a "Skills: ..." line; at least two things in a list) that name something (not a
    place, a language, a month, the name of an e-mail address's owner, nor an `exclude`d name)."""
    return [(item.text, item.at) for item in listed(text, exclude)]


@dataclass(frozen=True)
class Listed:
    """A thing a text enumerates (`enumerated`): as written, where, and the share of its list piece's words it is
    ("PyTorch" of "Python, PyTorch and ONNX Runtime": 1.0; "MSc" of "I am a second-year MSc student in Data Science
    at Politecnico di Milano": 0.08, a capitalized word in prose rather than a listed thing)."""

    text: str
    at: int
    share: float


# An item under this share of its list piece's words is a word of prose the list ran through, less surely a listed
# thing: measured on the 24 sample letters' skills (123 items, 25 wrong), the share alone ranks right above wrong
# with AUROC 0.76; wrong items ("MSc", "BCom", "European", "APIs") sit at 0.06-0.12, most right ones at 0.2 or more.
PROSE_SHARE = 0.2


def listed(text: str, exclude: tuple[str, ...] = ()) -> list[Listed]:
    """`enumerated`, each item with the share of its list piece it is (`Listed.share`)."""
    found: dict[str, Listed] = {}
    owners = {fold(" ".join(re.split(r"[._-]+", m.group(1)))) for m in re.finditer(r"([\w.-]+)@", text)}
    owners |= {fold(e) for e in exclude if e}
    addresses = [(p.start, p.end) for p in places.mentions(text) if p.role in ("address", "stated")]
    phrases: list[tuple[str, int, bool]] = [(m.group(1), m.start(1), False) for m in _LABELED.finditer(text)]
    # Lines that are no sentence (headers, contact and address lines, salutations) are blanked, offsets kept;
    # a paragraph's lines are one text (a PDF wraps its sentences).
    masked = text
    for paragraph in re.finditer(r"(?:[^\n]+\n?)+", text):  # a short paragraph with an address: a letterhead
        lines = paragraph.group(0).strip("\n").split("\n")
        if len(lines) <= 6 and any(paragraph.start() <= s < paragraph.end() for s, _ in addresses):
            blank = re.sub(r"[^\n]", " ", paragraph.group(0))
            masked = masked[:paragraph.start()] + blank + masked[paragraph.end():]
    for line in re.finditer(r"[^\n]+", text):
        if _HEADER.match(line.group(0)) or _SALUTATION.match(line.group(0)) or "@" in line.group(0) or \
                _KEY_VALUE.match(line.group(0)) or any(
                line.start() <= s < line.end() for s, _ in addresses):
            masked = masked[:line.start()] + " " * (line.end() - line.start()) + masked[line.end():]
    for sentence in re.finditer(r"(?:[^.!?\n]|\.(?=\w)|\n(?![ \t]*(?:\n|[-*•]|\d+[.)])))+", masked):
        body = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", lambda m: " " * len(m.group(0)), sentence.group(0))  # a bullet
        body = body.replace("\n", " ")
        if re.search(rf"\S\s*,\s*\S|\s{_AND}\s", body, re.IGNORECASE):
            phrases.append((body, sentence.start(), True))
    nouns = _capitalizes_nouns(text)
    for phrase, at, first in phrases:
        pieces = re.split(rf"(\s*[,;:()]\s*(?:{_AND}\s+)?|\s+{_AND}\s+|\s+[+/&]\s+)", phrase, flags=re.IGNORECASE)
        items: list[tuple[str, float]] = []
        for i in range(0, len(pieces), 2):
            # a sentence's first word, or the first after a colon or a bracket, is capitalized by grammar
            initial = (first and i == 0) or (i > 0 and bool(re.search(r"[:(]", pieces[i - 1])))
            words = max(1, sum(1 for w in pieces[i].split() if w.strip("*_`\"'“”‘’")))
            items += [(run, min(1.0, len(run.split()) / words)) for run in _runs(pieces[i], initial, nouns)
                      if _is_thing(run, owners)]
        if len(items) < 2:
            continue
        for item, share in items:
            if any(fold(item) in fold(e) for e in exclude):
                continue
            pos = text.find(item, at)
            found.setdefault(fold(item), Listed(item, pos if pos >= 0 else at, round(share, 4)))
    return sorted(found.values(), key=lambda x: x.at)
