"""Benchmark harness: latency, memory and accuracy of every runtime, on the host or a device.

``bench(source, device, settings)`` measures a checkpoint (compiled here for every available
target) or a compile output; ``devices.parse(url)`` gives the device; ``report`` renders the
result as a table, markdown and a chart. Grids of pruned models: ``edgeprune.sweep``. See docs/bench.md.
"""

from .harness import Bench, bench
from .prepare import prepare
from .settings import BenchError, BenchSettings
from .stats import Budget, summarize

__all__ = ["Bench", "BenchError", "BenchSettings", "Budget", "bench", "prepare", "summarize"]
