"""The IR: a torch-free description of a (pruned) recurrent model as a chain of stages.

A model maps a sequence of input vectors ``x_1 .. x_T`` to outputs: every stage (``stages.py``)
maps the previous stage's vector at step t to its own, keeping explicit streaming state between
steps. ``output`` says what the model returns: ``last`` (one output per sequence, after its last
step) or ``every`` (one per step). ``task`` says how outputs are compared: ``classify`` (logits:
argmax agreement) or ``regress`` (errors only).

Stages are named for serialisation and pruning as in the torch model: ``layers.{i}`` for every
stage but a final dense one, which is ``head`` (so a v1 model, recurrent layers + a linear head,
keeps its v1 names). See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import IRError
from .csr import CSR
from .stages import Conv1d, Dense, LayerNorm, Normalize, Pool, Recurrent, Stage

OUTPUTS = ("last", "every")
TASKS = ("classify", "regress")
STATELESS_AFTER_POOL = (Dense, LayerNorm, Normalize)


def Head(weight: CSR, bias) -> Dense:  # noqa: N802 - the v1 constructor of the final linear stage
    return Dense(weight, bias)


@dataclass
class Model:
    input_size: int
    stages: list[Stage]
    output: str = "last"
    task: str = "classify"
    meta: dict = field(default_factory=dict)

    # -- naming: layers.{i} + head -------------------------------------------------------------
    @property
    def head(self) -> Dense | None:
        """The final stage when it is dense (the classifier/regressor), else None."""
        return self.stages[-1] if self.stages and isinstance(self.stages[-1], Dense) else None

    @head.setter
    def head(self, stage: Dense) -> None:
        if self.head is None:
            raise IRError("model has no head to replace")
        self.stages[-1] = stage

    @property
    def layers(self) -> list[Stage]:
        """Every stage but the head."""
        return self.stages[:-1] if self.head is not None else list(self.stages)

    def stage_names(self) -> list[str]:
        body = [f"layers.{i}" for i in range(len(self.layers))]
        return body + (["head"] if self.head is not None else [])

    def named_stages(self) -> list[tuple[str, Stage]]:
        return list(zip(self.stage_names(), self.stages))

    def recurrent(self) -> list[Recurrent]:
        return [s for s in self.stages if isinstance(s, Recurrent)]

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        return self.stages[-1].output_size

    num_classes = output_size  # the v1 name

    @property
    def feedback(self) -> bool:
        return any(isinstance(s, Recurrent) and s.feedback_size for s in self.stages)

    def matrices(self) -> dict[str, CSR]:
        return {f"{name}.{m}": csr for name, s in self.named_stages() for m, csr in s.matrices().items()}

    def nnz(self, include_head: bool = False) -> int:
        return sum(m.nnz for k, m in self.matrices().items() if include_head or not k.startswith("head."))

    def state_sizes(self) -> list[tuple[int, ...]]:
        """Per stage, the sizes of its state vectors: (H,) or (H, H) for LSTM's (h, c), () if none."""
        return [s.state_sizes() for s in self.stages]

    def is_v1(self) -> bool:
        """The v1 shape: recurrent layers read at the last step by one linear head (no activation)."""
        return self.v1_problem() is None

    def v1_problem(self) -> str | None:
        """Why this model is not of the v1 shape (for backends that support only that), or None."""
        if self.output != "last":
            return "an output at every step"
        if self.task != "classify":
            return "a regression output"
        head = self.head
        if head is None:
            return f"a model ending in a {self.stages[-1].kind} stage"
        if head.activation != "none":
            return f"a {head.activation} on the output"
        for name, s in self.named_stages()[:-1]:
            if not isinstance(s, Recurrent):
                return f"a {s.kind} stage ({name})"
            if s.activation != "tanh":
                return f"an RNN with {s.activation} ({name})"
            if not s.default_cell:
                return f"a {s.cell} cell with{s.describe_variant()} ({name})"
        if not self.layers:
            return "no recurrent stage"
        return None

    def describe(self) -> str:
        if self.is_v1():
            cells = {s.cell for s in self.layers}
            sizes = "x".join(str(s.hidden_size) for s in self.layers)
            fb = " + feedback" if self.feedback else ""
            return (
                f"{'/'.join(sorted(cells)).upper()} {sizes}{fb}, {self.input_size} inputs, {self.output_size} classes"
            )
        chain = " -> ".join(s.describe() for s in self.stages)
        what = "classes" if self.task == "classify" else "outputs"
        per = ", every step" if self.output == "every" else ""
        return f"{chain}; {self.input_size} inputs, {self.output_size} {what}{per}"

    # -- validation ------------------------------------------------------------------------------
    def validate(self) -> Model:
        if not self.stages:
            raise IRError("model has no stages")
        if self.input_size < 1:
            raise IRError(f"input size must be positive, got {self.input_size}")
        if self.output not in OUTPUTS:
            raise IRError(f"unknown output mode '{self.output}' (expected last or every)")
        if self.task not in TASKS:
            raise IRError(f"unknown task '{self.task}' (expected classify or regress)")
        expected = self.input_size
        pooled = None
        named = self.named_stages()
        for i, (name, stage) in enumerate(named):
            where = "head" if name == "head" else f"layer {i}"
            if not isinstance(stage, (Dense, Conv1d, Recurrent, LayerNorm, Normalize, Pool)):
                raise IRError(f"{name}: unknown stage type {type(stage).__name__}")
            if stage.input_size != expected:
                raise IRError(f"{where}: input size {stage.input_size} but the previous stage gives {expected}")
            stage.validate(where)
            if getattr(stage, "activation", None) == "softmax" and i + 1 < len(named):
                raise IRError(f"{where}: softmax is allowed only on the last stage")
            if pooled is not None and not isinstance(stage, STATELESS_AFTER_POOL):
                raise IRError(f"{where}: a {stage.kind} stage cannot follow the pool at {pooled}")
            if isinstance(stage, Pool):
                if self.output != "last":
                    raise IRError(f"{where}: pooling over time needs output 'last', not '{self.output}'")
                pooled = name
            if isinstance(stage, Recurrent) and stage.feedback_size:
                nxt = self.stages[i + 1] if i + 1 < len(self.stages) else None
                if not isinstance(nxt, Recurrent) or nxt.hidden_size != stage.feedback_size:
                    raise IRError(
                        f"{where}: feedback size {stage.feedback_size} must be the hidden size of a "
                        "recurrent stage right after it"
                    )
            expected = stage.output_size
        return self
