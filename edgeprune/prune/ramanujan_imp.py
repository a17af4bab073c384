"""Ramanujan IMP: iterative magnitude pruning with a per-matrix Ramanujan stopping rule.

Each round removes ``rate`` (20%) of the weights a matrix still has — its smallest |w| after the
previous round's fine-tuning — then fine-tunes the masked model ``round_epochs`` epochs. Before a
matrix takes a round, the round's mask is checked: if any gate block's graph would fail the
Ramanujan bound (Δr < 0), or its average degree would fall below 3 (Δr undefined, so the layer can
no longer be certified), the matrix stops where it is. Pruning ends when every matrix reached the
target or stopped; the report says where and why each stopped. ``--reach-target`` prunes past the
rule to the requested sparsity and reports every matrix it had to leave non-Ramanujan.
"""

from __future__ import annotations

import numpy as np

from ..errors import PruneError
from ..graphs.biregular import gated_gap
from ..options import Option
from .registry import MaskResult, PruneContext, keep_count, register, top_k_mask

OPTIONS = (
    Option("rate", 0.2, "ramanujan-imp: fraction of a matrix's remaining weights pruned per round", float),
    Option("round_epochs", 1, "ramanujan-imp: masked fine-tuning epochs after every round", int),
    Option("reach_target", False, "ramanujan-imp: prune past the Ramanujan rule to the target, reporting violations",
           bool),
)


@register("ramanujan-imp", help="iterative magnitude pruning (20%/round, fine-tune each round); a matrix stops "
          "before its graph would fail the Ramanujan bound", options=OPTIONS)
def ramanujan_imp(ctx: PruneContext, sparsity: float) -> MaskResult:
    rate, epochs, reach = ctx.options["rate"], ctx.options["round_epochs"], ctx.options["reach_target"]
    if not 0.0 < rate < 1.0:
        raise PruneError(f"--rate must be in (0, 1), got {rate}")
    if epochs < 0:
        raise PruneError(f"--round-epochs must be >= 0, got {epochs}")
    if epochs and ctx.finetune is None:
        raise PruneError("ramanujan-imp fine-tunes after every round and needs a dataset (--data), "
                         "or pass --round-epochs 0")

    values = {n: w.values for n, w in ctx.weights.items()}
    masks = {n: np.ones(w.shape, dtype=bool) for n, w in ctx.weights.items()}
    target = {n: max(1, keep_count(w.values.size, sparsity)) for n, w in ctx.weights.items()}
    state = {n: {"rounds": 0, "reason": "target" if masks[n].sum() <= target[n] else None, "violated": False,
                 "rejected_gap": None} for n in ctx.weights}
    history, rounds, trained = [], 0, 0
    while True:
        moved = []
        for name, w in ctx.weights.items():
            st = state[name]
            if st["reason"] is not None:
                continue
            kept = int(masks[name].sum())
            nxt = max(target[name], min(kept - 1, int(round((1.0 - rate) * kept))))
            candidate = top_k_mask(np.where(masks[name], np.abs(values[name]), -1.0), nxt)
            gap, verdict, note = gated_gap(candidate, w.gates)
            if verdict is not True and not reach:
                st["reason"] = "ramanujan" if verdict is False else "undefined"
                st["rejected_gap"], st["rejected_note"] = gap, note
                continue
            if verdict is not True:
                st["violated"] = True
            masks[name] = candidate
            st["rounds"] += 1
            moved.append(name)
            if nxt <= target[name]:
                st["reason"] = "target"
        if not moved:
            break
        rounds += 1
        if epochs:
            values = ctx.finetune(masks, epochs)
            trained += epochs
        history.append({"round": rounds, "pruned": moved,
                        "sparsity": float(1 - sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values()))})

    per_weight = {}
    for name, w in ctx.weights.items():
        gap, verdict, note = gated_gap(masks[name], w.gates)
        st = state[name]
        per_weight[name] = {
            "sparsity": float(1.0 - masks[name].mean()),
            "rounds": st["rounds"],
            "stopped": st["reason"],  # target | ramanujan (next round fails) | undefined (degree < 3)
            "rejected_round_gap": st["rejected_gap"],
            "ramanujan_gap": gap,
            "ramanujan": verdict,
            "violated": st["violated"] or verdict is False,
            **({"note": note} if note else {}),
        }
    report = {
        "rounds": rounds,
        "rate": rate,
        "round_epochs": epochs,
        "weights": per_weight,
        "stopped_early": sorted(n for n, r in per_weight.items() if r["stopped"] != "target"),
        "violations": sorted(n for n, r in per_weight.items() if r["violated"]),
        "history": history,
    }
    return MaskResult(masks, report, finetuned_epochs=trained)
