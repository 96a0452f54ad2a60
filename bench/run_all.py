"""Run every benchmark in bench/ and print one table of their goals: name, figure, goal, met or not.

Each `bench/*.py` (but this one) runs in its own process with a timeout; its
`RESULT name=... figure=... goal=... met=yes|no` lines are collected. A benchmark that fails,
times out or prints no RESULT line gets a row saying so, so nothing goes missing silently.

    python bench/run_all.py                    # all of them, 600 s each (or a bench's own RUN_ALL_TIMEOUT)
    python bench/run_all.py --timeout 300 soak detection   # only these, by file name
    python bench/run_all.py --args soak=--days=3           # extra arguments for one benchmark
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULT = re.compile(r"^RESULT\s+(?P<fields>.*)$")
# a benchmark that needs longer than --timeout says so in a line of its own: `RUN_ALL_TIMEOUT = 2400`
OWN_TIMEOUT = re.compile(r"^RUN_ALL_TIMEOUT\s*=\s*(\d+)\s*(#.*)?$", re.M)


def own_timeout(path: Path, default: float) -> float:
    """The longer of `default` and the benchmark's own `RUN_ALL_TIMEOUT` (seconds), if it declares one."""
    m = OWN_TIMEOUT.search(path.read_text(encoding="utf-8", errors="replace"))
    return max(default, float(m.group(1))) if m else default


FIELD = re.compile(r"(\w+)=(\S*)")


def parse_results(text: str) -> list[dict[str, str]]:
    """The RESULT lines of a benchmark's output, as dicts (name, figure, goal, met)."""
    rows = []
    for line in text.splitlines():
        m = RESULT.match(line.strip())
        if m:
            rows.append(dict(FIELD.findall(m.group("fields"))))
    return rows


def run_one(path: Path, timeout: float, extra: list[str]) -> tuple[list[dict[str, str]], str, float]:
    """Run one benchmark; returns its RESULT rows, a status ('ok', 'failed (rc N)', 'timeout') and seconds."""
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        proc = subprocess.run(
            [sys.executable, str(path), *extra],
            cwd=BENCH.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return parse_results(out), "timeout", time.perf_counter() - began
    status = "ok" if proc.returncode == 0 else f"failed (rc {proc.returncode})"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        status += ": " + " | ".join(tail)[:200]
    return parse_results(proc.stdout), status, time.perf_counter() - began


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="benchmark file names (without .py) to run; default all")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per benchmark (default 600)")
    ap.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="extra arguments for one benchmark, e.g. soak=--days=3 (comma separates several)",
    )
    a = ap.parse_args(argv)
    extra: dict[str, list[str]] = {}
    for spec in a.args:
        name, _, rest = spec.partition("=")
        extra.setdefault(name, []).extend(x for x in rest.split(",") if x)

    benches = sorted(p for p in BENCH.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    if a.only:
        benches = [p for p in benches if p.stem in a.only]
    rows: list[list[str]] = []
    problems = 0
    for path in benches:
        print(f"running {path.name} ...", flush=True)
        results, status, seconds = run_one(path, own_timeout(path, a.timeout), extra.get(path.stem, []))
        print(f"  {status} in {seconds:.0f} s, {len(results)} RESULT line(s)", flush=True)
        for r in results:
            rows.append([r.get("name", "?"), r.get("figure", "?"), r.get("goal", "?"), r.get("met", "?"), path.stem])
        if status != "ok" or not results:
            problems += 1
            rows.append(
                [
                    f"({path.stem})",
                    "-",
                    "-",
                    "no" if status != "ok" else "?",
                    status if results or status != "ok" else "no RESULT line",
                ]
            )
    print()
    print(table(rows, ["name", "figure", "goal", "met", "bench"]))
    met = sum(1 for r in rows if r[3] == "yes")
    print(f"\n{met} of {len(rows)} goals met; {len(benches)} benchmarks, {problems} with problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
