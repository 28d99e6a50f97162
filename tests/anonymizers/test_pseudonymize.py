"""Pseudonymize: normalization, joins, entity separation and key handling."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest
from pydantic import SecretStr

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import AnonymizationError, ETLConfigError


def _tokens(p: Pseudonymize, column: str, values: list) -> list:  # type: ignore[type-arg]
    return p.anonymize(pa.RecordBatch.from_pydict({column: values})).column(0).to_pylist()


def test_phone_formats_give_one_token(anon_key: etl.SecretRef) -> None:
    p = Pseudonymize(["phone"], key=anon_key)
    out = _tokens(
        p,
        "phone",
        [
            "8 (916) 123-45-67",
            "+7 916 1234567",
            "+79161234567",
            "89161234567",
            "9161234567",
            "8-916-123-45-67",
            " +7 (916) 123 45 67 ",
        ],
    )
    assert len(set(out)) == 1
    assert out[0].startswith("phone:") and len(out[0]) == len("phone:") + 32
    assert _tokens(p, "phone", ["8 (916) 123-45-68"])[0] != out[0]


def test_email_snils_inn_normalization(anon_key: etl.SecretRef) -> None:
    p = Pseudonymize(["email", "snils", "inn"], key=anon_key)
    batch = pa.RecordBatch.from_pydict(
        {
            "email": [
                "Ivan.Petrov@Mail.RU",
                " ivan.petrov@mail.ru",
                "ＩＶＡＮ.petrov@mail.ru",
                None,
            ],
            "snils": ["112-233-445 95", "11223344595", "112 233 445 95", ""],
            "inn": ["0274062111", "0274062111", "0274062111", None],
        }
    )
    out = p.anonymize(batch).to_pydict()
    assert len(set(out["email"][:3])) == 1 and out["email"][3] is None
    assert len(set(out["snils"][:3])) == 1 and out["snils"][3] is None
    # an INN stored as a number loses its leading zero; normalization restores it
    as_int = (
        Pseudonymize(["inn"], key=anon_key)
        .anonymize(pa.RecordBatch.from_pydict({"inn": pa.array([274062111], pa.int64())}))
        .column(0)[0]
        .as_py()
    )
    assert as_int == out["inn"][0]
    assert p.anonymize(batch).schema.field("email").type == pa.string()


def test_joins_across_sources_and_runs(anon_key: etl.SecretRef) -> None:
    crm = pa.RecordBatch.from_pydict(
        {"email": ["Anna.S@Example.com"], "phone": ["8 (903) 555-12-34"]}
    )
    billing = pa.RecordBatch.from_pydict(
        {"contact_email": ["anna.s@example.com "], "mobile": ["+7 903 5551234"]}
    )
    a = Pseudonymize(["email", "phone"], key=anon_key).anonymize(crm)
    # a second, independently built anonymizer (another run) with the same key
    b = Pseudonymize(["contact_email", "mobile"], key=anon_key).anonymize(billing)
    assert a.column(0).to_pylist() == b.column(0).to_pylist()
    assert a.column(1).to_pylist() == b.column(1).to_pylist()


def test_entity_types_never_share_tokens(anon_key: etl.SecretRef) -> None:
    value = "79161234567"
    p = Pseudonymize(
        ["a", "b", "c", "d"],
        key=anon_key,
        entities={"a": "phone", "b": "snils", "c": "inn", "d": "text"},
    )
    row = p.anonymize(pa.RecordBatch.from_pydict({c: [value] for c in "abcd"})).to_pylist()[0]
    hexes = {v.split(":", 1)[1] for v in row.values()}
    assert len(hexes) == 4
    # same text as an email and as a name: different tokens
    q = Pseudonymize(["email", "full_name"], key=anon_key)
    r = q.anonymize(
        pa.RecordBatch.from_pydict({"email": ["x@y.ru"], "full_name": ["x@y.ru"]})
    ).to_pylist()[0]
    assert r["email"].split(":")[1] != r["full_name"].split(":")[1]


def test_other_key_other_tokens(secret_key: SecretStr) -> None:
    other = SecretStr("another-random-key-" + "QzX81kPq0vLm3NbT7yRw")
    a = Pseudonymize(["email"], key=secret_key)
    b = Pseudonymize(["email"], key=other)
    batch = pa.RecordBatch.from_pydict({"email": ["a@b.ru"]})
    assert a.anonymize(batch).column(0) != b.anonymize(batch).column(0)


def test_repeated_values_hashed_once_give_same_tokens(anon_key: etl.SecretRef) -> None:
    values = [f"user{i % 50}@x.ru" for i in range(20_000)]
    values[7] = None  # type: ignore[call-overload]
    p = Pseudonymize(["email"], key=anon_key)
    out = _tokens(p, "email", values)
    direct = _tokens(p, "email", [f"user{i}@x.ru" for i in range(50)])
    assert out[7] is None
    assert all(out[i] == direct[i % 50] for i in range(20_000) if i != 7)


def test_a_stale_column_shape_changes_no_token(anon_key: etl.SecretRef) -> None:
    """The shape estimate, reused across batches, only picks how tokens are computed: every
    value, or each distinct value once. Either way, the same tokens."""
    from etl_express.anonymizers.pseudonymize import KeyedHasher

    hasher = KeyedHasher(anon_key, "Pseudonymize")
    unique = pa.array([f"User.{i}@Example.ru" for i in range(3000)] + [None, "", " "])
    repeated = pa.array([f"+7 916 {i % 40:07d}" for i in range(3000)] + [None, "", "8 916"])
    for values, entity in ((unique, "email"), (repeated, "phone")):
        by_value = hasher.pseudonymize(values, entity, repeated=False)
        by_distinct = hasher.pseudonymize(values, entity, repeated=True)
        assert by_value.equals(by_distinct)
        assert by_value.equals(hasher.pseudonymize(values, entity))
        assert by_value.null_count == (3 if entity == "email" else 2)  # None, "" (and " ")


def test_column_shapes_sample_the_first_big_batch_then_every_eighth(
    anon_key: etl.SecretRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_express.anonymizers import normalize

    estimated: list[int] = []
    real = normalize._mostly_repeated

    def counted(arr: pa.Array) -> bool:
        estimated.append(len(arr))
        return real(arr)

    monkeypatch.setattr(normalize, "_mostly_repeated", counted)
    p = Pseudonymize(["email", "city"], key=anon_key)
    big = normalize._SAMPLE + 1
    sizes = [3000, 6000, *[big] * 17]  # a read's ramped small batches, then full ones
    outs = []
    for n in sizes:
        batch = pa.RecordBatch.from_pydict(
            {
                "email": [f"u{i}@x.ru" for i in range(n)],
                "city": [("Москва", "Казань")[i % 2] for i in range(n)],
            }
        )
        outs.append(p.anonymize(batch))
    # per column: both small batches counted, big batches 1, 9 and 17 sampled
    assert estimated == [3000, 3000, 6000, 6000, *[big] * 6]
    assert len({o.column("city")[0].as_py() for o in outs}) == 1
    assert outs[-1].column("email").equals(outs[2].column("email"))


@pytest.mark.parametrize("literal", ["x" * 64, b"k" * 64, "0123456789abcdef" * 4])
def test_literal_keys_refused(literal: object) -> None:
    with pytest.raises(AnonymizationError, match="literal key") as info:
        Pseudonymize(["email"], key=literal)  # type: ignore[arg-type]
    assert str(literal) not in str(info.value)


def test_short_or_weak_keys_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AnonymizationError, match="at least 32 are required"):
        Pseudonymize(["email"], key=SecretStr("short-key-19-bytes!"))
    with pytest.raises(AnonymizationError, match="not random"):
        Pseudonymize(["email"], key=SecretStr("ab" * 32))
    # a secret reference is resolved when the data arrives, and checked then
    monkeypatch.setenv("ETL_EXPRESS_SHORT_ANON_KEY", "tiny-key-value")
    p = Pseudonymize(["email"], key=etl.secret("SHORT_ANON_KEY"))
    with pytest.raises(AnonymizationError, match="at least 32 are required") as info:
        p.anonymize(pa.RecordBatch.from_pydict({"email": ["a@b.ru"]}))
    assert "tiny-key-value" not in str(info.value)
    assert "SHORT_ANON_KEY" in str(info.value)
    with pytest.raises(ETLConfigError, match="not found"):
        Pseudonymize(["email"], key=etl.secret("NO_SUCH_ANON_KEY_XYZ")).anonymize(
            pa.RecordBatch.from_pydict({"email": ["a@b.ru"]})
        )


def test_key_never_in_repr_or_pickle(secret_key: SecretStr, key_value: str) -> None:
    from etl_express.anonymizers.keys import entity_subkey

    p = Pseudonymize(["email"], key=secret_key)
    p.anonymize(pa.RecordBatch.from_pydict({"email": ["a@b.ru"]}))
    subkey = entity_subkey(key_value.encode(), "email")
    for text in (repr(p), str(p), repr(p._hasher), repr(vars(p))):
        assert key_value not in text and subkey.hex() not in text
    # a key given as a value is never pickled (worker processes get secret references only)
    with pytest.raises(AnonymizationError, match=r"etl\.secret"):
        pickle.dumps(p)


def test_secret_ref_pickles_without_value(anon_key: etl.SecretRef, key_value: str) -> None:
    from etl_express.anonymizers.keys import entity_subkey

    p = Pseudonymize(["email"], key=anon_key)
    batch = pa.RecordBatch.from_pydict({"email": ["a@b.ru"]})
    p.anonymize(batch)
    dumped = pickle.dumps(p)
    subkey = entity_subkey(key_value.encode(), "email")
    for form in (key_value.encode(), subkey, subkey.hex().encode(), key_value.encode("utf-16")):
        assert form not in dumped
    assert anon_key.name.encode() in dumped  # the reference travels and is resolved again
    clone = pickle.loads(dumped)
    assert clone.anonymize(batch).column(0) == p.anonymize(batch).column(0)


def test_covers_and_missing_columns(anon_key: etl.SecretRef) -> None:
    p = Pseudonymize(["email", "phone"], key=anon_key)
    assert p.covers() == {"email", "phone"}
    batch = pa.RecordBatch.from_pydict({"id": [1], "email": ["a@b.ru"]})
    with pytest.raises(ETLConfigError, match=r"Pseudonymize: column\(s\) 'phone'"):
        p.anonymize(batch)


def test_casefold_matches_python_nfkc_casefold_on_any_text() -> None:
    """Tokens must not depend on which path folded a value: Arrow's lowercasing, the
    basic-Cyrillic fast path and Python's ``str.casefold`` agree value for value."""
    import random
    import unicodedata

    from etl_express.anonymizers.normalize import casefold

    rng = random.Random(1)
    alphabet = [
        *"AbZ09 .-\tЖжЁёЙй",
        "ﬁ",
        "①",
        "Ａ",
        "\u0301",
        "ß",
        "ς",
        "Σ",
        "\u1c83",
        "Ѐ",
        "ǅ",
        "\u00a0",
        "Ω",
        "Å",
        "İ",
        "ẞ",
        "Ꭰ",
        "\U0001d400",
    ]
    values = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(20_000)
    ]
    values += ["Иванов Пётр Сергеевич", "ИВАНОВ  ПЁТР", "İstanbul", "STRASSE", "Straße"]
    got = casefold(pa.array([*values, None])).to_pylist()
    assert got == [unicodedata.normalize("NFKC", v).casefold() for v in values] + [None]


