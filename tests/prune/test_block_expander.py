import numpy as np
import pytest

from edgeprune import prune
from edgeprune.frontend.torch_lowering import lower
from edgeprune.graphs.bipartite import gate_slices
from edgeprune.graphs.spectral import expansion
from edgeprune.models import CELL_GATES
from edgeprune.passes.structure import BLOCK_SHAPES, analyze
from edgeprune.prune.block_expander import BLOCKS, parse_block

from ..conftest import make_model


def tiles_of(mask: np.ndarray, block) -> np.ndarray:
    """Tile occupancy on a grid anchored at (0, 0), asserting every tile is all-on or all-off."""
    br, bc = block
    rows, cols = mask.shape
    nr, nc = -(-rows // br), -(-cols // bc)
    padded = np.zeros((nr * br, nc * bc), dtype=int)
    padded[:rows, :cols] = mask
    covered = np.zeros_like(padded)
    covered[:rows, :cols] = 1
    on = padded.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    size = covered.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    assert np.all((on == 0) | (on == size)), "a tile is partly kept"
    return on > 0


def test_block_choices_are_structure_pass_shapes():
    assert {parse_block(b) for b in BLOCKS} == set(BLOCK_SHAPES)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_masks_are_regular_at_block_level(block, cell, sparsity):
    model = make_model(cell, (16, 8), True, input_size=12, seed=1)
    out = prune.prune_model(
        model,
        "block-expander",
        sparsity,
        seed=0,
        options={"block": block, "row_degrees": "equal", "accept_reached": True},
    )
    shape = parse_block(block)
    for name, mask in out.model.masks().items():
        mask = mask.numpy()
        per_gate = [tiles_of(mask[rs], shape) for rs in gate_slices(mask.shape[0], CELL_GATES[cell])]
        counts = {int(c) for t in per_gate for c in t.sum(1)}
        assert len(counts) == 1, (name, counts)  # every block-row of every gate: the same tile count
        n_bcols = per_gate[0].shape[1]
        assert counts == {max(1, round((1 - sparsity) * n_bcols))}
        for t in per_gate:
            assert t.sum(0).max() - t.sum(0).min() <= 1
        total = np.sum(per_gate, axis=0).sum(0)
        assert total.max() - total.min() <= 1
        assert out.report["method_report"]["weights"][name]["row_degree"] == [counts.pop()] * 2


@pytest.mark.parametrize("block", ["1x4", "4x1", "8x1", "4x4"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.95])
def test_balanced_masks_keep_the_requested_tile_count_with_row_counts_within_one(block, sparsity):
    model = make_model("lstm", (16, 8), True, input_size=16, seed=1)  # every side a multiple of the tiles
    out = prune.prune_model(model, "block-expander", sparsity, seed=0, options={"block": block})
    shape = parse_block(block)
    for name, mask in out.model.masks().items():
        mask = mask.numpy()
        per_gate = [tiles_of(mask[rs], shape) for rs in gate_slices(mask.shape[0], 4)]
        n_tiles = sum(t.size for t in per_gate)
        assert sum(int(t.sum()) for t in per_gate) == round((1 - sparsity) * n_tiles), name
        rows = np.concatenate([t.sum(1) for t in per_gate])
        assert rows.max() - rows.min() <= 1, name
        gate_totals = [int(t.sum()) for t in per_gate]
        assert max(gate_totals) - min(gate_totals) <= 1, name
        total = np.sum(per_gate, axis=0).sum(0)
        assert total.max() - total.min() <= 1, name


@pytest.mark.parametrize("block", ["1x4", "4x1", "8x1", "4x4"])
def test_the_fused_ir_matrix_is_exact_and_regular_when_sizes_align(block):
    # input 8, hidden 16: every weight's tiles line up with the fused [x | h] grid of the IR, so
    # the structure pass used by the backends sees exact, regular blocks.
    model = make_model("lstm", (16,), input_size=8, seed=0)
    pruned = prune.prune_model(
        model, "block-expander", 0.75, seed=0, options={"block": block, "row_degrees": "equal", "accept_reached": True}
    ).model
    stats = analyze(lower(pruned).layers[0].weight)
    b = stats.blocks[parse_block(block)]
    assert b.exact and b.regular, b


def test_partial_edge_tiles_count_as_one_tile():
    # 10 input columns with 1x4 tiles: tiles [0:4], [4:8] and the partial [8:10].
    model = make_model("rnn", (8,), input_size=10, seed=0)
    out = prune.prune_model(
        model, "block-expander", 0.6, seed=0, options={"block": "1x4", "row_degrees": "equal", "accept_reached": True}
    )
    mask = out.model.masks()["layers.0.weight_ih"].numpy()
    tiles = tiles_of(mask, (1, 4))
    assert tiles.shape == (8, 3) and np.all(tiles.sum(1) == 1)  # round(0.4 * 3) = 1 tile per row


def test_tile_graph_is_checked_and_element_graph_reported():
    model = make_model("lstm", (64,), input_size=32, seed=0)
    out = prune.prune_model(model, "block-expander", 0.5, seed=0, options={"block": "1x4"})
    rep = out.report["method_report"]["weights"]["layers.0.weight_hh"]
    assert rep["ramanujan"] is True and all(g["ramanujan"] for g in rep["gates"])
    # The element graph is the tile graph blown up by ones(1, 4): σ(M ⊗ J) = σ(M)·√4, while the
    # degrees only grow on one side, so the element graph is a weaker expander than its tiles.
    mask = out.model.masks()["layers.0.weight_hh"].numpy()[:64]
    tiles = tiles_of(mask, (1, 4))
    element, tile = expansion(mask), expansion(tiles)
    assert element.sigma2 == pytest.approx(2 * tile.sigma2)
    assert element.ramanujan_gap < tile.ramanujan_gap
    assert rep["whole_matrix_ramanujan_gap"] == pytest.approx(
        expansion(out.model.masks()["layers.0.weight_hh"].numpy()).ramanujan_gap
    )
    assert out.report["method_report"]["block"] == "1x4"
