"""The detector's second kind of evidence: what a column is *called*, weighed with what its
values *look like*.

``ScrubPII``'s rules find personal data that proves itself (an e-mail, a number with check
digits, a phone with its country code). Much personal data does not: ``45 01 552567`` is a
passport or a product code, ``1985-03-14`` a birth date or the day an order shipped,
``John Smith`` a customer or a brand. Two kinds of evidence decide here:

- **the column's name** (:func:`named_kinds`): its words, in English or Russian (``passport``,
  ``паспорт``, ``dob``, ``дата_рождения``, ``address``, ``адрес``, ``first_name``,
  ``фамилия``, ``phone``, ``телефон``...); for a place inside a JSON column, its key;
- **the values' shape** (:data:`RULES`): per kind, a *weak* shape (ten digits grouped like a
  passport, a plausible date, capitalized words) and, for some kinds, a *strong* one (a street
  word with a house number, a common given name, a national phone number libphonenumber finds
  valid).

A kind is found when most sampled values have its strong shape, or when the column is named
for it and most values have its weak shape. So a name alone never refuses a column whose
values are plainly something else (``passport_status`` holding ``valid``), and a weak shape
alone never refuses a column nobody named (event dates, ten-digit order numbers).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .person_names import login_name_evident, lower_name_evident, person_evident, person_shaped
from .textfold import fold_all

#: share of the sampled values that must have a kind's shape (a column *of* that kind)
SHAPE_SHARE = 0.5
#: share of the sampled values that must be evidently names (a common given name or surname)
#: in a column nobody named: most people in any population carry one of the listed names
EVIDENT_NAME_SHARE = 0.15
#: ... and that must be shaped like full names (two or three capitalized words)
FULL_NAME_SHARE = 0.6
#: national phone numbers libphonenumber is asked about, per column (its calls are slow)
PHONE_PROBES = 40
#: the countries whose national numbers (no country code) are tried, most written first
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "PL", "UA", "KZ", "BY", "TR", "IN")

# -- the column's name ------------------------------------------------------------------

_NAMES: dict[str, str] = {
    "phone": r"phones?|contact_(?:no|num|number)|tel|telephone|mobile|mob|cell|cellphone"
    r"|msisdn|fax|whatsapp|телефон\w*|тел|мобильный|сотовый",
    "passport": r"passport\w*|pasport\w*|паспорт\w*",
    "birth_date": r"\w*birth\w*|dob|born|bday|bdate|b_date|\w*рожд\w*|д_р|др"
    r"|geburt\w*|nacimiento|naissance",
    "address": r"address\w*|addr|адрес\w*|street|улица|residence|domicile|прописк\w*"
    r"|postal_address|mailing_address",
    "name": r"first_name|last_name|middle_name|full_name|given_name|family_name|surname"
    r"|firstname|lastname|fullname|fio|фио|фамилия|имя|отчество|person|customer|client"
    r"|patient|employee|holder|recipient|sender|contact_name|name",
}
# a person's name is what the column holds when its *last* words say so (``client_name``,
# ``client``), not when a person is only mentioned (``client_passport_no``)
_NAME_RES = {
    kind: re.compile(rf"(?:^|_)(?:{words})" + ("$" if kind == "name" else "(?:_|$)"), re.IGNORECASE)
    for kind, words in _NAMES.items()
}
# a last word that says the column holds something about the data, not the data
_ABOUT = re.compile(
    r"_(?:id|ids|key|count|cnt|hash|type|kind|status|flag|verified|valid|exists|len|length"
    r"|code|country|region|city|format|source|at|updated|changed|confirmed)$|^(?:is|has)_",
    re.IGNORECASE,
)
# names that hold "name" but not a person's: a product's, a file's, a city's
_THING_NAME = re.compile(
    r"(?:product|item|goods|company|org|organization|firm|brand|file|table|column|host|city"
    r"|street|region|country|bank|category|group|project|service|app|event|task|pipeline"
    r"|товар|компани|организаци|город|файл)\w*_?name|^name_(?:en|ru)$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def named_kinds(column: str, path: str | None = None) -> frozenset[str]:
    """The kinds of personal data a column's name (or, inside JSON, its key) says it holds:
    ``named_kinds("date_of_birth") == {"birth_date"}``; nothing for ``passport_status``."""
    words = (path or "").replace("[]", "").split(".")[-1] or column
    words = re.sub(r"[^\w]+|(?<=[a-z])(?=[A-Z])", "_", words).strip("_").lower()
    if not words or _ABOUT.search(words):
        return frozenset()
    found = {kind for kind, rx in _NAME_RES.items() if rx.search(words)}
    if "name" in found and _THING_NAME.search(words):
        found.discard("name")
    return frozenset(found)


# -- the values' shape --------------------------------------------------------------------

_PASSPORT = re.compile(
    r"^(?:[0-9]{2} ?[0-9]{2}[ №-]*[0-9]{6}"  # Russia: series of four digits, number of six
    r"|[0-9]{2} ?[0-9]{7}"  # a Russian passport for travel abroad
    r"|[A-Z]{1,2} ?[0-9]{6,8}|[0-9]{9}|[A-Z][0-9]{2}[A-Z0-9]{5,6})$"  # other countries'
)
_DATE_PATTERNS = (
    (re.compile(r"^([0-9]{4})[-./]([0-9]{1,2})[-./]([0-9]{1,2})(?:[ T][0-9:.+\-Z ]*)?$"), "ymd"),
    (re.compile(r"^([0-9]{1,2})[./\-]([0-9]{1,2})[./\-]([0-9]{4})(?: ?г\.?)?$"), "dmy"),
)
_RU_ADDRESS = re.compile(
    r"(?i)(?<![^\W\d_])(?:ул|улица|пр-т|просп|проспект|пер|переулок|бул|бульвар|ш|шоссе|наб"
    r"|набережная|пл|площадь|мкр|микрорайон|аллея|проезд|тупик|линия)\.?\s+[^\W\d_][\w\-. ]{0,40}?"
    r",?\s*(?:(?:д|дом)\.?\s*)?[0-9]+"
    r"|[^\W\d_]{3,}(?:ий|ая|ой|ый|ое)\s+(?:пр-т|проспект|переулок|пер\.|бульвар|шоссе|ш\."
    r"|проезд|тупик|улица|ул\.|набережная|наб\.)\s*,?\s*(?:(?:д|дом)\.?\s*)?[0-9]+"
)
_WORLD_ADDRESS = re.compile(
    r"\b[0-9]{1,5}[A-Za-z]?,?\s+(?:[A-Z][\w'.\-]*\s+){1,4}(?:Street|St|Road|Rd|Avenue|Ave"
    r"|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Square|Sq|Way|Terrace|Close"
    r"|Crescent|Highway|Hwy|Parkway|Pkwy|Row|Gardens|Walk|Hill|Heights|Estates?|Mountain"
    r"|Club|Branch|Track|Forges?|Cliffs?|Lakes?|Circles?|Run|Ridge|Park|Plaza|Point|Port"
    r"|Junction|Crossing|Trail|Loop|Alley|Bypass|Causeway|Center|Common|Corners?|Creek|Dale"
    r"|Dam|Divide|Extension|Falls|Fields?|Flats?|Ford|Forest|Fork|Freeway|Glen|Green|Grove"
    r"|Harbor|Haven|Hollow|Islands?|Knolls?|Landing|Light|Lock|Manor|Meadows?|Mills?"
    r"|Mission|Motorway|Mount|Neck|Oval|Pass|Pike|Pines?|Plains?|Prairie|Ranch|Rapids?"
    r"|Rest|River|Shoals?|Shores?|Skyway|Springs?|Spur|Stream|Summit|Throughway|Trace"
    r"|Tunnel|Turnpike|Union|Valley|Via|Viaduct|View|Villages?|Ville|Vista|Wells?|Mews|Ways?"
    r"|Orchard|Overpass|Squares?|Station|Stravenue|Brooks?|Burgs?|Bluffs?|Bottom|Bridge)\b\.?"
    r"|^(?:Flat|Studio|Apartment|Apt\.?|Suite|Unit)\s+[0-9]+[A-Za-z]?\b"
    r"|\b[A-ZÄÖÜ][a-zäöüß\-]+(?i:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm)\s+[0-9]{1,4}"
    r"|\b(?:rue|avenue|boulevard|place|calle|avenida|via|viale|piazza|rua)\s+(?:[\w'\-]+\s+){0,4}"
    r"[0-9]{1,4}|\b[0-9]{1,4},?\s+(?:rue|avenue|boulevard|calle|avenida|via|rua)\s",
)
_DIGIT = re.compile(r"[0-9]")  # every alternative of both address patterns needs one
_ANY_ADDRESS = re.compile(r"(?=.*[^\W\d_]{3})(?=.*[0-9])(?:.*,|\S+\s+\S+\s+\S+)")
_PHONE_FORMAT = re.compile(
    r"^(?:\(\d{2,5}\) ?\d{2,4}[ \-.]?\d{2,4}(?:[ \-.]?\d{2,4})?"  # (415) 555-0132
    r"|0\d{1,4}[ \-/]\d{3,8}(?:[ \-.]\d{2,4}){0,3}"  # 020 7946 0958, 030 901820
    r"|\d{2,4}(?:[ \-.]\d{2,4}){2,4})$"  # 415-555-0132, 612 34 94 98, 12 345 09 34
)
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .]\d{3})+$")  # 12 345 678: an amount, not a phone
_PHONE_DIGITS = re.compile(r"^\+?[\d\s().\-]{7,22}$")


def is_passport(value: str) -> bool:
    """Grouped like a passport number (weak: ten digits are many things)."""
    return bool(_PASSPORT.match(value.strip().upper()))


def is_past_date(value: str) -> bool:
    """A calendar date (ISO, or day.month.year) of a person alive in the last century and a
    quarter: from 1900 to today (weak: events have dates too)."""
    text = value.strip()
    for rx, order in _DATE_PATTERNS:
        m = rx.match(text)
        if m:
            a, b, c = (int(x) for x in m.groups())
            year, month, day = (a, b, c) if order == "ymd" else (c, b, a)
            try:
                when = dt.date(year, month, day)
            except ValueError:
                if order == "ymd":
                    return False
                try:  # month/day/year, as the US writes it
                    when = dt.date(c, a, b)
                except ValueError:
                    return False
            return dt.date(1900, 1, 1) <= when <= dt.date.today()
    return False


def is_street_address(value: str) -> bool:
    """A street with a house number: ``ул. Ленина, д. 5``, ``221B Baker Street``,
    ``Hauptstraße 5``, ``12 rue de la Paix`` (strong)."""
    if not _DIGIT.search(value):  # every address written here has a number
        return False
    # every alternative of the Russian pattern holds a Cyrillic word or ending, and no ASCII
    # character matches a Cyrillic letter, case ignored: an ASCII text is spared its search
    return bool(_WORLD_ADDRESS.search(value)) or (
        not value.isascii() and bool(_RU_ADDRESS.search(value))
    )


def is_address_like(value: str) -> bool:
    """Words and a number, in parts or several words (weak: for a column named address)."""
    return bool(_ANY_ADDRESS.match(value))


def is_national_phone(value: str) -> bool:
    """Written like a phone number within its country (``(415) 555-0132``, ``020 7946 0958``)."""
    text = value.strip()
    return bool(_PHONE_FORMAT.match(text)) and not (_THOUSANDS.match(text) or is_past_date(text))


def is_phone_digits(value: str) -> bool:
    """Seven to fifteen digits and phone separators only (weak: for a column named phone)."""
    text = value.strip()
    return bool(_PHONE_DIGITS.match(text)) and 7 <= sum(c.isdigit() for c in text) <= 15


def valid_phones(values: Sequence[str]) -> int:
    """How many of (at most :data:`PHONE_PROBES` of) ``values`` libphonenumber reads as valid
    numbers of one country (the one most of them fit), written with or without a country
    code; the count is scaled to all of ``values``."""
    import phonenumbers as pn

    probes = list(values[:PHONE_PROBES])
    if not probes:
        return 0
    fits: dict[str, int] = {}
    for n, value in enumerate(probes):
        if n == PHONE_PROBES // 4 and not fits:
            break  # a quarter of the probes and not one valid number: not a column of phones
        for region in ("RU", *PHONE_REGIONS):
            try:
                number = pn.parse(value, region)
            except pn.NumberParseException:
                break  # not a number in any region
            if pn.is_valid_number(number):
                key = region if not value.lstrip().startswith("+") else "+"
                fits[key] = fits.get(key, 0) + 1
                if key == "+":
                    break
    best = max(fits.values(), default=0)
    return round(best * len(values) / len(probes))


# -- what a whole sample can hold -----------------------------------------------------------

# the street words of the two lower-case alternatives of _WORLD_ADDRESS (``12 rue de la Paix``,
# ``via Roma 5``; ``viale`` holds ``via``): tests/anonymizers/test_detection_equivalence.py
# checks this list against the pattern
_LOWER_STREET_WORDS = (
    "rue", "avenue", "boulevard", "place", "calle", "avenida", "via", "rua", "piazza",
)  # fmt: skip


# what every national phone format (_PHONE_FORMAT) holds somewhere: ``(``, a digit, a space,
# hyphen or slash and a digit (``0xx 123``, ``415-555``), or a digit, a dot, two to four digits
# and a separator (``12.34.56``: the third alternative with dots)
_PHONE_GROUPS = re.compile(r"\(|\d[ \-/]\d|\d\.\d{2,4}[ \-.]\d")


class SampleTraits:
    """What the values of a (folded) sample can hold, read once from their joined text: a
    shape that needs what no value has is absent from every value, and its test is not run
    value by value (the decisions stay the same; the shapes' tests are the slow part). The
    values are joined by a newline, which no trait looks for: the joined text holds every
    value's text, and a trait found across two values is a false "maybe", never a false "no".

    ``upper``: some character is upper case. Every name shape (:func:`person_shaped`,
    :func:`person_evident`, the NER's pre-filter) needs each word to start with a capital.
    ``ascii``: every value is ASCII."""

    def __init__(self, sample: Sequence[str]):
        self.text = "\n".join(sample)
        self.ascii = self.text.isascii()
        # in ASCII, lower() changes exactly the capitals A-Z; beyond it, ask each character
        self.upper = (
            self.text.lower() != self.text
            if self.ascii
            else any(c.isupper() for c in set(self.text))
        )

    @classmethod
    def of(cls, sample: Sequence[str]) -> SampleTraits:
        return cls(sample)

    def may_hold(self, kind: str) -> bool:
        """Whether a value of the sample can have ``kind``'s strong shape.

        ``address`` (:func:`is_street_address`): an ASCII value is tested by the world
        pattern only, and each of its alternatives needs a capital (``221B Baker Street``,
        ``Flat 3``, ``Hauptstraße 5``: ``[A-Z]``; in ASCII ``[A-ZÄÖÜ]`` is ``[A-Z]``) or a
        lower-case street word. ``name``: a capital. ``phone`` (:func:`is_national_phone`):
        what each alternative of its format holds (:data:`_PHONE_GROUPS`)."""
        if kind == "address":
            return not self.ascii or self.upper or any(w in self.text for w in _LOWER_STREET_WORDS)
        if kind == "name":
            return self.upper
        if kind == "phone":
            return _PHONE_GROUPS.search(self.text) is not None
        return True


# -- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeRule:
    """How one kind is found by shape. ``weak``: the shape a value of a column named for the
    kind must have; ``strong``: the shape that is enough by itself (``None``: never enough);
    ``confirm``: from the values of a shape, how many really are of the kind (phones:
    libphonenumber's validity)."""

    kind: str
    weak: Callable[[str], bool]
    strong: Callable[[str], bool] | None = None
    strong_share: float = SHAPE_SHARE
    confirm: Callable[[Sequence[str]], int] | None = None


RULES = (
    ShapeRule("passport", is_passport),
    ShapeRule("birth_date", is_past_date),
    ShapeRule("address", is_address_like, is_street_address),
    ShapeRule(
        "name",
        lambda v: person_shaped(v) or _lower_case_name(v),
        lambda v: person_evident(v),
        EVIDENT_NAME_SHARE,
    ),
    ShapeRule("phone", is_phone_digits, is_national_phone, confirm=valid_phones),
)
SHAPE_KINDS = tuple(rule.kind for rule in RULES)


def shape_counts(
    column: str, path: str | None, sample: Sequence[str], kinds: Collection[str]
) -> dict[str, int]:
    """For each kind of :data:`RULES` in ``kinds``: how many sampled values hold it, when
    that is enough to find it in this column (by its name and their shape); else nothing."""
    named = named_kinds(column, path)
    sample = fold_all(sample)
    traits = SampleTraits.of(sample)
    out: dict[str, int] = {}
    for rule in RULES:
        if rule.kind not in kinds:
            continue
        if rule.kind == "name" and "name" in named and _bare_name(column, path):
            # a product has a name too: a bare "name" counts when most values are a common
            # given name or surname (``Anna``); else the column is judged as if unnamed
            evident = sum(person_evident(v, alone=False) for v in sample) if traits.upper else 0
            if evident >= SHAPE_SHARE * len(sample):
                out["name"] = evident
                continue
            named = named - {"name"}
        if rule.kind in named:
            share = SHAPE_SHARE
            shaped = _shaped(sample, rule.weak, share * len(sample))
        elif rule.kind == "name" and not traits.upper:
            # no capital anywhere: full names lower-cased (``lower(full_name)`` in a query),
            # each with two listed words, or logins made of a name (an e-mail's local part),
            # in as large a share as capitalized names need
            share = FULL_NAME_SHARE
            shaped = _shaped(sample, _lower_case_name, share * len(sample))
        elif rule.strong is not None:
            if rule.kind == "name" and not _enough(sample, _full_name, FULL_NAME_SHARE):
                continue  # names among other words: free text, judged by NER where installed
            share = rule.strong_share
            # a shape no value can have (as the sample's traits prove): none has it
            possible = traits.may_hold(rule.kind)
            shaped = _shaped(sample, rule.strong, share * len(sample)) if possible else []
        else:
            continue
        if len(shaped) < share * len(sample):
            continue  # too few shaped values: the confirmation could only find fewer
        matched = rule.confirm(shaped) if rule.confirm and shaped else len(shaped)
        if matched and matched >= share * len(sample):
            out[rule.kind] = matched
    return out


def _shaped(sample: Sequence[str], test: Callable[[str], bool], needed: float) -> list[str]:
    """The values of ``sample`` that pass ``test`` — or, once the rest could no longer bring
    them to ``needed``, those found so far (fewer than ``needed``: the kind is absent either
    way). Most columns hold no kind: half the sample decides it for the usual 50 % share."""
    shaped: list[str] = []
    left = len(sample)
    for value in sample:
        if len(shaped) + left < needed:
            break
        left -= 1
        if test(value):
            shaped.append(value)
    return shaped


def _enough(sample: Sequence[str], test: Callable[[str], bool], share: float) -> bool:
    """Whether at least ``share`` of ``sample`` passes ``test`` (stops once it is decided)."""
    needed, found, left = share * len(sample), 0, len(sample)
    for value in sample:
        if found >= needed or found + left < needed:
            break
        left -= 1
        found += bool(test(value))
    return found >= needed


def _lower_case_name(value: str) -> bool:
    return lower_name_evident(value) or login_name_evident(value)


def _full_name(value: str) -> bool:
    return person_shaped(value, words=(2, 3))


def _bare_name(column: str, path: str | None) -> bool:
    """Whether the column (or the JSON key) is called just ``name``."""
    words = (path or "").replace("[]", "").split(".")[-1] or column
    return bool(re.fullmatch(r"(?i)names?", words))


__all__ = [
    "EVIDENT_NAME_SHARE",
    "FULL_NAME_SHARE",
    "PHONE_PROBES",
    "PHONE_REGIONS",
    "RULES",
    "SHAPE_KINDS",
    "SHAPE_SHARE",
    "SampleTraits",
    "ShapeRule",
    "is_address_like",
    "is_national_phone",
    "is_passport",
    "is_past_date",
    "is_phone_digits",
    "is_street_address",
    "named_kinds",
    "shape_counts",
    "valid_phones",
]
