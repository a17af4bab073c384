import pickle
import warnings
from pathlib import Path

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


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable edgeprune checkpoint"),
        (b"garbage" * 100, "not a readable edgeprune checkpoint"),
    ],
)
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


# -- hardening (issue 18): every damaged or foreign file is one line, nothing damaged loads -------------

FIXTURES = Path(__file__).parent / "fixtures"


def _resave(path, edit, *, keep_checksum=False):
    """A crafted checkpoint: the payload edited and written back with torch (not re-signed)."""
    payload = torch.load(path, weights_only=True)
    if not keep_checksum:
        payload.pop("sha256", None)
        payload["version"] = 1  # pretend to be an old file: only the structural checks apply
    edit(payload)
    torch.save(payload, path)
    return path


def test_version_1_checkpoints_without_a_checksum_still_load():
    path = FIXTURES / "checkpoint_v1.pt"
    raw = torch.load(path, weights_only=True)
    assert raw["version"] == 1 and "sha256" not in raw
    model, meta = edgeprune.checkpoint.load_with_meta(path)
    assert model.config.cell == "gru" and model.config.hidden_sizes == (6, 4) and model.config.feedback
    assert meta == {"dataset": "digits", "accuracy": 0.5}
    assert torch.equal(model.masks()["layers.0.weight_hh"], raw["masks"]["layers.0.weight_hh"])
    for name, tensor in raw["state"].items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_new_checkpoints_carry_the_payload_checksum(tmp_path):
    path = edgeprune.save(make_model(), tmp_path / "m.pt", {"x": 1})
    payload = torch.load(path, weights_only=True)
    assert payload["version"] == 2
    assert payload["sha256"] == edgeprune.checkpoint.payload_digest(payload) and len(payload["sha256"]) == 64


def test_flipped_bytes_are_caught(tmp_path):
    """Before: 64 flipped bytes mid-file loaded with rc 0 and NaN weights (torch does not check the zip CRC)."""
    path = edgeprune.save(make_model(hidden=(32,)), tmp_path / "m.pt")
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 64] = bytes(b ^ 0xFF for b in raw[mid : mid + 64])
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged"):
        edgeprune.load(path)


def test_a_tensor_changed_after_signing_is_caught(tmp_path):
    path = edgeprune.save(make_model(), tmp_path / "m.pt")
    _resave(path, lambda p: p["state"]["head.bias"].add_(1.0), keep_checksum=True)
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        edgeprune.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["state"]["layers.0.weight_hh"].view(-1)[:15].fill_(float("nan")), r"weight_hh has 15 NaN"),
        (lambda p: p["state"]["head.bias"].fill_(float("inf")), r"head.bias has 4 NaN/infinite"),
        (lambda p: p["state"].update({"head.bias": torch.zeros(7)}), r"head.bias is float32 \[7\], the config needs"),
        (lambda p: p["state"].update({"head.bias": torch.zeros(4, dtype=torch.float64)}), r"is float64"),
        (lambda p: p["state"].pop("head.bias"), r"config needs 964 weights, the file holds 960"),
        (lambda p: p["state"].update(extra=torch.zeros(1)), "unexpected extra"),
        (
            lambda p: p["masks"].update({"layers.0.weight_hh": torch.ones(3, 3, dtype=torch.bool)}),
            r"mask of .* bool \[48, 12\]",
        ),
        (lambda p: p["masks"].update({"layers.0.weight_hh": torch.full((48, 12), 0.5)}), "mask of .* is float32"),
        (lambda p: p["masks"].update({"layers.0.bias_ih": torch.ones(48, dtype=torch.bool)}), "not a prunable weight"),
        (lambda p: p["meta"].update(accuracy=float("nan")), "metadata is not plain JSON"),
        (lambda p: p.update(meta=[1]), "metadata is not a table"),
        (lambda p: p["config"]["stages"][0].update(kind="transformer"), "unknown stage kind"),
        (lambda p: p.update(version=99), "version 99 is not supported"),
    ],
)
def test_damaged_payloads_are_refused(tmp_path, edit, message):
    """Before: NaN weights and NaN metadata loaded silently (and failed later, inside compile's JSON writer)."""
    path = _resave(edgeprune.save(make_model(), tmp_path / "m.pt"), edit)
    with pytest.raises(CheckpointError, match=message):
        edgeprune.load(path)


def test_a_huge_config_is_refused_without_allocating(tmp_path):
    """Before: hidden_sizes=[10000000] tried to allocate 1.6 PB (RuntimeError from the allocator)."""
    import resource

    path = _resave(
        edgeprune.save(make_model(), tmp_path / "m.pt"), lambda p: p["config"]["stages"][0].update(size=10_000_000)
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=r"config needs 400,000,320,000,004 weights, the file holds 964"):
        edgeprune.load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing big was touched


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda f: f.write(pickle.dumps({"state": [1, 2]})), "a plain Python pickle, not loaded"),
        (lambda p: np.savez(p, a=np.zeros(3)), "a NumPy .npz archive"),
        (lambda p: np.save(p, np.zeros(3)), "a NumPy .npy array"),
        (lambda f: f.write(b"\x08\x07\x12\x07pytorch"), "not a zip archive"),
    ],
)
def test_foreign_files_get_our_own_reason_and_no_warning(tmp_path, make, reason):
    """Before: torch's UserWarning, then torch's 'Weights only load failed...' text cut at 160 characters."""
    path = tmp_path / "x.pt"
    with open(path, "wb") as f:
        make(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=reason) as info:
            edgeprune.load(path)
    assert caught == []
    assert "Weights only" not in str(info.value) and "\n" not in str(info.value)


def test_an_onnx_file_is_named_as_such(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.0")
    with pytest.raises(CheckpointError, match="an ONNX model; compile and prune read .onnx files"):
        edgeprune.load(path)


def test_saving_nan_weights_is_refused(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match="not saved: head.bias has NaN"):
        edgeprune.save(model, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
