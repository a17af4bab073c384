"""``results/tasks.{md,json}`` and the plots, from every task cell in the cache (no measuring here).

python benchmarks/tasks/report.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, markdown_table, write_results  # noqa: E402
from benchmarks.tasks import driver  # noqa: E402
from benchmarks.tasks.driver import DTYPES, load_cells, mean, pm, sparsity_text, summarize  # noqa: E402

# Within this much of dense (mean over seeds, fp32), a pruned row counts as "no loss" for the headline.
HEADLINE_SLACK = {"classify": 0.01, "regress": 0.25}  # accuracy points / SNR dB

# Published figures beside ours. Only what docs/tasks.md cites (source there): no number is invented.
ANCHORS = {
    "japanese-vowels": [
        (
            "100% (zero test errors), leaky-integrator echo state network",
            "Jaeger, Lukoševičius, Popovici, Siewert, Neural Networks 20(3), 2007, doi:10.1016/j.neunet.2007.04.016",
        ),
        (
            "98.86%, ensemble of 11 LSTMs (student project, not peer reviewed)",
            "github.com/postnubilaphoebus/Jap_Speak_Recog",
        ),
    ],
    "basic-motions": [("none found here (see docs/tasks.md)", "UEA archive, Ruiz et al. 2021")],
    "pickup-gesture": [("none found here (see docs/tasks.md)", "UCR archive 2018, Dau et al.")],
}


def all_tasks() -> list:
    from benchmarks.tasks import classify, regress, stream

    return [*classify.TASKS, *stream.TASKS, *regress.TASKS]


def baselines() -> dict:
    path = RESULTS / "task_baselines.json"
    return json.loads(path.read_text()).get("results", {}) if path.exists() else {}


def commit() -> str:
    """The last commit that changed what the timings and sizes depend on (the C backend, its runtime,
    bench): the cells may have been measured at several commits of the branch, all with that code."""
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "edgeprune/backends", "runtimes", "edgeprune/bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def is_regression(rows) -> bool:
    return any("f32_snr_db" in r for r in rows)


def headline(task, rows: list[dict]) -> list[dict]:
    """Per task: the sparsest row (fp32, mean over seeds) within HEADLINE_SLACK of dense (ties: the better
    metric), and the best row at 90% requested sparsity (when it is another row)."""
    regress = is_regression(rows)
    key = "f32_snr_db" if regress else "f32_accuracy"
    dense = next((r for r in rows if r["label"] == "dense" and key in r), None)
    if dense is None:
        return []
    slack = HEADLINE_SLACK["regress" if regress else "classify"]
    pruned = [r for r in rows if r["label"] != "dense" and key in r]
    ok = [r for r in pruned if mean(r[key]) >= mean(dense[key]) - slack]
    out = []
    if ok:
        best = max(ok, key=lambda r: (round(mean(r["achieved"]), 3), mean(r[key])))
        out.append({"task": task, "dense": dense, "row": best, "regress": regress, "pick": "sparsest within"})
    at90 = [r for r in pruned if r["requested"] == 0.9 and not r["label"].startswith("magnitude-at-")]
    if at90:
        best90 = max(at90, key=lambda r: mean(r[key]))
        if not out or best90 is not out[0]["row"]:
            out.append({"task": task, "dense": dense, "row": best90, "regress": regress, "pick": "best at 90%"})
    return out


def headline_table(heads: list[dict]) -> str:
    out = []
    for h in heads:
        t, d, r = h["task"], h["dense"], h["row"]
        slack = f"sparsest within {'0.25 dB' if h['regress'] else '1 point'}"
        pick = slack if h["pick"] == "sparsest within" else h["pick"]
        if h["regress"]:
            metric = f"{mean(r['f32_snr_db']):.2f} dB vs {mean(d['f32_snr_db']):.2f} dB"
        else:
            metric = f"{100 * mean(r['f32_accuracy']):.1f}% vs {100 * mean(d['f32_accuracy']):.1f}%"
        flash = (
            f"{mean(r['f32_m4_flash_bytes']) / 1024:.1f} / {mean(r.get('int8_m4_flash_bytes') or [0]) / 1024:.1f} KiB "
            f"(dense {mean(d['f32_m4_flash_bytes']) / 1024:.1f} / {mean(d['int8_m4_flash_bytes']) / 1024:.1f})"
        )
        k, n = len(r.get("int8_m4_flash_bytes") or []), len(r["seeds"])
        if k < n:
            flash += f"; int8 verified for {k} of {n} seeds"
        instr = f"{mean(r['f32_m4_instructions_per_step']):,.0f} (dense {mean(d['f32_m4_instructions_per_step']):,.0f})"
        speed = mean(d["f32_host_us_per_step"]) / mean(r["f32_host_us_per_step"])
        out.append(
            [
                t.name,
                t.model,
                f"{r['label']} {sparsity_text(r['achieved'])} ({pick})",
                metric,
                flash,
                instr,
                f"{speed:.2f}x",
            ]
        )
    return markdown_table(
        [
            "task",
            "model",
            "pruned (achieved sparsity)",
            "fp32 metric, pruned vs dense",
            "M4 flash fp32 / int8",
            "M4 instr/step fp32",
            "host speed-up fp32",
        ],
        out,
    )


def failures(cells: list[dict]) -> list[str]:
    out = []
    for c in cells:
        for dtype in DTYPES:
            err = c.get("c", {}).get(dtype, {}).get("failed")
            if err:
                out.append(f"- {c['label']} @ {c['requested']} seed {c['seed']}, {dtype}: {err}")
        if "refused" in c:
            out.append(f"- {c['label']} seed {c['seed']}: refused: {c['refused']}")
    return out


def plots(sections: list[tuple]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    n = len(sections)
    for kind in ("flash", "sparsity"):
        fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
        for ax, (task, rows) in zip(axes[0], sections):
            regress = is_regression(rows)
            key = "snr_db" if regress else "accuracy"
            scale = 1 if regress else 100
            labels = sorted({r["label"] for r in rows}, key=lambda x: (x != "dense", x))
            for i, label in enumerate(labels):
                rs = [r for r in rows if r["label"] == label and f"f32_{key}" in r]
                colour = f"C{i}"
                if kind == "flash":
                    for dtype, marker in (("f32", "o"), ("int8", "^")):
                        pts = [
                            (mean(r[f"{dtype}_m4_flash_bytes"]) / 1024, scale * mean(r[f"{dtype}_{key}"]))
                            for r in rs
                            if r.get(f"{dtype}_m4_flash_bytes") and r.get(f"{dtype}_{key}")
                        ]
                        if pts:
                            ax.scatter(*zip(*pts), marker=marker, color=colour, label=f"{label} {dtype}", s=28)
                else:
                    pts = sorted((mean(r["achieved"]) * 100, scale * mean(r[f"f32_{key}"])) for r in rs)
                    errs = [scale * statistics.stdev(r[f"f32_{key}"]) if len(r[f"f32_{key}"]) > 1 else 0 for r in rs]
                    if pts:
                        order = sorted(range(len(rs)), key=lambda j: mean(rs[j]["achieved"]))
                        ax.errorbar(
                            [pts[k][0] for k in range(len(pts))],
                            [pts[k][1] for k in range(len(pts))],
                            yerr=[errs[j] for j in order],
                            marker="o",
                            color=colour,
                            label=label,
                            capsize=2,
                            lw=1,
                        )
            ax.set_title(f"{task.name} ({task.model})")
            ax.set_xlabel("Cortex-M4 flash (KiB)" if kind == "flash" else "achieved sparsity (%)")
            ax.set_ylabel(
                "SNR (dB), fp32" if regress and kind == "sparsity" else ("SNR (dB)" if regress else "accuracy (%)")
            )
            if kind == "flash":
                ax.set_xscale("log")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        fig.tight_layout()
        name = f"tasks_accuracy_vs_{kind}.png"
        fig.savefig(RESULTS / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def write() -> None:
    base = baselines()
    sections, payload, heads, loads = [], {"tasks": {}}, [], []
    md_tasks = []
    for task in all_tasks():
        cells = load_cells(task)
        if not cells:
            continue
        rows = summarize(task, cells)
        sections.append((task, rows))
        loads += [c["c"][d]["host_load"] for c in cells for d in DTYPES if c.get("c", {}).get(d, {}).get("host_load")]
        regress = is_regression(rows)
        dense = next((r for r in rows if r["label"] == "dense"), None)
        seeds = sorted({c["seed"] for c in cells})
        heads += headline(task, rows)
        lines = [
            f"## {task.name} ({task.family})",
            "",
            f"Model `{task.model}` (with the normalize stage `edgeprune train` adds), dense: "
            f"`{' '.join(driver.dense_command(task, 0, 'dense.pt')[1:]).replace('--seed 0', '--seed S')}`; "
            f"{task.finetune_epochs} masked fine-tuning epochs (Adam, lr {task.lr}, batch {task.batch_size}); "
            f"seeds measured: {', '.join(map(str, seeds))}.",
            "",
        ]
        if task.note:
            lines += [task.note, ""]
        if task.name in base:
            ref = "; ".join(
                f"{b['baseline']}: "
                + (
                    f"SNR {b['snr_db']:.2f} dB"
                    if "snr_db" in b
                    else f"{100 * b['accuracy']:.1f}% (F1 {b['macro_f1']:.3f})"
                )
                for b in base[task.name]
                if "majority" not in b["baseline"] and "training mean" not in b["baseline"]
            )
            lines += [f"Model-free references (benchmarks/results/task_baselines.md): {ref}.", ""]
        for text, source in ANCHORS.get(task.name, []):
            lines.append(f"Published: {text} — {source}.")
        if task.name in ANCHORS:
            lines.append("")
        if dense:
            lines += [f"Dense model: {_dense_text(dense, regress)}.", ""]
        lines += [driver.table(rows, regress), ""]
        fails = failures(cells)
        if fails:
            lines += ["Builds that failed compile's verification (no figure is reported for them):", "", *fails, ""]
        md_tasks += lines
        payload["tasks"][task.name] = {
            "family": task.family,
            "model": task.model,
            "epochs": task.epochs,
            "lr": task.lr,
            "finetune_epochs": task.finetune_epochs,
            "batch_size": task.batch_size,
            "rows": rows,
            "cells": cells,
        }
    if not sections:
        return
    pngs = plots(sections)
    load_text = (
        f"{min(v[0] for v in loads):.1f}–{max(v[0] for v in loads):.1f} (1-min load average when each cell's host "
        f"timing ended; {os.cpu_count()} cores)"
        if loads
        else "n/a"
    )
    payload.update(load_average=load_text, commit=commit(), plots=pngs, headline_slack=HEADLINE_SLACK)
    md = [
        "# Real edge workloads: dense vs pruned, in C, on the host and a Cortex-M4",
        "",
        "Scripts: `benchmarks/tasks/classify.py`, `stream.py`, `regress.py` (one driver, "
        "`benchmarks/tasks/driver.py`; this report: `benchmarks/tasks/report.py`).",
        "",
        "Every row: the mean ± std over seeds of the **fp32 C build's** metric on the whole test split "
        "(true lengths), the achieved sparsity of the recurrent matrices as measured on the masks (the head is "
        "not pruned), Cortex-M4 flash and RAM of the model from `compile --arch cortex-m4`'s accounting (model "
        "code and tables + the runtime functions it calls; state + data), guest instructions per `model_step` "
        "counted by QEMU's TCG plugin on mps2-an386 (emulated instructions, not cycles), and host µs per "
        "`model_step` of the native C program (1 thread, `--kernel auto`, bench's harness: the median call). "
        "Every build was compiled and passed compile's verification against torch (fp32: max |error| 1e-4, "
        "relative beyond magnitude 1 for regression; int8: the C target's int8 bound and 99% argmax agreement "
        "on 64 test sequences); builds that failed it are listed, never reported. `ramanujan-imp` stops at its "
        "own bound; `magnitude-at-ramanujan-imp` is magnitude pruning at its per-matrix kept counts.",
        "",
        f"Measured with the C backend, runtime and bench of commit {payload['commit']} (the C kernels may have "
        f"changed since: host µs are of that code). Load average: {load_text} — a shared machine: host µs "
        "are rough (compare them within a table); instruction counts and sizes do not depend on load.",
        "",
        "## Headline",
        "",
        f"Per task, the sparsest row whose fp32 metric (mean over seeds) is within "
        f"{100 * HEADLINE_SLACK['classify']:.0f} point (classification) / {HEADLINE_SLACK['regress']} dB "
        "(regression) of dense, and the best method at 90% requested sparsity; host speed-up = dense fp32 "
        "µs/step ÷ pruned fp32 µs/step.",
        "",
        headline_table(heads),
        "",
        *md_tasks,
        "Plots: " + ", ".join(f"`{p}`" for p in pngs) + ".",
    ]
    write_results("tasks", payload, "\n".join(md))
    update_readme(headline_table([h for h in heads if h["task"].readme]))


README_START, README_END = "<!-- tasks-headline:start -->", "<!-- tasks-headline:end -->"


def update_readme(table_md: str) -> None:
    """Replace the README's headline table (between the markers) with this run's: the README quotes
    exactly what the cache holds."""
    path = ROOT / "README.md"
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_START}\n{table_md}\n{README_END}{tail}")


def _dense_text(dense: dict, regress: bool) -> str:
    if regress:
        return f"SNR {pm(dense['f32_snr_db'], 1, 2)} dB, MSE {pm(dense['f32_mse'], 1, 0)} (fp32 C)"
    return f"{pm(dense['f32_accuracy'], 100)}% accuracy, macro-F1 {pm(dense['f32_macro_f1'], 1, 3)} (fp32 C)"


if __name__ == "__main__":
    write()
