"""Delivering the outbox: every stored alert reaches its channel once, in order.

The outbox (pollwatch.outbox: enqueue_alerts, mark_alert; pollwatch.store: pending_alerts) holds every alert before
anything is sent. `deliver_outbox` walks the pending alerts of a watch channel by channel in the
order they were created and, for each one:

1. marks it *in flight* in its own committed transaction (`begin_alert_attempt`);
2. if an earlier attempt may have reached Slack (a crash, a timeout after Slack accepted, a 5xx),
   looks the message up by its metadata (idempotency key, or incident id for the root) with
   conversations.history / conversations.replies before posting anything;
3. posts / edits / uploads, then marks it sent with the remote reference
   (`slack:<channel>:<root ts>[:<reply ts>]`), or `skipped:<why>` / `held:<channel>:<root ts>`
   when routing says it should not produce a message of its own (an incident's thread: `threads.IncidentThreads`).

A channel that fails (Slack unreachable, 5xx, rate limit after retries) stops at that alert so that
nothing overtakes it; the next tick starts again from the oldest. The operations channel is told
when a channel gets stuck and again when its backlog has been delivered.

One delivery run per watch at a time: a run first takes the store lease `deliver:<watch>`
(renewed after every alert, released at the end; taken over at once when its process on this
machine is gone, after LEASE_TTL when it died on another machine).
A run that finds it held (a tick while a responder runs `pollwatch alerts deliver`) sends nothing
and says so (`DeliveryReport.busy`): the holder delivers those alerts, in order.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pollwatch import outbox, store
from pollwatch.models import Alert, AlertState, Anomaly, Incident, Notice, NoticeLevel, iso
from pollwatch.notify import render, routing
from pollwatch.notify.notices import NOTICE_EVENT, notice_alerts
from pollwatch.notify.render import Links
from pollwatch.notify.threads import ChartFn, IncidentThreads, Ref
from pollwatch.notify.transports import DeliveryError, Transport, retry_unavailable
from pollwatch.playbook import Watch
from pollwatch.responders import DRAFT_EVENT

log = logging.getLogger("pollwatch.notify")

LEASE_TTL = timedelta(minutes=2)  # how long a delivery run that died on another machine can hold a watch's alerts back


def lease_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_dead(holder: str) -> bool:
    """True when `holder` (host:pid:nonce) was a process of this machine that no longer runs (a killed tick)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


@dataclass
class DeliveryReport:
    """What one delivery run did (plain data, fit for a Prefect task's return value)."""

    transport: str
    posted: int = 0  # messages posted (roots, replies, notices, charts)
    edited: int = 0
    sent: list[str] = field(default_factory=list)  # alert ids whose delivery is done (posted, held or skipped)
    held: int = 0
    skipped: int = 0
    recovered: int = 0  # alerts found already posted by an earlier attempt (not posted again)
    waiting: dict[str, int] = field(default_factory=dict)  # channel -> alerts still pending
    errors: dict[str, str] = field(default_factory=dict)  # channel -> last error (secrets scrubbed)
    auth_failed: bool = False
    busy: bool = False  # another delivery run held the watch's lease: it delivers them, this run sent nothing

    @property
    def ok(self) -> bool:
        return not self.errors


# --- charts ------------------------------------------------------------------------------------


def store_chart(url: str | None = None) -> ChartFn:
    """A chart function reading the incident's anomalies and observations from the store."""

    def make(watch: Watch, inc: Incident, anomalies: list[Anomaly]) -> bytes | None:
        from pollwatch.charts import incident_chart, incident_chart_window

        with store.session_scope(url) as s:
            start, end = incident_chart_window(inc)
            obs = store.query_observations(s, country=inc.country, since=start, until=end)
        return incident_chart(watch, inc, anomalies, obs)

    return make


# --- the delivery run ------------------------------------------------------------------------------


