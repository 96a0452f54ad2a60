"""Detection quality against issue 5's goals: the generated suite (standard and --hard), clean
weeks, and the real events when ../shared/data/real exists. Prints figures, then RESULT lines.

    python bench/detection.py [--scenarios 6] [--events 10] [--clean-weeks 2] [--no-hard]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.evaluate import clean_suite, default_real_root, generated_suite, real_suite, scenario_line, summarize  # noqa: E402
from pollwatch.playbook import find_watch, load_watch  # noqa: E402


def result(name: str, figure: object, goal: str, met: bool) -> None:
    print(f"RESULT name={name} figure={figure} goal={goal} met={'yes' if met else 'no'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=6)
    ap.add_argument("--events", type=int, default=10)
    ap.add_argument("--clean-weeks", type=int, default=2)
    ap.add_argument("--no-hard", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    w = load_watch(find_watch("kz-2019-presidential"))
    std = generated_suite(w, args.scenarios, args.events)
    clean = clean_suite(w, args.clean_weeks)
    hard = [] if args.no_hard else generated_suite(w, args.scenarios, args.events, seed=300, hard=True)
    for r in std + hard + clean:
        print(scenario_line(r))
    s = summarize(std + clean)
    print("standard:", {k: v for k, v in s.items() if k != "by_kind"})
    if hard:
        h = summarize(hard)
        print("hard:", {k: v for k, v in h.items() if k != "by_kind"})
        for kind, f in h["by_kind"].items():
            print(f"  hard {kind:<20} {f}")
    root = default_real_root()
    real = real_suite(root) if root else []
    for r in real:
        print(scenario_line(r))
        for extra in r.extra.values():
            print("   ", {k: v for k, v in extra.items() if k != "anomalies"})
    print(f"({time.perf_counter() - t0:.0f} s)")

    nr, sb = s["recall_nationwide_regional"], s["recall_service_block"]
    result("recall_nationwide_regional", nr, ">=0.98", nr is not None and nr >= 0.98)
    result("recall_service_block", sb, ">=0.95", sb is not None and sb >= 0.95)
    fa = s["false_alerts_per_watch_week"]
    result("false_alerts_per_watch_week", fa, "<=1", fa is not None and fa <= 1)
    steps = s["nationwide_max_ttd_steps"]
    result("nationwide_ttd_native_steps_max", steps, "<=2", steps is not None and steps <= 2)
    if hard:
        h = summarize(hard)
        result("hard_recall_nationwide_regional", h["recall_nationwide_regional"], "report", True)
        result("hard_recall_service_block", h["recall_service_block"], "report", True)
    by_name = {r.name: r for r in real}
    ir = by_name.get("real-ir-2019-shutdown")
    if ir:
        (x,) = ir.extra.values()
        m = x.get("nationwide_min_after_visible_onset")
        result("iran_2019_nationwide_min_after_visible_onset", m, "<=60", m is not None and m <= 60)
        result("iran_2019_alerts_before_onset", len(x["alerts_before_onset"]), "0", not x["alerts_before_onset"])
    ve = by_name.get("real-ve-2019-blackout")
    if ve:
        (x,) = ve.extra.values()
        result("venezuela_2019_detected", all(lo.detected for lo in ve.labels), "True", all(lo.detected for lo in ve.labels))
        result("venezuela_2019_alerts_before_onset", len(x["alerts_before_onset"]), "0", not x["alerts_before_onset"])
    ke = by_name.get("real-ke-2023-telegram")
    if ke:
        (x,) = ke.extra.values()
        found = len(x["asns_expected"]) - len(x["missed_asns"])
        result("kenya_2023_safaricom_asns_detected", f"{found}/{len(x['asns_expected'])}", "2/2", not x["missed_asns"])
        result("kenya_2023_unaffected_asns_flagged", len(x["unaffected_flagged"]), "0", not x["unaffected_flagged"])
        result("kenya_2023_alerts_before_onset", len(x["alerts_before_onset"]), "0", not x["alerts_before_onset"])


if __name__ == "__main__":
    main()
