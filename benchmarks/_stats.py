"""Statistics of compare mode: per-run ratios against the same-run baseline, the paired
change between the "before" and "after" package, its confidence interval and the verdict.

Why these: on a shared machine a row of unchanged code moves 5-15 % between two runs, so
two separate runs cannot show a 3 % change. Compare mode measures both packages in every
run, one right after the other; the change of a row in run *i* is
``ratio_after[i] / ratio_before[i]`` (each ratio against its own side's baseline row of
the same child process), so a slow phase of the machine that hits both sides cancels. The
interval of the median change comes from order statistics (the sign-test interval: exact
for any distribution, no resampling, so the same numbers always give the same verdict).
With 5 runs it is [min, max] at 93.75 % confidence.

Must not: measure, start processes or format tables (compare.py and _compare_report.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: the confidence the interval aims at, and the least it must reach for a verdict
LEVEL = 0.95
MIN_LEVEL = 0.90


@dataclass(frozen=True)
class Interval:
    """The median of some values and a distribution-free interval around it."""

    median: float
    lo: float
    hi: float
    level: float  # the interval's actual coverage of the true median (0 with one value)
    n: int


def coverage(n: int, k: int) -> float:
    """Coverage of ``[x(k), x(n+1-k)]`` (1-based order statistics of ``n`` values) for the
    true median: ``1 - 2 P(B <= k-1)``, B ~ Binomial(n, 1/2). 0 when the interval is empty
    or a single point of one value."""
    if n <= 0 or k < 1 or 2 * k > n + 1:
        return 0.0
    tail = sum(math.comb(n, j) for j in range(k)) / float(1 << n)
    return max(0.0, 1.0 - 2.0 * tail)


def median_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The median of ``values`` and the narrowest order-statistic interval whose coverage
    is at least ``level``; when even ``[min, max]`` covers less, ``[min, max]`` with its
    actual coverage (a caller decides whether that is enough).

    Raises:
        ValueError: no values, or a value that is not finite.
    """
    xs = sorted(values)
    if not xs:
        raise ValueError("median_interval: no values")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"median_interval: non-finite value in {xs}")
    n = len(xs)
    k = 1
    while coverage(n, k + 1) >= level:
        k += 1
    return Interval(statistics.median(xs), xs[k - 1], xs[n - k], coverage(n, k), n)


def ratios(values: Sequence[float | None], bases: Sequence[float | None],
           lower_is_better: bool = False) -> list[float | None]:
    """Per-run ratio of a row to its baseline row of the same run (``base / value`` for a
    cost); None where either is missing or not positive."""
    out: list[float | None] = []
    for v, b in zip(values, bases, strict=True):
        if v is None or b is None or v <= 0 or b <= 0:
            out.append(None)
        else:
            out.append(b / v if lower_is_better else v / b)
    return out


def paired_changes(before: Sequence[float | None], after: Sequence[float | None]
                   ) -> list[float]:
    """``after[i] / before[i] - 1`` for every run that has both (relative change)."""
    return [a / b - 1.0 for b, a in zip(before, after, strict=True)
            if a is not None and b is not None and b > 0]


#: verdicts; the first is the one the 3 % rule forbids
LOWER = "lower by more than {t}"
HIGHER = "higher by more than {t}"
LOWER_SMALL = "lower, by less than {t}"
HIGHER_SMALL = "higher, by less than {t}"
LOWER_MAYBE = "lower, maybe by more than {t}"
HIGHER_MAYBE = "higher, maybe by more than {t}"
SAME = "within {t}"
NOISE = "within noise"
FEW = "too few runs"


def verdict(change: Interval, threshold: float = 0.03, min_level: float = MIN_LEVEL) -> str:
    """What the interval of a row's change says about the ``threshold`` (0.03 = 3 %).

    "lower by more than 3 %" only when the whole interval is below -3 %; "within 3 %" when
    it lies inside +-3 %; "within noise" when it holds 0 and reaches past +-3 % (the
    spread is wider than what is to be shown: more runs narrow it); "lower, maybe by more
    than 3 %" when it is below 0 but reaches past -3 % on one end only; "too few runs"
    when the interval's coverage is under ``min_level``."""
    t = f"{threshold * 100:g} %"
    if change.level < min_level:
        return f"{FEW} ({change.n})"
    lo, hi = change.lo, change.hi
    if hi < -threshold:
        return LOWER.format(t=t)
    if lo > threshold:
        return HIGHER.format(t=t)
    if hi < 0:
        return (LOWER_SMALL if lo >= -threshold else LOWER_MAYBE).format(t=t)
    if lo > 0:
        return (HIGHER_SMALL if hi <= threshold else HIGHER_MAYBE).format(t=t)
    if lo >= -threshold and hi <= threshold:
        return SAME.format(t=t)
    return NOISE


def breaks_rule(v: str) -> bool:
    """True for the verdict the 3 % rule forbids (shown lower by more than the threshold)."""
    return v.startswith("lower by more than")


def undecided(v: str, change: Interval | None, threshold: float = 0.03) -> bool:
    """True when the interval reaches below -threshold without showing a fall: more runs
    (or a quieter machine) are needed to say whether the row keeps the rule."""
    return change is not None and not breaks_rule(v) and change.lo < -threshold
