"""``Pseudonymize``: replace identifiers by keyed-hash tokens that still join."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr

from .. import _speedups
from .._arrays import string_array
from .._validate import name_list
from ..errors import AnonymizationError, ETLConfigError
from ..secrets import SecretRef
from .base import Anonymizer
from .buffers import bool_array, bool_values
from .columns import canonical, canonical_all, column_index
from .keys import check_key_source, entity_subkey, keyed_blake2b, resolve_key
from .normalize import ColumnShapes, infer_entity, normalize, on_distinct


class KeyedHasher:
    """Turns normalized values into tokens ``"<entity>:<hex>"`` with keyed BLAKE2b.

    The master key is read from its secret once, used to derive one HKDF subkey per entity
    type, and dropped; the subkeys live only in this object's memory (not in its repr, not
    in a pickle; a pickle carries only the secret reference, and a key given as a
    ``SecretStr`` refuses to be pickled, so worker processes never receive a key). Whole columns are hashed by the compiled ``etl_express._native`` loop over
    the Arrow buffers, with the GIL released; without it, by hashlib on a copied pre-keyed
    state (one BLAKE2b compression per value). Both give the same bytes.
    """

    def __init__(self, key: SecretRef | SecretStr, owner: str, digest_size: int = 16):
        self._key = check_key_source(key, owner)
        self._owner = owner
        self.digest_size = digest_size
        # entity -> (subkey, keyed hashlib state)
        self._states: dict[str, tuple[bytes, hashlib.blake2b]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"KeyedHasher(key={self._key!r})"
            if isinstance(self._key, SecretRef)
            else "KeyedHasher(key=**********)"
        )

    def __getstate__(self) -> dict[str, Any]:
        # a pickle (what worker processes receive) carries a secret reference, never a key:
        # neither the derived subkeys nor a key given as a SecretStr
        if not isinstance(self._key, SecretRef):
            raise AnonymizationError(
                f"{self._owner} cannot send its key to worker processes: it was given as a "
                "SecretStr value, and a key never leaves the process that resolved it",
                hint="pass key=etl.secret('ANON_KEY') (resolved again in each worker), or run "
                "with workers=1",
            )
        state = self.__dict__.copy()
        state["_states"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _state(self, entity: str) -> tuple[bytes, hashlib.blake2b]:
        state = self._states.get(entity)
        if state is None:
            with self._lock:
                master = resolve_key(self._key, self._owner)
                subkey = entity_subkey(master, entity)
                del master
                state = (subkey, keyed_blake2b(subkey, self.digest_size))
                self._states[entity] = state
        return state

    def digests(self, values: Sequence[bytes], entity: str) -> bytes:
        """The concatenated raw digests of ``values`` (each ``digest_size`` bytes)."""
        new = self._state(entity)[1].copy
        out: list[bytes] = []
        append = out.append
        for value in values:
            h = new()
            h.update(value)
            append(h.digest())
        return b"".join(out)

    def token(self, value: str, entity: str) -> str:
        """One token (for matches found inside free text)."""
        h = self._state(entity)[1].copy()
        h.update(value.encode("utf-8"))
        return f"{entity}:{h.hexdigest()}"

    def tokens(self, normalized: pa.Array, entity: str, *, native: bool = True) -> pa.Array:
        """Tokens for a string array without nulls (``native=False``: the hashlib path)."""
        n = len(normalized)
        if n == 0:
            return string_array([])
        prefix_bytes = f"{entity}:".encode()
        width = len(prefix_bytes) + 2 * self.digest_size
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        if native and _speedups.native is not None:
            values_offsets, data = _speedups.string_buffers(normalized)
            out_data = _speedups.native.blake2b_tokens(
                self._state(entity)[0],
                self.digest_size,
                prefix_bytes,
                values_offsets,
                n,
                data,
                _speedups.output_buffer,
            )
            return _speedups.string_array(n, offsets, out_data)
        values = normalized.cast(pa.binary()).to_pylist()
        hexed = np.frombuffer(self.digests(values, entity).hex().encode("ascii"), dtype=np.uint8)
        prefix = np.frombuffer(prefix_bytes, dtype=np.uint8)
        p = len(prefix)
        out = np.empty((n, width), dtype=np.uint8)
        out[:, :p] = prefix
        out[:, p:] = hexed.reshape(n, 2 * self.digest_size)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))

    def pseudonymize(
        self, arr: pa.Array | pa.ChunkedArray, entity: str, *, repeated: bool | None = None
    ) -> pa.Array:
        """Normalize and tokenize a column; nulls stay null, so do values that normalize to ''.
        ``repeated``: whether most values repeat, when the caller knows (:func:`.on_distinct`)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        n = len(arr)
        if n and arr.null_count == n:
            return pa.nulls(n, pa.string())
        return on_distinct(arr, lambda values: self._tokenize_valid(values, entity), repeated)

    def _tokenize_valid(self, arr: pa.Array, entity: str) -> pa.Array:
        norm = normalize(arr, entity)
        # not null and not empty: read from the offsets and the validity bitmap, no kernels
        offsets, _ = _speedups.string_buffers(norm)
        filled = np.diff(offsets) > 0
        if not norm.null_count and filled.all():
            return self.tokens(norm, entity)
        valid = bool_array(filled & bool_values(pc.is_valid(norm)))
        tokens = self.tokens(pc.filter(norm, valid), entity)
        return pc.replace_with_mask(pa.nulls(len(arr), pa.string()), valid, tokens)


