"""Sizes of the tflite target's files, dense vs pruned, fp32 vs int8, and what int8 weights do to a
trained model's predictions.

Part 1: LSTM and GRU, H=256, 28 inputs, 10 classes, 28 steps (random weights: sizes do not depend on
training), pruned by magnitude (unstructured) or with random 1x4 / 1x16 block masks.
Part 2: the project's standard dense digits LSTM (cached, see benchmarks/common.py), dense and 90%
magnitude-pruned with 5 epochs of masked fine-tuning: test accuracy of the fp32 and int8 files in LiteRT.

    python benchmarks/exports/tflite_sizes.py      # writes results/tflite_sizes.{md,json}
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import markdown_table, standard_dense_model, write_results  # noqa: E402

from edgeprune import data, frontend, prune  # noqa: E402
from edgeprune.backends import tflite as T  # noqa: E402
from edgeprune.models import ModelConfig, SequenceClassifier  # noqa: E402

HIDDEN, INPUTS, CLASSES, STEPS = 256, 28, 10, 28


def block_masked(model, width: int, sparsity: float, seed: int = 0):
    model = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name in layer.weight_names():
            rows, cols = getattr(layer, name).shape
            keep = np.repeat(rng.random((rows, -(-cols // width))) >= sparsity, width, axis=1)[:, :cols]
            layer.set_mask(name, torch.from_numpy(keep).float())
    return model


def sizes() -> tuple[list, list]:
    rows = []
    for cell in ("lstm", "gru"):
        torch.manual_seed(0)
        base = SequenceClassifier(ModelConfig(cell, INPUTS, (HIDDEN,), CLASSES)).eval()
        cases = [("dense", 0.0, base)]
        cases += [(f"magnitude {s:.0%}", s, prune.prune_model(base, "magnitude", s).model) for s in (0.5, 0.9, 0.95)]
        cases += [(f"1x{w} blocks 90%", 0.9, block_masked(base, w, 0.9)) for w in (4, 16)]
        for label, _, model in cases:
            irm = frontend.lower(model, {"sequence_length": STEPS})
            micro = len(T.build_micro_model(irm, STEPS))
            for dtype in ("f32", "int8"):
                step = T.build_step_model(irm, dtype)
                weight = T.read_metadata(step)["weights"]["layers.0.weight"]
                rows.append(
                    [
                        cell,
                        label,
                        irm.layers[0].weight.nnz,
                        dtype,
                        weight["encoding"],
                        weight["bytes"],
                        len(step),
                        len(T.build_sequence_model(irm, STEPS, dtype)),
                        micro if dtype == "f32" else "",
                    ]
                )
    columns = [
        "cell",
        "mask",
        "layer nnz",
        "--dtype",
        "layer weight stored as",
        "layer weight bytes",
        "model_step.tflite",
        f"model.tflite ({STEPS} steps)",
        "model_dense.tflite (TFLM)",
    ]
    return columns, rows


def int8_accuracy() -> tuple[list, list]:
    ds = data.load("digits")
    dense, _ = standard_dense_model("digits", "lstm", (64,))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pruned = prune.prune_model(dense, "magnitude", 0.9, dataset=ds, finetune_epochs=5, finetune_lr=1e-2).model
        for label, model in (("dense", dense), ("magnitude 90% + 5 fine-tune epochs", pruned)):
            irm = frontend.lower(model, {"sequence_length": ds.steps})
            with torch.no_grad():
                reference = model(torch.from_numpy(ds.X_test)).numpy()
            outs = {}
            for dtype in ("f32", "int8"):
                path = Path(tmp) / f"{dtype}.tflite"
                path.write_bytes(T.build_sequence_model(irm, ds.steps, dtype))
                outs[dtype] = T.LiteRTRunner(path).run(ds.X_test)
            for dtype, logits in outs.items():
                size = (Path(tmp) / f"{dtype}.tflite").stat().st_size
                rows.append(
                    [
                        label,
                        dtype,
                        f"{np.mean(logits.argmax(1) == ds.y_test):.2%}",
                        f"{np.mean(logits.argmax(1) == reference.argmax(1)):.2%}",
                        f"{np.max(np.abs(logits - reference)):.2e}",
                        size,
                    ]
                )
    columns = [
        "digits LSTM 64",
        "--dtype",
        "test accuracy",
        "argmax = torch",
        "max |logit - torch|",
        "model.tflite bytes",
    ]
    return columns, rows


def main():
    torch.set_num_threads(1)
    size_cols, size_rows = sizes()
    acc_cols, acc_rows = int8_accuracy()
    md = (
        f"## File sizes (bytes)\n\nH={HIDDEN}, {INPUTS} inputs, {CLASSES} classes; `--tflite-weights auto` "
        "(sparse only where that halves the bytes). The micro file is always dense fp32.\n\n"
        + markdown_table(size_cols, size_rows)
        + "\n\n## Int8 weights on a trained model (LiteRT, XNNPACK on)\n\n"
        + markdown_table(acc_cols, acc_rows)
        + "\n"
    )
    write_results(
        "tflite_sizes",
        {"sizes": [dict(zip(size_cols, r)) for r in size_rows], "int8": [dict(zip(acc_cols, r)) for r in acc_rows]},
        md,
    )
    print(md)


if __name__ == "__main__":
    main()
