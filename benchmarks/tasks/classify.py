"""Sequence classification on real recordings: dense vs pruned at equal achieved sparsity, in C.

japanese-vowels (speech: 12 LPC cepstra per frame, 7-29 frames, 9 speakers), GRU-64, trained by
``edgeprune train --data japanese-vowels --model gru:64,dense --epochs 30 --lr 0.005`` (seeds 0 1 2);
every method at 50/80/90/95% (ramanujan-imp at its own bound, with magnitude at the same per-matrix
counts), 5 masked fine-tuning epochs. What each cell measures: ``benchmarks/tasks/driver.py``.

    export EDGEPRUNE_BENCH_CACHE=/work/bench-cache OMP_NUM_THREADS=1
    nice python benchmarks/tasks/classify.py                 # then --report-only to redraw
    nice python benchmarks/tasks/classify.py --tasks basic-motions pickup-gesture

Writes ``results/tasks.{md,json}`` and the plots (every task found in the cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tasks.driver import Task, main  # noqa: E402

UNTUNED = (
    "An untuned recipe, run once as it is: the dense model does not clearly beat the model-free reference "
    "below, so the pruned rows say little about the task (not in the README's headline)."
)
TASKS = [
    Task("japanese-vowels", "classification", "gru:64,dense", epochs=30, lr=0.005, finetune_epochs=5),
    Task("basic-motions", "classification", "gru:32,dense", 40, 0.005, 5, readme=False, note=UNTUNED),
    Task("pickup-gesture", "classification", "gru:32,dense", 60, 0.005, 5, readme=False, note=UNTUNED),
]

if __name__ == "__main__":
    main(TASKS, default_tasks=["japanese-vowels"])
