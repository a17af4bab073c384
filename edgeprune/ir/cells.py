"""The cell table: every fact about a recurrent cell's gates and states that more than one module needs.

One ``CellSpec`` per cell in ``CELLS``; the models, the IR, the ONNX exporter and importer, the
TFLite writer and the graph views all read their gate orders from here, so a gate order is written
once. Orders are tuples of block names; ``block_order`` turns two orders into the index map that
moves row blocks from one to the other, and ``block_rows`` into row indices.

Gate names are torch's throughout: LSTM ``i, f, g, o`` (ONNX and TFLite call ``g`` "c"), GRU
``r, z, n`` (ONNX calls ``n`` "h"), RNN ``h``. The IR keeps the GRU candidate's input and state
halves apart (rows ``n_x`` and ``n_h``, because the candidate is ``tanh(n_x + r * n_h)``); a row
named ``<gate>_x`` / ``<gate>_h`` is that gate read from the input (and feedback) columns / the
state columns only, see ``CellSpec.ir_block``.

To add a fact (the IR v2 options, say), add a field with a default and fill it in ``CELLS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import IRError

SIDES = ("input", "state")  # the two halves of a recurrent layer's weights (torch weight_ih / weight_hh)
_SIDE_SUFFIX = {"input": "_x", "state": "_h"}


@dataclass(frozen=True)
class CellSpec:
    name: str  # "lstm", "gru", "rnn": the name in configs, checkpoints and the IR
    torch_gates: tuple[str, ...]  # row blocks of torch's weight_ih / weight_hh / bias, in torch's order
    ir_rows: tuple[str, ...]  # row blocks of the IR's fused gate matrix over [x ; h ; feedback]
    states: tuple[str, ...]  # state vectors carried between steps, each hidden_size long
    onnx_op: str  # the standard ONNX recurrent op
    onnx_gates: tuple[str, ...]  # row blocks of that op's W / R / B, in ONNX's order (torch names)
    onnx_activations: tuple[str, ...]  # the op's default ``activations`` (others: a cell variant, below)
    tflite_rows: tuple[str, ...]  # IR row blocks in the order the TFLite cell's FULLY_CONNECTED emits them
    act_slots: tuple[str, ...] = ("f",)  # ONNX's names of the cell's activation slots (LSTM f, g, h)
    peephole_gates: tuple[str, ...] = ()  # ONNX's P blocks, in ONNX's order (LSTM i, o, f)

    @property
    def ir_gates(self) -> int:
        """Row blocks of the IR's fused matrix (rows = ir_gates * hidden_size)."""
        return len(self.ir_rows)

    @property
    def torch_gate_count(self) -> int:
        return len(self.torch_gates)

    def ir_block(self, gate: str, side: str) -> int:
        """Index of the IR row block holding torch gate ``gate`` as read from ``side`` ("input" or "state").

        Most gates are one IR block read from both sides; a gate whose halves stay apart has one
        block per side (GRU ``n`` -> ``n_x``, ``n_h``).
        """
        if gate in self.ir_rows:
            return self.ir_rows.index(gate)
        return self.ir_rows.index(gate + _SIDE_SUFFIX[side])

    def ir_row_source(self, row: str) -> tuple[str, str | None]:
        """The torch gate an IR row block comes from and the only side it reads (None = both)."""
        for side, suffix in _SIDE_SUFFIX.items():
            if row.endswith(suffix) and row[: -len(suffix)] in self.torch_gates:
                return row[: -len(suffix)], side
        return row, None


CELLS: dict[str, CellSpec] = {
    spec.name: spec
    for spec in (
        CellSpec(
            "lstm",
            torch_gates=("i", "f", "g", "o"),
            ir_rows=("i", "f", "g", "o"),
            states=("h", "c"),
            onnx_op="LSTM",
            onnx_gates=("i", "o", "f", "g"),
            onnx_activations=("Sigmoid", "Tanh", "Tanh"),
            # one LOGISTIC covers i, f, o; the candidate g is last
            tflite_rows=("i", "f", "o", "g"),
            act_slots=("f", "g", "h"),
            peephole_gates=("i", "o", "f"),
        ),
        CellSpec(
            "gru",
            torch_gates=("r", "z", "n"),
            ir_rows=("r", "z", "n_x", "n_h"),
            states=("h",),
            onnx_op="GRU",
            onnx_gates=("z", "r", "n"),
            onnx_activations=("Sigmoid", "Tanh"),
            tflite_rows=("r", "z", "n_x", "n_h"),
            act_slots=("f", "g"),
        ),
        CellSpec(
            "rnn",
            torch_gates=("h",),
            ir_rows=("h",),
            states=("h",),
            onnx_op="RNN",
            onnx_gates=("h",),
            onnx_activations=("Tanh",),
            tflite_rows=("h",),
        ),
    )
}
ONNX_OPS = {spec.onnx_op: spec for spec in CELLS.values()}


