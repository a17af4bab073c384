import time

import numpy as np
import pytest

from edgeprune.bench.stats import Budget, median_ci, relative_ci, sample_calls, summarize


def test_percentiles_are_those_of_the_recorded_samples():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(10, 0.5, size=1000).round()
    s = summarize(samples, "ns")
    assert s["samples"] == samples.tolist()
    expected = np.percentile(samples, [50, 90, 99])
    assert [s["p50"], s["p90"], s["p99"]] == pytest.approx(expected.tolist(), rel=0, abs=0)
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert s["n"] == 1000 and s["mean"] == pytest.approx(samples.mean())
    lo, hi = s["ci95_median"]
    assert lo <= s["p50"] <= hi


def test_median_ci_covers_the_true_median():
    # the order-statistic interval is distribution-free: ~95% coverage on any continuous distribution
    rng = np.random.default_rng(1)
    true_median = np.log(2)  # exponential(1)
    hits = sum(
        lo <= true_median <= hi for lo, hi in (median_ci(np.sort(rng.exponential(size=200))) for _ in range(400))
    )
    assert 0.90 <= hits / 400 <= 0.99


def test_relative_ci_shrinks_with_more_samples():
    rng = np.random.default_rng(2)
    small = relative_ci(np.sort(rng.normal(100, 10, 50)))
    large = relative_ci(np.sort(rng.normal(100, 10, 5000)))
    assert large < small / 5


def test_sample_calls_times_each_call_for_real():
    delays = [0.001, 0.003]  # alternate two known durations

    def call(i):
        time.sleep(delays[i % 2])

    measured = sample_calls(call, Budget(warmup=2, warmup_s=0, min_reps=20, max_reps=20, time_s=60, rel_ci=0))
    assert len(measured.samples) == 20 and measured.warmup == 2 and measured.stopped_by == "max_reps"
    short = np.array(measured.samples[0::2])  # warm-up took calls 0,1: measured call 2 sleeps delays[0]
    long = np.array(measured.samples[1::2])
    assert short.min() >= 1e6 and long.min() >= 3e6  # never less than the sleep
    assert np.median(long) > np.median(short) + 1.5e6


def test_sample_calls_stops_when_the_median_is_pinned_down():
    measured = sample_calls(
        lambda i: sum(range(50)), Budget(warmup=5, warmup_s=0, min_reps=100, max_reps=100000, time_s=30, rel_ci=0.2)
    )
    assert measured.stopped_by == "ci" and 100 <= len(measured.samples) < 100000


def test_sample_calls_respects_the_time_budget():
    start = time.perf_counter()
    measured = sample_calls(
        lambda i: time.sleep(0.002 if i % 3 else 0.0002),
        Budget(warmup=1, warmup_s=0, min_reps=10, max_reps=100000, time_s=0.3, rel_ci=0),
    )
    assert measured.stopped_by == "time"
    # Ignoring the budget would take 100000 calls (~140 s); the bound leaves room for a loaded machine
    # (3 s failed at load 18), not for a sampler that overruns its budget.
    assert time.perf_counter() - start < 30


def test_between_runs_outside_the_timed_region():
    def between(i):
        time.sleep(0.005)

    measured = sample_calls(
        lambda i: None, Budget(warmup=1, warmup_s=0, min_reps=10, max_reps=10, time_s=60, rel_ci=0), between=between
    )
    assert max(measured.samples) < 5e6


def test_summarize_rejects_empty():
    with pytest.raises(ValueError):
        summarize([], "ns")
