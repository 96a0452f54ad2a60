"""The small Kazakhstan watch the flow tests write: two networks, one region, WhatsApp.

One factory instead of a YAML string copied into each test. `fast=True` shortens the signals' windows
(3 h, 1 h warm-up) so a few hours of history judge; `sources` sets the playbook's `sources:` block (the
tests' fakes answer at once: no retries, short timeouts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
