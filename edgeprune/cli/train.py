"""edgeprune train: train a dense recurrent classifier on a dataset."""

from __future__ import annotations

import click

from .. import checkpoint, data, modelspec
from ..errors import EdgepruneError
from ..fileio import check_writable
from ..models import CELLS, ModelConfig, SequenceClassifier
from ..train import check_learning_rate, check_model_fits, fit_normalize, seed_everything, use_threads
from ..train import train as run_training
from . import cli
from .common import console, show_progress, threads_option

DEFAULT_EPOCHS = {
    "digits": 30,
    "mnist5k": 15,
    "fashion-mnist": 5,
    "japanese-vowels": 30,
    "basic-motions": 60,
    "pickup-gesture": 60,
    "motion-stream": 30,
    "daphnet-predict": 30,
    "daphnet-denoise": 30,
}


def parse_hidden(hidden: str, layers: int | None) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise EdgepruneError(f"--hidden must be a size or comma-separated sizes, got '{hidden}'") from None
    if layers is not None:
        if layers < 1:
            raise EdgepruneError(f"--layers must be >= 1, got {layers}")
        if len(sizes) == 1:
            sizes = sizes * layers
        elif len(sizes) != layers:
            raise EdgepruneError(f"--hidden gives {len(sizes)} sizes but --layers is {layers}")
    return sizes


def model_config(ds, model_text, outputs, normalize, cell, sizes, feedback) -> modelspec.ModelSpec:
    """The spec to train: ``--model`` or the v1 flags, the output mode and task from the labels, and a
    leading normalize stage when asked (or when the data leaves [0, 1])."""
    data_output = "every" if ds.labels == "step" else "last"
    output = outputs or data_output
    if output != data_output:
        per = "one label per step" if data_output == "every" else "one label per sequence"
        raise EdgepruneError(f"--outputs {output} does not fit {ds.name}: its labels have {per}")
    if model_text:
        spec = modelspec.parse(model_text, ds.features, ds.outputs, output=output, task=ds.task)
    else:
        base = ModelConfig(cell, ds.features, sizes, ds.outputs, feedback)
        spec = modelspec.ModelSpec(ds.features, base.stages, output, ds.task)
    if normalize is None:
        normalize = ds.task == "regress" or (float(ds.X_train.min()) < 0.0 or float(ds.X_train.max()) > 1.0)
    if normalize and spec.stages[0].kind != "normalize":
        spec = modelspec.ModelSpec(ds.features, (modelspec.StageSpec("normalize"), *spec.stages), output, ds.task)
    return spec


@cli.command()
@click.option(
    "--data",
    "dataset",
    default="digits",
    show_default=True,
    help="digits, mnist5k, fashion-mnist, japanese-vowels, basic-motions, pickup-gesture, motion-stream, "
    "daphnet-predict, daphnet-denoise, or a .npz (docs/tasks.md)",
)
@click.option("--data-dir", default=None, help="directory with the fashion-mnist IDX files")
@click.option(
    "--model",
    "model_text",
    default=None,
    help="a chain of stages, e.g. 'dense:64:relu,gru:64,dense:12' (see docs/architecture.md); "
    "replaces --cell/--hidden/--layers/--feedback",
)
@click.option(
    "--outputs",
    type=click.Choice(["last", "every"]),
    default=None,
    help="one output per sequence or one per step (default: from the labels' shape)",
)
@click.option(
    "--normalize/--no-normalize",
    "normalize",
    default=None,
    help="start with a normalize stage fitted on the training split (default: when the data leaves [0, 1])",
)
@click.option("--cell", type=click.Choice(CELLS), default="lstm", show_default=True)
@click.option("--hidden", default="64", show_default=True, help="hidden size, or one size per layer: 128,64")
@click.option("--layers", type=int, default=None, help="number of layers (repeats --hidden)")
@click.option("--feedback/--no-feedback", default=False, help="top-down feedback from layer l+1 at t-1 to layer l")
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="default: per dataset (30 digits, 15 mnist5k, 5 fashion-mnist, 30-60 recordings)",
)
@click.option("--lr", type=float, default=1e-2, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-train-samples", type=int, default=None, help="train on a fixed random subset")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
@threads_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="checkpoint to write")
def train(
    dataset,
    data_dir,
    model_text,
    outputs,
    normalize,
    cell,
    hidden,
    layers,
    feedback,
    epochs,
    lr,
    batch_size,
    max_train_samples,
    seed,
    progress,
    threads,
    output,
):
    """Train a recurrent model (classifier or regressor) and save it as a checkpoint."""
    check_writable(output)  # before minutes of training, not after
    check_learning_rate(lr)
    if (epochs is not None and epochs < 1) or batch_size < 1:
        raise EdgepruneError("--epochs and --batch-size must be >= 1")
    if max_train_samples is not None and max_train_samples < 1:
        raise EdgepruneError(f"--max-train-samples must be >= 1, got {max_train_samples}")
    if threads is not None and threads < 1:
        raise EdgepruneError(f"--threads must be >= 1, got {threads}")
    sizes = parse_hidden(hidden, layers)
    ds = data.load(dataset, data_dir, layouts=data.ANY_LAYOUT, variable_length=True)
    epochs = DEFAULT_EPOCHS.get(ds.name, 10) if epochs is None else epochs
    config = model_config(ds, model_text, outputs, normalize, cell, sizes, feedback)
    threads = use_threads(threads, check_model_fits(config))  # refuses what cannot be allocated, with its size
    console.print(f"{ds.describe()}\nmodel: {config.describe()}")
    seed_everything(seed)
    model = SequenceClassifier(config)
    fit_normalize(model, ds)
    result = run_training(
        model,
        ds,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=show_progress(progress),
        max_train_samples=max_train_samples,
    )
    meta = {
        "dataset": dataset,
        "sequence_length": ds.steps,
        "training": {
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "max_train_samples": max_train_samples,
            "threads": threads,
            "history": result.history,
        },
        "test_metrics": result.test_metrics,
    }
    if (
        model.config.task == "classify"
    ):  # a regressor has no accuracy (NaN is not JSON): its MSE/SNR are in test_metrics
        meta["accuracy"] = result.test_accuracy
    checkpoint.save(model, output, meta)
    console.print(f"{result.describe()} after {epochs} epochs ({result.seconds:.1f} s); saved {output}")
