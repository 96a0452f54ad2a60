"""Observation JSON Lines: the interchange format of docs/formats.md.

One object per line: `time` (ISO 8601 with zone), `source`, `signal`, `country`, `region`, `asn`,
`service`, `value` (null = no data), and optionally `count` and provenance (`request`,
`fetched_at`, `payload_hash`). A bad line is reported with its file and line number and what
was wrong; nothing is half-imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from pollwatch.models import Observation, Provenance, iso
from pollwatch.sinks import make_parent, output_file

_CORE = ("time", "source", "signal", "country", "region", "asn", "service", "value")
_PROVENANCE = ("request", "fetched_at", "payload_hash")
_ALLOWED = set(_CORE) | {"count"} | set(_PROVENANCE)


MAX_LINE = 16 * 1024  # bytes; a real line is a few hundred (docs/formats.md)

# JSON types per field: no coercion (`asn: true`, `value: "1"` or `time: 1560056400` are errors)
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "time": ((str,), "an ISO 8601 time with a zone (a string)"),
    "source": ((str,), "a string"),
    "signal": ((str,), "a string"),
    "country": ((str,), "a string"),
    "region": ((str,), "a string or null"),
    "service": ((str,), "a string or null"),
    "asn": ((int,), "an integer or null"),
    "count": ((int,), "an integer or null"),
    "value": ((int, float), "a number or null"),
    "request": ((str,), "a string or null"),
    "fetched_at": ((str,), "an ISO 8601 time or null"),
    "payload_hash": ((str,), "a string or null"),
}


class FormatError(ValueError):
    """A line of an interchange file could not be read."""


def _json_type(v: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(v), type(v).__name__)


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def observation_to_dict(o: Observation) -> dict[str, Any]:
    d: dict[str, Any] = {
        "time": iso(o.time),
        "source": o.source,
        "signal": o.signal,
        "country": o.country,
        "region": o.region,
        "asn": o.asn,
        "service": o.service,
        "value": o.value,
    }
    if o.count is not None:
        d["count"] = o.count
    if o.provenance is not None:
        p = o.provenance
        if p.request:
            d["request"] = p.request
        if p.fetched_at:
            d["fetched_at"] = iso(p.fetched_at)
        if p.payload_hash:
            d["payload_hash"] = p.payload_hash
    return d


def observation_from_dict(d: dict[str, Any]) -> Observation:
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {type(d).__name__}")
    unknown = set(d) - _ALLOWED
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED)}")
    missing = [k for k in ("time", "source", "signal", "country") if d.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    for key, want in _TYPES.items():
        v = d.get(key)
        if v is not None and (not isinstance(v, want[0]) or isinstance(v, bool)):
            raise ValueError(f"field {key!r}: expected {want[1]}, got {_json_type(v)} {_short(v)}")
    prov = None
    if any(d.get(k) for k in _PROVENANCE):
        prov = Provenance(request=d.get("request"), fetched_at=d.get("fetched_at"), payload_hash=d.get("payload_hash"))
    return Observation(
        time=d["time"],
        source=d["source"],
        signal=d["signal"],
        country=d["country"],
        region=d.get("region"),
        asn=d.get("asn"),
        service=d.get("service"),
        value=d.get("value"),
        count=d.get("count"),
        provenance=prov,
    )


def write_observations(observations: Iterable[Observation], out: str | Path | IO[str]) -> int:
    """Write observations as JSON Lines; returns the number written."""
    n = 0
    if isinstance(out, (str, Path)):
        make_parent(out)
        with output_file(out) as fh:
            return write_observations(observations, fh)
    for o in observations:
        out.write(json.dumps(observation_to_dict(o), separators=(",", ":")) + "\n")
        n += 1
    return n


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, each line at most MAX_LINE bytes (read no further)."""
    try:
        fh = open(path, "rb")
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, not a JSON Lines file") from None
    with fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                raise FormatError(
                    f"{path}:{lineno}: line longer than {MAX_LINE} bytes (an observation takes a few hundred)"
                )
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None


def iter_observations(path: str | Path) -> Iterator[Observation]:
    """Read observations lazily; raises FormatError naming file:line on the first bad line."""
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            yield observation_from_dict(json.loads(line))
        except RecursionError:
            raise FormatError(f"{path}:{lineno}: not valid JSON: nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}:{lineno}: not valid JSON: {exc.msg} at column {exc.colno}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "string_unicode":
                msg = "not valid Unicode (a lone surrogate such as \\ud800)"
            raise FormatError(f"{path}:{lineno}: field {field!r}: {msg}") from None
        except ValueError as exc:
            raise FormatError(f"{path}:{lineno}: {exc}") from None


def read_observations(path: str | Path) -> list[Observation]:
    """Read a whole file (validates every line before returning anything)."""
    return list(iter_observations(path))
