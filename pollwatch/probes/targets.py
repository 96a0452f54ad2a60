"""Where probes point and where their state lives: diffscan targets, baselines, the vantage's ASN.

Diffscan targets, in order of preference:
1. `sources.diffscan.options.prefixes` (explicit, each with its ASN and region);
2. otherwise RIPEstat: the IPv4 prefixes each of the watch's providers announces
   (`announced-prefixes`, tagged with the provider's ASN, and its region when it has exactly one),
   then the rest of the country's registered space (`country-resource-list`, ASN unknown).
   More specific prefixes win where they overlap (see `diffscan.build_blocks`).
The RIPEstat answer is cached under `$POLLWATCH_HOME/cache/diffscan/` for a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pollwatch.playbook import SourceConfig, Watch
from pollwatch.probes.diffscan import DiffscanOptions, PrefixTarget
from pollwatch.settings import get_settings

TARGETS_TTL = timedelta(hours=24)


def baseline_path(home: Path, watch: str, vantage: str) -> Path:
    """Where a vantage keeps its diffscan baseline for a watch (on the vantage machine)."""
    return Path(home) / "diffscan" / watch / f"{vantage}.baseline.json"


class _CachedTargets(BaseModel):
    fetched_at: datetime
    targets: list[PrefixTarget]


def _ripestat(watch: Watch) -> Any:
    from pollwatch.sources.ripestat import RipestatSource

    return RipestatSource(watch.sources.get("ripestat") or SourceConfig())


async def diffscan_targets(
    watch: Watch, opts: DiffscanOptions, source: Any = None, refresh: bool = False
) -> list[PrefixTarget]:
    """The prefixes to sweep for `watch` (options first, else RIPEstat; see the module docstring)."""
    if opts.prefixes:
        return opts.prefixes
    cache = get_settings().home / "cache" / "diffscan" / f"targets-{watch.name}.json"
    if not refresh and cache.is_file():
        try:
            cached = _CachedTargets.model_validate_json(cache.read_text())
            if datetime.now(timezone.utc) - cached.fetched_at < TARGETS_TTL:
                return cached.targets
        except ValueError:
            pass  # unreadable cache: fetch again
    source = source or _ripestat(watch)
    targets: list[PrefixTarget] = []
    async with source.client() as http:
        for provider in watch.providers:
            fetched = await http.get_json("/data/announced-prefixes/data.json", {"resource": f"AS{provider.asn}"})
            region = provider.regions[0] if len(provider.regions) == 1 else None
            for item in (fetched.payload.get("data") or {}).get("prefixes") or []:
                prefix = str(item.get("prefix", ""))
                if prefix and ":" not in prefix:
                    targets.append(PrefixTarget(prefix=prefix, asn=provider.asn, region=region))
        resources = await source.country_resources(http, watch.country or "")
        targets += [PrefixTarget(prefix=p) for p in resources.ipv4]
    if not targets:
        raise ValueError(
            f"no diffscan targets for {watch.name}: set sources.diffscan.options.prefixes or check RIPEstat's answer"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(_CachedTargets(fetched_at=datetime.now(timezone.utc), targets=targets).model_dump_json())
    return targets


async def vantage_asn(source: Any = None, watch: Watch | None = None) -> tuple[int | None, str | None]:
    """The vantage's own (ASN, public address) by RIPEstat (`whats-my-ip`, then `network-info`)."""
    if source is None:
        from pollwatch.sources.ripestat import RipestatSource

        source = _ripestat(watch) if watch is not None else RipestatSource()
    async with source.client() as http:
        me = await http.get_json("/data/whats-my-ip/data.json")
        address = str((me.payload.get("data") or {}).get("ip") or "") or None
        if address is None:
            return None, None
        info = await http.get_json("/data/network-info/data.json", {"resource": address})
        asns = (info.payload.get("data") or {}).get("asns") or []
        return (int(asns[0]) if asns else None), address
