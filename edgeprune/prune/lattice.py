"""Lattice (poset) pruning, after Sengupta 2025 (arXiv 2502.16525) as read in docs/lattice.md.

The one-step-unrolled dependency graph of the model is ordered by reachability; units that are
meet-irreducible in the Dedekind–MacNeille completion of that order, and central units, mark the
connections to keep (the analysis lives in ``edgeprune.graphs.dependency``, torch-free).

Two modes:

- ``target`` (default when ``--sparsity`` is given): rank every weight by the connection score
  ``|W| * (1 + beta*[u or v meet-irreducible] + gamma*c(u)*c(v))`` and keep the top ``1 - s`` per
  matrix (``--scope layer``) or over all of them (``--scope global``): exactly the requested
  sparsity; fine-tune with ``--finetune-epochs``.
- ``natural`` (default without ``--sparsity``; the paper's): keep an edge iff it is in the
  adjacency and touches a meet-irreducible or top-``central_fraction`` central unit; the sparsity
  is an outcome, reported.

Also here: ``lattice_masks`` for a user's own ``nn.LSTM``/``nn.GRU``/``nn.RNN``, and the
``inspect`` analysis (per layer: units, meet-irreducibles, poset figures, centrality).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PruneError
from ..graphs import dependency, poset
from ..inspection import Section, register_analysis
from ..options import Option
from .registry import MaskResult, PruneContext, keep_count, register, top_k_mask

OPTIONS = (
    Option(
        "mode",
        None,
        "lattice: 'target' (reach --sparsity, default when given) or 'natural' (sparsity is an "
        "outcome, default without --sparsity)",
        choices=("target", "natural"),
    ),
    Option(
        "adjacency",
        "binary",
        "lattice: binary (A = 1 iff unit strength > its --quantile) or continuous "
        "(A = strength / max strength); an edge iff A > --theta",
        choices=dependency.ADJACENCIES,
    ),
    Option(
        "scope",
        "layer",
        "rank per weight matrix or across all (lattice: its binary thresholds too)",
        choices=dependency.SCOPES,
    ),
    Option("quantile", 0.5, "lattice binary adjacency: strength quantile an edge must exceed", float),
    Option(
        "theta",
        0.5,
        "lattice: keep-threshold on the adjacency values, both kinds (binary 0/1: any theta "
        "in [0, 1) is the same; continuous: 0 keeps every nonzero connection)",
        float,
    ),
    Option(
        "poset_graph",
        "unrolled",
        "lattice: poset of one unrolled step, or of the recurrent graph (h@t-1 = h@t) "
        "with its strongly connected components collapsed",
        choices=dependency.GRAPHS,
    ),
    Option(
        "critical_at",
        "either",
        "lattice: a connection counts as touching a critical unit at either endpoint, its source, or both",
        choices=dependency.ENDPOINTS,
    ),
    Option(
        "centrality",
        "strength",
        "lattice: unit centrality on the continuous adjacency",
        choices=dependency.CENTRALITIES,
    ),
    Option("betweenness_samples", 64, "lattice betweenness: source nodes sampled (0 = exact)", int),
    Option("beta", 1.0, "lattice target score: weight of touching a meet-irreducible unit", float),
    Option("gamma", 1.0, "lattice target score: weight of c(u)*c(v)", float),
    Option("central_fraction", 0.1, "lattice natural mode: fraction of most central units kept as critical", float),
)


def resolve_mode(mode: str | None, sparsity: float | None) -> str:
    if mode is None:
        return "natural" if sparsity is None else "target"
    if mode == "target" and sparsity is None:
        raise PruneError("lattice --mode target needs --sparsity (or use --mode natural: the sparsity is an outcome)")
    if mode == "natural" and sparsity is not None:
        raise PruneError(
            "--sparsity does not apply to lattice --mode natural (the sparsity is an outcome; "
            "tune it with --quantile/--theta/--central-fraction)"
        )
    return mode


def check_options(o: dict) -> None:
    """Range checks for every option, whatever the mode (a bad value is an error even if unused)."""
    for name, flag, closed in (
        ("quantile", "--quantile", False),
        ("theta", "--theta", False),
        ("central_fraction", "--central-fraction", True),
    ):
        v = o[name]
        if not (0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0):
            raise PruneError(f"lattice {flag} must be in [0, 1{']' if closed else ')'}, got {v}")
    for name in ("beta", "gamma", "betweenness_samples"):
        if o[name] < 0:
            raise PruneError(f"lattice --{name.replace('_', '-')} must be >= 0, got {o[name]}")


def analyze_context(ctx: PruneContext) -> dependency.Analysis:
    """The dependency analysis of a pruning context (prunable and frozen weights both shape the order)."""
    o = ctx.options
    graph = dependency.build(dependency.connections_from(ctx.all_weights(), prunable=ctx.weights))
    return dependency.analyze(
        graph,
        adjacency_kind=o["adjacency"],
        quantile=o["quantile"],
        scope=o["scope"],
        theta=o["theta"],
        centrality_measure=o["centrality"],
        seed=int(ctx.rng.integers(2**31)),
        betweenness_samples=o["betweenness_samples"],
        graph_kind=o["poset_graph"],
    )


@register(
    "lattice",
    help="keep connections of meet-irreducible and central units of the dependency poset (target or natural sparsity)",
    options=OPTIONS,
    fixed_sparsity=False,
)
def lattice(ctx: PruneContext, sparsity: float | None) -> MaskResult:
    o = ctx.options
    mode = resolve_mode(o["mode"], sparsity)
    check_options(o)
    try:
        analysis = analyze_context(ctx)
        if mode == "target":
            scores = dependency.connection_scores(
                analysis, beta=o["beta"], gamma=o["gamma"], endpoints=o["critical_at"]
            )
            masks = _top_scores(scores, sparsity, o["scope"])
        else:
            masks = dependency.natural_masks(
                analysis, central_fraction=o["central_fraction"], endpoints=o["critical_at"]
            )
    except dependency.GraphError as e:
        raise PruneError(f"lattice: {e}") from None
    masks = {name: masks[name] for name in ctx.weights}
    # No timings in the report: it goes into the checkpoint, and the same seed gives the same bytes.
    total = sum(m.size for m in masks.values())
    report = {
        "mode": mode,
        "adjacency": o["adjacency"],
        "theta": o["theta"],
        "poset_graph": o["poset_graph"],
        "critical_at": o["critical_at"],
        "thresholds": analysis.adjacency.thresholds,
        "groups": dependency.group_summary(analysis),
        "poset": poset.figures(analysis.poset, analysis.meet_irreducible),
        "outcome_sparsity": 1.0 - sum(int(m.sum()) for m in masks.values()) / total if total else 0.0,
    }
    if analysis.components is not None:
        report["strongly_connected_components"] = int(analysis.components.max(initial=-1)) + 1
    return MaskResult(masks, report, scope="global" if mode == "target" and o["scope"] == "global" else "matrix")


def _top_scores(scores: dict[str, np.ndarray], sparsity: float, scope: str) -> dict[str, np.ndarray]:
    if scope == "layer":
        return {n: top_k_mask(s, keep_count(s.size, sparsity)) for n, s in scores.items()}
    names = list(scores)
    keep = top_k_mask(
        np.concatenate([scores[n].ravel() for n in names]), keep_count(sum(s.size for s in scores.values()), sparsity)
    )
    masks, offset = {}, 0
    for n in names:
        masks[n] = keep[offset : offset + scores[n].size].reshape(scores[n].shape)
        offset += scores[n].size
    return masks


# -- a user's own torch modules ---------------------------------------------------------------------


@dataclass
class TorchMasks:
    """Masks for a user's recurrent module, keyed by its own parameter names (``weight_ih_l0``, ...)."""

    rnn: dict  # name -> torch.BoolTensor
    head: object | None  # torch.BoolTensor for the head's weight when it was pruned
    report: dict

    def apply(self, rnn, head=None) -> None:
        """Zero the pruned weights in place. To keep them zero while training, register the masks
        instead, e.g. ``torch.nn.utils.prune.custom_from_mask(rnn, name, mask)``."""
        import torch

        with torch.no_grad():
            for name, mask in self.rnn.items():
                getattr(rnn, name).mul_(mask.to(getattr(rnn, name).dtype))
            if head is not None and self.head is not None:
                head.weight.mul_(self.head.to(head.weight.dtype))


