"""Streaming classification, a label at every step: dense vs pruned at equal achieved sparsity, in C.

motion-stream (BasicMotions recordings concatenated 4 at a time into 400-step streams, the activity
label at every step), LSTM-32 with an output every step, trained by
``edgeprune train --data motion-stream --model lstm:32,dense --epochs 40 --lr 0.01`` (seeds 0 1 2);
every method at 50/80/90/95% (ramanujan-imp at its own bound, with magnitude at the same per-matrix
counts), 5 masked fine-tuning epochs; per-step accuracy and macro-F1 over true steps. What each cell
measures: ``benchmarks/tasks/driver.py``.

    export EDGEPRUNE_BENCH_CACHE=/work/bench-cache OMP_NUM_THREADS=1
    nice python benchmarks/tasks/stream.py

Writes ``results/tasks.{md,json}`` and the plots (every task found in the cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tasks.driver import Task, main  # noqa: E402

TASKS = [Task("motion-stream", "per-step classification", "lstm:32,dense", epochs=40, lr=0.01, finetune_epochs=5)]

if __name__ == "__main__":
    main(TASKS)
