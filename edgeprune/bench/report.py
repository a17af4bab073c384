"""Reports of bench results: a terminal table, markdown, and PNG plots (matplotlib, Agg).

One result gives a table and a latency chart per runtime; a sweep (many results over method x
sparsity) adds latency vs sparsity per runtime, accuracy vs sparsity per method and bytes vs
sparsity. Emulated figures (instruction counts) and board counters (cycles) are labelled with
their unit, never mixed with wall-clock times on one axis.
"""

from __future__ import annotations

from pathlib import Path

from ..fileio import dumps_json, write_text_atomic

UNIT_SUFFIX = {"instructions": "insn", "cycles": "cyc"}
# documents drawn as a sweep: bench --sweep's, and edgeprune sweep's report (same cells, runtimes inside)
SWEEP_FORMATS = ("edgeprune.bench-sweep", "edgeprune.sweep-report")


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


def _acc(r: dict) -> str:
    a = r["accuracy"].get("sequence") or r["accuracy"].get("step")
    if not a or a.get("accuracy") is None:
        return "-"
    return f"{a['accuracy']:.2%}" + (f" (n={a['samples']})" if r["call_path"] != "python" else "")


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
        out.append([r["id"], r["call_path"] + (" (emulated)" if r["emulated"] else ""), fmt_latency(step, "p50"),
                    fmt_latency(step, "p99"), fmt_latency(seq, "p50"), fmt_latency(seq, "p99"), _acc(r), _err(r),
                    fmt_bytes(weights), _bpn(r),
                    fmt_bytes(rss) if rss is not None else (f"flash {fmt_bytes(flash)}" if flash else "-")])
    return out


COLUMNS = ["runtime", "path", "step p50", "step p99", "seq p50", "seq p99", "accuracy", "max|Δ| vs ref",
           "weights+idx", "B/nnz", "peak RSS / flash"]


def title(doc: dict) -> str:
    src, dev, data = doc["source"], doc["device"], doc["data"]
    sparsity = f", sparsity {src['sparsity']:.0%}" if src.get("sparsity") is not None else ""
    return (f"{src.get('model') or src['path']}{sparsity} on {dev['url']}"
            f"{' (emulated)' if dev.get('emulated') else ''}; {data['dataset']} test split, "
            f"{doc['settings']['threads']} thread(s), batch 1")


