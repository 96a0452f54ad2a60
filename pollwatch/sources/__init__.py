"""Observatory clients: IODA, OONI, RIPEstat and Cloudflare Radar, behind one Source interface.

    from pollwatch.sources import make_source, collect_sources
    result = await make_source("ioda", watch).collect(watch, start, end)
    results = await collect_sources(watch, start, end)          # every enabled source, concurrently

Each `collect` returns a `CollectResult` (observations with provenance, gaps, operator notices,
corroborating outage records) and never raises: a source that is down, slow or returns
something unexpected yields gaps and a notice while the others carry on. See docs/sources.md.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pollwatch.playbook import SourceConfig, Watch
from pollwatch.sources.base import CollectResult, Corroboration, ShapeError, Source, interrupt_collections
from pollwatch.sources.http import USER_AGENT, FetchError, Fetched, HttpClient, rate_limiter
from pollwatch.sources.ioda import IodaSource
from pollwatch.sources.ooni import OoniSource
from pollwatch.sources.radar import RadarSource
from pollwatch.sources.ripestat import CountryResources, RipestatSource

SOURCES: dict[str, type[Source]] = {
    "ioda": IodaSource,
    "ooni": OoniSource,
    "ripestat": RipestatSource,
    "radar": RadarSource,
}

__all__ = [
    "SOURCES",
    "USER_AGENT",
    "CollectResult",
    "Corroboration",
    "CountryResources",
    "FetchError",
    "Fetched",
    "HttpClient",
    "IodaSource",
    "OoniSource",
    "RadarSource",
    "rate_limiter",
    "RipestatSource",
    "ShapeError",
    "Source",
    "collect_sources",
    "enabled_sources",
    "interrupt_collections",
    "make_source",
]


def make_source(
    name: str,
    watch: Watch | None = None,
    *,
    base_url: str | None = None,
    config: SourceConfig | None = None,
    **kwargs: Any,
) -> Source:
    """The client for source `name`, configured from the watch's `sources.<name>` (or `config`).

    `base_url` overrides the configured one (mirrors, tests); other keyword arguments
    (`transport=`, `sleep=`, and `token=` for radar) go to the client.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}: expected one of {', '.join(sorted(SOURCES))}")
    if config is None:
        config = (watch.sources.get(name) if watch is not None else None) or SourceConfig()
    return SOURCES[name](config, base_url=base_url, **kwargs)


def enabled_sources(watch: Watch) -> list[str]:
    """The observatory sources the watch's playbook enables (`sources.<name>.enabled`), in a stable order."""
    return [name for name in SOURCES if name in watch.sources and watch.sources[name].enabled]


async def collect_sources(
    watch: Watch, start: datetime, end: datetime, names: list[str] | None = None, **kwargs: Any
) -> dict[str, CollectResult]:
    """Collect [start, end) from several sources concurrently (default: the enabled ones)."""
    names = enabled_sources(watch) if names is None else names
    sources = [
        make_source(n, watch, **({k: v for k, v in kwargs.items() if k != "token"} if n != "radar" else kwargs))
        for n in names
    ]
    results = await asyncio.gather(*(s.collect(watch, start, end) for s in sources))
    return dict(zip(names, results))
