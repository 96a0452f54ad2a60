"""`pollwatch probe ...`: run the own-vantage instruments by hand and deploy them to vantages.

- `pollwatch probe web WATCH` runs the web probes of a watch's services from this machine and
  prints one line per URL (outage type, step times); no Prefect involved.
- `pollwatch probe deploy WATCH` creates the `vantage-probe/<vantage>` deployment of every vantage
  on its work pool (flows/probe.py; the only command here that imports flows, lazily).
See docs/probes.md.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.common import WatchArg, fail, option_watch, quiet_prefect

app = typer.Typer(help="Own vantage points: web probes and diffscans (docs/probes.md).", no_args_is_help=True)


@app.command("web")
def probe_web(
    watch: WatchArg,
    vantage: Annotated[
        Optional[str],
        typer.Option("--vantage", help="Probe as this vantage of the watch (its resolver, ASN, location)."),
    ] = None,
    service: Annotated[Optional[list[str]], typer.Option("--service", "-s", help="Only these services.")] = None,
    resolver: Annotated[
        Optional[str], typer.Option("--resolver", help="DNS resolver 'address[:port]' (overrides the watch).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the probe results as JSON lines.")] = False,
) -> None:
    """Probe the watch's services from this machine: DNS → TCP → TLS → HTTP, one line per probe."""
    from pollwatch.probes.webprobe import options_for, run_webprobes

    w = option_watch(watch)
    services = [s for s in w.services if not service or s.name in service]
    if not services:
        fail(f"no services to probe in {w.name}" + (f" named {', '.join(service)}" if service else ""))
    v = next((x for x in w.vantages if x.name == vantage), None)
    if vantage and v is None:
        fail(f"watch {w.name} has no vantage {vantage!r}")
    results = asyncio.run(run_webprobes(services, options_for(w), resolver=resolver or (v.resolver if v else None)))
    for r in results:
        if as_json:
            typer.echo(r.model_dump_json())
            continue
        steps = " ".join(
            f"{k}={getattr(r, k + '_ms'):.0f}ms"
            for k in ("dns", "tcp", "tls", "http", "fetch")
            if getattr(r, k + "_ms") is not None
        )
        typer.echo(f"{r.service:<12} {r.outage.value:<15} {r.url}  {steps}  {r.detail}".rstrip())


@app.command("deploy")
def probe_deploy(
    watch: WatchArg,
    working_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--working-dir", help="Where the vantages keep their checkout of pollwatch (default: this one's path)."
        ),
    ] = None,
) -> None:
    """Create or update the probe deployment of every vantage of the watch on its work pool."""

    w = option_watch(watch)
    if not w.vantages:
        fail(f"watch {w.name} lists no vantages (add `vantages:` with name and work_pool)")
    quiet_prefect()
    from pollwatch.flows.probe import deploy_vantages

    ids = deploy_vantages(w, working_dir=working_dir)
    typer.echo(
        json.dumps(
            {
                v.name: {"work_pool": v.work_pool, "deployment": f"vantage-probe/{v.name}", "id": i}
                for v, i in zip(w.vantages, ids)
            },
            indent=2,
        )
    )
