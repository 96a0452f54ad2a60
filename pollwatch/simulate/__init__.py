"""Scenario simulator: realistic observations for a watch, with injected events and their labels.

The country is modelled as cells (region x provider), each with a number of routed /24 blocks.
Country, region and provider series are sums over cells, so a regional outage also shows, less
deeply, in the country and in every provider serving the region, as it does in IODA's data.
Signals: `bgp` (routed /24s, near-constant), `active_probing` (responsive /24s, diurnal),
`telescope` (unsolicited traffic, noisy), per provider and service an hourly OONI-style
`service_failure_rate` with its measurement count, and a web-probe `rtt_ms`. Points go missing
at random (value null) and OONI hours with no measurements are null: missing data, not outages.

Events of every kind in DESIGN.md's vocabulary can be injected; each comes back as a Label
(kind, scope, start, end, cause) for evaluation.

Modules: `events` (what is injected, the labels, ready-made event sets) and `world` (the country's cells and
signals, `simulate()`).
"""

from pollwatch.simulate.events import (
    EventSpec,
    Label,
    Scenario,
    demo_range,
    election_day_events,
    random_events,
)
from pollwatch.simulate.world import CONNECTIVITY_SIGNALS, simulate

__all__ = [
    "CONNECTIVITY_SIGNALS",
    "EventSpec",
    "Label",
    "Scenario",
    "demo_range",
    "election_day_events",
    "random_events",
    "simulate",
]
