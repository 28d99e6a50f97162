"""The optional compiled loops give exactly the bytes of the pure-Python paths."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import SecretStr

from etl_express import _speedups
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.anonymizers.pseudonymize import KeyedHasher
from etl_express.sinks import pgcopy

native = _speedups.native
needs_native = pytest.mark.skipif(
    native is None, reason="etl_express._native was not built (no C compiler)"
)


def test_native_extension_is_built_where_required() -> None:
    # CI (.ci/run) sets ETL_EXPRESS_REQUIRE_NATIVE=1: there the fast path must be the one tested
    if os.environ.get("ETL_EXPRESS_REQUIRE_NATIVE") == "1":
        assert native is not None, (
            "the C extension etl_express._native was not built; is a C compiler installed?"
        )
    else:
        assert native is None or hasattr(native, "blake2b_tokens")


def _string_array(values: list[bytes]) -> pa.Array:
    return pa.array(values, pa.binary())


@pytest.fixture(params=[8, 4, 1], ids=["eight-lanes", "four-lanes", "one-lane"])
def blake2b_lanes(request: pytest.FixtureRequest) -> Iterator[int]:
    """Each BLAKE2b path: eight at a time (AVX-512), four (AVX2), one at a time."""
    if native is None:
        pytest.skip("etl_express._native was not built")
    default = native.blake2b_lanes()
    if native.blake2b_lanes(request.param) != request.param:
        native.blake2b_lanes(default)
        pytest.skip(f"this CPU cannot hash {request.param} values at a time")
    yield request.param
    native.blake2b_lanes(default)


@needs_native
def test_blake2b_tokens_equal_hashlib_for_all_lengths_keys_and_sizes(blake2b_lanes: int) -> None:
    assert native.blake2b_lanes() == blake2b_lanes
    rng = random.Random(7)
    # every block boundary: empty, short, exactly 128, 129, several blocks
    values = [
        bytes(rng.getrandbits(8) for _ in range(n))
        for n in [0, 1, 2, 63, 64, 127, 128, 129, 255, 256, 257, 1000]
    ]
    values += [rng.randbytes(rng.randrange(0, 300)) for _ in range(300)]
    arr = _string_array(values)
    offsets, data = _speedups.string_buffers(arr)
    for key_len, size in [(1, 1), (16, 8), (32, 16), (33, 20), (64, 32), (64, 64)]:
        key = rng.randbytes(key_len)
        out = native.blake2b_tokens(key, size, b"p:", offsets, len(values), data)
        width = 2 + 2 * size
        assert len(out) == width * len(values)
        for i, v in enumerate(values):
            assert (
                out[i * width : (i + 1) * width]
                == b"p:" + hashlib.blake2b(v, key=key, digest_size=size).hexdigest().encode()
            )


@needs_native
def test_blake2b_tokens_of_short_values_in_every_mix_of_lengths(blake2b_lanes: int) -> None:
    """Values of one to four words, lanes whose longest value ends at each word (the lanes
    read only up to it), a long value among short ones: each token as hashlib's."""
    rng = random.Random(11)
    values = [rng.randbytes(rng.randrange(1, 40)) for _ in range(400)]
    values += [rng.randbytes(n) for n in range(1, 41)]  # every length, in order
    values[100] = rng.randbytes(128)  # one full block beside short ones
    arr = _string_array(values)
    offsets, data = _speedups.string_buffers(arr)
    key = rng.randbytes(32)
    for size in (16, 20, 32):
        out = native.blake2b_tokens(key, size, b"email:", offsets, len(values), data)
        width = 6 + 2 * size
        expected = [
            b"email:" + hashlib.blake2b(v, key=key, digest_size=size).hexdigest().encode()
            for v in values
        ]
        assert [out[i * width : (i + 1) * width] for i in range(len(values))] == expected


@needs_native
def test_blake2b_tokens_of_a_sliced_array_hash_only_its_values() -> None:
    arr = _string_array([b"skip-me", b"alpha", b"beta", b"tail"]).slice(1, 2)
    offsets, data = _speedups.string_buffers(arr)
    key = b"k" * 32
    out = native.blake2b_tokens(key, 16, b"", offsets, 2, data)
    assert out == b"".join(
        hashlib.blake2b(v, key=key, digest_size=16).hexdigest().encode()
        for v in (b"alpha", b"beta")
    )


