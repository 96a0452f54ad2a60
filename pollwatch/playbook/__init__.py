"""Playbook schema and loader.

A *template* (`playbooks/rapid-response.yaml`) holds the methodology: phases relative to
election day, signals with detector thresholds, classification, attribution and alert routing.
A *watch* file (`playbooks/watches/<country>-<year>-<election>.yaml`) names a template and adds
the country, date, time zone, providers, regions, services and milestones; any template key it
repeats overrides the template's value (mappings merge key by key, lists replace).

Every error names the file, the line and the field path, and says what was expected. Unknown
keys are errors. YAML is loaded with the safe loader only.
"""

from pollwatch.playbook.fields import (
    ASN,
    OONI_TESTS,
    Duration,
    LocalTime,
    PlaybookError,
    check_local_time,
    slug,
)
from pollwatch.playbook.loading import find_watch, load_playbook, load_watch, load_watch_cached
from pollwatch.playbook.paths import PLAYBOOKS_DIR, playbooks_dir
from pollwatch.playbook.sections import (
    AlertRouting,
    Attribution,
    Classification,
    ContextEvent,
    Milestone,
    Phase,
    Provider,
    Region,
    Service,
    SignalConfig,
    SourceConfig,
    TickLimits,
    Vantage,
)
from pollwatch.playbook.watch import Playbook, ResolvedPhase, Watch

__all__ = [
    "ASN",
    "OONI_TESTS",
    "PLAYBOOKS_DIR",
    "AlertRouting",
    "Attribution",
    "Classification",
    "ContextEvent",
    "Duration",
    "LocalTime",
    "Milestone",
    "Phase",
    "Playbook",
    "PlaybookError",
    "Provider",
    "Region",
    "ResolvedPhase",
    "Service",
    "SignalConfig",
    "SourceConfig",
    "TickLimits",
    "Vantage",
    "Watch",
    "check_local_time",
    "find_watch",
    "load_playbook",
    "load_watch",
    "load_watch_cached",
    "playbooks_dir",
    "slug",
]
