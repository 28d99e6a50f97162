"""A generated corpus of Russian free-text notes for measuring ScrubPII (seeded, made in code).

``pii_notes(n, seed)`` gives notes holding exactly one personal value each — an email, a
phone (Russian, or of another country with its country code), a passport, a SNILS, an INN, an
OGRN/OGRNIP or a bank card, in the spellings people write them, about a third of the numbers
with Unicode separators (no-break, thin, narrow and figure spaces, non-breaking hyphens, en
and em dashes, minus signs) or full-width digits, as word processors and copy-paste leave them
— with the value as written, so a test can check that it is gone. Foreign numbers are
random valid numbers of the country's plan (libphonenumber's example number with its last
digits changed, kept when still valid).
``clean_notes(n, seed)`` gives notes with no personal data but full of numbers that look
like it: Unix timestamps (seconds and milliseconds), EAN-13 barcodes, order, article,
invoice and tracking numbers, product series and batches ("серии 45 12, партия 123456"),
amounts, dates, postal codes and addresses. Names, companies, addresses and sentences come
from Faker's ``ru_RU`` provider (a dev dependency); the identifiers from the check-digit
rules in :mod:`.idnumbers`.
"""

from __future__ import annotations

import random
import re
import string

import phonenumbers
from faker import Faker

from . import idnumbers as nb

KINDS = ("email", "phone", "passport", "snils", "inn", "ogrn", "card")


def _faker(seed: int) -> Faker:
    fake = Faker("ru_RU")
    fake.seed_instance(seed)
    return fake


def _luhn(body: str) -> str:
    return body + nb._luhn_digit(body)


# (prefix choices, length) of the card schemes in use in Russia and abroad
CARD_SCHEMES = (
    (["2200", "2201", "2202", "2203", "2204"], 16),  # Mir
    (["2200", "2202", "2204"], 19),
    (["4276", "4279", "4377", "4817", "4154"], 16),  # Visa
    (["4"], 13),
    (["4"], 19),
    (["51", "52", "53", "54", "55", "2221", "2720"], 16),  # Mastercard
    (["34", "37"], 15),  # American Express
    (["300", "305", "36", "38"], 14),  # Diners Club
    (["3528", "3589"], 16),  # JCB
    (["62"], 17),  # UnionPay
    (["62"], 18),
    (["6011", "65"], 16),  # Discover
    (["6761", "6799", "5018"], 18),  # Maestro
)


def card_number(rng: random.Random) -> str:
    prefixes, length = rng.choice(CARD_SCHEMES)
    prefix = rng.choice(prefixes)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(prefix)))
    return _luhn(body)


def card_spelling(rng: random.Random, d: str) -> str:
    n = len(d)
    if n == 16 and rng.random() < 0.6:
        return rng.choice([" ", "-"]).join(d[i : i + 4] for i in range(0, 16, 4))
    if n in (14, 15) and rng.random() < 0.6:
        return f"{d[:4]} {d[4:10]} {d[10:]}"
    return d


def phone_spelling(rng: random.Random) -> str:
    code = rng.choice(
        ["9" + f"{rng.randrange(100):02d}", f"{rng.choice('3484')}{rng.randrange(100):02d}"]
    )
    rest = f"{rng.randrange(10**7):07d}"
    a, b, c, d = rest[:3], rest[3:5], rest[5:], rest[3:]
    mobile = code.startswith("9")
    forms = [
        f"+7{code}{rest}",
        f"8{code}{rest}",
        f"+7 {code} {a}-{b}-{c}",
        f"+7 ({code}) {a}-{b}-{c}",
        f"8 ({code}) {a}-{b}-{c}",
        f"8-{code}-{a}-{b}-{c}",
        f"+7 {code} {a} {b} {c}",
        f"+7 {code}.{a}.{b}.{c}",  # dots
        f"8.{code}.{a}.{b}.{c}",
        f"+7 {code} {rest[:2]}-{rest[2:4]}-{rest[4:]}",  # 3-2-2-3
        f"8 {code} {rest[:2]} {rest[2:4]} {rest[4:]}",
        f"+7 ({code}) {a}-{d}",  # 3-3-4, Faker's way
        f"8 ({code}) {a}-{d}",
        f"+7({code}){rest}",
    ]
    if mobile:  # a mobile number is recognizable without the country prefix
        forms += [f"{code} {a}-{b}-{c}", f"({code}) {a}-{b}-{c}", f"{code} {a} {b} {c}"]
    return rng.choice(forms)


