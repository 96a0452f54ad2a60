"""`pollwatch evaluate`: replay labeled scenarios (simulated, and real when available) and score detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.bars import progress_bar
from pollwatch.cli.common import fail


def _print_case(r) -> None:  # type: ignore[no-untyped-def]
    from pollwatch.evaluate_cases import case_line

    typer.echo(case_line(r))
    for extra in r.extra.values():
        for k, v in extra.items():
            if isinstance(v, list):
                typer.echo(f"    {k}: {len(v)}")
                for item in v:
                    typer.echo(f"      - {item}")
            else:
                typer.echo(f"    {k}: {v}")


def _or_dash(v: object) -> str:
    """A figure, or '-' when there was nothing to compute it from (no case run, nothing detected)."""
    return "-" if v is None else str(v)


def run_case_files(cases: list[Path], real: Optional[Path], out: Optional[Path]) -> None:
    """`pollwatch evaluate CASE.yaml ...`: each case's recall, false alerts, time to detect and cause accuracy."""
    from pollwatch.evaluate import run_case, summarize
    from pollwatch.settings import real_data_dir
    from pollwatch.evaluate_cases import CaseError, load_case, missing_files
    from pollwatch.jsonl import FormatError

    root = real or real_data_dir()
    results, skipped = [], []
    with progress_bar("evaluate") as bar:
        for i, path in enumerate(cases):
            bar(path.name, i, len(cases))
            try:
                case = load_case(path)
                missing = missing_files(case, root)
                if missing:
                    skipped.append(path)
                    typer.echo(f"{case.name:<28} skipped: {', '.join(missing)} not found")
                    continue
                r = run_case(case, root)
            except (CaseError, FormatError, ValueError) as exc:
                typer.secho(str(exc), err=True, fg=typer.colors.RED)
                raise typer.Exit(2)
            results.append(r)
            _print_case(r)
    overall = summarize(results)
    ttd = overall["ttd_median_min"]
    typer.echo(
        f"overall: {len(results)} case(s), {len(skipped)} skipped; recall {_or_dash(overall['recall'])}, "
        f"false alerts {sum(r.false_alerts for r in results)}, "
        f"time to detect median {'-' if ttd is None else f'{ttd} min'}, "
        f"cause accuracy {_or_dash(overall['cause_accuracy'])}"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {"cases": [r.model_dump(mode="json") for r in results], "overall": overall}, indent=2, default=str
            )
        )
        typer.echo(f"figures written to {out}")


def evaluate_cmd(
    cases: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Evaluation case files (docs/detection.md); none: the simulated suites and the built-in real cases."
        ),
    ] = None,
    watch: Annotated[str, typer.Option("--watch", help="Watch the simulated scenarios use.")] = "kz-2019-presidential",
    scenarios: Annotated[int, typer.Option("--scenarios", help="Simulated scenarios with events.")] = 6,
    events: Annotated[int, typer.Option("--events", help="Random events per scenario (all kinds, 12 h apart).")] = 10,
    clean_weeks: Annotated[int, typer.Option("--clean-weeks", help="Event-free simulated weeks (false alerts).")] = 2,
    seed: Annotated[int, typer.Option("--seed")] = 100,
    hard: Annotated[
        bool, typer.Option("--hard", help="Partial outages and blocks, milder throttling, 3 % missing points.")
    ] = False,
    real: Annotated[
        Optional[Path], typer.Option("--real", help="Real data folder (default ../shared/data/real when it exists).")
    ] = None,
    no_real: Annotated[bool, typer.Option("--no-real", help="Skip the real data.")] = False,
    out: Annotated[Optional[Path], typer.Option("--json", help="Write every figure as JSON here.")] = None,
    live: Annotated[
        Optional[str],
        typer.Option(
            "--live",
            help="Instead: what responders said of this watch's live incidents "
            "(false alarms, causes confirmed or changed), from the store.",
        ),
    ] = None,
) -> None:
    """Replay labeled scenarios; print recall, precision, false alerts per watch-week, time
    to detect, kind and cause accuracy.
    """
    if cases:
        run_case_files(cases, real, out)
        return
    from pollwatch.evaluate import clean_suite, generated_suite, real_suite, scenario_line, summarize
    from pollwatch.playbook import PlaybookError, find_watch, load_watch
    from pollwatch.settings import real_data_dir

    if live:
        _live(live, out)
        return

    try:
        w = load_watch(find_watch(watch))
    except PlaybookError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    typer.secho(
        f"generated suite{' (hard)' if hard else ''}: {scenarios} scenario(s) x {events} events, {clean_weeks} "
        "clean week(s),"
        f" watch {w.name}",
        bold=True,
    )
    with progress_bar("evaluate"):  # the suites tell it their scenarios
        results = (
            generated_suite(w, scenarios=scenarios, events=events, seed=seed, hard=hard) if scenarios and events else []
        )
        results += clean_suite(w, weeks=clean_weeks, seed=seed + 400) if clean_weeks else []
    for r in results:
        typer.echo(scenario_line(r))
    overall = summarize(results)
    typer.secho("overall (generated):", bold=True)
    for k, v in overall.items():
        if k != "by_kind":
            typer.echo(f"  {k}: {v}")
    for kind, figures in overall["by_kind"].items():
        typer.echo(f"  {kind:<20} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    report: dict = {"generated": {"scenarios": [r.model_dump(mode="json") for r in results], "overall": overall}}
    root = real or real_data_dir()
    if not no_real and root is not None and root.is_dir():
        typer.secho(f"real data: {root}", bold=True)
        with progress_bar("evaluate"):
            real_results = real_suite(root)
        for r in real_results:
            _print_case(r)
        report["real"] = {
            "scenarios": [r.model_dump(mode="json") for r in real_results],
            "overall": summarize(real_results),
        }
    elif not no_real:
        typer.echo(f"real data: {root or '../shared/data/real'} not found, skipped")
    if out:
        from pollwatch.sinks import OutputError, write_output

        try:
            write_output(out, json.dumps(report, indent=2, default=str))
        except OutputError as exc:
            fail(str(exc), 1)
        typer.echo(f"figures written to {out}")


def _live(watch: str, out: Optional[Path]) -> None:
    """Responders' verdicts on a watch's live incidents: the labels live use gives evaluation and calibration."""
    from pollwatch import store
    from pollwatch.evaluate import responder_verdicts

    with store.session_scope() as s:
        v = responder_verdicts(store.list_incidents(s, watch))
    typer.echo(
        f"{watch}: {v['incidents']} incident(s), {v['judged']} judged by responders; {v['false_alarms']} false "
        "alarm(s); "
        f"precision as judged {v['precision_judged']}; cause accuracy as judged {v['cause_accuracy_judged']} "
        f"({v['causes_judged']} cause(s))"
    )
    for lb in v["labels"]:
        typer.echo(
            f"  {lb['incident']} {lb['kind']} {lb['start']}: {lb['verdict']} (attributed {lb['attributed_cause']}, "
            f"responder {lb['responder_cause'] or '-'}) by {lb['by']}: {lb['why']}"
        )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(v, indent=2, default=str))
        typer.echo(f"figures written to {out}")
