"""The sweep's report: a table of every cell and runtime, plots over the grid and Pareto fronts.

Drawn from the cell records themselves (``cells/<key>.json``): latency vs sparsity per runtime
(one panel per method), accuracy vs sparsity per method (seeds: mean and min-max), bytes vs
sparsity, and accuracy vs bytes / latency with the Pareto front. The one-result formatting
(units, bytes, markdown tables) is bench's (``edgeprune.bench.report``).
"""

from __future__ import annotations

from pathlib import Path

from ..bench.measure import metric_value
from ..bench.report import UNIT_SUFFIX, accuracy_text, fmt_bytes, fmt_latency, md_table, pyplot
from ..fileio import dumps_json, write_text_atomic


def runtime_rows(record: dict) -> list[dict]:
    """A cell's runtimes as one list: each runtime's accuracy and sizes (from the cell) with the latency
    measured on the device (kept in ``timing.latency``, apart from the results) merged in; a native
    program's row takes its sizes from the same artifact's Python row."""
    rows = [dict(r) for r in record.get("runtimes", [])]
    latency = (record.get("timing") or {}).get("latency") or {}
    by_id = {r["id"]: r for r in rows}
    for m in latency.get("runtimes", []):
        if m["status"] != "ok":
            continue
        if m["id"] in by_id:
            by_id[m["id"]]["latency"] = m["latency"]
            by_id[m["id"]]["memory"] = {**by_id[m["id"]]["memory"], "peak_rss_bytes": m.get("peak_rss_bytes")}
        else:  # a native program or firmware row
            base = by_id.get(m["id"].rsplit(" (", 1)[0]) or {}
            row = {
                **base,
                **m,
                "kind": base.get("kind", "artifact"),
                "accuracy": {},
                "memory": {**(base.get("memory") or {}), "peak_rss_bytes": m.get("peak_rss_bytes")},
            }
            if m.get("program"):
                row["memory"]["program"] = m["program"]
            rows.append(row)
    for r in rows:
        r.setdefault("latency", {})
        r.setdefault("call_path", "python")
    return rows


def _sparsity(record: dict) -> float:
    """The sparsity the method reached (the requested one if the cell did not get that far)."""
    achieved = (record.get("pruning") or {}).get("sparsity")
    return achieved if achieved is not None else record["sparsity"]


