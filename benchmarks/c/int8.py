"""How far the C target's int8 build (--dtype int8) moves the logits and predictions of trained models.

LSTM-64 and GRU-64 trained on digits (8x8 images as 8 steps of 8 pixels), magnitude-pruned
at 0 / 50 / 90% and fine-tuned (5 epochs), compiled for the host with ``--dtype int8`` and each
``--kernel``, run through ``CompiledModel`` on the whole test split, and compared with the float
model (the IR reference executor, which equals torch to 1e-5): the largest and the mean absolute
logit error, the share of samples whose argmax is unchanged, and both accuracies. The verification
gate holds int8 builds to ``edgeprune.backends.c.INT8_TOLERANCE``; this is where that bound comes from.

    python benchmarks/c/int8.py            # ~2 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from common import markdown_table, write_results  # noqa: E402

from edgeprune import data, frontend, ir, prune  # noqa: E402
from edgeprune.backends import get  # noqa: E402
from edgeprune.backends.c import INT8_TOLERANCE  # noqa: E402
from edgeprune.options import resolve  # noqa: E402
from edgeprune.runtime import CompiledModel  # noqa: E402

C = get("c")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--sparsities", default="0,0.5,0.9")
    ap.add_argument("--finetune", type=int, default=5, help="fine-tuning epochs after pruning")
    ap.add_argument("--kernels", default="auto,dense,csr,ell,bsr")
    ap.add_argument("--name", default="c_int8")
    args = ap.parse_args()
    import torch

    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.train import seed_everything, train

    torch.set_num_threads(1)
    ds = data.load("digits")
    X, y = ds.X_test.astype(np.float32), ds.y_test
    rows, results = [], []
    work = Path(tempfile.mkdtemp(prefix="edgeprune-int8-"))
    try:
        for cell in args.cells.split(","):
            seed_everything(0)
            model = SequenceClassifier(ModelConfig(cell, ds.features, (args.hidden,), ds.num_classes))
            train(model, ds, epochs=args.epochs, lr=1e-2, progress=False)
            for s in (float(v) for v in args.sparsities.split(",")):
                pruned = (
                    prune.prune_model(
                        model, "magnitude", s, seed=0, dataset=ds, finetune_epochs=args.finetune, finetune_lr=3e-3
                    ).model
                    if s
                    else model
                )
                graph = frontend.lower(pruned)
                ref = ir.ReferenceExecutor(graph).run(X)
                for kernel in args.kernels.split(","):
                    d = work / f"{cell}-{s}-{kernel}"
                    d.mkdir()
                    options = resolve(C.options, {"dtype": "int8", "kernel": kernel}, "target c")
                    [artifact] = C.emit(graph, d, options)
                    C.build(artifact, d, options)
                    got = CompiledModel.load(d).run(X)
                    err = np.abs(got - ref)
                    r = {
                        "cell": cell,
                        "sparsity": s,
                        "kernel": kernel,
                        "formats": artifact.info["matrices"]["layers.0.weight"]["format"],
                        "max_abs": float(err.max()),
                        "mean_abs": float(err.mean()),
                        "logit_range": float(np.abs(ref).max()),
                        "agreement": float((got.argmax(1) == ref.argmax(1)).mean()),
                        "accuracy_f32": float((ref.argmax(1) == y).mean()),
                        "accuracy_int8": float((got.argmax(1) == y).mean()),
                        "samples": len(y),
                    }
                    results.append(r)
                    rows.append(
                        [
                            cell,
                            f"{s:.0%}",
                            kernel,
                            r["formats"],
                            f"{r['max_abs']:.4f}",
                            f"{r['mean_abs']:.4f}",
                            f"{r['logit_range']:.1f}",
                            f"{r['agreement']:.2%}",
                            f"{r['accuracy_f32']:.2%}",
                            f"{r['accuracy_int8']:.2%}",
                        ]
                    )
                    print(*rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    worst = max(r["max_abs"] for r in results)
    agree = min(r["agreement"] for r in results)
    md = (
        f"{args.cells} with {args.hidden} units trained on digits ({len(y)} test samples), magnitude-pruned "
        f"and fine-tuned {args.finetune} epochs, C build with `--dtype int8` vs the float model. Gate tolerance: "
        f"{INT8_TOLERANCE}. Worst logit error {worst:.4f}, lowest argmax agreement {agree:.2%}.\n\n"
    )
    md += markdown_table(
        [
            "cell",
            "sparsity",
            "--kernel",
            "gate formats",
            "max |err|",
            "mean |err|",
            "max |logit|",
            "argmax agreement",
            "accuracy f32",
            "accuracy int8",
        ],
        rows,
    )
    write_results(args.name, {"args": vars(args), "results": results}, md)


if __name__ == "__main__":
    main()