def console_table(doc: dict):
    """A rich table (numbers right-aligned)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title(doc)), title_justify="left", header_style="bold")
    for i, c in enumerate(COLUMNS):
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
        out.append(f"{c['id']} {c['mode']}: Python call path adds {c['python_overhead_ns'] / 1e3:.1f} µs per call "
                   f"over the native program ({c['python_p50_ns'] / 1e3:.1f} vs {c['native_p50_ns'] / 1e3:.1f} µs p50).")
    timer = doc.get("harness", {}).get("timer")
    if timer and any(r["call_path"] == "python" for r in doc["runtimes"]):
        out.append(f"Timing an empty Python call costs {timer['empty_call_ns_p50']:.0f} ns (included in Python-path figures).")
    for s in doc.get("skipped", []):
        out.append(f"skipped {s['id']}: {s['reason']}")
    for e in doc.get("errors", []):
        out.append(f"error: {e}")
    if not doc.get("complete", True):
        out.append("INCOMPLETE run: the figures above are what was measured before it stopped.")
    return out


def _md_table(columns: list[str], body: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in body]
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    m = doc["machine"]
    head = [f"# edgeprune bench: {title(doc)}", "",
            f"Machine: {m['cpu']}, {m['cores']} cores ({m['machine']}); load average at start "
            f"{', '.join(f'{v:.2f}' for v in (m.get('load_average') or []))}.", f"Command: `{doc['command']}`", ""]
    body = _md_table(COLUMNS, rows(doc))
    tail = [f"- {n}" for n in notes(doc)]
    return "\n".join(head) + body + "\n\n" + "\n".join(tail) + "\n"


# -- plots ---------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_chart(doc: dict, out: Path) -> Path | None:
    """Step latency per runtime (p50 bar, p90/p99 marks), one panel per unit."""
    plt = _pyplot()
    by_unit: dict[str, list] = {}
    for r in doc["runtimes"]:
        s = r["latency"].get("step") or r["latency"].get("sequence")
        if r["status"] == "ok" and s:
            by_unit.setdefault(s["unit"], []).append((r["id"], s))
    if not by_unit:
        return None
    height = 2.0 + 0.45 * max(len(v) for v in by_unit.values())
    fig, axes = plt.subplots(1, len(by_unit), figsize=(6 * len(by_unit), height), squeeze=False)
    for ax, (unit, items) in zip(axes[0], by_unit.items()):
        scale, label = (1e3, "µs") if unit == "ns" else (1, UNIT_SUFFIX.get(unit, unit))
        names = [i[0] for i in items]
        ax.barh(names, [s["p50"] / scale for _, s in items], color="#4c72b0", label="p50")
        ax.scatter([s["p90"] / scale for _, s in items], names, marker="|", s=200, color="#dd8452", label="p90", zorder=3)
        ax.scatter([s["p99"] / scale for _, s in items], names, marker="|", s=200, color="#c44e52", label="p99", zorder=3)
        mode = "step" if any("step" in r["latency"] for r in doc["runtimes"]) else "sequence"
        ax.set_xlabel(f"{mode} latency ({label})" + (" — emulated" if unit == "instructions" else ""))
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title(doc), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _sparsity(cell: dict) -> float:
    return cell["achieved_sparsity"] if cell.get("achieved_sparsity") is not None else cell["sparsity"]


def _cells_ok(sweep: dict):
    for cell in sweep["cells"]:
        if cell["status"] == "ok" and cell.get("result"):
            yield cell


def _lines_per_method(plt, data: dict[tuple[str, str], list], ylabel: str, title: str, path: Path) -> None:
    """One panel per pruning method, one line per runtime (the same colour in every panel; native
    programs dashed), log y, one legend beside the panels: readable with 20 runtimes."""
    methods = sorted({m for m, _ in data})
    runtimes = sorted({r for _, r in data})
    cmap = plt.get_cmap("tab20")
    colour = {r: cmap(i % 20) for i, r in enumerate(runtimes)}
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods) + 3.2, 4.5), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for rid in runtimes:
            pts = data.get((method, rid))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, color=colour[rid],
                        linestyle="--" if rid.endswith("(native)") else "-", label=rid)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("sparsity of recurrent weights")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend([handles[r] for r in runtimes if r in handles], [r for r in runtimes if r in handles],
               loc="center left", bbox_to_anchor=(1.0 - 3.0 / fig.get_figwidth(), 0.5), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1.0 - 3.1 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_plots(sweep: dict, out_dir: Path) -> list[Path]:
    """Latency vs sparsity per runtime, accuracy vs sparsity per method, bytes vs sparsity."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cells = list(_cells_ok(sweep))
    if not cells:
        return written

    def series(value_of):
        data: dict[tuple, list] = {}
        for cell in cells:
            for r in cell["result"]["runtimes"]:
                if r["status"] != "ok":
                    continue
                v = value_of(r)
                if v is not None:
                    data.setdefault((cell["method"], r["id"]), []).append((_sparsity(cell), v))
        return {k: sorted(v) for k, v in data.items()}

    # latency vs sparsity, one line per (runtime, method), per unit
    def step_p50(r):
        s = r["latency"].get("step")
        return (s["unit"], s["p50"]) if s else None

    lat = series(step_p50)
    units = sorted({v[1][0] for pts in lat.values() for v in pts})
    for unit in units:
        scale, label = (1e3, "µs") if unit == "ns" else (1, UNIT_SUFFIX.get(unit, unit))
        per_unit = {k: [(x, v[1] / scale) for x, v in pts if v[0] == unit] for k, pts in lat.items()}
        path = out_dir / f"latency_vs_sparsity{'' if unit == 'ns' else '_' + unit}.png"
        _lines_per_method(plt, per_unit, f"step latency p50 ({label})" + (" — emulated" if unit == "instructions" else ""),
                          "latency vs sparsity per runtime", path)
        written.append(path)

    # accuracy vs sparsity per method (through one runtime: the first artifact runtime, else torch);
    # several seeds of one (method, sparsity): their mean, with the min-max range as error bars
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_method: dict[str, dict] = {}
    for p in sweep_points(sweep):
        if p["accuracy"] is not None:
            by_method.setdefault(p["method"], {}).setdefault(p["sparsity_requested"], []).append(p)
    for method, groups in sorted(by_method.items()):
        xs, ys, lo, hi = [], [], [], []
        for _, pts in sorted(groups.items()):
            acc = [p["accuracy"] for p in pts]
            xs.append(sum(p["sparsity"] for p in pts) / len(pts))
            ys.append(sum(acc) / len(acc))
            lo.append(ys[-1] - min(acc))
            hi.append(max(acc) - ys[-1])
        seeds = max(len(pts) for pts in groups.values())
        runtime = next(iter(groups.values()))[0]["runtime"]
        label = f"{method} (via {runtime}" + (f", mean of {seeds} seeds, min-max)" if seeds > 1 else ")")
        ax.errorbar(xs, ys, yerr=[lo, hi] if seeds > 1 else None, marker="o", capsize=3, label=label)
    ax.set_xlabel("sparsity of recurrent weights")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("accuracy vs sparsity per method", fontsize=10)
    fig.tight_layout()
    path = out_dir / "accuracy_vs_sparsity.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    # bytes vs sparsity per runtime (weights + indices as stored)
    sizes = series(lambda r: r["memory"].get("storage_bytes"))
    sizes = {k: [(x, v / 1024) for x, v in pts] for k, pts in sizes.items()}
    path = out_dir / "bytes_vs_sparsity.png"
    _lines_per_method(plt, sizes, "weights + indices (KiB)", "bytes vs sparsity", path)
    written.append(path)
    written += pareto_plots(sweep, out_dir)
    return written


