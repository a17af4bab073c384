"""edgeprune sweep: a method x sparsity x seed grid, one Ray task per cell, resumable from RUN_DIR."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import click

from .. import prune as pruning
from ..errors import EdgepruneError
from . import cli
from .common import console, csv_list, float_list, int_list, plugin_options, show_progress, split_options, table

_method_options = plugin_options((name, m.options) for name, m in pruning.methods().items())

DEFAULTS = {
    "methods": "magnitude",
    "sparsities": "0.5,0.8,0.9,0.95",
    "seeds": "0",
    "finetune_epochs": 0,
    "targets": "c",
    "cluster": "local",
    "batch_size": 32,
}


class _RichProgress:
    """A progress bar on stderr (cells done / total, failures, ETA); finished cells print above it."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.progress = None

    def start(self, total: int, done: int, executor: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.failed = 0
        self.progress = Progress(
            TextColumn("sweep [dim]({task.fields[executor]})[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("cells", total=total, completed=done, executor=executor, failed=0)
        self.progress.start()

    def advance(self, record: dict) -> None:
        self.failed += record["status"] != "ok"
        self.progress.update(self.task, advance=1, failed=self.failed)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def log(self, message: str) -> None:
        self.console.print(message, style="dim", markup=False, highlight=False)


@contextmanager
def _sigterm_interrupts():
    """SIGTERM stops the sweep like Ctrl-C: cells in flight are dropped, everything finished is kept."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command("sweep")
@click.argument("source", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="sweep.toml with any of the settings below (flags win)",
)
@click.option("--methods", default=None, help=f"comma list of pruning methods [default: {DEFAULTS['methods']}]")
@click.option("--sparsities", default=None, help=f"comma list [default: {DEFAULTS['sparsities']}]")
@click.option("--seeds", default=None, help="comma list of seeds [default: 0]")
@click.option("--finetune-epochs", type=int, default=None, help="masked fine-tuning per cell [default: 0]")
@click.option(
    "--lr", "finetune_lr", type=float, default=None, help="fine-tuning rate (default: the training rate, else 1e-3)"
)
@click.option("--batch-size", type=int, default=None, help="fine-tuning batch size [default: 32]")
@click.option("--targets", default=None, help="comma list of compile targets per cell [default: c]")
@click.option("--variants", default=None, help="compile options per target, e.g. 'c:kernel=csr' (see bench --help)")
@click.option("--data", "dataset", default=None, help="dataset (default: the model's), or a .npz")
@click.option("--data-dir", default=None)
@click.option("--accuracy-samples", type=int, default=None, help="test samples for accuracy (default: the whole split)")
@click.option(
    "--device",
    default=None,
    help="also measure latency on this bench device (local, ssh://..., qemu-m4, ...), from each worker",
)
@click.option("--ssh-config", default=None, type=click.Path(dir_okay=False), help="ssh_config for ssh:// devices")
@click.option("--quick", is_flag=True, default=None, help="latency: few repetitions (same statistics, wider intervals)")
@click.option(
    "--cluster",
    default=None,
    help="local (a Ray instance sized to this machine; serial if Ray is missing), serial, auto (the Ray "
    "cluster this machine is part of) or ray://HOST:PORT [default: local]",
)
@click.option("--parallel", type=int, default=None, help="cells in flight at once (default: the cluster's CPUs)")
@click.option("--retry-failed", is_flag=True, help="run the cells recorded as failed again")
@click.option(
    "--ship-code/--no-ship-code",
    default=True,
    show_default=True,
    help="upload this edgeprune to the cluster's workers (auto, ray://); off: use the one installed there",
)
@click.option("--plugin", "plugins", multiple=True, help="module each worker imports first (registers custom methods)")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
@click.option(
    "-o",
    "--output",
    "run_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="RUN_DIR: one JSON per cell, the index and the report; rerun to resume",
)
@_method_options
def sweep_command(
    source,
    config_path,
    methods,
    sparsities,
    seeds,
    finetune_epochs,
    finetune_lr,
    batch_size,
    targets,
    variants,
    dataset,
    data_dir,
    accuracy_samples,
    device,
    ssh_config,
    quick,
    cluster,
    parallel,
    retry_failed,
    ship_code,
    plugins,
    progress,
    run_dir,
    **kwargs,
):
    """Prune, fine-tune, compile, verify and measure SOURCE (a checkpoint) at every (method, sparsity, seed).

    Each cell is a Ray task; results stream to RUN_DIR as they finish, so an interrupted sweep
    resumes where it stopped when run again with the same RUN_DIR. See docs/sweeps.md.
    """
    from ..bench.runtimes import parse_variants
    from ..bench.settings import BenchSettings
    from ..bench.stats import Budget
    from ..sweep.spec import SweepSpec, read_toml

    config = read_toml(config_path) if config_path else {}
    method_opts, _ = split_options(kwargs, _method_options.names)
    options = {**config.get("method_options", {}), **{k: v for k, v in method_opts.items() if v is not None}}

    def pick(flag_value, key):
        if flag_value is not None and flag_value != ():
            return flag_value
        return config.get(key, DEFAULTS.get(key))

    def as_list(value, parse, flag):
        return parse(value, flag) if isinstance(value, str) else list(value)

    source = source or config.get("checkpoint")
    if not source:
        raise EdgepruneError("give a checkpoint (SOURCE, or 'checkpoint' in --config)")
    run_dir = run_dir or None
    if not run_dir:
        raise EdgepruneError("-o/--output RUN_DIR is required (where the cells and the report go)")
    from ..fileio import check_writable

    check_writable(run_dir, directory=True)  # before any cell runs, not after
    if parallel is not None and parallel < 1:
        raise EdgepruneError(f"--parallel must be >= 1, got {parallel}")
    parallel = parallel if parallel is not None else config.get("parallel")
    target_list = as_list(pick(targets, "targets"), lambda v, f: csv_list(v) or [], "--targets")
    chosen_variants = parse_variants(variants) if variants else None
    device = pick(device, "device")
    settings = (
        BenchSettings(budget=Budget.quick(), latency_sequences=4, keep_samples=False)
        if quick
        else BenchSettings(keep_samples=False)
    )
    spec = SweepSpec(
        checkpoint=str(source),
        methods=as_list(pick(methods, "methods"), lambda v, f: csv_list(v) or [], "--methods"),
        sparsities=[float(s) for s in as_list(pick(sparsities, "sparsities"), float_list, "--sparsities")],
        seeds=[int(s) for s in as_list(pick(seeds, "seeds"), int_list, "--seeds")],
        finetune_epochs=int(pick(finetune_epochs, "finetune_epochs")),
        finetune_lr=pick(finetune_lr, "finetune_lr"),
        batch_size=int(pick(batch_size, "batch_size")),
        method_options=options,
        targets=target_list,
        variants=chosen_variants,
        data=pick(dataset, "data"),
        data_dir=pick(data_dir, "data_dir"),
        accuracy_samples=pick(accuracy_samples, "accuracy_samples"),
        device=device,
        ssh_config=pick(ssh_config, "ssh_config"),
        bench=settings if device else None,
        plugins=list(pick(tuple(plugins), "plugins") or []),
    )
    if device:
        from ..bench import devices

        devices.parse(device, ssh_config=spec.ssh_config)  # a bad URL fails before any work
    _run(spec, run_dir, pick(cluster, "cluster"), parallel, retry_failed, progress, ship_code)


def _run(spec, run_dir: str, cluster: str, parallel, retry_failed: bool, progress_flag, ship_code: bool) -> None:
    from ..sweep.run import run_sweep

    bar = _RichProgress() if show_progress(progress_flag) else None
    log = bar.log if bar else (lambda m: console.print(m, style="dim", markup=False, highlight=False))
    try:
        with _sigterm_interrupts():
            outcome = run_sweep(
                spec,
                run_dir,
                cluster=cluster,
                parallel=parallel,
                retry_failed=retry_failed,
                progress=bar,
                log=log,
                ship_code=ship_code,
            )
    except KeyboardInterrupt:
        saved = len(list((Path(run_dir) / "cells").glob("*.json")))
        total = len(spec.cells())
        raise EdgepruneError(
            f"interrupted: {saved} of {total} cells are saved in {run_dir}; run the same command "
            "again to finish the others"
        ) from None
    _summary(outcome)


def _summary(outcome) -> None:
    from ..bench.report import fmt_bytes
    from ..sweep.report import pareto_sets
    from ..sweep.rundir import headline

    rows = []
    metric = "accuracy"
    for key, r in outcome.records.items():
        h = headline(r)
        if h["metric"] == "mse":
            metric = "MSE"
        rows.append(
            [
                r["method"],
                f"{r['sparsity']:g}",
                r["seed"],
                "ok" if r["status"] == "ok" else f"FAILED ({r['stage']}): {r['error'][:70]}",
                f"{h['achieved_sparsity']:.3f}" if h["achieved_sparsity"] is not None else "-",
                h["metric_text"],
                h["runtime"] or "-",
                fmt_bytes(h["storage_bytes"]),
                f"{h['wall_s']:.1f}" if h["wall_s"] else "-",
                "" if key in outcome.ran else "earlier run",
            ]
        )
    console.print(
        table(
            f"sweep {outcome.run_dir} ({outcome.executor})",
            ["method", "sparsity", "seed", "status", "achieved", metric, "via", "weights+idx", "s", ""],
            rows,
        )
    )
    if outcome.report:
        for _name, _key, label, front in pareto_sets(outcome.report):
            points = ", ".join(f"{p['method']} {p['sparsity']:.2f}" for p in front)
            console.print(f"Pareto front, {metric} vs {label}: {points}", markup=False, highlight=False)
        console.print(f"report: {outcome.run_dir / 'report'} ({', '.join(p.name for p in outcome.report_files)})")
    failed = outcome.failed
    if failed:
        first = failed[0]
        raise EdgepruneError(
            f"{len(failed)} of {len(outcome.records)} cells failed (first: {first['key']}, in "
            f"{first['stage']}: {first['error']}); records in {outcome.run_dir / 'cells'}"
        )