def lattice_masks(
    module, sparsity: float | None = None, *, head=None, include_head: bool = False, seed: int = 0, **options
) -> TorchMasks:
    """Lattice masks for a user's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and its ``nn.Linear`` head.

    ``module`` is the recurrent module (pass ``head``) or a module holding exactly one of each.
    ``options`` are the method's options (``adjacency``, ``mode``, ``centrality``, ``beta``, ...).
    Without ``sparsity`` the natural mode runs and the report says which sparsity came out.
    """
    from torch import nn

    from ..models import from_torch
    from .api import prune_model

    model = from_torch(module, head, check=False)
    recurrent = (
        module
        if isinstance(module, (nn.LSTM, nn.GRU, nn.RNN))
        else next(m for m in module.modules() if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)))
    )
    outcome = prune_model(model, "lattice", sparsity, seed=seed, options=options, include_head=include_head)
    masks = outcome.model.masks()
    rnn_masks = {}
    for l in range(recurrent.num_layers):
        for attr in ("weight_ih", "weight_hh"):
            rnn_masks[f"{attr}_l{l}"] = masks[f"layers.{l}.{attr}"]
    return TorchMasks(rnn_masks, masks.get("head.weight"), outcome.report)


def lattice_analysis(
    module,
    *,
    head=None,
    adjacency: str = "binary",
    quantile: float = 0.5,
    scope: str = "layer",
    theta: float = 0.5,
    centrality: str = "strength",
    seed: int = 0,
    poset_graph: str = "unrolled",
) -> dependency.Analysis:
    """The dependency analysis (poset, meet-irreducible units, centrality) of an edgeprune model or
    of a user's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (+ ``head``), without pruning anything. The head
    is part of the graph, not prunable; ``analysis.graph.node_names()`` names the units."""
    from ..models import SequenceClassifier, from_torch
    from .api import describe_weights

    model = module if isinstance(module, SequenceClassifier) else from_torch(module, head, check=False)
    weights = describe_weights(model)
    graph = dependency.build(dependency.connections_from(weights, prunable=[n for n in weights if n != "head.weight"]))
    return dependency.analyze(
        graph,
        adjacency_kind=adjacency,
        quantile=quantile,
        scope=scope,
        theta=theta,
        centrality_measure=centrality,
        seed=seed,
        graph_kind=poset_graph,
    )


