"""The foundation's training budget: LSTM-64 on digits must reach >= 95% within a minute on 2 cores.

python benchmarks/train_digits.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

from common import markdown_table, write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    import torch

    from edgeprune import data
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.train import seed_everything, train

    ds = data.load("digits")
    rows = []
    for seed in range(args.seeds):
        seed_everything(seed)
        model = SequenceClassifier(ModelConfig("lstm", ds.features, (64,), ds.num_classes))
        start = time.perf_counter()
        result = train(model, ds, epochs=30, lr=1e-2, seed=seed, progress=False)
        rows.append([seed, result.test_accuracy, round(time.perf_counter() - start, 1)])
        print(rows[-1])
    table = markdown_table(["seed", "test accuracy", "seconds (30 epochs)"], rows)
    write_results(
        "train_digits",
        {"threads": torch.get_num_threads(), "rows": rows},
        f"# LSTM-64 on digits: accuracy and training time\n\n{table}\n",
    )


if __name__ == "__main__":
    main()
