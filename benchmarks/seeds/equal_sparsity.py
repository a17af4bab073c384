"""Both seed papers' claims at equal achieved sparsity: lattice readings and expander methods vs
magnitude and random, every row with the sparsity it actually reached.

The smallest grid that answers each claim on a 2-core machine shared with other jobs:
LSTM-128 on mnist5k and fashion-mnist (``benchmarks.common.standard_dense_model``, seeds 0 1 2),
one-shot methods at s = 0.5 / 0.9 / 0.95 (0.5 only for the baselines and the default readings:
everything is near dense there), then masked fine-tuning, 2 epochs, Adam 1e-3, batch 64, on
mnist5k's 4,000 training images / a fixed 5,000-image subset of fashion-mnist's; accuracy on the
test set (mnist5k 1,000 images, fashion-mnist 10,000), clean and with Gaussian input noise
(σ = 0.3, a fixed draw, on at most 2,000 test images). Methods that cannot be told a sparsity (lattice natural mode,
ramanujan-imp which stops at
the Ramanujan bound) are paired with ``magnitude`` at *their* per-matrix kept counts
(``magnitude-at-<label>``), so every comparison is at equal sparsity.

ramanujan-imp: rounds of 20%, each followed by 1 epoch on a fixed 500-sample subset, target 0.95
with ``--accept-reached`` (it stops where the rule stops it), then the same 2-epoch fine-tune:
``ramanujan-imp`` = edgeprune's default (fine-tune, test the next round's mask, per gate block),
``ramanujan-imp-authors`` = as the authors' line of work runs it (rewind to the initial weights,
test the current mask, whole matrix), and each of those three choices alone (``-rewind``,
``-current``, ``-matrix``).

Every cell is cached as JSON under ``$EDGEPRUNE_BENCH_CACHE/equal-cells/`` (resumable).

    export EDGEPRUNE_BENCH_CACHE=/work/bench-cache OMP_NUM_THREADS=1
    nice python benchmarks/seeds/equal_sparsity.py --part lattice
    nice python benchmarks/seeds/equal_sparsity.py --part expander
    python benchmarks/seeds/equal_sparsity.py --report-only

Writes ``results/lattice_equal.{md,json}`` and ``results/expander_equal.{md,json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import CACHE, markdown_table, standard_dense_model, write_results  # noqa: E402

PROTOCOL = "equal-sparsity/1"
DATASETS = ("mnist5k", "fashion-mnist")
CELL, HIDDEN = "lstm", 128
# fine-tuning set: mnist5k's 4,000 training images; fashion-mnist: a fixed 5,000-image subset
FT_SUBSET = {"mnist5k": None, "fashion-mnist": 5000}
SEEDS = (0, 1, 2)
FT = {"epochs": 2, "lr": 1e-3, "batch_size": 64}
IMP_ROUND_SUBSET = 500
NOISE_SIGMA = 0.3
CELL_DIR = CACHE / "equal-cells"
RUN_LOAD = "6 to 13 on 2 cores (`uptime` during the committed run)"

# label -> (method, options, sparsities); None = the method decides the sparsity
LATTICE = {
    "magnitude": ("magnitude", {}, (0.5, 0.9, 0.95)),
    "random": ("random", {}, (0.5, 0.9, 0.95)),
    "lattice": ("lattice", {}, (0.5, 0.9, 0.95)),  # binary, median, theta 0.5, either endpoint, unrolled
    "lattice-continuous": ("lattice", {"adjacency": "continuous"}, (0.5, 0.9, 0.95)),
    "lattice-recurrent": ("lattice", {"poset_graph": "recurrent"}, (0.9, 0.95)),
    # At the binary median every current-state unit is irreducible and no source is: the bonus is
    # constant whichever endpoint is asked (seed 0 only, to show it). With the continuous
    # adjacency cut at theta the sources' irreducibility varies, so these readings do move masks.
    "lattice-source": ("lattice", {"critical_at": "source"}, (0.9, 0.95)),
    "lattice-both": ("lattice", {"critical_at": "both"}, (0.9, 0.95)),
    "lattice-recurrent-source": ("lattice", {"poset_graph": "recurrent", "critical_at": "source"}, (0.9, 0.95)),
    "lattice-continuous-source": ("lattice", {"adjacency": "continuous", "critical_at": "source"}, (0.9, 0.95)),
    "lattice-continuous-both": ("lattice", {"adjacency": "continuous", "critical_at": "both"}, (0.9, 0.95)),
    "lattice-continuous-recurrent": ("lattice", {"adjacency": "continuous", "poset_graph": "recurrent"}, (0.9, 0.95)),
    "natural-binary": ("lattice", {"mode": "natural"}, (None,)),
    "natural-continuous": ("lattice", {"mode": "natural", "adjacency": "continuous"}, (None,)),
    "natural-continuous-0.3": ("lattice", {"mode": "natural", "adjacency": "continuous", "theta": 0.3}, (None,)),
}
EXPANDER = {  # magnitude and random last: the lattice part computes them (same cells)
    "random-regular": ("random-regular", {}, (0.5, 0.9, 0.95)),
    "expander": ("expander", {}, (0.5, 0.9, 0.95)),
    "expander-norepair": ("expander", {"max_repairs": 0}, (0.9, 0.95)),
    "block-expander-1x4": ("block-expander", {"block": "1x4"}, (0.9, 0.95)),
    "ramanujan-imp": ("ramanujan-imp", {"accept_reached": True}, (0.95,)),
    "ramanujan-imp-authors": (
        "ramanujan-imp",
        {"accept_reached": True, "rewind": "init", "test": "current", "test_graph": "matrix"},
        (0.95,),
    ),
    # one authors' choice at a time, to see which one moves the stopping point
    "ramanujan-imp-rewind": ("ramanujan-imp", {"accept_reached": True, "rewind": "init"}, (0.95,)),
    "ramanujan-imp-current": ("ramanujan-imp", {"accept_reached": True, "test": "current"}, (0.95,)),
    "ramanujan-imp-matrix": ("ramanujan-imp", {"accept_reached": True, "test_graph": "matrix"}, (0.95,)),
    "magnitude": LATTICE["magnitude"],
    "random": LATTICE["random"],
}
PARTS = {"lattice": LATTICE, "expander": EXPANDER}
SEED0_ONLY = {"lattice-source", "lattice-both", "lattice-recurrent-source"}
# labels whose sparsity is the method's outcome: paired with magnitude at the same per-matrix counts
OUTCOME = {
    "natural-binary",
    "natural-continuous",
    "natural-continuous-0.3",
    "ramanujan-imp",
    "ramanujan-imp-authors",
    "ramanujan-imp-rewind",
    "ramanujan-imp-current",
    "ramanujan-imp-matrix",
}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def key(label: str, method: str, options: dict, sparsity, seed: int, dataset: str = "mnist5k") -> str:
    spec = {
        "protocol": PROTOCOL,
        "dataset": dataset,
        "cell": CELL,
        "hidden": HIDDEN,
        "ft": FT,
        "method": method,
        "options": options,
        "sparsity": sparsity,
        "seed": seed,
        "noise": NOISE_SIGMA,
        "imp": IMP_ROUND_SUBSET,
    }
    if dataset != "mnist5k":
        spec["ft_subset"] = FT_SUBSET[dataset]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    prefix = "" if dataset == "mnist5k" else f"{dataset}-"
    return f"{prefix}{label}-s{seed}-{sparsity}-{digest}"


def noisy_test(ds):
    rng = np.random.default_rng(307)
    X, y = ds.X_test[:2000], ds.y_test[:2000]  # at most 2,000 test images
    return (X + rng.normal(0.0, NOISE_SIGMA, X.shape)).astype(np.float32), y


def train_subset(ds, size):
    if size is None or size >= len(ds.X_train):
        return ds
    pick = np.sort(np.random.default_rng(12345).permutation(len(ds.X_train))[:size])
    return dataclasses.replace(ds, X_train=ds.X_train[pick], y_train=ds.y_train[pick])


def evaluate(model, ds, noisy) -> dict:
    from edgeprune.train import accuracy

    return {"clean": accuracy(model, ds.X_test, ds.y_test), "noise": accuracy(model, *noisy)}


def magnitude_masks_like(dense, masks: dict) -> dict:
    """Magnitude masks of ``dense`` keeping, per matrix, as many entries as ``masks`` does."""
    from edgeprune.prune import describe_weights, top_k_mask

    weights = describe_weights(dense)
    return {n: top_k_mask(np.abs(weights[n].values), int(m.sum())) for n, m in masks.items()}


def finish(model, masks_np: dict, dense, ds, noisy, seed: int, magnitude: dict | None, ft_ds=None) -> dict:
    """Evaluate, fine-tune, evaluate; overlap with magnitude's mask at the same counts."""
    from edgeprune.train import train

    before = evaluate(model, ds, noisy)
    train(model, ft_ds or ds, epochs=FT["epochs"], lr=FT["lr"], batch_size=FT["batch_size"], seed=seed, progress=False)
    after = evaluate(model, ds, noisy)
    sizes = {n: m.size for n, m in masks_np.items()}
    out = {
        "pruned": before,
        "finetuned": after,
        "sparsity": 1 - sum(int(m.sum()) for m in masks_np.values()) / sum(sizes.values()),
        "sparsity_per_matrix": {n: 1 - int(m.sum()) / m.size for n, m in masks_np.items()},
    }
    if magnitude is not None:  # fraction of kept entries not in magnitude's mask of the same counts
        kept = sum(int(m.sum()) for m in masks_np.values())
        out["differs_from_magnitude"] = sum(int((m & ~magnitude[n]).sum()) for n, m in masks_np.items()) / max(1, kept)
    return out


