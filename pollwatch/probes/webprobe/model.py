"""What a web probe is configured with (`sources.webprobe.options`) and what it finds: the outage types, one
probe's result, the URLs a service is probed with."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pollwatch.playbook import Service, Watch

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


def service_urls(service: Service) -> list[tuple[str, str]]:
    """(url, kind) pairs a service is probed with: its URLs (else https://<domain>/) and its transfer object."""
    urls = [(u, "page") for u in service.urls] or [(f"https://{d}/", "page") for d in service.domains]
    if service.transfer_url:
        urls.append((service.transfer_url, "transfer"))
    return urls


def options_for(watch: Watch) -> WebprobeOptions:
    """The watch's `sources.webprobe.options` as typed options."""
    cfg = watch.sources.get(SOURCE)
    return WebprobeOptions.model_validate(cfg.options if cfg else {})
