"""A small watch (1-3 providers, four regions, one service, one circumvention tool) as a user starts one.

Built from the Kazakhstan watch with only its BGP and OONI signals, so simulated scenarios over it
and many tick schedules stay fast. Used by the tick-schedule property tests and bench/operations.py.
"""

from __future__ import annotations

from pollwatch.playbook import Watch, load_watch

KZ_WATCH_FILE = "playbooks/watches/kz-2019-presidential.yaml"


def small_watch(providers: int = 2, base: Watch | None = None) -> Watch:
    """The KZ watch cut down to `providers` providers (fixed first), 4 regions, WhatsApp and Tor, BGP and OONI."""
    from pathlib import Path

    kz = base or load_watch(Path(__file__).resolve().parent.parent / KZ_WATCH_FILE)
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
