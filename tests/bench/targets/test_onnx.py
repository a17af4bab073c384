import numpy as np
import pytest

from edgeprune.bench.targets import memory_info

onnx = pytest.importorskip("onnx", reason="needs the onnx package")


def test_onnx_weights_count_dense_as_onnxruntime_holds_them(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    W = numpy_helper.from_array(np.zeros((1, 8, 4), np.float32), "W")  # LSTM input weights: a matrix
    B = numpy_helper.from_array(np.zeros((1, 16), np.float32), "B")  # LSTM biases: a vector
    values = numpy_helper.from_array(np.ones(2, np.float32), "head")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "head_idx")
    sparse = helper.make_sparse_tensor(values, indices, [3, 2])  # 2 of 6 stored: ORT densifies at load
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[W, B],
        sparse_initializer=[sparse],
    )
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    m = memory_info("onnx", {}, tmp_path, {"name": "m.onnx"})
    assert m["weight_bytes"] == (32 + 6) * 4 and m["bias_bytes"] == 16 * 4 and m["index_bytes"] == 0
    assert m["stored_values"] == 38
    assert memory_info("onnx", {}, tmp_path, {"name": "missing.onnx"}) == {}