def cell_spec(name: str) -> CellSpec:
    """The spec of cell ``name``; an unknown name is an ``IRError`` listing the cells."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise IRError(f"unknown cell '{name}' (expected one of {', '.join(CELLS)})") from None


def block_order(source: tuple[str, ...], target: tuple[str, ...]) -> tuple[int, ...]:
    """For each block of ``target``, its index in ``source`` (target block j = source block result[j])."""
    missing = [b for b in target if b not in source]
    if missing:
        raise IRError(f"gate block(s) {', '.join(missing)} not in the order {', '.join(source)}")
    return tuple(source.index(b) for b in target)


def block_rows(blocks, size: int) -> np.ndarray:
    """Row indices of the ``size``-row blocks ``blocks``, concatenated (e.g. to reorder a gate matrix)."""
    return np.concatenate([np.arange(b * size, (b + 1) * size) for b in blocks]).astype(np.intp)


# --- cell variants: the ONNX recurrent ops' attributes beyond the defaults --------------------------
#
# A recurrent stage may carry non-default activations (per slot, ONNX's f/g/h), a clip of the gate
# pre-activations, LSTM peepholes and a coupled input-forget gate, and a GRU that applies its reset
# gate before the recurrent mat-vec (linear_before_reset=0). ``cell_update`` below is the one
# description of the state update; every backend runs it through its own small set of elementwise
# ops (``CellOps``), so a variant's formula is written here only.

# name -> (uses alpha, uses beta, default alpha, default beta); a None default must be given: ONNX says
# "the operator's defaults" but Affine and ScaledTanh have no operator any more and onnxruntime uses 0.
ACTIVATION_PARAMS: dict[str, tuple[bool, bool, float | None, float | None]] = {
    "relu": (False, False, None, None),
    "tanh": (False, False, None, None),
    "sigmoid": (False, False, None, None),
    "affine": (True, True, None, None),
    "leakyrelu": (True, False, 0.01, None),
    "thresholdedrelu": (True, False, 1.0, None),
    "scaledtanh": (True, True, None, None),
    "hardsigmoid": (True, True, 0.2, 0.5),
    "elu": (True, False, 1.0, None),
    "softsign": (False, False, None, None),
    "softplus": (False, False, None, None),
}
ONNX_ACTIVATION_NAMES = {
    n.lower(): n
    for n in ("Relu Tanh Sigmoid Affine LeakyRelu ThresholdedRelu ScaledTanh HardSigmoid Elu Softsign Softplus".split())
}


@dataclass(frozen=True)
class Act:
    """One activation of a cell slot: ``name`` (lower-case ONNX name) with its alpha and beta (0 if unused)."""

    name: str
    alpha: float = 0.0
    beta: float = 0.0

    def to_json(self) -> list:
        return [self.name, self.alpha, self.beta]

    @classmethod
    def from_json(cls, item) -> Act:
        name, alpha, beta = item
        return cls(str(name), float(alpha), float(beta))

    def describe(self) -> str:
        uses_a, uses_b, _, _ = ACTIVATION_PARAMS[self.name]
        args = [f"{v:g}" for v, used in ((self.alpha, uses_a), (self.beta, uses_b)) if used]
        return self.name + (f"({', '.join(args)})" if args else "")


def default_activations(cell: str, rnn_activation: str = "tanh") -> tuple[Act, ...]:
    if cell == "rnn":
        return (Act(rnn_activation),)
    return tuple(Act(a.lower()) for a in cell_spec(cell).onnx_activations)


def parse_activations(cell: str, names, alphas, betas) -> tuple[Act, ...]:
    """ONNX's ``activations`` / ``activation_alpha`` / ``activation_beta`` -> one ``Act`` per slot.

    The alphas (betas) are consumed in slot order by the activations that take one, as onnxruntime
    does; a missing value takes the operator's default. Raises IRError naming the problem.
    """
    slots = cell_spec(cell).act_slots
    names = list(names) if names is not None else [a for a in cell_spec(cell).onnx_activations]
    if len(names) != len(slots):
        raise IRError(f"activations={names}: expected {len(slots)} (one per slot {', '.join(slots)}; forward only)")
    alphas, betas = list(alphas or []), list(betas or [])
    out = []
    for name in names:
        key = str(name).lower()
        if key not in ACTIVATION_PARAMS:
            raise IRError(f"activation '{name}' is not one of {', '.join(ONNX_ACTIVATION_NAMES.values())}")
        uses_a, uses_b, default_a, default_b = ACTIVATION_PARAMS[key]
        values = []
        for uses, given, default, what in ((uses_a, alphas, default_a, "alpha"), (uses_b, betas, default_b, "beta")):
            if not uses:
                values.append(0.0)
            elif given:
                values.append(float(np.float32(given.pop(0))))
            elif default is None:
                raise IRError(f"activation {name} needs its activation_{what} (runtimes disagree on a default)")
            else:
                values.append(float(np.float32(default)))
        out.append(Act(key, *values))
    if alphas or betas:
        raise IRError(f"activation_alpha/activation_beta have more values than the activations {names} take")
    return tuple(out)


def onnx_activation_attrs(acts: tuple[Act, ...]) -> dict:
    """The ONNX attributes that give ``acts`` (the inverse of ``parse_activations``)."""
    attrs: dict = {"activations": [ONNX_ACTIVATION_NAMES[a.name] for a in acts]}
    alphas = [a.alpha for a in acts if ACTIVATION_PARAMS[a.name][0]]
    betas = [a.beta for a in acts if ACTIVATION_PARAMS[a.name][1]]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def activate_numpy(x: np.ndarray, act: Act) -> np.ndarray:
    """The activation in numpy, the formulas onnxruntime uses (the IR reference and every test)."""
    a, b, name = act.alpha, act.beta, act.name
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if name == "affine":
        return a * x + b
    if name == "leakyrelu":
        return np.where(x >= 0, x, a * x)
    if name == "thresholdedrelu":
        return np.where(x > a, x, 0.0)
    if name == "scaledtanh":
        return a * np.tanh(b * x)
    if name == "hardsigmoid":
        return np.clip(a * x + b, 0.0, 1.0)
    if name == "elu":
        return np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0))
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "softplus":
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))
    raise IRError(f"unknown activation '{name}'")


class CellOps:
    """The elementwise ops a backend gives ``cell_update`` (handles are whatever the backend uses:
    arrays, tensor names, C expressions). ``state_matvec(x)`` is the late rows (GRU ``n_h`` with
    linear_before_reset=0) applied to ``x`` instead of the state, their bias included."""

    def add(self, a, b): ...
    def sub(self, a, b): ...
    def mul(self, a, b): ...
    def one_minus(self, a): ...
    def clip(self, a, limit: float): ...
    def act(self, a, act: Act): ...
    def vector(self, name: str, values: np.ndarray): ...
    def state_matvec(self, a): ...


def late_rows(layer) -> tuple[str, ...]:
    """IR row blocks computed after the cell's first gates, over a gated state (GRU lbr=0: ``n_h`` on r*h)."""
    return ("n_h",) if layer.cell == "gru" and not layer.linear_before_reset else ()


