"""pollwatch's own store: SQLModel tables on SQLite (embedded default) or PostgreSQL.

Live and replay data never mix: replays, simulations and the demo write to their own store (the
*replay store*, chosen with `using(REPLAY)`), the same schema in another SQLite file next to the
live one, or another schema (`pollwatch_replay`) of the same PostgreSQL database, or
POLLWATCH_REPLAY_DATABASE_URL. Every view of a live watch reads the live store, so none can count
a simulated incident; a run kind on every row would have needed every query, unique key and
incident id (replays of the same data give the same ids) to carry it, and one forgotten filter
would leak.

The schema is created and changed by Alembic migrations (`pollwatch/migrations/`), never by
`create_all`: `get_engine()` upgrades the database to the newest revision before use. On SQLite
the connection runs in WAL mode with a busy timeout and foreign keys on, and writers take the
lock up front (`BEGIN IMMEDIATE`) so concurrent ticks wait instead of failing half-way.

Modules: `tables` (the schema), `engine` (engines, sessions, live/replay), and the reads and writes
by subject: `observations`, `gaps` (gaps, notices, corroborations), `incidents` (baselines, anomalies,
incidents), `alerts` (the outbox as stored, chart uploads' file ids), `ticks` (watch state, ticks,
leases). Everything is re-exported here: `from pollwatch import store; store.list_incidents(...)`. The store
never writes the audit log (pollwatch.audit reads the store); writes that must be audited with it, such as
queueing an alert, live above both (pollwatch.outbox).
"""

from pollwatch.store.alerts import (
    IN_FLIGHT,
    alert_from_row,
    alert_rows,
    begin_alert_attempt,
    list_alerts,
    pending_alerts,
    record_upload,
    recorded_upload,
)
from pollwatch.store.engine import (
    LIVE,
    MIGRATIONS_DIR,
    REPLAY,
    REPLAY_SCHEMA,
    current_revision,
    database_url,
    dispose_engines,
    get_engine,
    migrate,
    readonly_session,
    replay_database_url,
    session_scope,
    store_kind,
    using,
)
from pollwatch.store.gaps import (
    add_gaps,
    add_notices,
    list_corroborations,
    list_gaps,
    list_notices,
    save_corroborations,
)
from pollwatch.store.incidents import (
    get_incident,
    list_anomalies,
    list_baselines,
    list_incidents,
    save_anomalies,
    save_baselines,
    save_incidents,
)
from pollwatch.store.observations import (
    count_observations,
    query_observations,
    stored_digest,
    table_digest,
    upsert_observations,
)
from pollwatch.store.tables import (
    AlertRow,
    AnomalyRow,
    AuditRow,
    BaselineRow,
    CorroborationRow,
    GapRow,
    IncidentRow,
    LeaseRow,
    NoticeRow,
    ObservationDigestRow,
    ObservationRow,
    TickRow,
    UploadRow,
    UTCDateTime,
    WatchStateRow,
)
from pollwatch.store.ticks import (
    TICK_RUNNING,
    acquire_lease,
    claim_tick,
    list_ticks,
    load_watch_state,
    mark_tick_done,
    release_lease,
    release_tick,
    save_watch_state,
    tick_done,
)

__all__ = [
    "IN_FLIGHT",
    "LIVE",
    "MIGRATIONS_DIR",
    "REPLAY",
    "REPLAY_SCHEMA",
    "TICK_RUNNING",
    "AlertRow",
    "AnomalyRow",
    "AuditRow",
    "BaselineRow",
    "CorroborationRow",
    "GapRow",
    "IncidentRow",
    "LeaseRow",
    "NoticeRow",
    "ObservationDigestRow",
    "ObservationRow",
    "TickRow",
    "UTCDateTime",
    "UploadRow",
    "WatchStateRow",
    "acquire_lease",
    "add_gaps",
    "add_notices",
    "alert_from_row",
    "alert_rows",
    "begin_alert_attempt",
    "claim_tick",
    "count_observations",
    "current_revision",
    "database_url",
    "dispose_engines",
    "get_engine",
    "get_incident",
    "list_alerts",
    "list_anomalies",
    "list_baselines",
    "list_corroborations",
    "list_gaps",
    "list_incidents",
    "list_notices",
    "list_ticks",
    "load_watch_state",
    "mark_tick_done",
    "migrate",
    "pending_alerts",
    "query_observations",
    "readonly_session",
    "record_upload",
    "recorded_upload",
    "release_lease",
    "release_tick",
    "replay_database_url",
    "save_anomalies",
    "save_baselines",
    "save_corroborations",
    "save_incidents",
    "save_watch_state",
    "session_scope",
    "store_kind",
    "stored_digest",
    "table_digest",
    "tick_done",
    "upsert_observations",
    "using",
]
