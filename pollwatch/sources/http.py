"""The HTTP layer every source shares: polite, bounded, retrying JSON GETs with provenance.

`HttpClient` wraps one `httpx.AsyncClient` with
- timeouts: `timeout` bounds each wait (connect, the next bytes, a pooled connection) and
  `deadline` the whole attempt, connect to last byte, so a server dripping one byte every few
  seconds is cut off like one that never answers,
- a size limit: responses are streamed and given up past `max_bytes` (after decompression, so a
  gzip bomb stops there too); an oversized response is a `FetchError` of kind `too_large`,
  never retried,
- retries (tenacity) with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx,
  honouring `Retry-After` (seconds or an HTTP date) up to `max_backoff`,
- a per-host rate limit (aiolimiter's leaky bucket, allowing short bursts) and bounded concurrency,
- a User-Agent naming pollwatch and its version,
- an injectable `transport=` (tests) and `sleep=` (backoff waits).

`get_json` returns a `Fetched` (parsed payload, request URL without secrets, fetch time and
SHA-256 of the raw bytes) or raises `FetchError` whose `kind` says what went wrong. Secrets go
in headers only and never appear in URLs, errors or provenance. This is where outside text
enters: every error text and every parsed payload passes through `pollwatch.redact.scrub`, so a
server that echoes a secret it was sent (in any encoding) hands on only `***`.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import certifi
import httpx
import orjson
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from pollwatch import __version__, redact
from pollwatch.models import Provenance

Sleep = Callable[[float], Awaitable[Any]]

MAX_RESPONSE_BYTES = 32 * 2**20  # the default size limit of one response (sources set their own: docs/sources.md)

USER_AGENT = f"pollwatch/{__version__} (election internet-shutdown monitoring; httpx/{httpx.__version__})"


def user_agent(contact: str | None = None) -> str:
    """pollwatch, its version and, when configured, a contact URL for the observatories' operators."""
    return (
        USER_AGENT
        if not contact
        else f"pollwatch/{__version__} (+{contact}; election internet-shutdown monitoring; httpx/{httpx.__version__})"
    )


# Query parameters that may carry credentials; dropped from every URL we record or print.
SECRET_PARAMS = redact.SECRET_PARAMS


class FetchError(Exception):
    """A request that did not yield usable JSON. `kind`: timeout, connection, http,
    rate_limited, malformed, too_large.
    """

    def __init__(self, kind: str, message: str, url: str = "", status: int | None = None, attempts: int = 1) -> None:
        message, url = redact.scrub(message), redact.scrub(url)  # servers' words and exceptions' texts: outside text
        self.kind = kind
        self.url = url
        self.status = status
        self.attempts = attempts
        super().__init__(f"{message} ({url}, {attempts} attempt{'s' if attempts != 1 else ''})" if url else message)