def cell_update(layer, ops: CellOps, pre: dict, state: tuple) -> tuple:
    """The new states of recurrent stage ``layer`` (its ``cell_activations``, ``clip``, ``peephole``,
    ``input_forget``, ``linear_before_reset``) from its gate pre-activations ``pre`` (IR row name ->
    handle) and its states, as ONNX defines the ops (peepholes before the clip; the clip on every
    activation's input except the cell state's; ``f = 1 - i`` with input_forget)."""
    acts, H = layer.cell_activations(), layer.hidden_size

    def gate(x, act):
        return ops.act(x if layer.clip is None else ops.clip(x, layer.clip), act)

    if layer.cell == "rnn":
        return (gate(pre["h"], acts[0]),)
    if layer.cell == "gru":
        f_act, g_act = acts
        h = state[0]
        r = gate(pre["r"], f_act)
        n_h = ops.mul(r, pre["n_h"]) if layer.linear_before_reset else ops.state_matvec(ops.mul(r, h))
        z = gate(pre["z"], f_act)
        n = gate(ops.add(pre["n_x"], n_h), g_act)
        return (ops.add(n, ops.mul(z, ops.sub(h, n))),)
    f_act, g_act, h_act = acts
    c = state[1]
    gates = cell_spec("lstm").peephole_gates

    def peep(x, gate_name, cell_state):
        if layer.peephole is None:
            return x
        k = gates.index(gate_name)
        p = ops.vector(f"peephole_{gate_name}", layer.peephole[k * H : (k + 1) * H])
        return ops.add(x, ops.mul(p, cell_state))

    i = gate(peep(pre["i"], "i", c), f_act)
    f = ops.one_minus(i) if layer.input_forget else gate(peep(pre["f"], "f", c), f_act)
    c_new = ops.add(ops.mul(f, c), ops.mul(i, gate(pre["g"], g_act)))
    o = gate(peep(pre["o"], "o", c_new), f_act)
    return (ops.mul(o, ops.act(c_new, h_act)), c_new)
