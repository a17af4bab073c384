"""edgeprune inspect: per-weight and per-layer structure of a checkpoint."""

from __future__ import annotations

import click

from .. import checkpoint
from ..fileio import dumps_json
from ..inspection import inspect_model
from . import cli
from .common import console, table


@cli.command("inspect")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the machine-readable report")
@click.option("--analysis/--no-analysis", default=True, help="include graph analyses (slower on big models)")
def inspect_command(source, as_json, analysis):
    """Shapes, nonzeros, sparsity and degrees of every weight in SOURCE."""
    model, meta = checkpoint.load_with_meta(source)
    doc, sections = inspect_model(model, meta, source=str(source), analyses=analysis)
    if as_json:
        click.echo(dumps_json(doc), nl=False)
        return
    t = doc["totals"]
    console.print(f"{source}: {model.config.describe()}")
    console.print(
        table(
            None,
            ["weight", "shape", "nnz", "sparsity", "row deg min", "row deg max"],
            (
                [
                    w["name"],
                    "x".join(map(str, w["shape"])),
                    w["nnz"],
                    f"{w['sparsity']:.2%}",
                    w["row_degree"]["min"],
                    w["row_degree"]["max"],
                ]
                for w in doc["weights"]
            ),
        )
    )
    what = "recurrent weights" if t["matrix_weights"] == t["recurrent_weights"] else "weights (head excluded)"
    console.print(
        f"parameters {t['parameters']:,} ({t['nonzero_parameters']:,} nonzero); {what} "
        f"{t['matrix_nnz']:,} / {t['matrix_weights']:,} kept, sparsity {t['matrix_sparsity']:.2%}"
    )
    for s in sections:
        console.print(table(s.title, s.columns, s.rows))
