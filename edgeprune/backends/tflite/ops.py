"""The op-level writer of the ``tflite`` target: small helpers emitting TFLite builtin ops into a
``Graph`` on [batch, n] activations, and the FULLY_CONNECTED whose weight goes in as stored
(dense, sparse CSR / blocks, densified, int8) - see weights.py and docs/tflite.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flatbuffer import Graph
from .weights import Weight, narrowest

# IR activation -> TFLite op (a separate op, not the FC's fused activation: the sparse FC kernels and
# TFLite Micro treat fused activations differently, a separate op is the same everywhere)
ACTIVATION_OPS = {"relu": "RELU", "tanh": "TANH", "sigmoid": "LOGISTIC", "softmax": "SOFTMAX"}


@dataclass
class _Prepared:
    """A matrix stage's weight in the row/column order the graph uses, stored as ``weight``, and its bias
    (None: the FC gets no bias input, which every kernel here - LiteRT's dense, sparse and hybrid FCs,
    XNNPACK and TFLite Micro - treats as zero)."""

    weight: Weight
    bias: np.ndarray | None
    late: _Prepared | None = None  # a variant cell's late rows (GRU lbr=0 n_h over r*h), backends/tflite/cells.py


class _Writer:
    """Emits ops into a ``Graph``; weights and constants are created once and shared by every step."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.S = graph.S
        self._weights: dict[str, tuple[int, int]] = {}
        self._consts: dict[tuple, int] = {}

    # ---- constants and shapes ----
    def _int_const(self, name: str, values) -> int:
        return self.const(name, np.asarray(values, np.int32))

    def const(self, name: str, values) -> int:
        """A constant, stored once per (name, value)."""
        values = np.asarray(values)
        key = (name, values.dtype.str, values.shape, values.tobytes())
        if key not in self._consts:
            self._consts[key] = self.g.const(name, values)
        return self._consts[key]

    def _same(self, name: str, like: int) -> int:
        return self.g.activation(name, self.g.shapes[like])

    def width(self, x: int) -> int:
        return self.g.shapes[x][-1]

    # ---- elementwise ----
    def unary(self, code: str, x: int, name: str) -> int:
        out = self._same(name, x)
        options = self.S.SoftmaxOptionsT() if code == "SOFTMAX" else None
        if options is not None:
            options.beta = 1.0
        self.g.op(code, [x], [out], options)
        return out

    def activate(self, x: int, activation: str, name: str) -> int:
        return x if activation == "none" else self.unary(ACTIVATION_OPS[activation], x, name)

    def binary(self, code: str, a: int, b: int, name: str) -> int:
        """Elementwise ``a op b``; ``b`` may broadcast ([n] constants, [batch, 1] columns)."""
        out = self.g.activation(name, list(np.broadcast_shapes(tuple(self.g.shapes[a]), tuple(self.g.shapes[b]))))
        options = {
            "ADD": self.S.AddOptionsT,
            "MUL": self.S.MulOptionsT,
            "SUB": self.S.SubOptionsT,
            "DIV": self.S.DivOptionsT,
            "MAXIMUM": self.S.MaximumMinimumOptionsT,
            "MINIMUM": self.S.MaximumMinimumOptionsT,
        }[code]()
        self.g.op(code, [a, b], [out], options)
        return out

    def mean_columns(self, x: int, name: str) -> int:
        """[batch, n] -> [batch, 1]: the mean over the features."""
        out = self.g.activation(name, [self.g.shapes[x][0], 1])
        opts = self.S.ReducerOptionsT()
        opts.keepDims = True
        self.g.op("MEAN", [x, self._int_const("axis_1", [1])], [out], opts)
        return out

    def select(self, condition: int, a: int, b: int, name: str) -> int:
        """``condition ? a : b``; the [batch, 1] condition broadcasts over the features."""
        out = self._same(name, a)
        self.g.op("SELECT_V2", [condition, a, b], [out], self.S.SelectV2OptionsT())
        return out

    def greater(self, a: int, b: int, name: str) -> int:
        out = self.g.tensor(name, self.g.shapes[a], np.bool_, batched=True)
        self.g.op("GREATER", [a, b], [out], self.S.GreaterOptionsT())
        return out

    # ---- shapes ----
    def split(self, x: int, sizes: list[int], name: str) -> list[int]:
        """Split the last axis of a [batch, n] tensor."""
        batch = self.g.shapes[x][0]
        outs = [self.g.activation(f"{name}{k}", [batch, s]) for k, s in enumerate(sizes)]
        axis = self._int_const("axis1", np.int32(1))
        if len(set(sizes)) == 1:
            opts = self.S.SplitOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT", [axis, x], outs, opts)
        else:
            opts = self.S.SplitVOptionsT()
            opts.numSplits = len(sizes)
            self.g.op("SPLIT_V", [x, self._int_const("split_sizes", sizes), axis], outs, opts)
        return outs

    def columns(self, x: int, start: int, size: int, name: str) -> int:
        """Columns ``start .. start + size`` of a [batch, n] tensor (a new tensor, also when it is all of it)."""
        out = self.g.activation(name, [self.g.shapes[x][0], size])
        self.g.op(
            "SLICE",
            [x, self._int_const("slice_begin", [0, start]), self._int_const("slice_size", [-1, size])],
            [out],
            self.S.SliceOptionsT(),
        )
        return out

    def concat(self, parts: list[int], name: str) -> int:
        if len(parts) == 1:
            return parts[0]
        batch = self.g.shapes[parts[0]][0]
        out = self.g.activation(name, [batch, sum(self.g.shapes[p][1] for p in parts)])
        opts = self.S.ConcatenationOptionsT()
        opts.axis = 1
        self.g.op("CONCATENATION", parts, [out], opts)
        return out

    def pad(self, x: int, right: int, name: str, left: int = 0) -> int:
        """Zeros added on the left / right of a [batch, n] tensor."""
        if right == 0 and left == 0:
            return x
        batch, n = self.g.shapes[x]
        out = self.g.activation(name, [batch, left + n + right])
        self.g.op("PAD", [x, self._int_const("pad", [[0, 0], [left, right]])], [out], self.S.PadOptionsT())
        return out

    def pack_time(self, steps: list[int], name: str) -> int:
        """T tensors [batch, C] -> [batch, T, C]."""
        batch, c = self.g.shapes[steps[0]]
        out = self.g.activation(name, [batch, len(steps), c])
        opts = self.S.PackOptionsT()
        opts.valuesCount, opts.axis = len(steps), 1
        self.g.op("PACK", steps, [out], opts)
        return out

    def copy(self, x: int, name: str) -> int:
        """The same values in a new tensor (a graph output cannot be two named outputs at once)."""
        out = self._same(name, x)
        opts = self.S.ReshapeOptionsT()
        opts.newShape = [-1, self.width(x)]
        self.g.op("RESHAPE", [x, self._int_const("shape", [-1, self.width(x)])], [out], opts)
        return out

    # ---- weights and the fully connected layer ----
    def _filter(self, w: Weight) -> int:
        S, g = self.S, self.g
        shape = [w.rows, w.layout.cols]
        np_type = np.int8 if w.dtype == "int8" else np.float32
        quant = None
        if w.scales is not None:
            quant = S.QuantizationParametersT()
            quant.scale = [float(s) for s in w.scales]
            quant.zeroPoint = [0] * w.rows
            quant.quantizedDimension = 0
        if not w.sparse:
            return g.tensor(w.name, shape, np_type, data=w.values, quantization=quant)
        sparsity = S.SparsityParametersT()
        dims = [self._dim_dense(w.rows), self._dim_csr(w.segments, w.indices)]
        if w.block > 1:
            dims.append(self._dim_dense(w.block))
            sparsity.traversalOrder, sparsity.blockMap = [0, 1, 2], [1]
        else:
            sparsity.traversalOrder = [0, 1]
        sparsity.dimMetadata = dims
        stored = g.tensor(
            w.name + ("/sparse" if w.densify else ""),
            shape,
            np_type,
            data=w.values,
            sparsity=sparsity,
            quantization=quant,
        )
        if not w.densify:
            return stored
        dense = g.tensor(w.name, shape, np_type)
        g.op("DENSIFY", [stored], [dense], self.S.DensifyOptionsT())
        return dense

    def _dim_dense(self, size: int):
        d = self.S.DimensionMetadataT()
        d.format, d.denseSize = self.S.DimensionType.DENSE, int(size)
        return d

    def _dim_csr(self, segments: np.ndarray, indices: np.ndarray):
        d = self.S.DimensionMetadataT()
        d.format = self.S.DimensionType.SPARSE_CSR
        d.arraySegmentsType, d.arraySegments = self._index_vector(segments)
        d.arrayIndicesType, d.arrayIndices = self._index_vector(indices)
        return d

    def _index_vector(self, values: np.ndarray):
        """The narrowest index vector that holds ``values`` (Uint8, Uint16 or Int32)."""
        S, dtype = self.S, narrowest(values)
        kind = {"uint8": "Uint8Vector", "uint16": "Uint16Vector", "int32": "Int32Vector"}[dtype.name]
        vector = getattr(S, kind + "T")()
        vector.values = np.asarray(values).astype(dtype)
        return getattr(S.SparseIndexVector, kind), vector

    def fully_connected(self, x: int, prepared: _Prepared, name: str) -> int:
        """x [batch, n] -> [batch, rows]; ``x`` is padded to the weight's column layout if needed."""
        w = prepared.weight
        x = self.pad(x, w.layout.cols - self.g.shapes[x][1], f"{name}/in")
        # FC takes batch = x.size / cols, so a width mismatch would be silently "valid": refuse it here.
        assert self.g.shapes[x][1] == w.layout.cols, (name, self.g.shapes[x], w.layout.cols)
        if w.name not in self._weights:
            bias = (
                -1
                if prepared.bias is None
                else self.g.const(w.name.replace("weight", "bias"), prepared.bias.astype(np.float32))
            )
            self._weights[w.name] = (self._filter(w), bias)
        filt, bias = self._weights[w.name]
        out = self.g.activation(name, [self.g.shapes[x][0], w.rows])
        opts = self.S.FullyConnectedOptionsT()
        opts.asymmetricQuantizeInputs = w.dtype == "int8"
        self.g.op("FULLY_CONNECTED", [x, filt, bias], [out], opts, w.fc_version)
        return out

    def fully_connected_over(self, pieces: list[int | None], prepared: _Prepared, name: str) -> int:
        """The FC over the concatenation of ``pieces`` (the weight's column parts, in order); a ``None``
        piece is zeros, which only a leading or trailing run may be (they become one PAD)."""
        layout = prepared.weight.layout
        present = [k for k, p in enumerate(pieces) if p is not None]
        assert present == list(range(present[0], present[-1] + 1)), "zero pieces only at the ends"
        padded = [self.pad(pieces[k], layout.padded[k] - layout.widths[k], f"{name}/z{k}") for k in present]
        z = self.concat(padded, f"{name}/z")
        left = sum(layout.padded[: present[0]])
        right = sum(layout.padded[present[-1] + 1 :])
        return self.fully_connected(self.pad(z, right, f"{name}/z_pad", left), prepared, name)
