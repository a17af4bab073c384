"""edgeprune demo: the whole pipeline on bundled data, in about a minute."""

from __future__ import annotations

import click

from ..demo import run_demo
from ..fileio import check_writable
from . import cli
from .common import console, show_progress, table, threads_option
from .compile import print_report


@cli.command()
@click.option("-o", "--output", default="edgeprune-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
@threads_option
def demo(output, seed, progress, threads):
    """Train an LSTM on digits, prune it 90%, compile it for every target and verify each artifact."""
    check_writable(output, directory=True)  # before training, not after
    result = run_demo(output, seed=seed, progress=show_progress(progress), log=console.print, threads=threads)
    console.print(
        table(
            "dense vs pruned (digits, LSTM-64)",
            ["model", "test accuracy", "recurrent nnz", "sparsity"],
            ([name, f"{acc:.2%}", f"{nnz:,}", f"{sp:.0%}"] for name, acc, nnz, sp in result.rows),
        )
    )
    print_report(result.compile_report)
    console.print(f"outputs in {result.out_dir}/")
