"""Compare mode's statistics, verdicts and tables (benchmarks/_stats.py,
benchmarks/_compare_report.py), without measuring anything.

The interval's coverage is checked against a brute-force count over every sign pattern,
the verdicts against the rule they state, and the rows against hand-made child reports
(an unchanged package, a slower row, a row or group one side cannot run).
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import _compare_report, _stats
from benchmarks._util import parse_busy
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
ci = settings(derandomize=True, deadline=None, max_examples=200)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


# --------------------------------------------------------------------------- coverage

@pytest.mark.parametrize("n", range(1, 13))
def test_coverage_matches_a_count_of_sign_patterns(n: int) -> None:
    """[x(k), x(n+1-k)] holds the true median exactly when k to n-k of the n values lie
    below it; each value is below with probability 1/2, so counting the 2^n patterns
    gives the coverage."""
    for k in range(1, (n + 1) // 2 + 1):
        hits = sum(1 for signs in itertools.product((0, 1), repeat=n)
                   if k <= sum(signs) <= n - k)
        assert _stats.coverage(n, k) == pytest.approx(hits / 2**n)


def test_coverage_known_values() -> None:
    assert _stats.coverage(5, 1) == pytest.approx(0.9375)
    assert _stats.coverage(10, 2) == pytest.approx(1 - 2 * 11 / 1024)
    assert _stats.coverage(1, 1) == 0.0
    assert _stats.coverage(4, 3) == 0.0  # no such interval


@ci
@given(st.lists(finite, min_size=1, max_size=40))
def test_interval_holds_the_median_and_is_made_of_values(xs: list[float]) -> None:
    iv = _stats.median_interval(xs)
    assert iv.lo <= iv.median <= iv.hi
    assert iv.lo in xs and iv.hi in xs
    assert iv.n == len(xs)
    if iv.level < _stats.LEVEL:  # not reachable with this many values: the widest one
        assert (iv.lo, iv.hi) == (min(xs), max(xs))


@ci
@given(st.lists(finite, min_size=1, max_size=40), st.randoms())
def test_interval_ignores_the_order_of_runs(xs: list[float], rnd: Any) -> None:
    ys = list(xs)
    rnd.shuffle(ys)
    assert _stats.median_interval(xs) == _stats.median_interval(ys)


@ci
@given(st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=30),
       st.floats(min_value=0.01, max_value=100))
def test_interval_scales_with_the_values(xs: list[float], c: float) -> None:
    a, b = _stats.median_interval(xs), _stats.median_interval([x * c for x in xs])
    assert (b.lo, b.hi, b.median) == pytest.approx((a.lo * c, a.hi * c, a.median * c))
    assert b.level == a.level


def test_interval_narrows_with_more_runs() -> None:
    """The point of more runs: at the same level, 25 runs leave out the extremes."""
    xs = [float(i) for i in range(25)]
    iv = _stats.median_interval(xs)
    assert iv.level >= 0.95 and iv.lo > 0 and iv.hi < 24


def test_interval_refuses_nothing_and_nan() -> None:
    with pytest.raises(ValueError, match="no values"):
        _stats.median_interval([])
    with pytest.raises(ValueError, match="non-finite"):
        _stats.median_interval([1.0, math.nan])


# --------------------------------------------------------------------------- ratios

@ci
@given(st.lists(st.tuples(st.floats(0.001, 1e9), st.floats(0.001, 1e9),
                          st.floats(0.001, 1e3)), min_size=1, max_size=10),
       st.booleans())
def test_ratio_of_a_run_ignores_how_fast_that_run_was(
        runs: list[tuple[float, float, float]], lower: bool) -> None:
    """A slow phase that scales a row and its baseline alike leaves the ratio alone."""
    v = [r[0] for r in runs]
    b = [r[1] for r in runs]
    plain = _stats.ratios(v, b, lower)
    scaled = _stats.ratios([x * r[2] for x, r in zip(v, runs, strict=True)],
                           [x * r[2] for x, r in zip(b, runs, strict=True)], lower)
    assert scaled == pytest.approx(plain)


def test_ratios_of_costs_and_missing_runs() -> None:
    assert _stats.ratios([200.0, None, 50.0], [100.0, 100.0, 0.0]) == [2.0, None, None]
    assert _stats.ratios([200.0], [100.0], lower_is_better=True) == [0.5]
    assert _stats.paired_changes([1.0, None, 2.0], [1.1, 1.0, None]) == pytest.approx([0.1])


# --------------------------------------------------------------------------- verdicts

def _iv(lo: float, hi: float, level: float = 0.9375) -> _stats.Interval:
    return _stats.Interval((lo + hi) / 2, lo, hi, level, 5)


@pytest.mark.parametrize(("lo", "hi", "want"), [
    (-0.10, -0.04, "lower by more than 3 %"),
    (0.04, 0.10, "higher by more than 3 %"),
    (-0.02, -0.01, "lower, by less than 3 %"),
    (0.01, 0.02, "higher, by less than 3 %"),
    (-0.05, -0.01, "lower, maybe by more than 3 %"),
    (0.01, 0.05, "higher, maybe by more than 3 %"),
    (-0.02, 0.02, "within 3 %"),
    (-0.06, 0.01, "within noise"),
    (-0.01, 0.09, "within noise"),
])
def test_verdicts(lo: float, hi: float, want: str) -> None:
    assert _stats.verdict(_iv(lo, hi)) == want


@ci
@given(st.floats(-1, 1), st.floats(-1, 1), st.floats(0.001, 0.5))
def test_lower_only_when_the_whole_interval_is_below_the_threshold(
        a: float, b: float, t: float) -> None:
    lo, hi = min(a, b), max(a, b)
    v = _stats.verdict(_iv(lo, hi), t)
    assert _stats.breaks_rule(v) == (hi < -t)
    if lo <= 0 <= hi:  # an interval that holds 0 never claims a change
        assert v.startswith(("within", "lower, maybe", "higher, maybe")) or v == "within noise"
        assert not v.startswith(("lower by", "higher by"))


@ci
@given(st.floats(-1, 1), st.floats(-1, 1))
def test_verdicts_mirror(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    up = _stats.verdict(_iv(lo, hi))
    down = _stats.verdict(_iv(-hi, -lo))
    swap = {"lower": "higher", "higher": "lower"}
    first, _, rest = up.partition(" ")
    first, comma, _ = first.partition(",")
    assert down == swap.get(first, first) + comma + (" " + rest if rest else "")


def test_too_few_runs_gives_no_verdict() -> None:
    assert _stats.verdict(_iv(-0.2, -0.1, level=0.875)).startswith("too few runs")
    assert not _stats.breaks_rule(_stats.verdict(_iv(-0.2, -0.1, level=0.5)))


# --------------------------------------------------------------------------- rows

def _child(rows: dict[tuple[str, int], float], base: str = "base", **notes: str
           ) -> dict[str, Any]:
    res = []
    for (name, size), v in rows.items():
        res.append({"scenario": "g", "name": name, "size": size, "runs": [v],
                    "note": "", "baseline": base, "unit": "pps",
                    "lower_is_better": False})
    for name, note in notes.items():
        res.append({"scenario": "g", "name": name, "size": 64, "runs": [], "note": note,
                    "baseline": base, "unit": "pps", "lower_is_better": False})
    return {"results": res}


def _runs(speed: list[float], slow: float = 1.0, **notes: str) -> list[dict[str, Any]]:
    """Five runs whose machine speed varies by ``speed``; row "x" is 1.2x its baseline
    (times ``slow``)."""
    return [_child({("base", 64): 1000 * s, ("x", 64): 1200 * s * slow}, **notes)
            for s in speed]


SPEED = [1.0, 0.8, 1.1, 0.9, 1.05]  # a shared machine: 30 % between runs


def test_unchanged_package_on_a_noisy_machine_is_within_threshold() -> None:
    rows = _compare_report.analyse("g", _runs(SPEED), _runs(SPEED))
    x = next(r for r in rows if r["row"] == "x")
    assert x["verdict"] == "within 3 %"
    assert x["change"]["median"] == pytest.approx(0.0)
    base = next(r for r in rows if r["row"] == "base")
    assert base["compared"] == "value" and base["verdict"].endswith("(value)")


def test_baseline_row_compares_its_value_and_is_not_counted() -> None:
    before = _runs(SPEED)
    after = [_child({("base", 64): 900 * s, ("x", 64): 1080 * s}) for s in SPEED]
    rows = {r["row"]: r for r in _compare_report.analyse("g", before, after)}
    assert rows["base"]["verdict"] == "lower by more than 3 % (value)"
    assert not rows["base"]["breaks_rule"]
    assert rows["x"]["verdict"] == "within 3 %"  # its ratio did not move


def test_a_slower_row_is_found_despite_the_noise() -> None:
    rows = _compare_report.analyse("g", _runs(SPEED), _runs(SPEED, slow=0.9))
    x = next(r for r in rows if r["row"] == "x")
    assert x["verdict"] == "lower by more than 3 %" and x["breaks_rule"]
    assert x["change"]["median"] == pytest.approx(-0.1)


def test_row_the_old_package_cannot_run_is_na_with_its_reason() -> None:
    before = _runs(SPEED, y="n/a: AttributeError: no send_batch")
    after = [_child({("base", 64): 1000, ("x", 64): 1200, ("y", 64): 900}) for _ in SPEED]
    rows = _compare_report.analyse("g", before, after)
    y = next(r for r in rows if r["row"] == "y")
    assert y["change"] is None
    assert y["verdict"] == "n/a: AttributeError: no send_batch (before)"
    assert not y["breaks_rule"]


def test_group_that_cannot_start_on_one_side() -> None:
    before = [{"error": "ModuleNotFoundError: No module named 'mcastkit.capture'"}] * 5
    rows = _compare_report.analyse("g", before, _runs(SPEED))
    assert {r["verdict"] for r in rows} == {
        "n/a: ModuleNotFoundError: No module named 'mcastkit.capture' (before)"}
    assert _compare_report.analyse("g", before, before)[0]["row"] == "(whole group)"


def _report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"before": {"name": "abc", "accelerator": True},
            "after": {"name": "tree", "accelerator": True}, "runs": 5, "clock": "cpu",
            "quick": False, "seconds": 12.0, "threshold": 0.03, "rows": rows}


def test_tables_show_every_row_and_the_summary(tmp_path: Path) -> None:
    rows = _compare_report.analyse("g", _runs(SPEED), _runs(SPEED, slow=0.9))
    rep = _report(rows)
    md = _compare_report.markdown(rep)
    assert "#### Group `g`" in md
    assert "| 64 | x | 1.20× [1.20–1.20] | 1.08× [1.08–1.08] | -10.0 % [-10.0, -10.0] | " \
           "lower by more than 3 % |" in md
    assert "rows lower by more than 3 % against their baseline (whole interval below " \
           "-3 %): 1" in md
    txt = _compare_report.text(rep)
    assert "lower by more than 3 %" in txt and "== g" in txt
    f = tmp_path / "compare.json"
    f.write_text(json.dumps(rep))
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--markdown", str(f)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out == md


# --------------------------------------------------------------------------- the switch

@ci
@given(st.dictionaries(st.text(st.characters(blacklist_characters=";="), min_size=1)
                       .map(str.strip).filter(bool),
                       st.integers(0, 500), max_size=4))
def test_busy_spec_round_trip(spec: dict[str, int]) -> None:
    text = ";".join(f"{k}={v}" for k, v in spec.items())
    assert parse_busy(text) == {k: v / 100 for k, v in spec.items()}


@pytest.mark.parametrize("bad", ["mcastkit sendto", "=5", "x=fast", "x=-1"])
def test_busy_spec_refuses_nonsense(bad: str) -> None:
    with pytest.raises(ValueError, match="ROW=PERCENT"):
        parse_busy(bad)
