"""Web probe: is a service reachable from this vantage, and if not, at which step did it fail?

Each probe of a URL runs DNS (a UDP query to the vantage's resolver) → TCP connect → TLS handshake
with SNI (https) → one HTTP/1.1 GET, timing every step. The first step that fails names the outage
type (`OutageType`); a reply that does not look like the real page (status or text unlike the
service's control, or a known blockpage fingerprint) is `http_blockpage`. Probes of one
(vantage, service) are aggregated into Observations of source `webprobe`:

- `probe_success_rate` (share of probes that were `ok`, with `count`),
- `probe_outage_<type>` (how many probes failed that way; only types that occurred),
- `probe_<step>_ms` and `probe_<step>_ms_p90` (median and 90th percentile per step),
- `rtt_ms`: median fetch time (request sent → last byte) of the service's fixed-size transfer
  object where it names one, else of its page; the playbook's throttling signal.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import socket
import ssl
import statistics
import time
from collections import Counter
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pollwatch.models import Observation, Provenance
from pollwatch.playbook import Service, Vantage, Watch
from pollwatch.probes.dns import DnsStatus, is_bogon, resolve, system_resolver

SOURCE = "webprobe"
STEPS = ("dns", "tcp", "tls", "http")


class OutageType(StrEnum):
    ok = "ok"
    dns_nxdomain = "dns_nxdomain"
    dns_timeout = "dns_timeout"
    dns_error = "dns_error"  # SERVFAIL/REFUSED/NODATA: the resolver answered, but with no address
    dns_bogon = "dns_bogon"
    tcp_refused = "tcp_refused"
    tcp_timeout = "tcp_timeout"
    tcp_reset = "tcp_reset"
    tls_failure = "tls_failure"
    http_error = "http_error"
    http_blockpage = "http_blockpage"


class WebprobeOptions(BaseModel):
    """`sources.webprobe.options` of the playbook (all optional)."""

    model_config = ConfigDict(extra="forbid")

    resolver: str | None = Field(
        default=None, description="'address[:port]'; default the vantage's, else the system's first nameserver"
    )
    step_timeout: float = Field(default=5.0, gt=0, description="seconds allowed for each step")
    attempts: int = Field(default=3, ge=1, description="probes per URL per run")
    concurrency: int = Field(default=64, ge=1)
    max_body: int = Field(default=1 << 20, ge=1024, description="bytes read from a reply at most")
    blockpage_fingerprints: list[str] = Field(
        default_factory=list, description="regular expressions matched against the reply's head and body"
    )
    blockpage_addresses: list[str] = Field(
        default_factory=list, description="addresses of known blockpage servers (a DNS answer with one is dns_bogon)"
    )
    bogon_exempt: list[str] = Field(
        default_factory=list, description="networks never treated as bogons, e.g. 127.0.0.0/8 in tests"
    )
    ca_file: str | None = Field(default=None, description="CA bundle to verify servers with; default the system's")
    user_agent: str = "Mozilla/5.0 (pollwatch web probe)"

    @field_validator("blockpage_fingerprints")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"blockpage fingerprint {pattern!r} is not a regular expression: {exc}") from None
        return v


class ProbeResult(BaseModel):
    """One probe of one URL from one vantage."""

    service: str
    url: str
    kind: str = "page"  # page | transfer
    started_at: datetime
    outage: OutageType
    detail: str = ""
    addresses: list[str] = Field(default_factory=list)
    status: int | None = None
    body_bytes: int = 0
    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    http_ms: float | None = None  # request sent → status line and headers received
    fetch_ms: float | None = None  # request sent → last byte of the body


class _Failed(Exception):
    def __init__(self, outage: OutageType, detail: str):
        super().__init__(detail)
        self.outage = outage
        self.detail = detail


class _Context:
    """What all probes of one run share: compiled options, the TLS context, the resolver."""

    def __init__(self, opts: WebprobeOptions, resolver: str):
        self.opts = opts
        self.resolver = resolver
        self.fingerprints = [re.compile(p.encode(), re.IGNORECASE) for p in opts.blockpage_fingerprints]
        self.blockpage_addresses = {str(ipaddress.ip_address(a)) for a in opts.blockpage_addresses}
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in opts.bogon_exempt]
        self.ssl = ssl.create_default_context(cafile=opts.ca_file) if opts.ca_file else ssl.create_default_context()


def service_urls(service: Service) -> list[tuple[str, str]]:
    """(url, kind) pairs a service is probed with: its URLs (else https://<domain>/) and its transfer object."""
    urls = [(u, "page") for u in service.urls] or [(f"https://{d}/", "page") for d in service.domains]
    if service.transfer_url:
        urls.append((service.transfer_url, "transfer"))
    return urls


async def probe_url(
    url: str, service: Service, ctx: _Context, kind: str = "page", started_at: datetime | None = None
) -> ProbeResult:
    """Probe one URL: DNS → TCP → TLS → HTTP; the first failing step names the outage type."""
    started = started_at or datetime.now(timezone.utc)
    result = ProbeResult(service=service.name, url=url, kind=kind, started_at=started, outage=OutageType.ok)
    writer: asyncio.StreamWriter | None = None
    sock: socket.socket | None = None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        addresses = await _resolve(host, ctx, result)
        address = addresses[0]
        sock = await _connect(address, port, ctx, result)
        reader, writer = await _open_stream(sock, host, https, ctx, result)
        sock = None  # the stream owns it now
        status, head, body = await _http_get(reader, writer, parts, host, https, ctx, result)
        result.status = status
        result.body_bytes = len(body)
        result.outage, result.detail = _judge(status, head, body, service, ctx, kind)
    except _Failed as failed:
        result.outage, result.detail = failed.outage, failed.detail
    finally:
        if writer is not None:
            writer.transport.abort()
        if sock is not None:
            sock.close()
    return result


async def _resolve(host: str, ctx: _Context, result: ProbeResult) -> list[str]:
    try:
        ipaddress.ip_address(host)
        result.addresses = [host]
        return [host]
    except ValueError:
        pass
    answer = await resolve(host, ctx.resolver, ctx.opts.step_timeout)
    result.dns_ms = answer.elapsed_ms
    result.addresses = answer.addresses
    if answer.status is DnsStatus.nxdomain:
        raise _Failed(OutageType.dns_nxdomain, f"{host}: NXDOMAIN from {ctx.resolver}")
    if answer.status is DnsStatus.timeout:
        raise _Failed(OutageType.dns_timeout, f"{host}: {answer.detail}")
    if answer.status is not DnsStatus.ok:
        raise _Failed(OutageType.dns_error, f"{host}: {answer.detail}")
    for address in answer.addresses:
        if address in ctx.blockpage_addresses:
            raise _Failed(OutageType.dns_bogon, f"{host} resolved to {address}, a known blockpage address")
        if is_bogon(address, ctx.exempt):
            raise _Failed(OutageType.dns_bogon, f"{host} resolved to {address}, a private or reserved address")
    return answer.addresses


async def _connect(address: str, port: int, ctx: _Context, result: ProbeResult) -> socket.socket:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(ctx.opts.step_timeout):  # no extra Task per step (unlike wait_for)
            await loop.sock_connect(sock, (address, port))
    except BaseException as exc:
        sock.close()
        if isinstance(exc, ConnectionRefusedError):
            raise _Failed(OutageType.tcp_refused, f"{address}:{port}: connection refused") from None
        if isinstance(exc, ConnectionResetError):
            raise _Failed(OutageType.tcp_reset, f"{address}:{port}: connection reset while connecting") from None
        if isinstance(exc, TimeoutError):
            raise _Failed(
                OutageType.tcp_timeout, f"{address}:{port}: no answer in {ctx.opts.step_timeout:g}s"
            ) from None
        if isinstance(exc, OSError):  # unreachable host/network: nothing answered either
            raise _Failed(OutageType.tcp_timeout, f"{address}:{port}: {exc.strerror or exc}") from None
        raise
    result.tcp_ms = (time.perf_counter() - start) * 1000
    return sock


async def _open_stream(
    sock: socket.socket, host: str, https: bool, ctx: _Context, result: ProbeResult
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if not https:
        return await asyncio.open_connection(sock=sock, limit=ctx.opts.max_body)
    start = time.perf_counter()
    timeout = ctx.opts.step_timeout
    try:
        async with asyncio.timeout(timeout + 0.5):
            stream = await asyncio.open_connection(
                sock=sock, ssl=ctx.ssl, server_hostname=host, ssl_handshake_timeout=timeout, limit=ctx.opts.max_body
            )
    except ssl.SSLCertVerificationError as exc:
        raise _Failed(
            OutageType.tls_failure, f"{host}: certificate not valid for the service: {exc.verify_message}"
        ) from None
    except ssl.SSLError as exc:
        raise _Failed(OutageType.tls_failure, f"{host}: TLS handshake failed: {exc.reason or exc}") from None
    except ConnectionResetError:
        raise _Failed(OutageType.tls_failure, f"{host}: connection reset during the TLS handshake") from None
    except (TimeoutError, ConnectionAbortedError):  # asyncio aborts a handshake past ssl_handshake_timeout
        raise _Failed(OutageType.tls_failure, f"{host}: TLS handshake timed out after {timeout:g}s") from None
    except (OSError, EOFError) as exc:
        raise _Failed(OutageType.tls_failure, f"{host}: TLS handshake failed: {exc or type(exc).__name__}") from None
    result.tls_ms = (time.perf_counter() - start) * 1000
    return stream


async def _http_get(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    parts: Any,
    host: str,
    https: bool,
    ctx: _Context,
    result: ProbeResult,
) -> tuple[int, bytes, bytes]:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    authority = parts.netloc.rpartition("@")[2]
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {ctx.opts.user_agent}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode()
    timeout = ctx.opts.step_timeout
    got_bytes = False
    start = time.perf_counter()
    try:
        writer.write(request)
        async with asyncio.timeout(timeout):
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        got_bytes = True
        result.http_ms = (time.perf_counter() - start) * 1000
        status, headers = _parse_head(head)
        async with asyncio.timeout(timeout):
            body = await _read_body(reader, headers, ctx.opts.max_body)
        result.fetch_ms = (time.perf_counter() - start) * 1000
        return status, head, body
    except (ConnectionResetError, BrokenPipeError) as exc:
        if not https and not got_bytes:
            raise _Failed(
                OutageType.tcp_reset, f"{host}: connection reset before any reply ({type(exc).__name__})"
            ) from None
        raise _Failed(OutageType.http_error, f"{host}: connection reset during the HTTP exchange") from None
    except TimeoutError:
        raise _Failed(OutageType.http_error, f"{host}: no complete HTTP reply in {timeout:g}s") from None
    except asyncio.IncompleteReadError as exc:
        raise _Failed(
            OutageType.http_error, f"{host}: connection closed after {len(exc.partial)} bytes of the reply"
        ) from None
    except asyncio.LimitOverrunError:
        raise _Failed(OutageType.http_error, f"{host}: reply head larger than {ctx.opts.max_body} bytes") from None
    except (ValueError, ssl.SSLError, OSError) as exc:
        raise _Failed(OutageType.http_error, f"{host}: malformed or failed HTTP reply: {exc}") from None


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/"):
        raise ValueError(f"not an HTTP status line: {lines[0][:60]!r}")
    status = int(rest.split(" ", 1)[0])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while len(body) < limit:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return bytes(body[:limit])
    if "content-length" in headers:
        length = int(headers["content-length"])
        return await reader.readexactly(min(length, limit))
    body = bytearray()
    while len(body) < limit:
        chunk = await reader.read(min(65536, limit - len(body)))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _judge(status: int, head: bytes, body: bytes, service: Service, ctx: _Context, kind: str) -> tuple[OutageType, str]:
    for fp in ctx.fingerprints:
        if fp.search(head) or fp.search(body):
            return OutageType.http_blockpage, f"reply matches blockpage fingerprint {fp.pattern.decode()!r}"
    if status >= 500:
        return OutageType.http_error, f"HTTP {status}"
    if kind == "page":
        if service.expect_status and status not in service.expect_status:
            return OutageType.http_blockpage, f"HTTP {status}, the real page answers {service.expect_status}"
        if not service.expect_status and status >= 400:
            kind_of = OutageType.http_blockpage if status in (403, 451) else OutageType.http_error
            return kind_of, f"HTTP {status}"
        if service.expect_contains and service.expect_contains.encode() not in body:
            return OutageType.http_blockpage, f"reply lacks {service.expect_contains!r}, which the real page contains"
    elif status >= 400:
        return OutageType.http_error, f"HTTP {status} for the transfer object"
    return OutageType.ok, ""


async def run_webprobes(
    services: list[Service], opts: WebprobeOptions, resolver: str | None = None, started_at: datetime | None = None
) -> list[ProbeResult]:
    """Probe every service's URLs `opts.attempts` times each, at most `opts.concurrency` at once."""
    ctx = _Context(opts, resolver or opts.resolver or system_resolver())
    semaphore = asyncio.Semaphore(opts.concurrency)

    async def one(url: str, kind: str, service: Service) -> ProbeResult:
        async with semaphore:
            return await probe_url(url, service, ctx, kind, started_at)

    jobs = [one(url, kind, svc) for svc in services for url, kind in service_urls(svc) for _ in range(opts.attempts)]
    return list(await asyncio.gather(*jobs))


def options_for(watch: Watch) -> WebprobeOptions:
    """The watch's `sources.webprobe.options` as typed options."""
    cfg = watch.sources.get(SOURCE)
    return WebprobeOptions.model_validate(cfg.options if cfg else {})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def webprobe_observations(
    results: list[ProbeResult], watch: Watch, vantage: Vantage, time_: datetime
) -> list[Observation]:
    """Aggregate one run's probes per service into Observations for (vantage ASN, service)."""
    assert watch.country is not None
    by_service: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_service.setdefault(r.service, []).append(r)
    payload = hashlib.sha256("\n".join(r.model_dump_json() for r in results).encode()).hexdigest()
    out: list[Observation] = []
    for service, rs in sorted(by_service.items()):
        prov = Provenance(
            request=f"webprobe vantage={vantage.name} service={service} urls={','.join(sorted({r.url for r in rs}))}",
            fetched_at=max(r.started_at for r in rs),
            payload_hash=payload,
        )

        def obs(signal: str, value: float | None, count: int | None = None) -> Observation:
            return Observation(
                time=time_,
                source=SOURCE,
                signal=signal,
                country=watch.country or "",
                region=vantage.location,
                asn=vantage.asn,
                service=service,
                value=value,
                count=count,
                provenance=prov,
            )

        n = len(rs)
        outages = Counter(r.outage for r in rs)
        out.append(obs("probe_success_rate", outages[OutageType.ok] / n, n))
        for outage, k in sorted(outages.items()):
            if outage is not OutageType.ok:
                out.append(obs(f"probe_outage_{outage.value}", float(k), n))
        for step in STEPS:
            values = [v for r in rs if (v := getattr(r, f"{step}_ms")) is not None]
            if values:
                out.append(obs(f"probe_{step}_ms", round(statistics.median(values), 3), len(values)))
                out.append(obs(f"probe_{step}_ms_p90", round(_percentile(values, 0.9), 3), len(values)))
        ok = [r for r in rs if r.outage is OutageType.ok and r.fetch_ms is not None]
        transfer = [r.fetch_ms for r in ok if r.kind == "transfer"]
        fetch = transfer or [r.fetch_ms for r in ok if r.kind == "page"]
        # No successful fetch: rtt is no data (the failure shows in probe_success_rate instead).
        out.append(obs("rtt_ms", round(statistics.median(fetch), 3) if fetch else None, len(fetch)))
    return out


def summary(results: list[ProbeResult]) -> dict[str, dict[str, int]]:
    """Probe counts per service and outage type, for logs and artifacts."""
    table: dict[str, Counter[str]] = {}
    for r in results:
        table.setdefault(r.service, Counter())[r.outage.value] += 1
    return {svc: dict(c) for svc, c in sorted(table.items())}
