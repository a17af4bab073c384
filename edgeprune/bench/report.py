"""Reports of one bench result: a terminal table, markdown, and a latency chart (matplotlib, Agg).

The formatting helpers (``fmt_latency``, ``fmt_bytes``, ``accuracy_text``, ``md_table``, ``pyplot``)
are shared with the sweep's report (``edgeprune.sweep.report``: plots over a grid, Pareto fronts).
Emulated figures (instruction counts) and board counters (cycles) are labelled with their unit,
never mixed with wall-clock times on one axis.
"""

from __future__ import annotations

from pathlib import Path

from ..fileio import dumps_json, write_text_atomic

UNIT_SUFFIX = {"instructions": "insn", "cycles": "cyc"}


def fmt_latency(stat: dict | None, key: str = "p50") -> str:
    if not stat:
        return "-"
    v = stat[key]
    unit = stat["unit"]
    if unit == "ns":
        if v >= 1e6:
            return f"{v / 1e6:.2f} ms"
        if v >= 1e3:
            return f"{v / 1e3:.1f} µs"
        return f"{v:.0f} ns"
    suffix = UNIT_SUFFIX.get(unit, unit)
    return f"{v / 1e3:.1f}k {suffix}" if v >= 1e4 else f"{v:.0f} {suffix}"


def fmt_bytes(n) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"


def metric_name(doc_or_task) -> str:
    """Column/axis label of the task's metric: "accuracy" (classify) or "MSE" (regress)."""
    task = (
        doc_or_task
        if isinstance(doc_or_task, str) or doc_or_task is None
        else (doc_or_task.get("data") or {}).get("task")
    )
    return "MSE" if task == "regress" else "accuracy"


def fmt_metric(record: dict | None) -> str:
    """An accuracy record's headline: "93.10%" (per step: "93.10% per step") or "MSE 0.0123"."""
    if not record:
        return "-"
    if record.get("metric") == "mse":
        v = record.get("mse")
        return "-" if v is None else f"MSE {v:.4g}" + (" per step" if record.get("per_step") else "")
    v = record.get("accuracy")
    return "-" if v is None else f"{v:.2%}" + (" per step" if record.get("per_step") else "")


def accuracy_text(r: dict) -> str:
    """The task metric of a runtime entry (sequence mode first); the sample count when it ran on a device."""
    a = r["accuracy"].get("sequence") or r["accuracy"].get("step")
    text = fmt_metric(a)
    if text == "-":
        return text
    return text + (f" (n={a['samples']})" if r["call_path"] != "python" else "")


def _err(r: dict) -> str:
    vals = [a.get("max_abs_vs_reference") for a in r["accuracy"].values() if a.get("max_abs_vs_reference") is not None]
    return f"{max(vals):.1e}" if vals else "-"


def _bpn(r: dict) -> str:
    v = r["memory"].get("bytes_per_nonzero")
    return f"{v:.2f}" if v is not None else "-"


def rows(doc: dict) -> list[list[str]]:
    out = []
    for r in doc["runtimes"]:
        if r["status"] != "ok":
            out.append([r["id"], r["call_path"], "FAILED: " + (r["error"] or "")[:60], "", "", "", "", "", "", "", ""])
            continue
        step, seq = r["latency"].get("step"), r["latency"].get("sequence")
        mem = r["memory"]
        weights = mem.get("storage_bytes")
        rss = mem.get("peak_rss_bytes")
        program = mem.get("program") or {}
        flash = program.get("flash_bytes") if program.get("kind") == "semihosting" else None
        out.append(
            [
                r["id"],
                r["call_path"] + (" (emulated)" if r["emulated"] else ""),
                fmt_latency(step, "p50"),
                fmt_latency(step, "p99"),
                fmt_latency(seq, "p50"),
                fmt_latency(seq, "p99"),
                accuracy_text(r),
                _err(r),
                fmt_bytes(weights),
                _bpn(r),
                fmt_bytes(rss) if rss is not None else (f"flash {fmt_bytes(flash)}" if flash else "-"),
            ]
        )
    return out


COLUMNS = [
    "runtime",
    "path",
    "step p50",
    "step p99",
    "seq p50",
    "seq p99",
    "accuracy",
    "max|Δ| vs ref",
    "weights+idx",
    "B/nnz",
    "peak RSS / flash",
]


def columns(doc: dict) -> list[str]:
    """``COLUMNS`` with the metric column named after the task (accuracy or MSE)."""
    return [metric_name(doc) if c == "accuracy" else c for c in COLUMNS]


