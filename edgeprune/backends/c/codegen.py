"""IR -> C source: const weight tables, one state struct, and reset/step/run calling the runtime.

Layout decisions (docs/c-backend.md has the reasoning):

* All vectors a step reads live in one arena ``[x | h_0 | h_1 | ...]``. Layer l's input vector
  ``z = [input ; own state ; next layer's state]`` is then the contiguous window starting at its
  input, so no step copies or concatenates anything but ``x``. Layers run in order and each
  writes its new state only after its mat-vec, so layer l still sees layer l+1's state from the
  previous step (top-down feedback) and layer l+1 sees layer l's new state.
* Each matrix is stored either as CSR (values, column indices and per-row counts of the
  smallest integer width that fits) or as dense column-major tiles over its gate-row blocks x
  column segments (input / state / feedback), all-zero tiles left out and each tile trimmed to
  the rows and columns it uses. ``smallest`` takes the one with fewer bytes, ``fastest`` the one
  with fewer estimated instructions on the target (``COSTS``); both formats are exact.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ... import __version__, ir
from ...errors import BackendError
from ...runtimes import path as runtime_path

FORMATS = ("smallest", "fastest", "csr", "dense")
# Instructions per stored weight (CSR), per row (CSR) and per multiply-add (dense panels), fitted to
# benchmarks/results/c_speed_memory.md (LSTM/GRU-128, -O2 -ffp-contract=fast). Vector machines
# run dense panels 4-8 multiply-adds at a time; a Cortex-M4 has no SIMD, so CSR wins far earlier.
COSTS = {"simd": (5.1, 25.0, 1.53), "cortex-m4": (6.1, 21.0, 2.54)}
DEFAULT_CFLAGS = "-O2 -ffp-contract=fast"
ACTIVATIONS = ("fast", "libm")
RUNTIME_FILES = ("edgeprune_rt.h", "edgeprune_rt.c")
HARNESS_TEMPLATE = "edgeprune_run.c.in"
HARNESS = "edgeprune_run.c"
PANEL = 8  # EP_PANEL of the runtime: rows per panel of a dense tile
INDEX_TYPES = {8: "uint8_t", 16: "uint16_t", 32: "uint32_t"}
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


def index_bits(cols: int) -> int:
    """Width of column indices and row counts: both are at most ``cols``."""
    return 8 if cols <= 0xFF else 16 if cols <= 0xFFFF else 32


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    rows: int
    cols: int


@dataclass
class MatrixPlan:
    name: str  # C identifier stem
    label: str
    shape: tuple[int, int]
    nnz: int
    format: str  # "csr", "dense" or "empty" (no stored weight)
    index_bits: int
    tiles: list[Tile]
    bytes_by_format: dict[str, int]  # weight tables (without the bias) in each format
    cost_by_format: dict[str, int]  # estimated instructions per step on the target (COSTS)

    @property
    def weight_bytes(self) -> int:
        return self.bytes_by_format.get(self.format, 0)

    def describe(self) -> dict:
        d = {"shape": list(self.shape), "nnz": self.nnz, "format": self.format, "weight_bytes": self.weight_bytes,
             "bytes_by_format": dict(self.bytes_by_format), "estimated_instructions": dict(self.cost_by_format)}
        if self.format == "csr":
            d["index"] = INDEX_TYPES[self.index_bits]
        if self.format == "dense":
            d["tiles"] = [asdict(t) for t in self.tiles]
        return d


def _dense_tiles(m: ir.CSR, row_blocks: list[tuple[int, int]], col_blocks: list[tuple[int, int]]) -> list[Tile]:
    pattern = np.zeros(m.shape, dtype=bool)
    pattern[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices] = True
    tiles = []
    for r0, r1 in row_blocks:
        for c0, c1 in col_blocks:
            used = pattern[r0:r1, c0:c1]
            rows, cols = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
            if rows.size:
                tiles.append(Tile(r0 + int(rows[0]), c0 + int(cols[0]), int(rows[-1] - rows[0] + 1),
                                  int(cols[-1] - cols[0] + 1)))
    return tiles


def plan_matrix(name: str, label: str, m: ir.CSR, row_blocks, col_blocks, fmt: str, arch: str = "host") -> MatrixPlan:
    rows, cols = m.shape
    bits = index_bits(cols)
    tiles = _dense_tiles(m, row_blocks, col_blocks)
    area = sum(t.rows * t.cols for t in tiles)
    sizes = {"csr": m.nnz * (4 + bits // 8) + rows * (bits // 8), "dense": area * 4}
    per_nnz, per_row, per_mac = COSTS["cortex-m4" if arch == "cortex-m4" else "simd"]
    costs = {"csr": per_nnz * m.nnz + per_row * rows, "dense": per_mac * area}
    if m.nnz == 0:
        chosen = "empty"
    elif fmt in ("smallest", "fastest"):
        key = sizes if fmt == "smallest" else costs
        chosen = "dense" if key["dense"] <= key["csr"] else "csr"
    else:
        chosen = fmt
    return MatrixPlan(name, label, (rows, cols), m.nnz, chosen, bits, tiles, sizes,
                      {k: round(v) for k, v in costs.items()})


@dataclass
class LayerPlan:
    index: int
    layer: ir.Layer
    matrix: MatrixPlan
    input_offset: int  # arena offset of z (the layer's input)
    state_offset: int  # arena offset of h
    cell_offset: int | None  # offset in the LSTM cell array


@dataclass
class ModelPlan:
    prefix: str
    model: ir.Model
    activations: str
    layers: list[LayerPlan]
    head: MatrixPlan
    head_input_offset: int
    arena: int
    cell: int
    pre: int
    notes: list[str] = field(default_factory=list)

    @property
    def state_bytes(self) -> int:
        return 4 * (self.arena + self.cell + self.pre)

    def matrices(self) -> list[MatrixPlan]:
        return [lp.matrix for lp in self.layers] + [self.head]

    def weight_bytes(self) -> dict[str, int]:
        biases = 4 * (sum(lp.layer.rows for lp in self.layers) + self.model.num_classes)
        weights = sum(m.weight_bytes for m in self.matrices())
        return {"weights": weights, "biases": biases, "total": weights + biases}

    def describe(self) -> dict:
        return {
            "prefix": self.prefix,
            "activations": self.activations,
            "matrices": {m.label: m.describe() for m in self.matrices()},
            "weight_bytes": self.weight_bytes(),
            "state_bytes": self.state_bytes,
        }


def plan(model: ir.Model, prefix: str = "model", fmt: str = "smallest", activations: str = "fast",
         arch: str = "host") -> ModelPlan:
    if fmt not in FORMATS:
        raise BackendError(f"--c-format '{fmt}' is not one of {', '.join(FORMATS)}")
    if activations not in ACTIVATIONS:
        raise BackendError(f"--c-activations '{activations}' is not one of {', '.join(ACTIVATIONS)}")
    model.validate()
    check_prefix(prefix)
    layers, state_offsets, offset, cell = [], [], model.input_size, 0
    for layer in model.layers:  # arena: [x | h_0 | h_1 | ...]
        state_offsets.append(offset)
        offset += layer.hidden_size
    arena = offset
    for l, layer in enumerate(model.layers):
        H = layer.hidden_size
        gates = ir.IR_GATES[layer.cell]
        segments = [(s.start, s.stop) for s in layer.column_slices().values() if s.stop > s.start]
        matrix = plan_matrix(f"l{l}", f"layers.{l}.weight", layer.weight,
                             [(g * H, (g + 1) * H) for g in range(gates)], segments, fmt, arch)
        input_offset = state_offsets[l - 1] if l else 0
        layers.append(LayerPlan(l, layer, matrix, input_offset, state_offsets[l], cell if layer.cell == "lstm" else None))
        cell += H if layer.cell == "lstm" else 0
    head_weight = model.head.weight
    head = plan_matrix("head", "head.weight", head_weight, [(0, head_weight.shape[0])], [(0, head_weight.shape[1])], fmt,
                       arch)
    pre = max(layer.rows for layer in model.layers)
    return ModelPlan(prefix, model, activations, layers, head, state_offsets[-1], arena, cell, pre)


# --- emission -----------------------------------------------------------------------------------

def _floats(values: np.ndarray) -> list[str]:
    # str() of a float32 is its shortest round-trip form, so the C literal is the exact value.
    out = []
    for v in np.asarray(values, dtype=np.float32).ravel():
        s = str(v)
        out.append(s + "f" if ("." in s or "e" in s) else s + ".0f")
    return out


def _array(ctype: str, name: str, items: list[str], per_line: int) -> str:
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


def _matrix_tables(m: MatrixPlan, csr: ir.CSR, bias: np.ndarray) -> str:
    out = [_array("float", f"{m.name}_bias", _floats(bias), 8)]
    if m.format == "csr":
        ctype = INDEX_TYPES[m.index_bits]
        out.append(_array("float", f"{m.name}_values", _floats(csr.data), 8))
        out.append(_array(ctype, f"{m.name}_cols", [str(int(c)) for c in csr.indices], 16))
        out.append(_array(ctype, f"{m.name}_row_nnz", [str(int(n)) for n in np.diff(csr.indptr)], 16))
    elif m.format == "dense":
        dense = csr.to_dense()
        for k, t in enumerate(m.tiles):
            block = dense[t.row : t.row + t.rows, t.col : t.col + t.cols]
            out.append(f"/* rows {t.row}..{t.row + t.rows - 1}, columns {t.col}..{t.col + t.cols - 1}, in panels */\n")
            out.append(_array("float", f"{m.name}_tile{k}", _floats(panel_layout(block)), 8))
    return "".join(out)


def panel_layout(block: np.ndarray) -> np.ndarray:
    """A dense tile as ``ep_dense`` reads it: panels of PANEL rows column-major, then the rest row-major."""
    full = block.shape[0] // PANEL * PANEL
    panels = block[:full].reshape(-1, PANEL, block.shape[1]).transpose(0, 2, 1)
    return np.concatenate([panels.ravel(), block[full:].ravel()])


def _matvec_calls(m: MatrixPlan, y: str, z: str, indent: str) -> list[str]:
    rows = m.shape[0]
    if m.format == "csr":
        return [f"{indent}ep_csr{m.index_bits}({y}, {m.name}_bias, {m.name}_values, {m.name}_cols, {m.name}_row_nnz, "
                f"{z}, {rows});"]
    lines = [f"ep_copy({y}, {m.name}_bias, {rows});"]
    if m.format == "dense":
        for k, t in enumerate(m.tiles):
            lines.append(f"ep_dense({_offset(y, t.row)}, {m.name}_tile{k}, {_offset(z, t.col)}, {t.rows}, {t.cols});")
    return [indent + line for line in lines]


def _offset(pointer: str, offset: int) -> str:
    return f"{pointer} + {offset}" if offset else pointer


def _percent(nnz: int, shape) -> str:
    size = shape[0] * shape[1]
    return f"{nnz:,} of {size:,} weights kept ({1 - nnz / size:.1%} sparse)" if size else "no weights"


def generate(p: ModelPlan) -> dict[str, str]:
    """The generated files (name -> text) for ``p``, runtime and harness included. Deterministic."""
    prefix, model = p.prefix, p.model
    upper = prefix.upper()
    banner = (f"/* Generated by edgeprune {__version__} (compile --target c). Do not edit.\n"
              f" * Model: {model.describe()}; {model.nnz(True):,} stored weights. */\n")
    layout = " | ".join(["x " + str(model.input_size)] + [f"h{lp.index} {lp.layer.hidden_size}" for lp in p.layers])

    cell_member = f"    float cell[{p.cell}]; /* LSTM cell states */\n" if p.cell else ""
    header = (
        f"{banner}#ifndef {upper}_H\n#define {upper}_H\n\n"
        f"#define {upper}_INPUT_SIZE {model.input_size}\n"
        f"#define {upper}_NUM_CLASSES {model.num_classes}\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        "/* Everything a stream needs between steps; no other memory is used. Any number of streams can\n"
        " * run the same model, one state each. */\n"
        "typedef struct {\n"
        f"    float arena[{p.arena}]; /* [{layout}] */\n"
        f"{cell_member}"
        f"    float pre[{p.pre}]; /* gate pre-activations of the layer being computed */\n"
        f"}} {prefix}_state_t;\n\n"
        f"/* Zero the state (start of a sequence). */\n"
        f"void {prefix}_reset({prefix}_state_t *state);\n\n"
        f"/* One time step: x[{upper}_INPUT_SIZE] -> logits[{upper}_NUM_CLASSES] of this step.\n"
        f" * Pass logits = NULL to skip the classifier on steps whose output is not needed. */\n"
        f"void {prefix}_step({prefix}_state_t *state, const float *x, float *logits);\n\n"
        f"/* Reset, then run a whole sequence x[steps][{upper}_INPUT_SIZE]; logits of the last step. */\n"
        f"void {prefix}_run({prefix}_state_t *state, const float *x, int steps, float *logits);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif /* {upper}_H */\n"
    )

    tables, step = [], []
    step.append(f"    ep_copy(a, x, {upper}_INPUT_SIZE);")
    for lp in p.layers:
        layer, m = lp.layer, lp.matrix
        what = f"layer {lp.index}: {layer.cell.upper()} {layer.hidden_size}, gates {'/'.join(ir.GATE_NAMES[layer.cell])}"
        tables.append(f"/* {what}; {_percent(m.nnz, m.shape)}; {m.format} */\n")
        tables.append(_matrix_tables(m, layer.weight, layer.bias))
        step.append(f"    /* {what}: z = a[{lp.input_offset}:{lp.input_offset + layer.cols}] */")
        step += _matvec_calls(m, "s->pre", _offset("a", lp.input_offset), "    ")
        suffix = "_libm" if p.activations == "libm" else ""
        h = _offset("a", lp.state_offset)
        if layer.cell == "lstm":
            step.append(f"    ep_lstm{suffix}({h}, {_offset('s->cell', lp.cell_offset)}, s->pre, {layer.hidden_size});")
        else:
            step.append(f"    ep_{layer.cell}{suffix}({h}, s->pre, {layer.hidden_size});")
    tables.append(f"/* head: {_percent(p.head.nnz, p.head.shape)}; {p.head.format} */\n")
    tables.append(_matrix_tables(p.head, model.head.weight, model.head.bias))
    head_calls = "\n".join(_matvec_calls(p.head, "logits", _offset("s->arena", p.head_input_offset), "    "))
    if p.head.format == "empty":
        head_calls += "\n    (void)s; /* every head weight was pruned: the logits are the bias */"

    source = (
        f"{banner}#include \"{prefix}.h\"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
        "#include \"edgeprune_rt.h\"\n\n"
        f"/* The dense tiles below are laid out for panels of {PANEL} rows. */\n"
        f"typedef char {prefix}_panel_check[EP_PANEL == {PANEL} ? 1 : -1];\n\n"
        + "\n".join(tables)
        + f"\nstatic void head(const {prefix}_state_t *s, float *logits)\n{{\n{head_calls}\n}}\n\n"
        f"void {prefix}_reset({prefix}_state_t *state)\n{{\n    memset(state, 0, sizeof *state);\n}}\n\n"
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
    for name in RUNTIME_FILES:
        files[name] = runtime_path("c", name).read_text()
    harness = runtime_path("c", HARNESS_TEMPLATE).read_text()
    files[HARNESS] = harness.replace("@PREFIX_UPPER@", upper).replace("@PREFIX@", prefix)
    files["Makefile"] = _makefile(prefix)
    return files


def _makefile(prefix: str) -> str:
    return (
        "# Generated by edgeprune. Builds the model with the edgeprune runtime as a static library, and\n"
        "# the host harness. For a device, override the toolchain and flags, e.g.\n"
        "#   make CC=arm-none-eabi-gcc AR=arm-none-eabi-ar \\\n"
        "#        CFLAGS='-O2 -ffp-contract=fast -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16' \\\n"
        "#        lib" + prefix + ".a\n"
        f"CFLAGS ?= {DEFAULT_CFLAGS}\n"
        "STD = -std=c99 -Wall -Wextra\n\n"
        f"all: lib{prefix}.a edgeprune_run\n\n"
        f"lib{prefix}.a: {prefix}.o edgeprune_rt.o\n"
        "\t$(AR) rcs $@ $^\n\n"
        "%.o: %.c\n"
        "\t$(CC) $(STD) $(CFLAGS) -c $< -o $@\n\n"
        f"{prefix}.o: {prefix}.c {prefix}.h edgeprune_rt.h\n"
        "edgeprune_rt.o: edgeprune_rt.c edgeprune_rt.h\n\n"
        f"edgeprune_run: edgeprune_run.c {prefix}.h lib{prefix}.a\n"
        f"\t$(CC) $(STD) $(CFLAGS) edgeprune_run.c lib{prefix}.a -lm -o $@\n\n"
        "clean:\n"
        f"\trm -f {prefix}.o edgeprune_rt.o lib{prefix}.a edgeprune_run\n\n"
        ".PHONY: all clean\n"
    )