@needs_native
@pytest.mark.parametrize(
    "bad",
    [
        {"key": b"", "size": 16},  # no key
        {"key": b"k" * 65, "size": 16},  # key longer than BLAKE2b allows
        {"key": b"k" * 32, "size": 0},
        {"key": b"k" * 32, "size": 65},
    ],
)
def test_blake2b_tokens_refuses_bad_parameters(bad: dict) -> None:
    offsets = np.array([0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match=r"key must be 1..64 bytes"):
        native.blake2b_tokens(bad["key"], bad["size"], b"", offsets, 1, b"x")


@needs_native
def test_native_calls_refuse_offsets_outside_the_data() -> None:
    with pytest.raises(ValueError, match="offsets"):
        native.blake2b_tokens(b"k" * 32, 16, b"", np.array([0, 10], dtype=np.int32), 1, b"abc")
    with pytest.raises(ValueError, match="offsets"):
        native.blake2b_tokens(b"k" * 32, 16, b"", np.array([2, 1], dtype=np.int32), 1, b"abc")
    with pytest.raises(ValueError, match="shorter"):
        native.blake2b_tokens(b"k" * 32, 16, b"", np.array([0], dtype=np.int32), 1, b"abc")
    with pytest.raises(ValueError, match="offsets"):
        native.copy_rows([("var", np.array([0, 9], dtype=np.int32), b"abc")], 1)
    with pytest.raises(ValueError, match="block part shorter"):
        native.copy_rows([("block", 4, b"abc")], 1)
    with pytest.raises(ValueError, match="values buffer shorter"):
        native.copy_rows([("int", 8, 8, b"1234567", 0, None, 0, 0)], 1)
    with pytest.raises(ValueError, match="validity bitmap shorter"):
        native.copy_rows([("int", 1, 2, b"123456789", 0, b"\xff", 0, 0)], 9)
    with pytest.raises(ValueError, match="widths"):
        native.copy_rows([("int", 3, 8, b"123", 0, None, 0, 0)], 1)
    with pytest.raises(TypeError, match="a part is"):
        native.copy_rows([("float", b"")], 1)


def test_keyed_hasher_native_and_hashlib_paths_agree() -> None:
    hasher = KeyedHasher(SecretStr(secrets.token_urlsafe(48)), "test")
    values = pa.array(["+79161234567", "user@example.com", "", "ёлка", "a" * 200, "z"]).slice(1)
    fallback = hasher.tokens(values, "email", native=False)
    assert hasher.tokens(values, "email") == fallback
    assert all(
        t.startswith("email:") and len(t) == len("email:") + 32 for t in fallback.to_pylist()
    )
    assert fallback[1].as_py() == hasher.token("", "email")


def test_pseudonymize_gives_the_same_tokens_without_the_extension(tmp_path) -> None:
    """A machine without a C compiler computes the same pseudonyms (joins keep working)."""
    script = (
        "import pyarrow as pa\n"
        "from pydantic import SecretStr\n"
        "from etl_express import _speedups\n"
        "from etl_express.anonymizers import Pseudonymize\n"
        "import os\n"
        "p = Pseudonymize(['email', 'phone'], key=SecretStr(os.environ['TEST_KEY']))\n"
        "b = pa.record_batch({'email': ['A@b.ru', None, 'x@y.com'], 'phone': ['8 (916) 123-45-67', '', '+7 916 1234567']})\n"
        "print(_speedups.native is not None, p.anonymize(b).to_pylist())\n"
    )
    runs = {}
    key = secrets.token_urlsafe(48)
    for flag in ("0", "1"):
        env = {**os.environ, "ETL_EXPRESS_NO_NATIVE": flag, "TEST_KEY": key}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        runs[flag] = out.stdout.strip()
    assert runs["1"].startswith("False ")
    assert runs["0"].split(" ", 1)[1] == runs["1"].split(" ", 1)[1]
    assert "email:" in runs["1"] and "phone:" in runs["1"]


def _every_type_batch(rows: int, seed: int) -> tuple[pa.RecordBatch, list[str]]:
    import datetime as dt
    import decimal

    rng = random.Random(seed)

    def maybe(value: object) -> object:
        return None if rng.random() < 0.2 else value

    columns = {
        "i64": (
            pa.array([maybe(rng.randrange(-(2**63), 2**63)) for _ in range(rows)], pa.int64()),
            "bigint",
        ),
        "i32": (
            pa.array([maybe(rng.randrange(-(2**31), 2**31)) for _ in range(rows)], pa.int32()),
            "integer",
        ),
        "i16": (
            pa.array([maybe(rng.randrange(-(2**15), 2**15)) for _ in range(rows)], pa.int16()),
            "smallint",
        ),
        "i8_to_int": (
            pa.array([maybe(rng.randrange(-128, 128)) for _ in range(rows)], pa.int8()),
            "integer",
        ),
        "i64_to_int": (
            pa.array([maybe(rng.randrange(-(2**31), 2**31)) for _ in range(rows)], pa.int64()),
            "integer",
        ),
        "u8": (
            pa.array([maybe(rng.randrange(0, 256)) for _ in range(rows)], pa.uint8()),
            "smallint",
        ),
        "text": (
            pa.array(
                [
                    maybe("".join(rng.choice("aЖ€ \t'\"\\,") for _ in range(rng.randrange(0, 12))))
                    for _ in range(rows)
                ]
            ),
            "text",
        ),
        "json": (pa.array([maybe(f'{{"k": {i}}}') for i in range(rows)]), "jsonb"),
        "flag": (pa.array([maybe(rng.random() < 0.5) for _ in range(rows)]), "boolean"),
        "day": (
            pa.array(
                [
                    maybe(dt.date(1, 1, 1) + dt.timedelta(days=rng.randrange(0, 3_000_000)))
                    for _ in range(rows)
                ],
                pa.date32(),
            ),
            "date",
        ),
        "ts_us": (
            pa.array([maybe(rng.randrange(-(2**60), 2**60)) for _ in range(rows)], pa.int64()).cast(
                pa.timestamp("us", "UTC")
            ),
            "timestamp with time zone",
        ),
        "ts_ms": (
            pa.array([maybe(rng.randrange(-(2**40), 2**40)) for _ in range(rows)], pa.int64()).cast(
                pa.timestamp("ms")
            ),
            "timestamp without time zone",
        ),
        "money": (
            pa.array(
                [
                    maybe(decimal.Decimal(rng.randrange(-(10**12), 10**12)) / 100)
                    for _ in range(rows)
                ],
                pa.decimal128(14, 2),
            ),
            "numeric",
        ),
        "units": (  # an integer column into numeric: the compiled numeric encoder too
            pa.array([maybe(rng.randrange(-(2**31), 2**31)) for _ in range(rows)], pa.int32()),
            "numeric",
        ),
        "f64": (
            pa.array([maybe(rng.random() * 1e6) for _ in range(rows)], pa.float64()),
            "double precision",
        ),
        "f32": (  # a float32 into real (its bits copied) and into double precision (widened)
            pa.array([maybe(rng.random() * 1e6 - 5e5) for _ in range(rows)], pa.float32()),
            "real",
        ),
        "f32_wide": (
            pa.array([maybe(rng.random() * 1e6) for _ in range(rows)], pa.float32()),
            "double precision",
        ),
    }
    batch = pa.record_batch({name: arr for name, (arr, _) in columns.items()})
    return batch, [pg for _, pg in columns.values()]


@pytest.mark.parametrize("seed", [1, 2])
def test_copy_payload_is_the_same_with_and_without_the_compiled_encoder(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    batch, types = _every_type_batch(700, seed)
    assert pgcopy.copy_payload(batch, types).format == "binary"  # not the CSV fallback
    for piece in (batch, batch.slice(3), batch.slice(9, 250), batch.slice(700)):
        with_native = b"".join(
            bytes(c) for c in pgcopy.copy_payload(piece, types, slice_bytes=4096)
        )
        with monkeypatch.context() as m:
            m.setattr(_speedups, "native", None)
            without = b"".join(
                bytes(c) for c in pgcopy.copy_payload(piece, types, slice_bytes=4096)
            )
        assert with_native == without
        assert with_native.startswith(b"PGCOPY\n\xff\r\n\x00") and with_native.endswith(b"\xff\xff")


def test_scrub_and_pseudonymize_unchanged_by_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = pa.array(
        [
            "Пишите: иван.петров@почта.рф или +7 (916) 123-45-67",
            None,
            "Заказ №12 доставлен",
            "тел 8 916 123 45 67, a@b.co, b@c.org",
            "СНИЛС 112-233-445 95",
        ]
    )
    key = SecretStr(secrets.token_urlsafe(48))
    scrub = ScrubPII(["notes"], replace="pseudonym", key=key)
    pseudo = Pseudonymize(["email"], key=key)
    batch = pa.record_batch(
        {"notes": texts, "email": pa.array(["A@B.ru", "b@c.org", None, "", "x@y.z"])}
    )
    fast = pseudo.anonymize(scrub.anonymize(batch))
    monkeypatch.setattr(_speedups, "native", None)
    slow = pseudo.anonymize(scrub.anonymize(batch))
    assert fast.equals(slow)
    scrubbed = str(fast.column(0).to_pylist())  # tokens are hex, so look for whole raw values
    assert "почта.рф" not in scrubbed and "123-45-67" not in scrubbed and "1234567" not in scrubbed


def _random_phones(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    alphabet = "0123456789 +()-78٣" + "abc"
    out: list[str | None] = [
        None,
        "",
        "+",
        "8",
        "89161234567",
        "79161234567",
        "9161234567",
        "791612345678",
    ]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 20))) for _ in range(n)]
    return out


