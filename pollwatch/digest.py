"""A content digest of the observation table that can be updated row by row (LtHash16).

The audit log records each observation batch; to prove later that the stored observations were
not edited, deleted or added behind its back, every batch entry also carries the digest of the
whole observation table after the batch (`table_digest`, `table_rows`). The digest is the sum,
lane by lane modulo 2^16, of one 1024-lane vector per row (SHAKE-256 of the row's line): adding
a row adds its vector, replacing a row subtracts the old one, so an upsert updates it in time
proportional to the batch, and any order of writes gives the same digest. This is LtHash16
(Bellare and Micciancio's lattice hash, as Lewi et al., "Securing Update Propagation with
Homomorphic Hashing", 2019, parameterise it), about 200 bits of security.

A row's line: `source␟signal␟entity␟microseconds since 1970␟repr(value)␟count`. Provenance
(request, fetched_at, payload hash) is not part of it: a source re-fetching a value changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

LANES = 1024
_BYTES = LANES * 2
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def row_line(row: Mapping[str, Any]) -> bytes:
    """The canonical line of an observation row (a dict of the store's columns, or a Row mapping)."""
    t: datetime = row["time"]
    micros = (t.astimezone(timezone.utc) - _EPOCH) // _MICRO
    value = row["value"]
    value_text = "None" if value is None else repr(float(value))
    return (
        f"{row['source']}\x1f{row['signal']}\x1f{row['entity']}\x1f{micros}\x1f{value_text}\x1f{row['count']}".encode()
    )


def _vectors(rows: Iterable[Any]) -> tuple[np.ndarray, int]:
    lines = [row_line(r if isinstance(r, Mapping) else r._mapping) for r in rows]
    if not lines:
        return np.zeros(LANES, dtype=np.uint16), 0
    data = b"".join(hashlib.shake_256(line).digest(_BYTES) for line in lines)
    vectors = np.frombuffer(data, dtype="<u2").reshape(len(lines), LANES)
    return vectors.sum(axis=0, dtype=np.uint16), len(lines)  # uint16 arithmetic wraps: modulo 2^16


class TableDigest:
    """The running digest of a set of rows and how many there are."""

    def __init__(self, lanes: np.ndarray | None = None, rows: int = 0):
        self.lanes = np.zeros(LANES, dtype=np.uint16) if lanes is None else lanes.astype(np.uint16)
        self.rows = rows

    def replace(self, old: Iterable[Any], new: Iterable[Any]) -> None:
        """Remove the rows `old` (as they were stored) and add the rows `new`."""
        removed, n_old = _vectors(old)
        added, n_new = _vectors(new)
        self.lanes = self.lanes - removed + added
        self.rows += n_new - n_old

    def to_bytes(self) -> bytes:
        return self.lanes.astype("<u2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, rows: int) -> "TableDigest":
        if len(data) != _BYTES:
            return cls(None, rows)
        return cls(np.frombuffer(data, dtype="<u2").copy(), rows)

    def hexdigest(self) -> str:
        """SHA-256 of the lanes: the short form the audit log records."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TableDigest) and self.rows == other.rows and bool(np.array_equal(self.lanes, other.lanes))
        )
