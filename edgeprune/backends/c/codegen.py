"""Emission: a ``planning.ModelPlan`` -> C source files (const weight tables, the state struct,
reset/step/run calling the runtime), plus the runtime and the files filled from templates
(``runtimes/c``: the header ``templates/model.h.in``, the harness ``edgeprune_run.c.in``, the
Makefile, CMakeLists.txt and example ``main.c``). No decisions are taken here: every format,
offset and size comes from the plan.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from ... import __version__, ir
from ...runtime import source_dir
from . import formats
from .cells import tables as cell_tables
from .cells import variant_recurrent
from .planning import ARENA_PAD, MatrixPlan, ModelPlan, StagePlan

RUNTIME_FILES = ("edgeprune_rt.h", "edgeprune_rt.c")
HARNESS_TEMPLATE = "edgeprune_run.c.in"
HEADER_TEMPLATE = "model.h.in"
HARNESS = "edgeprune_run.c"
EXAMPLE = "main.c"


def fill(template: str, values: dict[str, object]) -> str:
    """``@NAME@`` -> ``values[NAME]``; a line holding only a placeholder that fills to nothing is dropped."""
    lines = []
    for line in template.splitlines(keepends=True):
        stripped = line.strip()
        if (
            stripped.startswith("@")
            and stripped.endswith("@")
            and stripped[1:-1] in values
            and values[stripped[1:-1]] == ""
        ):
            continue
        for name, value in values.items():
            line = line.replace(f"@{name}@", str(value))
        lines.append(line)
    return "".join(lines)


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


def _matrix_tables(m: MatrixPlan, bias: np.ndarray | None, scales: np.ndarray | None) -> str:
    # first-writer SELL tiles hold every row's bias, in their slot order; 8x1 ones read the model's
    slotted = any(t.encoded.sets and t.format in formats.SELL for t in m.tiles)
    out = [] if bias is None or slotted else [_array(f"{m.name}_bias", np.asarray(bias, np.float32))]
    if scales is not None and m.tiles:
        out.append(_array(f"{m.name}_scales", np.asarray(scales, np.float32)))
    for k, t in enumerate(m.tiles):
        out.append(
            f"/* tile {k}: rows {t.row}..{t.row + t.rows - 1}, z columns {t.col}..{t.col + t.cols - 1}, "
            f"{t.format}, {t.nnz} nonzeros */\n"
        )
        for array, values in t.encoded.arrays.items():
            out.append(_array(f"{m.name}_t{k}_{array}", values))
        if t.encoded.sets and t.format in formats.SELL and bias is not None:
            slots = t.row + t.encoded.arrays["perm"].astype(np.int64)
            out.append(_array(f"{m.name}_t{k}_bias", np.asarray(bias, np.float32)[slots]))
    return "".join(out)


def _offset(pointer: str, offset: int) -> str:
    return f"{pointer} + {offset}" if offset else pointer


def _matvec_calls(
    m: MatrixPlan, y: str, z: str, z_offset: int, scale_vars: list[str], indent: str, bias: bool = True, keep=None
) -> list[str]:
    """bias copy (or zeros) + one kernel call per tile (int8: with the row scales and the segment's z scale);
    ``keep(tile)`` false skips a tile (a variant cell's late rows, backends/c/cells.py)."""
    rows = m.shape[0]
    order = sorted(range(len(m.tiles)), key=lambda k: not m.tiles[k].encoded.sets)  # first writers first
    if order and m.tiles[order[0]].encoded.sets:  # they cover every row (planning._first_writers)
        assert keep is None, "first-writer tiles in a variant cell's matrix"
        lines = []
    else:
        lines = [f"ep_copy({y}, {m.name}_bias, {rows});" if bias else f"memset({y}, 0, {rows} * sizeof(float));"]
    for k in order:
        t = m.tiles[k]
        if keep is not None and not keep(t):
            continue
        arrays = ", ".join(f"{m.name}_t{k}_{a}" for a in t.encoded.arrays)
        params = "".join(f", {v}" for v in t.encoded.params.values())
        out = _offset(y, t.row)
        if t.encoded.sets and t.format in formats.SELL:  # slot-ordered biases, the rows after the walked ones
            pbias = f"{m.name}_t{k}_bias" if bias else "NULL"
            walk = t.encoded.kernel_rows(t.rows)
            call = f"ep_{t.format}_set_f32({out}, {arrays}, {pbias}, {_offset(z, z_offset + t.col)}, {walk}, {t.rows});"
        elif t.encoded.sets:  # 8x1 blocks: the rows' own biases
            pbias = _offset(f"{m.name}_bias", t.row) if bias else "NULL"
            call = f"ep_{t.format}_set_f32({out}, {arrays}, {pbias}, {_offset(z, z_offset + t.col)}, {t.rows}{params});"
        elif m.dtype == "int8":
            params = f", {t.cols}" if t.format == "dense" else params
            call = (
                f"ep_{t.format}_i8({out}, {_offset(m.name + '_scales', t.row)}, {scale_vars[t.segment]}, "
                f"{arrays}, {_offset('s->zq', t.col)}, {t.encoded.kernel_rows(t.rows)}{params});"
            )
        elif t.format == "dense":
            call = f"ep_dense_f32({out}, {arrays}, {_offset(z, z_offset + t.col)}, {t.rows}, {t.cols});"
        else:
            walk = t.encoded.kernel_rows(t.rows)
            call = f"ep_{t.format}_f32({out}, {arrays}, {_offset(z, z_offset + t.col)}, {walk}{params});"
        lines.append(call)
    return [indent + line for line in lines]


def _quantize_calls(m: MatrixPlan, z: str, z_offset: int, var: str, indent: str) -> tuple[list[str], list[str]]:
    """ep_quantize for every segment a tile reads; returns (lines, scale variable per segment)."""
    used = sorted({t.segment for t in m.tiles})
    names, lines = [], []
    for k, (c0, c1) in enumerate(m.segments):
        names.append(f"{var}{k}")
        if k in used:
            lines.append(
                f"{indent}const float {var}{k} = ep_quantize({_offset('s->zq', c0)}, "
                f"{_offset(z, z_offset + c0)}, {c1 - c0});"
            )
    return lines, names


def _percent(nnz: int, shape) -> str:
    size = shape[0] * shape[1]
    return f"{nnz:,} of {size:,} weights kept ({1 - nnz / size:.1%} sparse)" if size else "no weights"


def _vector_activation(activation: str, y: str, n: int, suffix: str) -> list[str]:
    if activation == "none":
        return []
    if activation in ("relu", "softmax"):  # exact either way; softmax always uses expf
        return [f"ep_{activation}({y}, {n});"]
    return [f"ep_{activation}{suffix}({y}, {n});"]


def _matrix_stage(p: ModelPlan, sp: StagePlan, y: str) -> list[str]:
    """Quantize z (int8), bias + one kernel call per tile into ``y``."""
    m = sp.matrix
    lines, scale_vars = ([], [])
    if p.dtype == "int8":
        lines, scale_vars = _quantize_calls(m, "a", sp.z_offset, "q", "")
    lines += _matvec_calls(m, y, "a", sp.z_offset, scale_vars, "", bias=sp.stage.bias is not None)
    return lines


def _recurrent(p: ModelPlan, sp: StagePlan, suffix: str) -> list[str]:
    layer = sp.stage
    if not layer.default_cell:

        def matvec(m: MatrixPlan, keep, y: str, z: str, z_offset: int, bias: bool, tag: str) -> list[str]:
            used = dataclasses.replace(m, tiles=[t for t in m.tiles if keep(t)])  # segments to quantize
            lines, scale_vars = _quantize_calls(used, z, z_offset, tag, "") if p.dtype == "int8" else ([], [])
            bias = bias and layer.bias is not None
            return lines + _matvec_calls(m, y, z, z_offset, scale_vars, "", bias=bias, keep=keep)

        return variant_recurrent(p, sp, matvec)
    h = _offset("a", sp.state_offset)
    m = sp.matrix
    if m is not None and m.tiles and m.tiles[0].format == formats.LSTM8X1:  # planning._fuse_lstm_blocks
        t, H = m.tiles[0], layer.hidden_size
        arrays = ", ".join(f"{m.name}_t0_{a}" for a in t.encoded.arrays)
        bias = f"{m.name}_bias" if layer.bias is not None else "NULL"
        cell = _offset("s->cell", sp.cell_offset)
        return [  # h into s->pre first: later units' block rows still read the old h in z
            f"ep_lstm8x1_f32(s->pre, {cell}, {arrays}, {bias}, {_offset('a', sp.z_offset + t.col)}, {H});",
            f"ep_copy({h}, s->pre, {H});",
        ]
    lines = _matrix_stage(p, sp, "s->pre")
    if layer.cell == "lstm":
        lines.append(f"ep_lstm{suffix}({h}, {_offset('s->cell', sp.cell_offset)}, s->pre, {layer.hidden_size});")
    elif layer.cell == "rnn" and layer.activation == "relu":
        lines.append(f"ep_rnn_relu({h}, s->pre, {layer.hidden_size});")
    else:
        lines.append(f"ep_{layer.cell}{suffix}({h}, s->pre, {layer.hidden_size});")
    return lines


def _conv(p: ModelPlan, sp: StagePlan, y: str, suffix: str) -> list[str]:
    """Append the input to the window, gather the dilated taps, mat-vec, then shift the window by one step."""
    conv = sp.stage
    C, lines = conv.in_channels, []
    if conv.history:
        window = _offset("a", sp.state_offset)
        lines.append(
            f"ep_copy({_offset('a', sp.state_offset + conv.history * C)}, {_offset('a', sp.input_offset)}, "
            f"{C}); /* x_t after the last {conv.history} inputs */"
        )
        if sp.gather_offset is not None:
            for tap in range(conv.kernel):
                lines.append(
                    f"ep_copy({_offset('a', sp.gather_offset + tap * C)}, "
                    f"{_offset('a', sp.state_offset + tap * conv.dilation * C)}, {C}); /* tap {tap} */"
                )
    lines += _matrix_stage(p, sp, y)
    lines += _vector_activation(conv.activation, y, conv.output_size, suffix)
    if conv.history:
        lines.append(f"memmove({window}, {_offset('a', sp.state_offset + C)}, {conv.history * C} * sizeof(float));")
    return lines


def _stage_lines(p: ModelPlan, sp: StagePlan, y: str, suffix: str) -> list[str]:
    """The C statements of one stage, writing its output to ``y``."""
    stage, x = sp.stage, _offset("a", sp.input_offset)
    n = stage.output_size
    if isinstance(stage, ir.Recurrent):
        return _recurrent(p, sp, suffix)
    if isinstance(stage, ir.Conv1d):
        return _conv(p, sp, y, suffix)
    if isinstance(stage, ir.Dense):
        return _matrix_stage(p, sp, y) + _vector_activation(stage.activation, y, n, suffix)
    if isinstance(stage, ir.LayerNorm):
        return [f"ep_layernorm({y}, {x}, {sp.stem}_gamma, {sp.stem}_beta, {_floats(np.float32([stage.eps]))[0]}, {n});"]
    if isinstance(stage, ir.Normalize):
        return [f"ep_affine({y}, {x}, {sp.stem}_scale, {sp.stem}_shift, {n});"]
    if isinstance(stage, ir.Pool):
        acc = _offset("a", sp.state_offset)
        if stage.mode == "max":
            return [f"ep_pool_max({acc}, {x}, {n}, s->steps == 1u);"]
        return [f"ep_pool_mean({y}, {acc}, {x}, {n}, s->steps);"]
    raise TypeError(f"no C for stage {type(stage).__name__}")  # model.validate() admits no other kind


def _tables(p: ModelPlan, sp: StagePlan) -> str:
    stage = sp.stage
    if sp.matrix is not None:
        m = sp.matrix
        if isinstance(stage, ir.Recurrent):
            what = (
                f"{sp.name}: {stage.cell.upper()} {stage.hidden_size}, gates {'/'.join(ir.GATE_NAMES[stage.cell])}"
                + ("" if stage.bias is not None else ", no bias")
            )
        else:
            what = f"{sp.name}: {stage.describe()}"
        return (
            f"/* {what}; {_percent(m.nnz, m.shape)}; {m.format} {p.dtype} */\n"
            + _matrix_tables(m, stage.bias, sp.scales)
            + (cell_tables(sp) if isinstance(stage, ir.Recurrent) else "")
        )
    arrays = stage.arrays()
    if not arrays:
        return ""
    return f"/* {sp.name}: {stage.describe()} */\n" + "".join(
        _array(f"{sp.stem}_{k}", np.asarray(v, np.float32)) for k, v in arrays.items()
    )


def _block(sp: StagePlan, lines: list[str]) -> list[str]:
    what = sp.stage.describe()
    return [f"    {{ /* {sp.name}: {what} */"] + [f"        {l}" for l in lines] + ["    }"]


def _uses_arena(lines: list[str]) -> bool:
    return any(re.search(r"\ba\b", l) for l in lines)


def generate(p: ModelPlan) -> dict[str, str]:
    """The generated files (name -> text) for ``p``, runtime and harness included. Deterministic."""
    prefix, model = p.prefix, p.model
    upper = prefix.upper()
    banner = (
        f"/* Generated by edgeprune {__version__} (compile --target c --dtype {p.dtype} --kernel {p.kernel}). "
        f"Do not edit.\n * Model: {model.describe()}; {model.nnz(True):,} stored weights. */\n"
    )
    layout = " | ".join(f"{label} {n}" for label, n in p.layout)
    every = p.every
    runtime = source_dir("c")
    header = fill(
        (runtime / "templates" / HEADER_TEMPLATE).read_text(),
        {
            "BANNER": banner.rstrip("\n"),
            "PREFIX_UPPER": upper,
            "PREFIX": prefix,
            "INPUT_SIZE": model.input_size,
            "OUTPUT_SIZE": model.output_size,
            "OUTPUT_EVERY": int(every),
            "STATE_BYTES": p.state_bytes,
            "ARENA_SIZE": p.arena + ARENA_PAD,
            "LAYOUT": layout,
            "ARENA_PAD": ARENA_PAD,
            "RUN_OUT": f"out[steps][{upper}_OUTPUT_SIZE], the output of every step"
            if every
            else f"out[{upper}_OUTPUT_SIZE], the output after the last step",
            "CELL_MEMBER": f"    float cell[{p.cell}]; /* LSTM cell states */" if p.cell else "",
            "PRE_MEMBER": f"    float pre[{p.pre}]; /* gate pre-activations of the layer being computed */"
            if p.pre
            else "",
            "STEPS_MEMBER": "    uint32_t steps; /* steps since reset (the pool's count) */" if p.pool else "",
            "ZQ_MEMBER": f"    int8_t zq[{p.zq}]; /* scratch: the quantized input of the matrix being computed */"
            if p.zq
            else "",
        },
    )

    suffix = "_libm" if p.activations == "libm" else ""
    tables = [_tables(p, sp) for sp in p.stages]
    reset = ["    memset(state, 0, sizeof *state);"]
    for sp in p.stages:  # a stage's own initial state: const tables copied in after the zeroing
        stage = sp.stage
        if not isinstance(stage, ir.Recurrent) or stage.initial_state is None:
            continue
        for k, v in zip(ir.cell_spec(stage.cell).states, stage.initial_state):
            table = f"{sp.stem}_initial_{k}"
            tables.append(f"/* {sp.name}: the state every stream starts from */\n" + _array(table, v))
            where = _offset("state->arena", sp.state_offset) if k == "h" else _offset("state->cell", sp.cell_offset)
            reset.append(f"    ep_copy({where}, {table}, {stage.hidden_size});")
    step = [f"    ep_copy(a, x, {upper}_INPUT_SIZE);"]
    if p.pool:
        step.append("    s->steps += 1u;")
    tail: list[str] = []
    for sp in p.stages:
        y = "out" if sp.output_offset is None else _offset("a", sp.output_offset)
        (tail if sp.tail else step).extend(_block(sp, _stage_lines(p, sp, y, suffix)))
    final = p.stages[-1]
    if isinstance(final.stage, ir.Recurrent) and final.stage.output_state == "c":  # LSTM Y_c: the cell state
        tail.append(f"    ep_copy(out, {_offset('s->cell', final.cell_offset)}, {upper}_OUTPUT_SIZE);")
    elif final.output_offset is not None:  # the last stage keeps state: its output is in the arena
        tail.append(f"    ep_copy(out, {_offset('a', final.output_offset)}, {upper}_OUTPUT_SIZE);")
    per_sequence = "(size_t)steps * " if every else ""  # outputs per sequence of run_batch
    tail_head = ["    float *const a = s->arena;"] + ([] if _uses_arena(tail) else ["    (void)a;"])
    source = (
        f'{banner}#include "{prefix}.h"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n'
        '#include "edgeprune_rt.h"\n\n'
        f"/* The tables below are laid out for slices of {formats.SLICE} rows and this size of the state. */\n"
        f"typedef char {prefix}_layout_check[EP_SLICE == {formats.SLICE} && "
        f"sizeof({prefix}_state_t) == {upper}_STATE_BYTES ? 1 : -1];\n\n"
        + "\n".join(t for t in tables if t)
        + "\n/* The stages after the last one with state: only when the step's output is wanted. */\n"
        f"static void output({prefix}_state_t *s, float *out)\n{{\n" + "\n".join(tail_head + tail) + "\n}\n\n"
        f"void {prefix}_reset({prefix}_state_t *state)\n{{\n" + "\n".join(reset) + "\n}\n\n"
        f"size_t {prefix}_state_size(void)\n{{\n    return sizeof({prefix}_state_t);\n}}\n\n"
        f"void {prefix}_step({prefix}_state_t *s, const float *x, float *out)\n{{\n"
        "    float *const a = s->arena;\n" + "\n".join(step) + "\n    if (out)\n        output(s, out);\n}\n\n"
        f"void {prefix}_run({prefix}_state_t *state, const float *x, int steps, float *out)\n{{\n"
        "    int t;\n"
        f"    {prefix}_reset(state);\n"
        + (
            "    for (t = 0; t < steps; ++t)\n"
            f"        {prefix}_step(state, x + (size_t)t * {upper}_INPUT_SIZE, "
            f"out ? out + (size_t)t * {upper}_OUTPUT_SIZE : NULL);\n"
            if every
            else "    for (t = 0; t < steps; ++t)\n"
            f"        {prefix}_step(state, x + (size_t)t * {upper}_INPUT_SIZE, t + 1 == steps ? out : NULL);\n"
            "    if (steps < 1 && out)\n"
            "        output(state, out); /* no step: the output of the zero state */\n"
        )
        + "}\n\n"
        # batch entry points: one call from a binding (ctypes) instead of one per sequence or stream
        f"void {prefix}_run_batch({prefix}_state_t *state, const float *x, int sequences, int steps, float *out)\n"
        "{\n    int i;\n"
        "    for (i = 0; i < sequences; ++i)\n"
        f"        {prefix}_run(state, x + (size_t)i * (size_t)steps * {upper}_INPUT_SIZE, steps,\n"
        f"                     out ? out + (size_t)i * {per_sequence}{upper}_OUTPUT_SIZE : NULL);\n"
        "}\n\n"
        f"void {prefix}_step_streams({prefix}_state_t *states, int streams, const float *x, float *out)\n"
        "{\n    int i;\n"
        "    for (i = 0; i < streams; ++i)\n"
        f"        {prefix}_step(states + i, x + (size_t)i * {upper}_INPUT_SIZE, "
        f"out ? out + (size_t)i * {upper}_OUTPUT_SIZE : NULL);\n"
        "}\n"
    )
    files = {f"{prefix}.h": header, f"{prefix}.c": source}
    for name in RUNTIME_FILES:
        files[name] = (runtime / name).read_text()
    names = {"PREFIX_UPPER": upper, "PREFIX": prefix, "CLASSIFY": int(model.task == "classify")}
    files[HARNESS] = fill((runtime / HARNESS_TEMPLATE).read_text(), names)
    for name, template in (
        ("Makefile", "Makefile.in"),
        ("CMakeLists.txt", "CMakeLists.txt.in"),
        (EXAMPLE, "main.c.in"),
    ):
        files[name] = fill((runtime / "templates" / template).read_text(), names)
    return files
