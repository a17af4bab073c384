"""TFLite for the cell variants (ir.cells, "cell variants"): ``ir.cells.cell_update`` in builtin ops. The
fused emitter of torch's cells (graphs._Stages.recurrent: one LOGISTIC over i, f, o) stays their path.

Every activation is composed from ops every interpreter here has (no LEAKY_RELU/ELU/HARD_SWISH
options to disagree on): SELECT_V2 on GREATER for the piecewise ones, EXP/LOG/ABS/DIV for the
smooth ones, MINIMUM/MAXIMUM for clips. A GRU with linear_before_reset=0 gets its ``n_h`` rows as
a second FULLY_CONNECTED over ``r * h`` (``_Prepared.late``, see graphs.prepare)."""

from __future__ import annotations

import numpy as np

from ... import ir


class _TfliteOps:
    """``ir.cells.CellOps`` as TFLite ops on [batch, H] tensors."""

    def __init__(self, w, tag: str, late):
        self.w, self.tag, self.state_matvec = w, tag, late
        self.count = 0

    def _name(self, what: str) -> str:
        self.count += 1
        return f"{self.tag}/{what}{self.count}"

    def scalar(self, v: float) -> int:
        return self.w.const("scalar", np.float32([v]))

    def _bin(self, code: str, a, b) -> int:
        return self.w.binary(code, a, b, self._name(code.lower()))

    def add(self, a, b):
        return self._bin("ADD", a, b)

    def sub(self, a, b):
        return self._bin("SUB", a, b)

    def mul(self, a, b):
        return self._bin("MUL", a, b)

    def one_minus(self, a):
        return self._bin("SUB", self.scalar(1.0), a)

    def clip(self, a, limit: float):
        return self._bin("MINIMUM", self._bin("MAXIMUM", a, self.scalar(-limit)), self.scalar(limit))

    def vector(self, name: str, values: np.ndarray):
        return self.w.const(name, np.asarray(values, np.float32))

    def _unary(self, code: str, a) -> int:
        return self.w.unary(code, a, self._name(code.lower()))

    def _where_positive(self, x, threshold: float, then, otherwise) -> int:
        """x > threshold ? then : otherwise."""
        cond = self.w.greater(x, self.scalar(threshold), self._name("greater"))
        return self.w.select(cond, then, otherwise, self._name("select"))

    def act(self, x, act: ir.Act):
        a, b, name = act.alpha, act.beta, act.name
        if name in ("relu", "tanh", "sigmoid"):
            return self._unary({"relu": "RELU", "tanh": "TANH", "sigmoid": "LOGISTIC"}[name], x)
        if name == "affine":
            return self.add(self.mul(x, self.scalar(a)), self.scalar(b))
        if name == "scaledtanh":
            return self.mul(self._unary("TANH", self.mul(x, self.scalar(b))), self.scalar(a))
        if name == "hardsigmoid":
            return self._bin(
                "MINIMUM",
                self._bin("MAXIMUM", self.add(self.mul(x, self.scalar(a)), self.scalar(b)), self.scalar(0.0)),
                self.scalar(1.0),
            )
        if name == "leakyrelu":  # x > 0 ? x : alpha x (equal at 0)
            return self._where_positive(x, 0.0, x, self.mul(x, self.scalar(a)))
        if name == "thresholdedrelu":
            return self._where_positive(x, a, x, self.mul(x, self.scalar(0.0)))
        if name == "elu":  # exp of min(x, 0) only: no overflow on the branch not taken
            neg = self._unary("EXP", self._bin("MINIMUM", x, self.scalar(0.0)))
            return self._where_positive(x, 0.0, x, self.mul(self.sub(neg, self.scalar(1.0)), self.scalar(a)))
        absx = self._unary("ABS", x)
        if name == "softsign":
            return self._bin("DIV", x, self.add(absx, self.scalar(1.0)))
        # softplus = max(x, 0) + log(1 + exp(-|x|))
        tail = self._unary("LOG", self.add(self._unary("EXP", self.mul(absx, self.scalar(-1.0))), self.scalar(1.0)))
        return self.add(self._bin("MAXIMUM", x, self.scalar(0.0)), tail)


def variant_recurrent(w, layer: ir.Recurrent, prepared, x: int, state, feedback, tag: str) -> tuple[int, ...]:
    """New state of a variant ``layer``; ``state`` None means zeros (the first step of the sequence model)."""
    H, spec = layer.hidden_size, ir.cell_spec(layer.cell)
    late = ir.cells.late_rows(layer)
    main = [r for r in spec.ir_rows if r not in late]
    h_prev = None if state is None else state[0]
    pieces = [x, h_prev] + ([feedback] if layer.feedback_size else [])
    pre = w.fully_connected_over(pieces, prepared, f"{tag}/pre")
    gates = w.split(pre, [H] * len(main), f"{tag}/gates") if len(main) > 1 else [pre]
    if state is None:
        zeros = w.const("zeros", np.zeros(H, np.float32))
        state = tuple(zeros for _ in spec.states)
    ops = _TfliteOps(w, tag, lambda gated: w.fully_connected(gated, prepared.late, f"{tag}/late"))
    return ir.cells.cell_update(layer, ops, dict(zip(main, gates)), tuple(state))
