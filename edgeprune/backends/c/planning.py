"""Planning the C model: the memory layout of the state and a storage format per weight tile.

Nothing here writes C (``codegen`` does, from the ``ModelPlan`` built here). The decisions
(docs/c-backend.md has the reasoning and the measurements):

* All vectors a step reads live in one arena ``[x | h_0 | h_1 | ...]``. Layer l's input vector
  ``z = [input ; own state ; next layer's state]`` is then the contiguous window starting at its
  input, so no step copies or concatenates anything but ``x``. Layers run in order and each
  writes its new state only after its mat-vec, so layer l still sees layer l+1's state from the
  previous step (top-down feedback) and layer l+1 sees layer l's new state.
* Each matrix is cut into tiles: gate row blocks x column segments of z (input / state /
  feedback), each trimmed to the rows and columns it uses (a GRU's candidate blocks never store
  the columns they cannot read), and sparse tiles into chunks of at most 256 columns so that
  every index is one byte. Each tile gets its own storage format (``formats``): forced by
  ``--kernel``, or the cheapest by the measured cost model (``costs``, ``auto``), or the smallest.
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
from ...passes.quantize import QuantizedMatrix, quantize
from . import costs, formats

KERNELS = ("auto", "dense", "csr", "ell", "bsr", "smallest")
DTYPES = ("f32", "int8")
ACTIVATIONS = ("fast", "libm")
ARENA_PAD = 3  # 1x4 blocks read up to 3 entries past a segment: keep them inside the arena
# Which storage formats each --kernel value may use for a tile (auto/smallest: all that apply).
FAMILIES = {"dense": ("dense",), "csr": ("csr",), "ell": ("ell", "sell"), "bsr": ("bsr8x1", "bsr4x1", "bsr1x4"),
            "auto": formats.FORMATS, "smallest": formats.FORMATS}
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


@dataclass
class Tile:
    row: int  # first row in the matrix
    col: int  # first column in z
    rows: int
    cols: int
    segment: int  # index of the column segment (its own int8 activation scale)
    nnz: int
    encoded: formats.Encoded
    cost: float

    @property
    def format(self) -> str:
        return self.encoded.format

    def describe(self) -> dict:
        return {"row": self.row, "col": self.col, "rows": self.rows, "cols": self.cols, "format": self.format,
                "nnz": self.nnz, "stored": self.encoded.stored, "bytes": self.encoded.bytes}


@dataclass
class MatrixPlan:
    name: str  # C identifier stem
    label: str  # IR name, e.g. layers.0.weight
    shape: tuple[int, int]
    nnz: int
    dtype: str
    tiles: list[Tile]
    segments: list[tuple[int, int]]  # column ranges of z with their own activation scale (int8)
    candidates: dict[str, dict]  # whole matrix in one format family: {"bytes", "cost"}
    unit: str

    @property
    def format(self) -> str:
        """The formats used, e.g. 'sell', 'dense+ell', or 'empty' (no stored weight)."""
        used = list(dict.fromkeys(t.format for t in self.tiles))
        return "+".join(used) if used else "empty"

    @property
    def table_bytes(self) -> int:
        """Values, indices and format metadata of every tile."""
        return sum(t.encoded.bytes for t in self.tiles)

    @property
    def weight_bytes(self) -> int:
        """Tables plus the int8 row scales."""
        return self.table_bytes + (4 * self.shape[0] if self.dtype == "int8" and self.tiles else 0)

    @property
    def cost(self) -> float:
        return sum(t.cost for t in self.tiles)

    def describe(self) -> dict:
        return {"shape": list(self.shape), "nnz": self.nnz, "format": self.format, "dtype": self.dtype,
                "weight_bytes": self.weight_bytes,
                "bytes_per_nonzero": round(self.weight_bytes / self.nnz, 3) if self.nnz else None,
                "estimated_cost": round(self.cost, 1), "cost_unit": self.unit,
                "candidates": self.candidates, "tiles": [t.describe() for t in self.tiles]}


def _exact(tiles: list[Tile]) -> bool:
    """The tiles store exactly the mask's weights: no zero fill, no padding."""
    return all(t.encoded.stored == t.nnz for t in tiles)


