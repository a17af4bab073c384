import numpy as np

from edgeprune import frontend, prune
from edgeprune.backends import get

from ..conftest import make_model


def test_emitted_files_run_and_match_torch(tmp_path, inputs):
    import torch

    model = prune.prune_model(make_model("gru", (12, 9), True), "magnitude", 0.9).model
    backend = get("ir")
    [artifact] = backend.emit(frontend.lower(model), tmp_path, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "weights.npz"]
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    with backend.runner(artifact, tmp_path, {}) as runner:
        assert np.max(np.abs(runner.run(inputs) - expected)) <= 1e-5
        assert np.max(np.abs(runner.stream(inputs) - expected)) <= 1e-5
