"""Ramanujan IMP: iterative magnitude pruning with a per-matrix Ramanujan stopping rule.

This is the seed paper's kind of method (prune iteratively, stop each layer at the Ramanujan
bound); ``expander`` is edgeprune's own one-shot construction. Each round removes ``rate`` (20%)
of the weights a matrix still has — its smallest |w| after the previous round's training — then
trains the masked model ``round_epochs`` epochs. Three choices, each an option, because the
authors' line of work (Pal et al., ICML 2022; public code VITA-Group/ramanujan-on-pai) runs them
differently from edgeprune's default:

- ``--rewind none`` (default) fine-tunes the weights as they are after each round; ``init``
  resets every weight to the initial weights first (lottery tickets: re-drawn from ``--seed``, which
  are the model's own when edgeprune trained it with that seed), ``early`` to the weights after
  ``--rewind-epochs`` of dense training from them.
- ``--test next`` (default) checks the round's mask before taking it, so no matrix ends below the
  bound; ``current`` keeps pruning while the *current* mask is Ramanujan (the last round taken may
  cross the bound).
- ``--test-graph gate`` (default) tests every gate block's bipartite graph; ``matrix`` tests the
  matrix as one graph (all gates stacked).

A matrix that fails the test (Δr < 0), or whose average degree would fall below 3 (Δr undefined,
so the layer can no longer be certified), stops where it is. Pruning ends when every matrix
reached the target or stopped; a matrix that stopped short is refused by ``prune_model`` unless
``--accept-reached``. ``--reach-target`` prunes past the rule to the requested sparsity and
reports every matrix it had to leave non-Ramanujan. The report gives both Δs definitions, labelled.
"""

from __future__ import annotations

import numpy as np

from ..errors import PruneError
from ..graphs.bipartite import gate_slices
from ..graphs.biregular import gated_gap
from ..graphs.spectral import expansion
from ..options import Option
from .registry import MaskResult, PruneContext, keep_count, register, top_k_mask

REWINDS = ("none", "init", "early")
TESTS = ("next", "current")
TEST_GRAPHS = ("gate", "matrix")
OPTIONS = (
    Option("rate", 0.2, "ramanujan-imp: fraction of a matrix's remaining weights pruned per round", float),
    Option("round_epochs", 1, "ramanujan-imp: masked training epochs after every round", int),
    Option(
        "reach_target", False, "ramanujan-imp: prune past the Ramanujan rule to the target, reporting violations", bool
    ),
    Option(
        "rewind",
        "none",
        "ramanujan-imp: before each round's training keep the weights (none), reset them to "
        "the initial weights drawn from --seed (init, lottery tickets as the authors run it) or to those after "
        "--rewind-epochs of dense training (early)",
        choices=REWINDS,
    ),
    Option("rewind_epochs", 1, "ramanujan-imp --rewind early: dense epochs from the initial weights", int),
    Option(
        "test",
        "next",
        "ramanujan-imp: test the round's mask before taking it (next) or prune while the "
        "current mask passes (current, as the authors' code)",
        choices=TESTS,
    ),
    Option(
        "test_graph",
        "gate",
        "ramanujan-imp: Ramanujan test on every gate block (gate) or on the whole "
        "matrix as one bipartite graph (matrix)",
        choices=TEST_GRAPHS,
    ),
)


def check(mask: np.ndarray, gates: int, graph: str) -> tuple[float | None, bool | None, str]:
    """Δr, verdict and (if undefined) why, for the gate blocks (worst) or the whole matrix."""
    if graph == "gate":
        return gated_gap(mask, gates)
    e = expansion(mask, cheeger=False)
    return e.ramanujan_gap, e.ramanujan, e.note


def spectral_gaps(mask: np.ndarray, gates: int) -> dict:
    """Both Δs definitions, labelled, for the whole matrix and each gate block."""

    def of(m):
        e = expansion(m, cheeger=False)
        return {"mu0_minus_mu_hat": e.spectral_gap, "code_2sqrt_mu0_minus_1_minus_mu_hat": e.spectral_gap_code}

    return {"matrix": of(mask), "gates": [of(mask[s]) for s in gate_slices(mask.shape[0], gates)]}


