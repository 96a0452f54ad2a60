"""Operator notices as outbox alerts: a source down, a data gap, Slack trouble, for the watch's operations channel
(never the incident channel). They wait in the outbox like any alert and are delivered last in a run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pollwatch.models import Alert, Gap, Notice, NoticeLevel, iso, stable_id
from pollwatch.playbook import Watch
from pollwatch.timeutil import floor_time
from pollwatch.words import fmt_when

NOTICE_EVENT = "notice"
OPS_INCIDENT = "-"  # incident_id of operator notices in the outbox


def notice_alerts(watch: Watch, notices: Sequence[Notice], keys: Sequence[str] | None = None) -> list[Alert]:
    """Operator notices as outbox alerts for the watch's operations channel (never the incident channel).

    A notice's idempotency key is its content unless `keys` gives one per notice.
    """
    out = []
    for i, n in enumerate(notices):
        key = keys[i] if keys else f"{watch.name}:notice:{stable_id(n.source, n.level.value, n.message, iso(n.time))}"
        out.append(
            Alert(
                id=stable_id(key),
                watch=watch.name,
                incident_id=OPS_INCIDENT,
                event=NOTICE_EVENT,
                sequence=i,
                destination=watch.alerts.ops_channel,
                idempotency_key=key,
                created_at=n.time,
                text=f"[{n.level.value}] {n.source}: {n.message}",
                payload={"notice": n.model_dump(mode="json")},
            )
        )
    return out


def gap_alerts(watch: Watch, gaps: Sequence[Gap]) -> list[Alert]:
    """Gap notices as outbox alerts, at most one per (source, signal) per hour of gap end: sparse series stay quiet."""
    notices = gap_notices(watch, gaps)
    keys = [
        f"{watch.name}:gap:{n.source}:{stable_id(n.message.split(' for ')[0])}:"
        f"{floor_time(n.time, timedelta(hours=1)):%Y%m%d%H}"
        for n in notices
    ]
    return notice_alerts(watch, notices, keys=keys)


def gap_notices(watch: Watch, gaps: Sequence[Gap]) -> list[Notice]:
    """Data gaps as operator notices: one per (source, signal), naming how many series and which span."""
    groups: dict[tuple[str, str | None], list[Gap]] = {}
    for g in gaps:
        groups.setdefault((g.source, g.signal), []).append(g)
    out = []
    for (source, signal), gs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        entities = sorted({g.entity for g in gs})
        start, end = min(g.start for g in gs), max(g.end for g in gs)
        shown = ", ".join(entities[:5]) + (f" and {len(entities) - 5} more" if len(entities) > 5 else "")
        out.append(
            Notice(
                time=end,
                level=NoticeLevel.warning,
                source=source,
                watch=watch.name,
                message=f"data gap: no {signal or 'data'} from {source} for {len(entities)} series ({shown}) "
                f"from {fmt_when(watch, start)} to {fmt_when(watch, end)}; {gs[0].reason}",
            )
        )
    return out