def run_cell(label, method, options, sparsity, seed, ctx) -> list[tuple[str, dict]]:
    """The cell and, for an outcome method, its magnitude twin at the same per-matrix counts."""
    import torch

    from edgeprune import prune

    dense, ds, noisy, ft_ds, dataset = ctx["dense"], ctx["ds"], ctx["noisy"], ctx["ft_ds"], ctx["dataset"]
    t0 = time.perf_counter()
    kwargs = {}
    if method == "ramanujan-imp":
        # a fixed training subset for the rounds; a one-sample test split (we evaluate ourselves)
        pick = np.sort(np.random.default_rng(12345).permutation(len(ds.X_train))[:IMP_ROUND_SUBSET])
        rounds = dataclasses.replace(
            ds, X_train=ds.X_train[pick], y_train=ds.y_train[pick], X_test=ds.X_test[:1], y_test=ds.y_test[:1]
        )
        kwargs = {"dataset": rounds, "finetune_lr": FT["lr"], "batch_size": FT["batch_size"]}
    outcome = prune.prune_model(dense, method, sparsity, seed=seed, options=options, **kwargs)
    masks = {n: m.numpy().astype(bool) for n, m in outcome.model.masks().items()}
    magnitude = magnitude_masks_like(dense, masks)
    result = {
        "label": label,
        "seed": seed,
        "sparsity_requested": sparsity,
        "options": options,
        **finish(outcome.model, masks, dense, ds, noisy, seed, magnitude, ft_ds),
    }
    rep = outcome.report["method_report"]
    if method == "ramanujan-imp":
        result["imp"] = {
            "rounds": rep["rounds"],
            "finetune_epochs": outcome.report["finetune_epochs"],
            "stopped": {n: w["stopped"] for n, w in rep["weights"].items()},
            "ramanujan_gap": {n: w["ramanujan_gap"] for n, w in rep["weights"].items()},
            "spectral_gap": {n: w["spectral_gap"]["matrix"] for n, w in rep["weights"].items()},
        }
    if method == "lattice":
        result["lattice"] = {
            "groups": {g: v["meet_irreducible"] for g, v in rep["groups"].items()},
            "components": rep.get("strongly_connected_components"),
        }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = [(key(label, method, options, sparsity, seed, dataset), result)]
    if label in OUTCOME:
        t0 = time.perf_counter()
        twin = copy_dense(dense)
        twin.set_masks({n: torch.from_numpy(m) for n, m in magnitude.items()})
        r = {
            "label": f"magnitude-at-{label}",
            "seed": seed,
            "sparsity_requested": result["sparsity"],
            **finish(twin, magnitude, dense, ds, noisy, seed, None, ft_ds),
        }
        r["seconds"] = round(time.perf_counter() - t0, 1)
        out.append((key(f"magnitude-at-{label}", "magnitude", options, sparsity, seed, dataset), r))
    return out