@needs_native
def test_phone_normalization_native_equals_arrow_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from etl_express.anonymizers.normalize import normalize_phone

    phones = pa.array(_random_phones(3000, 11))
    for arr in (phones, phones.slice(5, 1000), pa.array(["8 (916) 123-45-67"] * 3)):
        fast = normalize_phone(arr)
        with monkeypatch.context() as m:
            m.setattr(_speedups, "native", None)
            slow = normalize_phone(arr)
        assert fast.equals(slow)
    assert normalize_phone(pa.array(["8 (916) 123-45-67", None, "abc"])).to_pylist() == [
        "+79161234567",
        None,
        "",
    ]


def test_casefold_of_ascii_columns_matches_python() -> None:
    import unicodedata

    from etl_express.anonymizers.normalize import casefold

    rng = random.Random(5)
    ascii_values = [
        "".join(rng.choice("AbCdEz09.@_-+ ") for _ in range(rng.randrange(0, 15)))
        for _ in range(500)
    ]
    mixed = [*ascii_values, "Straße@Example.COM", "ΣΊΣΥΦΟΣ", "ﬁle@ﬀ.ru", "Ёлка"]
    for values in (ascii_values, mixed):
        got = casefold(pa.array([*values, None])).to_pylist()
        assert got == [unicodedata.normalize("NFKC", v).casefold() for v in values] + [None]