def title(doc: dict) -> str:
    src, dev, data = doc["source"], doc["device"], doc["data"]
    sparsity = f", sparsity {src['sparsity']:.0%}" if src.get("sparsity") is not None else ""
    per = {"step": ", per step", "sequence": ""}.get(data.get("labels"), "")
    metric = f" ({metric_name(doc)}{per})" if data.get("task") else ""
    return (
        f"{src.get('model') or src['path']}{sparsity} on {dev['url']}"
        f"{' (emulated)' if dev.get('emulated') else ''}; {data['dataset']} test split{metric}, "
        f"{doc['settings']['threads']} thread(s), batch 1"
    )


def console_table(doc: dict):
    """A rich table (numbers right-aligned)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title(doc)), title_justify="left", header_style="bold")
    for i, c in enumerate(columns(doc)):
        if i == 0:
            t.add_column(c, justify="left", overflow="fold", min_width=12)
        else:
            t.add_column(c, justify="left" if i < 2 else "right")
    for row in rows(doc):
        t.add_row(*(Text(str(cell)) for cell in row))  # plain text: ids like c[csr] are not markup
    return t


def notes(doc: dict) -> list[str]:
    out = []
    units = {s["unit"] for r in doc["runtimes"] for s in r["latency"].values()}
    if "instructions" in units:
        out.append("insn = guest instructions per call counted in QEMU (emulated: not time, not cycles).")
    if "cycles" in units:
        out.append("cyc = the board's own counter per call (see each runtime's clock).")
    for c in doc.get("comparisons", []):
        out.append(
            f"{c['id']} {c['mode']}: Python call path adds {c['python_overhead_ns'] / 1e3:.1f} µs per call "
            f"over the native program ({c['python_p50_ns'] / 1e3:.1f} vs {c['native_p50_ns'] / 1e3:.1f} µs p50)."
        )
    timer = doc.get("harness", {}).get("timer")
    if timer and any(r["call_path"] == "python" for r in doc["runtimes"]):
        out.append(
            f"Timing an empty Python call costs {timer['empty_call_ns_p50']:.0f} ns (included in Python-path figures)."
        )
    for s in doc.get("skipped", []):
        out.append(f"skipped {s['id']}: {s['reason']}")
    for e in doc.get("errors", []):
        out.append(f"error: {e}")
    if not doc.get("complete", True):
        out.append("INCOMPLETE run: the figures above are what was measured before it stopped.")
    return out


def md_table(columns: list[str], body: list[list]) -> str:
    def cell(v) -> str:  # a '|' inside a cell would end it: escaped in the header and the body alike
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in body]
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    m = doc["machine"]
    head = [
        f"# edgeprune bench: {title(doc)}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['machine']}); load average at start "
        f"{', '.join(f'{v:.2f}' for v in (m.get('load_average') or []))}.",
        f"Command: `{doc['command']}`",
        "",
    ]
    body = md_table(columns(doc), rows(doc))
    tail = [f"- {n}" for n in notes(doc)]
    return "\n".join(head) + body + "\n\n" + "\n".join(tail) + "\n"


# -- plots ---------------------------------------------------------------------------------------
def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_chart(doc: dict, out: Path) -> Path | None:
    """Latency per runtime (p50 bar, p90/p99 marks), one panel per mode and unit: a runtime measured only
    on whole sequences gets a "sequence" panel, never a place on the step axis."""
    plt = pyplot()
    panels: dict[tuple[str, str], list] = {}
    for r in doc["runtimes"]:
        if r["status"] != "ok":
            continue
        mode = "step" if r["latency"].get("step") else "sequence"
        s = r["latency"].get(mode)
        if s:
            panels.setdefault((mode, s["unit"]), []).append((r["id"], s))
    if not panels:
        return None
    height = 2.0 + 0.45 * max(len(v) for v in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), height), squeeze=False)
    for ax, ((mode, unit), items) in zip(axes[0], panels.items()):
        scale, label = (1e3, "µs") if unit == "ns" else (1, UNIT_SUFFIX.get(unit, unit))
        names = [i[0] for i in items]
        ax.barh(names, [s["p50"] / scale for _, s in items], color="#4c72b0", label="p50")
        ax.scatter(
            [s["p90"] / scale for _, s in items], names, marker="|", s=200, color="#dd8452", label="p90", zorder=3
        )
        ax.scatter(
            [s["p99"] / scale for _, s in items], names, marker="|", s=200, color="#c44e52", label="p99", zorder=3
        )
        ax.set_xlabel(f"{mode} latency ({label})" + (" — emulated" if unit == "instructions" else ""))
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title(doc), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_report(doc: dict, out_dir: str | Path) -> list[Path]:
    """``report.md``, ``result.json`` and the latency chart into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    written.append(write_text_atomic(out_dir / "report.md", markdown(doc)))
    chart = latency_chart(doc, out_dir / "latency.png")
    if chart:
        written.append(chart)
    written.append(write_text_atomic(out_dir / "result.json", dumps_json(doc)))
    return written
