"""Latency statistics: percentiles of recorded samples and adaptive repetition.

Every figure the harness reports is computed here from the samples it recorded (kept in the JSON
so anyone can recompute them). Repetition stops when the 95% confidence interval of the median is
tight, when a time budget is spent, or at a hard cap, whichever comes first; the reason is
recorded with the figures.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 99)
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Budget:
    """How long to measure one (runtime, mode) pair."""

    warmup: int = 10  # calls discarded before measuring (at least this many) ...
    warmup_s: float = 0.05  # ... and at least this long, so caches, allocators and JITs settle
    min_reps: int = 200  # never fewer (p99 needs a few hundred samples to mean anything)
    max_reps: int = 5000
    time_s: float = 2.0  # stop once this much time has been spent measuring
    rel_ci: float = 0.01  # stop once the 95% CI of the median is within +-1% of it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def quick(cls) -> Budget:
        """For tests and smoke runs: few repetitions, same statistics."""
        return cls(warmup=2, warmup_s=0.0, min_reps=20, max_reps=200, time_s=0.2, rel_ci=0.05)


def median_ci(sorted_samples: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (normal approximation to the binomial)."""
    n = len(sorted_samples)
    if n == 0:
        return math.nan, math.nan
    half = z * math.sqrt(n) / 2
    lo = max(int(math.floor(n / 2 - half)), 0)
    hi = min(int(math.ceil(n / 2 + half)), n - 1)
    return float(sorted_samples[lo]), float(sorted_samples[hi])


def relative_ci(sorted_samples: np.ndarray) -> float:
    """Half-width of the median's 95% CI relative to the median (inf when undefined)."""
    if len(sorted_samples) < 2:
        return math.inf
    lo, hi = median_ci(sorted_samples)
    med = float(np.median(sorted_samples))
    return (hi - lo) / 2 / med if med > 0 else (0.0 if hi == lo else math.inf)


def summarize(
    samples: Sequence[float] | np.ndarray,
    unit: str,
    *,
    clock: str = "",
    stopped_by: str = "",
    warmup: int = 0,
    keep_samples: bool = True,
) -> dict:
    """The latency record of the JSON schema, computed from ``samples``.

    Percentiles use numpy's default (linear interpolation between order statistics), so anyone can
    recompute them from ``samples`` with ``np.percentile``.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    s = np.sort(x)
    p50, p90, p99 = (float(v) for v in np.percentile(x, PERCENTILES))
    lo, hi = median_ci(s)
    record = {
        "unit": unit,
        "clock": clock,
        "n": int(x.size),
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min": float(s[0]),
        "max": float(s[-1]),
        "ci95_median": [lo, hi],
        "rel_ci95_median": relative_ci(s) if x.size > 1 else None,
        "stopped_by": stopped_by,
        "warmup": int(warmup),
    }
    if record["rel_ci95_median"] is not None and not math.isfinite(record["rel_ci95_median"]):
        record["rel_ci95_median"] = None
    if keep_samples:
        record["samples"] = [int(v) if float(v).is_integer() else float(v) for v in x]
    return record


@dataclass
class Sampled:
    samples: list[int]  # nanoseconds, one per measured call
    warmup: int
    stopped_by: str  # "ci" | "time" | "max_reps"


def sample_calls(
    call: Callable[[int], object],
    budget: Budget,
    *,
    between: Callable[[int], object] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Sampled:
    """Time ``call(i)`` one call at a time, adaptively.

    ``between(i)`` runs before call ``i`` outside the timed region (e.g. a state reset at a
    sequence boundary). The garbage collector is off while timing, as in ``timeit``.
    """
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        i = 0
        start = time.perf_counter()
        while i < budget.warmup or time.perf_counter() - start < budget.warmup_s:
            if between:
                between(i)
            call(i)
            i += 1
        warmup = i
        samples: list[int] = []
        start = time.perf_counter()
        next_check = budget.min_reps
        stopped_by = "max_reps"
        while len(samples) < budget.max_reps:
            if between:
                between(i)
            t0 = clock()
            call(i)
            samples.append(clock() - t0)
            i += 1
            n = len(samples)
            if n >= next_check:
                if time.perf_counter() - start >= budget.time_s:
                    stopped_by = "time"
                    break
                if relative_ci(np.sort(np.asarray(samples, dtype=np.float64))) <= budget.rel_ci:
                    stopped_by = "ci"
                    break
                next_check = n + max(10, n // 10)  # re-check every ~10%: sorting is O(n log n)
        return Sampled(samples, warmup, stopped_by)
    finally:
        if gc_was_enabled:
            gc.enable()


def timer_overhead_ns(reps: int = 2000, clock: Callable[[], int] = time.perf_counter_ns) -> dict:
    """What the timing loop itself costs: an empty Python call timed the same way (median, ns)."""

    def nothing(_i):
        return None

    measured = sample_calls(
        nothing, Budget(warmup=50, warmup_s=0.0, min_reps=reps, max_reps=reps, time_s=60, rel_ci=0), clock=clock
    )
    return {
        "empty_call_ns_p50": float(np.median(measured.samples)),
        "clock": "time.perf_counter_ns",
        "n": len(measured.samples),
    }