# -- Pareto fronts ---------------------------------------------------------------------------------
def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points nothing beats: no other point is at most as costly and
    strictly more accurate, or strictly cheaper and as accurate. Exact ties keep the first. Sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def sweep_points(sweep: dict) -> list[dict]:
    """One point per finished cell, through its headline runtime (the first artifact runtime, else torch)."""
    out = []
    for cell in _cells_ok(sweep):
        runtimes = [r for r in cell["result"]["runtimes"] if r["status"] == "ok" and r["call_path"] == "python"]
        if not runtimes:
            continue
        chosen = next((r for r in runtimes if r["kind"] == "artifact"), runtimes[0])
        a = chosen["accuracy"].get("sequence") or chosen["accuracy"].get("step") or {}
        step = chosen["latency"].get("step")
        native = next((r for r in cell["result"]["runtimes"] if r["status"] == "ok"
                       and r["id"] == f"{chosen['id']} (native)" and r["latency"].get("step")), None)
        out.append({"method": cell["method"], "sparsity_requested": cell["sparsity"], "sparsity": _sparsity(cell),
                    "seed": cell.get("seed", 0), "runtime": chosen["id"], "accuracy": a.get("accuracy"),
                    "storage_bytes": chosen["memory"].get("storage_bytes"),
                    "latency": (step["unit"], step["p50"]) if step else None,
                    "native_latency": (native["latency"]["step"]["unit"], native["latency"]["step"]["p50"])
                    if native else None})
    return out


def pareto_sets(sweep: dict) -> list[tuple[str, str, str, list[dict]]]:
    """(name, point key of the cost, cost label, points on the front): for bytes, and per latency unit measured."""
    points = [p for p in sweep_points(sweep) if p["accuracy"] is not None]
    out = []
    sized = [p for p in points if p["storage_bytes"] is not None]
    if sized:
        front = pareto_front([(p["storage_bytes"], p["accuracy"]) for p in sized])
        out.append(("bytes", "storage_bytes", "weights + indices", [sized[i] for i in front]))
    for key, what in (("latency", "step p50"), ("native_latency", "step p50, native program")):
        timed = [p for p in points if p[key] is not None]
        for unit in sorted({p[key][0] for p in timed}):
            pts = [p for p in timed if p[key][0] == unit]
            front = pareto_front([(p[key][1], p["accuracy"]) for p in pts])
            name = key if unit == "ns" else f"{key}_{unit}"
            out.append((name, key, f"{what} ({unit})", [pts[i] for i in front]))
    return out


