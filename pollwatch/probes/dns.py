"""DNS helpers for the web probe: one A/AAAA query over UDP to a chosen resolver, and bogon checks.

The query goes to the resolver the vantage names (its ISP's, usually), not through the system's
stub, so that DNS tampering by that resolver is what we see.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from enum import StrEnum

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype


class DnsStatus(StrEnum):
    ok = "ok"
    nxdomain = "nxdomain"
    timeout = "timeout"
    error = "error"  # SERVFAIL, REFUSED, an empty answer, a malformed reply


@dataclass(slots=True)
class DnsAnswer:
    status: DnsStatus
    addresses: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    detail: str = ""


def parse_resolver(text: str, default_port: int = 53) -> tuple[str, int]:
    """`'192.0.2.53'`, `'192.0.2.53:5353'`, `'[2001:db8::53]:53'` → (address, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def system_resolver() -> str:
    """The first nameserver of the machine's resolver configuration (/etc/resolv.conf)."""
    import dns.resolver

    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except Exception:  # no resolv.conf: dnspython raises NoResolverConfiguration
        servers = []
    if not servers:
        raise ValueError("no resolver configured: set sources.webprobe.options.resolver or the vantage's resolver")
    return str(servers[0])


async def resolve(name: str, resolver: str, timeout: float, rdtype: str = "A") -> DnsAnswer:
    """Ask `resolver` (address[:port]) for `name`'s addresses over UDP, timing the exchange."""
    where, port = parse_resolver(resolver)
    query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    start = time.perf_counter()
    try:
        reply = await dns.asyncquery.udp(query, where, timeout=timeout, port=port, ignore_unexpected=True)
    except dns.exception.Timeout:
        return DnsAnswer(
            DnsStatus.timeout,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            detail=f"no reply from {resolver} in {timeout:g}s",
        )
    except (dns.exception.DNSException, OSError) as exc:
        return DnsAnswer(
            DnsStatus.error, elapsed_ms=(time.perf_counter() - start) * 1000, detail=f"{type(exc).__name__}: {exc}"
        )
    elapsed = (time.perf_counter() - start) * 1000
    rcode = reply.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return DnsAnswer(DnsStatus.nxdomain, elapsed_ms=elapsed, detail="NXDOMAIN")
    if rcode != dns.rcode.NOERROR:
        return DnsAnswer(DnsStatus.error, elapsed_ms=elapsed, detail=dns.rcode.to_text(rcode))
    wanted = dns.rdatatype.from_text(rdtype)
    addresses = [rd.address for rrset in reply.answer if rrset.rdtype == wanted for rd in rrset]
    if not addresses:
        return DnsAnswer(DnsStatus.error, elapsed_ms=elapsed, detail="no address in the answer (NODATA)")
    return DnsAnswer(DnsStatus.ok, addresses=addresses, elapsed_ms=elapsed)


def is_bogon(address: str, exempt: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None) -> bool:
    """True for private, loopback, link-local, reserved, multicast or unspecified addresses.

    `exempt` networks are never bogons (e.g. 127.0.0.0/8 when the test's services live on loopback).
    """
    ip = ipaddress.ip_address(address)
    if exempt and any(ip in net for net in exempt if net.version == ip.version):
        return False
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or (ip.version == 4 and ip in _SHARED_CGNAT)
    )


_SHARED_CGNAT = ipaddress.ip_network("100.64.0.0/10")
