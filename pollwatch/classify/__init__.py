"""Classification: anomalies grouped into incidents, and each incident's kind and scope.

Like detection this is a fold over ticks with explicit state. Anomalies of one family
(connectivity, service, circumvention, performance) in one country that overlap in time join one
incident; the incident's kind follows its current scope and may change over its life
(network -> regional -> nationwide), each change recorded in `kind_history`. An incident
resolves when all its anomalies have stayed closed for the playbook's recovery time.

Connectivity scope counts *critical* anomalies: a regional outage also dents the country total
and every provider serving the region, but only the region falls past the critical threshold.

Grouping: an anomaly joins an open incident of its family in its country when their scopes are
related (the same provider, region or service; a provider serving the region; either covers the
whole country) or when it started within the playbook's `join_gap` of one of the incident's
anomalies (a shutdown takes providers down within minutes of each other). A service or latency
anomaly on a network that is itself down belongs to that connectivity incident, not to a
separate service block ("connectivity normal while named services fail"). Otherwise it opens a
new incident.

The share of the country affected is the largest of: the affected providers' or regions' share of
the country's address space (their /24 counts over the country's in the baseline; never
1/number of providers; regions without counts an equal part each) and the depth of a country-level
BGP/active-probing drop (the share of the country's address space gone). It is `nationwide_outage`
once the country falls: its own series past critical with that share at least
`classification.nationwide_share` (default 0.5: a majority), or regions holding that share past
critical. One network going dark drags the country down by its share and stays a `network_outage`, however
much address space it holds, unless it holds nearly all of it (`classification.single_network_share`) or the
country fell well beyond it; one region alone likewise stays a `regional_outage`.
Mobile-only versus fixed-line comes from the watch's provider table
(`scope.network_types`).

Modules: `scope` (kind, scope and share of an incident's anomalies) and `fold` (grouping anomalies into
incidents tick by tick, refreshing and resolving them).
"""

from pollwatch.classify.fold import (
    ClassifyResult,
    GroupState,
    classify,
    find_incident,
    join_window,
    related,
    resolve_after,
)
from pollwatch.classify.scope import (
    FAMILY_KIND,
    affected_share,
    connectivity_scope,
    network_label,
    network_types,
    provider_share,
    region_share,
)

__all__ = [
    "FAMILY_KIND",
    "ClassifyResult",
    "GroupState",
    "affected_share",
    "classify",
    "connectivity_scope",
    "find_incident",
    "join_window",
    "network_label",
    "network_types",
    "provider_share",
    "region_share",
    "related",
    "resolve_after",
]
