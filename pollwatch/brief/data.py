"""What a statement is made from: a watch's incidents (with any responder's override), the anomalies behind them,
and the observations for their depth figures and charts, all read from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlmodel import Session

from pollwatch import store
from pollwatch.charts import incident_chart_window
from pollwatch.models import Anomaly, Incident, Observation
from pollwatch.playbook import Watch


@dataclass
class BriefData:
    watch: Watch
    incidents: list[Incident]
    anomalies: dict[str, Anomaly]
    observations: dict[str, list[Observation]] = field(default_factory=dict)  # per incident id, for its chart
    as_of: datetime | None = None  # the newest observation of the country in the store: "ongoing" is as of then
    # the range asked for, and whether the store has any observation of the country in it (None: not asked)
    since: datetime | None = None
    until: datetime | None = None
    measured: bool | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def collect(
    session: Session,
    watch: Watch,
    *,
    incident: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BriefData:
    """The watch's incidents (one, by id or id prefix, or those overlapping [since, until)) and what is behind them."""
    if incident is not None:
        from pollwatch.override import find_incident

        inc = find_incident(session, incident)
        if inc.watch != watch.name:
            raise ValueError(f"incident {inc.id} belongs to watch {inc.watch!r}, not {watch.name!r}")
        incidents = [inc]
    else:
        incidents = store.list_incidents(session, watch=watch.name, since=since, until=until)
    incidents.sort(key=lambda i: (i.start, i.id))
    wanted = {aid for i in incidents for aid in i.anomaly_ids}
    anomalies = {a.id: a for a in store.list_anomalies(session, watch.name) if a.id in wanted} if wanted else {}
    t = store.ObservationRow.__table__.c
    q = select(func.max(t.time)).where(t.country == watch.country)
    if until is not None:
        q = q.where(t.time < until)
    as_of = session.execute(q).scalar()
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    observations: dict[str, list[Observation]] = {}  # the depth's figures and the charts come from these
    for inc in incidents:
        shown = (
            inc
            if inc.end is not None or as_of is None
            else inc.model_copy(update={"updated_at": max(as_of, inc.updated_at)})
        )
        lo, hi = incident_chart_window(shown)
        observations[inc.id] = store.query_observations(session, country=inc.country, since=lo, until=hi)
    measured = None
    if incident is None and not incidents:  # "no disruption" only where something was measured
        q = select(t.time).where(t.country == watch.country)
        q = q.where(t.time >= since) if since is not None else q
        q = q.where(t.time < until) if until is not None else q
        measured = session.execute(q.limit(1)).first() is not None
    return BriefData(
        watch=watch,
        incidents=incidents,
        anomalies=anomalies,
        observations=observations,
        as_of=as_of,
        since=since,
        until=until,
        measured=measured,
    )


def default_range(watch: Watch) -> tuple[datetime, datetime]:
    """From the eve of election day to three days after (local), when no range is given."""
    return watch.at_offset(timedelta(days=-1)), watch.at_offset(timedelta(days=4))
