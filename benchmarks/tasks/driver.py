"""The one driver behind the task benchmarks (``classify.py``, ``stream.py``, ``regress.py``).

Per task: a dense model trained with ``edgeprune train`` for each seed (0 1 2), then every
(method, sparsity, seed) cell pruned from that seed's dense model with the Python API
(``prune_model``, masked fine-tuning included), saved as a checkpoint, and measured:

* **compile + verify** on the host: ``bench``'s prepare step compiles the checkpoint for the C
  target in fp32 and int8 and verifies every artifact against torch (a cell whose artifact does
  not compile or verify is an error, never a row);
* **the task's metric** through the compiled C code (``bench`` on ``local``, the whole test split,
  true lengths): accuracy and macro-F1 (per sequence, or per true step), MSE and SNR for
  regression; and the **host µs per step** of the native C program (1 thread, ``bench``'s
  harness: every ``model_step`` call timed alone, the median);
* **Cortex-M4**: flash and RAM from ``compile``'s accounting of a ``--arch cortex-m4`` build
  (model code + tables + the runtime functions it calls; state + data), and guest instructions
  per ``model_step`` counted by QEMU's TCG plugin on mps2-an386 (``bench --device qemu-m4``;
  outputs checked against the reference there too). Emulated instructions, not cycles.

Why not ``edgeprune sweep``: its grid is method x requested sparsity, one device per run, and it
keeps no pruned checkpoint; these tables need ramanujan-imp paired with magnitude at *its*
per-matrix kept counts (as ``benchmarks/seeds/equal_sparsity.py`` does) and host and M4 figures
for the same model. The per-cell stages are the sweep's own building blocks (``prune_model``,
``bench.prepare``, ``bench.harness.Bench``).

Every cell is cached as JSON (and its checkpoint as .pt) under
``$EDGEPRUNE_BENCH_CACHE/tasks/<task>/``: a rerun only measures what is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import CACHE, RESULTS, build_c, markdown_table  # noqa: E402

PROTOCOL = "tasks/1"
SPARSITIES = (0.5, 0.8, 0.9, 0.95)
SEEDS = (0, 1, 2)
# label -> (method, options, sparsities); ramanujan-imp stops at its own bound (an outcome)
METHODS = {
    "magnitude": ("magnitude", {}, SPARSITIES),
    "expander": ("expander", {}, SPARSITIES),
    "block-expander-1x4": ("block-expander", {"block": "1x4"}, SPARSITIES),
    "lattice": ("lattice", {}, SPARSITIES),
    "ramanujan-imp": ("ramanujan-imp", {"accept_reached": True}, (0.95,)),
}
OUTCOME = {"ramanujan-imp"}  # paired with magnitude at the same per-matrix kept counts
DTYPES = ("f32", "int8")


@dataclass(frozen=True)
class Task:
    name: str  # the --data name
    family: str  # "classification" | "per-step classification" | "regression"
    model: str  # --model
    epochs: int
    lr: float
    finetune_epochs: int
    batch_size: int = 32
    seeds: tuple = SEEDS
    readme: bool = True  # in the README's headline table (tasks.md has every task)
    note: str = ""  # printed under the task's heading in tasks.md
    methods: dict = field(default_factory=lambda: dict(METHODS))


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


def task_dir(task: Task) -> Path:
    return CACHE / "tasks" / task.name


def dense_checkpoint(task: Task, seed: int) -> Path:
    """``edgeprune train`` of the task's model (cached by recipe): the documented command, run as is."""
    recipe = {"model": task.model, "epochs": task.epochs, "lr": task.lr, "batch": task.batch_size, "seed": seed}
    path = task_dir(task) / f"dense-s{seed}-{_digest(recipe)}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = dense_command(task, seed, path)
        log(" ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            raise SystemExit(f"dense training failed: {done.stderr.strip()}")
        log(done.stdout.strip().splitlines()[-1])
    return path


def dense_command(task: Task, seed: int, out) -> list[str]:
    return [
        sys.executable, "-m", "edgeprune", "train", "--data", task.name, "--model", task.model,
        "--epochs", str(task.epochs), "--lr", str(task.lr), "--batch-size", str(task.batch_size),
        "--seed", str(seed), "--threads", "1", "--no-progress", "-o", str(out),
    ]  # fmt: skip


def cell_key(task: Task, label: str, sparsity, seed: int) -> str:
    method, options, _ = METHODS.get(label, ("magnitude", {}, ()))
    spec = {
        "protocol": PROTOCOL,
        "task": task.name,
        "model": task.model,
        "epochs": task.epochs,
        "lr": task.lr,
        "ft": task.finetune_epochs,
        "batch": task.batch_size,
        "method": method,
        "options": options,
        "label": label,
        "sparsity": sparsity,
        "seed": seed,
    }
    return f"{label}-{sparsity}-s{seed}-{_digest(spec)}"


# -- pruning ----------------------------------------------------------------------------------------


def kept_counts(masks: dict) -> dict:
    return {n: int(np.asarray(m).sum()) for n, m in masks.items()}


def achieved_sparsity(masks: dict) -> float:
    """1 - kept / total over the masked (recurrent) matrices: what the rows report."""
    kept = sum(int(np.asarray(m).sum()) for m in masks.values())
    total = sum(np.asarray(m).size for m in masks.values())
    return 1.0 - kept / total


def magnitude_twin(dense, masks: dict, ds, task: Task, seed: int):
    """``dense`` pruned by magnitude keeping, per matrix, as many entries as ``masks`` do, then the same
    fine-tuning: magnitude at another method's achieved sparsity."""
    import copy

    import torch

    from benchmarks.seeds.equal_sparsity import magnitude_masks_like
    from edgeprune.train import train

    twin = copy.deepcopy(dense)
    twin.clear_masks()
    mags = magnitude_masks_like(twin, masks)
    twin.set_masks({n: torch.from_numpy(m) for n, m in mags.items()})
    train(
        twin, ds, epochs=task.finetune_epochs, lr=task.lr, batch_size=task.batch_size, seed=seed, progress=False
    )  # the fine-tuning prune_model gives the other cells
    return twin, mags


def prune_cells(task: Task, label: str, sparsity, seed: int, dense_path: Path, ds) -> list[tuple[str, Path, dict]]:
    """The cell's checkpoint (and, for an outcome method, its magnitude twin's): (key, path, pruning info)."""
    from edgeprune import checkpoint
    from edgeprune.prune import prune_model

    method, options, _ = task.methods[label]
    dense, meta = checkpoint.load_with_meta(dense_path)
    outcome = prune_model(
        dense,
        method,
        sparsity,
        seed=seed,
        options=options,
        dataset=ds,
        finetune_epochs=task.finetune_epochs,
        finetune_lr=task.lr,
        batch_size=task.batch_size,
    )
    masks = {n: m.numpy().astype(bool) for n, m in outcome.model.masks().items()}
    out = []
    key = cell_key(task, label, sparsity, seed)
    path = task_dir(task) / f"{key}.pt"
    info = {"label": label, "method": method, "options": options, "requested": sparsity, "seed": seed}
    info.update(sparsity=achieved_sparsity(masks), kept=kept_counts(masks), report_sparsity=outcome.report["sparsity"])
    checkpoint.save(outcome.model, path, {**meta, "pruning": outcome.report})
    out.append((key, path, info))
    if label in OUTCOME:
        twin, mags = magnitude_twin(dense, masks, ds, task, seed)
        tlabel = f"magnitude-at-{label}"
        tkey = cell_key(task, tlabel, sparsity, seed)
        tpath = task_dir(task) / f"{tkey}.pt"
        tinfo = {"label": tlabel, "method": "magnitude", "options": {}, "requested": sparsity, "seed": seed}
        tinfo.update(sparsity=achieved_sparsity(mags), kept=kept_counts(mags))
        checkpoint.save(twin, tpath, {**meta, "pruning": {"method": "magnitude", "paired_with": label}})
        out.append((tkey, tpath, tinfo))
    return out


# -- measuring --------------------------------------------------------------------------------------


def centred_power(ds) -> float | None:
    """Mean of (y - mu)^2 over the test split's true steps, mu the training targets' per-channel mean:
    the signal power of the SNR in docs/tasks.md and benchmarks/tasks/baselines.py (centred, so the
    accelerometers' gravity offset does not inflate it). None for a classifier."""
    if ds.task != "regress":
        return None
    from edgeprune.metrics import valid_steps

    y = ds.y_test.astype(np.float64)
    if y.ndim == 3:
        y = y[valid_steps(y.shape[:2], ds.test_lengths)]
    return float(np.mean((y - ds.target_mean) ** 2))


def snr_db(power: float, mse: float) -> float:
    return float(10 * np.log10(power / mse))


def _score(acc: dict, power: float | None = None) -> dict:
    """The task's figures from bench's accuracy record (the centred SNR from its MSE, see centred_power)."""
    if acc.get("metric") == "mse":
        return {"mse": acc["mse"], "snr_db": snr_db(power, acc["mse"]), "snr_uncentred_db": acc["snr_db"]}
    return {"accuracy": acc["accuracy"], "macro_f1": acc["macro_f1"]}


def measure(path: Path, power: float | None = None, *, m4: bool = True, host_budget_s: float = 0.3) -> dict:
    """Compile + verify (host, fp32 and int8), the metric through each C build on the whole test split,
    host µs/step of the native programs, Cortex-M4 flash/RAM and emulated instructions per step."""
    from edgeprune import checkpoint, frontend
    from edgeprune.bench.devices import parse
    from edgeprune.bench.harness import Bench
    from edgeprune.bench.prepare import prepare
    from edgeprune.bench.settings import BenchSettings
    from edgeprune.bench.stats import Budget

    variants = {"c": [{"dtype": d} for d in DTYPES]}
    prepared, dataset = prepare(str(path), variants=variants)
    try:
        out: dict = {"verified": {}, "torch": None, "c": {}}
        for f in prepared.failures:  # never a figure: the table only holds builds that compiled and verified
            if f.get("stage") == "compile":
                dtype = f["id"].split("[")[-1].rstrip("]")
                out["c"][dtype] = {"failed": str(f.get("error") or f.get("reason"))}
                log(f"{path.name}: {f['id']} did not compile/verify: {out['c'][dtype]['failed']}")
        if "f32" in out["c"]:
            return out
        budget = Budget(warmup=20, warmup_s=0.02, min_reps=200, max_reps=3000, time_s=host_budget_s, rel_ci=0.02)
        host = Bench(prepared, dataset, parse("local"), BenchSettings(budget=budget, keep_samples=False)).run()
        for r in host["runtimes"]:
            acc = (r.get("accuracy") or {}).get("sequence") or (r.get("accuracy") or {}).get("step")
            if r["id"] == "torch":
                out["torch"] = _score(acc, power)
                continue
            dtype = (r.get("variant") or {}).get("dtype")
            if dtype not in DTYPES:
                continue
            entry = out["c"].setdefault(dtype, {})
            if r.get("call_path") == "native":
                entry["host_us_per_step"] = r["latency"]["step"]["p50"] / 1000.0
                entry["host_load"] = list(os.getloadavg())
            else:
                entry.update(_score(acc, power))
                entry["max_abs_vs_torch"] = acc.get("max_abs_vs_reference")
                entry["storage_bytes"] = r["memory"].get("storage_bytes")
        for spec in prepared.specs:
            if spec.kind == "artifact":
                out["verified"][spec.id] = bool(spec.verified)
        if m4:
            dev = Bench(prepared, dataset, parse("qemu-m4"), BenchSettings(device_samples=4, keep_samples=False)).run()
            for r in dev["runtimes"]:
                dtype = (r.get("variant") or {}).get("dtype")
                if dtype in DTYPES and r.get("status") == "ok" and "failed" not in out["c"][dtype]:
                    lat = r["latency"]["step"]
                    if lat.get("unit") != "instructions":
                        raise SystemExit(f"{path.name}: QEMU's instruction counter is unavailable")
                    acc = (r.get("accuracy") or {}).get("step") or {}
                    out["c"][dtype].update(
                        m4_instructions_per_step=lat["p50"], m4_max_abs_vs_torch=acc.get("max_abs_vs_reference")
                    )
            graph = frontend.lower(checkpoint.load(path))
            for dtype in (d for d in DTYPES if "failed" not in out["c"][d]):
                with tempfile.TemporaryDirectory(prefix="edgeprune-task-m4-") as tmp:
                    info = build_c(graph, Path(tmp) / "m4", arch="cortex-m4", dtype=dtype).info
                out["c"][dtype].update(m4_flash_bytes=info["flash_bytes"], m4_ram_bytes=info["ram_bytes"])
        return out
    finally:
        prepared.cleanup()


# -- running ----------------------------------------------------------------------------------------


def run(task: Task, seeds, labels, m4: bool = True) -> None:
    import torch

    from edgeprune import data
    from edgeprune.errors import PruneError
    from edgeprune.fileio import dumps_json, write_text_atomic

    torch.set_num_threads(1)
    ds = data.load(task.name, layouts=data.ANY_LAYOUT, variable_length=True)
    power = centred_power(ds)
    d = task_dir(task)
    d.mkdir(parents=True, exist_ok=True)
    for seed in seeds:  # seed outermost: an interrupted run has whole seeds
        dense_path = dense_checkpoint(task, seed)
        dense_json = d / f"{dense_path.stem}.json"
        if not dense_json.exists():
            t0 = time.perf_counter()
            r = {"label": "dense", "seed": seed, "sparsity": 0.0, "requested": 0.0, **measure(dense_path, power, m4=m4)}
            r["seconds"] = round(time.perf_counter() - t0, 1)
            write_text_atomic(dense_json, dumps_json(r))
            log(f"{task.name} seed {seed} dense: {_brief(r)}")
        for label in labels:
            for s in task.methods[label][2]:
                key = cell_key(task, label, s, seed)
                if (d / f"{key}.json").exists():
                    continue
                t0 = time.perf_counter()
                try:
                    cells = prune_cells(task, label, s, seed, dense_path, ds)
                except PruneError as e:  # a refusal is a result too, reported as such
                    write_text_atomic(d / f"{key}.json", dumps_json({"label": label, "seed": seed, "refused": str(e)}))
                    log(f"{task.name} seed {seed} {label} @{s}: refused: {e}")
                    continue
                for k, path, info in reversed(cells):  # the twin first: the method's file marks the cell done
                    r = {**info, **measure(path, power, m4=m4), "seconds": round(time.perf_counter() - t0, 1)}
                    write_text_atomic(d / f"{k}.json", dumps_json(r))
                    log(f"{task.name} seed {seed} {r['label']} @{s}: sparsity {r['sparsity']:.4f} {_brief(r)}")


def _brief(r: dict) -> str:
    return ", ".join(f"{d} {_metric_text(r['c'].get(d, {}))}" for d in DTYPES)


def _metric_text(c: dict) -> str:
    if "failed" in c:
        return "did not verify"
    if "accuracy" in c:
        metric = f"acc {c['accuracy']:.4f}"
    elif "snr_db" in c:
        metric = f"SNR {c['snr_db']:.2f} dB"
    else:
        return "?"
    return (
        f"{metric} {c.get('host_us_per_step', float('nan')):.2f} µs/step, "
        f"M4 {c.get('m4_instructions_per_step', 0):,.0f} insn {c.get('m4_flash_bytes', 0):,} B"
    )


# -- report -----------------------------------------------------------------------------------------


def load_cells(task: Task) -> list[dict]:
    d = task_dir(task)
    cells = []
    for seed in task.seeds:
        recipe = {"model": task.model, "epochs": task.epochs, "lr": task.lr, "batch": task.batch_size, "seed": seed}
        p = d / f"dense-s{seed}-{_digest(recipe)}.json"
        if p.exists():
            cells.append(json.loads(p.read_text()))
        for label, (_, _, sparsities) in task.methods.items():
            for s in sparsities:
                labels = [label] + ([f"magnitude-at-{label}"] if label in OUTCOME else [])
                for lab in labels:
                    p = d / f"{cell_key(task, lab, s, seed)}.json"
                    if p.exists():
                        cells.append(json.loads(p.read_text()))
    return cells


def summarize(task: Task, cells: list[dict]) -> list[dict]:
    """One row per (label, requested sparsity): means over seeds, the achieved sparsity measured."""
    groups: dict = {}
    for c in cells:
        if "refused" in c:
            continue
        groups.setdefault((c["label"], c["requested"]), []).append(c)
    rows = []
    for (label, requested), cs in groups.items():
        row = {
            "task": task.name,
            "label": label,
            "requested": requested,
            "seeds": sorted(c["seed"] for c in cs),
            "achieved": [c["sparsity"] for c in cs],
        }
        for dtype in DTYPES:
            for k in ("accuracy", "macro_f1", "mse", "snr_db", "host_us_per_step", "m4_instructions_per_step"):
                vals = [c["c"][dtype][k] for c in cs if c["c"][dtype].get(k) is not None]
                if vals:
                    row[f"{dtype}_{k}"] = vals
            for k in ("m4_flash_bytes", "m4_ram_bytes", "storage_bytes"):
                vals = [c["c"][dtype][k] for c in cs if c["c"][dtype].get(k) is not None]
                if vals:
                    row[f"{dtype}_{k}"] = vals
        row["verified"] = all(all(c["verified"].values()) and c["verified"] for c in cs)
        rows.append(row)
    order = {lab: i for i, lab in enumerate(["dense", *task.methods, *(f"magnitude-at-{o}" for o in OUTCOME)])}
    rows.sort(key=lambda r: (r["requested"], order.get(r["label"], 99)))
    return rows


def mean(v):
    return statistics.mean(v) if v else None


def pm(v, scale=1.0, digits=1) -> str:
    if not v:
        return ""
    m = statistics.mean(v) * scale
    if len(v) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(v) * scale:.{digits}f}"