class Pseudonymize(Anonymizer):
    """Replaces identifiers with keyed-hash tokens: the same person, the same token, everywhere.

    Logic: each value is first normalized for its entity type — phones to E.164
    (``8 (916) 123-45-67`` and ``+7 916 1234567`` are both ``+79161234567``), emails
    NFKC-normalized and case-folded, SNILS/INN/OGRN/passport/card numbers to digits (leading
    zeros restored for numbers stored as integers), names case-folded with ``ё`` as ``е``. The
    normalized value is hashed with BLAKE2b keyed with a per-entity subkey derived by
    HKDF-SHA256 from the secret key, and written as ``"<entity>:<32 hex digits>"``. Same
    value and key give the same token in every table and run, so joins keep working; an email
    and a phone never share a token because their subkeys differ. Nothing is stored that
    could map a token back: without the key, a dictionary of all phone numbers does not help.
    Columns with many repeated values are hashed once per distinct value.

    Args:
        columns: the columns to pseudonymize, in any spelling (``"Email"``, ``"Mobile Phone"``
            resolve to ``email``, ``mobile_phone``); a column the batch lacks is an
            ``ETLConfigError`` raised before anything is written.
        key: ``etl.secret("ANON_KEY")`` or a ``pydantic.SecretStr`` of at least 32 bytes; a
            literal string or bytes is refused.
        entities: entity type per column, e.g. ``{"contact": "email"}``; columns not listed
            get the type their name suggests (``client_email`` -> ``email``, ``mobile`` ->
            ``phone``...) or, failing that, their own name.

    Example::

        Pseudonymize(["email", "phone", "snils"], key=etl.secret("ANON_KEY"))
    """

    def __init__(
        self,
        columns: str | Sequence[str],
        key: SecretRef | SecretStr,
        *,
        entities: Mapping[str, str] | None = None,
    ):
        self.columns = canonical_all(name_list(columns, "columns", type(self).__name__))
        entities = {canonical(c): e for c, e in (entities or {}).items()}
        unknown = [c for c in entities if c not in self.columns]
        if unknown:
            raise ETLConfigError(
                f"Pseudonymize: entities= names column(s) {unknown} that are not in columns=",
                hint=f"list them in columns= too, or correct the names (columns: {list(self.columns)})",
            )
        self.entities = {c: entities.get(c) or infer_entity(c) for c in self.columns}
        self._hasher = KeyedHasher(key, "Pseudonymize")
        self._shapes = ColumnShapes()  # which columns repeat their values, kept across batches

    def __repr__(self) -> str:
        return f"Pseudonymize(columns={list(self.columns)!r}, entities={self.entities!r})"

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = column_index(batch.schema, column, "Pseudonymize")
            values = batch.column(i)
            repeated = self._shapes.mostly_repeated(column, values)
            tokens = self._hasher.pseudonymize(values, self.entities[column], repeated=repeated)
            batch = batch.set_column(i, pa.field(column, pa.string()), tokens)
        return batch

    def token(self, value: str, entity: str) -> str:
        """The token of one raw value (normalized as ``entity``), e.g. to look a person up."""
        out = self._hasher.pseudonymize(string_array([value]), entity)[0].as_py()
        return out


__all__ = ["KeyedHasher", "Pseudonymize"]