class _Retryable(Exception):
    """An answer worth asking again for (429, 5xx), with the wait the server asked for."""

    def __init__(self, error: FetchError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error, self.retry_after = error, retry_after


@dataclass
class Fetched:
    """One successful response: the parsed JSON and where it came from."""

    payload: Any
    url: str
    fetched_at: datetime
    payload_hash: str
    status: int
    attempts: int
    size: int

    def provenance(self) -> Provenance:
        return Provenance(request=self.url, fetched_at=self.fetched_at, payload_hash=self.payload_hash)


def redact_url(url: httpx.URL | str) -> str:
    """The URL without user info and without query parameters that may hold secrets."""
    u = httpx.URL(str(url))
    params = [(k, v) for k, v in u.params.multi_items() if k.lower() not in SECRET_PARAMS]
    u = u.copy_with(username=None, password=None, query=None) if u.userinfo else u.copy_with(query=None)
    return str(u.copy_merge_params(params)) if params else str(u)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def rate_limiter(rate: float, burst: int | None = None) -> AsyncLimiter | None:
    """`rate` requests per second on average, in bursts of up to `burst` (default: a second's worth), as
    aiolimiter's leaky bucket; None when `rate` is 0 (unlimited)."""
    if rate <= 0:
        return None
    size = max(1, int(burst if burst is not None else max(1, rate)))
    return AsyncLimiter(size, size / rate)


_SSL_CONTEXT: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~80 ms of CPU per client otherwise."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context(cafile=certifi.where())
    return _SSL_CONTEXT


class HttpClient:
    """One source's connection to one API base URL; use as `async with HttpClient(...) as http:`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 20.0,
        deadline: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        rate_limit: float = 20.0,
        burst: int | None = None,
        max_concurrency: int = 10,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        secrets: list[str] | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        redact.register(*(secrets or []))  # what this client sends (a token in a header) is what a server may echo
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rate_limit = rate_limit
        self.burst = burst
        self.sleep: Sleep = sleep or asyncio.sleep
        self.rng = rng or random.Random()
        self.calls = 0  # get_json calls (logical requests)
        self.requests = 0  # HTTP attempts sent (retries included)
        self._sem = asyncio.Semaphore(max_concurrency)
        self._limiters: dict[str, AsyncLimiter | None] = {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            transport=transport,
            verify=ssl_context(),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            follow_redirects=True,
        )

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    async def _wait_for_slot(self, host: str) -> None:
        """The host's rate limit; it always waits for real, even with an injected `sleep`."""
        if host not in self._limiters:
            self._limiters[host] = rate_limiter(self.rate_limit, self.burst)
        limiter = self._limiters[host]
        if limiter is not None:
            await limiter.acquire()

    def _delay(self, state: RetryCallState) -> float:
        """Exponential backoff with "equal jitter" (never zero, never synchronized), at least the Retry-After."""
        base = min(self.max_backoff, self.backoff * (2 ** (state.attempt_number - 1)))
        delay = base / 2 + self.rng.uniform(0, base / 2)
        failed = state.outcome.exception() if state.outcome else None
        retry_after = failed.retry_after if isinstance(failed, _Retryable) else None
        return max(delay, retry_after) if retry_after is not None else delay

    def _give_up(self, state: RetryCallState) -> bool:
        """After `retries` retries, or when the server asks for a longer wait than `max_backoff`."""
        failed = state.outcome.exception() if state.outcome else None
        too_long = isinstance(failed, _Retryable) and (failed.retry_after or 0) > self.max_backoff
        return state.attempt_number > self.retries or too_long

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Fetched:
        """GET `path` (relative to the base URL) and parse JSON, retrying transient failures."""
        self.calls += 1
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        full = httpx.URL(self.url(path)).copy_merge_params(clean_params)  # keeps a query already in `path`
        shown = redact_url(full)
        host = full.netloc.decode()
        async with self._sem:
            retrying = AsyncRetrying(
                stop=self._give_up,
                wait=self._delay,
                retry=retry_if_exception_type(_Retryable),
                sleep=self.sleep,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        n = attempt.retry_state.attempt_number
                        await self._wait_for_slot(host)
                        self.requests += 1
                        return await self._attempt_within_deadline(full, shown, n)
            except _Retryable as last:
                raise self._final(last, shown) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _final(self, last: _Retryable, shown: str) -> FetchError:
        err = last.error
        if last.retry_after is not None and last.retry_after > self.max_backoff:
            return FetchError(
                err.kind,
                f"HTTP {err.status} with Retry-After {last.retry_after:.0f}s (longer than max_backoff "
                f"{self.max_backoff:.0f}s)",
                shown,
                status=err.status,
                attempts=err.attempts,
            )
        return err

    async def _attempt_within_deadline(self, full: httpx.URL, shown: str, attempts: int) -> Fetched:
        """One attempt, bounded by `deadline` however slowly the bytes come; what may pass is `_Retryable`."""
        try:
            async with asyncio.timeout(self.deadline):
                return await self._attempt(full, shown, attempts)
        except httpx.TimeoutException as exc:
            err = FetchError("timeout", f"timed out ({type(exc).__name__})", shown, attempts=attempts)
        except TimeoutError:
            err = FetchError(
                "timeout", f"no complete answer within the {self.deadline:g} s deadline", shown, attempts=attempts
            )
        except httpx.TransportError as exc:
            err = FetchError("connection", f"connection failed ({type(exc).__name__}: {exc})", shown, attempts=attempts)
        raise _Retryable(err, None)

    async def _attempt(self, full: httpx.URL, shown: str, attempts: int) -> Fetched:
        """One exchange: the status, then the body streamed up to `max_bytes`, then the parsed JSON."""
        async with self._client.stream("GET", full) as resp:
            status = resp.status_code
            if status == 429 or status >= 500:  # retried: the body is not read
                kind = "rate_limited" if status == 429 else "http"
                raise _Retryable(
                    FetchError(kind, f"HTTP {status}", shown, status=status, attempts=attempts),
                    parse_retry_after(resp.headers.get("Retry-After")),
                )
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large(f"{int(declared)} bytes announced", shown, status, attempts)
            body = bytearray()
            async for chunk in resp.aiter_bytes():  # decoded: a compressed body counts at its real size
                body += chunk
                if len(body) > self.max_bytes:
                    raise self._too_large(f"more than {len(body)} bytes sent", shown, status, attempts)
            raw = bytes(body)
        if status >= 400:
            text = raw.decode(resp.encoding or "utf-8", "replace")
            snippet = redact.scrub(text)[:200].replace("\n", " ")  # scrubbed whole: a cut must not halve a secret
            raise FetchError("http", f"HTTP {status}: {snippet}", shown, status=status, attempts=attempts)
        return self._parse(raw, status, shown, attempts)

    def _too_large(self, what: str, shown: str, status: int, attempts: int) -> FetchError:
        limit = f"{self.max_bytes / 2**20:.1f} MiB" if self.max_bytes >= 2**20 else f"{self.max_bytes} bytes"
        return FetchError(
            "too_large",
            f"response over the size limit of {limit} ({what}; the source's `max_response` in the playbook "
            "raises it if such answers are genuine)",
            shown,
            status=status,
            attempts=attempts,
        )

    @staticmethod
    def _parse(raw: bytes, status: int, shown: str, attempts: int) -> Fetched:
        digest = hashlib.sha256(raw).hexdigest()
        try:
            payload = orjson.loads(raw)  # several times faster than json on OONI's large aggregation answers
        except orjson.JSONDecodeError as exc:
            raise FetchError(
                "malformed",
                f"response is not valid JSON ({exc.__class__.__name__}: {exc}; {len(raw)} bytes)",
                shown,
                status=status,
                attempts=attempts,
            ) from None
        # an echoed secret, raw or encoded; JSON escapes (`\u0041`, `\/`) are gone once parsed, so look again at the
        # parsed form
        if redact.found_in(raw) or (b"\\" in raw and redact.found_in(orjson.dumps(payload))):
            payload = redact.scrub_data(payload)
        return Fetched(
            payload=payload,
            url=shown,
            fetched_at=datetime.now(timezone.utc),
            payload_hash=digest,
            status=status,
            attempts=attempts,
            size=len(raw),
        )
