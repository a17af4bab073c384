"""IR -> C source: const weight tables, one state struct, and reset/step/run calling the runtime.

Layout decisions (docs/c-backend.md has the reasoning and the measurements):

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

from ... import __version__, ir
from ...errors import BackendError
from ...passes.quantize import QuantizedMatrix, quantize
from ...runtime import source_dir
from . import costs, formats

KERNELS = ("auto", "dense", "csr", "ell", "bsr", "smallest")
DTYPES = ("f32", "int8")
ACTIVATIONS = ("fast", "libm")
RUNTIME_FILES = ("edgeprune_rt.h", "edgeprune_rt.c")
HARNESS_TEMPLATE = "edgeprune_run.c.in"
HARNESS = "edgeprune_run.c"
EXAMPLE = "main.c"
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


# --- emission -----------------------------------------------------------------------------------

def _floats(values: np.ndarray) -> list[str]:
    # str() of a float32 is its shortest round-trip form, so the C literal is the exact value.
    out = []
    for v in np.asarray(values, dtype=np.float32).ravel():
        s = str(v)
        out.append(s + "f" if ("." in s or "e" in s) else s + ".0f")
    return out


def _array(name: str, values: np.ndarray) -> str:
    ctype = formats.CTYPES[values.dtype]
    if values.dtype == np.float32:
        items, per_line = _floats(values), 8
    else:
        items, per_line = [str(int(v)) for v in values], 24
    if not items:  # C has no empty arrays; never read
        items = ["0"]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


def _matrix_tables(m: MatrixPlan, bias: np.ndarray, scales: np.ndarray | None) -> str:
    out = [_array(f"{m.name}_bias", np.asarray(bias, np.float32))]
    if scales is not None and m.tiles:
        out.append(_array(f"{m.name}_scales", np.asarray(scales, np.float32)))
    for k, t in enumerate(m.tiles):
        out.append(f"/* tile {k}: rows {t.row}..{t.row + t.rows - 1}, z columns {t.col}..{t.col + t.cols - 1}, "
                   f"{t.format}, {t.nnz} nonzeros */\n")
        for array, values in t.encoded.arrays.items():
            out.append(_array(f"{m.name}_t{k}_{array}", values))
    return "".join(out)


def _offset(pointer: str, offset: int) -> str:
    return f"{pointer} + {offset}" if offset else pointer


def _matvec_calls(m: MatrixPlan, y: str, z: str, z_offset: int, scale_vars: list[str], indent: str) -> list[str]:
    """bias copy + one kernel call per tile (int8: with the row scales and the segment's z scale)."""
    rows = m.shape[0]
    lines = [f"ep_copy({y}, {m.name}_bias, {rows});"]
    for k, t in enumerate(m.tiles):
        arrays = ", ".join(f"{m.name}_t{k}_{a}" for a in t.encoded.arrays)
        params = "".join(f", {v}" for v in t.encoded.params.values())
        out = _offset(y, t.row)
        if m.dtype == "int8":
            params = f", {t.cols}" if t.format == "dense" else params
            call = (f"ep_{t.format}_i8({out}, {_offset(m.name + '_scales', t.row)}, {scale_vars[t.segment]}, "
                    f"{arrays}, {_offset('s->zq', t.col)}, {t.rows}{params});")
        elif t.format == "dense":
            call = f"ep_dense_f32({out}, {arrays}, {_offset(z, z_offset + t.col)}, {t.rows}, {t.cols});"
        else:
            call = f"ep_{t.format}_f32({out}, {arrays}, {_offset(z, z_offset + t.col)}, {t.rows}{params});"
        lines.append(call)
    return [indent + line for line in lines]


def _quantize_calls(m: MatrixPlan, z: str, z_offset: int, var: str, indent: str) -> tuple[list[str], list[str]]:
    """ep_quantize for every segment a tile reads; returns (lines, scale variable per segment)."""
    used = sorted({t.segment for t in m.tiles})
    names, lines = [], []
    for k, (c0, c1) in enumerate(m.segments):
        names.append(f"{var}{k}")
        if k in used:
            lines.append(f"{indent}const float {var}{k} = ep_quantize({_offset('s->zq', c0)}, "
                         f"{_offset(z, z_offset + c0)}, {c1 - c0});")
    return lines, names


def _percent(nnz: int, shape) -> str:
    size = shape[0] * shape[1]
    return f"{nnz:,} of {size:,} weights kept ({1 - nnz / size:.1%} sparse)" if size else "no weights"


def generate(p: ModelPlan) -> dict[str, str]:
    """The generated files (name -> text) for ``p``, runtime and harness included. Deterministic."""
    prefix, model = p.prefix, p.model
    upper = prefix.upper()
    banner = (f"/* Generated by edgeprune {__version__} (compile --target c --dtype {p.dtype} --kernel {p.kernel}). "
              f"Do not edit.\n * Model: {model.describe()}; {model.nnz(True):,} stored weights. */\n")
    layout = " | ".join(["x " + str(model.input_size)] + [f"h{lp.index} {lp.layer.hidden_size}" for lp in p.layers])
    cell_member = f"    float cell[{p.cell}]; /* LSTM cell states */\n" if p.cell else ""
    zq_member = f"    int8_t zq[{p.zq}]; /* scratch: the quantized input of the matrix being computed */\n" if p.zq else ""
    header = (
        f"{banner}#ifndef {upper}_H\n#define {upper}_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
        f"#define {upper}_INPUT_SIZE {model.input_size}\n"
        f"#define {upper}_NUM_CLASSES {model.num_classes}\n"
        f"#define {upper}_STATE_BYTES {p.state_bytes} /* sizeof({prefix}_state_t) */\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        "/* Everything a stream needs between steps, and the scratch of a step; no other memory is used.\n"
        " * Any number of streams can run the same model, one state each. */\n"
        "typedef struct {\n"
        f"    float arena[{p.arena + ARENA_PAD}]; /* [{layout}] and {ARENA_PAD} zeros */\n"
        f"{cell_member}"
        f"    float pre[{p.pre}]; /* gate pre-activations of the layer being computed */\n"
        f"{zq_member}"
        f"}} {prefix}_state_t;\n\n"
        f"/* Zero the state (start of a sequence). */\n"
        f"void {prefix}_reset({prefix}_state_t *state);\n\n"
        f"/* One time step: x[{upper}_INPUT_SIZE] -> logits[{upper}_NUM_CLASSES] of this step.\n"
        f" * Pass logits = NULL to skip the classifier on steps whose output is not needed. */\n"
        f"void {prefix}_step({prefix}_state_t *state, const float *x, float *logits);\n\n"
        f"/* Reset, then run a whole sequence x[steps][{upper}_INPUT_SIZE]; logits of the last step. */\n"
        f"void {prefix}_run({prefix}_state_t *state, const float *x, int steps, float *logits);\n\n"
        f"/* {upper}_STATE_BYTES, for bindings that allocate states themselves. */\n"
        f"size_t {prefix}_state_size(void);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif /* {upper}_H */\n"
    )

    tables, step = [], []
    step.append(f"    ep_copy(a, x, {upper}_INPUT_SIZE);")
    suffix = "_libm" if p.activations == "libm" else ""
    for lp in p.layers:
        layer, m = lp.layer, lp.matrix
        what = f"layer {lp.index}: {layer.cell.upper()} {layer.hidden_size}, gates {'/'.join(ir.GATE_NAMES[layer.cell])}"
        tables.append(f"/* {what}; {_percent(m.nnz, m.shape)}; {m.format} {p.dtype} */\n")
        tables.append(_matrix_tables(m, layer.bias_or_zeros(), lp.scales))
        step.append(f"    {{ /* {what}: z = a[{lp.input_offset}:{lp.input_offset + layer.cols}] */")
        scale_vars: list[str] = []
        if p.dtype == "int8":
            lines, scale_vars = _quantize_calls(m, "a", lp.input_offset, "q", "        ")
            step += lines
        step += _matvec_calls(m, "s->pre", "a", lp.input_offset, scale_vars, "        ")
        h = _offset("a", lp.state_offset)
        if layer.cell == "lstm":
            step.append(f"        ep_lstm{suffix}({h}, {_offset('s->cell', lp.cell_offset)}, s->pre, "
                        f"{layer.hidden_size});")
        else:
            step.append(f"        ep_{layer.cell}{suffix}({h}, s->pre, {layer.hidden_size});")
        step.append("    }")
    tables.append(f"/* head: {_percent(p.head.nnz, p.head.shape)}; {p.head.format} {p.dtype} */\n")
    tables.append(_matrix_tables(p.head, model.head.bias_or_zeros(), p.head_scales))
    head_lines: list[str] = []
    scale_vars = []
    if p.dtype == "int8":
        head_lines, scale_vars = _quantize_calls(p.head, "s->arena", p.head_input_offset, "q", "    ")
    head_lines += _matvec_calls(p.head, "logits", "s->arena", p.head_input_offset, scale_vars, "    ")
    if not p.head.tiles:
        head_lines.append("    (void)s; /* every head weight was pruned: the logits are the bias */")
    head_signature = f"static void head({'' if p.dtype == 'int8' else 'const '}{prefix}_state_t *s, float *logits)"

    source = (
        f"{banner}#include \"{prefix}.h\"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
        "#include \"edgeprune_rt.h\"\n\n"
        f"/* The tables below are laid out for slices of {formats.SLICE} rows and this size of the state. */\n"
        f"typedef char {prefix}_layout_check[EP_SLICE == {formats.SLICE} && "
        f"sizeof({prefix}_state_t) == {upper}_STATE_BYTES ? 1 : -1];\n\n"
        + "\n".join(tables)
        + f"\n{head_signature}\n{{\n" + "\n".join(head_lines) + "\n}\n\n"
        f"void {prefix}_reset({prefix}_state_t *state)\n{{\n    memset(state, 0, sizeof *state);\n}}\n\n"
        f"size_t {prefix}_state_size(void)\n{{\n    return sizeof({prefix}_state_t);\n}}\n\n"
        f"void {prefix}_step({prefix}_state_t *s, const float *x, float *logits)\n{{\n"
        "    float *const a = s->arena;\n"
        + "\n".join(step)
        + "\n    if (logits)\n        head(s, logits);\n}\n\n"
        f"void {prefix}_run({prefix}_state_t *state, const float *x, int steps, float *logits)\n{{\n"
        "    int t;\n"
        f"    {prefix}_reset(state);\n"
        "    for (t = 0; t < steps; ++t)\n"
        f"        {prefix}_step(state, x + (size_t)t * {upper}_INPUT_SIZE, t + 1 == steps ? logits : NULL);\n"
        "    if (steps < 1 && logits)\n"
        "        head(state, logits); /* no step: the classifier of the zero state */\n"
        "}\n"
    )
    files = {f"{prefix}.h": header, f"{prefix}.c": source}
    runtime = source_dir("c")
    for name in RUNTIME_FILES:
        files[name] = (runtime / name).read_text()
    harness = (runtime / HARNESS_TEMPLATE).read_text()
    files[HARNESS] = harness.replace("@PREFIX_UPPER@", upper).replace("@PREFIX@", prefix)
    for name, template in (("Makefile", "Makefile.in"), ("CMakeLists.txt", "CMakeLists.txt.in"), (EXAMPLE, "main.c.in")):
        files[name] = (runtime / "templates" / template).read_text().replace("@PREFIX_UPPER@", upper).replace(
            "@PREFIX@", prefix)
    return files
