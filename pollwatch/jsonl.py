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

_CORE = ("time", "source", "signal", "country", "region", "asn", "service", "value")
_PROVENANCE = ("request", "fetched_at", "payload_hash")
_ALLOWED = set(_CORE) | {"count"} | set(_PROVENANCE)


class FormatError(ValueError):
    """A line of an interchange file could not be read."""


def observation_to_dict(o: Observation) -> dict[str, Any]:
    d: dict[str, Any] = {
        "time": iso(o.time), "source": o.source, "signal": o.signal, "country": o.country,
        "region": o.region, "asn": o.asn, "service": o.service, "value": o.value,
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
    prov = None
    if any(d.get(k) for k in _PROVENANCE):
        prov = Provenance(request=d.get("request"), fetched_at=d.get("fetched_at"), payload_hash=d.get("payload_hash"))
    return Observation(
        time=d["time"], source=d["source"], signal=d["signal"], country=d["country"], region=d.get("region"),
        asn=d.get("asn"), service=d.get("service"), value=d.get("value"), count=d.get("count"), provenance=prov,
    )


def write_observations(observations: Iterable[Observation], out: str | Path | IO[str]) -> int:
    """Write observations as JSON Lines; returns the number written."""
    n = 0
    if isinstance(out, (str, Path)):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            return write_observations(observations, fh)
    for o in observations:
        out.write(json.dumps(observation_to_dict(o), separators=(",", ":")) + "\n")
        n += 1
    return n


def iter_observations(path: str | Path) -> Iterator[Observation]:
    """Read observations lazily; raises FormatError naming file:line on the first bad line."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
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
                raise FormatError(f"{path}:{lineno}: field {field!r}: {err['msg']}") from None
            except ValueError as exc:
                raise FormatError(f"{path}:{lineno}: {exc}") from None


def read_observations(path: str | Path) -> list[Observation]:
    """Read a whole file (validates every line before returning anything)."""
    return list(iter_observations(path))
