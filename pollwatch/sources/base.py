"""The Source interface: what every observatory client returns for a time range of a watch.

A source's `collect(watch, start, end, deadline=)` never raises and never runs past `deadline`. What it could not
fetch comes back as
explicit `Gap`s for the entities and signals it should have covered, plus an operator `Notice`
saying what went wrong (also what the deadline cut short: the tick's own, see
`Playbook.tick_deadline`); what it did fetch comes back as `Observation`s with provenance.
Outage records that other observatories publish (IODA alerts and events, Cloudflare Radar
annotations and anomalies) come back as `Corroboration`s: evidence, not measurements.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time as _time
from abc import ABC, abstractmethod
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field

from pollwatch.models import Corroboration, Gap, Notice, NoticeLevel, Observation, utc
from pollwatch.playbook import SourceConfig, Watch
from pollwatch.settings import get_settings
from pollwatch.sources.http import MAX_RESPONSE_BYTES, FetchError, HttpClient, Sleep, user_agent


class ShapeError(ValueError):
    """A response that parsed as JSON but is not the shape the API documents."""


def shape_failure(exc: ShapeError) -> FetchError:
    """A shape error as a failed fetch of kind `shape` (it becomes gaps and a notice like any other)."""
    return FetchError("shape", f"unexpected response shape: {exc}")


_running: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}  # collects under way in this process
_interrupted: dict[int, str] = {}
_running_lock = threading.Lock()


def interrupt_collections(why: str) -> int:
    """Stop every collect running in this process now (the tick is terminating: SIGTERM, a cancelled run).

    Each returns at once with what it had, and gaps for the rest (reason `why`), so the threads that
    run them end and the process can exit instead of waiting out a slow server. Returns how many."""
    with _running_lock:
        running = list(_running.items())
        for key, (loop, task) in running:
            _interrupted[key] = why
            loop.call_soon_threadsafe(task.cancel)
    return len(running)


class CollectResult(BaseModel):
    """What one source produced for one range: data, the holes in it, and what operators should know."""

    source: str
    observations: list[Observation] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    corroborations: list[Corroboration] = Field(default_factory=list)
    requests: int = 0  # logical requests (one per API call)
    attempts: int = 0  # HTTP attempts, retries included
    failed_requests: int = 0
    seconds: float = 0.0

    def __repr__(self) -> str:
        # short on purpose: asyncio and loggers repr results, and a full repr of thousands of observations costs seconds
        return (
            f"CollectResult(source={self.source!r}, observations={len(self.observations)}, gaps={len(self.gaps)}, "
            f"notices={len(self.notices)}, corroborations={len(self.corroborations)}, requests={self.requests})"
        )

    __str__ = __repr__

    def merge(self, other: "CollectResult") -> "CollectResult":
        """Another result's records appended to this one's (same source or a combined view)."""
        self.observations.extend(other.observations)
        self.gaps.extend(other.gaps)
        self.notices.extend(other.notices)
        self.corroborations.extend(other.corroborations)
        self.requests += other.requests
        self.attempts += other.attempts
        self.failed_requests += other.failed_requests
        return self


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def write_atomic(path: Path, text: str) -> bool:
    """Write a cache file whole or not at all (a temporary file renamed over it); False when it cannot be
    written (a read-only home only costs a refetch)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return True
    except OSError:
        return False


