"""Emission: a ``planning.ModelPlan`` -> C source files (const weight tables, the state struct,
reset/step/run calling the runtime), plus the runtime and the files filled from templates
(``runtimes/c``: the header ``templates/model.h.in``, the harness ``edgeprune_run.c.in``, the
Makefile, CMakeLists.txt and example ``main.c``). No decisions are taken here: every format,
offset and size comes from the plan.
"""

from __future__ import annotations

import numpy as np

from ... import __version__, ir
from ...runtime import source_dir
from . import formats
from .planning import ARENA_PAD, MatrixPlan, ModelPlan

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
        if stripped.startswith("@") and stripped.endswith("@") and stripped[1:-1] in values \
                and values[stripped[1:-1]] == "":
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
    runtime = source_dir("c")
    header = fill((runtime / "templates" / HEADER_TEMPLATE).read_text(), {
        "BANNER": banner.rstrip("\n"), "PREFIX_UPPER": upper, "PREFIX": prefix, "INPUT_SIZE": model.input_size,
        "NUM_CLASSES": model.num_classes, "STATE_BYTES": p.state_bytes, "ARENA_SIZE": p.arena + ARENA_PAD,
        "LAYOUT": layout, "ARENA_PAD": ARENA_PAD, "PRE_SIZE": p.pre,
        "CELL_MEMBER": f"    float cell[{p.cell}]; /* LSTM cell states */" if p.cell else "",
        "ZQ_MEMBER": f"    int8_t zq[{p.zq}]; /* scratch: the quantized input of the matrix being computed */"
        if p.zq else "",
    })

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
    for name in RUNTIME_FILES:
        files[name] = (runtime / name).read_text()
    names = {"PREFIX_UPPER": upper, "PREFIX": prefix}
    files[HARNESS] = fill((runtime / HARNESS_TEMPLATE).read_text(), names)
    for name, template in (("Makefile", "Makefile.in"), ("CMakeLists.txt", "CMakeLists.txt.in"), (EXAMPLE, "main.c.in")):
        files[name] = fill((runtime / "templates" / template).read_text(), names)
    return files
