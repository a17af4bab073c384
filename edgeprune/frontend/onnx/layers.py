"""Handlers of the ops that become IR stages of their own: activations (on the pending dense map or
the stage before), the causal Conv (with its left Pad), LayerNormalization (also written out as
ReduceMean/Sub/Pow/Sqrt/Div), and ReduceMean/ReduceMax over time (pooling). ``_materialize`` turns
what is pending on a value (a linear map, an elementwise scale) into stages."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ... import ir
from .values import Const, Content, Data, LayerNormPart

ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softmax": "softmax"}


def _csr(W: np.ndarray, pattern: np.ndarray | None) -> ir.CSR:
    W = np.asarray(W, np.float32)
    return ir.CSR.from_dense(W, pattern if pattern is not None else W != 0)


def _attrs(node) -> dict:
    from onnx import helper

    out = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


class StageOps:
    """Handlers of the stage-making ops, mixed into the interpreter."""

    def _materialize(self, node, content: Content, activation: str = "none") -> tuple:
        """The stages of ``content`` with its pending map (and ``activation``) made into stages."""
        content = self._settle(node, content)
        stages = content.stages
        if content.source not in ("input", "seq", "last"):
            self.fail(node, "a dense map or activation inside the recurrence of a Scan is not supported")
        if content.affine is not None:
            W, b, pattern = content.affine
            bias = np.asarray(b, np.float32) if np.any(b) else None
            return (*stages, ir.Dense(_csr(W, pattern), bias, activation))
        if content.diag is not None:
            scale, shift = (np.asarray(v, np.float32) for v in content.diag)
            last = stages[-1] if stages else None
            if isinstance(last, ir.LayerNorm) and activation == "none":  # the decomposed form's gamma and beta
                return (*stages[:-1], ir.LayerNorm(last.gamma * scale, last.beta * scale + shift, last.eps))
            if activation == "none":
                return (*stages, ir.Normalize(scale, shift))
            return (*stages, ir.Dense(_csr(np.diag(scale), None), shift if shift.any() else None, activation))
        if activation == "none":
            return stages
        last = stages[-1] if stages else None
        if (
            isinstance(last, (ir.Dense, ir.Conv1d))
            and last.activation == "none"
            and (activation != "softmax" or isinstance(last, ir.Dense))
        ):
            return (*stages[:-1], replace(last, activation=activation))
        size = self._size(content)
        if size is None:
            self.fail(node, "applies an activation to the input, whose feature size is not fixed in the file")
        return (*stages, ir.Dense(_csr(np.eye(size), None), None, activation))

    def _feature_size(self, node, content: Content, what: str) -> int:
        size = self._size(content)
        if size is None:
            self.fail(node, f"{what} the input, whose feature size is not fixed in the file")
        return size

    def _per_step(self, node, x: Data, what: str) -> Content:
        if not isinstance(x, Data) or not isinstance(x.content, Content):
            self.fail(node, f"{what} of stacked states is not supported")
        if self.scan is not None:
            self.fail(node, f"{what} inside the Scan body (the recurrence) is not supported")
        return self._settle(node, x.content)

    # -- activations ---------------------------------------------------------------------------------------
    def _activate(self, node, ins):
        x = ins[0]
        act = ACTIVATIONS[node.op_type]
        if isinstance(x.content, Content) and x.content.source == "pre":
            return self._unrolled_activate(node, x, act)
        content = self._per_step(node, x, node.op_type)
        if act == "softmax":
            axis = int(_attrs(node).get("axis", -1 if self.opset >= 13 else 1))
            axis = axis + len(x.labels) if axis < 0 else axis
            # before opset 13 Softmax flattens [axis:] into one axis: per-feature only when axis is the last one
            if axis >= len(x.labels) or (self.opset < 13 and axis != len(x.labels) - 1):
                self.fail(node, f"softmax over axis {axis} of {x.labels} (only over the features)")
            self._bind(node, x.labels[axis], "C")
            if self._norm(x).labels[axis] != "C":
                self.fail(node, f"softmax over the {self._norm(x).labels[axis]} axis (only over the features)")
        return Data(x.labels, Content(content.source, stages=self._materialize(node, content, act)))

    _op_Relu = _op_Tanh = _op_Sigmoid = _op_Softmax = _activate

    # -- causal convolution ----------------------------------------------------------------------------------
    def _op_Pad(self, node, ins):
        x = ins[0]
        content = self._per_step(node, x, "Pad")
        a = _attrs(node)
        if a.get("mode", "constant") != "constant":
            self.fail(node, f"pads with mode={a['mode']} (only zeros on the left of time, the causal pad)")
        if "pads" in a:
            pads = list(a["pads"])
            value = float(a.get("value", 0.0))
        else:
            for v, name in (
                (ins[1], "pads"),
                (ins[2] if len(ins) > 2 else None, "constant_value"),
                (ins[3] if len(ins) > 3 else None, "axes"),
            ):
                if v is not None and not isinstance(v, Const):
                    self.fail(node, f"{name} computed at run time")
            if len(ins) < 2 or ins[1] is None:
                self.fail(node, "has no pads")
            pads = [int(p) for p in ins[1].value.reshape(-1)]
            value = (
                float(ins[2].value.reshape(-1)[0]) if len(ins) > 2 and ins[2] is not None and ins[2].value.size else 0.0
            )
            if len(ins) > 3 and ins[3] is not None:  # opset 18: pads only for the listed axes
                axes = [int(v) % len(x.labels) for v in ins[3].value.reshape(-1)]
                full = [0] * (2 * len(x.labels))
                for k, ax in enumerate(axes):
                    full[ax], full[ax + len(x.labels)] = pads[k], pads[k + len(axes)]
                pads = full
        rank = len(x.labels)
        if len(pads) != 2 * rank or value != 0.0:
            self.fail(node, f"pads {pads} with {value} (only zeros on the left of time, the causal pad)")
        begins, ends = pads[:rank], pads[rank:]
        padded = [i for i in range(rank) if begins[i] or ends[i]]
        if len(padded) > 1 or (padded and (ends[padded[0]] or begins[padded[0]] < 0)):
            self.fail(node, f"pads {pads} (only zeros on the left of time, the causal pad)")
        if not padded:
            return x
        self._bind(node, x.labels[padded[0]], "T")
        x = self._norm(x)
        if x.labels[padded[0]] != "T" or content.source not in ("input", "seq"):
            self.fail(node, f"pads the {x.labels[padded[0]]} axis (only the left of time, the causal pad)")
        return Data(x.labels, replace(content, pad=content.pad + begins[padded[0]]))

    def _op_Conv(self, node, ins):
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        content = self._per_step(node, x, "Conv")
        if not isinstance(w, Const) or (b is not None and not isinstance(b, Const)):
            self.fail(node, "the weights must be constants (initializers)")
        if len(x.labels) != 3 or w.value.ndim != 3:
            self.fail(node, "only 1-D convolutions over time ([batch, channels, time]) are supported")
        for label, meaning in zip(x.labels, ("N", "C", "T"), strict=False):
            self._bind(node, label, meaning)
        x = self._norm(x)
        if x.labels != ("N", "C", "T") or content.source not in ("input", "seq"):
            self.fail(node, f"convolves data of axes {x.labels}; expected a sequence [batch, channels, time]")
        a = _attrs(node)
        W = np.asarray(w.value, np.float32)
        out_ch, in_ch, k = W.shape
        d = int(next(iter(a.get("dilations", [1]))))
        problems = []
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            problems.append(f"auto_pad={a['auto_pad']}")
        if list(a.get("strides", [1])) != [1]:
            problems.append(f"strides={list(a['strides'])}")
        if int(a.get("group", 1)) != 1:
            problems.append(f"group={a['group']}")
        pads = list(a.get("pads", [0, 0]))
        left = content.pad + pads[0]
        if pads[1] != 0 or left != (k - 1) * d:
            problems.append(
                f"left pad {left} and right pad {pads[1]} (a causal conv pads (k-1)*d = {(k - 1) * d} "
                "zeros on the left only, so output step t reads inputs up to t)"
            )
        if problems:
            self.fail(node, "unsupported " + "; ".join(problems))
        size = self._size(content)
        if size is not None and size != in_ch:
            self.fail(node, f"has {in_ch} input channels but its input has {size}")
        stages = self._materialize(node, replace(content, pad=0))
        # IR column tap*in + c reads channel c at tap (tap 0 the oldest): ONNX W[o, c, tap] (cross-correlation)
        weight = W.transpose(0, 2, 1).reshape(out_ch, k * in_ch)
        pattern = None if w.pattern is None else w.pattern.transpose(0, 2, 1).reshape(out_ch, k * in_ch)
        bias = None if b is None else np.asarray(b.value, np.float32).reshape(-1)
        conv = ir.Conv1d(in_ch, k, d, _csr(weight, pattern), bias)
        return Data(x.labels, Content("seq", stages=(*stages, conv)))

    # -- layer norm --------------------------------------------------------------------------------------
    def _op_LayerNormalization(self, node, ins):
        x, gamma = ins[0], ins[1]
        beta = ins[2] if len(ins) > 2 else None
        content = self._per_step(node, x, "LayerNormalization")
        a = _attrs(node)
        axis = int(a.get("axis", -1)) % len(x.labels)
        if axis != len(x.labels) - 1:
            self.fail(node, f"normalizes from axis {axis}; only over the features (the last axis)")
        self._bind(node, x.labels[-1], "C")
        if not isinstance(gamma, Const) or (beta is not None and not isinstance(beta, Const)):
            self.fail(node, "scale and bias must be constants")
        stages = self._materialize(node, content)
        size = self._feature_size(node, content, "normalizes")
        g = np.broadcast_to(np.asarray(gamma.value, np.float32).reshape(-1), (size,)).copy()
        bt = (
            np.zeros(size, np.float32)
            if beta is None
            else np.broadcast_to(np.asarray(beta.value, np.float32).reshape(-1), (size,)).copy()
        )
        norm = ir.LayerNorm(g, bt, float(a.get("epsilon", 1e-5)))
        return [Data(self._norm(x).labels, Content(content.source, stages=(*stages, norm)))]

    def _layernorm_part(self, node, ins):
        """One step of the written-out layer norm: mean, x - mean, ^2, mean, + eps, sqrt, (x - mean) / std."""
        op = node.op_type
        parts = [v for v in ins if isinstance(v, LayerNormPart)]
        p = parts[0]
        other = next((v for v in ins if v is not None and v is not p), None)
        consts = [v for v in ins if isinstance(v, Const)]

        def scalar(c):
            return (
                float(np.asarray(c.value).reshape(-1)[0]) if c is not None and np.asarray(c.value).size == 1 else None
            )

        if op == "Sub" and p.kind == "mean" and isinstance(ins[0], Data) and ins[0].content is p.base.content:
            return LayerNormPart("centered", p.base)
        if op == "Pow" and p.kind == "centered" and ins[0] is p and scalar(ins[1] if consts else None) == 2.0:
            return LayerNormPart("square", p.base)
        if (
            op == "Mul"
            and p.kind == "centered"
            and len(parts) == 2
            and parts[1].kind == "centered"
            and parts[1].base.content is p.base.content
        ):
            return LayerNormPart("square", p.base)
        if op in ("Add",) and p.kind == "var" and scalar(other if isinstance(other, Const) else None) is not None:
            return LayerNormPart("var+eps", p.base, scalar(other))
        if op == "Sqrt" and p.kind in ("var", "var+eps"):
            return LayerNormPart("std", p.base, p.eps)
        if op == "Reciprocal" and p.kind == "std":
            return LayerNormPart("rstd", p.base, p.eps)
        if (
            op == "Div"
            and len(parts) == 2
            and ins[0].kind == "centered"
            and ins[1].kind == "std"
            and ins[1].base.content is p.base.content
        ):
            return self._layernorm_done(node, p.base, ins[1].eps)
        if (
            op == "Mul"
            and len(parts) == 2
            and {parts[0].kind, parts[1].kind} == {"centered", "rstd"}
            and parts[1].base.content is p.base.content
        ):
            return self._layernorm_done(node, p.base, next(q for q in parts if q.kind == "rstd").eps)
        if op == "ReduceMean" and p.kind == "square":
            self._reduce_axes_are_features(node, ins, p.base)
            return LayerNormPart("var", p.base)
        if op in ("Identity", "Cast"):
            return p
        self.fail(
            node,
            f"{op} on the {p.kind} of a layer norm written out in ops (expected ReduceMean, Sub, Pow, "
            "Add eps, Sqrt, Div)",
        )

    def _layernorm_done(self, node, base: Data, eps: float) -> Data:
        content = self._settle(node, base.content)
        size = self._feature_size(node, content, "normalizes")
        stages = self._materialize(node, content)
        norm = ir.LayerNorm(np.ones(size, np.float32), np.zeros(size, np.float32), eps)
        return Data(self._norm(base).labels, Content(content.source, stages=(*stages, norm)))

    # -- reductions: over the features (a layer norm's mean) or over time (pooling) --------------------------
    def _reduce_axes(self, node, ins, x) -> tuple[list[int], bool]:
        a = _attrs(node)
        if "axes" in a:
            axes = list(a["axes"])
        elif len(ins) > 1 and ins[1] is not None:
            if not isinstance(ins[1], Const):
                self.fail(node, "axes computed at run time")
            axes = [int(v) for v in np.asarray(ins[1].value).reshape(-1)]
        else:
            axes = list(range(len(x.labels)))
        return [v % len(x.labels) for v in axes], bool(a.get("keepdims", 1))

    def _reduce_axes_are_features(self, node, ins, base: Data) -> None:
        axes, keep = self._reduce_axes(node, ins, base)
        if axes != [len(base.labels) - 1] or not keep:
            self.fail(node, "a layer norm's mean must be over the last axis with keepdims=1")

    def _reduce(self, node, ins, mode: str):
        x = ins[0]
        content = self._per_step(node, x, node.op_type)
        axes, keep = self._reduce_axes(node, ins, x)
        if len(axes) != 1:
            self.fail(node, f"reduces axes {axes}; only one axis (time, or the features of a layer norm)")
        label = x.labels[axes[0]]
        if mode == "mean" and axes[0] == len(x.labels) - 1 and label != "T" and keep:
            self._bind(node, label, "C")
            if self._norm(x).labels[axes[0]] == "C":
                return LayerNormPart("mean", x)
        self._bind(node, label, "T")
        x = self._norm(x)
        if x.labels[axes[0]] != "T" or content.source not in ("input", "seq"):
            self.fail(node, f"reduces over the {x.labels[axes[0]]} axis (only over time, or a layer norm's features)")
        stages = self._materialize(node, content)
        size = self._feature_size(node, content, "pools")
        pooled = (*stages, ir.Pool(size, mode))
        labels = tuple("S" if i == axes[0] else l for i, l in enumerate(x.labels) if keep or i != axes[0])
        return Data(labels, Content("last", stages=pooled))

    def _op_ReduceMean(self, node, ins):
        return self._reduce(node, ins, "mean")

    def _op_ReduceMax(self, node, ins):
        return self._reduce(node, ins, "max")
