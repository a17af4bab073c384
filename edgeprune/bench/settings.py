"""What a benchmark run is told (``BenchSettings``) and how it fails (``BenchError``).

Both are plain and picklable: a sweep sends ``BenchSettings`` to every worker that measures latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EdgepruneError
from .programs import ProgramSettings
from .stats import Budget


class BenchError(EdgepruneError):
    """A run that did not complete; ``doc`` holds what was measured (also saved to the JSON)."""

    doc: dict | None = None


@dataclass
class BenchSettings:
    budget: Budget = field(default_factory=Budget)
    threads: int = 1
    isolate: bool = True  # each Python runtime in its own process (peak RSS, no interference)
    latency_sequences: int = 16  # distinct test sequences the latency loops cycle through
    accuracy_samples: int | None = None  # None: the whole test split
    device_samples: int = 32  # sequences embedded in device programs (outputs + accuracy there)
    timeout_s: float = 600.0  # per runtime
    native: bool = True  # on the host, also run each program-capable artifact as a native program
    keep_samples: bool = True
    program: ProgramSettings | None = None  # None: derived from ``budget``

    def program_settings(self, modes, emulated: bool) -> ProgramSettings:
        if emulated:
            return ProgramSettings.emulated(modes)
        if self.program is not None:
            return ProgramSettings(
                self.program.warmup, self.program.min_reps, self.program.max_reps, self.program.budget_ns, tuple(modes)
            )
        b = self.budget
        return ProgramSettings(max(b.warmup, 1), b.min_reps, b.max_reps, int(b.time_s * 1e9), tuple(modes))