# countries whose numbers the corpus writes with their country code (mobile and fixed lines)
FOREIGN_REGIONS = (
    "US", "GB", "DE", "FR", "IT", "ES", "NL", "PL", "CZ", "FI", "SE", "CH", "TR", "IL", "AE",
    "CN", "JP", "KR", "IN", "VN", "TH", "BR", "MX", "AU", "UA", "BY", "KZ", "UZ", "AM", "GE",
    "AZ", "KG", "TJ", "RS", "EE", "LV", "LT",
)  # fmt: skip
_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


def foreign_number(rng: random.Random) -> phonenumbers.PhoneNumber:
    """A random valid number of a random country (not Russia)."""
    while True:
        example = phonenumbers.example_number_for_type(
            rng.choice(FOREIGN_REGIONS), rng.choice(_TYPES)
        )
        if example is None:
            continue
        national = str(example.national_number)
        keep = max(len(national) - 4, 1)
        digits = national[:keep] + "".join(rng.choice("0123456789") for _ in national[keep:])
        number = phonenumbers.PhoneNumber(
            country_code=example.country_code,
            national_number=int(digits),
            italian_leading_zero=example.italian_leading_zero,
        )
        if phonenumbers.is_valid_number(number):
            return number


def foreign_phone_spelling(rng: random.Random) -> str:
    number = foreign_number(rng)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    forms = [
        international,
        e164,
        "00" + international[1:],
        international.replace(" ", "-"),
        "+" + international[1:].replace(" ", ".", 1),
    ]
    return rng.choice(forms)


_SPACES = ["\u00a0", "\u2009", "\u202f", "\u2007", "\u2002"]
_DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"]


def unicode_spelling(rng: random.Random, value: str) -> str:
    """``value`` with its spaces and hyphens made Unicode look-alikes, and (sometimes) its
    digits full-width: one kind of space and one kind of dash per value, as an editor does."""
    space, dash = rng.choice(_SPACES), rng.choice(_DASHES)
    out = value.replace(" ", space).replace("-", dash)
    if rng.random() < 0.2:
        out = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() and c.isascii() else c for c in out)
    return out


def passport_spelling(rng: random.Random) -> str:
    series = f"{rng.randrange(1, 99):02d}{rng.randrange(100):02d}"
    number = f"{rng.randrange(10**6):06d}"
    s = f"{series[:2]} {series[2:]}" if rng.random() < 0.5 else series
    return rng.choice(
        [
            f"паспорт {s} {number}",
            f"паспорт серия {s} № {number}",
            f"Паспорт РФ: серия {s} номер {number}",
            f"серия {s} №{number}",
            f"{s} {number} выдан",
        ]
    )


UNICODE_SHARE = 0.3  # of the numbers written with Unicode separators or digits
FOREIGN_SHARE = 0.3  # of the phones written with another country's code


def value_of(rng: random.Random, fake: Faker, kind: str) -> str:
    value = _plain_value(rng, fake, kind)
    if kind != "email" and rng.random() < UNICODE_SHARE:
        return unicode_spelling(rng, value)
    return value


