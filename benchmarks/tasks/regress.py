"""Streaming regression, a target at every step: dense vs pruned at equal achieved sparsity, in C.

daphnet-denoise (9 body-worn accelerometer channels at 64 Hz with Gaussian noise of 0.5 x each
channel's std; target: the clean signal at every step) and daphnet-predict (target: the next
sample), GRU-32, trained by ``edgeprune train --data daphnet-denoise --model gru:32,dense
--epochs 100 --lr 0.01 --batch-size 8`` (seeds 0 1 2); every method at 50/80/90/95%
(ramanujan-imp at its own bound, with magnitude at the same per-matrix counts), 10 masked
fine-tuning epochs. MSE in the recordings' units and SNR = 10 log10(sum (y - mu)^2 / sum (y - y_hat)^2),
mu the training targets' per-channel mean (as benchmarks/tasks/baselines.py). What each cell
measures: ``benchmarks/tasks/driver.py``.

    export EDGEPRUNE_BENCH_CACHE=/work/bench-cache OMP_NUM_THREADS=1
    nice python benchmarks/tasks/regress.py                       # daphnet-denoise
    nice python benchmarks/tasks/regress.py --tasks daphnet-predict

Writes ``results/tasks.{md,json}`` and the plots (every task found in the cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tasks.driver import Task, main  # noqa: E402

RECIPE = {"epochs": 100, "lr": 0.01, "batch_size": 8, "finetune_epochs": 10}
TASKS = [
    Task("daphnet-denoise", "regression", "gru:32,dense", **RECIPE),
    Task("daphnet-predict", "regression", "gru:32,dense", **RECIPE, readme=False),
]

if __name__ == "__main__":
    main(TASKS, default_tasks=["daphnet-denoise"])
