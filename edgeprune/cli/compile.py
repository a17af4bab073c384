"""edgeprune compile: IR -> artifacts for each target, verified in their own runtimes."""

from __future__ import annotations

import click

from .. import backends
from ..compiler import compile_source, load_source, verification_inputs
from ..errors import EdgepruneError
from ..fileio import check_writable
from . import cli
from .common import console, human_bytes, plugin_options, split_options, table

_backend_options = plugin_options((b.name, b.options) for b in backends.all_backends())


def parse_targets(spec: str) -> list[str]:
    available = backends.names()
    if spec == "all":
        return [b for b in available if backends.get(b).unavailable() is None]
    targets = [t.strip() for t in spec.split(",") if t.strip()]
    if not targets:
        raise EdgepruneError("--target is empty")
    for t in targets:
        backends.get(t)  # raises with the list of targets
    return list(dict.fromkeys(targets))


def print_report(report) -> None:
    sizes = {(f"{sub}/{a.name}" if sub else a.name): a.size_bytes(report.out_dir / sub) for sub, a in report.artifacts}
    infos = {(f"{sub}/{a.name}" if sub else a.name): a.info for sub, a in report.artifacts}
    # Backends that know what a device needs report flash/RAM/bytes per nonzero; others show "-".
    device = any("flash_bytes" in info for info in infos.values())
    rows = []
    for r in report.results:
        info = infos.get(r.artifact, {})
        agreement = f"{r.argmax_agreement:.2%}" if r.task == "classify" else "-"
        row = [
            r.artifact,
            r.runtime,
            r.mode,
            f"{r.max_abs_error:.2e}",
            agreement,
            human_bytes(sizes.get(r.artifact, 0)),
        ]
        if device:
            row += [
                human_bytes(info["flash_bytes"]) if "flash_bytes" in info else "-",
                human_bytes(info["ram_bytes"]) if "ram_bytes" in info else "-",
                f"{info['bytes_per_nonzero']:.2f}" if info.get("bytes_per_nonzero") else "-",
            ]
        rows.append(row + ["ok" if r.passed else "FAILED"])
    columns = ["artifact", "runtime", "mode", "max |err|", "argmax agree", "size"]
    columns += ["flash", "RAM", "B/nnz"] if device else []
    console.print(table(f"verification against {report.reference} on {report.data}", columns + [""], rows))
    for sub, a in report.artifacts:  # a backend's own per-matrix report (formats, sizes), if it has one
        for line in a.info.get("summary", []):
            console.print(f"{sub + '/' if sub else ''}{a.name}: {line}", highlight=False)
    unverified = [f"{sub}/{a.name}" if sub else a.name for sub, a in report.artifacts if not a.verify]
    if unverified:
        console.print(f"not run on this host (no runtime here): {', '.join(unverified)}")


@cli.command("compile")
@click.argument("source", type=click.Path())
@click.option(
    "--target",
    "target_spec",
    default="ir",
    show_default=True,
    help=f"one of {', '.join(backends.names())}, a comma list, or all",
)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="output directory")
@click.option("--verify-samples", type=int, default=256, show_default=True, help="samples for the verification gate")
@click.option(
    "--verify-data",
    default="auto",
    show_default=True,
    help="auto (the model's dataset), a dataset name or .npz, or random",
)
@click.option(
    "--seq-len",
    type=int,
    default=None,
    help="steps of random verification sequences (default: the model's recorded length, else 16)",
)
@click.option("--data-dir", default=None)
@_backend_options
def compile_command(source, target_spec, output, verify_samples, verify_data, seq_len, data_dir, **kwargs):
    """Compile SOURCE (a checkpoint, IR directory or .onnx model) and verify every artifact against it."""
    backend_opts, _ = split_options(kwargs, _backend_options.names)
    check_writable(output, directory=True)
    targets = parse_targets(target_spec)
    src = load_source(source)
    X, described = verification_inputs(src, verify_data, verify_samples, data_dir, seq_len)
    what = "recurrent nonzeros" if src.model.is_v1() else "nonzeros (head excluded)"
    console.print(f"{src.path}: {src.model.describe()}, {src.model.nnz():,} {what}")
    report = compile_source(src, targets, output, options=backend_opts, X_verify=X, data_description=described)
    print_report(report)
    console.print(f"wrote {len(report.artifacts)} artifact(s) to {output}")