def pareto_plots(sweep: dict, out_dir: Path) -> list[Path]:
    """Accuracy vs cost, every cell a dot, the Pareto front a line: ``pareto_<cost>.png``."""
    plt = _pyplot()
    points = [p for p in sweep_points(sweep) if p["accuracy"] is not None]
    written = []
    for name, key, label, front in pareto_sets(sweep):
        fig, ax = plt.subplots(figsize=(7, 4.5))

        def cost(p):
            v = p[key]
            if key == "storage_bytes":
                return v / 1024
            return v[1] / 1e3 if v[0] == "ns" else v[1]

        unit = "KiB" if key == "storage_bytes" else ("µs" if front[0][key][0] == "ns" else UNIT_SUFFIX.get(front[0][key][0]))
        pts_all = [p for p in points if p[key] is not None and (key == "storage_bytes" or p[key][0] == front[0][key][0])]
        for method in sorted({p["method"] for p in pts_all}):
            mine = [p for p in pts_all if p["method"] == method]
            ax.scatter([cost(p) for p in mine], [p["accuracy"] for p in mine], label=method, alpha=0.7)
        ax.step([cost(p) for p in front], [p["accuracy"] for p in front], where="post", color="black", linewidth=1,
                label="Pareto front")
        for p in front:
            ax.annotate(f"{p['sparsity']:.2f}", (cost(p), p["accuracy"]), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
        costs = [cost(p) for p in pts_all]
        if min(costs) > 0 and max(costs) / min(costs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(f"{label.split(' (')[0]} of {front[0]['runtime']} ({unit})")
        ax.set_ylabel("test accuracy")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"accuracy vs {'bytes' if key == 'storage_bytes' else 'latency'}: Pareto front "
                     "(labels: sparsity)", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"pareto_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def pareto_markdown(sweep: dict) -> str:
    parts = []
    for name, key, label, front in pareto_sets(sweep):
        body = []
        for p in front:
            lat = p["native_latency"] if key == "native_latency" else p["latency"]
            body.append([p["method"], f"{p['sparsity']:.3f}", p["seed"], p["runtime"], f"{p['accuracy']:.2%}",
                         fmt_bytes(p["storage_bytes"]),
                         fmt_latency({"unit": lat[0], "p50": lat[1]}) if lat else "-"])
        parts.append(f"## Pareto front: accuracy vs {label}\n\n"
                     + _md_table(["method", "sparsity", "seed", "runtime", "accuracy", "weights+idx", "step p50"], body))
    return "\n\n".join(parts)


def sweep_markdown(sweep: dict, title: str | None = None) -> str:
    lines = [title or f"# edgeprune bench sweep: {sweep['source']}", ""]
    body = []
    for cell in sweep["cells"]:
        if cell["status"] != "ok":
            body.append([cell["method"], f"{cell['sparsity']:.2f}", cell["seed"], "FAILED: " + (cell.get("error") or "")[:80],
                         "", "", "", ""])
            continue
        for r in cell["result"]["runtimes"]:
            step = r["latency"].get("step")
            wi = r["memory"].get("storage_bytes")
            sparsity = cell["achieved_sparsity"] if cell.get("achieved_sparsity") is not None else cell["sparsity"]
            body.append([cell["method"], f"{sparsity:.3f}", cell["seed"], r["id"], fmt_latency(step, "p50"),
                         fmt_latency(step, "p99"), _acc(r), fmt_bytes(wi)])
    lines.append(_md_table(["method", "sparsity", "seed", "runtime", "step p50", "step p99", "accuracy", "weights+idx"], body))
    front = pareto_markdown(sweep)
    if front:
        lines += ["", front]
    return "\n".join(lines) + "\n"


def write_report(doc: dict, out_dir: str | Path) -> list[Path]:
    """``report.md``, ``result.json`` and the PNG plots into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if doc.get("format") in SWEEP_FORMATS:
        title = f"# edgeprune sweep: {doc['source']}" if doc["format"] == "edgeprune.sweep-report" else None
        written.append(write_text_atomic(out_dir / "report.md", sweep_markdown(doc, title)))
        written += sweep_plots(doc, out_dir)
    else:
        written.append(write_text_atomic(out_dir / "report.md", markdown(doc)))
        chart = latency_chart(doc, out_dir / "latency.png")
        if chart:
            written.append(chart)
    written.append(write_text_atomic(out_dir / "result.json", dumps_json(doc)))
    return written
