import numpy as np

from edgeprune.ir import CSR
from edgeprune.passes import analyze


def test_row_regular_and_exact_1x4_blocks():
    dense = np.zeros((4, 8), np.float32)
    dense[0, 0:4] = 1
    dense[1, 4:8] = 2
    dense[2, 0:4] = 3
    dense[3, 4:8] = 4
    s = analyze(CSR.from_dense(dense))
    assert s.row_regular and s.row_degree_min == 4
    b = s.blocks[(1, 4)]
    assert b.blocks == 4 and b.exact and b.regular
    assert not s.blocks[(4, 1)].exact  # columns are not filled 4 rows deep
    assert s.blocks[(4, 4)].fill == 0.5


def test_irregular_pattern():
    rng = np.random.default_rng(0)
    dense = (rng.random((16, 16)) > 0.7).astype(np.float32)
    s = analyze(CSR.from_dense(dense))
    assert s.nnz == int(dense.sum()) and s.density == dense.mean()
    assert s.row_degree_min == dense.sum(1).min() and s.row_degree_max == dense.sum(1).max()
    assert not s.blocks[(1, 4)].exact


def test_unaligned_shapes_are_never_exact():
    s = analyze(CSR.from_dense(np.ones((3, 6), np.float32)))
    assert s.blocks[(1, 4)].fill < 1.0 or not s.blocks[(1, 4)].aligned
    assert not s.blocks[(1, 4)].exact