def copy_dense(dense):
    import copy

    model = copy.deepcopy(dense)
    model.clear_masks()
    return model


def run(part: str, seeds, dataset: str = "mnist5k") -> None:
    import torch

    from edgeprune import data, fileio
    from edgeprune.errors import PruneError

    torch.set_num_threads(1)
    CELL_DIR.mkdir(parents=True, exist_ok=True)
    ds = data.load(dataset)
    ctx = {"ds": ds, "noisy": noisy_test(ds), "ft_ds": train_subset(ds, FT_SUBSET[dataset]), "dataset": dataset}
    for seed in seeds:  # seed outermost: an interrupted run has whole seeds
        ctx["dense"], acc = standard_dense_model(dataset, CELL, (HIDDEN,), seed=seed, log=log)
        dense_path = CELL_DIR / f"{'' if dataset == 'mnist5k' else dataset + '-'}dense-s{seed}.json"
        if not dense_path.exists():
            fileio.write_text_atomic(
                dense_path, fileio.dumps_json({"seed": seed, **evaluate(ctx["dense"], ds, ctx["noisy"])})
            )
        for label, (method, options, sparsities) in PARTS[part].items():
            if label in SEED0_ONLY and seed != 0:
                continue
            for s in sparsities:
                path = CELL_DIR / f"{key(label, method, options, s, seed, dataset)}.json"
                if path.exists():
                    continue
                try:
                    results = run_cell(label, method, options, s, seed, ctx)
                except PruneError as e:  # a refusal is a result too: reported as such
                    results = [(path.stem, {"label": label, "seed": seed, "refused": str(e)})]
                    log(f"{part} seed {seed} {label} @{s}: refused: {e}")
                for k, r in results:
                    fileio.write_text_atomic(CELL_DIR / f"{k}.json", fileio.dumps_json(r))
                    if "refused" in r:
                        continue
                    log(
                        f"{dataset} {part} seed {seed} {r['label']} @{s}: sparsity {r['sparsity']:.4f} "
                        f"pruned {r['pruned']['clean']:.4f} ft {r['finetuned']['clean']:.4f} ({r['seconds']} s)"
                    )


