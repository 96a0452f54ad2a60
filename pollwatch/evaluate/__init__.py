"""Evaluation: replay labeled scenarios through the analysis stages and score the incidents.

Scores per scenario and overall (docs/detection.md):
- event-level recall: a label counts as detected when an incident of the same country and the
  same family (connectivity for nationwide/regional/network outages, service, circumvention,
  performance for throttling) overlaps it in time;
- precision: the share of incidents that overlap some label of their country and family;
- false alerts per watch-week: incidents opened on event-free (clean) data, per 7 days watched;
- time to detect: detected_at minus the labeled start (median, p95), and for nationwide outages
  in native steps of the finest connectivity signal;
- kind accuracy and cause accuracy over the detected labels.

Inputs: seeded simulator scenarios (`generated_suite`, `clean_suite`) and, when the shared real
data exists, the real events through `pollwatch.adapters` (`real_suite`).

Modules: `scoring` (one scenario's labels against its incidents; the replay), `suites` (generated, hard,
clean and real scenarios) and `summary` (the overall figures, one line per scenario, responders' verdicts).
"""

from pollwatch.evaluate.scoring import (
    EVAL_PLAYBOOKS,
    KIND_FAMILY,
    LabelOutcome,
    ScenarioResult,
    overlaps,
    run_watch,
    score,
)
from pollwatch.evaluate.suites import (
    BLOCK_DEPTH,
    HARD_BLOCK_DEPTH,
    SERVICE_BASE,
    clean_suite,
    generated_suite,
    harden,
    real_suite,
    run_case,
)
from pollwatch.evaluate.summary import responder_verdicts, scenario_line, summarize

__all__ = [
    "BLOCK_DEPTH",
    "EVAL_PLAYBOOKS",
    "HARD_BLOCK_DEPTH",
    "KIND_FAMILY",
    "SERVICE_BASE",
    "LabelOutcome",
    "ScenarioResult",
    "clean_suite",
    "generated_suite",
    "harden",
    "overlaps",
    "real_suite",
    "responder_verdicts",
    "run_case",
    "run_watch",
    "scenario_line",
    "score",
    "summarize",
]
