"""What the import adapters share: CSV rows with their line numbers (plain or gzip), progress, and errors
that name `FILE:LINE: field: what`."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from pollwatch.jsonl import FormatError
from pollwatch.models import Provenance
from pollwatch.timeutil import parse_time

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)
MAX_FIELD = 1 << 20  # a CSV field longer than 1 MiB is not one of these datasets


class _Counting(io.RawIOBase):
    """A binary file that tells a callback how far it has read (the compressed position for .gz files)."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None):
        self.raw, self.total, self.progress, self.done, self.last = raw, total, progress, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b):  # type: ignore[no-untyped-def]
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.done += n or 0
        if self.progress and (self.done - self.last >= 1 << 20 or not n):
            self.last = self.done
            self.progress(self.done, self.total)
        return n


def provenance(path: Path) -> Provenance:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return Provenance(request=f"file:{path.name}", payload_hash=h.hexdigest()[:16])


def csv_rows(
    path: str | Path, progress: Progress | None = None, required: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV file (gzip when it ends in .gz), checking `required` columns."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    csv.field_size_limit(MAX_FIELD)
    raw = path.open("rb")
    counted = io.BufferedReader(_Counting(raw, path.stat().st_size, progress))
    binary: IO[bytes] = gzip.GzipFile(fileobj=counted) if path.suffix == ".gz" else counted  # type: ignore[assignment]
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(text)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, gzip.BadGzipFile, csv.Error) as exc:
            raise FormatError(f"{path}:1: not a readable CSV file ({exc})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise FormatError(
                f"{path}:1: missing column(s) {', '.join(missing)} (the header has "
                f"{', '.join(header[:12]) or 'nothing'})"
            )
        try:
            for row in reader:
                if None in row:
                    raise FormatError(f"{path}:{reader.line_num}: more fields than the header names")
                yield reader.line_num, row
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
            raise FormatError(f"{path}:{reader.line_num}: {exc}") from None
    finally:
        text.close()
        raw.close()


def need(path: Path | str, line: int, row: dict[str, str], field: str) -> str:
    value = (row.get(field) or "").strip()
    if not value:
        raise FormatError(f"{path}:{line}: {field}: empty")
    return value


def number(path: Path | str, line: int, row: dict[str, str], field: str, allow_na: bool = True) -> float | None:
    """A finite number, or None for an empty / NA field (no data)."""
    text = (row.get(field) or "").strip()
    if allow_na and text.upper() in ("", "NA", "NAN", "NULL", "NONE"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise FormatError(f"{path}:{line}: {field}: not a number: {text[:40]!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise FormatError(f"{path}:{line}: {field}: not a finite number: {text[:40]!r}")
    return v


def epoch(path: Path | str, line: int, row: dict[str, str], field: str) -> datetime:
    v = number(path, line, row, field, allow_na=False)
    try:
        return datetime.fromtimestamp(v, tz=timezone.utc)  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):
        raise FormatError(f"{path}:{line}: {field}: not a unix time: {row.get(field)!r}") from None


def iso_time(path: Path | str, line: int, row: dict[str, str], field: str) -> datetime:
    """The row's ISO 8601 time in `field` (UTC when it names no zone)."""
    try:
        return parse_time(need(path, line, row, field))
    except ValueError as exc:
        raise FormatError(f"{path}:{line}: {field}: {exc}") from None


def asn_of(path: Path | str, line: int, text: str, field: str = "probe_asn") -> int:
    t = text.strip().upper().removeprefix("AS")
    if not t.isdigit() or int(t) >= 2**32:
        raise FormatError(f"{path}:{line}: {field}: not an AS number: {text[:40]!r}")
    return int(t)
