"""Building blocks of the ONNX graphs: a node/initializer collector with unique names, (sparse) weights."""

from __future__ import annotations

import numpy as np

from ... import __version__, ir

# Every stored entry of an ONNX SparseTensorProto costs an int64 linear index plus a float32 value.
SPARSE_BYTES_PER_NONZERO = 12
SPARSE_WEIGHTS = ("off", "constant", "initializer")


def stored_pattern(m: ir.CSR) -> np.ndarray:
    """Dense boolean map of the entries ``m`` stores (its mask), stored zeros included."""
    return ir.CSR(np.ones(m.nnz, np.float32), m.indices, m.indptr, m.shape).to_dense().astype(bool)


class Graph:
    """Collects nodes and (sparse) initializers for one ONNX graph; names are unique per model."""

    def __init__(self, sparse: str = "off", opset: int = 17):
        self.opset = opset  # ops whose signature changed between opsets ask for it
        self.nodes, self.initializers, self.sparse_initializers = [], [], []
        self.sparse = sparse
        self.stored_sparse: list[str] = []
        self._names: set[str] = set()
        self._consts: dict[tuple, str] = {}

    def name(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, name: str | None = None, outputs=None, **attrs):
        """Append a node; ``outputs`` may name them (``""`` = optional output not produced)."""
        from onnx import helper

        base = name or op.lower()
        outputs = outputs or [self.name(f"{base}_out{k}" if n_out > 1 else base) for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.name(f"node/{base}"), **attrs))
        return outputs if len(outputs) > 1 else outputs[0]

    def int64s(self, values) -> str:
        """A small int64 constant (axes, shapes), shared."""
        from onnx import numpy_helper

        key = tuple(int(v) for v in values)
        if key not in self._consts:
            name = self.name("const_" + "_".join(str(v).replace("-", "m") for v in key))
            self.initializers.append(numpy_helper.from_array(np.array(key, np.int64), name))
            self._consts[key] = name
        return self._consts[key]

    def weight(self, name: str, values: np.ndarray, keep: np.ndarray | None = None) -> str:
        """A float32 weight: a dense initializer, or (when asked for and smaller) only its kept entries."""
        from onnx import helper, numpy_helper

        name = self.name(name)
        values = np.ascontiguousarray(values, dtype=np.float32)
        keep = np.ones(values.shape, bool) if keep is None else keep
        nnz = int(keep.sum())
        if self.sparse == "off" or nnz * SPARSE_BYTES_PER_NONZERO >= values.size * 4:
            self.initializers.append(numpy_helper.from_array(values, name))
            return name
        flat = np.flatnonzero(keep.reshape(-1)).astype(np.int64)  # linear indices, ascending as ONNX requires
        sparse = helper.make_sparse_tensor(
            numpy_helper.from_array(values.reshape(-1)[flat], name),
            numpy_helper.from_array(flat, name + ".indices"),
            list(values.shape),
        )
        if self.sparse == "initializer":
            self.sparse_initializers.append(sparse)
        else:  # a Constant node's sparse_value: a dense tensor to every consumer, so type inference accepts it
            self.nodes.append(
                helper.make_node("Constant", [], [name], name=self.name(f"node/{name}"), sparse_value=sparse)
            )
        self.stored_sparse.append(name)
        return name


def model_proto(g: Graph, inputs, outputs, opset: int, doc: str, meta: dict):
    from onnx import helper

    graph = helper.make_graph(
        g.nodes, "edgeprune", inputs, outputs, g.initializers, sparse_initializer=g.sparse_initializers
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph, opset_imports=opsets, producer_name="edgeprune", producer_version=__version__, doc_string=doc
    )
    # The oldest IR version that can carry this opset, so older runtimes load the file too.
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(proto, meta)
    return proto


def float_value(name: str, shape) -> object:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
