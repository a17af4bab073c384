"""The source file beside its import: running it in onnxruntime (onnx.reference where onnxruntime
cannot) and checking the imported IR against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import ir
from ...errors import first_line
from .values import OnnxImportError


@dataclass
class OnnxModel:
    """An imported ONNX model: its IR and how to run the source file on [N, T, F] data."""

    model: ir.Model
    path: Path
    input_name: str
    output_name: str
    input_axes: dict  # positions of "batch", "time", "features" in the graph input
    fixed: dict = field(default_factory=dict)  # static "batch"/"time" sizes of the graph input, if any
    runtime: str = "onnxruntime"
    output_labels: tuple = ("N", "C")  # the output's axes in the file: N batch, T time, C features, S singleton
    _run = None

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Run the source file on ``X`` [N, T, F] (float32) -> [N, C] (output last) or [N, T, C] (every)."""
        X = np.asarray(X, dtype=np.float32)
        if "time" in self.fixed and X.shape[1] != self.fixed["time"]:
            raise OnnxImportError(
                f"{self.path.name} has a fixed sequence length of {self.fixed['time']}, the data has {X.shape[1]} steps"
            )
        order = sorted(self.input_axes, key=self.input_axes.get)  # our axis names in the file's order
        perm = [{"batch": 0, "time": 1, "features": 2}[a] for a in order]
        step = self.fixed.get("batch") or 1024
        out = []
        for i in range(0, len(X), step):
            chunk = X[i : i + step]
            pad = step - len(chunk) if "batch" in self.fixed else 0
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.float32)])
            run = self._runner()
            try:
                y = run(np.ascontiguousarray(chunk.transpose(perm)))
            except Exception as e:  # the file itself fails on [N, T, F] data (a shape it hard-codes, ...)
                raise OnnxImportError(
                    f"{self.path.name}: {self.runtime} cannot run the file on {list(chunk.shape)} "
                    f"inputs ({first_line(e)})"
                ) from None
            y = self._arranged(np.asarray(y))
            out.append(y[: len(chunk) - pad])
        classes = self.model.num_classes
        empty = (0, X.shape[1], classes) if self.model.output == "every" else (0, classes)
        return np.concatenate(out).astype(np.float32) if out else np.zeros(empty, np.float32)

    def _arranged(self, y: np.ndarray) -> np.ndarray:
        """The file's output with its singleton axes dropped and the rest ordered [batch, (time,) features]."""
        labels = self.output_labels
        if y.ndim != len(labels):
            raise OnnxImportError(f"{self.path.name}: the output has rank {y.ndim} at run time, expected {len(labels)}")
        y = y.reshape([d for d, l in zip(y.shape, labels, strict=False) if l != "S"])
        kept = [l for l in labels if l != "S"]
        return y.transpose([kept.index(l) for l in ("N", "T", "C") if l in kept])

    def _runner(self):
        if self._run is None:
            self._run, self.runtime = _source_runner(self.path, self.input_name, self.output_name)
        return self._run


def check_against_source(imported: OnnxModel, samples: int = 4) -> float:
    """Largest logit difference between the IR and the source file on random sequences (raises if wrong)."""
    steps = imported.fixed.get("time") or 5
    X = np.random.default_rng(0).standard_normal((samples, steps, imported.model.input_size)).astype(np.float32)
    try:
        expected = imported.logits(X)
    except OnnxImportError:
        raise
    except Exception as e:
        raise OnnxImportError(
            f"{imported.path.name}: {imported.runtime} cannot run the file ({first_line(e)})"
        ) from None
    got = ir.ReferenceExecutor(imported.model).run(X)
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(got - expected)))
    if not err <= 1e-4 * scale:
        raise OnnxImportError(
            f"{imported.path.name}: the imported model disagrees with {imported.runtime} running "
            f"the file (max |err| {err:.2e}); this graph uses something the importer misreads"
        )
    return err


def _source_runner(path: Path, input_name: str, output_name: str):
    """onnxruntime for the source file; onnx.reference where onnxruntime cannot run it (layout=1)."""
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 4
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return (lambda X: sess.run([output_name], {input_name: X})[0]), "onnxruntime"
    except Exception as ort_error:  # e.g. "Batchwise recurrent operations (layout == 1) are not supported"
        from onnx.reference import ReferenceEvaluator

        ignored = _ignored_by_onnx_reference(path)
        if ignored:
            raise OnnxImportError(
                f"{path.name}: onnxruntime cannot run it ({first_line(ort_error)}) and onnx.reference ignores "
                f"{ignored}: nothing here can check the import (export the recurrent op with layout=0)"
            ) from None
        try:
            ref = ReferenceEvaluator(str(path))
        except Exception as e:
            raise OnnxImportError(
                f"{path.name}: neither onnxruntime ({first_line(ort_error)}) nor onnx.reference "
                f"({first_line(e)}) can run it"
            ) from None
        return (lambda X: ref.run([output_name], {input_name: X})[0]), "onnx.reference"


def _ignored_by_onnx_reference(path: Path) -> str:
    """The recurrent-op attributes of the file that onnx.reference takes as unused arguments ('' if none):
    clip, input_forget, and activations other than the defaults (its RNN knows Tanh and Affine)."""
    import onnx
    from onnx import helper

    from ... import ir

    found = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        spec = ir.cells.ONNX_OPS.get(node.op_type)
        if spec is None:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
        known = {"Tanh", "Affine"} if node.op_type == "RNN" else set()
        if acts and [a.lower() for a in acts] != [a.lower() for a in spec.onnx_activations] and not set(acts) <= known:
            found.append(f"activations={acts}")
        found += [k for k in ("clip", "input_forget") if attrs.get(k)]
    return ", ".join(dict.fromkeys(found))