def test_phones_of_other_countries_normalize_to_their_own_e164(anon_key: etl.SecretRef) -> None:
    p = Pseudonymize(["phone"], key=anon_key)
    same_person = {
        "+49 30 901820": [
            "+49 (0)30 901820",
            "0049 30 901820",
            "+49-30-901820",
            "8 10 49 30 901820",
        ],
        "+44 20 7946 0958": ["+44 (0)20 7946 0958", "0044 20 7946 0958", "+442079460958"],
        "+1 (415) 555-0132": ["+1 415 555 0132", "001 415 555 0132", "+1-415-555-0132"],
        "+81 3 1234 5678": ["+81 (0)3-1234-5678", "+81312345678"],
        "+7 916 123-45-67": ["8 (916) 123-45-67", "89161234567", "９１６ １２３ ４５ ６７"],
    }
    tokens = {}
    for canonical, spellings in same_person.items():
        got = {p.token(v, "phone") for v in [canonical, *spellings]}
        assert len(got) == 1, canonical
        tokens[canonical] = got.pop()
    assert len(set(tokens.values())) == len(tokens)
    # before libphonenumber read them, a ten-digit German number took Russia's code
    assert p.token("+49 30 901820", "phone") != p.token("8 (493) 090-18-20", "phone")
    assert p.token("+81 3 1234 5678", "phone") != p.token("+7 (131) 234-56-78", "phone")