def _fuzz_texts(alphabet: list[str], count: int, seed: int, longest: int = 25) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, longest)))
        for _ in range(count)
    ]


@needs_native
def test_compiled_email_rule_replaces_exactly_what_re2_does() -> None:
    import re2

    from etl_express.anonymizers.scrub_kernels import replace_emails_native
    from etl_express.anonymizers.scrub_rules import RULES_BEFORE_CHECKSUMS

    rule = next(r for r in RULES_BEFORE_CHECKSUMS if r.kind == "email")
    alphabet = [*list("ab.-_%+@@@ 1,Z"), "я", "ё", "é", "Ⅻ", "٣", "\xa0", "—", "𝔸", "\t"]
    texts = [
        *_fuzz_texts(alphabet, 60000, 3),
        "a@b.c@d.e x@y..z a@b.c. @a.b q@w.e-",
        "иван@почта.рф",
        "счёт: user.1@mail.ru, спасибо",
        "a@b.c.d@e.f",
        "x@y.zя",
        "яx@y.z",
        "x@я.z",
        "x@y.я",
        "",
        "@",
        "a@",
        "@b.c",
    ]
    arr = pa.array([*texts, None])
    want = [re2.sub(rule.pattern, r"\1<EMAIL>\3", t) for t in texts] + [None]
    for piece, expected in ((arr, want), (arr.slice(7, 1000), want[7:1007])):
        assert replace_emails_native(piece, rule).to_pylist() == expected


