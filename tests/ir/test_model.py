import copy

import numpy as np
import pytest

from edgeprune import frontend, ir, prune
from edgeprune.errors import IRError

from ..conftest import make_model


@pytest.fixture
def model():
    return frontend.lower(prune.prune_model(make_model("gru", (12, 9), True), "random", 0.7, seed=0).model)


def test_csr_from_dense_round_trip():
    dense = np.array([[0, 2, 0], [0, 0, 0], [3, 0, 4]], np.float32)
    m = ir.CSR.from_dense(dense)
    assert m.indptr.tolist() == [0, 1, 1, 3] and m.indices.tolist() == [1, 0, 2]
    np.testing.assert_array_equal(m.to_dense(), dense)
    keep = np.ones_like(dense, bool)
    assert ir.CSR.from_dense(dense, keep).nnz == 9  # explicit zeros kept when the mask says so


def _broken(model, how):
    m = copy.deepcopy(model)
    w = m.layers[0].weight
    if how == "index":
        w.indices[3] = w.shape[1] + 5
    elif how == "nan":
        w.data[0] = np.nan
    elif how == "shape":
        m.layers[0].weight = ir.CSR(w.data, w.indices, w.indptr, (w.shape[0] + 1, w.shape[1]))
    elif how == "indptr":
        w.indptr[2], w.indptr[3] = w.indptr[3], w.indptr[2] - 1
    elif how == "order":
        start = w.indptr[0]
        w.indices[start], w.indices[start + 1] = w.indices[start + 1], w.indices[start]
    elif how == "bias":
        m.layers[1].bias = m.layers[1].bias[:-1]
    elif how == "gru":
        # put a state-column weight into an n_x row (the candidate's input part)
        dense = w.to_dense()
        dense[m.layers[0].gate_rows("n_x").start, m.layers[0].column_slices()["state"].start] = 1.0
        m.layers[0].weight = ir.CSR.from_dense(dense)
    elif how == "head":
        m.head.bias = np.full_like(m.head.bias, np.inf)
    elif how == "chain":
        m.layers[1].input_size += 1
    return m


@pytest.mark.parametrize(
    "how, message",
    [
        ("index", "column index .* out of range"),
        ("nan", "non-finite"),
        ("shape", "weight shape"),
        ("indptr", "monotonic"),
        ("order", "strictly increasing"),
        ("bias", "bias: shape"),
        ("gru", "gate n_x"),
        ("head", "head bias: contains non-finite"),
        ("chain", "input size"),
    ],
)
def test_invalid_ir_is_refused_with_a_clear_message(model, how, message):
    model.validate()
    with pytest.raises(IRError, match=message):
        _broken(model, how).validate()


def test_lowered_model_describes_itself(model):
    assert model.feedback and model.num_classes == 4
    assert [l.cols for l in model.layers] == [5 + 12 + 9, 12 + 9]
    assert model.nnz() == sum(l.weight.nnz for l in model.layers)
