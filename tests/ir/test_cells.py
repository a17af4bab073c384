"""The cell table (ir/cells.py): its orders are consistent, and the ONNX permutation matches what
onnxruntime computes against torch's own cells."""

import numpy as np
import pytest
import torch

from edgeprune import ir
from edgeprune.errors import IRError
from edgeprune.ir.cells import CELLS, SIDES, block_order, block_rows, cell_spec


def test_unknown_cell_is_one_line_naming_the_cells():
    with pytest.raises(IRError) as e:
        cell_spec("lstmx")
    assert str(e.value) == "unknown cell 'lstmx' (expected one of lstm, gru, rnn)"
    with pytest.raises(IRError, match="unknown cell"):
        cell_spec(None)


@pytest.mark.parametrize("name", list(CELLS))
def test_every_order_covers_the_same_blocks(name):
    spec = cell_spec(name)
    assert spec.name == name
    assert sorted(spec.onnx_gates) == sorted(spec.torch_gates)
    assert sorted(spec.tflite_rows) == sorted(spec.ir_rows)
    assert spec.states[0] == "h"  # every consumer feeds the next layer from the first state
    # every IR row comes from one torch gate; every torch gate is read from both sides by some IR row
    for gate in spec.torch_gates:
        blocks = {side: spec.ir_block(gate, side) for side in SIDES}
        for side, b in blocks.items():
            source, only = spec.ir_row_source(spec.ir_rows[b])
            assert source == gate and only in (None, side)
    read = {spec.ir_block(g, s) for g in spec.torch_gates for s in SIDES}
    assert read == set(range(spec.ir_gates))


def test_the_ir_views_follow_the_table():
    assert ir.IR_GATES == {"lstm": 4, "gru": 4, "rnn": 1}
    assert ir.GATE_NAMES["gru"] == ("r", "z", "n_x", "n_h")
    from edgeprune.models import CELL_GATES

    assert CELL_GATES == {"lstm": 4, "gru": 3, "rnn": 1}


def test_block_order_and_rows_permute_and_invert():
    src, dst = ("i", "f", "g", "o"), ("i", "o", "f", "g")
    there = block_order(src, dst)
    assert there == (0, 3, 1, 2)
    back = block_order(dst, src)
    assert tuple(there[b] for b in back) == (0, 1, 2, 3)
    m = np.arange(8 * 3).reshape(8, 3)  # 4 blocks of 2 rows
    assert np.array_equal(m[block_rows(there, 2)][block_rows(back, 2)], m)
    assert np.array_equal(m[block_rows(there, 2)][2:4], m[6:8])  # ONNX's second block is torch's o
    with pytest.raises(IRError, match="c not in the order"):
        block_order(src, ("i", "c"))


def _onnx_cell(spec, w_ih, w_hh, b_ih, b_hh, H):
    """One ONNX recurrent op whose W/R/B are torch's weights reordered by the table's onnx_gates."""
    from onnx import TensorProto, helper, numpy_helper

    rows = block_rows(block_order(spec.torch_gates, spec.onnx_gates), H)
    inits = [
        numpy_helper.from_array(a[None].astype(np.float32), n)
        for a, n in ((w_ih[rows], "W"), (w_hh[rows], "R"), (np.concatenate([b_ih[rows], b_hh[rows]]), "B"))
    ]
    attrs = {"linear_before_reset": 1} if spec.name == "gru" else {}
    node = helper.make_node(spec.onnx_op, ["x", "W", "R", "B"], ["", "y_h"], hidden_size=H, **attrs)
    graph = helper.make_graph(
        [node],
        "cell",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 3])],
        [helper.make_tensor_value_info("y_h", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("name", list(CELLS))
def test_onnx_gate_order_matches_onnxruntime_against_torch(name):
    ort = pytest.importorskip("onnxruntime")
    spec = cell_spec(name)
    H = 5
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[name](3, H)
    params = {k: v.detach().numpy() for k, v in module.named_parameters()}
    proto = _onnx_cell(
        spec, params["weight_ih_l0"], params["weight_hh_l0"], params["bias_ih_l0"], params["bias_hh_l0"], H
    )
    x = np.random.default_rng(0).standard_normal((7, 2, 3)).astype(np.float32)  # [time, batch, features]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x})[0][0]
    out, _ = module(torch.from_numpy(x))
    np.testing.assert_allclose(got, out[-1].detach().numpy(), atol=1e-5)
    # a wrong order (any other permutation of the gates) gives a different cell
    if len(spec.onnx_gates) > 1:
        wrong = spec.torch_gates  # torch's own order differs from ONNX's for LSTM and GRU
        bad = _onnx_cell(
            type(spec)(**{**spec.__dict__, "onnx_gates": wrong}),
            params["weight_ih_l0"],
            params["weight_hh_l0"],
            params["bias_ih_l0"],
            params["bias_hh_l0"],
            H,
        )
        sess = ort.InferenceSession(bad.SerializeToString(), providers=["CPUExecutionProvider"])
        assert np.max(np.abs(sess.run(None, {"x": x})[0][0] - got)) > 1e-3