def _plain_value(rng: random.Random, fake: Faker, kind: str) -> str:
    if kind == "email":
        e = fake.email()
        return rng.choice(
            [e, e.upper(), e.capitalize(), f"{fake.user_name()}.{rng.randrange(99)}@mail.ru"]
        )
    if kind == "phone":
        return foreign_phone_spelling(rng) if rng.random() < FOREIGN_SHARE else phone_spelling(rng)
    if kind == "passport":
        return passport_spelling(rng)
    if kind == "snils":
        if rng.random() < 0.05:  # the low range: no check-digit rule
            nine = f"{rng.randrange(1_001_999):09d}"
            d = nine + f"{rng.randrange(100):02d}"
            return nb.fmt_snils(d)
        d = nb.snils(rng)
        return rng.choice([nb.fmt_snils(d), d, f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}"])
    if kind == "inn":
        return rng.choice(
            [fake.individuals_inn(), fake.businesses_inn(), nb.inn10(rng), nb.inn12(rng)]
        )
    if kind == "ogrn":
        return rng.choice([fake.businesses_ogrn(), fake.individuals_ogrn()])
    if kind == "card":
        return card_spelling(rng, card_number(rng))
    raise ValueError(kind)


LABELS = {
    "email": ["e-mail:", "почта", "написать на", "email", "адрес для связи:", ""],
    "phone": ["тел.", "телефон:", "моб.", "звонить на", "контакт", ""],
    "passport": [""],
    "snils": ["СНИЛС", "СНИЛС:", "страховой номер", ""],
    "inn": ["ИНН", "ИНН:", "инн клиента", "реквизиты:", ""],
    "ogrn": ["ОГРН", "ОГРНИП", "ОГРН:", "рег. номер", ""],
    "card": ["карта", "оплата картой", "номер карты:", "карта №", ""],
}


def pii_notes(n: int, seed: int = 152) -> list[tuple[str, str, str]]:
    """``n`` notes, each ``(note, kind, value as written)``, kinds in turn."""
    rng = random.Random(seed)
    fake = _faker(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        value = value_of(rng, fake, kind)
        label = rng.choice(LABELS[kind])
        name = fake.name()
        shapes = [
            f"{name}: {label} {value}",
            f"Клиент {name} просил связаться, {label} {value}. {fake.sentence()}",
            f"{fake.sentence()} {label} {value}, заказ №{rng.randrange(10**6)}",
            f"Обращение от {fake.date()}: {label} {value}; {fake.city_name()}",
            f"{label} {value}",
        ]
        note = rng.choice(shapes).replace("  ", " ")
        if rng.random() < UNICODE_SHARE:  # the surrounding words spaced the same way
            note = note.replace(" ", rng.choice(_SPACES))
        out.append((note, kind, value))
    return out


def _ean13(rng: random.Random) -> str:
    body = rng.choice(
        ["460", "461", "462", "463", "464", "465", "466", "467", "468", "469", "400", "590", "500"]
    )
    body += "".join(rng.choice(string.digits) for _ in range(12 - len(body)))
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def clean_notes(n: int, seed: int = 1520) -> list[str]:
    """``n`` notes without personal data, full of numbers that look like it."""
    rng = random.Random(seed)
    fake = _faker(seed)

    def unix() -> int:
        return rng.randrange(1_000_000_000, 1_900_000_000)

    makers = [
        lambda: f"Событие обработано, ts={unix()}",
        lambda: f"unix time {unix()}, статус OK",
        lambda: f"created_at: {unix()}; updated_at: {unix()}",
        lambda: f"метка времени {unix() * 1000 + rng.randrange(1000)}",
        lambda: f"Лог: {unix() * 1000 + rng.randrange(1000)} запрос выполнен",
        lambda: f"Штрихкод {_ean13(rng)}, кол-во {rng.randrange(1, 50)} шт.",
        lambda: f"EAN-13: {_ean13(rng)}",
        lambda: f"Товар {_ean13(rng)} снят с продажи",
        lambda: f"Заказ №{rng.randrange(10**5, 10**12)} доставлен {fake.date()}",
        lambda: f"заказ {rng.randrange(10**9, 10**11)} отменён клиентом",
        lambda: f"По заказу № {rng.randrange(10**9, 10**11)} оформлен возврат",
        lambda: f"арт. {rng.randrange(10**9, 10**13)}, размер {rng.randrange(40, 56)}",
        lambda: f"Артикул {rng.randrange(10**9, 10**12)} нет на складе",
        lambda: (
            f"Препарат серии {rng.randrange(10, 99)} {rng.randrange(10, 99)}, партия {rng.randrange(10**5, 10**6)}"
        ),
        lambda: f"серии {rng.randrange(1000, 9999)}, партия № {rng.randrange(10**5, 10**6)}",
        lambda: f"Счёт № {rng.randrange(10**9, 10**11)} от {fake.date()} оплачен",
        lambda: f"накладная {rng.randrange(10**9, 10**12)}",
        lambda: f"Трек-номер {rng.randrange(10**13, 10**14)}",
        lambda: f"Сумма {rng.randrange(100, 10**6)} руб. {rng.randrange(100):02d} коп.",
        lambda: f"Доставка: {fake.address()}",
        lambda: f"{fake.company()}, {fake.city_name()}, {fake.date()}",
        lambda: fake.sentence(),
        lambda: f"Время {rng.randrange(24):02d}:{rng.randrange(60):02d}, дата {fake.date()}",
        lambda: (
            f"Версия 1.{rng.randrange(50)}.{rng.randrange(200)}, сборка {rng.randrange(10**4, 10**6)}"
        ),
        lambda: f"ID сессии {rng.randrange(10**9, 10**12)}",
        lambda: (
            f"Сумма {rng.randrange(1, 999)} {rng.randrange(1000):03d} {rng.randrange(1000):03d} руб."
        ),
        lambda: f"Рост продаж +{rng.randrange(1, 99)} %, план +{rng.randrange(1000, 99999)} шт.",
        lambda: (
            f"Период {fake.date()} - {fake.date()}, {rng.randrange(10, 99)}-{rng.randrange(100, 999)}"
        ),
        lambda: f"ГОСТ {rng.randrange(1000, 99999)}-{rng.randrange(70, 99)}, ISO 9001:2015",
        lambda: f"Температура -{rng.randrange(1, 40)} °C, давление {rng.randrange(700, 800)} мм",
    ]
    notes = [rng.choice(makers)() for _ in range(n)]
    return [  # a third spaced and dashed as word processors do (amounts, dates, ranges)
        unicode_spelling(rng, note) if rng.random() < UNICODE_SHARE else note for note in notes
    ]


# -- names and addresses (ScrubPII's optional NER mode) --------------------------------


def name_notes(n: int, seed: int) -> list[tuple[str, str]]:
    rng, fake = random.Random(seed), Faker("ru_RU")
    fake.seed_instance(seed)
    shapes = [
        "Клиент {v} просил перезвонить после обеда",
        "{v}: жалоба на задержку доставки",
        "Передать заявку менеджеру, контактное лицо {v}.",
        "Звонила {v}, вопрос решён",
        "Получатель: {v}",
    ]
    out = []
    for _ in range(n):
        first, last = fake.first_name(), fake.last_name()
        v = rng.choice([fake.name(), f"{first} {last}", f"{last} {first}"])
        out.append((rng.choice(shapes).format(v=v), v))
    return out


def address_notes(n: int, seed: int) -> list[tuple[str, str]]:
    rng, fake = random.Random(seed), Faker("ru_RU")
    fake.seed_instance(seed)
    shapes = ["Доставить по адресу: {v}", "Адрес клиента {v}, домофон не работает", "{v}"]
    return [
        (rng.choice(shapes).format(v=v), v)
        for v in (fake.address().replace("\n", ", ") for _ in range(n))
    ]


def address_gone(address: str, out: str) -> bool:
    house = re.search(r"д\. [0-9]+", address)
    words = [w for w in re.findall(r"\w{4,}", address) if w[0].isupper()]
    return (house is None or house.group(0) not in out) and not any(w in out for w in words)


__all__ = [
    "CARD_SCHEMES",
    "FOREIGN_REGIONS",
    "KINDS",
    "address_gone",
    "address_notes",
    "card_number",
    "clean_notes",
    "foreign_number",
    "foreign_phone_spelling",
    "name_notes",
    "pii_notes",
    "unicode_spelling",
    "value_of",
]
