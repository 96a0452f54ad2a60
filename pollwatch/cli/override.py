"""`pollwatch override`: a responder confirms or overrides an incident's attribution (docs/attribution.md)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from pollwatch.cli.common import echo
from pollwatch.models import Cause

CAUSES = ", ".join(c.value for c in Cause)


def override(
    incident: Annotated[str, typer.Argument(help="Incident id (or a unique prefix of it), as shown in the alert.")],
    cause: Annotated[
        str, typer.Option("--cause", help=f"The cause the responder sets ({CAUSES}); the current one confirms it.")
    ],
    by: Annotated[
        str,
        typer.Option(
            "--by", "--who", help="Who decides (name or handle); kept with the override and in the audit log."
        ),
    ],
    why: Annotated[
        str, typer.Option("--why", help="Why: the source or reasoning; kept with the override and in the audit log.")
    ],
    at: Annotated[
        Optional[str], typer.Option("--at", help="When the decision was made (ISO 8601; default now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the incident JSON.")] = False,
) -> None:
    """Confirm or override the cause of an incident; later alerts show it, with who and why."""
    from pollwatch.override import OverrideError, UnknownIncident, override_incident
    from pollwatch.timeutil import parse_time

    try:
        when = parse_time(at) if at else None
        inc, alerts = override_incident(incident, cause, by, why, at=when)
    except (OverrideError, ValueError) as exc:
        echo(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(1 if isinstance(exc, UnknownIncident) else 2) from None
    if as_json:
        typer.echo(json.dumps(inc.to_public(), indent=2))
        return
    prev = (inc.override or {}).get("previous", {})
    typer.echo(
        f"incident {inc.id}: cause {inc.cause.value} set by {by.strip()} (was {prev.get('cause')} at "
        f"{float(prev.get('confidence') or 0):.0%})"
    )
    typer.echo(
        f"{len(alerts)} update alert(s) queued"
        if alerts
        else "no alert queued now (watch file not found); the next alert shows it"
    )
