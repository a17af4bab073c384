"""C for the cell variants (ir.cells, "cell variants"): ``ir.cells.cell_update`` emitted as one loop over
the hidden units with exact libm activations (the fused ``ep_lstm``/``ep_gru``/``ep_rnn`` with the fast
tanh/sigmoid stay the path of torch's cells, see codegen._recurrent).

Handles are C expressions valid inside ``for (j = 0; j < H; ++j)``; every op result is a ``const
float`` temporary. A GRU with linear_before_reset=0 splits the loop at its late mat-vec: the first
loop leaves ``r * h`` in the r block of ``s->pre`` (r is not read again), the late tiles multiply it
into the ``n_h`` block, and a second loop finishes the cell.
"""

from __future__ import annotations

import numpy as np

from ... import ir


def _literal(v: float) -> str:
    s = str(np.float32(v))
    return s + "f" if ("." in s or "e" in s) else s + ".0f"


def activation_expr(x: str, act: ir.Act) -> str:
    """The activation of ``x`` (a temporary's name) in C with libm, the formulas onnxruntime uses."""
    a, b = _literal(act.alpha), _literal(act.beta)
    return {
        "relu": f"({x} > 0.0f ? {x} : 0.0f)",
        "tanh": f"tanhf({x})",
        "sigmoid": f"(1.0f / (1.0f + expf(-{x})))",
        "affine": f"({a} * {x} + {b})",
        "leakyrelu": f"({x} >= 0.0f ? {x} : {a} * {x})",
        "thresholdedrelu": f"({x} > {a} ? {x} : 0.0f)",
        "scaledtanh": f"({a} * tanhf({b} * {x}))",
        "hardsigmoid": f"fminf(fmaxf({a} * {x} + {b}, 0.0f), 1.0f)",
        "elu": f"({x} >= 0.0f ? {x} : {a} * (expf({x}) - 1.0f))",
        "softsign": f"({x} / (1.0f + fabsf({x})))",
        "softplus": f"(fmaxf({x}, 0.0f) + log1pf(expf(-fabsf({x}))))",
    }[act.name]


class _COps:
    """``ir.cells.CellOps`` as C statements of the hidden-unit loop."""

    def __init__(self, stem: str, late):
        self.stem, self.late = stem, late
        self.lines: list[str] = []
        self.body: list[str] = []
        self.count = 0

    def _let(self, expr: str) -> str:
        self.count += 1
        self.body.append(f"const float t{self.count} = {expr};")
        return f"t{self.count}"

    def add(self, a, b):
        return self._let(f"{a} + {b}")

    def sub(self, a, b):
        return self._let(f"{a} - {b}")

    def mul(self, a, b):
        return self._let(f"{a} * {b}")

    def one_minus(self, a):
        return self._let(f"1.0f - {a}")

    def clip(self, a, limit: float):
        return self._let(f"fminf(fmaxf({a}, {_literal(-limit)}), {_literal(limit)})")

    def act(self, a, act: ir.Act):
        return self._let(activation_expr(a, act))

    def vector(self, name: str, values: np.ndarray):
        return f"{self.stem}_{name}[j]"  # the table written by tables()

    def state_matvec(self, a):
        target, lines = self.late(a)
        self.body.append(target)
        self.flush()
        self.lines += lines
        return "s->pre[LATE + j]"

    def flush(self) -> None:
        if self.body:
            self.lines += ["for (j = 0; j < H; ++j) {", *[f"    {l}" for l in self.body], "}"]
        self.body = []


def tables(sp) -> str:
    """The peephole vectors of a variant stage (per gate, so the loop reads ``<stem>_peephole_<gate>[j]``)."""
    layer = sp.stage
    if layer.peephole is None:
        return ""
    from .codegen import _array

    H = layer.hidden_size
    gates = ir.cell_spec(layer.cell).peephole_gates
    return "".join(
        _array(f"{sp.stem}_peephole_{g}", layer.peephole[k * H : (k + 1) * H])
        for k, g in enumerate(gates)
        if not (g == "f" and layer.input_forget)  # f = 1 - i reads no peephole (an unused table fails -Werror)
    )


def variant_recurrent(p, sp, matvec) -> list[str]:
    """The C of a variant cell: the fused mat-vec (but the late rows), then ``ir.cells.cell_update``.

    ``matvec(matrix_plan, keep_tile, y, z, z_offset, bias, tag)`` gives the mat-vec lines (codegen's, int8 included;
    ``tag`` names its scale variables)."""
    layer, H = sp.stage, sp.stage.hidden_size
    spec = ir.cell_spec(layer.cell)
    late = ir.cells.late_rows(layer)
    late_blocks = {spec.ir_rows.index(r) for r in late}
    m = sp.matrix

    def in_late(t) -> bool:
        return t.row // H in late_blocks

    lines = matvec(m, lambda t: not in_late(t), "s->pre", "a", sp.z_offset, True, "q")
    h = f"a[{sp.state_offset} + j]"
    c = f"s->cell[{sp.cell_offset} + j]" if layer.cell == "lstm" else None
    pre = {name: f"s->pre[{k * H} + j]" for k, name in enumerate(spec.ir_rows)}

    def late_lines(gated: str):
        # the gated state goes to the r block (read only by the late rows from here on), the late tiles read
        # it there: tile column col (state segment, col >= input_size) -> s->pre[r_block + col - input_size]
        r_off = spec.ir_rows.index("r") * H
        z_offset = r_off - layer.input_size
        calls = matvec(m, in_late, "s->pre", "s->pre", z_offset, False, "ql")
        return f"s->pre[{r_off} + j] = {gated};", [l for l in calls if not l.lstrip().startswith("memset")]

    ops = _COps(sp.stem, late_lines)
    states = ir.cells.cell_update(layer, ops, pre, (h, c) if c else (h,))
    ops.body += [f"{target} = {value};" for target, value in zip((h, c) if c else (h,), states)]
    ops.flush()
    late_offset = spec.ir_rows.index(late[0]) * H if late else 0
    body = [l.replace("LATE + j", f"{late_offset} + j") for l in ops.lines]
    head = [f"/* {layer.cell}{layer.describe_variant()}: libm activations */", "int j;", f"const int H = {H};"]
    return head + lines + body