@register(
    "ramanujan-imp",
    help="the paper's kind of method: iterative magnitude pruning (20%/round, training "
    "each round) where a matrix stops before its graph fails the Ramanujan bound",
    options=OPTIONS,
)
def ramanujan_imp(ctx: PruneContext, sparsity: float) -> MaskResult:
    o = ctx.options
    rate, epochs, reach = o["rate"], o["round_epochs"], o["reach_target"]
    if not 0.0 < rate < 1.0:
        raise PruneError(f"--rate must be in (0, 1), got {rate}")
    if epochs < 0:
        raise PruneError(f"--round-epochs must be >= 0, got {epochs}")
    if o["rewind_epochs"] < 0:
        raise PruneError(f"--rewind-epochs must be >= 0, got {o['rewind_epochs']}")
    if o["rewind"] != "none" and epochs == 0:
        raise PruneError(f"--rewind {o['rewind']} retrains from the rewound weights: it needs --round-epochs >= 1")
    if epochs and ctx.finetune is None:
        raise PruneError(
            "ramanujan-imp trains after every round and needs a dataset (--data), or pass --round-epochs 0"
        )
    rewind = {"none": None, "init": 0, "early": o["rewind_epochs"]}[o["rewind"]]

    values = {n: w.values for n, w in ctx.weights.items()}
    masks = {n: np.ones(w.shape, dtype=bool) for n, w in ctx.weights.items()}
    target = {n: max(1, keep_count(w.values.size, sparsity)) for n, w in ctx.weights.items()}
    state = {
        n: {
            "rounds": 0,
            "reason": "target" if masks[n].sum() <= target[n] else None,
            "violated": False,
            "rejected_gap": None,
        }
        for n in ctx.weights
    }
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
            tested = candidate if o["test"] == "next" else masks[name]
            gap, verdict, note = check(tested, w.gates, o["test_graph"])
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
            values = ctx.finetune(masks, epochs, rewind=rewind)
            trained += epochs
        history.append(
            {
                "round": rounds,
                "pruned": moved,
                "sparsity": float(1 - sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())),
            }
        )

    per_weight, limits = {}, {}
    for name, w in ctx.weights.items():
        gap, verdict, note = check(masks[name], w.gates, o["test_graph"])
        st = state[name]
        per_weight[name] = {
            "sparsity": float(1.0 - masks[name].mean()),
            "rounds": st["rounds"],
            "stopped": st["reason"],  # target | ramanujan (the test failed) | undefined (degree < 3)
            "rejected_round_gap": st["rejected_gap"],
            "ramanujan_gap": gap,
            "ramanujan": verdict,
            "violated": st["violated"] or verdict is False,
            "spectral_gap": spectral_gaps(masks[name], w.gates),
            **({"note": note} if note else {}),
        }
        if st["reason"] != "target":
            tested = "its next round's mask" if o["test"] == "next" else "its current mask"
            why = (
                f"Δr {st['rejected_gap']:.3g} < 0"
                if st["reason"] == "ramanujan"
                else st.get("rejected_note") or "degree < 3"
            )
            limits[name] = (
                f"the Ramanujan rule stopped it after {st['rounds']} rounds: {tested} fails the "
                f"{o['test_graph']} test ({why}); --reach-target prunes past the rule"
            )
    report = {
        "rounds": rounds,
        "rate": rate,
        "round_epochs": epochs,
        "rewind": o["rewind"],
        "rewind_epochs": rewind,
        "test": o["test"],
        "test_graph": o["test_graph"],
        "weights": per_weight,
        "stopped_early": sorted(n for n, r in per_weight.items() if r["stopped"] != "target"),
        "violations": sorted(n for n, r in per_weight.items() if r["violated"]),
        "history": history,
    }
    return MaskResult(masks, report, finetuned_epochs=trained, limits=limits)
