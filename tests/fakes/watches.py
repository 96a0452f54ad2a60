"""The watches tests and benchmarks build, from the Kazakhstan watch.

- `kz_watch_yaml` / `write_kz_watch`: the small watch the flow tests write as a file (two networks, one region,
  WhatsApp). `fast=True` shortens the signals' windows (3 h, 1 h warm-up) so a few hours of history judge;
  `radar` adds the playbook's `sources:` block (the tests' fakes answer at once: no retries, short timeouts).
- `small_watch`: the KZ watch cut down in memory (1-3 providers, four regions, one service, one circumvention
  tool, BGP and OONI only), so simulated scenarios and many tick schedules stay fast (the tick-schedule property
  tests, bench/operations.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pollwatch.playbook import PLAYBOOKS_DIR, Watch, load_watch

QUICK_SOURCE = {"retries": 0, "timeout": "2s"}
FAST_SIGNALS = ("bgp", "active_probing", "telescope", "service_failure_rate", "rtt_ms")


def kz_watch_yaml(
    name: str,
    *,
    election_date: str = "2019-06-09",
    fast: bool = False,
    radar: bool | None = None,
    **extra: Any,
) -> str:
    """The watch as YAML; `radar` True/False adds the `sources:` block with Radar on/off (and quick sources)."""
    doc: dict[str, Any] = {
        "template": "rapid-response.yaml",
        "name": name,
        "country": "KZ",
        "election_date": election_date,
        "timezone": "Asia/Almaty",
        "providers": [
            {"asn": 9198, "name": "Kazakhtelecom", "type": "fixed"},
            {"asn": 29355, "name": "Kcell", "type": "mobile"},
        ],
        "regions": [{"code": "KZ-ALA", "name": "Almaty"}],
        "services": [{"name": "whatsapp", "test": "whatsapp"}],
    }
    if fast:
        doc["signals"] = {s: {"window": "3h", "warm_up": "1h"} for s in FAST_SIGNALS}
    if radar is not None:
        doc["sources"] = {
            "radar": {"enabled": True, **QUICK_SOURCE} if radar else {"enabled": False},
            **{s: dict(QUICK_SOURCE) for s in ("ioda", "ooni", "ripestat")},
        }
    doc.update(extra)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write_kz_watch(directory: Path, name: str, **kw: Any) -> Path:
    """Write `kz_watch_yaml(name, ...)` to `directory/<name>.yaml` and return its path."""
    path = Path(directory) / f"{name}.yaml"
    path.write_text(kz_watch_yaml(name, **kw))
    return path


def small_watch(providers: int = 2, base: Watch | None = None) -> Watch:
    """The KZ watch cut down to `providers` providers (fixed first), 4 regions, WhatsApp and Tor, BGP and OONI."""
    kz = base or load_watch(PLAYBOOKS_DIR / "watches" / "kz-2019-presidential.yaml")
    chosen = [kz.providers[0], kz.providers[2], kz.providers[3]][:providers]
    return kz.model_copy(
        update={
            "name": f"kz-small-{providers}",
            "providers": chosen,
            "regions": kz.regions[:4],
            "services": kz.services[1:2],
            "circumvention": kz.circumvention[:1],
            "signals": {k: v for k, v in kz.signals.items() if k in ("bgp", "service_failure_rate")},
        }
    )