def _phone_like_texts(count: int, seed: int) -> list[str]:
    """Phone numbers in every spelling, mutated: separators of every kind, digits dropped or
    added, letters and non-ASCII characters glued on either side."""
    rng = random.Random(seed)
    seps = ["", "", " ", "-", "\t", "\n", "\v", "\f", "\r", "  ", "\u00a0"]
    out = []
    for _ in range(count):
        d = "".join(rng.choice("0123456789") for _ in range(10))
        head = rng.choice(["+7", "8", "7", "", "(", "+", "+8", "9"])
        area = d[:3] if rng.random() < 0.7 else "9" + d[1:3]
        if rng.random() < 0.4:
            area = f"({area})"
        parts = [head, area, d[3:6], d[6:8], d[8:10]]
        text = (
            "".join(p + rng.choice(seps) for p in parts).strip()
            if rng.random() < 0.9
            else "".join(parts)
        )
        if rng.random() < 0.2:  # a digit lost or one too many
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(["", "5"]) + text[i + 1 :]
        text = (
            rng.choice(["", "тел ", "x", "_", "я", "1", " "])
            + text
            + rng.choice(["", ",", "a", "7", "я", " доб. 12"])
        )
        out.append(text if rng.random() < 0.8 else text + " или " + text)
    return out


@needs_native
def test_compiled_phone_rules_replace_exactly_what_re2_does() -> None:
    import re2

    from etl_express.anonymizers import scrub_kernels, scrub_rules

    texts = _phone_like_texts(40_000, 9) + _fuzz_texts(
        [*list("0123456789 -()+7_a\t."), "я", "\xa0"], 20_000, 4
    )
    arr = pa.array([*texts, None])
    rules = [
        r
        for r in scrub_rules.RULES_BEFORE_CHECKSUMS + scrub_rules.RULES_AFTER_CHECKSUMS
        if r.native is not None
    ]
    assert {r.kind for r in rules} == {"phone"} and len(rules) == 2
    for rule in rules:
        want = [re2.sub(rule.pattern, r"\1<PHONE>\3", t) for t in texts] + [None]
        assert sum(w != t for w, t in zip(want, texts)) > 1_000  # the fuzz reaches the matches
        got = scrub_kernels.replace_program_native(arr, rule.native, "<PHONE>").to_pylist()
        assert got == want
        assert (
            scrub_kernels.replace_program_native(
                arr.slice(11, 500), rule.native, "<PHONE>"
            ).to_pylist()
            == want[11:511]
        )


@needs_native
def test_replace_program_refuses_malformed_programs() -> None:
    offsets = np.array([0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match="malformed program"):
        native.replace_program(offsets, 1, b"x", b"\x01\x01\x05", bytes(32), 1, b"<P>")
    with pytest.raises(ValueError, match="malformed program"):
        native.replace_program(offsets, 1, b"x", b"\x00", bytes(32), 1, b"<P>")


@needs_native
def test_compiled_scrub_gates_flag_what_re2_matches() -> None:
    import re2

    from etl_express.anonymizers import scrub_kernels, scrub_rules, textfold

    alphabet = (
        list("0123456789 ()-.\t\n\v\f\r@a++")
        + list("паспортПАСПОРТсерияСЕРИЯиИвыданВЫДАН")
        + ["\u1c80", "\u1c81", "\u1c82", "\u1c83", "\u1c84", "\u1c85", "ё", "\U0001d400"]
        + ["\u00a0", "\u2011", "\u2013", "\uff18", "\u0663", "\ufeff", "\u200b"]  # folded
    )
    words = [
        "паспорт",
        "серия",
        "серии",
        "выдан",
        "ПАСПОРТ",
        "Серии",
        "ВыДаН",
        "\u1c83ерия",
        "па\u1c83порт",
    ]
    rng = random.Random(11)
    texts = _fuzz_texts(alphabet, 40_000, 12, longest=30) + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
        + rng.choice(words)
        + "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
        for _ in range(10_000)
    ]
    arr = pa.array([*texts, None])
    picked, context, _ = scrub_kernels.gates(arr)
    # the same flags, and special_rows' flags, in one pass when it is given the bitmap
    together = scrub_kernels.gates(arr, textfold.special_bitmap())
    assert together[0].equals(picked) and together[1].equals(context)
    assert together[2] is not None and together[2].equals(textfold.special_rows(arr))
    assert 5_000 < sum(together[2].to_pylist()) < len(texts)
    assert picked.to_pylist() == [bool(re2.search(scrub_rules.PREFILTER, t)) for t in texts] + [
        False
    ]
    assert context.to_pylist() == [
        bool(re2.search(scrub_rules.PASSPORT_CONTEXT, t)) for t in texts
    ] + [False]
    assert sum(context.to_pylist()) > 5_000


