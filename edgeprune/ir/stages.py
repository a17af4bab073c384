"""The stage kinds of an IR model: each maps a per-step vector to a per-step vector.

A stage declares everything a consumer needs: its input and output sizes, the streaming state it
keeps between steps (``state_sizes``), its prunable matrices (``matrices``) and its arrays for
serialisation (``arrays`` / ``from_arrays``). Adding a stage kind is a recipe:
docs/architecture.md, "Adding a stage".

Matrices are CSR; biases are optional (``None`` means none, i.e. zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import IRError
from .cells import CELLS, Act, cell_spec, default_activations
from .csr import CSR

ACTIVATIONS = ("none", "relu", "tanh", "sigmoid", "softmax")

# Views of the cell table (ir/cells.py) for callers that index by cell name: IR row blocks per cell.
IR_GATES = {name: spec.ir_gates for name, spec in CELLS.items()}
GATE_NAMES = {name: spec.ir_rows for name, spec in CELLS.items()}
RNN_ACTIVATIONS = ("tanh", "relu")


def check_vector(v: np.ndarray | None, n: int, where: str, optional: bool = False) -> None:
    if v is None:
        if optional:
            return
        raise IRError(f"{where}: missing")
    if v.shape != (n,):
        raise IRError(f"{where}: shape {list(v.shape)}, expected [{n}]")
    if not np.all(np.isfinite(v)):
        raise IRError(f"{where}: contains non-finite values (NaN or inf)")


def _check_activation(activation: str, where: str, allowed=ACTIVATIONS) -> None:
    if activation not in allowed:
        raise IRError(f"{where}: unknown activation '{activation}' (expected one of {', '.join(allowed)})")


def _f32(a) -> np.ndarray | None:
    return None if a is None else np.asarray(a, np.float32)


class _Stage:
    """Defaults for a stage without streaming state or matrices."""

    def state_sizes(self) -> tuple[int, ...]:
        return ()

    def matrices(self) -> dict[str, CSR]:
        return {}


def _check_vectors(where: str, **vectors: np.ndarray) -> None:
    """Per-feature vectors of one stage: non-empty, 1-D, equally long, finite."""
    first, size = next(iter(vectors.items()))
    if np.ndim(size) != 1 or np.size(size) < 1:
        raise IRError(f"{where}: {first} must be a non-empty vector")
    for name, v in vectors.items():
        check_vector(v, np.size(size), f"{where} {name}")


@dataclass
class Dense(_Stage):
    """``y = act(W x + b)``; W is [out, in]."""

    kind: ClassVar[str] = "dense"
    weight: CSR
    bias: np.ndarray | None = None
    activation: str = "none"

    @property
    def input_size(self) -> int:
        return int(self.weight.shape[1])

    @property
    def output_size(self) -> int:
        return int(self.weight.shape[0])

    def matrices(self) -> dict[str, CSR]:
        return {"weight": self.weight}

    def bias_or_zeros(self) -> np.ndarray:
        return np.zeros(self.output_size, np.float32) if self.bias is None else self.bias

    def validate(self, where: str) -> None:
        self.weight.validate(f"{where} weight")
        check_vector(self.bias, self.output_size, f"{where} bias", optional=True)
        _check_activation(self.activation, where)

    def attributes(self) -> dict:
        return {"activation": self.activation, "bias": self.bias is not None}

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.bias is None else {"bias": self.bias}

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> Dense:
        return cls(matrices["weight"], _f32(arrays.get("bias")), str(attrs.get("activation", "none")))

    def describe(self) -> str:
        act = "" if self.activation == "none" else f" {self.activation}"
        return f"dense {self.output_size}{act}"


@dataclass
class Conv1d(_Stage):
    """Causal 1-D convolution over time, stride 1.

    ``y_t = act(W [x_{t-(k-1)d} ; ... ; x_{t-d} ; x_t] + b)``: column ``tap * in + c`` of W reads
    channel ``c`` of the input ``(k - 1 - tap) * d`` steps ago (tap 0 is the oldest). Before the
    sequence start the inputs are zero (the causal left pad). State: the last ``(k-1)*d`` inputs.
    """

    kind: ClassVar[str] = "conv1d"
    in_channels: int
    kernel: int
    dilation: int
    weight: CSR  # [out, kernel * in_channels]
    bias: np.ndarray | None = None
    activation: str = "none"

    @property
    def input_size(self) -> int:
        return self.in_channels

    @property
    def output_size(self) -> int:
        return int(self.weight.shape[0])

    @property
    def history(self) -> int:
        """Past input vectors the stage keeps: (k-1) * d."""
        return (self.kernel - 1) * self.dilation

    def state_sizes(self) -> tuple[int, ...]:
        return (self.history * self.in_channels,) if self.history else ()

    def matrices(self) -> dict[str, CSR]:
        return {"weight": self.weight}

    def validate(self, where: str) -> None:
        if self.kernel < 1:
            raise IRError(f"{where}: conv1d kernel must be >= 1, got {self.kernel}")
        if self.dilation < 1:
            raise IRError(f"{where}: conv1d dilation must be >= 1, got {self.dilation}")
        if self.in_channels < 1:
            raise IRError(f"{where}: conv1d input channels must be >= 1")
        if self.weight.shape[1] != self.kernel * self.in_channels:
            raise IRError(
                f"{where}: weight has {self.weight.shape[1]} columns, expected kernel x inputs = "
                f"{self.kernel * self.in_channels}"
            )
        self.weight.validate(f"{where} weight")
        check_vector(self.bias, self.output_size, f"{where} bias", optional=True)
        _check_activation(self.activation, where, ("none", "relu", "tanh", "sigmoid"))

    def attributes(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "kernel": self.kernel,
            "dilation": self.dilation,
            "activation": self.activation,
            "bias": self.bias is not None,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.bias is None else {"bias": self.bias}

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> Conv1d:
        return cls(
            int(attrs["in_channels"]),
            int(attrs["kernel"]),
            int(attrs["dilation"]),
            matrices["weight"],
            _f32(arrays.get("bias")),
            str(attrs.get("activation", "none")),
        )

    def describe(self) -> str:
        act = "" if self.activation == "none" else f" {self.activation}"
        return f"conv1d {self.output_size} k{self.kernel}" + (f" d{self.dilation}" if self.dilation > 1 else "") + act


@dataclass
class Recurrent(_Stage):
    """One recurrent layer: one fused gate matrix in CSR over ``z_t = [x_t ; h_{t-1} ; f_{t-1}]``.

    ``x_t`` is the stage input, ``h_{t-1}`` its own previous state and ``f_{t-1}`` the previous
    state of the NEXT stage (top-down feedback; 0 columns without it). Rows per ``GATE_NAMES``:
    LSTM ``i, f, g, o`` with bias ``b_ih + b_hh``; GRU ``r, z, n_x, n_h`` (``n_x`` reads only input
    and feedback columns, ``n_h`` only state columns, since ``n = tanh(n_x + r * n_h)``); RNN ``h``
    with ``activation`` tanh or relu. Every gate order lives in the cell table, ``ir.cells``.
    """

    kind: ClassVar[str] = "recurrent"
    cell: str
    input_size: int
    hidden_size: int
    feedback_size: int
    weight: CSR  # [cells.CELLS[cell].ir_gates * hidden_size, input_size + hidden_size + feedback_size]
    bias: np.ndarray | None  # float32 [rows], or None: no bias
    activation: str = "tanh"  # rnn only: tanh | relu
    # The variants of the ONNX ops (ir.cells, "cell variants"); the defaults are torch's cells.
    activations: tuple[Act, ...] | None = None  # one per slot (ONNX f, g, h); None: the defaults
    clip: float | None = None  # gate pre-activations clipped to [-clip, clip]
    input_forget: bool = False  # lstm: f = 1 - i
    linear_before_reset: bool = True  # gru: False applies r to h before the recurrent mat-vec of n
    peephole: np.ndarray | None = None  # lstm: [3 * hidden] in ONNX's order i, o, f

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def cell_activations(self) -> tuple[Act, ...]:
        return self.activations if self.activations is not None else default_activations(self.cell, self.activation)

    @property
    def default_cell(self) -> bool:
        """torch's cell (RNN tanh or relu): the backends' fused fast paths apply."""
        return (
            self.cell_activations() == default_activations(self.cell, self.activation)
            and self.clip is None
            and not self.input_forget
            and self.linear_before_reset
            and self.peephole is None
        )

    @property
    def rows(self) -> int:
        return cell_spec(self.cell).ir_gates * self.hidden_size

    @property
    def cols(self) -> int:
        return self.input_size + self.hidden_size + self.feedback_size

    def column_slices(self) -> dict[str, slice]:
        i, h = self.input_size, self.hidden_size
        return {"input": slice(0, i), "state": slice(i, i + h), "feedback": slice(i + h, self.cols)}

    def gate_rows(self, gate: str) -> slice:
        g = cell_spec(self.cell).ir_rows.index(gate)
        return slice(g * self.hidden_size, (g + 1) * self.hidden_size)

    def state_sizes(self) -> tuple[int, ...]:
        return tuple(self.hidden_size for _ in cell_spec(self.cell).states)

    def matrices(self) -> dict[str, CSR]:
        return {"weight": self.weight}

    def bias_or_zeros(self) -> np.ndarray:
        return np.zeros(self.rows, np.float32) if self.bias is None else self.bias

    def validate(self, where: str) -> None:
        if self.cell not in CELLS:
            raise IRError(f"{where}: unknown cell '{self.cell}' (expected one of {', '.join(CELLS)})")
        if self.hidden_size < 1 or self.input_size < 1:
            raise IRError(f"{where}: sizes must be positive")
        if tuple(self.weight.shape) != (self.rows, self.cols):
            raise IRError(f"{where}: weight shape {list(self.weight.shape)}, expected {[self.rows, self.cols]}")
        self.weight.validate(f"{where} weight")
        check_vector(self.bias, self.rows, f"{where} bias", optional=True)
        if self.cell == "rnn":
            _check_activation(self.activation, where, RNN_ACTIVATIONS)
        elif self.activation != "tanh":
            raise IRError(f"{where}: {self.cell} has fixed activations (got '{self.activation}')")
        if self.cell == "gru":
            self._check_gru_blocks(where)
        self._check_variant(where)

    def _check_variant(self, where: str) -> None:
        from .cells import ACTIVATION_PARAMS

        spec = cell_spec(self.cell)
        if self.activations is not None:
            if self.activation != "tanh":
                raise IRError(f"{where}: give the RNN activation either as activation or as activations")
            if len(self.activations) != len(spec.act_slots) or any(
                a.name not in ACTIVATION_PARAMS or not np.isfinite([a.alpha, a.beta]).all() for a in self.activations
            ):
                raise IRError(
                    f"{where}: activations must be {len(spec.act_slots)} known activations with finite values"
                )
        if self.clip is not None and not (np.isfinite(self.clip) and self.clip > 0):
            raise IRError(f"{where}: clip must be a positive number, got {self.clip}")
        if self.input_forget and self.cell != "lstm":
            raise IRError(f"{where}: input_forget is an LSTM option")
        if not self.linear_before_reset and self.cell != "gru":
            raise IRError(f"{where}: linear_before_reset is a GRU option")
        if self.peephole is not None:
            if self.cell != "lstm":
                raise IRError(f"{where}: peepholes are an LSTM option")
            check_vector(self.peephole, 3 * self.hidden_size, f"{where} peephole")

    def _check_gru_blocks(self, where: str) -> None:
        cols = self.column_slices()
        indptr, indices = self.weight.indptr, self.weight.indices
        for gate in ("n_x", "n_h"):
            rows = self.gate_rows(gate)
            seg = indices[indptr[rows.start] : indptr[rows.stop]]
            in_state = (seg >= cols["state"].start) & (seg < cols["state"].stop)
            if np.any(in_state if gate == "n_x" else ~in_state):
                raise IRError(f"{where}: GRU gate {gate} has weights in columns it must not read")

    def attributes(self) -> dict:
        return {
            "cell": self.cell,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "feedback_size": self.feedback_size,
            "activation": self.activation,
            "bias": self.bias is not None,
            **self._variant_attributes(),
        }

    def _variant_attributes(self) -> dict:
        # only what differs from the default cell, so that files of default cells stay as they were
        out: dict = {}
        if self.activations is not None:
            out["activations"] = [a.to_json() for a in self.activations]
        if self.clip is not None:
            out["clip"] = float(self.clip)
        if self.input_forget:
            out["input_forget"] = True
        if not self.linear_before_reset:
            out["linear_before_reset"] = False
        if self.peephole is not None:
            out["peephole"] = True
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {} if self.bias is None else {"bias": self.bias}
        if self.peephole is not None:
            out["peephole"] = self.peephole
        return out

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> Recurrent:
        acts = attrs.get("activations")
        if attrs.get("peephole") and "peephole" not in arrays:
            raise IRError(f"recurrent stage: attribute peephole set but no peephole array ({attrs.get('cell')})")
        return cls(
            str(attrs["cell"]),
            int(attrs["input_size"]),
            int(attrs["hidden_size"]),
            int(attrs.get("feedback_size", 0)),
            matrices["weight"],
            _f32(arrays.get("bias")),
            str(attrs.get("activation", "tanh")),
            activations=None if acts is None else tuple(Act.from_json(a) for a in acts),
            clip=None if attrs.get("clip") is None else float(attrs["clip"]),
            input_forget=bool(attrs.get("input_forget", False)),
            linear_before_reset=bool(attrs.get("linear_before_reset", True)),
            peephole=_f32(arrays.get("peephole")),
        )

    def describe_variant(self) -> str:
        """The non-default options, e.g. ' linear_before_reset=0 clip=3' ('' for torch's cells)."""
        parts = []
        if self.activations is not None:
            parts.append("activations=" + ",".join(a.describe() for a in self.activations))
        if self.clip is not None:
            parts.append(f"clip={self.clip:g}")
        if self.input_forget:
            parts.append("input_forget")
        if not self.linear_before_reset:
            parts.append("linear_before_reset=0")
        if self.peephole is not None:
            parts.append("peepholes")
        return "".join(" " + p for p in parts)

    def describe(self) -> str:
        extra = (" relu" if self.activation == "relu" else "") + (" no-bias" if self.bias is None else "")
        extra += self.describe_variant()
        return f"{self.cell} {self.hidden_size}{extra}" + (" +feedback" if self.feedback_size else "")


Layer = Recurrent  # the v1 name of a recurrent stage


@dataclass
class LayerNorm(_Stage):
    """``y = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta`` over the features of one step."""

    kind: ClassVar[str] = "layernorm"
    gamma: np.ndarray
    beta: np.ndarray
    eps: float = 1e-5

    @property
    def input_size(self) -> int:
        return int(self.gamma.shape[0])

    output_size = input_size

    def validate(self, where: str) -> None:
        _check_vectors(where, gamma=self.gamma, beta=self.beta)
        if not (np.isfinite(self.eps) and self.eps > 0):
            raise IRError(f"{where}: eps must be a positive number, got {self.eps}")

    def attributes(self) -> dict:
        return {"size": self.input_size, "eps": float(self.eps)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"gamma": self.gamma, "beta": self.beta}

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> LayerNorm:
        return cls(_f32(arrays["gamma"]), _f32(arrays["beta"]), float(attrs.get("eps", 1e-5)))

    def describe(self) -> str:
        return f"layernorm {self.input_size}"


@dataclass
class Normalize(_Stage):
    """Per-feature affine map ``y = x * scale + shift`` (standardisation fitted on training data)."""

    kind: ClassVar[str] = "normalize"
    scale: np.ndarray
    shift: np.ndarray

    @property
    def input_size(self) -> int:
        return int(self.scale.shape[0])

    output_size = input_size

    def validate(self, where: str) -> None:
        _check_vectors(where, scale=self.scale, shift=self.shift)

    def attributes(self) -> dict:
        return {"size": self.input_size}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale, "shift": self.shift}

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> Normalize:
        return cls(_f32(arrays["scale"]), _f32(arrays["shift"]))

    def describe(self) -> str:
        return f"normalize {self.input_size}"