def read_cache_json(path: Path, max_bytes: int) -> Any:
    """A cache file's JSON, or None (a refetch): missing, not a regular file (a directory, a FIFO, which a plain
    open would wait on, a link to a device), larger than `max_bytes`, or not JSON (nested past any depth too)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return json.loads(f.read(max_bytes + 1))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)


def count_shared_request(runs: "list[_Run]") -> None:
    """A request a batch of watches shares counts as one request for each watch it serves, also when it serves only
    one of them (a single watch's run, not in a batch, counts its own requests through its client)."""
    for run in {id(r): r for r in runs}.values():
        if run.batched:
            run.result.requests += 1
            run.result.attempts += 1


class RunClient:
    """A client shared by a batch, as one watch's run sees it: its calls count as that run's requests."""

    def __init__(self, http: HttpClient, run: "_Run") -> None:
        self.http, self.run = http, run

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.run.result.requests += 1
        self.run.result.attempts += 1
        return await self.http.get_json(path, params)


class Source(ABC):
    """An observatory client: `await source.collect(watch, start, end)` -> CollectResult.

    Construct with the watch's `SourceConfig` (base URL, timeouts, retries, rate limit,
    concurrency, options); `transport=` injects an httpx transport (tests) and `sleep=` the
    coroutine used for backoff waits.
    """

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    default_max_response: ClassVar[int] = MAX_RESPONSE_BYTES  # `sources.<name>.max_response` overrides it

    def __init__(
        self,
        config: SourceConfig | None = None,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config or SourceConfig()
        self.base_url = (base_url or self.config.base_url or self.default_base_url).rstrip("/")
        self.transport = transport
        self.sleep = sleep
        self.options: dict[str, Any] = dict(self.config.options)
        self._clients: list[HttpClient] = []

    def cache_dir(self) -> Path:
        """Where this source keeps what it need not ask again: `options.cache_dir`, else
        `$POLLWATCH_HOME/cache/<source>/`.
        """
        return Path(self.options.get("cache_dir") or get_settings().home / "cache" / self.name)

    def client(self, headers: dict[str, str] | None = None, secrets: list[str] | None = None) -> HttpClient:
        """A fresh HTTP client for one collect (one per call: tasks never share clients)."""
        c = self.config
        contact = self.options.get("contact_url") or get_settings().contact_url
        headers = {
            "User-Agent": user_agent(str(contact).replace("\r", "").replace("\n", "")[:200] if contact else None),
            **(headers or {}),
        }
        client = HttpClient(
            self.base_url,
            timeout=c.timeout.total_seconds(),
            deadline=c.deadline.total_seconds(),
            retries=c.retries,
            backoff=c.backoff,
            max_backoff=c.max_backoff,
            rate_limit=c.rate_limit,
            max_concurrency=c.max_concurrency,
            headers=headers,
            transport=self.transport,
            sleep=self.sleep,
            secrets=secrets,
            max_bytes=int(c.max_response or self.default_max_response),
        )
        self._clients.append(client)
        return client

    async def collect(
        self, watch: Watch, start: datetime, end: datetime, deadline: datetime | None = None
    ) -> CollectResult:
        """Fetch [start, end) for `watch` until `deadline` (if any); failures, and what the deadline cut short,
        become gaps and notices, never exceptions."""
        return (await self.collect_many([(watch, start, end)], deadline))[0]

    async def collect_many(
        self, jobs: list[tuple[Watch, datetime, datetime]], deadline: datetime | None = None
    ) -> list[CollectResult]:
        """`collect` for several watches at once, one result per (watch, start, end) in order: requests are shared
        across the watches where the observatory's API takes many entities in one (`_collect_many`), within this
        source's rate limit and concurrency. One watch's failure is that watch's gaps and notice only."""
        began = _time.perf_counter()
        runs = [_Run(self.name, w, utc(s), utc(e)) for w, s, e in jobs]
        self._clients = []
        budget = None if deadline is None else (utc(deadline) - now_utc()).total_seconds()
        limit = asyncio.timeout(None if budget is None else max(0.0, budget))
        task = asyncio.current_task()
        key = id(task)
        with _running_lock:
            if task is not None:
                _running[key] = (asyncio.get_running_loop(), task)
        valid = []
        for run in runs:
            if run.end <= run.start:
                run.fail_everything(
                    f"ValueError: empty range: end {run.end.isoformat()} is not after start {run.start.isoformat()}"
                )
            else:
                valid.append(run)
        for run in valid:
            run.batched = len(valid) > 1
        try:
            async with limit:
                if len(valid) == 1:
                    await self._collect(valid[0])
                elif valid:
                    await self._collect_many(valid)
        except asyncio.CancelledError:
            with _running_lock:
                why = _interrupted.pop(key, None)
            if why is None or task is None:
                raise  # not ours to swallow
            task.uncancel()
            for run in valid:
                self._account_all(run, len(valid))
                run.out_of_time(why, _time.perf_counter() - began)
        except TimeoutError as exc:
            expired = limit.expired()
            when = utc(deadline) if deadline else now_utc()
            for run in valid:
                if not expired:  # not the deadline: some other wait gave up
                    run.fail_everything(f"{type(exc).__name__}: {exc}")
                    continue
                self._account_all(run, len(valid))  # the requests the deadline interrupted count too
                run.out_of_time(
                    f"the tick's deadline ({when:%H:%M:%SZ}; `tick.deadline` in the playbook)",
                    _time.perf_counter() - began,
                )
        except Exception as exc:  # failure is data: anything unexpected still becomes gaps + a notice
            for run in valid:
                run.fail_everything(f"{type(exc).__name__}: {exc}")
        finally:
            with _running_lock:
                _running.pop(key, None)
                _interrupted.pop(key, None)
        for run in runs:
            run.result.seconds = _time.perf_counter() - began
            run.finish()
        return [run.result for run in runs]

    def _account_all(self, run: "_Run", shared: int) -> None:
        """The clients' requests counted for `run`: all of them for one watch; a batch's runs count their own."""
        if shared == 1:
            for http in self._clients:
                run.account(http)

    async def _collect_many(self, runs: list["_Run"]) -> None:
        """Fill several runs; by default each run's own requests, one after another's, on one shared client (one
        rate limit and concurrency bound for the whole batch). Sources whose API takes many entities per request
        override this to share the requests themselves."""
        async with self.client() as http:
            await asyncio.gather(*(self._isolated(run, self._fetch(RunClient(http, run), run)) for run in runs))

    @staticmethod
    async def _isolated(run: "_Run", work: Any) -> None:
        """One watch's part of a batch: what fails in it is its gaps and notice, not the batch's."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            run.fail_everything(f"{type(exc).__name__}: {exc}")

    async def _fetch(self, http: Any, run: "_Run") -> None:
        """One watch's requests on a given client (sources without their own `_collect_many` implement it)."""
        raise NotImplementedError(f"{self.name}: no per-watch fetch on a shared client")

    @abstractmethod
    async def _collect(self, run: "_Run") -> None:
        """Fill `run` (observations, gaps, corroborations) and register what was expected."""

    def expected(self, watch: Watch) -> list[tuple[str, str | None]]:
        """(entity key, signal) pairs this source should cover for `watch` (used for whole-source failures)."""
        return [(watch.country or "", None)]


class _Run:
    """Book-keeping for one collect: results, expected coverage and failure tallies for the notice."""

    def __init__(self, source: str, watch: Watch, start: datetime, end: datetime) -> None:
        self.source = source
        self.watch = watch
        self.start = start
        self.end = end
        self.result = CollectResult(source=source)
        self.failures: Counter[str] = Counter()
        self.first_error: dict[str, str] = {}
        self.expected: list[tuple[str, str | None]] = []
        self.info: list[str] = []
        self.gapped: set[tuple[str, str | None]] = set()
        self.accounted: set[int] = set()
        self.extra: dict[str, Any] = {}  # a source's own per-watch state during a batch (IODA: region codes)
        self.batched = False  # collected with other watches: shared requests count per run (count_shared_request)

    @property
    def country(self) -> str:
        return self.watch.country or ""

    def gap(
        self, entity: str, signal: str | None, reason: str, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        key = (entity, signal)
        if start is None and end is None:
            if key in self.gapped:
                return
            self.gapped.add(key)
        self.result.gaps.append(
            Gap(
                source=self.source,
                signal=signal,
                entity=entity,
                start=start or self.start,
                end=end or self.end,
                reason=reason,
            )
        )

    def failed(self, err: FetchError | Exception, what: str) -> str:
        """Count a failed request (or unusable payload) and return the reason text for its gaps."""
        kind = err.kind if isinstance(err, FetchError) else "unexpected"
        self.failures[kind] += 1
        reason = f"{what}: {err}"
        self.first_error.setdefault(kind, reason)
        return reason

    def fail_everything(self, reason: str) -> None:
        self.failures["crash"] += 1
        self.first_error.setdefault("crash", reason)
        for entity, signal in self.expected or [(self.country, None)]:
            self.gap(entity, signal, f"source failed: {reason}")

    def out_of_time(self, why: str, spent: float) -> None:
        """The collect was stopped (the tick's deadline, a termination): what has no
        data yet is a gap, what came is kept.
        """
        reason = f"not fetched: stopped after {spent:.0f} s by {why}"
        self.failures["deadline"] += 1
        self.first_error.setdefault("deadline", reason)
        have = {(o.entity_key, o.signal) for o in self.result.observations}
        have |= {(o.entity_key, None) for o in self.result.observations}
        for entity, signal in self.expected or [(self.country, None)]:
            if (entity, signal) not in have:
                self.gap(entity, signal, reason)

    def account(self, http: HttpClient) -> None:
        """Add a client's request counts to the result (once per client)."""
        if id(http) in self.accounted:
            return
        self.accounted.add(id(http))
        self.result.requests += http.calls
        self.result.attempts += http.requests

    def notice(self, message: str, level: NoticeLevel = NoticeLevel.warning) -> None:
        self.result.notices.append(
            Notice(time=now_utc(), level=level, source=self.source, message=message, watch=self.watch.name)
        )

    def finish(self) -> None:
        self.result.failed_requests = sum(v for k, v in self.failures.items() if k not in ("empty", "crash"))
        if self.failures:
            total = sum(self.failures.values())
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
            first = "; ".join(self.first_error[k] for k in sorted(self.first_error))
            everything = self.result.requests and self.result.failed_requests >= self.result.requests
            level = NoticeLevel.error if everything or "crash" in self.failures else NoticeLevel.warning
            self.notice(
                f"{self.source}: {total} problem(s) fetching {self.start:%Y-%m-%dT%H:%MZ}..{self.end:%Y-%m-%dT%H:%MZ} "
                f"({kinds}); {len(self.result.gaps)} gap(s) recorded. First errors: {first}",
                level,
            )
        for text in self.info:
            self.notice(f"{self.source}: {text}", NoticeLevel.info)
