"""The audit log: an append-only, hash-chained record of every run, observation batch, decision, alert and
override, kept in the store's `audit_entry` table.

Modules: `chain` (the canonical form, hashing, appending and reading entries), `record` (one function per
kind of entry), `verify` (the chain and the tables it describes, export and load of the head), `queries`
(runs, incidents, alerts and one incident's timeline as people ask for them). Everything is re-exported
here: `from pollwatch import audit; audit.verify(session)`. The audit log builds on pollwatch.store and the
store never imports it.
"""

from pollwatch.audit.chain import (
    GENESIS,
    HEAD_FORMAT,
    AuditEntry,
    AuditKind,
    append,
    canonical_json,
    count,
    entries,
    entry_hash,
    format_time,
    head,
    lock_chain,
    plain,
    row_entry,
    sha256_hex,
)
from pollwatch.audit.queries import alerts, incident_timeline, incidents, runs
from pollwatch.audit.record import (
    observation_batch_payload,
    observations_hash,
    record_alert,
    record_anomaly_event,
    record_gaps,
    record_incident_event,
    record_observation_batches,
    record_observations,
    record_override,
    record_report,
    record_report_failure,
    record_response,
    record_run_end,
    record_run_start,
    split_remote_ref,
)
from pollwatch.audit.verify import (
    Problem,
    Verification,
    check_data,
    check_observations,
    export_head,
    load_head,
    verify,
    verify_store,
)

__all__ = [
    "GENESIS",
    "HEAD_FORMAT",
    "AuditEntry",
    "AuditKind",
    "Problem",
    "Verification",
    "alerts",
    "append",
    "canonical_json",
    "check_data",
    "check_observations",
    "count",
    "entries",
    "entry_hash",
    "export_head",
    "format_time",
    "head",
    "incident_timeline",
    "incidents",
    "load_head",
    "lock_chain",
    "observation_batch_payload",
    "observations_hash",
    "plain",
    "record_alert",
    "record_anomaly_event",
    "record_gaps",
    "record_incident_event",
    "record_observation_batches",
    "record_observations",
    "record_override",
    "record_report",
    "record_report_failure",
    "record_response",
    "record_run_end",
    "record_run_start",
    "row_entry",
    "runs",
    "sha256_hex",
    "split_remote_ref",
    "verify",
    "verify_store",
]
