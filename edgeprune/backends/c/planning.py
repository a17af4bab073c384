"""Planning the C model: the memory layout of the state and a storage format per weight tile.

Nothing here writes C (``codegen`` does, from the ``ModelPlan`` built here). The decisions
(docs/c-backend.md has the reasoning and the measurements):

* All vectors a step reads live in one arena: ``x``, then each stage's output (and its state) in
  chain order, every stage writing after the last vector allocated before it. A recurrent
  stage's ``z = [input ; own state ; next stage's state]`` is then the contiguous window starting
  at its input, so no step copies or concatenates anything but ``x`` (and a conv1d's input into
  its window). Stages run in order and each writes its new state only after its mat-vec, so
  layer l still sees layer l+1's state from the previous step (top-down feedback) and layer l+1
  sees layer l's new state. A conv1d keeps a shifted window of its last (k-1)*d inputs (a
  dilated one gathers its k taps into a scratch vector); a pool keeps its accumulator.
* The stages after the last one with state (the "tail": the head, a final layernorm, ...) run
  only when the caller asks for this step's output, and the final one writes straight into it.
* Each matrix is cut into tiles, each in its own storage format, in ``tiling`` (``plan_matrix``,
  and ``choose_within`` for ``--kernel auto``'s byte budget over the whole model).
* int8 (``--dtype int8``): weights quantized per row by ``passes.quantize``; each step quantizes
  every column segment of z with its own scale into a scratch buffer of the state, the kernels
  sum in int32 and scale back into float pre-activations. Cells stay float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ... import ir
from ...errors import BackendError
from ...passes.quantize import QuantizedMatrix, activation_bounds, quantize, segments
from . import costs, formats
from .tiling import (  # noqa: F401
    BUDGET_FACTOR,
    FAMILIES,
    KERNELS,
    MatrixPlan,
    Tile,
    choose_within,
    first_writers,
    mark_first_writers,
    plan_matrix,
)

DTYPES = ("f32", "int8")
ACTIVATIONS = ("fast", "libm")
ARENA_PAD = 3  # 1x4 blocks read up to 3 entries past a segment: keep them inside the arena
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary main".split()
)


def check_prefix(prefix: str) -> str:
    """The symbol prefix must be a C identifier that cannot clash with the runtime or C itself."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", prefix or ""):
        raise BackendError(f"--c-prefix '{prefix}' is not a C identifier of 1-31 characters starting with a letter")
    if prefix in _C_KEYWORDS or prefix.lower().startswith("ep_") or prefix.lower() == "ep":
        raise BackendError(f"--c-prefix '{prefix}' clashes with a C keyword or the runtime's ep_ names")
    return prefix


# What carries state between steps: the tail of a model (see the module docstring) starts after the
# last of these.
def _stateful(stage) -> bool:
    return bool(stage.state_sizes())


@dataclass
class StagePlan:
    index: int
    name: str  # IR name: layers.{i} or head
    stage: ir.Stage
    input_offset: int  # arena offset of the stage's input vector
    output_offset: int | None  # arena offset of its output; None: written straight to the caller's buffer
    tail: bool  # runs only when the step's output is asked for
    matrix: MatrixPlan | None = None
    scales: np.ndarray | None = None  # int8 row scales
    z_offset: int = 0  # arena offset of the matrix's input vector z
    state_offset: int | None = None  # recurrent: h; conv1d: the window; pool: the accumulator
    cell_offset: int | None = None  # LSTM: offset in the cell array
    gather_offset: int | None = None  # dilated conv1d: the k taps gathered for the mat-vec

    @property
    def layer(self) -> ir.Stage:  # the v1 name
        return self.stage

    @property
    def stem(self) -> str:
        """C identifier stem of the stage's tables."""
        return "head" if self.name == "head" else f"l{self.index}"