def _gates_as_re2_finds(texts: list[str]) -> int:
    """The compiled scrub gates of ``texts`` checked against RE2's (the prefilter, the
    passport context) and the special rows; the texts with a context word."""
    import re2

    from etl_express.anonymizers import scrub_kernels, scrub_rules, textfold

    arr = pa.array(texts)
    picked, context, special = scrub_kernels.gates(arr, textfold.special_bitmap())
    assert picked.to_pylist() == [bool(re2.search(scrub_rules.PREFILTER, t)) for t in texts]
    assert context.to_pylist() == [bool(re2.search(scrub_rules.PASSPORT_CONTEXT, t)) for t in texts]
    assert special is not None and special.equals(textfold.special_rows(arr))
    return sum(context.to_pylist())


@needs_native
def test_compiled_scrub_gates_after_a_pick_read_past_ascii_runs_of_every_length() -> None:
    """Once a row is picked (an "@" or ten digits), the gate skips its ASCII eight bytes at a
    time and its UTF-8 continuation bytes at once: a context word or a look-alike character
    after ASCII runs of every length and alignment is still found, as RE2 finds it."""

    rng = random.Random(23)
    heads = ["a@b", "@", "8 916 123 45 67", "x", "1234567", "ё@", ""]
    tails = ["паспорт", "ВЫДАН", "серии", "с\u0435рия", "\u00a0", "\uff18", "\u1c83ерия", "ё", "7"]
    texts = [
        rng.choice(heads)
        + "".join(rng.choice("abc 0.-(") for _ in range(run))
        + rng.choice(tails)
        + "".join(rng.choice("xyz@1 ") for _ in range(rng.randrange(4)))
        for run in range(40)
        for _ in range(60)
    ]
    assert 500 < _gates_as_re2_finds(texts) < len(texts)


@needs_native
def test_compiled_scrub_gates_find_context_words_after_cyrillic_runs_of_every_length() -> None:
    """Cyrillic letters that start no context word are stepped over two bytes at a time: a
    context word (any case) right after a run of them of every length is still found, and a
    letter that starts one but is not one (``с`` of ``счёт``, ``в`` of ``вес``) does not end
    the search, as RE2 finds them; so are the digits around them counted."""

    rng = random.Random(29)
    letters = "абгдежзийклмнорстуфхцчшщъыьэюяАБГДЕЖЗКЛМНОРТУФХЯё"
    tails = ["паспорт", "ПАСПОРТ", "Серия", "сЕРИИ", "выдан", "ВЫДАН", "счёт", "вес", "пас", ""]
    texts = [
        rng.choice(["", "@", "12345", "a@b 1", "+7"])
        + "".join(rng.choice(letters) for _ in range(run))
        + rng.choice(tails)
        + rng.choice(["", "12345 6789", " 1", "я", "\u00a0"])
        for run in range(24)
        for _ in range(120)
    ]
    assert 500 < _gates_as_re2_finds(texts) < len(texts) - 500


def test_scrub_gives_the_same_text_with_and_without_the_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.anonymizers import idnumbers as nb

    rng = random.Random(2)
    pieces = [
        "Паспорт 45 12 345678 выдан ОВД",
        "серия 4512 № 345678",
        "ПАСПОРТ: 4512345678",
        "4512 345678, выдан 01.02.2003",
        f"СНИЛС {nb.snils(rng)}",
        f"ИНН {nb.inn10(rng)}",
        "тел. 8 (916) 123-45-67",
        "+7 916 1234567",
        "(916)123-45-67",
        "user.x@mail.ru",
        "иван@почта.рф",
        "Заказ №123456 доставлен",
        "\u1c83ерия 4512 345678",
        "карта 4111 1111 1111 1111",
        "просто текст",
    ]
    texts = [" ".join(rng.sample(pieces, rng.randrange(1, 4))) for _ in range(3_000)] + [None, ""]
    arr = pa.array(texts)
    fast = ScrubPII(["notes"]).scrub(arr)
    monkeypatch.setattr(_speedups, "native", None)
    slow = ScrubPII(["notes"]).scrub(arr)
    assert fast.equals(slow)
    assert not any("345678" in t for t in fast.to_pylist() if t)


