"""Detection: each series against its expectation, stepped tick by tick with explicit state.

`detect()` is a fold over time: it takes the detector state, the tick times and the
observations visible by then, and returns the new state plus anomaly events (opened, updated,
closed) and data gaps. Run once per live tick or over a whole range in one call, it gives the
same events, so a replay reproduces what live ticks said. Each series is judged by the
detector its signal names in the playbook (`SignalConfig.detector`, thresholds and `options`):

- `moving_median` (IODA's production detector): expectation = median of a sliding history
  window (`window`) of the series on its native-step grid, after `warm_up`; no judgement while
  the expectation is below `min_prediction`; *inpainting*: a point whose ratio to the
  expectation is below `inpaint_low` (0.8) or above `inpaint_high` (2.0) feeds the expectation,
  not itself, into the history, for at most `inpaint_max`, after which the new level becomes
  normal. Warning/critical are ratio thresholds (drop) or rise thresholds (rise).
- `seasonal` (Cloudflare Radar): expectation = median, at this time of day, of the `k` (6)
  24-hour periods of the last `days` (28) most similar to the last 24 hours; separate enter
  (`warning`) and exit (`options.exit`) thresholds. History is kept per `bucket` (1 h).
- `cusum` (OONI's event detector) for failure rates: two-sided CUSUM with mu0 0.0, mu1 0.7,
  v 0.7, threshold h 7.0, each hour weighted by its measurement count, accumulators decaying by
  0.5^(gap/48 h) after more than 24 h without data. `mu0: baseline` judges each series against
  its own failure rate (mu1 = mu0 + `shift`; `v: binomial`), see `cusum_levels()`. Crossing h upwards opens a block
  anomaly
  (start = when the accumulator last left zero); crossing it downwards closes it (unblock).
  Optional fast path (`options.fast`, default on): an hour whose failure rate's Wilson lower
  bound is already beyond `warning` opens the block at once.
- `threshold`: fixed thresholds against a fixed expectation (`options.expected`, default 0 in
  delta mode and 1 in ratio mode), no history.

Debounce and hysteresis: an anomaly opens after `min_duration` of consecutive anomalous points
(`options.warning_min_duration`, if longer, while they are only warnings: a noisy series must
stay below warning for that long, while a critical drop opens at once) and closes after `recovery` of points back past
the exit threshold (`options.exit`, default
the warning threshold for moving_median/threshold). Severity of an anomaly = sum over its
points of (drop % x minutes); `combined_severity()` multiplies the per-source sums.
`options.alone_min_duration` (for a signal that is the only one covering its entities): a drop
that no other series of the country and family corroborates (starting to fall within two native
steps of it) waits, and opens alone only once critical for that long.

Missing data (value null, or a rate from fewer than `min_count` measurements) never opens an anomaly
and never enters a history (an OONI block's unblock may be shown by hours too sparse to judge alone,
pooled: `cusum.sparse`); silence longer than `options.gap_steps` (3)
native steps is reported as a Gap: once while it lasts (end = the tick), and complete when data
resumes (same start, so the store merges them). The state is compact JSON: bounded histories on a grid of
slots (no timestamps), running accumulators, the open anomaly.

Modules: `fold` (`detect()`, and the held drops' corroboration), one per detector (`moving_median`,
`seasonal`, `cusum`, `threshold`: each a `step()` over one point), `lifecycle` (open, extend, close,
debounce, inpainting), `judge` (a point against its expectation; Wilson bounds; severity) and `state`.
"""

from pollwatch.detect.cusum import cusum_levels
from pollwatch.detect.fold import detect, expectations
from pollwatch.detect.judge import combined_severity, wilson_lower, wilson_upper
from pollwatch.detect.state import DEFAULT_OPTIONS, DetectorState, DetectResult, SeriesState, options

__all__ = [
    "DEFAULT_OPTIONS",
    "DetectResult",
    "DetectorState",
    "SeriesState",
    "combined_severity",
    "cusum_levels",
    "detect",
    "expectations",
    "options",
    "wilson_lower",
    "wilson_upper",
]