def _trimmed(pattern: np.ndarray, align: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the used part, aligned to the block grid of ``align``."""
    rows, cols = np.flatnonzero(pattern.any(axis=1)), np.flatnonzero(pattern.any(axis=0))
    if not rows.size:
        return None
    br, bc = align
    r0, c0 = rows[0] // br * br, cols[0] // bc * bc
    r1 = min(pattern.shape[0], -(-(rows[-1] + 1) // br) * br)
    c1 = -(-(cols[-1] + 1) // bc) * bc  # may pass the segment's end by < bc (1x4: zeros)
    return int(r0), int(r1), int(c0), int(c1)


def _options(fmt: str, values: np.ndarray, pattern: np.ndarray) -> list[tuple[int, formats.Encoded]] | None:
    """The tile in format ``fmt`` as (first column, encoding) per column chunk, or None if it does not apply."""
    rows, cols = pattern.shape
    if fmt == "dense":
        return [(0, formats.encode("dense", values, pattern))]
    if fmt == "ell16":
        if cols <= formats.MAX_COLS or cols > 0x10000 or not formats.row_regular(pattern):
            return None
        return [(0, formats.encode("ell16", values, pattern))]
    width = formats.MAX_COLS_1X4 if fmt == "bsr1x4" else formats.MAX_COLS
    out = []
    for c0 in range(0, cols, width):
        p = pattern[:, c0 : c0 + width]
        if not p.any():
            continue
        if fmt == "ell" and not formats.row_regular(p):
            return None
        if fmt == "sell" and (formats.row_regular(p) or rows > 0x10000):
            return None  # a regular chunk is ELL (no permutation); SELL needs 16-bit row numbers
        out.append((c0, formats.encode(fmt, values[:, c0 : c0 + width], p)))
    return out


@dataclass
class _Region:
    row: int
    col: int
    segment: int
    values: np.ndarray  # float32 or int8, [rows, cols] of the segment x row block
    pattern: np.ndarray


def plan_matrix(name: str, label: str, values: np.ndarray, pattern: np.ndarray, row_blocks, segments, *,
                kernel: str = "auto", dtype: str = "f32", profile: str = "generic",
                dense_cold: bool = False) -> MatrixPlan:
    """Tiles for one matrix ([rows, cols] values and stored pattern), each in its chosen format."""
    unit = costs.UNITS[profile]
    regions = []
    for r0, r1 in row_blocks:
        for k, (c0, c1) in enumerate(segments):
            p = pattern[r0:r1, c0:c1]
            if p.any():
                regions.append(_Region(r0, c0, k, values[r0:r1, c0:c1], p))
    stream = costs.STREAM_NS_PER_BYTE[profile] if dense_cold else 0.0

    def options_for(region: _Region, fmt: str):
        align = formats.BLOCK_SHAPES.get(fmt, (1, 1))
        bounds = _trimmed(region.pattern, align)
        r0, r1, c0, c1 = bounds
        seg_cols = region.pattern.shape[1]
        p = np.zeros((r1 - r0, c1 - c0), bool)
        v = np.zeros((r1 - r0, c1 - c0), region.values.dtype)
        inside = min(c1, seg_cols) - c0
        p[:, :inside] = region.pattern[r0:r1, c0 : c0 + inside]
        v[:, :inside] = region.values[r0:r1, c0 : c0 + inside]
        encs = _options(fmt, v, p)
        if encs is None:
            return None
        tiles = []
        for start, enc in encs:
            width = p.shape[1] - start if fmt in ("dense", "ell16") else (
                formats.MAX_COLS_1X4 if fmt == "bsr1x4" else formats.MAX_COLS)
            sub = p[:, start : start + width]
            cost = costs.tile_cost(profile, dtype, enc.format, enc.stored, sub.shape[0])
            if enc.format == "dense":
                cost += stream * enc.bytes
            tiles.append(Tile(region.row + r0, region.col + c0 + start, sub.shape[0], sub.shape[1], region.segment,
                              int(sub.sum()), enc, cost))
        return tiles

    chosen: list[Tile] = []
    family_totals: dict[str, dict] = {}
    per_region: list[dict[str, list[Tile]]] = []
    for region in regions:
        opts = {}
        for fmt in formats.FORMATS:
            tiles = options_for(region, fmt)
            if tiles is not None:
                opts[fmt] = tiles
        per_region.append(opts)

    def pick(opts: dict[str, list[Tile]], allowed, key) -> list[Tile]:
        usable = {f: t for f, t in opts.items() if f in allowed}
        if not usable:  # e.g. --kernel ell on a tile too tall for SELL: CSR always applies
            usable = {"csr": opts["csr"]}
        best = min(usable.values(), key=key)
        if key is not total_cost:
            return best
        # A sparse format that multiplies stored zeros (8x1 blocks over a 4x1 mask, SELL padding)
        # only when it clearly beats the best one that stores exactly the mask: the estimates of
        # the two are within the fit's error there, and the zeros cost flash for sure.
        exact = [t for f, t in usable.items() if f != "dense" and _exact(t)]
        if exact and not _exact(best) and best is not usable.get("dense"):
            fitted = min(exact, key=total_cost)
            if total_cost(best) > costs.SPARSE_MARGIN * total_cost(fitted):
                return fitted
        return best

    def total_cost(tiles):
        return sum(t.cost for t in tiles)

    def total_bytes(tiles):
        return sum(t.encoded.bytes for t in tiles)

    for family in ("dense", "csr", "ell", "bsr"):
        tiles = [t for opts in per_region for t in pick(opts, FAMILIES[family], total_cost)]
        family_totals[family] = {"bytes": total_bytes(tiles), "cost": round(total_cost(tiles), 1)}
    for opts in per_region:
        if kernel == "smallest":
            chosen += pick(opts, FAMILIES["smallest"], total_bytes)
        elif kernel == "auto":
            best = pick(opts, formats.FORMATS, total_cost)
            dense = opts["dense"]
            # sparse only where it clearly pays: the estimates are close near the crossover
            chosen += best if total_cost(best) <= costs.SPARSE_MARGIN * total_cost(dense) else dense
        else:
            chosen += pick(opts, FAMILIES[kernel], total_cost)
    return MatrixPlan(name, label, tuple(pattern.shape), int(pattern.sum()), dtype, chosen, list(segments),
                      family_totals, unit)


@dataclass
class LayerPlan:
    index: int
    layer: ir.Layer
    matrix: MatrixPlan
    input_offset: int  # arena offset of z (the layer's input)
    state_offset: int  # arena offset of h
    cell_offset: int | None  # offset in the LSTM cell array
    scales: np.ndarray | None  # int8 row scales


@dataclass
class ModelPlan:
    prefix: str
    model: ir.Model
    dtype: str
    kernel: str
    activations: str
    profile: str
    layers: list[LayerPlan]
    head: MatrixPlan
    head_scales: np.ndarray | None
    head_input_offset: int
    arena: int
    cell: int
    pre: int
    zq: int  # int8 scratch for the quantized z (0 for f32)
    notes: list[str] = field(default_factory=list)

    @property
    def state_bytes(self) -> int:
        """sizeof(<prefix>_state_t): floats, then int8 scratch rounded up to the struct's alignment."""
        return 4 * (self.arena + ARENA_PAD + self.cell + self.pre) + (-(-self.zq // 4) * 4)

    def matrices(self) -> list[MatrixPlan]:
        return [lp.matrix for lp in self.layers] + [self.head]

    def weight_bytes(self) -> dict[str, int]:
        biases = 4 * (sum(lp.layer.rows for lp in self.layers) + self.model.num_classes)
        weights = sum(m.weight_bytes for m in self.matrices())
        return {"weights": weights, "biases": biases, "total": weights + biases}

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
            "matrices": {m.label: m.describe() for m in self.matrices()},
            "weight_bytes": self.weight_bytes(),
            "bytes_per_nonzero": self.bytes_per_nonzero(),
            "state_bytes": self.state_bytes,
            "state": {"arena_floats": self.arena + ARENA_PAD, "cell_floats": self.cell, "pre_floats": self.pre,
                      "zq_bytes": self.zq},
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
            out.append(f"{m.label} {shape}, {m.nnz:,} nnz ({1 - m.nnz / (m.shape[0] * m.shape[1]):.0%} sparse): "
                       f"{m.format} {self.dtype}, {len(m.tiles)} tile(s), {m.weight_bytes:,} B "
                       f"({m.weight_bytes / m.nnz:.2f} B/nnz), {est}")
        return out


def plan(model: ir.Model, prefix: str = "model", kernel: str = "auto", activations: str = "fast",
         dtype: str = "f32", profile: str = "generic", cache_bytes: int = costs.DEFAULT_CACHE_BYTES) -> ModelPlan:
    if kernel not in KERNELS:
        raise BackendError(f"--kernel '{kernel}' is not one of {', '.join(KERNELS)}")
    if dtype not in DTYPES:
        raise BackendError(f"--dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    if activations not in ACTIVATIONS:
        raise BackendError(f"--c-activations '{activations}' is not one of {', '.join(ACTIVATIONS)}")
    model.validate()
    check_prefix(prefix)
    qmodel = quantize(model) if dtype == "int8" else None
    # Dense weights that cannot stay in the cache are re-read from further away every step.
    dense_bytes = sum(m.shape[0] * m.shape[1] for m in model.matrices().values()) * (1 if qmodel else 4)
    cold = dense_bytes > cache_bytes
    layers, state_offsets, offset, cell = [], [], model.input_size, 0
    for layer in model.layers:  # arena: [x | h_0 | h_1 | ...]
        state_offsets.append(offset)
        offset += layer.hidden_size
    arena = offset
    for l, layer in enumerate(model.layers):
        H = layer.hidden_size
        segments = [(s.start, s.stop) for s in layer.column_slices().values() if s.stop > s.start]
        values, pattern, scales = _values(layer.weight, qmodel.layers[l] if qmodel else None)
        matrix = plan_matrix(f"l{l}", f"layers.{l}.weight", values, pattern,
                             [(g * H, (g + 1) * H) for g in range(ir.IR_GATES[layer.cell])], segments,
                             kernel=kernel, dtype=dtype, profile=profile, dense_cold=cold)
        input_offset = state_offsets[l - 1] if l else 0
        layers.append(LayerPlan(l, layer, matrix, input_offset, state_offsets[l],
                                cell if layer.cell == "lstm" else None, scales))
        cell += H if layer.cell == "lstm" else 0
    hw = model.head.weight
    values, pattern, head_scales = _values(hw, qmodel.head if qmodel else None)
    head = plan_matrix("head", "head.weight", values, pattern, [(0, hw.shape[0])], [(0, hw.shape[1])],
                       kernel=kernel, dtype=dtype, profile=profile, dense_cold=cold)
    pre = max(layer.rows for layer in model.layers)
    zq = (max(max(layer.cols for layer in model.layers), hw.shape[1]) + ARENA_PAD) if qmodel else 0
    return ModelPlan(prefix, model, dtype, kernel, activations, profile, layers, head, head_scales, state_offsets[-1],
                     arena, cell, pre, zq)


def _values(m: ir.CSR, q: QuantizedMatrix | None):
    pattern = np.zeros(m.shape, bool)
    pattern[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices] = True
    if q is None:
        return m.to_dense().astype(np.float32), pattern, None
    return q.dense_values(), pattern, q.scales
