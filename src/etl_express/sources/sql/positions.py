"""JSON encoding of key values for checkpoints (typed, so they bind back unchanged)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any


def encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes):
        return {"$hex": value.hex()}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == "$datetime":
            return dt.datetime.fromisoformat(text)
        if tag == "$date":
            return dt.date.fromisoformat(text)
        if tag == "$decimal":
            return decimal.Decimal(text)
        if tag == "$hex":
            return bytes.fromhex(text)
    return value
