"""Attribution benchmark: government-directed vs other known causes on the IODA curated outage list.

Cross-validated balanced accuracy of the whole scorer (pollwatch.attribute's evidence items,
calibrated weights fitted on the training folds by pollwatch.calibrate, expert weights fixed):
stratified 5-fold repeated 10 times (the goal), plus whole countries held out (harder: exam
shutdowns in Syria and Iraq dominate the government-directed rows), and the weights in code on the
full list. Also the simulator's election day: the cause each injected event is attributed.

    python bench/attribution.py      # skips cleanly when ../shared/data/real is absent
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.attribute import CALIBRATED_WEIGHTS  # noqa: E402
from pollwatch.calibrate import balanced_accuracy, cross_validate, default_csv, fit, read_events  # noqa: E402

GOAL = 0.85


def simulated_day() -> None:
    from pollwatch.pipeline import analyse
    from pollwatch.playbook import PLAYBOOKS_DIR, load_watch
    from pollwatch.simulate import demo_range, election_day_events, simulate

    w = load_watch(PLAYBOOKS_DIR / "watches" / "kz-2019-presidential.yaml")
    h0, day, end = demo_range(w)
    sc = simulate(w, h0, end, election_day_events(w), seed=3)
    out = analyse(w, None, w.tick_times(day, end), sc.observations)
    print("simulated election day (KZ 2019): injected cause -> attributed cause (confidence)")
    agree = 0
    for lb in sc.labels:
        inc = next(
            (i for i in out.incidents if i.kind is lb.kind and i.start <= lb.end and (i.end or lb.end) >= lb.start),
            None,
        )
        got = f"{inc.cause.value} ({inc.cause_confidence:.0%})" if inc else "not detected"
        agree += bool(inc and inc.cause is lb.cause)
        print(f"  {lb.kind.value:<20} {lb.cause.value:<20} -> {got}")
    print(f"  {agree}/{len(sc.labels)} match the injected cause")


def main() -> int:
    path = default_csv()
    if path is None:
        print("SKIP attribution: ../shared/data/real/ground_truth/ioda_curated_outages_2018_2020.csv is absent")
        return 0
    t0 = time.monotonic()
    events = read_events(path)
    known = [e for e in events if e.label is not None]
    n_gov = sum(e.label == 1 for e in known)
    print(
        f"{path.name}: {len(events)} events, {len(known)} with a known cause ({n_gov} government-directed, "
        f"{len(known) - n_gov} other)"
    )
    strat = cross_validate(events, folds=5, repeats=10)
    grouped = cross_validate(events, folds=5, group_by_country=True)
    in_code = balanced_accuracy(events, CALIBRATED_WEIGHTS)
    refit = fit(events)
    print(
        f"balanced accuracy, stratified 5-fold x10: mean {statistics.mean(strat):.3f} (min {min(strat):.3f}, max "
        f"{max(strat):.3f})"
    )
    print(f"balanced accuracy, whole countries held out (5 folds): mean {statistics.mean(grouped):.3f}")
    print(f"balanced accuracy of the weights in code on the full list (in-sample): {in_code:.3f}")
    drift = max(abs(refit[k] - CALIBRATED_WEIGHTS.get(k, 0.0)) for k in refit)
    print(f"largest difference between a re-fit and the weights in code: {drift:.2f}")
    print(f"({time.monotonic() - t0:.1f} s)")
    simulated_day()
    mean = statistics.mean(strat)
    print(
        f"RESULT name=attribution_balanced_accuracy_cv figure={mean:.3f} goal={GOAL} "
        f"met={'yes' if mean >= GOAL else 'no'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