def _context_alternatives() -> list[str]:
    from etl_express.anonymizers.scrub_rules import NOT_PII_CONTEXT

    body = NOT_PII_CONTEXT.removeprefix("(?i)(?:").removesuffix(")")
    return body.split("|")  # no alternative nests a "|"


def test_every_not_pii_context_alternative_holds_a_gate_word() -> None:
    from etl_express.anonymizers.scrub_rules import NOT_PII_WORDS

    alternatives = _context_alternatives()
    assert len(alternatives) == 29
    for alternative in alternatives:
        literal = alternative.replace("[её]", "е").replace("\\", "")
        assert any(word in literal for word in NOT_PII_WORDS), alternative


#: letters RE2's (?i) folds onto the gate words' letters, beside their capitals
_FOLDS = {"о": "\u1c82", "с": "\u1c83", "т": "\u1c84\u1c85", "в": "\u1c80", "д": "\u1c81", "s": "\u017f",
          "k": "\u212a", "е": "ёЁ"}  # fmt: skip


def _spelled(word: str, rng: random.Random) -> str:
    out = []
    for c in word:
        choice = rng.random()
        if choice < 0.3 and c in _FOLDS:
            out.append(rng.choice(_FOLDS[c]))
        else:
            out.append(c.upper() if choice < 0.6 else c)
    return "".join(out)


@needs_native
def test_not_pii_word_gate_flags_every_row_the_context_patterns_match() -> None:
    import re

    from etl_express.anonymizers import scrub_kernels
    from etl_express.anonymizers.scrub_rules import (
        NOT_PII_BEFORE,
        NOT_PII_CONTEXT,
        NOT_PII_WORDS,
        PLACEHOLDERS,
    )

    rng = random.Random(5)
    pieces = [
        *NOT_PII_WORDS,
        "фактура", "-", "времени", "time", "id", "номер", "no.", "№", ":", " ", "=", "#", ".",
        "13", "ы", "ами", "<PHONE>", "<phone>", "<EMAIL>", "text", "клиент", "тел", "\u1c86",
    ]  # fmt: skip
    texts = [
        "".join(_spelled(rng.choice(pieces), rng) for _ in range(rng.randrange(0, 9)))
        for _ in range(30_000)
    ]
    arr = pa.array([*texts, None])
    placeholder = PLACEHOLDERS["phone"]
    for pattern, before in (
        (NOT_PII_BEFORE.removesuffix("$") + re.escape(placeholder), placeholder),
        (NOT_PII_CONTEXT, ""),
    ):
        matched = pc.match_substring_regex(arr, pattern).to_pylist()
        gate = scrub_kernels.not_pii_words(arr, before)
        assert gate is not None
        flagged = gate.to_pylist()
        missed = [t for t, m, f in zip(texts, matched, flagged) if m and not f]
        assert missed == []
        assert flagged[-1] is False  # a null row
        # the gate is a gate: it lets through fewer rows than it is given
        assert sum(matched[:-1]) >= 1000 and sum(flagged) < 0.9 * len(texts)


@needs_native
@pytest.mark.parametrize("before", ["<PHONE>", "<phone>", "PH", "ph", "="])
def test_not_pii_word_gate_reads_only_before_the_last_occurrence(before: str) -> None:
    """With ``before``, a row is judged on its text before the last occurrence of ``before``
    (ASCII letters in either case), whatever byte ``before`` starts with."""
    from etl_express.anonymizers.scrub_rules import NOT_PII_WORDS

    rng = random.Random(len(before))
    pieces = ["заказ", "ts", "x", " ", "<PHONE>", "<Phone>", "ph", "PH", "=", "==", "я"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8))) for _ in range(20_000)]
    words = "\0".join(NOT_PII_WORDS).encode()
    offsets, data = _speedups.string_buffers(pa.array(texts))
    got = list(native.rows_with_words(offsets, len(texts), data, words, before.encode()))
    heads = [
        t[: t.lower().rfind(before.lower())] if before.lower() in t.lower() else None for t in texts
    ]
    alone = pa.array([h or "" for h in heads])
    h_offsets, h_data = _speedups.string_buffers(alone)
    anywhere = native.rows_with_words(h_offsets, len(texts), h_data, words, b"")
    assert got == [bool(a) and h is not None for a, h in zip(anywhere, heads)]
    assert 1_000 < sum(got) < len(texts)


