"""ScrubPII's optional NER mode: names and addresses (``etl-express[ner]``, Natasha)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from etl_express.anonymizers import ScrubPII
from etl_express.errors import ETLConfigError

from .corpus import address_gone, address_notes, name_notes


def test_names_and_addresses_are_replaced() -> None:
    scrub = ScrubPII(["notes"], kinds=["email", "phone", "name", "address"])
    text = (
        "Клиент Сазонов Арсений Дмитриевич просил перезвонить на +7 916 123-45-67, "
        "адрес: г. Москва, ул. Тверская, д. 5, кв. 12"
    )
    out = scrub.scrub(pa.array([text, "Событие ts=1712345679", None])).to_pylist()
    assert out == [
        "Клиент <NAME> просил перезвонить на <PHONE>, адрес: <ADDRESS>",
        "Событие ts=1712345679",
        None,
    ]


def test_recall_on_generated_names_and_addresses() -> None:
    scrub = ScrubPII(["notes"], kinds=["name", "address"])
    names = name_notes(150, 21)
    out = scrub.scrub(pa.array([n for n, _ in names])).to_pylist()
    assert sum(v not in o for (_, v), o in zip(names, out)) >= 0.95 * len(names)
    addresses = address_notes(300, 22)
    out = scrub.scrub(pa.array([n for n, _ in addresses])).to_pylist()
    assert sum(address_gone(v, o) for (_, v), o in zip(addresses, out)) >= 0.95 * len(addresses)


def test_pseudonyms_for_names(anon_key) -> None:  # type: ignore[no-untyped-def]
    scrub = ScrubPII(["notes"], kinds=["name"], replace="pseudonym", key=anon_key)
    out = scrub.scrub(pa.array(["Звонила Ольга Петрова", "Получатель: Ольга Петрова"]))
    a, b = out.to_pylist()
    assert "Петрова" not in a + b and a.split()[-1] == b.split()[-1].strip()
    assert a.split()[-1].startswith("name:")


def test_the_default_scrub_never_loads_the_model() -> None:
    code = (
        "import sys, pyarrow as pa\n"
        "from etl_express.anonymizers import ScrubPII\n"
        "ScrubPII(['n']).scrub(pa.array(['Иван Петров, ул. Ленина, д. 5, +7 916 123-45-67']))\n"
        "print(any(m.split('.')[0] in ('natasha', 'slovnet', 'navec') for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_model_is_a_config_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "natasha" else real(name, *a)
    )
    with pytest.raises(ETLConfigError, match=r"etl-express\[ner\]"):
        ScrubPII(["notes"], kinds=["name"])
