"""Summaries: the overall figures over scenarios (recall, precision, false alerts per watch-week, time to
detect, kind and cause accuracy), one line per scenario, and what responders said of live incidents."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pollwatch.evaluate.scoring import LabelOutcome, ScenarioResult
from pollwatch.models import Incident, IncidentKind, iso


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    idx = min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))
    return v[idx]


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    """num / den rounded, or None when there is nothing to divide by."""
    return round(num / den, digits) if den else None


def _kind_figures(kind: IncidentKind, outcomes: list[LabelOutcome]) -> dict[str, Any]:
    """Recall, time to detect and kind accuracy over one kind's labels."""
    det = [lo for lo in outcomes if lo.detected]
    ttd = [lo.ttd_min for lo in det if lo.ttd_min is not None]
    return {
        "labels": len(outcomes),
        "detected": len(det),
        "recall": round(len(det) / len(outcomes), 4),
        "ttd_median_min": _pct(ttd, 0.5),
        "ttd_p95_min": _pct(ttd, 0.95),
        "kind_accuracy": _ratio(sum(lo.kind is kind for lo in det), len(det)),
    }


def _alert_figures(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """Precision and false alerts: per week of the event scenarios, and per watch-week of the clean ones."""
    clean = [r for r in results if r.clean]
    clean_weeks = sum(r.hours for r in clean) / 168
    event_weeks = sum(r.hours for r in results if not r.clean) / 168
    incidents = sum(r.incidents for r in results if not r.clean)
    matched = sum(r.matched_incidents for r in results if not r.clean)
    return {
        "precision": _ratio(matched, incidents),
        "incidents": incidents,
        "false_alerts_in_event_scenarios_per_week": _ratio(incidents - matched, event_weeks, 3),
        "clean_weeks": round(clean_weeks, 2),
        "false_alerts_per_watch_week": _ratio(sum(r.false_alerts for r in clean), clean_weeks, 3),
    }


def summarize(results: Sequence[ScenarioResult], native_step_min: float = 5.0) -> dict[str, Any]:
    """Overall figures over scenarios (clean ones count towards false alerts per watch-week only)."""
    outcomes = [lo for r in results if not r.clean for lo in r.labels]
    detected = [lo for lo in outcomes if lo.detected]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in IncidentKind:
        ks = [lo for lo in outcomes if lo.label.kind is kind]
        if ks:
            by_kind[kind.value] = _kind_figures(kind, ks)
    ttd = [lo.ttd_min for lo in detected if lo.ttd_min is not None]
    nationwide = [
        lo.ttd_min for lo in detected if lo.label.kind is IncidentKind.nationwide_outage and lo.ttd_min is not None
    ]

    def group_recall(kinds: tuple[IncidentKind, ...]) -> float | None:
        g = [lo for lo in outcomes if lo.label.kind in kinds]
        return _ratio(sum(lo.detected for lo in g), len(g))

    return {
        "labels": len(outcomes),
        "detected": len(detected),
        "recall": _ratio(len(detected), len(outcomes)),
        "recall_nationwide_regional": group_recall((IncidentKind.nationwide_outage, IncidentKind.regional_outage)),
        "recall_service_block": group_recall((IncidentKind.service_block,)),
        **_alert_figures(results),
        "ttd_median_min": _pct(ttd, 0.5),
        "ttd_p95_min": _pct(ttd, 0.95),
        "nationwide_max_ttd_steps": _ratio(max(nationwide), native_step_min, 2) if nationwide else None,
        "kind_accuracy": _ratio(sum(lo.kind is lo.label.kind for lo in detected), len(detected)),
        "cause_accuracy": _ratio(sum(lo.cause is lo.label.cause for lo in detected), len(detected)),
        "by_kind": by_kind,
    }


def scenario_line(r: ScenarioResult) -> str:
    if r.clean:
        return f"{r.name:<28} clean {r.hours / 24:.1f} d: {r.incidents} false alert(s)"
    det = sum(lo.detected for lo in r.labels)
    ttd = [lo.ttd_min for lo in r.labels if lo.ttd_min is not None]
    kind_ok = sum(lo.kind is lo.label.kind for lo in r.labels if lo.detected)
    cause_ok = sum(lo.cause is lo.label.cause for lo in r.labels if lo.detected)
    prec = f"{r.matched_incidents / r.incidents:.2f}" if r.incidents else "-"
    return (
        f"{r.name:<28} recall {det}/{len(r.labels)}  precision {prec} ({r.incidents} incidents)  "
        f"ttd median {_pct(ttd, 0.5)} min p95 {_pct(ttd, 0.95)} min  kind {kind_ok}/{det}  cause {cause_ok}/{det}"
    )


def responder_verdicts(incidents: Sequence[Incident]) -> dict[str, Any]:
    """What responders said of live incidents (Slack actions, `pollwatch override`): the labels live use gives.

    An incident closed as a false alarm was not an outage; a cause a responder confirmed or set is
    the cause. `precision_judged` is the share of judged incidents that were outages;
    `cause_accuracy_judged` the share of responder-set causes that attribution had right. The
    `labels` list is what calibration can take (incident, verdict, attributed and responder cause).
    """
    labels = []
    for inc in incidents:
        fa = inc.false_alarm
        prev = (inc.override or {}).get("previous") or {}
        if fa is None and not inc.override:
            continue
        labels.append(
            {
                "incident": inc.id,
                "watch": inc.watch,
                "kind": inc.kind.value,
                "start": iso(inc.start),
                "verdict": "false_alarm"
                if fa
                else ("cause_confirmed" if prev.get("cause") == inc.override["cause"] else "cause_changed"),
                "attributed_cause": prev.get("cause"),
                "attributed_confidence": prev.get("confidence"),
                "responder_cause": (inc.override or {}).get("cause"),
                "by": (fa or inc.override or {}).get("by"),
                "why": (fa or inc.override or {}).get("why"),
            }
        )
    judged = len(labels)
    false_alarms = sum(1 for lb in labels if lb["verdict"] == "false_alarm")
    causes = [lb for lb in labels if lb["verdict"] != "false_alarm" and lb["attributed_cause"]]
    right = sum(1 for lb in causes if lb["verdict"] == "cause_confirmed")
    return {
        "incidents": len(incidents),
        "judged": judged,
        "false_alarms": false_alarms,
        "precision_judged": round(1 - false_alarms / judged, 3) if judged else None,
        "causes_judged": len(causes),
        "cause_accuracy_judged": round(right / len(causes), 3) if causes else None,
        "labels": labels,
    }