def test_emails_trimmed_of_any_whitespace_and_empty_values_left_null(
    anon_key: etl.SecretRef,
) -> None:
    """An email column whose values all start and end with a printable character is hashed
    as it is (no trimming copy); any other is trimmed of every Unicode whitespace, as
    ``utf8_trim_whitespace`` trims it. Values empty after normalization stay null."""
    import pyarrow.compute as pc

    from etl_express.anonymizers.normalize import casefold, normalize_email

    spaces = [" ", "\t", "\n", "\v", "\f", "\r", "\x1c", "\x85", "\xa0", "\u2003", "\u3000"]
    edges = ["", "\u200b", "x", "!", "~", "Ä", *spaces]  # U+200B is not whitespace
    values = [
        f"{a}User{i}@Mail.ru{b}" for i, (a, b) in enumerate((a, b) for a in edges for b in edges)
    ]
    clean = [f"User{i}@Mail.ru" for i in range(50)]
    one_edge = [[*clean, c + "x@y.ru"] for c in spaces] + [[*clean, "x@y.ru" + c] for c in spaces]
    for column in (values, clean, *one_edge, [*clean, " "], [*clean, None, ""], ["", None]):
        arr = pa.array(column, pa.string())
        assert normalize_email(arr).equals(casefold(pc.utf8_trim_whitespace(arr)))
    anonymizer = Pseudonymize(["email"], key=anon_key)
    batch = pa.RecordBatch.from_pydict({"email": [*clean[:3], None, "", " \u3000 ", "A@b.ru "]})
    tokens = anonymizer.anonymize(batch).column(0).to_pylist()
    assert tokens[3:6] == [None, None, None]  # null, empty, whitespace only
    assert tokens[6] == anonymizer.token("a@b.ru", "email")
    assert all(t is not None and t.startswith("email:") for t in tokens[:3])
