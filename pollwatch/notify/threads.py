"""An incident's thread: the root message opened once and edited on every change, the replies under it (updates
within the hourly limit, an escalation to critical always, the end, a draft statement) and the charts.

`IncidentThreads` is the half of `pollwatch.notify.delivery.OutboxDelivery` that works on one incident's
thread; the other half walks the outbox channel by channel. Where an earlier attempt may have reached Slack
(`suspect`), a message is looked up by its metadata before it is posted again, and a chart by the file id its
upload recorded in the store before completing it (`StoredUploads`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pollwatch import store
from pollwatch.models import Alert, AlertState, Anomaly, Incident
from pollwatch.notify import render, routing
from pollwatch.notify.render import Links, Message
from pollwatch.notify.transports import DeliveryError, Transport
from pollwatch.playbook import AlertRouting, Watch
from pollwatch.words import KIND_TITLES

log = logging.getLogger("pollwatch.notify")

ChartFn = Callable[[Watch, Incident, list[Anomaly]], "bytes | None"]  # PNG of an incident, or None


@dataclass(frozen=True)
class Ref:
    """Where an alert went: `<transport>:<channel>:<root ts>[:<reply ts>]`, as the outbox keeps it."""

    transport: str
    channel: str
    root_ts: str
    reply_ts: str | None = None
    alert_key: str | None = field(default=None, compare=False)  # set when found by this alert's own key

    def __str__(self) -> str:
        return ":".join(x for x in (self.transport, self.channel, self.root_ts, self.reply_ts) if x)

    @classmethod
    def parse(cls, text: str | None) -> "Ref | None":
        if not text:
            return None
        parts = text.split(":")
        if parts[0] in ("skipped", "held") or len(parts) not in (3, 4):
            return None
        return cls(*parts)  # type: ignore[arg-type]


class StoredUploads:
    """The file ids of chart uploads in the store (`store.record_upload`), each committed before its upload is
    completed: a delivery run in a new process, after a worker was killed between completing a chart and marking
    its alert sent, asks Slack about that file instead of uploading a second copy (`UploadRecord`)."""

    def __init__(self, url: str | None):
        self.url = url

    def get(self, key: str) -> str | None:
        with store.session_scope(self.url) as s:
            return store.recorded_upload(s, key)

    def put(self, key: str, file_id: str) -> None:
        with store.session_scope(self.url) as s:
            store.record_upload(s, key, file_id)


def _held_root(text: str | None) -> bool:
    return bool(text) and text.startswith("held:")


def _anomalies(session: Any, watch: Watch, inc: Incident) -> list[Anomaly]:
    if not inc.anomaly_ids:
        return []
    wanted = set(inc.anomaly_ids)
    return [a for a in store.list_anomalies(session, watch.name) if a.id in wanted]


class IncidentThreads:
    """One incident's thread in a delivery run (see the module docstring); OutboxDelivery sets the state."""

    watch: Watch
    t: Transport
    url: str | None
    routing: AlertRouting
    links: Links
    chart: ChartFn | None
    report: Any  # pollwatch.notify.delivery.DeliveryReport
    _roots: dict[str, Ref]  # incident id -> its thread, in this run
    _known: dict[str, Anomaly]  # this tick's anomalies, maybe not stored yet

    def _rows(self, incident_id: str) -> list[store.AlertRow]:
        with store.session_scope(self.url) as s:
            return store.alert_rows(s, incident_id=incident_id, watch=self.watch.name)

    def _root(self, a: Alert, inc: Incident, suspect: bool) -> Ref | None:
        """The incident's thread: from this run, from the outbox, or (after a lost answer) from Slack."""
        if inc.id in self._roots:
            return self._roots[inc.id]
        for row in self._rows(inc.id):
            ref = Ref.parse(row.remote_ref) if row.state == AlertState.sent.value else None
            if ref is not None and ref.transport == self.t.name:
                root = Ref(ref.transport, ref.channel, ref.root_ts)
                self._roots[inc.id] = root
                return root
        if suspect and self.t.threads:
            for key in (a.idempotency_key, None):
                found = self.t.find(a.destination, key=key, incident_id=inc.id, role="root")
                if found:
                    root = Ref(self.t.name, *found)
                    self._roots[inc.id] = root
                    self.report.recovered += 1
                    return Ref(root.transport, root.channel, root.root_ts, alert_key=key)
        return None

    def _anoms(self, inc: Incident) -> list[Anomaly]:
        with store.session_scope(self.url) as s:
            found = {a.id: a for a in _anomalies(s, self.watch, inc)}
        found.update({i: self._known[i] for i in inc.anomaly_ids if i in self._known})
        return list(found.values())

    def _mention(self, inc: Incident) -> str | None:
        return render.mention_markup(self.routing.mention_critical) if routing.critical(self.routing, inc) else None

    def _root_msg(self, a: Alert, inc: Incident, mention: str | None = None) -> Message:
        return render.root_message(
            self.watch, inc, key=a.idempotency_key, anomalies=self._anoms(inc), links=self.links, mention=mention
        )

    def _open_thread(self, a: Alert, inc: Incident, suspect: bool) -> Ref:
        cid, ts = self.t.post(a.destination, self._root_msg(a, inc, self._mention(inc)))
        self.report.posted += 1
        root = Ref(self.t.name, cid, ts)
        self._roots[inc.id] = root
        self._upload_chart(inc, root, "start", suspect=False)
        return root

    def _follow_up(self, a: Alert, inc: Incident, root: Ref, suspect: bool) -> str:
        """An update or the end, in the thread, after the root message is edited to the incident's current state."""
        rows = self._rows(inc.id)
        mine = next((i for i, r in enumerate(rows) if r.id == a.id), len(rows))
        earlier = [r for r in rows[:mine] if r.state == AlertState.sent.value]
        self._edit_root(a, inc, root)
        held = self._held_since_last_post(earlier)
        if a.event == "end":
            ref = self._posted_reply(a, root, suspect)
            if ref is None:
                ref = self._reply(
                    root, render.end_message(self.watch, inc, key=a.idempotency_key, held=held), broadcast=True
                )
            self._upload_chart(inc, root, "end", suspect=suspect)
            return str(ref)
        return self._update(a, inc, root, suspect, earlier, held)

    def _edit_root(self, a: Alert, inc: Incident, root: Ref) -> None:
        """The root always shows the current state."""
        if not self.t.threads:
            return
        try:
            self.t.update(root.channel, root.root_ts, self._root_msg(a, inc))
            self.report.edited += 1
        except DeliveryError as exc:
            if exc.kind != "rejected":
                raise
            # e.g. someone deleted the root message: the thread replies still carry the news
            log.warning("root message of incident %s not edited: %s", inc.id, exc)

    def _update(
        self, a: Alert, inc: Incident, root: Ref, suspect: bool, earlier: list[store.AlertRow], held: list[list[str]]
    ) -> str:
        """An update: an escalation to critical is always posted (with the mention); the rest is rate-limited."""
        was_critical = any(
            routing.critical(self.routing, Incident.model_validate(r.payload["incident"]))
            for r in earlier
            if r.payload and "incident" in r.payload
        )
        escalated = routing.critical(self.routing, inc) and not was_critical
        posted_times = [
            r.created_at
            for r in earlier
            if r.event == "update" and (Ref.parse(r.remote_ref) or Ref("", "", "")).reply_ts
        ]
        if not escalated and routing.over_update_limit(self.routing, posted_times, a.created_at):
            self.report.held += 1
            return f"held:{root.channel}:{root.root_ts}"
        found = self._posted_reply(a, root, suspect)
        if found is not None:
            return str(found)
        reasons = list((a.payload or {}).get("reasons") or [])
        if escalated:
            reasons.append(
                f"severity {inc.severity:,.0f} reached the critical level {self.routing.critical_severity:,.0f}"
            )
        msg = render.update_message(
            self.watch,
            inc,
            key=a.idempotency_key,
            reasons=reasons,
            held=held,
            anomalies=self._anoms(inc),
            mention=self._mention(inc) if escalated else None,
        )
        return str(self._reply(root, msg, broadcast=escalated))

    def _draft(self, a: Alert, inc: Incident, root: Ref | None, suspect: bool) -> str:
        """The draft statement a responder asked for, as a reply in the incident's thread."""
        if root is None:
            self.report.skipped += 1
            return "skipped:no thread to post the draft in"
        found = self._posted_reply(a, root, suspect)
        if found is not None:
            return str(found)
        msg = render.draft_message(
            self.watch, inc, a.text, key=a.idempotency_key, requested_by=str(a.payload.get("requested_by") or "")
        )
        return str(self._reply(root, msg))

    def _posted_reply(self, a: Alert, root: Ref, suspect: bool) -> Ref | None:
        """The reply an earlier attempt of `a` already posted in the thread (looked up only when suspect), or None."""
        found = (
            self.t.find(root.channel, key=a.idempotency_key, thread_ts=root.root_ts)
            if suspect and self.t.threads
            else None
        )
        if not found:
            return None
        self.report.recovered += 1
        return Ref(self.t.name, root.channel, root.root_ts, found[1])

    def _held_since_last_post(self, earlier: list[store.AlertRow]) -> list[list[str]]:
        held: list[list[str]] = []
        for r in earlier:
            if _held_root(r.remote_ref):
                held.append(list((r.payload or {}).get("reasons") or []))
            elif Ref.parse(r.remote_ref) is not None:
                held = []
        return held

    def _reply(self, root: Ref, msg: Message, broadcast: bool = False) -> Ref:
        thread = root.root_ts if self.t.threads else None
        cid, ts = self.t.post(root.channel, msg, thread_ts=thread, broadcast=broadcast)
        self.report.posted += 1
        return Ref(self.t.name, root.channel, root.root_ts, ts)

    def _upload_chart(self, inc: Incident, root: Ref, stage: str, suspect: bool) -> None:
        if self.chart is None or not getattr(self.t, "files", self.t.threads):
            return
        filename = f"pollwatch-{inc.id}-{stage}.png"
        try:
            record = StoredUploads(self.url)
            if suspect and self.t.has_file(root.channel, root.root_ts, filename, record):
                return
            data = self.chart(self.watch, inc, self._anoms(inc))
            if not data:
                return
            title = f"{KIND_TITLES[inc.kind]} in {inc.country}: signals against their baseline"
            self.t.upload(root.channel, root.root_ts, filename, title, data, record)
            self.report.posted += 1
        except DeliveryError as exc:
            if exc.kind in ("auth", "channel"):
                raise
            log.warning("chart for incident %s not uploaded: %s", inc.id, exc)
        except Exception as exc:  # a chart must never hold an alert back
            log.warning("chart for incident %s not drawn: %s", inc.id, exc)