class OutboxDelivery(IncidentThreads):
    """Delivers a watch's pending alerts through one transport (see the module docstring)."""

    def __init__(
        self,
        watch: Watch,
        transport: Transport,
        *,
        url: str | None = None,
        links: Links | None = None,
        chart: ChartFn | None = None,
        retry_delays: Sequence[float] = (1.0, 3.0),
        now: Callable[[], datetime] | None = None,
        anomalies: Sequence[Anomaly] | None = None,
    ):
        self.watch, self.t, self.url = watch, transport, url
        self.routing = watch.alerts
        self.links = links or Links()
        self.chart = chart if chart is not None else (store_chart(url) if watch.alerts.chart else None)
        self.retry_delays = list(retry_delays)
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.report = DeliveryReport(transport=transport.name)
        self._roots: dict[str, Ref] = {}
        self._known = {a.id: a for a in anomalies or []}  # this tick's anomalies, maybe not stored yet
        self._slack_down = False  # unreachable as a whole: the other channels wait for the next run too
        self._lease = f"deliver:{watch.name}"
        self._holder = lease_holder()

    # --- entry ---------------------------------------------------------------------------
    def run(self) -> DeliveryReport:
        with store.session_scope(self.url) as s:
            if not store.acquire_lease(s, self._lease, self._holder, LEASE_TTL, holder_dead=holder_dead):
                self.report.busy = True
                log.info("alerts of %s: another delivery run is under way; it delivers them", self.watch.name)
                return self.report
        try:
            return self._run()
        finally:
            with store.session_scope(self.url) as s:
                store.release_lease(s, self._lease, self._holder)

    def _renew(self) -> None:
        with store.session_scope(self.url) as s:
            store.acquire_lease(s, self._lease, self._holder, LEASE_TTL)

    def _run(self) -> DeliveryReport:
        ops = self.routing.ops_channel
        with store.session_scope(self.url) as s:
            pending = store.pending_alerts(s, self.watch.name)
        channels: list[str] = []
        for a in pending:
            if a.destination not in channels and a.destination != ops:
                channels.append(a.destination)
        for ch in channels:
            if self.report.auth_failed or self._slack_down:
                break
            self._run_channel(ch)
        if not (self.report.auth_failed or self._slack_down):
            self._run_channel(ops)  # last: it also carries the notices this run produced
        with store.session_scope(self.url) as s:
            for a in store.pending_alerts(s, self.watch.name):
                self.report.waiting[a.destination] = self.report.waiting.get(a.destination, 0) + 1
        return self.report

    def _pending(self, channel: str) -> list[Alert]:
        with store.session_scope(self.url) as s:
            return [a for a in store.pending_alerts(s, self.watch.name) if a.destination == channel]

    def _run_channel(self, channel: str) -> None:
        queue = self._pending(channel)
        if not queue:
            return
        backlog_head = queue[0] if queue[0].attempts > 0 else None  # it failed before: the channel was stuck
        delivered = 0
        for a in queue:
            try:
                self._deliver(a)
                delivered += 1
            except DeliveryError as exc:
                msg = str(exc)  # a DeliveryError's text is scrubbed when it is made
                self._mark(a, AlertState.failed, error=msg)
                self.report.errors[channel] = msg
                log.error("alert %s to %s not delivered: %s", a.id, channel, msg)
                if exc.kind == "auth":
                    self.report.auth_failed = True
                if exc.kind == "unavailable":
                    self._slack_down = True
                if channel != self.routing.ops_channel:
                    self._tell_ops(channel, a, exc, msg)
                if exc.kind == "rejected":
                    continue  # this payload will never be taken; do not hold the channel behind it
                return
        if backlog_head is not None and delivered and channel != self.routing.ops_channel:
            n = delivered
            self._ops_notice(
                key=f"{self.watch.name}:slack-recovered:{channel}:{backlog_head.id}",
                level=NoticeLevel.info,
                message=f"delivery to {channel} works again: {n} alert(s) that waited since "
                f"{iso(backlog_head.created_at)} were delivered in order, none twice",
            )

    # --- one alert -------------------------------------------------------------------------
    def _deliver(self, a: Alert) -> None:
        with store.session_scope(self.url) as s:
            before = store.begin_alert_attempt(s, a.id)
        # Slack may have taken an earlier attempt (a timeout, a dropped connection): look before sending again
        suspect = [before.attempts > 0 or before.last_error is not None]

        def seen(exc: DeliveryError) -> None:
            suspect[0] = suspect[0] or exc.ambiguous

        for attempt in retry_unavailable(self.retry_delays, f"alert {a.id}", on_retry=seen):
            with attempt:
                ref = self._send(a, suspect[0])
        self._mark(a, AlertState.sent, ref=ref)
        self.report.sent.append(a.id)
        self._renew()

    def _mark(self, a: Alert, state: AlertState, ref: str | None = None, error: str | None = None) -> None:
        with store.session_scope(self.url) as s:
            outbox.mark_alert(s, a.id, state, remote_ref=ref, error=error)

    def _send(self, a: Alert, suspect: bool) -> str:
        if a.event == NOTICE_EVENT:
            return self._send_notice(a, suspect)
        inc = Incident.model_validate(a.payload["incident"])
        if inc.false_alarm and (a.payload or {}).get("response") != "false_alarm" and a.event != DRAFT_EVENT:
            # closed by a responder as not an outage: its closing message was the last word in the thread
            self.report.skipped += 1
            return "skipped:false alarm"
        root = self._root(a, inc, suspect)
        if a.event == DRAFT_EVENT:
            return self._draft(a, inc, root, suspect)
        if root is not None and root.alert_key == a.idempotency_key:
            # an earlier attempt of this very alert opened the thread, and its answer was lost
            self._upload_chart(inc, root, "start", suspect=True)
            if a.event != "end":
                return str(root)
        elif root is None:
            ok, why = routing.alertable(self.routing, inc)
            if not ok:
                self.report.skipped += 1
                return f"skipped:{why}"[:255]
            root = self._open_thread(a, inc, suspect)
            if a.event != "end":
                return str(root)
        return self._follow_up(a, inc, root, suspect)

    def _send_notice(self, a: Alert, suspect: bool) -> str:
        notice = Notice.model_validate(a.payload["notice"])
        msg = render.notice_message(self.watch, notice, key=a.idempotency_key)
        found = self.t.find(a.destination, key=a.idempotency_key) if suspect else None
        if found:
            self.report.recovered += 1
            return str(Ref(self.t.name, *found))
        cid, ts = self.t.post(a.destination, msg)
        self.report.posted += 1
        return str(Ref(self.t.name, cid, ts))

    # --- operator notices -------------------------------------------------------------------------
    def _tell_ops(self, channel: str, a: Alert, exc: DeliveryError, msg: str) -> None:
        waiting = len(self._pending(channel))
        what = {
            "auth": "Slack refuses pollwatch's credentials",
            "channel": f"Slack cannot post to {channel}",
            "unavailable": "Slack is unreachable",
        }.get(exc.kind, "Slack delivery fails")
        self._ops_notice(
            key=f"{self.watch.name}:slack-trouble:{channel}:{a.id}",
            level=NoticeLevel.error,
            message=f"{what} ({msg}); {waiting} alert(s) for {channel} wait in the outbox and will be delivered in "
            "order "
            f"once it works again",
        )

    def _ops_notice(self, *, key: str, level: NoticeLevel, message: str) -> None:
        notice = Notice(time=self.now(), level=level, source="slack", message=message, watch=self.watch.name)
        (alert,) = notice_alerts(self.watch, [notice], keys=[key])
        with store.session_scope(self.url) as s:
            if outbox.enqueue_alerts(s, [alert]):
                store.add_notices(s, [notice])
                (log.info if level is NoticeLevel.info else log.error)("ops notice: %s", message)


def deliver_outbox(
    watch: Watch,
    transport: Transport,
    *,
    url: str | None = None,
    flow_run_url: str | None = None,
    chart: ChartFn | None = None,
    retry_delays: Sequence[float] = (1.0, 3.0),
    anomalies: Sequence[Anomaly] | None = None,
) -> DeliveryReport:
    """Deliver every pending alert of `watch` through `transport`, in order, each once."""
    return OutboxDelivery(
        watch,
        transport,
        url=url,
        links=Links(flow_run_url=flow_run_url),
        chart=chart,
        retry_delays=retry_delays,
        anomalies=anomalies,
    ).run()
