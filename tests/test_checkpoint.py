import numpy as np
import pytest
import torch

import edgeprune
from edgeprune.errors import CheckpointError

from .conftest import make_model


def test_round_trip_keeps_config_weights_masks_and_meta(tmp_path, inputs):
    model = make_model("gru", (12, 9), True)
    mask = torch.rand_like(model.layers[1].weight_ih) > 0.3
    model.set_masks({"layers.1.weight_ih": mask})
    edgeprune.save(model, tmp_path / "m.pt")
    loaded = edgeprune.load(tmp_path / "m.pt")
    assert loaded.config == model.config
    assert torch.equal(loaded.masks()["layers.1.weight_ih"], mask)
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_same_model_gives_same_bytes_whatever_the_name(tmp_path):
    model = make_model()
    a = edgeprune.save(model, tmp_path / "a.pt", {"x": 1})
    b = edgeprune.save(model, tmp_path / "other-name.pt", {"x": 1})
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable edgeprune checkpoint"),
    (b"garbage" * 100, "not a readable edgeprune checkpoint"),
])
def test_corrupt_file_is_one_clear_error(tmp_path, content, message):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        edgeprune.load(tmp_path / "bad.pt")


def test_truncated_checkpoint(tmp_path):
    path = edgeprune.save(make_model(), tmp_path / "m.pt")
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=str(path)):
        edgeprune.load(path)


def test_foreign_torch_file_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an edgeprune checkpoint"):
        edgeprune.load(tmp_path / "foreign.pt")


def test_pickled_object_is_not_executed(tmp_path):
    torch.save(np.random.default_rng(0), tmp_path / "pickle.pt")  # needs full unpickling
    with pytest.raises(CheckpointError, match="not a readable"):
        edgeprune.load(tmp_path / "pickle.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        edgeprune.load(tmp_path / "nope.pt")