def _ms(values) -> str:
    if not values:
        return ""
    m = statistics.mean(values)
    return f"{100 * m:.1f} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else f"{100 * m:.1f}"


def _sp(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.4f}" if hi - lo < 5e-5 else f"{lo:.4f}–{hi:.4f}"


def section(part: str, dataset: str) -> tuple[list[str], dict]:
    cells, refused = [], []
    for label, (method, options, sparsities) in PARTS[part].items():
        for s in sparsities:
            for seed in SEEDS:
                for k in [key(label, method, options, s, seed, dataset)] + (
                    [key(f"magnitude-at-{label}", "magnitude", options, s, seed, dataset)] if label in OUTCOME else []
                ):
                    path = CELL_DIR / f"{k}.json"
                    if path.exists():
                        cell = json.loads(path.read_text())
                        (refused if "refused" in cell else cells).append({**cell, "requested": s})
    prefix = "" if dataset == "mnist5k" else f"{dataset}-"
    dense = [json.loads(p.read_text()) for p in sorted(CELL_DIR.glob(f"{prefix}dense-s*.json"))]
    if not cells:
        return [], {}
    rows, summary = [], []
    groups: dict = {}
    for c in cells:
        groups.setdefault((c["label"], c["requested"]), []).append(c)
    for (label, s), cs in groups.items():
        row = {
            "method": label,
            "requested": s,
            "seeds": len(cs),
            "achieved": _sp([c["sparsity"] for c in cs]),
            "achieved_per_matrix": _sp([v for c in cs for v in c["sparsity_per_matrix"].values()]),
            "pruned": _ms([c["pruned"]["clean"] for c in cs]),
            "finetuned": _ms([c["finetuned"]["clean"] for c in cs]),
            "finetuned_noise": _ms([c["finetuned"]["noise"] for c in cs]),
            "differs": (
                f"{100 * statistics.mean(c['differs_from_magnitude'] for c in cs):.2f}%"
                if all("differs_from_magnitude" in c for c in cs)
                else ""
            ),
        }
        summary.append({**row, "cells": cs})
        rows.append(
            [
                row[k]
                for k in (
                    "method",
                    "requested",
                    "achieved",
                    "achieved_per_matrix",
                    "seeds",
                    "pruned",
                    "finetuned",
                    "finetuned_noise",
                    "differs",
                )
            ]
        )
    rows.sort(key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0, r[0]))
    head = [
        "method",
        "requested s",
        "achieved s (overall)",
        "achieved s (per matrix)",
        "seeds",
        "pruned %",
        "fine-tuned %",
        f"fine-tuned, noise σ={NOISE_SIGMA} %",
        "kept entries not in magnitude's mask",
    ]
    dense_line = (
        f"Dense LSTM-{HIDDEN} on {dataset}: {_ms([d['clean'] for d in dense])} % clean, "
        f"{_ms([d['noise'] for d in dense])} % with noise ({len(dense)} seeds)."
    )
    md = [
        f"## {dataset}",
        "",
        dense_line,
        "",
        "Accuracy: mean ± std over seeds. `requested s` empty: the method decides its sparsity; "
        "`magnitude-at-X` is magnitude pruning at X's per-matrix kept counts (same seed).",
        "",
        markdown_table(head, rows),
        "",
    ]
    if refused:
        md += ["Refused (one line each, as the CLI prints them):", ""]
        md += [f"- {c['label']} @ {c['requested']} (seed {c['seed']}): {c['refused']}" for c in refused] + [""]
    if part == "expander":
        imp = [c for c in cells if "imp" in c]
        if imp:
            md += [
                f"### {dataset}: where ramanujan-imp stopped (per matrix) and both Δs definitions of its final masks",
                "",
                "Δs = μ₀ − μ̂ (methods.md); Δs_code = 2√(μ₀ − 1) − μ̂ (ramanujan-on-pai `lib/graphs/scores.py`).",
                "",
                markdown_table(
                    ["variant", "seed", "rounds", "matrix", "stopped", "sparsity", "Δr (as tested)", "Δs", "Δs_code"],
                    [
                        [
                            c["label"],
                            c["seed"],
                            c["imp"]["rounds"],
                            n,
                            c["imp"]["stopped"][n],
                            f"{c['sparsity_per_matrix'][n]:.4f}",
                            _f(c["imp"]["ramanujan_gap"][n]),
                            _f(c["imp"]["spectral_gap"][n]["mu0_minus_mu_hat"]),
                            _f(c["imp"]["spectral_gap"][n]["code_2sqrt_mu0_minus_1_minus_mu_hat"]),
                        ]
                        for c in sorted(imp, key=lambda c: (c["label"], c["seed"]))
                        for n in c["imp"]["stopped"]
                    ],
                ),
                "",
            ]
    return md, {"dense": dense, "summary": summary, "refused": refused}


def report(part: str) -> None:
    md = [
        f"# {part.capitalize()} methods at equal achieved sparsity (LSTM-{HIDDEN})",
        "",
        __doc__.split("\n\n")[1],
        "",
        f"Load average while the cells ran (2026-12-07, shared machine): {RUN_LOAD}. Accuracies only; "
        "no timing is compared.",
        "",
    ]
    payload = {"load_average": RUN_LOAD}
    for dataset in DATASETS:
        lines, data = section(part, dataset)
        md += lines
        if data:
            payload[dataset] = data
    write_results(f"{part}_equal", payload, "\n".join(md))


def _f(v) -> str:
    return "" if v is None else f"{v:.3g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=sorted(PARTS), action="append")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--dataset", choices=DATASETS, default="mnist5k")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    parts = args.part or sorted(PARTS)
    if not args.report_only:
        for part in parts:
            run(part, args.seeds, args.dataset)
    for part in parts:
        report(part)


if __name__ == "__main__":
    main()
