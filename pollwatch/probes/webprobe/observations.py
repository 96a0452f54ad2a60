"""A run's probes aggregated into Observations per (vantage, service), and a summary for logs."""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from datetime import datetime

from pollwatch.models import Observation, Provenance
from pollwatch.playbook import Vantage, Watch
from pollwatch.probes.webprobe.model import SOURCE, STEPS, OutageType, ProbeResult


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
