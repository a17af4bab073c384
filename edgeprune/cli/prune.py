"""edgeprune prune: mask a checkpoint with a registered method, optionally fine-tune."""

from __future__ import annotations

import click

from .. import checkpoint, data, prune as pruning
from ..errors import DatasetError, EdgepruneError
from . import cli
from .common import console, plugin_options, show_progress, split_options

_method_options = plugin_options((name, m.options) for name, m in pruning.methods().items())


@cli.command("prune")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--method", required=True, type=click.Choice(list(pruning.methods())),
              help="mask method: " + "; ".join(f"{n} = {m.help}" for n, m in pruning.methods().items()))
@click.option("--sparsity", type=float, default=None, help="fraction of recurrent weights to remove, in [0, 1)")
@click.option("--finetune-epochs", type=int, default=0, show_default=True, help="masked fine-tuning epochs")
@click.option("--lr", type=float, default=None, help="fine-tuning learning rate (default: the training rate, else 1e-3)")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--prune-head/--no-prune-head", default=False, help="also mask the classifier head")
@click.option("--data", "dataset", default=None, help="dataset for fine-tuning/accuracy (default: the model's)")
@click.option("--data-dir", default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="checkpoint to write")
@_method_options
def prune_command(source, method, sparsity, finetune_epochs, lr, batch_size, prune_head, dataset, data_dir, seed,
                  progress, output, **kwargs):
    """Prune SOURCE (a checkpoint or an .onnx model) with METHOD and write the masked checkpoint."""
    method_opts, _ = split_options(kwargs, _method_options.names)
    if sparsity is not None:
        pruning.check_sparsity(sparsity)  # fail before any slow work
    if str(source).lower().endswith(".onnx"):
        from ..frontend.onnx_import import load_classifier

        model, meta = load_classifier(source)
    else:
        model, meta = checkpoint.load_with_meta(source)
    ds = None
    name = dataset or meta.get("dataset")
    needs_data = finetune_epochs > 0 or dataset is not None
    if name:
        try:
            ds = data.load(name, data_dir)
        except DatasetError as e:
            if needs_data:
                raise
            console.print(f"[yellow]note:[/] no accuracy report ({e})")
    elif needs_data:
        raise EdgepruneError("the checkpoint records no dataset; pass --data")
    if lr is None:
        lr = float(meta.get("training", {}).get("lr", 1e-3))
    outcome = pruning.prune_model(
        model, method, sparsity, seed=seed, options=method_opts, include_head=prune_head, dataset=ds,
        finetune_epochs=finetune_epochs, finetune_lr=lr, batch_size=batch_size, progress=show_progress(progress),
    )
    r = outcome.report
    new_meta = {**meta, "pruning": r, "parent": str(source)}
    if "accuracy_finetuned" in r or "accuracy_pruned" in r:
        new_meta["accuracy"] = r.get("accuracy_finetuned", r.get("accuracy_pruned"))
    checkpoint.save(outcome.model, output, new_meta)
    line = f"{method}: sparsity {r['sparsity']:.2%} of recurrent weights"
    if "accuracy_before" in r:
        line += f"; accuracy {r['accuracy_before']:.2%} dense -> {r['accuracy_pruned']:.2%} pruned"
        if "accuracy_finetuned" in r:
            line += f" -> {r['accuracy_finetuned']:.2%} after {finetune_epochs} fine-tune epochs"
    console.print(line)
    console.print(f"saved {output}")
