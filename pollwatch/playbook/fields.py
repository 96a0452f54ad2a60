"""The playbook's value types and validators: durations, ASNs, names that must be safe as keys and file names,
local times, OONI test names; the strict base model and PlaybookError."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from pollwatch.timeutil import format_duration, parse_duration, parse_time


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]


def _asn(v: Any) -> Any:
    """An ASN as an integer; "AS20294" (how RIPEstat, OONI and IODA write them) is accepted, `true` is not 1."""
    if isinstance(v, bool):
        raise ValueError(f"expected an AS number such as 20294, got {v!r}")
    if isinstance(v, str):
        text = v.strip()
        digits = text[2:].strip() if text[:2].upper() == "AS" else text
        if not digits.isdigit():
            raise ValueError(f"expected an AS number such as 20294 (or 'AS20294'), got {v!r}")
        return int(digits)
    return v


ASN = Annotated[int, BeforeValidator(_asn), Field(gt=0, lt=2**32)]

# Watch names end up in Prefect artifact keys (lowercase letters, digits and dashes only: prefect/types/names.py,
# raise_on_name_alphanumeric_dashes_only), deployment and flow-run names, file names under reports/ and Slack text.
WATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
# Prefect refuses these in flow, deployment, work-pool and block names (prefect/types/names.py BANNED_CHARACTERS)
PREFECT_BANNED = "/%&><"


def slug(text: str) -> str:
    """`text` as lowercase letters, digits and dashes (what a watch name must be)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "watch"


def _watch_name(v: str) -> str:
    if not WATCH_NAME.match(v):
        raise ValueError(
            f"{v!r}: a name may hold only lowercase letters, digits and dashes (Prefect's artifact keys and "
            f"the report's file name take nothing else), at most 100, starting with a letter or digit: "
            f"write {slug(v)!r}"
        )
    return v


def _prefect_name(v: str) -> str:
    bad = sorted({c for c in v if c in PREFECT_BANNED or ord(c) < 32})
    if not v.strip() or bad:
        raise ValueError(
            f"{v!r}: Prefect refuses names that are empty or hold any of {' '.join(PREFECT_BANNED)} or control "
            f"characters{' (found ' + ' '.join(repr(c) for c in bad) + ')' if bad else ''}"
        )
    return v


def _entity_part(v: str) -> str:
    """Names that go into entity keys (`KZ/region=Tehran/Rey/asn=9198`) cannot hold `=`: a key's fields start
    at `/field=`, so a name without `=` cannot fake one. A `/` is allowed (Monash names a county `Tehran/Rey`)."""
    bad = sorted({c for c in v if c == "=" or ord(c) < 32})
    if not v.strip() or bad:
        raise ValueError(f"{v!r}: expected a non-empty name without '=' or control characters")
    return v


def check_local_time(v: str | None) -> str | None:
    """A local time as the watch writes it: 'HH:MM' on election day, or ISO 8601
    'YYYY-MM-DDTHH:MM' (a zone optional).
    """
    if v is None:
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected a local time 'HH:MM' or 'YYYY-MM-DDTHH:MM' in quotes, got {v!r}")
    text = v.strip()
    try:
        parse_time(text) if ("T" in text or len(text) > 8) else time.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected a local time 'HH:MM' (24-hour, e.g. '07:00' or '19:30') or 'YYYY-MM-DDTHH:MM', got {v!r}"
        ) from None
    return text


LocalTime = Annotated[str, BeforeValidator(check_local_time)]


class PlaybookError(ValueError):
    """A playbook failed to load; `problems` holds one `file:line: field: message` per issue."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid playbook:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


OONI_TESTS = frozenset(
    {
        "bridge_reachability",
        "dash",
        "dns_consistency",
        "dnscheck",
        "facebook_messenger",
        "http_header_field_manipulation",
        "http_host",
        "http_invalid_request_line",
        "http_requests",
        "meek_fronted_requests_test",
        "multi_protocol_traceroute",
        "ndt",
        "psiphon",
        "riseupvpn",
        "signal",
        "stunreachability",
        "tcp_connect",
        "telegram",
        "tor",
        "torsf",
        "urlgetter",
        "vanilla_tor",
        "web_connectivity",
        "whatsapp",
        "openvpn",
        "echcheck",
        "browser_web",
        "sni_blocking",
        "tlsmiddlebox",
        "portfiltering",
        "quicping",
        "tcpping",
        "tlsping",
        "simplequicping",
        "dnsping",
    }
)


def _ooni_test(v: str) -> str:
    if v not in OONI_TESTS:
        import difflib

        near = difflib.get_close_matches(
            v.lower().replace("-", "_").replace(" ", "_"), sorted(OONI_TESTS), n=1, cutoff=0.6
        )
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ValueError(
            f"{v!r} is not an OONI test name: {hint}for websites use 'web_connectivity'; apps: whatsapp, "
            "facebook_messenger, telegram, signal; circumvention: tor, vanilla_tor, torsf, psiphon, riseupvpn, "
            "openvpn (the full list is in docs/playbooks.md)"
        )
    return v
