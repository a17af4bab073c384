"""edgeprune prune: mask a checkpoint with a registered method, optionally fine-tune."""

from __future__ import annotations

import click

from .. import checkpoint, data
from .. import prune as pruning
from ..errors import DatasetError, EdgepruneError
from ..fileio import check_writable
from ..metrics import describe as describe_metrics
from ..train import check_data_matches, check_learning_rate, parameter_count, use_threads
from . import cli
from .common import console, plugin_options, show_progress, split_options, threads_option

_method_options = plugin_options((name, m.options) for name, m in pruning.methods().items())


@cli.command("prune")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option(
    "--method",
    required=True,
    type=click.Choice(list(pruning.methods())),
    help="mask method: " + "; ".join(f"{n} = {m.help}" for n, m in pruning.methods().items()),
)
@click.option("--sparsity", type=float, default=None, help="fraction of recurrent weights to remove, in [0, 1)")
@click.option("--finetune-epochs", type=int, default=0, show_default=True, help="masked fine-tuning epochs")
@click.option(
    "--lr", type=float, default=None, help="fine-tuning learning rate (default: the training rate, else 1e-3)"
)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--prune-head/--no-prune-head", default=False, help="also mask the classifier head")
@click.option("--data", "dataset", default=None, help="dataset for fine-tuning/accuracy (default: the model's)")
@click.option("--data-dir", default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
@threads_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="checkpoint to write (an IR directory for an ONNX cell variant)",
)
@_method_options
def prune_command(
    source,
    method,
    sparsity,
    finetune_epochs,
    lr,
    batch_size,
    prune_head,
    dataset,
    data_dir,
    seed,
    progress,
    threads,
    output,
    **kwargs,
):
    """Prune SOURCE (a checkpoint or an .onnx model) with METHOD and write the masked checkpoint."""
    method_opts, _ = split_options(kwargs, _method_options.names)
    # fail before any slow work
    check_writable(output)
    if sparsity is not None:
        pruning.check_sparsity(sparsity)
    if lr is not None:
        check_learning_rate(lr)
    if finetune_epochs < 0 or batch_size < 1:
        raise EdgepruneError("--finetune-epochs must be >= 0 and --batch-size >= 1")
    if threads is not None and threads < 1:
        raise EdgepruneError(f"--threads must be >= 1, got {threads}")
    if str(source).lower().endswith(".onnx"):
        from ..frontend.onnx import import_onnx, load_classifier

        imported = import_onnx(source).model
        if any(not s.default_cell for s in imported.recurrent()):
            return _prune_variant_ir(
                imported, source, method, sparsity, finetune_epochs, dataset, seed, prune_head, method_opts, output
            )
        model, meta = load_classifier(source)
    else:
        model, meta = checkpoint.load_with_meta(source)
    ds = None
    name = dataset or meta.get("dataset")
    needs_data = finetune_epochs > 0 or dataset is not None
    if name:
        try:
            ds = data.load(name, data_dir, layouts=data.ANY_LAYOUT, variable_length=True)
        except DatasetError as e:
            if needs_data:
                raise
            console.print(f"[yellow]note:[/] no accuracy report ({e})")
    elif needs_data:
        raise EdgepruneError("the checkpoint records no dataset; pass --data")
    if ds is not None:
        check_data_matches(model.config, ds)
    if lr is None:
        lr = float(meta.get("training", {}).get("lr", 1e-3))
    threads = use_threads(threads, parameter_count(model.config))
    outcome = pruning.prune_model(
        model,
        method,
        sparsity,
        seed=seed,
        options=method_opts,
        include_head=prune_head,
        dataset=ds,
        finetune_epochs=finetune_epochs,
        finetune_lr=lr,
        batch_size=batch_size,
        progress=show_progress(progress),
    )
    r = outcome.report
    new_meta = {**meta, "pruning": {**r, "threads": threads}, "parent": str(source)}
    if "accuracy_finetuned" in r or "accuracy_pruned" in r:
        new_meta["accuracy"] = r.get("accuracy_finetuned", r.get("accuracy_pruned"))
    checkpoint.save(outcome.model, output, new_meta)
    what = "recurrent weights" if model.config.is_v1_shape() else "weights (head excluded)"
    line = f"{method}: sparsity {r['sparsity']:.2%} of {what}"
    if "accuracy_before" in r:
        line += f"; accuracy {r['accuracy_before']:.2%} dense -> {r['accuracy_pruned']:.2%} pruned"
        if "accuracy_finetuned" in r:
            line += f" -> {r['accuracy_finetuned']:.2%} after {finetune_epochs} fine-tune epochs"
    elif "test_before" in r:
        line += f"; {describe_metrics(r['test_before'])} dense -> {describe_metrics(r['test_pruned'])} pruned"
        if "test_finetuned" in r:
            line += f" -> {describe_metrics(r['test_finetuned'])} after {finetune_epochs} fine-tune epochs"
    console.print(line)
    console.print(f"saved {output}")


def _prune_variant_ir(model, source, method, sparsity, finetune_epochs, dataset, seed, prune_head, method_opts, output):
    """An ONNX cell variant (ir.cells: GRU linear_before_reset=0, clip, activations, ...) has no torch module:
    its masks are computed on torch's cell with the same weights (the methods read weights only), put back
    on the IR stages, and the pruned IR directory is written (``edgeprune compile DIR`` takes it). No
    fine-tuning or accuracy: both would run torch's cell, not this one."""
    import dataclasses
    from pathlib import Path

    from .. import ir
    from ..frontend import lower
    from ..frontend.torch_lifting import lift

    variant = next(
        f"{n} ({s.cell}{s.describe_variant()})"
        for n, s in model.named_stages()
        if isinstance(s, ir.Recurrent) and not s.default_cell
    )
    if finetune_epochs or dataset:
        raise EdgepruneError(
            f"{variant} cannot be fine-tuned or evaluated through torch: drop --finetune-epochs/--data"
        )
    if Path(output).suffix.lower() in (".pt", ".pth"):
        raise EdgepruneError(f"{variant} has no torch checkpoint: give -o a directory for the pruned IR")
    check_writable(output, directory=True)
    outcome = pruning.prune_model(
        lift(model, weights_only=True), method, sparsity, seed=seed, options=method_opts, include_head=prune_head
    )
    if outcome.report.get("reinitialized"):
        raise EdgepruneError(
            f"method '{method}' re-draws the weights for training from scratch, which {variant} cannot do"
        )
    lowered = lower(outcome.model)
    stages = [
        dataclasses.replace(old, weight=new.weight) if hasattr(old, "weight") else old
        for old, new in zip(model.stages, lowered.stages, strict=True)
    ]
    pruned = dataclasses.replace(
        model, stages=stages, meta={**model.meta, "pruning": outcome.report, "parent": str(source)}
    )
    ir.save(pruned, output)
    r = outcome.report
    console.print(f"{method}: sparsity {r['sparsity']:.2%} of the weights; {variant} kept as it is")
    console.print(f"saved {output} (an IR directory: edgeprune compile {output})")
