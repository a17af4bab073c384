import numpy as np
import pytest

from edgeprune import prune
from edgeprune.frontend.torch_lowering import lower
from edgeprune.graphs.bipartite import fused_views, gate_names, gate_slices, matrix_views

from ..conftest import make_model


def test_matrix_views_whole_then_gates():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((8, 3))
    mask = rng.random((8, 3)) < 0.5
    views = matrix_views("layers.0.weight_ih", values, mask, gates=4, cell="lstm", layer=0)
    assert [v.name for v in views] == ["layers.0.weight_ih"] + [f"layers.0.weight_ih[{g}]" for g in "ifgo"]
    assert views[0].gate is None and [v.gate for v in views[1:]] == list("ifgo")
    for k, v in enumerate(views[1:]):
        assert np.array_equal(v.mask, mask[2 * k : 2 * k + 2])
        assert np.array_equal(v.values, np.where(mask, values, 0)[2 * k : 2 * k + 2])


def test_unmasked_matrix_uses_its_nonzeros():
    values = np.array([[0.0, 1.0], [2.0, 0.0]])
    (view,) = matrix_views("w", values, None)
    assert np.array_equal(view.mask, values != 0)


def test_gate_helpers():
    assert gate_slices(12, 3) == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert gate_names("gru", 3) == ("r", "z", "n") and gate_names(None, 2) == ("0", "1")
    with pytest.raises(ValueError):
        gate_slices(10, 4)


@pytest.mark.parametrize("cell,hidden,feedback", [("lstm", (12, 9), True), ("rnn", (12,), False)])
def test_fused_view_is_the_ir_matrix(cell, hidden, feedback):
    # The time-unfolded layer [W_ih | W_hh | W_fb] has the IR's column order: its pattern must be
    # exactly the lowered CSR's.
    model = prune.prune_model(make_model(cell, hidden, feedback), "random", 0.6, seed=1).model
    ir_model = lower(model)
    for l, layer in enumerate(model.layers):
        parts = [
            (layer.effective(a).detach().numpy(), layer.get_mask(a).numpy().astype(bool)) for a in layer.weight_names()
        ]
        views = fused_views(l, parts, gates=4 if cell == "lstm" else 1, cell=cell)
        pattern = ir_model.layers[l].weight.to_dense() != 0
        keep = np.zeros_like(pattern)
        w = ir_model.layers[l].weight
        for r in range(w.shape[0]):
            keep[r, w.indices[w.indptr[r] : w.indptr[r + 1]]] = True
        assert np.array_equal(views[0].mask, keep)
        assert views[0].weight is None and views[0].name == f"layers.{l}.fused"
        if cell == "lstm":
            assert [v.gate for v in views[1:]] == list("ifgo")


def test_graph_modules_import_no_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, edgeprune.graphs.bipartite, edgeprune.graphs.spectral, edgeprune.graphs.biregular; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
