"""Own vantage-point instruments: web probes (DNS → TCP → TLS → HTTP per service) and diffscans
(reachability sweeps of sampled addresses from the country's prefixes).

- `pollwatch.probes.webprobe`: `run_webprobes`, `webprobe_observations`, `OutageType`.
- `pollwatch.probes.diffscan`: `run_diffscan`, `diffscan_observations`.
- `pollwatch.probes.dns`: the UDP resolver query and bogon checks the web probe uses.

Pure asyncio and the standard library (plus dnspython); no Prefect. `tasks/probe.py` wraps them and
`flows/probe.py` is the flow a vantage's worker runs. See docs/probes.md.
"""