def sparsity_text(v) -> str:
    lo, hi = min(v), max(v)
    return f"{100 * lo:.2f}%" if hi - lo < 5e-5 else f"{100 * lo:.2f}–{100 * hi:.2f}%"


def _requested_text(r: dict) -> str:
    if r["label"] == "dense":
        return "–"
    if r["label"] in OUTCOME:
        return "its bound"
    if r["label"].startswith("magnitude-at-"):
        return f"= {r['label'][len('magnitude-at-') :]}"
    return f"{r['requested']:.0%}"


def _verified_text(r: dict, key: str) -> str:
    """' (k/n verified)' when some seeds' builds failed compile's verification (never averaged in)."""
    k, n = len(r.get(key) or []), len(r["seeds"])
    return "" if k == n else f" ({k}/{n} verified)"


def _pair(r: dict, key: str, fmt: str) -> str:
    return " / ".join("–" if not r.get(f"{d}_{key}") else format(mean(r[f"{d}_{key}"]), fmt) for d in DTYPES)


def table(rows: list[dict], regression: bool) -> str:
    if regression:
        head = ["method", "requested", "achieved", "seeds", "SNR dB fp32", "SNR dB int8", "MSE fp32"]
    else:
        head = ["method", "requested", "achieved", "seeds", "accuracy % fp32", "macro-F1 fp32", "accuracy % int8"]
    head += ["M4 flash fp32 / int8 B", "M4 RAM fp32 / int8 B", "M4 instr/step fp32 / int8", "host µs/step fp32 / int8"]
    out = []
    for r in rows:
        if regression:
            metric = [
                pm(r.get("f32_snr_db"), 1, 2),
                pm(r.get("int8_snr_db"), 1, 2) + _verified_text(r, "int8_snr_db"),
                pm(r.get("f32_mse"), 1, 0),
            ]
        else:
            metric = [
                pm(r.get("f32_accuracy"), 100),
                pm(r.get("f32_macro_f1"), 1, 3),
                pm(r.get("int8_accuracy"), 100) + _verified_text(r, "int8_accuracy"),
            ]
        out.append(
            [
                r["label"],
                _requested_text(r),
                sparsity_text(r["achieved"]),
                len(r["seeds"]),
                *metric,
                _pair(r, "m4_flash_bytes", ",.0f"),
                _pair(r, "m4_ram_bytes", ",.0f"),
                _pair(r, "m4_instructions_per_step", ",.0f"),
                _pair(r, "host_us_per_step", ".2f"),
            ]
        )
    return markdown_table(head, out)


def main(tasks: list[Task], argv=None, default_tasks=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=None, help="labels to run (default: all)")
    ap.add_argument("--tasks", nargs="+", default=None)
    ap.add_argument("--no-m4", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    wanted = args.tasks or default_tasks
    chosen = [t for t in tasks if wanted is None or t.name in wanted]
    if not args.report_only:
        for t in chosen:
            run(t, args.seeds or list(t.seeds), args.methods or list(t.methods), m4=not args.no_m4)
    from benchmarks.tasks import report

    report.write()


__all__ = ["Task", "main", "RESULTS"]