@needs_native
def test_not_pii_word_gate_refuses_words_it_cannot_fold() -> None:
    offsets, data = _speedups.string_buffers(pa.array(["x"]))
    for words in (b"", b"a\0", b"\0a", "é".encode(), b"\0".join([b"a"] * 33), b"a" * 33):
        with pytest.raises(ValueError, match="words"):
            native.rows_with_words(offsets, 1, data, words, b"")
    with pytest.raises(ValueError, match="before ASCII"):
        native.rows_with_words(offsets, 1, data, b"a", "<é>".encode())


@needs_native
def test_literal_gate_agrees_with_match_substring() -> None:
    from etl_express.anonymizers import scrub_kernels

    texts = _fuzz_texts(list("0012+ -я9"), 20_000, 23, longest=12)
    arr = pa.array([*texts, None, "", "0", "10"]).slice(3)  # offsets not starting at 0
    for literals in (("+",), ("00", "10"), ("я9",)):
        expected = pc.fill_null(pc.match_substring(arr, literals[0]), False)
        for literal in literals[1:]:
            expected = pc.or_(expected, pc.fill_null(pc.match_substring(arr, literal), False))
        assert 0 < pc.sum(expected).as_py() < len(arr)
        assert scrub_kernels.contains_any(arr, literals).equals(expected)
    with pytest.raises(ValueError, match="empty"):
        native.rows_containing(np.array([0, 1], dtype=np.int32), 1, b"a", b"")


def _digit_run_reference(text: str, min_digits: int) -> bool:
    digits = 0
    for c in text.encode():
        if 48 <= c <= 57:
            digits += 1
            if digits >= min_digits:
                return True
        elif c not in b" -":
            digits = 0
    return False


@needs_native
@pytest.mark.parametrize("min_digits", [-1, 0, 1, 2, 10, 17])
def test_digit_run_gate_counts_as_its_definition(min_digits: int) -> None:
    """The branch-free loop with its digit-count shortcut flags exactly the rows with
    ``min_digits`` digits in a run of digits, spaces and dashes (none for an empty row)."""
    from etl_express.anonymizers import scrub_kernels

    texts = _fuzz_texts(list("0123456789" * 3 + " -  -.a(я\u0663"), 20_000, 31, longest=40)
    arr = pa.array([*texts, "", None]).slice(2)
    offsets, data = _speedups.string_buffers(arr)
    flags = list(native.digit_runs(offsets, len(arr), data, min_digits))
    assert flags == [_digit_run_reference(t or "", min_digits) for t in arr.to_pylist()]
    assert 1_000 < sum(flags) < len(arr) or min_digits <= 2
    assert scrub_kernels.digit_runs(arr, max(min_digits, 1)).to_pylist()[-1] is False


@needs_native
def test_digit_run_gate_flags_every_check_digit_candidate() -> None:
    import re2

    from etl_express.anonymizers import scrub_kernels, scrub_rules

    texts = _fuzz_texts(list("0123456789" * 4 + " -  -.a(я"), 40_000, 21, longest=40)
    flags = scrub_kernels.digit_runs(pa.array([*texts, None])).to_pylist()
    has_candidate = [re2.search(scrub_rules.CHECKSUM_CANDIDATE, t) is not None for t in texts]
    assert sum(has_candidate) > 1_000
    assert all(f for f, c in zip(flags, has_candidate) if c)  # a superset: no candidate is skipped
    assert flags[-1] is False
    ten = "".join(str(d % 10) for d in range(1, 11))
    spaced, nine, glued = " ".join(ten[i : i + 2] for i in range(0, 10, 2)), ten[:9], "a" + ten
    assert scrub_kernels.digit_runs(pa.array([spaced, nine, glued])).to_pylist() == [
        True,
        False,
        True,
    ]
