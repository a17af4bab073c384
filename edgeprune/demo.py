"""The demo pipeline: train -> prune -> compile -> verify, on the bundled digits data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import backends, checkpoint, data, prune
from .compiler import CompileReport, compile_source, load_source, verification_inputs
from .models import ModelConfig, SequenceClassifier
from .train import parameter_count, seed_everything, train, use_threads


@dataclass
class DemoResult:
    rows: list[list]  # model, accuracy, recurrent nnz, sparsity
    compile_report: CompileReport
    out_dir: Path


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    hidden: int = 64,
    epochs: int = 30,
    sparsity: float = 0.9,
    finetune_epochs: int = 15,
    progress: bool = False,
    log=print,
    threads: int | None = None,
) -> DemoResult:
    out_dir = Path(out_dir)
    ds = data.load("digits")
    log(ds.describe())
    config = ModelConfig("lstm", ds.features, (hidden,), ds.num_classes)
    use_threads(threads, parameter_count(config))
    seed_everything(seed)
    model = SequenceClassifier(config)
    trained = train(model, ds, epochs=epochs, lr=1e-2, seed=seed, progress=progress, description="train LSTM")
    log(f"trained LSTM-{hidden}: test accuracy {trained.test_accuracy:.2%} ({trained.seconds:.1f} s)")
    meta = {"dataset": "digits", "sequence_length": ds.steps, "accuracy": trained.test_accuracy}
    checkpoint.save(model, out_dir / "dense.pt", meta)

    outcome = prune.prune_model(
        model,
        "magnitude",
        sparsity,
        seed=seed,
        dataset=ds,
        finetune_epochs=finetune_epochs,
        finetune_lr=1e-2,
        progress=progress,
    )
    r = outcome.report
    log(
        f"pruned {r['sparsity']:.0%} (magnitude): {r['accuracy_pruned']:.2%} -> "
        f"{r['accuracy_finetuned']:.2%} after {finetune_epochs} fine-tune epochs"
    )
    pruned_path = checkpoint.save(
        outcome.model, out_dir / "pruned.pt", {**meta, "pruning": r, "accuracy": r["accuracy_finetuned"]}
    )

    targets = [b.name for b in backends.all_backends() if b.unavailable() is None]
    source = load_source(pruned_path)
    X, described = verification_inputs(source, "auto", 256)
    report = compile_source(source, targets, out_dir / "compiled", X_verify=X, data_description=described)
    dense_nnz = sum(int(p.numel()) for p in model.prunable(include_head=False).values())
    rows = [
        ["dense", trained.test_accuracy, dense_nnz, 0.0],
        [
            f"pruned (magnitude {sparsity:.0%} + {finetune_epochs} ep fine-tune)",
            r["accuracy_finetuned"],
            source.model.nnz(),
            r["sparsity"],
        ],
    ]
    return DemoResult(rows, report, out_dir)
