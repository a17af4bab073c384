"""Model specifications: the chain of stages a torch model is built from, torch-free.

A spec is what ``edgeprune train --model`` parses and what a checkpoint records. The text syntax is
one stage per comma, fields separated by colons, the kind first::

    dense:64:relu,gru:64,dense:32:relu,dense:12        keyword spotting
    conv:32:k3:d2:relu,gru:64,dense                    causal Conv1d front-end; last size = classes
    lstm:128:fb,lstm:64,dense                          top-down feedback from the next layer
    normalize,gru:48,gru:48,dense:9:sigmoid            every-step regression (with --outputs every)
    rnn:64:relu:nobias,layernorm,pool:mean,dense:10:softmax

Fields: an integer is the stage's size (units, channels, hidden size); ``k3``/``d2`` a conv kernel
and dilation; ``relu|tanh|sigmoid|softmax|none`` the activation (RNN: tanh or relu); ``nobias``;
``fb`` feedback into a recurrent stage from the recurrent stage right after it; ``mean|max`` the
pool mode; ``eps=1e-5`` LayerNorm's epsilon. ``normalize``, ``layernorm`` and ``pool`` keep the
size. The last dense stage may omit its size: it is the number of classes (or targets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .errors import ModelError
from .ir.cells import CELLS

RECURRENT = ("lstm", "gru", "rnn")
KINDS = ("dense", "conv", *RECURRENT, "layernorm", "normalize", "pool")
ACTIVATIONS = ("none", "relu", "tanh", "sigmoid", "softmax")
# Gate blocks of torch's weight_ih / weight_hh per cell (from the cell table, ir/cells.py)
CELL_GATES = {name: spec.torch_gate_count for name, spec in CELLS.items()}
OUTPUTS = ("last", "every")
TASKS = ("classify", "regress")


@dataclass(frozen=True)
class StageSpec:
    kind: str
    size: int = 0  # output units / channels / hidden size; 0 = keeps its input size
    activation: str = "none"  # rnn: tanh | relu (default tanh); lstm/gru: fixed
    kernel: int = 1
    dilation: int = 1
    bias: bool = True
    feedback: bool = False
    mode: str = "mean"
    eps: float = 1e-5

    @property
    def recurrent(self) -> bool:
        return self.kind in RECURRENT

    def text(self) -> str:
        parts = [self.kind]
        if self.size and self.kind in ("dense", "conv", *RECURRENT):
            parts.append(str(self.size))
        if self.kind == "conv":
            parts += [f"k{self.kernel}"] + ([f"d{self.dilation}"] if self.dilation != 1 else [])
        if self.activation != "none" and not (self.kind == "rnn" and self.activation == "tanh"):
            parts.append(self.activation)
        if not self.bias:
            parts.append("nobias")
        if self.feedback:
            parts.append("fb")
        if self.kind == "pool":
            parts.append(self.mode)
        if self.kind == "layernorm" and self.eps != 1e-5:
            parts.append(f"eps={self.eps:g}")
        return ":".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """A chain of stages over ``input_size`` features; ``output`` last|every; ``task`` classify|regress."""

    input_size: int
    stages: tuple[StageSpec, ...]
    output: str = "last"
    task: str = "classify"
    sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)  # each stage's output size

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(self.stages))
        if self.input_size < 1:
            raise ModelError(f"input size must be positive, got {self.input_size}")
        if not self.stages:
            raise ModelError("a model needs at least one stage")
        if self.output not in OUTPUTS:
            raise ModelError(f"unknown output mode '{self.output}' (choose last or every)")
        if self.task not in TASKS:
            raise ModelError(f"unknown task '{self.task}' (choose classify or regress)")
        sizes, width, pooled = [], self.input_size, None
        for i, s in enumerate(self.stages):
            where = f"stage {i + 1} ({s.text()})"
            if s.kind not in KINDS:
                raise ModelError(f"{where}: unknown stage kind '{s.kind}' (choose {', '.join(KINDS)})")
            if s.kind in ("dense", "conv", *RECURRENT) and s.size < 1:
                raise ModelError(f"{where}: needs a positive size")
            if s.kind == "conv" and (s.kernel < 1 or s.dilation < 1):
                raise ModelError(f"{where}: conv kernel and dilation must be >= 1")
            allowed = {
                "rnn": ("tanh", "relu"),
                "lstm": ("none",),
                "gru": ("none",),
                "layernorm": ("none",),
                "normalize": ("none",),
                "pool": ("none",),
                "conv": ACTIVATIONS[:-1],
            }.get(s.kind, ACTIVATIONS)
            if s.activation not in allowed:
                raise ModelError(f"{where}: activation '{s.activation}' is not allowed here")
            if s.activation == "softmax" and i + 1 < len(self.stages):
                raise ModelError(f"{where}: softmax is allowed only on the last stage")
            if s.feedback and not (s.recurrent and i + 1 < len(self.stages) and self.stages[i + 1].recurrent):
                raise ModelError(f"{where}: feedback needs a recurrent stage right after it")
            if s.kind == "pool":
                if s.mode not in ("mean", "max"):
                    raise ModelError(f"{where}: pool mode must be mean or max")
                if self.output != "last":
                    raise ModelError(f"{where}: pooling over time needs --outputs last")
                pooled = where
            elif pooled and s.kind not in ("dense", "layernorm", "normalize"):
                raise ModelError(f"{where}: cannot follow {pooled}")
            if s.kind == "layernorm" and not s.eps > 0:
                raise ModelError(f"{where}: eps must be positive")
            width = s.size if s.kind in ("dense", "conv", *RECURRENT) else width
            sizes.append(width)
        object.__setattr__(self, "sizes", tuple(sizes))

    # -- the v1 view (recurrent layers + a linear head) ------------------------------------------
    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    num_classes = output_size

    @property
    def recurrent_stages(self) -> list[StageSpec]:
        return [s for s in self.stages if s.recurrent]

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(s.size for s in self.recurrent_stages)

    @property
    def num_layers(self) -> int:
        return len(self.recurrent_stages)

    @property
    def cell(self) -> str | None:
        """The recurrent cell kind when all recurrent stages share one, else None."""
        kinds = {s.kind for s in self.recurrent_stages}
        return kinds.pop() if len(kinds) == 1 else None

    @property
    def feedback(self) -> bool:
        return any(s.feedback for s in self.stages)

    def stage_input_size(self, i: int) -> int:
        return self.input_size if i == 0 else self.sizes[i - 1]

    def has_head(self) -> bool:
        return self.stages[-1].kind == "dense"

    def stage_names(self) -> list[str]:
        """``layers.{i}`` for every stage but a final dense one, which is ``head`` (v1 names)."""
        body = len(self.stages) - (1 if self.has_head() else 0)
        return [f"layers.{i}" for i in range(body)] + (["head"] if self.has_head() else [])

    # -- text and dicts --------------------------------------------------------------------------
    def text(self) -> str:
        return ",".join(s.text() for s in self.stages)

    def is_v1_shape(self) -> bool:
        """One cell kind of recurrent layers read at the last step by a linear head (the v1 models)."""
        return bool(
            self.cell
            and all(s.recurrent and s.bias and s.activation in ("none", "tanh") for s in self.stages[:-1])
            and self.has_head()
            and self.stages[-1].activation == "none"
            and self.output == "last"
            and self.task == "classify"
        )

    def describe(self) -> str:
        cell = self.cell
        if self.is_v1_shape():
            sizes = "x".join(str(h) for h in self.hidden_sizes)
            fb = " + top-down feedback" if self.feedback else ""
            return f"{cell.upper()} {sizes}{fb}, {self.input_size} inputs, {self.output_size} classes"
        what = "classes" if self.task == "classify" else "outputs"
        per = ", every step" if self.output == "every" else ""
        return f"{self.text()}; {self.input_size} inputs, {self.output_size} {what}{per}"

    def to_dict(self) -> dict:
        return {
            "input_size": self.input_size,
            "output": self.output,
            "task": self.task,
            "stages": [asdict(s) for s in self.stages],
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """A spec as ``to_dict`` wrote it, or a v1 config (cell, input_size, hidden_sizes, num_classes)."""
        v2_fields, v1_fields = (
            {"input_size", "output", "task", "stages"},
            {"cell", "input_size", "hidden_sizes", "num_classes", "feedback"},
        )
        if not isinstance(d, dict):
            raise ModelError("invalid model config: not a table")
        stray = sorted(set(d) - (v2_fields if "stages" in d else v1_fields))
        if stray:  # a damaged or foreign config: never ignore what we do not understand
            raise ModelError(f"invalid model config: unknown field '{stray[0]}'")
        try:
            if "stages" not in d:
                return ModelConfig(
                    str(d["cell"]),
                    int(d["input_size"]),
                    tuple(d["hidden_sizes"]),
                    int(d["num_classes"]),
                    bool(d.get("feedback", False)),
                )
            stages = tuple(_stage_from_dict(s) for s in d["stages"])
            return cls(int(d["input_size"]), stages, str(d.get("output", "last")), str(d.get("task", "classify")))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid model config: {e}") from None


_FIELD_TYPES = {
    "kind": str,
    "size": int,
    "activation": str,
    "kernel": int,
    "dilation": int,
    "bias": bool,
    "feedback": bool,
    "mode": str,
    "eps": (float, int),
}


def _stage_from_dict(s) -> StageSpec:
    """A stage as ``asdict`` wrote it; anything else (a damaged file) is a one-line ModelError."""
    if not isinstance(s, dict):
        raise ModelError(f"invalid model config: a stage is {type(s).__name__}, not a table")
    for key, value in s.items():
        want = _FIELD_TYPES.get(key)
        if want is None:
            raise ModelError(f"invalid model config: unknown stage field '{key}'")
        if isinstance(value, bool) != (want is bool) or not isinstance(value, want):
            raise ModelError(f"invalid model config: stage field '{key}' is {type(value).__name__}")
    return StageSpec(**s)


def ModelConfig(cell: str, input_size: int, hidden_sizes, num_classes: int, feedback: bool = False) -> ModelSpec:  # noqa: N802
    """The v1 shape: ``cell`` layers of ``hidden_sizes``, top-down feedback optional, a linear head."""
    if cell not in RECURRENT:
        raise ModelError(f"unknown cell '{cell}' (choose {', '.join(RECURRENT)})")
    hidden_sizes = tuple(int(h) for h in hidden_sizes)
    if not hidden_sizes or min(hidden_sizes) < 1:
        raise ModelError("hidden sizes must be positive and at least one layer is needed")
    if int(num_classes) < 1:
        raise ModelError("input size and number of classes must be positive")
    if feedback and len(hidden_sizes) < 2:
        raise ModelError("top-down feedback needs at least 2 layers")
    act = "tanh" if cell == "rnn" else "none"
    stages = [
        StageSpec(cell, h, act, feedback=feedback and l + 1 < len(hidden_sizes)) for l, h in enumerate(hidden_sizes)
    ]
    return ModelSpec(int(input_size), (*stages, StageSpec("dense", int(num_classes))))


def parse(
    text: str, input_size: int, output_size: int | None = None, *, output: str = "last", task: str = "classify"
) -> ModelSpec:
    """Parse the ``--model`` syntax (module docstring); a final size-less dense gets ``output_size``."""
    stages = []
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise ModelError(f"--model: empty stage in '{text}'")
    for n, item in enumerate(items):
        kind, *fields = [f.strip().lower() for f in item.split(":")]
        kind = {"conv1d": "conv", "linear": "dense"}.get(kind, kind)
        if kind not in KINDS:
            raise ModelError(f"--model stage '{item}': unknown kind '{kind}' (choose {', '.join(KINDS)})")
        s = StageSpec(kind, activation="tanh" if kind == "rnn" else "none")
        for f in fields:
            s = _field(s, f, item)
        if kind == "dense" and not s.size and n == len(items) - 1 and output_size:
            s = replace(s, size=int(output_size))
        stages.append(s)
    spec = ModelSpec(int(input_size), tuple(stages), output, task)
    if output_size is not None and spec.output_size != output_size:
        raise ModelError(
            f"--model ends with {spec.output_size} outputs but the data has {output_size} "
            f"{'classes' if task == 'classify' else 'targets'}"
        )
    return spec


def _field(s: StageSpec, f: str, item: str) -> StageSpec:
    try:
        if f.isdigit():
            return replace(s, size=int(f))
        if f in ACTIVATIONS:
            return replace(s, activation=f)
        if f == "nobias":
            return replace(s, bias=False)
        if f == "fb":
            return replace(s, feedback=True)
        if f in ("mean", "max"):
            return replace(s, mode=f)
        if f[0] in "kd" and f[1:].isdigit():
            return replace(s, **{"kernel" if f[0] == "k" else "dilation": int(f[1:])})
        if f.startswith("eps="):
            return replace(s, eps=float(f[4:]))
    except ValueError:
        pass
    raise ModelError(f"--model stage '{item}': cannot read '{f}'")
