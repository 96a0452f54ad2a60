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

Modules: `model` (options, outage types, a probe's result), `probe` (the steps, a run of probes) and
`observations` (aggregation into Observations).
"""

from pollwatch.probes.webprobe.model import (
    SOURCE,
    STEPS,
    OutageType,
    ProbeResult,
    WebprobeOptions,
    options_for,
    service_urls,
)
from pollwatch.probes.webprobe.observations import summary, webprobe_observations
from pollwatch.probes.webprobe.probe import probe_url, run_webprobes

__all__ = [
    "SOURCE",
    "STEPS",
    "OutageType",
    "ProbeResult",
    "WebprobeOptions",
    "options_for",
    "probe_url",
    "run_webprobes",
    "service_urls",
    "summary",
    "webprobe_observations",
]
