"""Handlers of the glue ops on data tensors (layout changes, selecting the last step or a stacked
state, concatenation) and of the linear head on the last step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .values import Const, Content, Data, Dims, Unknown, axis_name, describe_axes

LAST = -1
BIG = 2**31 - 1
UNROLLED = (
    "; a recurrence unrolled over fixed time steps (what torch's dynamo exporter writes for nn.RNN) is not "
    "supported: export it with torch.onnx.export(..., dynamo=False)"
)  # an ``ends`` at or beyond this means "to the end" (exporters write INT64_MAX or INT32_MAX)


class DataOps:
    """Handlers of the glue and head ops, mixed into the interpreter."""

    # -- glue on data tensors ----------------------------------------------------------------------
    def _size(self, content: Content) -> int | None:
        """Static size of the feature axis C for ``content``."""
        if content.affine is not None:
            return content.affine[0].shape[0]
        if content.diag is not None:
            return len(content.diag[0])
        if content.source in ("new", "cell"):
            return self.layers[content.layer].hidden_size
        if content.source in ("pre", "unrolled"):
            return None
        if content.stages:
            return content.stages[-1].output_size
        if content.source == "input":
            return self._static("C")
        return None

    def _axes(self, node, ins, rank: int, attr_name="axes", input_index=1) -> list[int] | None:
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attr_name in attrs:
            axes = list(attrs[attr_name])
        elif len(ins) > input_index and ins[input_index] is not None:
            if not isinstance(ins[input_index], Const):
                self.fail(node, f"{attr_name} must be constant")
            axes = [int(a) for a in np.asarray(ins[input_index].value).reshape(-1)]
        else:
            return None
        return [a + rank if a < 0 else a for a in axes]

    def _op_Identity(self, node, ins):
        return ins[0]

    def _op_Dropout(self, node, ins):
        return [ins[0], Unknown()]  # inference: the data passes through; the mask output is not used

    def _op_Cast(self, node, ins):
        from onnx import TensorProto, helper

        to = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "to"), None)
        if to != TensorProto.FLOAT:
            self.fail(
                node,
                f"casts the data to {TensorProto.DataType.Name(to) if to is not None else '?'} "
                "(only float32 data is supported)",
            )
        return ins[0]

    def _op_Transpose(self, node, ins):
        from onnx import helper

        x = ins[0]
        perm = next(
            (list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"),
            list(range(len(x.labels)))[::-1],
        )
        return Data(tuple(x.labels[p] for p in perm), x.content)

    def _op_Squeeze(self, node, ins):
        x = ins[0]
        axes = self._axes(node, ins, len(x.labels))
        if axes is None:
            axes = [i for i, l in enumerate(x.labels) if l == "S"]
        for a in axes:
            if a >= len(x.labels) or x.labels[a] != "S":
                self.fail(
                    node,
                    f"squeezes axis {a} ({x.labels[a] if a < len(x.labels) else 'out of range'}), "
                    "which is not a singleton axis",
                )
        return Data(tuple(l for i, l in enumerate(x.labels) if i not in axes), x.content)

    def _op_Unsqueeze(self, node, ins):
        x = ins[0]
        raw = self._axes(node, ins, 0)  # rank 0: negative axes stay negative
        if not raw:
            self.fail(node, "has no axes")
        rank = len(x.labels) + len(raw)
        axes = [a + rank if a < 0 else a for a in raw]
        labels = list(x.labels)
        for a in sorted(axes):
            labels.insert(a, "S")
        return Data(tuple(labels), x.content)

    def _op_Flatten(self, node, ins):
        from onnx import helper

        x = ins[0]
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        axis = axis + len(x.labels) if axis < 0 else axis
        left = [l for l in x.labels[:axis] if l != "S"]
        right = [l for l in x.labels[axis:] if l != "S"]
        if len(left) > 1 or len(right) > 1 or "K" in left + right:
            self.fail(node, f"merges axes {x.labels} (only singleton axes may be flattened away)")
        return Data((left[0] if left else "S", right[0] if right else "S"), x.content)

    def _op_Reshape(self, node, ins):
        x, shape = ins[0], ins[1]
        if isinstance(shape, Dims):  # entries that are axis labels stand for that axis' run-time size
            dims = [self.meaning.get(d, d) if isinstance(d, str) else d for d in shape.entries]
        elif isinstance(shape, Const):
            dims = [int(d) for d in shape.value.reshape(-1)]
        else:
            self.fail(node, "reshapes the data to a shape computed at run time from more than the batch and time sizes")
        merged = self._batch_time_fold(x, dims)
        if merged is not None:
            return Data(merged, x.content)
        real = [(i, l) for i, l in enumerate(x.labels) if l != "S"]
        out, k = [], 0
        content = x.content
        for i, d in enumerate(dims):
            if d == 1 and not (k < len(real) and self._label_size(x, real[k][1]) == 1 and real[k][1] != "C"):
                out.append("S")
                continue
            if k >= len(real):
                self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
            pos, label = real[k]
            size = self._label_size(x, label)
            if isinstance(d, str):
                if d != label:
                    self.fail(node, f"reshape {x.labels} -> {dims} moves or merges the {axis_name(d)} axis")
                out.append(label)
                k += 1
                continue
            if d == 0 and i != pos:
                self.fail(node, f"reshape {x.labels} -> {dims} moves an axis")
            if d > 1 and size != d:
                self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
            out.append(label)
            k += 1
        if k != len(real):
            self.fail(node, f"reshape {x.labels} -> {dims} merges or splits axes")
        return Data(tuple(out), content)

    def _batch_time_fold(self, x: Data, dims: list) -> tuple | None:
        """Batch and time merged into one axis around a per-step op (``[N, T, C] -> [N*T, C]``, MatMul,
        then back: Keras's Tensordot and torch dynamo's per-step Linear write it) -> the labels, else None.
        The merged axis is ``NT``/``TN``; ops that need the batch or time axis do not find it there."""
        real = [l for l in x.labels if l != "S"]
        n, t = self._static("N"), self._static("T")
        if len(real) == 3 and real[2] == "C" and {real[0], real[1]} == {"N", "T"} and len(dims) == 2:
            c = self._label_size(x, "C")
            whole = n * t if n is not None and t is not None else None
            if dims[1] in (c, "C") and c is not None and (dims[0] == -1 or (whole is not None and dims[0] == whole)):
                return (real[0] + real[1], "C")
        if len(real) == 2 and real[0] in ("NT", "TN") and real[1] == "C" and len(dims) == 3:
            sizes = {"N": n, "T": t}
            first, second = real[0]
            fits = [d == lab or (sizes[lab] is not None and d == sizes[lab]) for d, lab in zip(dims, (first, second))]
            if fits[1] and (fits[0] or dims[0] == -1):
                if dims[2] in (-1, "C", self._label_size(x, "C")):
                    return (first, second, "C")
        return None

    def _label_size(self, x: Data, label: str) -> int | None:
        if label == "K":
            return len(x.content)
        if label == "C" and isinstance(x.content, Content):
            return self._size(x.content)
        if label in ("N", "T"):  # fixed by the exporter (torch.onnx's default bakes the example's shape in)
            return self._static(label)
        return None

    def _is_last(self, index: int) -> bool:
        """Is time index ``index`` the last step (-1, or T-1 when the exporter fixed T)?"""
        steps = self._static("T")
        return index == LAST or (steps is not None and index == steps - 1)

    def _op_Slice(self, node, ins):
        from onnx import helper

        x = ins[0]
        rank = len(x.labels)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if "starts" in attrs:  # opset < 10
            starts, ends = list(attrs["starts"]), list(attrs["ends"])
            axes = list(attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            vals = []
            for v in ins[1:5]:
                if v is not None and not isinstance(v, Const):
                    self.fail(node, "slices with bounds computed at run time")
                vals.append(None if v is None else [int(a) for a in v.value.reshape(-1)])
            vals += [None] * (4 - len(vals))
            starts, ends, axes, steps = vals
            axes = axes if axes is not None else list(range(len(starts)))
            steps = steps if steps is not None else [1] * len(starts)
        labels, content = list(x.labels), x.content
        for a, s, e, st in zip(axes, starts, ends, steps, strict=False):
            a = a + rank if a < 0 else a
            label = labels[a]
            full = s == 0 and e >= BIG and st == 1
            if label == "K":
                picked = tuple(content[slice(s, min(e, len(content)), st)])
                if not picked:
                    self.fail(node, "selects no state")
                labels[a], content = ("S", picked[0]) if len(picked) == 1 else ("K", picked)
            elif label.startswith("x") and not full and e == s + 1 and st == 1 and self._static(label) is not None:
                self._bind(node, label, "T")  # one time step of the raw input (an unrolled recurrence)
                labels[a], content = "S", self._step(node, x, a, s)
            elif label == "T" and not full:
                steps = self._static("T")
                at_end = e >= BIG or (steps is not None and e >= steps)
                single = steps is not None and 0 <= s < steps and e == s + 1 and st == 1
                if single and content.source in ("seq", "input"):  # one step of an unrolled recurrence
                    labels[a], content = "S", self._step(node, x, a, s)
                    continue
                if not (self._is_last(s) and at_end and st == 1) or content.source not in ("seq", "input"):
                    self.fail(
                        node, f"slices time steps [{s}:{e}:{st}]; only the last step ([-1:]) can be selected{UNROLLED}"
                    )
                labels[a], content = "S", replace(content, source="last")
            elif label == "S":
                if not (s in (0, LAST) and (e >= 1 or e == BIG) and st == 1):
                    self.fail(node, f"slice [{s}:{e}:{st}] of a singleton axis selects nothing")
            elif not full:
                self.fail(
                    node,
                    f"slices the {axis_name(label)} axis [{s}:{e}:{st}] (only the last time step or "
                    f"one of the stacked states can be selected){UNROLLED if label.startswith('x') else ''}",
                )
        return Data(tuple(labels), content)

    def _op_Gather(self, node, ins):
        from onnx import helper

        x, idx = ins[0], ins[1]
        if not isinstance(idx, Const):
            self.fail(node, "gathers with indices computed at run time")
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        axis = axis + len(x.labels) if axis < 0 else axis
        index = np.asarray(idx.value)
        if index.size != 1:
            self.fail(node, f"gathers {index.size} entries; only a single index is supported")
        i = int(index.reshape(-1)[0])
        label, content = x.labels[axis], x.content
        if label == "K":
            if not -len(content) <= i < len(content):
                self.fail(node, f"index {i} out of range for {len(content)} stacked states")
            content = content[i]
        elif label == "T":
            if not self._is_last(i) or content.source not in ("seq", "input"):
                self.fail(node, f"gathers time step {i}; only the last step (-1) can be selected")
            content = replace(content, source="last")
        elif label == "S":
            if i not in (0, LAST):
                self.fail(node, f"index {i} out of range for a singleton axis")
        else:
            self.fail(node, f"gathers along the {axis_name(label)} axis")
        labels = list(x.labels)
        if index.ndim == 0:
            del labels[axis]
        else:
            labels[axis] = "S"
        return Data(tuple(labels), content)

    def _op_Concat(self, node, ins):
        from onnx import helper

        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        parts = [v for v in ins if v is not None]
        if not all(isinstance(v, Data) for v in parts):
            self.fail(node, "concatenates data with constants")
        rank = len(parts[0].labels)
        axis = axis + rank if axis < 0 else axis
        steps = [v.content for v in parts if isinstance(v.content, Content) and v.content.source == "unrolled"]
        if (
            len(steps) == len(parts) == self._static("T")
            and [c.var for c in steps] == list(range(len(steps)))
            and all(c.parts[0] is steps[0].parts[0] for c in steps)
            and parts[0].labels[axis] == "S"
        ):
            # every step of an unrolled recurrence, in order: its output sequence Y
            stages = self._unrolled_stages(node, self._record(steps[0].parts[0]))
            labels = list(parts[0].labels)
            labels[axis] = "T"
            return Data(tuple(labels), Content("seq", stages=stages))
        stacked: list[Content] = []
        for v in parts:
            other = tuple(l for i, l in enumerate(v.labels) if i != axis)
            if len(v.labels) != rank or other != tuple(l for i, l in enumerate(parts[0].labels) if i != axis):
                self.fail(node, "concatenates tensors with different layouts")
            if v.labels[axis] == "S":
                stacked.append(v.content)
            elif v.labels[axis] == "K":
                stacked.extend(v.content)
            elif v.labels[axis] == "C" and all(p.labels[axis] == "C" for p in parts) and self.scan is not None:
                return self._columns(node, parts)
            else:
                self.fail(
                    node, f"concatenates along the {axis_name(v.labels[axis])} axis (only final states can be stacked)"
                )
        labels = list(parts[0].labels)
        labels[axis] = "K"
        return Data(tuple(labels), tuple(stacked))

    def _columns(self, node, parts: list[Data]) -> Data:
        """Inputs concatenated along the features inside a Scan body: a layer's input plus feedback."""
        flat: list[Content] = []
        for v in parts:
            if not isinstance(v.content, Content) or v.content.affine is not None:
                self.fail(node, "concatenates features of something other than a layer input and a state")
            flat.extend(v.content.parts if v.content.source == "cols" else [v.content])
        return Data(parts[0].labels, Content("cols", parts=tuple(flat)))

    # -- linear maps (dense stages, pending until an activation or a non-linear op fixes them) ------------------
    def _affine_input(self, node, x: Data) -> Content:
        if not isinstance(x.content, Content):
            self.fail(node, "applies a linear map to stacked states")
        if x.content.source not in ("input", "seq", "last", "step", "unrolled"):
            self.fail(node, "a linear map inside the recurrence of a Scan is not supported")
        return x.content

    def _compose(self, content: Content, M: np.ndarray, pattern: np.ndarray | None, bias=None) -> Content:
        """``content`` followed by ``y = M x (+ bias)``."""
        M = M.astype(np.float64)
        if content.affine is not None:
            W0, b0, _ = content.affine
            W, b, pat = M @ W0, M @ b0, None
        elif content.diag is not None:
            scale, shift = content.diag
            W, b, pat = M * scale[None, :], M @ shift, pattern
        else:
            W, b, pat = M, np.zeros(M.shape[0]), pattern
        if bias is not None:
            b = b + bias
        return replace(content, affine=(W, b, pat), diag=None)

    def _feature_constant(self, node, x: Data, c: Const, what: str) -> np.ndarray:
        """A constant broadcast against ``x`` that may vary only along the features: as a [C] vector."""
        cv = np.asarray(c.value, np.float64)
        if cv.ndim > len(x.labels):
            self.fail(node, f"{what} a {list(cv.shape)} constant to data of axes {describe_axes(x.labels)}")
        varying = [label for d, label in zip(cv.shape[::-1], x.labels[::-1], strict=False) if d != 1]
        if varying:
            self._bind(node, x.labels[-1], "C")
            x = self._norm(x)
        size = self._size(x.content) if isinstance(x.content, Content) else None
        for d, label in zip(cv.shape[::-1], x.labels[::-1], strict=False):
            if d != 1 and not (label == "C" and d == size):
                self.fail(node, f"{what} a {list(cv.shape)} constant that varies along the {axis_name(label)} axis")
        if size is None:
            if cv.size != 1:
                self.fail(node, f"{what} a constant to data whose feature size is not known")
            self.fail(node, f"{what} a constant to the input, whose feature size is not fixed in the file")
        return np.broadcast_to(cv.reshape(-1), (size,)).astype(np.float64)

    def _op_MatMul(self, node, ins):
        x, m = ins
        if not isinstance(x, Data) or not isinstance(m, Const):
            self.fail(node, "only data @ constant matrix is supported")
        content = self._affine_input(node, x)
        self._bind(node, x.labels[-1], "C")
        x = self._norm(x)
        M = m.value
        if M.ndim != 2 or x.labels[-1] != "C" or M.shape[0] != (self._size(content) or M.shape[0]):
            self.fail(
                node,
                f"multiplies {x.labels} by a {list(M.shape)} matrix; expected [..., features] @ "
                f"[{self._size(content)}, out]",
            )
        pattern = m.pattern.T if m.pattern is not None else None
        return Data(x.labels, self._compose(content, M.T, pattern))

    def _op_Gemm(self, node, ins):
        from onnx import helper

        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        x, m = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if not isinstance(x, Data) or not isinstance(m, Const) or (c is not None and not isinstance(c, Const)):
            self.fail(node, "only Gemm(data, constant B, constant C) is supported")
        content = self._affine_input(node, x)
        expected = ("C", "N") if a.get("transA", 0) else ("N", "C")
        merged = next((l for l in x.labels if l in ("NT", "TN")), None)
        if merged and len(x.labels) == 2:  # batch x time folded into the rows: a per-step map
            expected = tuple(merged if l == "N" else l for l in expected)
        elif len(x.labels) == 2:  # a matrix [batch, features] (or transposed)
            for label, meaning in zip(x.labels, expected, strict=False):
                self._bind(node, label, meaning)
            x = self._norm(x)
        if x.labels != expected:
            self.fail(node, f"A has axes {x.labels}, expected {expected}")
        M = m.value if a.get("transB", 0) else m.value.T  # -> [out, in]
        pattern = None if m.pattern is None else (m.pattern if a.get("transB", 0) else m.pattern.T)
        if M.ndim != 2 or M.shape[1] != (self._size(content) or M.shape[1]):
            self.fail(node, f"B has shape {list(m.value.shape)}, which does not fit {self._size(content)} features")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        bias = None
        if c is not None:
            cv = np.asarray(c.value, np.float64)
            if cv.size not in (1, M.shape[0]) or (cv.ndim == 2 and cv.shape[0] != 1):
                self.fail(node, f"C has shape {list(cv.shape)}; expected [{M.shape[0]}] or [1, {M.shape[0]}]")
            bias = beta * np.broadcast_to(cv.reshape(-1), (M.shape[0],))
        content = self._compose(content, alpha * M, pattern if alpha == 1.0 else None, bias)
        return Data((merged or "N", "C") if merged and len(x.labels) == 2 else ("N", "C"), content)

    def _op_Add(self, node, ins, sign: float = 1.0):
        x, c = ins
        step = next(
            (
                v.content
                for v in ins
                if isinstance(v, Data)
                and isinstance(v.content, Content)
                and v.content.source == "step"
                and self._is_step_of(v.content)
            ),
            None,
        )
        # x'_t + (W_hh h_(t-1) + b_hh): an unrolled recurrence (its first step adds b_hh, a constant)
        if (
            sign > 0
            and step is not None
            and (all(isinstance(v, Data) for v in ins) or (step.var == 0 and (self._static("T") or 0) > 1))
        ):
            return self._unrolled_add(node, ins)
        if isinstance(x, Const) and isinstance(c, Data) and sign > 0:
            x, c = c, x
        if isinstance(x, Const) and isinstance(c, Data):  # constant - data: negate, then add
            return self._op_Add(node, [self._scaled(node, c, -1.0), x])
        if not isinstance(x, Data) or not isinstance(c, Const):
            self.fail(node, "only data + constant (a bias or a shift) is supported")
        content = self._affine_input(node, x)
        shift = sign * self._feature_constant(node, x, c, "adds")
        x = self._norm(x)
        content = x.content
        if content.affine is not None:
            W, b, pattern = content.affine
            return Data(x.labels, replace(content, affine=(W, b + shift, pattern)))
        scale, old = content.diag if content.diag is not None else (np.ones(len(shift)), np.zeros(len(shift)))
        return Data(x.labels, replace(content, diag=(scale, old + shift)))

    def _op_Sub(self, node, ins):
        return self._op_Add(node, ins, sign=-1.0)

    def _op_Mul(self, node, ins, divide: bool = False):
        x, c = ins
        if isinstance(x, Const) and isinstance(c, Data) and not divide:
            x, c = c, x
        if not isinstance(x, Data) or not isinstance(c, Const):
            self.fail(
                node,
                "only data * constant (a scale) is supported"
                if not divide
                else "only data / constant (a scale) is supported",
            )
        self._affine_input(node, x)
        scale = self._feature_constant(node, x, c, "multiplies")
        if divide:
            if not np.all(scale):
                self.fail(node, "divides by zero")
            scale = 1.0 / scale
        return self._scaled(node, self._norm(x), scale)

    def _op_Div(self, node, ins):
        return self._op_Mul(node, ins, divide=True)

    def _op_Neg(self, node, ins):
        return self._scaled(node, ins[0], -1.0)

    def _scaled(self, node, x: Data, scale) -> Data:
        content = self._affine_input(node, x)
        if content.affine is not None:
            W, b, pattern = content.affine
            s = np.broadcast_to(np.asarray(scale, np.float64), (W.shape[0],))
            return Data(x.labels, replace(content, affine=(W * s[:, None], b * s, pattern)))
        size = self._size(content)
        if size is None:
            self.fail(node, "scales the input, whose feature size is not fixed in the file")
        s = np.broadcast_to(np.asarray(scale, np.float64), (size,))
        old_scale, old_shift = content.diag if content.diag is not None else (np.ones(size), np.zeros(size))
        return Data(x.labels, replace(content, diag=(old_scale * s, old_shift * s)))
