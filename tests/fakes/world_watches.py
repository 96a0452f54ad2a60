"""Watches for every country (ISO 3166-1, from pycountry) at election-day cadence, for bench/world.py and the tests
of batched ticks.

Each watch's regions are its country's top-level subdivisions (pycountry, ISO 3166-2: from none to 212), and its
providers a generated list sized like the country: two, plus one per four subdivisions, at most 40 (private-use
ASNs, unique per country). Its one phase is a heightened phase at `cadence` around now; its signals are IODA's
BGP and active probing and OONI's service failure rate with windows of hours (a bench cannot warm up weeks),
and its sources IODA, OONI and RIPEstat (as the rapid-response template enables them).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from tests.fakes.fast_watch import heightened_phase

FIRST_ASN = 4_200_000_000  # 32-bit private use (RFC 6996)


def countries(limit: int | None = None) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(alpha-2, name, top-level subdivisions as (code, name)) for every ISO 3166-1 country, in code order."""
    import pycountry

    out = []
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        subs = pycountry.subdivisions.get(country_code=c.alpha_2) or []
        top = sorted((s.code, s.name) for s in subs if s.parent_code is None)
        out.append((c.alpha_2, c.name, top))
    return out[:limit] if limit else out


def providers_for(index: int, regions: int) -> list[dict]:
    n = min(40, 2 + regions // 4)
    base = FIRST_ASN + index * 100
    return [{"asn": base + i, "name": f"Network {i + 1}", "type": ("fixed", "mobile")[i % 2]} for i in range(n)]


def write_world_watches(
    directory: Path,
    count: int | None = None,
    cadence: timedelta = timedelta(minutes=1),
    start: datetime | None = None,
    length: timedelta = timedelta(hours=2),
    services: int = 1,
) -> list[Path]:
    """One watch file per country (the first `count` in code order), heightened from `start` for `length`."""
    start = (start or datetime.now(timezone.utc) - timedelta(minutes=30)).astimezone(timezone.utc)
    day, phase = heightened_phase(start, length, cadence, "UTC")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    all_services = [
        {"name": "whatsapp", "test": "whatsapp"},
        {"name": "telegram", "test": "telegram"},
        {"name": "youtube", "test": "web_connectivity", "domains": ["www.youtube.com"]},
    ]
    for i, (cc, name, subs) in enumerate(countries(count)):
        doc = {
            "name": f"world-{cc.lower()}",
            "country": cc,
            "election_date": day,
            "timezone": "UTC",
            "description": f"{name}: election-day watch (generated for bench/world.py)",
            "phases": [phase],
            "signals": {
                "bgp": {
                    "source": "ioda",
                    "step": "5m",
                    "lag": "5m",  # IODA publishes a 5-minute bin once it has ended
                    "window": "2h",
                    "warm_up": "30m",
                    "warning": 0.9,
                    "critical": 0.5,
                    "recovery": "10m",
                },
                "active_probing": {
                    "source": "ioda",
                    "step": "10m",
                    "lag": "10m",
                    "window": "2h",
                    "warm_up": "30m",
                    "warning": 0.8,
                    "critical": 0.5,
                    "recovery": "20m",
                },
                "service_failure_rate": {
                    "source": "ooni",
                    "family": "service",
                    "direction": "rise",
                    "step": "1h",
                    "lag": "1h20m",
                    "detector": "cusum",
                    "mode": "delta",
                    "window": "6h",
                    "warm_up": "2h",
                    "warning": 0.3,
                    "critical": 0.5,
                    "min_count": 3,
                    "recovery": "1h",
                },
            },
            "sources": {"ioda": {}, "ooni": {}, "ripestat": {}},
            "providers": providers_for(i, len(subs)),
            "regions": [{"code": code, "name": sub} for code, sub in subs],
            "services": all_services[:services],
            # a channel per country, as an observatory would run them: Slack paces posts per channel
            "alerts": {"channel": f"#pollwatch-{cc.lower()}", "ops_channel": f"#pollwatch-ops-{cc.lower()}"},
        }
        path = directory / f"{doc['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        paths.append(path)
    return paths
