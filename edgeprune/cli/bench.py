"""edgeprune bench: latency, memory and accuracy of every runtime, on the host or a device."""

from __future__ import annotations

import click

from ..errors import EdgepruneError
from . import cli
from .common import console, csv_list


@cli.command("bench")
@click.argument("source", type=click.Path())
@click.option(
    "--device",
    default="local",
    show_default=True,
    help="local, ssh://[user@]host[:port], qemu-aarch64, qemu-m4, qemu-x86_64 (instruction counts), "
    "serial:///dev/ttyX or serial:socket://host:port",
)
@click.option(
    "--runtimes", default=None, help="comma list of runtime ids/targets/globs to measure (default: all), e.g. torch,c*"
)
@click.option(
    "--peers",
    default=None,
    help="also measure the model in other on-device runtimes: executorch, litert-torch or all (their packages "
    "in this Python or in the one EDGEPRUNE_PEERS_PYTHON names; skipped with the reason where absent)",
)
@click.option(
    "--variants",
    default=None,
    help="compile variants, e.g. 'c:kernel=dense,csr;tflite:tflite_weights=sparse' "
    "(default: each C format, LiteRT dense and sparse)",
)
@click.option("--data", "dataset", default=None, help="dataset (default: the model's), or a .npz")
@click.option("--data-dir", default=None)
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="write results here (updated after every runtime, so partial results survive)",
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="write report.md, result.json and PNG plots here",
)
@click.option("--threads", type=int, default=1, show_default=True, help="threads per runtime")
@click.option(
    "--time-budget", type=float, default=2.0, show_default=True, help="seconds of timing per runtime and mode"
)
@click.option("--min-reps", type=int, default=200, show_default=True)
@click.option("--max-reps", type=int, default=5000, show_default=True)
@click.option(
    "--target-ci",
    type=float,
    default=0.01,
    show_default=True,
    help="stop once the 95% CI of the median is within this fraction of it",
)
@click.option("--quick", is_flag=True, help="few repetitions (smoke runs): same statistics, wider intervals")
@click.option("--accuracy-samples", type=int, default=None, help="test samples for accuracy (default: the whole split)")
@click.option(
    "--latency-sequences",
    type=int,
    default=16,
    show_default=True,
    help="test sequences the latency loops cycle through",
)
@click.option(
    "--device-samples", type=int, default=32, show_default=True, help="test sequences embedded in device programs"
)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="seconds per runtime before giving up")
@click.option(
    "--ssh-config", default=None, type=click.Path(dir_okay=False), help="ssh_config file for ssh:// devices (ssh -F)"
)
@click.option(
    "--native/--no-native",
    default=True,
    show_default=True,
    help="on the host, also run artifacts as native programs (the kernel without Python)",
)
@click.option("--isolate/--no-isolate", default=True, show_default=True, help="each Python runtime in its own process")
@click.option(
    "--samples/--no-samples", "keep_samples", default=True, show_default=True, help="keep raw timings in the JSON"
)
@click.option(
    "--keep-artifacts", default=None, type=click.Path(file_okay=False), help="compile a checkpoint into this directory"
)
# bench --sweep was a second grid runner; `edgeprune sweep` is the one (hidden: only to say so in one line)
@click.option("--sweep", is_flag=True, hidden=True)
def bench_command(
    source,
    device,
    runtimes,
    peers,
    variants,
    dataset,
    data_dir,
    json_path,
    report_dir,
    threads,
    time_budget,
    min_reps,
    max_reps,
    target_ci,
    quick,
    accuracy_samples,
    latency_sequences,
    device_samples,
    timeout,
    ssh_config,
    native,
    isolate,
    keep_samples,
    keep_artifacts,
    sweep,
):
    """Benchmark SOURCE: a checkpoint (compiled here for every available target) or a compile output.

    For a method x sparsity grid pruned from a checkpoint, see `edgeprune sweep` (--device measures latency).
    """
    if sweep:
        raise EdgepruneError(
            "bench --sweep is now `edgeprune sweep CHECKPOINT --methods ... --sparsities ... "
            "--device DEVICE -o RUN_DIR` (docs/sweeps.md)"
        )
    from ..fileio import check_writable

    # outputs are checked before minutes of benchmarking, not after
    if json_path:
        check_writable(json_path)
    if report_dir:
        check_writable(report_dir, directory=True)
    if keep_artifacts:
        check_writable(keep_artifacts, directory=True)
    from ..bench import devices
    from ..bench.harness import bench
    from ..bench.peers import parse as parse_peers
    from ..bench.runtimes import parse_variants
    from ..bench.settings import BenchSettings
    from ..bench.stats import Budget

    if threads < 1:
        raise EdgepruneError(f"--threads must be >= 1, got {threads}")
    for flag, v in (
        ("--min-reps", min_reps),
        ("--max-reps", max_reps),
        ("--latency-sequences", latency_sequences),
        ("--device-samples", device_samples),
    ):
        if v < 1:
            raise EdgepruneError(f"{flag} must be >= 1, got {v}")
    if min_reps > max_reps:
        raise EdgepruneError(f"--min-reps ({min_reps}) is larger than --max-reps ({max_reps})")
    if accuracy_samples is not None and accuracy_samples < 1:
        raise EdgepruneError(f"--accuracy-samples must be >= 1, got {accuracy_samples}")
    budget = (
        Budget.quick() if quick else Budget(min_reps=min_reps, max_reps=max_reps, time_s=time_budget, rel_ci=target_ci)
    )
    settings = BenchSettings(
        budget=budget,
        threads=threads,
        isolate=isolate,
        latency_sequences=latency_sequences,
        accuracy_samples=accuracy_samples,
        device_samples=device_samples,
        timeout_s=timeout,
        native=native,
        keep_samples=keep_samples,
    )
    the_device = devices.parse(device, ssh_config=ssh_config)  # a bad URL fails before any work
    runtime_patterns = csv_list(runtimes)
    chosen_peers = parse_peers(csv_list(peers))
    chosen_variants = parse_variants(variants)

    def log(message: str) -> None:
        console.print(message, style="dim", markup=False, highlight=False)

    try:
        doc = bench(
            source,
            the_device,
            settings,
            runtimes=runtime_patterns,
            peers=chosen_peers,
            variants=chosen_variants,
            data=dataset,
            data_dir=data_dir,
            json_path=json_path,
            keep_artifacts=keep_artifacts,
            log=log,
        )
    except EdgepruneError as e:
        partial = getattr(e, "doc", None)
        if partial is not None:
            _show(partial, report_dir, json_path)
        raise
    _show(doc, report_dir, json_path)


def _show(doc: dict, report_dir: str | None, json_path: str | None) -> None:
    from ..bench import report

    if doc["runtimes"]:
        console.print(report.console_table(doc))
    for line in report.notes(doc):
        console.print(f"  {line}", markup=False, highlight=False)
    if report_dir:
        written = report.write_report(doc, report_dir)
        console.print(f"wrote {', '.join(p.name for p in written)} to {report_dir}")
    if json_path:
        console.print(f"results: {json_path}")
