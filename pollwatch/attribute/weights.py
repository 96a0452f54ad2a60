"""The evidence items' weights: fitted on IODA's curated outage list where it can show the item, hand-set
(next to each item, in its `@evidence(...)`) where it cannot. Importing this module registers every item, in
the order they are gathered and reported."""

from __future__ import annotations

# registers the items: the signals' first, then the timing's (the order they are gathered and reported in)
from pollwatch.attribute import evidence_signals, evidence_timing  # noqa: F401
from pollwatch.attribute.registry import HAND_SET, REGISTRY
from pollwatch.playbook import Watch

# Fitted by `python -m pollwatch.calibrate` on ground_truth/ioda_curated_outages_2018_2020.csv
# (government-ordered and exam shutdowns vs cable cuts, power, weather and technical failures;
# L2-regularised logistic regression with balanced class weights). Re-fit and paste when the
# feature definitions change; bench/attribution.py reports their cross-validated accuracy.
CALIBRATED_WEIGHTS: dict[str, float] = {
    "bias": -2.88,
    "onset_on_the_hour": 1.16,
    "onset_on_the_half_hour": 1.47,
    "all_signals_agree": 0.76,
    "nationwide_scope": 1.5,
    "single_network": -0.84,
    "recurrence_one_day": 1.22,
    "recurrence_same_time": 1.51,
    "recurring_schedule": 1.7,
    "other_countries_same_time": -1.76,
}

# Hand-set (the curated list cannot show these), sized against the calibrated ones; each item's reason is on it.
EXPERT_WEIGHTS: dict[str, float] = dict(HAND_SET)

DEFAULT_WEIGHTS: dict[str, float] = {**CALIBRATED_WEIGHTS, **EXPERT_WEIGHTS}

_unweighted = sorted(set(REGISTRY) - set(DEFAULT_WEIGHTS))
if _unweighted:
    raise RuntimeError(f"evidence items without a weight (fit them, or give a hand-set one): {', '.join(_unweighted)}")


def weights_for(watch: Watch) -> dict[str, float]:
    """The fitted and hand-set weights (of every item registered so far) with the watch's playbook overrides
    (`attribution.weights`) over them."""
    return {**CALIBRATED_WEIGHTS, **HAND_SET, **watch.attribution.weights}
