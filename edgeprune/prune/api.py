"""Pruning a model: describe its weights, run a method, apply the masks, fine-tune.

This is the "how to edit a layer" side; methods only score (see ``registry``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import Dataset
from ..errors import PruneError
from ..models import CELL_GATES, CausalConv1d, RecurrentLayer, SequenceClassifier, SequenceModel
from ..options import resolve
from ..train import evaluate, train
from .registry import ACCEPT_REACHED, MaskResult, PruneContext, WeightInfo, check_sparsity, get_method, keep_count


def describe_weights(model: SequenceModel) -> dict[str, WeightInfo]:
    """Every maskable matrix of ``model`` as a torch-free ``WeightInfo`` (effective values), in chain order.

    Node groups: ``x`` the model input, ``h{i}@t`` stage i's output now (``@t-1`` at the previous step),
    ``y`` the head's output. Stages without a matrix (layernorm, normalize, pool) pass their input's
    group on.
    """
    out: dict[str, WeightInfo] = {}
    src = "x"
    for i, (name, stage) in enumerate(model.named_stages()):
        dst = "y" if name == "head" else f"h{i}@t"
        if isinstance(stage, RecurrentLayer):
            sources = {
                "weight_ih": ("input", src),
                "weight_hh": ("recurrent", f"h{i}@t-1"),
                "weight_fb": ("feedback", f"h{i + 1}@t-1"),
            }
            gates = CELL_GATES[stage.cell]
            for attr in stage.weight_names():
                kind, origin = sources[attr]
                values = stage.effective(attr).detach().cpu().numpy().astype(np.float32)
                out[f"{name}.{attr}"] = WeightInfo(f"{name}.{attr}", kind, i, stage.cell, gates, values, origin, dst)
        elif hasattr(stage, "effective"):  # dense or conv: one matrix
            kind = "head" if name == "head" else ("conv" if isinstance(stage, CausalConv1d) else "dense")
            values = stage.effective("weight").detach().cpu().numpy().astype(np.float32)
            layer = None if name == "head" else i
            out[f"{name}.weight"] = WeightInfo(f"{name}.weight", kind, layer, None, 1, values, src, dst)
        else:
            continue  # passes its input group on
        src = dst
    return out


def sparsity_of(masks_or_weights: dict[str, np.ndarray]) -> float:
    total = sum(int(np.asarray(v).size) for v in masks_or_weights.values())
    nnz = sum(int(np.count_nonzero(v)) for v in masks_or_weights.values())
    return 1.0 - nnz / total if total else 0.0


@dataclass
class PruneOutcome:
    model: SequenceClassifier
    report: dict = field(default_factory=dict)


def prune_model(
    model: SequenceClassifier,
    method: str,
    sparsity: float | None,
    *,
    seed: int = 0,
    options: dict | None = None,
    include_head: bool = False,
    dataset: Dataset | None = None,
    finetune_epochs: int = 0,
    finetune_lr: float = 1e-3,
    batch_size: int = 32,
    progress: bool = False,
) -> PruneOutcome:
    """Return a pruned copy of ``model`` and a report (requested/achieved sparsity, accuracies)."""
    m = get_method(method)
    if sparsity is None:  # allowed when sparsity is an outcome; the method then gets None
        if m.fixed_sparsity:
            raise PruneError(f"method '{method}' needs --sparsity")
    else:
        sparsity = check_sparsity(sparsity)
    if finetune_epochs < 0:
        raise PruneError(f"fine-tune epochs must be >= 0, got {finetune_epochs}")
    if finetune_epochs and dataset is None:
        raise PruneError("fine-tuning needs a dataset")
    if dataset is not None:
        dataset.require(model.config.task, "step" if model.config.output == "every" else "sequence")
    resolved = resolve(m.options, options or {}, f"method '{method}'")
    accept = resolved.pop(ACCEPT_REACHED.name)  # prune_model's choice, not the method's
    pruned = copy.deepcopy(model)
    pruned.clear_masks()
    described = describe_weights(pruned)
    prunable = [n for n in described if include_head or n != "head.weight"]

    rewind_points: dict[int, dict] = {}

    def rewind_state(epochs: int) -> dict:
        """Initial weights re-drawn from ``seed`` — the model's own initial weights when edgeprune
        trained it with that seed (``train.seed_everything`` then the constructor) — after
        ``epochs`` of dense training from them (0: the initial weights themselves)."""
        if epochs not in rewind_points:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                start = SequenceClassifier(pruned.config)
            if epochs:
                train(
                    start,
                    dataset,
                    epochs=epochs,
                    lr=finetune_lr,
                    batch_size=batch_size,
                    seed=seed,
                    progress=progress,
                    description="rewind point",
                )
            rewind_points[epochs] = copy.deepcopy(start.state_dict())
        return rewind_points[epochs]

    def finetune(masks: dict[str, np.ndarray], epochs: int, rewind: int | None = None) -> dict[str, np.ndarray]:
        if dataset is None:
            raise PruneError(f"method '{method}' fine-tunes while pruning and needs a dataset")
        if rewind is not None:  # lottery-ticket style: every weight back to the rewind point, then train
            pruned.load_state_dict(rewind_state(rewind))
        pruned.set_masks({k: torch.from_numpy(np.asarray(v, dtype=bool)) for k, v in masks.items()})
        if epochs:
            train(
                pruned,
                dataset,
                epochs=epochs,
                lr=finetune_lr,
                batch_size=batch_size,
                seed=seed,
                progress=progress,
                description=f"fine-tune ({method})",
            )
        now = describe_weights(pruned)
        return {k: now[k].values for k in prunable}

    ctx = PruneContext(
        weights={n: described[n] for n in prunable},
        frozen={n: w for n, w in described.items() if n not in prunable},
        config=pruned.config.to_dict(),
        options=resolved,
        rng=np.random.default_rng(seed),
        finetune=finetune if dataset is not None else None,
    )
    result = m.fn(ctx, sparsity)
    _check_result(result, ctx, method)
    per_matrix = check_reached(result, ctx, sparsity, method, accept=accept)
    if result.reinitialize:  # the mask was drawn for training from scratch: fresh weights under it
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            pruned.load_state_dict(SequenceClassifier(pruned.config).state_dict())
    pruned.set_masks({k: torch.from_numpy(np.asarray(v, dtype=bool)) for k, v in result.masks.items()})

    report = {
        "method": method,
        "options": resolved,
        "seed": seed,
        "include_head": include_head,
        "sparsity_requested": sparsity,
        "sparsity": sparsity_of({k: v for k, v in result.masks.items() if k != "head.weight"}),
        "sparsity_per_matrix": per_matrix,
        "accept_reached": accept,
        **({"sparsity_limits": result.limits} if result.limits else {}),
        "method_report": result.report,
        "finetune_epochs": result.finetuned_epochs + finetune_epochs,
        "reinitialized": result.reinitialize,
    }
    if dataset is not None:
        _record_test(report, "before", evaluate(model, dataset.X_test, dataset.y_test, dataset.test_lengths))
        _record_test(report, "pruned", evaluate(pruned, dataset.X_test, dataset.y_test, dataset.test_lengths))
    if finetune_epochs:
        ft = train(
            pruned,
            dataset,
            epochs=finetune_epochs,
            lr=finetune_lr,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            description="fine-tune",
        )
        _record_test(report, "finetuned", ft.test_metrics)
    pruned.eval()
    return PruneOutcome(pruned, report)


def _record_test(report: dict, when: str, scores: dict) -> None:
    """``test_{when}``: the metrics; ``accuracy_{when}`` too for a classifier (what reports print)."""
    report[f"test_{when}"] = scores
    if "accuracy" in scores:
        report[f"accuracy_{when}"] = scores["accuracy"]


def check_reached(
    result: MaskResult, ctx: PruneContext, sparsity: float | None, method: str, *, accept: bool
) -> dict[str, float]:
    """Refuse masks that miss the requested sparsity; return each matrix's achieved sparsity.

    A matrix misses when its kept count differs from ``round((1 − s) · size)`` by more than one
    granule (one entry, or one tile of a block mask); with ``scope == "global"`` the total count is
    checked instead. ``accept`` (``--accept-reached``) keeps a miss, recorded in the report. A
    matrix left with no weight is refused always: its layer would compute a constant.
    """
    achieved = {name: float(1.0 - np.count_nonzero(m) / m.size) for name, m in result.masks.items()}
    for name, mask in result.masks.items():
        if not np.any(mask):
            if result.limits.get(name):
                why = result.limits[name]
            elif sparsity is None or result.scope == "global":
                why = f"the method keeps none of its {mask.size} entries"
            else:
                why = f"{round((1 - sparsity) * mask.size)} of its {mask.size} entries"
            raise PruneError(
                f"{method}{'' if sparsity is None else f' at sparsity {sparsity:g}'} leaves no weight in "
                f"{name} ({why}); a matrix needs at least one (lower the sparsity)"
            )
    if sparsity is None:
        return achieved
    granule = result.block[0] * result.block[1]
    if result.scope == "global":
        size = sum(m.size for m in result.masks.values())
        kept = sum(int(np.count_nonzero(m)) for m in result.masks.values())
        misses = {"all matrices": (kept, size)} if abs(kept - keep_count(size, sparsity)) > granule else {}
    else:
        misses = {
            name: (int(np.count_nonzero(m)), m.size)
            for name, m in result.masks.items()
            if abs(int(np.count_nonzero(m)) - keep_count(m.size, sparsity)) > granule
        }
    if misses and not accept:
        name, (kept, size) = next(iter(misses.items()))
        why = result.limits.get(name, "")
        more = f" (and {len(misses) - 1} more matrices)" if len(misses) > 1 else ""
        raise PruneError(
            f"{method} cannot reach sparsity {sparsity:g} on {name}: it reaches {1 - kept / size:.4f} "
            f"({kept} of {size} kept{'; ' + why if why else ''}){more}; pass --accept-reached to keep it"
        )
    return achieved


def _check_result(result: MaskResult, ctx: PruneContext, method: str) -> None:
    missing = set(ctx.weights) - set(result.masks)
    extra = set(result.masks) - set(ctx.weights)
    if missing or extra:  # a method bug, not user input
        raise RuntimeError(
            f"method '{method}' returned masks for {sorted(result.masks)}, expected {sorted(ctx.weights)}"
        )
    for name, mask in result.masks.items():
        mask = np.asarray(mask)
        if mask.shape != ctx.weights[name].shape or mask.dtype != bool:
            raise RuntimeError(f"method '{method}' returned a {mask.dtype} {mask.shape} mask for {name}")
