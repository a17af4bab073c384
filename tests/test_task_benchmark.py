"""The task benchmark driver's row computation (benchmarks/tasks/driver.py): achieved sparsity from the
masks, magnitude paired at another method's per-matrix counts, the centred SNR, and the per-row summary."""

import numpy as np
import pytest
import torch

from benchmarks.tasks import driver
from edgeprune import checkpoint, data
from edgeprune.prune import describe_weights, prune_model


def test_achieved_sparsity_counts_every_masked_entry():
    masks = {"a": np.ones((4, 5), bool), "b": np.zeros((10, 3), bool)}
    masks["a"][0, :3] = False
    assert driver.achieved_sparsity(masks) == pytest.approx((3 + 30) / 50)
    assert driver.kept_counts(masks) == {"a": 17, "b": 0}


def test_magnitude_twin_keeps_the_same_counts_per_matrix_and_the_largest_weights(digits_checkpoint):
    dense = checkpoint.load(digits_checkpoint)
    ds = data.load("digits")
    other = prune_model(dense, "expander", 0.8, seed=1).model
    masks = {n: m.numpy().astype(bool) for n, m in other.masks().items()}
    task = driver.Task("digits", "classification", "lstm:16,dense", epochs=1, lr=1e-2, finetune_epochs=0)
    twin, mags = driver.magnitude_twin(dense, masks, ds, task, seed=0)
    assert driver.kept_counts(mags) == driver.kept_counts(masks)
    assert driver.achieved_sparsity(mags) == pytest.approx(driver.achieved_sparsity(masks))
    assert any((mags[n] != masks[n]).any() for n in masks)  # a different mask, same counts
    weights = describe_weights(dense)
    for n, m in mags.items():
        w = np.abs(weights[n].values)
        assert w[m].min() >= w[~m].max()  # the largest |w| of each matrix, nothing else
        applied = twin.masks()[n].numpy().astype(bool)
        np.testing.assert_array_equal(applied, m)  # the fine-tuned twin runs with exactly that mask
        assert torch.count_nonzero(twin.state_dict()[n]).item() <= m.sum()


def test_centred_snr_matches_the_baselines_definition():
    pytest.importorskip("aeon")
    from benchmarks.tasks import baselines

    ds = data.load("daphnet-denoise", layouts=data.ANY_LAYOUT, variable_length=True)
    noisy = ds.X_test  # the identity "model": its SNR is the noisy input's in task_baselines.md
    mse = float(np.mean((ds.y_test.astype(np.float64) - noisy) ** 2))
    expected = baselines._regression_scores(ds, noisy)
    assert driver.snr_db(driver.centred_power(ds), mse) == pytest.approx(expected["snr_db"], rel=1e-9)
    assert driver.centred_power(data.load("digits")) is None


def _cell(label, seed, sparsity, acc, int8=True):
    c = {"f32": {"accuracy": acc, "macro_f1": acc, "m4_flash_bytes": 100 + seed}}
    c["int8"] = {"accuracy": acc - 0.01} if int8 else {"failed": "verification failed"}
    return {"label": label, "requested": 0.9, "seed": seed, "sparsity": sparsity, "c": c, "verified": {"c[f32]": True}}


def test_summary_rows_average_seeds_and_never_average_an_unverified_build():
    task = driver.Task("x", "classification", "gru:8,dense", epochs=1, lr=1e-2, finetune_epochs=0)
    cells = [_cell("magnitude", 0, 0.9, 0.8), _cell("magnitude", 1, 0.9, 0.9, int8=False)]
    cells.append({"label": "lattice", "seed": 0, "refused": "cannot reach it"})
    [row] = driver.summarize(task, cells)
    assert row["seeds"] == [0, 1] and row["f32_accuracy"] == [0.8, 0.9] and row["int8_accuracy"] == [0.79]
    assert driver._verified_text(row, "int8_accuracy") == " (1/2 verified)"
    assert driver.mean(row["f32_m4_flash_bytes"]) == 100.5
    table = driver.table([row], regression=False)
    assert "85.0 ± 7.1" in table and "79.0 (1/2 verified)" in table