POOL_MODES = ("mean", "max")


@dataclass
class Pool(_Stage):
    """Running mean or max over time: after step t, the mean/max of the stage inputs 1..t.

    State: the running sum (mean) or max, and the step count. Valid only with output ``last``.
    """

    kind: ClassVar[str] = "pool"
    size: int
    mode: str = "mean"

    @property
    def input_size(self) -> int:
        return self.size

    output_size = input_size

    def state_sizes(self) -> tuple[int, ...]:
        return (self.size, 1)  # accumulator, steps seen

    def validate(self, where: str) -> None:
        if self.size < 1:
            raise IRError(f"{where}: pool size must be positive")
        if self.mode not in POOL_MODES:
            raise IRError(f"{where}: unknown pool mode '{self.mode}' (expected mean or max)")

    def attributes(self) -> dict:
        return {"size": self.size, "mode": self.mode}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_arrays(cls, attrs: dict, matrices: dict[str, CSR], arrays: dict[str, np.ndarray]) -> Pool:
        return cls(int(attrs["size"]), str(attrs.get("mode", "mean")))

    def describe(self) -> str:
        return f"{self.mode}-pool"


STAGE_TYPES = {cls.kind: cls for cls in (Dense, Conv1d, Recurrent, LayerNorm, Normalize, Pool)}
Stage = Dense | Conv1d | Recurrent | LayerNorm | Normalize | Pool
