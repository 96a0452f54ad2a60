"""The shared HTTP layer: retries, backoff, Retry-After, timeouts, rate limit, concurrency, redaction."""

from __future__ import annotations

import asyncio
import time
import hashlib
import socket

import httpx
import pytest
from tests.fakes.observatories import OoniFake, Sleeps

from pollwatch import __version__
from pollwatch.sources.http import FetchError, HttpClient, parse_retry_after, rate_limiter, redact_url

Q = "/api/v1/aggregation?since=2019-06-09&until=2019-06-10&probe_asn=AS9198&test_name=whatsapp"


@pytest.fixture
def ooni():
    with OoniFake() as fake:
        yield fake


def client(base: str, sleeps: Sleeps | None = None, **kw) -> HttpClient:
    kw.setdefault("retries", 3)
    kw.setdefault("backoff", 0.5)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("rate_limit", 0)
    return HttpClient(base, sleep=sleeps or Sleeps(), **kw)


async def test_success_carries_provenance_and_user_agent(ooni):
    async with client(ooni.url) as http:
        got = await http.get_json(Q)
    assert got.status == 200 and got.attempts == 1
    assert isinstance(got.payload["result"], list)
    raw = httpx.get(ooni.url + Q).content
    assert got.payload_hash == hashlib.sha256(raw).hexdigest()
    assert got.url.startswith(ooni.url + "/api/v1/aggregation?")
    assert ooni.requests[0].headers["User-Agent"].startswith(f"pollwatch/{__version__}")


async def test_retries_5xx_with_growing_jittered_backoff(ooni):
    ooni.fail("500", times=3)
    sleeps = Sleeps()
    async with client(ooni.url, sleeps, backoff=1.0, max_backoff=30) as http:
        got = await http.get_json(Q)
    assert got.attempts == 4 and len(ooni.requests) == 4
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):  # equal jitter: between half and all of 1, 2, 4 s
        assert 0.5 * 2**attempt <= delay <= 2**attempt


async def test_gives_up_after_retries(ooni):
    ooni.fail("500")
    async with client(ooni.url, retries=2) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(Q)
    assert info.value.kind == "http" and info.value.status == 500 and info.value.attempts == 3
    assert len(ooni.requests) == 3


async def test_429_honours_retry_after(ooni):
    ooni.retry_after = "7"
    ooni.fail("429", times=1)
    sleeps = Sleeps()
    async with client(ooni.url, sleeps, backoff=0.1) as http:
        got = await http.get_json(Q)
    assert got.attempts == 2
    assert sleeps.delays and sleeps.delays[0] >= 7


async def test_429_with_retry_after_beyond_max_backoff_fails_at_once(ooni):
    ooni.retry_after = "3600"
    ooni.fail("429")
    sleeps = Sleeps()
    async with client(ooni.url, sleeps, max_backoff=30) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(Q)
    assert info.value.kind == "rate_limited" and "Retry-After 3600s" in str(info.value)
    assert sleeps.delays == [] and len(ooni.requests) == 1


async def test_4xx_is_not_retried(ooni):
    async with client(ooni.url) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json("/api/v1/nothing-here")
    assert info.value.status == 404 and len(ooni.requests) == 1


async def test_hang_past_timeout_is_a_timeout(ooni):
    ooni.hang_seconds = 3
    ooni.fail("hang")
    async with client(ooni.url, timeout=0.2, retries=1) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(Q)
    assert info.value.kind == "timeout" and info.value.attempts == 2


async def test_truncated_json_is_malformed_and_not_retried(ooni):
    ooni.fail("truncated")
    async with client(ooni.url) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(Q)
    assert info.value.kind == "malformed" and len(ooni.requests) == 1


async def test_connection_refused_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    async with client(f"http://127.0.0.1:{port}", sleeps, retries=2) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json("/x")
    assert info.value.kind == "connection" and len(sleeps.delays) == 2


async def test_concurrency_is_bounded():
    inflight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.01)
        inflight -= 1
        return httpx.Response(200, json={"ok": True})

    async with HttpClient(
        "http://api.test", max_concurrency=3, rate_limit=0, transport=httpx.MockTransport(handler)
    ) as http:
        await asyncio.gather(*(http.get_json(f"/r/{i}") for i in range(20)))
    assert peak == 3


async def test_rate_limiter_allows_a_burst_then_spaces_requests():
    limiter = rate_limiter(rate=20, burst=3)
    t0 = time.monotonic()
    times = []
    for _ in range(6):
        await limiter.acquire()
        times.append(time.monotonic() - t0)
    assert times[2] < 0.04  # the burst goes at once
    assert times[5] >= 0.12  # then 20 a second: three more take at least 3 x 0.05 s (less a little slack)
    assert rate_limiter(rate=0) is None  # unlimited


async def test_rate_limit_applies_per_host():
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(200, json={})

    async with HttpClient("http://a.test", rate_limit=1000, burst=1, transport=httpx.MockTransport(handler)) as http:
        await asyncio.gather(http.get_json("http://a.test/x"), http.get_json("http://b.test/y"))
        assert set(http._limiters) == {"a.test", "b.test"}
    assert sorted(seen) == ["a.test", "b.test"]


def test_redact_url_drops_secrets_and_user_info():
    assert redact_url("https://user:pw@api.test/x?token=abc&from=1&api_key=zz") == "https://api.test/x?from=1"
    assert redact_url("https://api.test/x?from=1") == "https://api.test/x?from=1"


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("5") == 5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


async def test_secrets_are_scrubbed_from_errors(ooni):
    ooni.fail("echo_auth")
    async with HttpClient(
        ooni.url, headers={"Authorization": "Bearer s3cr3t-value"}, secrets=["s3cr3t-value"], rate_limit=0
    ) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(Q)
    assert "s3cr3t-value" not in str(info.value) and "***" in str(info.value)