@dataclass
class ModelPlan:
    prefix: str
    model: ir.Model
    dtype: str
    kernel: str
    activations: str
    profile: str
    stages: list[StagePlan]
    arena: int
    cell: int
    pre: int
    zq: int  # int8 scratch for the quantized z (0 for f32)
    layout: list[tuple[str, int]] = field(default_factory=list)  # arena regions in order: (label, floats)
    notes: list[str] = field(default_factory=list)
    budget: int | None = None  # bytes the weights (tables, scales, biases) were held to

    @property
    def layers(self) -> list[StagePlan]:
        """The recurrent stages (the v1 view)."""
        return [sp for sp in self.stages if isinstance(sp.stage, ir.Recurrent)]

    @property
    def pool(self) -> bool:
        """A pool stage needs the step count since reset."""
        return any(isinstance(sp.stage, ir.Pool) for sp in self.stages)

    @property
    def every(self) -> bool:
        return self.model.output == "every"

    @property
    def state_bytes(self) -> int:
        """sizeof(<prefix>_state_t): floats, the step count, then int8 scratch rounded up to the struct's alignment."""
        return 4 * (self.arena + ARENA_PAD + self.cell + self.pre + int(self.pool)) + (-(-self.zq // 4) * 4)

    def matrices(self) -> list[MatrixPlan]:
        return [sp.matrix for sp in self.stages if sp.matrix is not None]

    def weight_bytes(self) -> dict[str, int]:
        biases = 4 * sum(
            sp.matrix.shape[0] for sp in self.stages if sp.matrix is not None and sp.stage.bias is not None
        )
        vectors = 4 * sum(
            v.size for sp in self.stages for v in sp.stage.arrays().values() if sp.matrix is None
        )  # layernorm / normalize tables
        weights = sum(m.weight_bytes for m in self.matrices())
        return {"weights": weights, "biases": biases + vectors, "total": weights + biases + vectors}

    def bytes_per_nonzero(self) -> float | None:
        nnz = sum(m.nnz for m in self.matrices())
        return round(self.weight_bytes()["weights"] / nnz, 3) if nnz else None

    def describe(self) -> dict:
        return {
            "prefix": self.prefix,
            "dtype": self.dtype,
            "kernel": self.kernel,
            "activations": self.activations,
            "cost_profile": self.profile,
            "output": self.model.output,
            "output_size": self.model.output_size,
            "matrices": {m.label: m.describe() for m in self.matrices()},
            "weight_bytes": self.weight_bytes(),
            "bytes_per_nonzero": self.bytes_per_nonzero(),
            "flash_budget": self.budget,
            "state_bytes": self.state_bytes,
            "state": {
                "arena_floats": self.arena + ARENA_PAD,
                "cell_floats": self.cell,
                "pre_floats": self.pre,
                "zq_bytes": self.zq,
                "step_count": self.pool,
            },
        }

    def summary(self) -> list[str]:
        """One line per matrix: the chosen format and what it costs, as `compile` prints it."""
        out = []
        for m in self.matrices():
            shape = f"{m.shape[0]}x{m.shape[1]}"
            if not m.tiles:
                out.append(f"{m.label} {shape}: no stored weight")
                continue
            dense = m.candidates["dense"]["cost"]
            est = f"est. {m.cost:,.0f} {m.unit}" + (f" (dense {dense:,.0f})" if m.format != "dense" else "")
            out.append(
                f"{m.label} {shape}, {m.nnz:,} nnz ({1 - m.nnz / (m.shape[0] * m.shape[1]):.0%} sparse): "
                f"{m.format} {self.dtype}, {len(m.tiles)} tile(s), {m.weight_bytes:,} B "
                f"({m.weight_bytes / m.nnz:.2f} B/nnz), {est}"
            )
        return out


class _Arena:
    """Hands out arena regions in order (the order is what makes a recurrent stage's z contiguous)."""

    def __init__(self, input_size: int):
        self.size, self.layout = input_size, [("x", input_size)]

    def take(self, label: str, floats: int) -> int:
        offset = self.size
        self.size += floats
        self.layout.append((label, floats))
        return offset


def plan(
    model: ir.Model,
    prefix: str = "model",
    kernel: str = "auto",
    activations: str = "fast",
    dtype: str = "f32",
    profile: str = "generic",
    cache_bytes: int = costs.DEFAULT_CACHE_BYTES,
    flash_budget: int | None = None,
) -> ModelPlan:
    """The model's plan. ``kernel="auto"``: the fastest layout (by the cost model, cache spills
    included) whose weight bytes stay within ``flash_budget`` (default: BUDGET_FACTOR x those of the
    smallest layout); ``fastest``: the fastest per tile whatever its bytes; other kernels force a
    family (``flash_budget`` is then only checked)."""
    if kernel not in KERNELS:
        raise BackendError(f"--kernel '{kernel}' is not one of {', '.join(KERNELS)}")
    if dtype not in DTYPES:
        raise BackendError(f"--dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    if activations not in ACTIVATIONS:
        raise BackendError(f"--c-activations '{activations}' is not one of {', '.join(ACTIVATIONS)}")
    if flash_budget is not None and flash_budget <= 0:
        raise BackendError(f"--flash-budget {flash_budget}: expected a positive number of bytes")
    model.validate()
    check_prefix(prefix)
    qmodel = quantize(model) if dtype == "int8" else None
    # Dense weights that cannot stay in the cache are re-read from further away every step.
    dense_bytes = sum(m.shape[0] * m.shape[1] for m in model.matrices().values()) * (1 if qmodel else 4)
    cold = dense_bytes > cache_bytes
    stateful = [i for i, s in enumerate(model.stages) if _stateful(s)]
    tail_start = stateful[-1] + 1 if stateful else 0
    arena = _Arena(model.input_size)
    plans: list[StagePlan] = []
    current, cell, zq = 0, 0, 0
    last = len(model.stages) - 1
    for i, (name, stage) in enumerate(model.named_stages()):
        sp = StagePlan(i, name, stage, current, None, i >= tail_start, z_offset=current)
        label = name.replace("layers.", "l")
        if isinstance(stage, ir.Recurrent):
            # the input is the last region handed out, so [input ; h ; next stage's h] is contiguous
            sp.state_offset = sp.output_offset = arena.take(f"h{i}", stage.hidden_size)
            if stage.cell == "lstm":
                sp.cell_offset, cell = cell, cell + stage.hidden_size
        elif isinstance(stage, ir.Conv1d) and stage.history:
            C = stage.in_channels
            sp.state_offset = sp.z_offset = arena.take(f"{label} window", (stage.history + 1) * C)
            if stage.dilation > 1:
                sp.gather_offset = sp.z_offset = arena.take(f"{label} taps", stage.kernel * C)
        elif isinstance(stage, ir.Pool):
            sp.state_offset = arena.take(f"{label} {stage.mode}", stage.size)
            if stage.mode == "max":
                sp.output_offset = sp.state_offset
        if sp.output_offset is None and not (i == last and sp.tail):
            if hasattr(stage, "weight"):
                # 1x4 blocks read up to 3 floats past z: zeros, never the output being written
                arena.take("pad", ARENA_PAD)
            sp.output_offset = arena.take(label, stage.output_size)
        if hasattr(stage, "weight"):
            values, pattern, sp.scales = _values(stage.weight, qmodel.stages[i] if qmodel else None)
            bounds = activation_bounds(stage)
            seg = segments(stage.weight.shape[1], bounds)
            rows = (
                [(g * stage.hidden_size, (g + 1) * stage.hidden_size) for g in range(ir.IR_GATES[stage.cell])]
                if isinstance(stage, ir.Recurrent)
                else [(0, stage.weight.shape[0])]
            )
            sp.matrix = plan_matrix(
                sp.stem,
                f"{name}.weight",
                values,
                pattern,
                rows,
                seg,
                kernel=kernel,
                dtype=dtype,
                profile=profile,
                dense_cold=cold and kernel != "auto",  # auto prices spills for the whole layout
                # a GRU's late rows (linear_before_reset=0) read r * h, not z: their own tiles
                apart={ir.cell_spec(stage.cell).ir_rows.index(r) for r in ir.cells.late_rows(stage)}
                if isinstance(stage, ir.Recurrent)
                else (),
            )
            zq = max(zq, stage.weight.shape[1] + ARENA_PAD) if qmodel else 0
        plans.append(sp)
        current = sp.output_offset if sp.output_offset is not None else current
    pre = max((s.rows for s in model.stages if isinstance(s, ir.Recurrent)), default=0)
    result = ModelPlan(
        prefix, model, dtype, kernel, activations, profile, plans, arena.size, cell, pre, zq, arena.layout
    )
    sizes = result.weight_bytes()
    fixed = sizes["total"] - sum(m.table_bytes for m in result.matrices())  # biases, vectors, int8 scales
    if kernel == "auto":
        spill = costs.SPILL_PER_BYTE[profile]
        _, result.budget = choose_within(result.matrices(), flash_budget, fixed, cache_bytes, spill)
    elif flash_budget is not None and sizes["total"] > flash_budget:
        raise BackendError(
            f"--flash-budget {flash_budget:,} B: --kernel {kernel} stores {sizes['total']:,} B of weights "
            "(tables, scales and biases); use --kernel auto to fit the budget"
        )
    held = flash_budget if flash_budget is not None else result.budget
    if kernel in ("auto", "fastest"):  # a forced --kernel keeps its own tile kernels
        _fuse_lstm_blocks(result, held)
    _first_writers(result, held)
    return result


# ep_lstm8x1_f32 walks block rows in row order, where the 8x1 kernels walk runs of equal length with
# a straight-line body per length: at a few blocks a row (98%: ~6) its loop exits mispredict and the
# fused step was 1.25x slower; from ~14 (95%) it was faster (LSTM-256: 1.04x at 95%, 1.05-1.09x at 90%)
FUSE_MIN_BLOCKS_PER_ROW = 12


def _fuse_lstm_blocks(result: ModelPlan, budget: int | None) -> None:
    """An LSTM whose gate matrix is all in 8x1 blocks, with long enough block rows, runs as one
    ``ep_lstm8x1_f32`` call, its cell fused (formats.lstm8x1): eight units at a time, so the cell's
    arithmetic overlaps the next units' block loads and the gate sums stay in registers. Where
    measured: the AVX2 build, the fast cell (the libm one is not fused), f32, hidden a multiple of
    8, within the byte budget."""
    if result.profile != "x86-avx2" or result.dtype != "f32" or result.activations != "fast":
        return
    total = result.weight_bytes()["total"]
    for sp in result.stages:
        stage, m = sp.stage, sp.matrix
        if not (isinstance(stage, ir.Recurrent) and stage.cell == "lstm" and stage.default_cell) or m is None:
            continue
        blocks = m.tiles and all(t.format in ("bsr8x1", "bsr8x1w") for t in m.tiles)
        if not blocks or stage.hidden_size % formats.SLICE:
            continue
        c0, c1 = min(t.col for t in m.tiles), max(t.col + t.cols for t in m.tiles)
        if c1 - c0 >= 0x10000:  # 16-bit columns
            continue
        values, pattern, _ = _values(stage.weight, None)
        enc = formats.lstm8x1(values[:, c0:c1], pattern[:, c0:c1], stage.hidden_size)
        if enc.stored / formats.SLICE < FUSE_MIN_BLOCKS_PER_ROW * (m.shape[0] // formats.SLICE):
            continue
        grown = total - m.table_bytes + enc.bytes
        if budget is not None and grown > budget:
            continue
        cost = sum(t.cost for t in m.tiles)
        m.tiles = [Tile(0, c0, m.shape[0], c1 - c0, 0, m.nnz, enc, cost)]
        total = grown


def _first_writers(result: ModelPlan, budget: int | None) -> None:
    """Where SELL or 8x1-block tiles cover a matrix's rows once, they set those rows (bias + W z)
    instead of a bias copy and then adds (tiling.first_writers), within the byte budget. Not for a
    variant cell's matrix: its mat-vecs run a subset of the tiles at a time (backends/c/cells.py)."""
    total = result.weight_bytes()["total"]
    for sp in result.stages:
        stage = sp.stage
        if sp.matrix is None or (isinstance(stage, ir.Recurrent) and not stage.default_cell):
            continue
        found = first_writers(sp.matrix)
        if found is not None and (budget is None or total + found[1] <= budget):
            mark_first_writers(sp.matrix, found[0])
            total += found[1]


def _values(m: ir.CSR, q: QuantizedMatrix | None):
    pattern = np.zeros(m.shape, bool)
    pattern[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices] = True
    if q is None:
        return m.to_dense().astype(np.float32), pattern, None
    return q.dense_values(), pattern, q.scales