# -- inspect ------------------------------------------------------------------------------------------


@register_analysis("lattice")
def inspect_lattice(model, doc: dict) -> list[Section]:
    """Per layer: units, meet-irreducible units (binary median and continuous adjacency) and
    strength centrality of its current-state units; the poset's size figures."""
    from .api import describe_weights

    weights = describe_weights(model)
    # As the method sees it: the head is thresholded only if it was pruned (--prune-head).
    head_pruned = model.head is not None and model.head.get_mask("weight") is not None
    graph = dependency.build(
        dependency.connections_from(weights, prunable=[n for n in weights if n != "head.weight" or head_pruned])
    )
    views = {}
    for kind in dependency.ADJACENCIES:
        a = dependency.adjacency(graph, kind)
        order = poset.reachability(graph.edge_matrix(a.present))
        irr = poset.meet_irreducible(order)
        views[kind] = (order, irr)
    central = dependency.centrality(graph, "strength")
    rows, figure_rows = [], []
    for layer in doc["layers"]:
        if layer["kind"] != "recurrent":
            continue
        l = layer["index"]
        entry = {"units": layer["hidden_size"], "meet_irreducible": {}}
        for kind, (_, irr) in views.items():
            entry["meet_irreducible"][kind] = {
                g.split("@")[1]: int(irr[graph.groups[g].start : graph.groups[g].stop].sum())
                for g in (f"h{l}@t", f"h{l}@t-1")
                if g in graph.groups
            }
        now = graph.groups[f"h{l}@t"]
        c = central[now.start : now.stop]
        entry["centrality"] = {
            "measure": "strength",
            "min": float(c.min()),
            "mean": float(c.mean()),
            "max": float(c.max()),
            "top_units": [int(i) for i in np.argsort(-c, kind="stable")[:5]],
        }
        layer["lattice"] = entry
        mi = entry["meet_irreducible"]
        rows.append(
            [
                l,
                entry["units"],
                f"{mi['binary'].get('t', 0)} / {mi['binary'].get('t-1', 0)}",
                f"{mi['continuous'].get('t', 0)} / {mi['continuous'].get('t-1', 0)}",
                f"{c.mean():.3f}",
                f"{c.max():.3f}",
            ]
        )
    summary = {"adjacency": {}}
    for kind, (order, irr) in views.items():
        f = poset.figures(order, irr)
        summary["adjacency"][kind] = f
        figure_rows.append(
            [
                kind,
                f["elements"],
                f["edges"],
                f["covers"],
                f["relations"],
                f"{f['comparability']:.3f}",
                f["height"],
                f["meet_irreducible"],
                f["join_irreducible"],
            ]
        )
    summary["binary_quantile"] = 0.5
    doc["lattice"] = summary
    return [
        Section(
            "Lattice: meet-irreducible units (now / previous step) and strength centrality",
            ["layer", "units", "binary (median)", "continuous", "centrality mean", "centrality max"],
            rows,
        ),
        Section(
            "Lattice: dependency poset of one unrolled step",
            [
                "adjacency",
                "elements",
                "edges",
                "covers",
                "relations",
                "comparability",
                "height",
                "meet-irr.",
                "join-irr.",
            ],
            figure_rows,
        ),
    ]