def _cells_ok(sweep: dict):
    """(record, its runtime rows) of every cell that finished ok."""
    for record in sweep["cells"]:
        if record["status"] == "ok":
            yield record, runtime_rows(record)


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
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="o",
                    markersize=3,
                    color=colour[rid],
                    linestyle="--" if rid.endswith("(native)") else "-",
                    label=rid,
                )
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("sparsity of recurrent weights")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend(
        [handles[r] for r in runtimes if r in handles],
        [r for r in runtimes if r in handles],
        loc="center left",
        bbox_to_anchor=(1.0 - 3.0 / fig.get_figwidth(), 0.5),
        fontsize=7,
        frameon=False,
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1.0 - 3.1 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_plots(sweep: dict, out_dir: Path) -> list[Path]:
    """Latency vs sparsity per runtime, accuracy vs sparsity per method, bytes vs sparsity."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cells = list(_cells_ok(sweep))
    if not cells:
        return written

    def series(value_of):
        data: dict[tuple, list] = {}
        for cell, rows in cells:
            for r in rows:
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
        _lines_per_method(
            plt,
            per_unit,
            f"step latency p50 ({label})" + (" — emulated" if unit == "instructions" else ""),
            "latency vs sparsity per runtime",
            path,
        )
        written.append(path)

    # accuracy vs sparsity per method (through one runtime: the first artifact runtime, else torch);
    # several seeds of one (method, sparsity): their mean, with the min-max range as error bars
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_method: dict[str, dict] = {}
    scored = [p for p in sweep_points(sweep) if p["score"] is not None]
    for p in scored:
        by_method.setdefault(p["method"], {}).setdefault(p["sparsity_requested"], []).append(p)
    for method, groups in sorted(by_method.items()):
        xs, ys, lo, hi = [], [], [], []
        for _, pts in sorted(groups.items()):
            acc = [p["score"] for p in pts]
            xs.append(sum(p["sparsity"] for p in pts) / len(pts))
            ys.append(sum(acc) / len(acc))
            lo.append(ys[-1] - min(acc))
            hi.append(max(acc) - ys[-1])
        seeds = max(len(pts) for pts in groups.values())
        runtime = next(iter(groups.values()))[0]["runtime"]
        label = f"{method} (via {runtime}" + (f", mean of {seeds} seeds, min-max)" if seeds > 1 else ")")
        ax.errorbar(xs, ys, yerr=[lo, hi] if seeds > 1 else None, marker="o", capsize=3, label=label)
    what = metric_label(scored)
    ax.set_xlabel("sparsity of recurrent weights")
    ax.set_ylabel(f"test {what}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{what} vs sparsity per method", fontsize=10)
    fig.tight_layout()
    path = out_dir / ("mse_vs_sparsity.png" if what.startswith("MSE") else "accuracy_vs_sparsity.png")
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
    for cell, rows in _cells_ok(sweep):
        runtimes = [r for r in rows if r["status"] == "ok" and r["call_path"] == "python"]
        if not runtimes:
            continue
        chosen = next((r for r in runtimes if r["kind"] == "artifact"), runtimes[0])
        a = chosen["accuracy"].get("sequence") or chosen["accuracy"].get("step") or {}
        metric = a.get("metric", "accuracy")
        step = chosen["latency"].get("step")
        native = next(
            (
                r
                for r in rows
                if r["status"] == "ok" and r["id"] == f"{chosen['id']} (native)" and r["latency"].get("step")
            ),
            None,
        )
        out.append(
            {
                "method": cell["method"],
                "sparsity_requested": cell["sparsity"],
                "sparsity": _sparsity(cell),
                "seed": cell.get("seed", 0),
                "runtime": chosen["id"],
                "accuracy": a.get("accuracy"),
                "metric": metric,
                "score": metric_value(a),
                "per_step": bool(a.get("per_step")),
                "storage_bytes": chosen["memory"].get("storage_bytes"),
                "latency": (step["unit"], step["p50"]) if step else None,
                "native_latency": (native["latency"]["step"]["unit"], native["latency"]["step"]["p50"])
                if native
                else None,
            }
        )
    return out


def metric_label(points: list[dict]) -> str:
    """What the points' score is: "accuracy" or "MSE" (and "per step" when the model labels every step)."""
    if not points:
        return "accuracy"
    name = "MSE" if points[0]["metric"] == "mse" else "accuracy"
    return name + (" per step" if points[0].get("per_step") else "")


def _goodness(p: dict) -> float:
    """Higher is better: accuracy as is, MSE negated (the front keeps the lowest error)."""
    return -p["score"] if p["metric"] == "mse" else p["score"]


def pareto_sets(sweep: dict) -> list[tuple[str, str, str, list[dict]]]:
    """(name, point key of the cost, cost label, points on the front): for bytes, and per latency unit measured.
    The front is over the task's metric: the highest accuracy or the lowest MSE for its cost."""
    points = [p for p in sweep_points(sweep) if p["score"] is not None]
    out = []
    sized = [p for p in points if p["storage_bytes"] is not None]
    if sized:
        front = pareto_front([(p["storage_bytes"], _goodness(p)) for p in sized])
        out.append(("bytes", "storage_bytes", "weights + indices", [sized[i] for i in front]))
    for key, what in (("latency", "step p50"), ("native_latency", "step p50, native program")):
        timed = [p for p in points if p[key] is not None]
        for unit in sorted({p[key][0] for p in timed}):
            pts = [p for p in timed if p[key][0] == unit]
            front = pareto_front([(p[key][1], _goodness(p)) for p in pts])
            name = key if unit == "ns" else f"{key}_{unit}"
            out.append((name, key, f"{what} ({unit})", [pts[i] for i in front]))
    return out


def pareto_plots(sweep: dict, out_dir: Path) -> list[Path]:
    """Accuracy (or MSE) vs cost, every cell a dot, the Pareto front a line: ``pareto_<cost>.png``."""
    plt = pyplot()
    points = [p for p in sweep_points(sweep) if p["score"] is not None]
    what = metric_label(points)
    written = []
    for name, key, label, front in pareto_sets(sweep):
        fig, ax = plt.subplots(figsize=(7, 4.5))

        def cost(p):
            v = p[key]  # noqa: B023 - called within this iteration
            if key == "storage_bytes":  # noqa: B023 - called within this iteration
                return v / 1024
            return v[1] / 1e3 if v[0] == "ns" else v[1]

        unit = (
            "KiB"
            if key == "storage_bytes"
            else ("µs" if front[0][key][0] == "ns" else UNIT_SUFFIX.get(front[0][key][0]))
        )
        pts_all = [
            p for p in points if p[key] is not None and (key == "storage_bytes" or p[key][0] == front[0][key][0])
        ]
        for method in sorted({p["method"] for p in pts_all}):
            mine = [p for p in pts_all if p["method"] == method]
            ax.scatter([cost(p) for p in mine], [p["score"] for p in mine], label=method, alpha=0.7)
        ax.step(
            [cost(p) for p in front],
            [p["score"] for p in front],
            where="post",
            color="black",
            linewidth=1,
            label="Pareto front",
        )
        for p in front:
            ax.annotate(
                f"{p['sparsity']:.2f}", (cost(p), p["score"]), fontsize=7, xytext=(3, -9), textcoords="offset points"
            )
        costs = [cost(p) for p in pts_all]
        if min(costs) > 0 and max(costs) / min(costs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(f"{label.split(' (')[0]} of {front[0]['runtime']} ({unit})")
        ax.set_ylabel(f"test {what}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(
            f"{what} vs {'bytes' if key == 'storage_bytes' else 'latency'}: Pareto front (labels: sparsity)",
            fontsize=10,
        )
        fig.tight_layout()
        path = out_dir / f"pareto_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def fmt_score(p: dict) -> str:
    return f"{p['score']:.4g}" if p["metric"] == "mse" else f"{p['score']:.2%}"


def pareto_markdown(sweep: dict) -> str:
    parts = []
    what = metric_label([p for p in sweep_points(sweep) if p["score"] is not None])
    for _name, key, label, front in pareto_sets(sweep):
        body = []
        for p in front:
            lat = p["native_latency"] if key == "native_latency" else p["latency"]
            body.append(
                [
                    p["method"],
                    f"{p['sparsity']:.3f}",
                    p["seed"],
                    p["runtime"],
                    fmt_score(p),
                    fmt_bytes(p["storage_bytes"]),
                    fmt_latency({"unit": lat[0], "p50": lat[1]}) if lat else "-",
                ]
            )
        parts.append(
            f"## Pareto front: {what} vs {label}\n\n"
            + md_table(["method", "sparsity", "seed", "runtime", what, "weights+idx", "step p50"], body)
        )
    return "\n\n".join(parts)


def sweep_markdown(sweep: dict) -> str:
    lines = [f"# edgeprune sweep: {sweep['source']}", ""]
    body = []
    for cell in sweep["cells"]:
        if cell["status"] != "ok":
            body.append(
                [
                    cell["method"],
                    f"{cell['sparsity']:.2f}",
                    cell["seed"],
                    "FAILED: " + (cell.get("error") or "")[:80],
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        sparsity = _sparsity(cell)
        for r in runtime_rows(cell):
            step = r["latency"].get("step")
            wi = r["memory"].get("storage_bytes")
            body.append(
                [
                    cell["method"],
                    f"{sparsity:.3f}",
                    cell["seed"],
                    r["id"],
                    fmt_latency(step, "p50"),
                    fmt_latency(step, "p99"),
                    accuracy_text(r),
                    fmt_bytes(wi),
                ]
            )
    what = metric_label([p for p in sweep_points(sweep) if p["score"] is not None])
    lines.append(md_table(["method", "sparsity", "seed", "runtime", "step p50", "step p99", what, "weights+idx"], body))
    front = pareto_markdown(sweep)
    if front:
        lines += ["", front]
    return "\n".join(lines) + "\n"


def write_report(doc: dict, out_dir: str | Path) -> list[Path]:
    """``report.md``, ``result.json`` and the PNG plots of a sweep report document into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_text_atomic(out_dir / "report.md", sweep_markdown(doc))]
    written += sweep_plots(doc, out_dir)
    written.append(write_text_atomic(out_dir / "result.json", dumps_json(doc)))
    return written
