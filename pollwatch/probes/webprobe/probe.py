"""One probe of a URL, step by step (DNS, TCP, TLS, HTTP; the first failing step names the outage), and a
run of probes over a watch's services."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from pollwatch.playbook import Service
from pollwatch.probes.dns import DnsStatus, is_bogon, resolve, system_resolver
from pollwatch.probes.webprobe.model import OutageType, ProbeResult, WebprobeOptions, service_urls


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
