"""Every method reaches the requested sparsity per matrix (within one entry, or one tile of a block
mask), or refuses in one line saying what it can reach; --accept-reached keeps what it reaches."""

import re

import numpy as np
import pytest

from edgeprune import prune
from edgeprune.errors import PruneError

from ..conftest import make_model

# label -> (method, options, granule (entries), must reach): "must reach" methods may never refuse
METHODS = {
    "magnitude": ("magnitude", {}, 1, True),
    # a global ranking can leave a small matrix empty: refused
    "magnitude-global": ("magnitude", {"scope": "global"}, 1, False),
    "random": ("random", {}, 1, True),
    "random-regular": ("random-regular", {}, 1, True),
    "random-regular-equal": ("random-regular", {"row_degrees": "equal"}, 1, False),
    "expander": ("expander", {}, 1, True),
    "expander-equal": ("expander", {"row_degrees": "equal"}, 1, False),
    "block-expander-1x4": ("block-expander", {"block": "1x4"}, 4, False),
    "block-expander-8x1": ("block-expander", {"block": "8x1"}, 8, False),
    "lattice": ("lattice", {}, 1, True),
    "lattice-global": ("lattice", {"scope": "global"}, 1, False),
    "ramanujan-imp": ("ramanujan-imp", {"round_epochs": 0}, 1, False),
}
MODELS = {
    # weight_ih 256 x 8 (4 gates of 64 rows, 8 inputs: two 1x4 tiles per row), weight_hh 256 x 64
    "lstm64-in8": dict(cell="lstm", hidden=(64,), input_size=8),
    # odd shapes: 36x5, 36x12, 36x9 (feedback), 27x12, 27x9; 5 columns end in a partial 1x4 tile
    "gru12x9-fb-in5": dict(cell="gru", hidden=(12, 9), feedback=True, input_size=5),
}
REFUSAL = re.compile(
    r"^[\w-]+ (cannot reach sparsity [\d.]+ on [\w.]+: it reaches \d\.\d{4} \(\d+ of \d+ kept.*\)"
    r".*; pass --accept-reached to keep it|at sparsity [\d.]+ leaves no weight in [\w.]+ .*)$"
)


def check_counts(masks: dict, sparsity: float, granule: int, scope: str) -> None:
    sizes = {n: m.numel() for n, m in masks.items()}
    kept = {n: int(m.sum()) for n, m in masks.items()}
    assert all(k > 0 for k in kept.values()), kept  # never an empty matrix
    if scope == "global":
        assert abs(sum(kept.values()) - round((1 - sparsity) * sum(sizes.values()))) <= granule
    else:
        for n in masks:
            assert abs(kept[n] - round((1 - sparsity) * sizes[n])) <= granule, (n, kept[n], sizes[n])


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("label", list(METHODS))
def test_every_method_hits_the_requested_count_or_refuses_in_one_line(label, model_name):
    method, options, granule, must_reach = METHODS[label]
    model = make_model(seed=2, **MODELS[model_name])
    scope = "global" if options.get("scope") == "global" else "matrix"
    reached = 0
    for sparsity in (0.5, 0.9, 0.95, 0.98):
        try:
            out = prune.prune_model(model, method, sparsity, seed=0, options=options)
        except PruneError as e:
            assert not must_reach, f"{label} refused {sparsity}: {e}"
            assert "\n" not in str(e) and REFUSAL.match(str(e)), str(e)
            # what the refusal says it reaches is what --accept-reached keeps (an empty matrix stays refused)
            m = re.search(r"cannot reach sparsity [\d.]+ on ([\w.]+): it reaches (\d\.\d{4})", str(e))
            if m:
                kept = prune.prune_model(model, method, sparsity, seed=0, options={**options, "accept_reached": True})
                name, said = m.group(1), float(m.group(2))
                assert kept.report["sparsity_per_matrix"][name] == pytest.approx(said, abs=5e-5)
            continue
        reached += 1
        masks = out.model.masks()
        check_counts(masks, sparsity, granule, scope)
        per = out.report["sparsity_per_matrix"]
        assert per == {n: pytest.approx(1 - int(m.sum()) / m.numel(), abs=1e-12) for n, m in masks.items()}
        assert out.report["sparsity_requested"] == sparsity
    if must_reach:
        assert reached == 4


def test_block_masks_on_256x8_reach_0_98_in_whole_tiles():
    model = make_model("lstm", (64,), input_size=8, seed=2)
    out = prune.prune_model(model, "block-expander", 0.98, seed=0, options={"block": "1x4"})
    mask = out.model.masks()["layers.0.weight_ih"].numpy()
    assert mask.shape == (256, 8)
    tiles = mask.reshape(256, 2, 4)
    assert np.all(tiles.all(axis=2) | ~tiles.any(axis=2))  # whole 1x4 tiles only
    assert int(tiles.all(axis=2).sum()) == round(0.02 * 512)  # 10 of the 512 tiles


def test_an_empty_matrix_is_refused_even_when_accepting():
    model = make_model("lstm", (12,), input_size=5, seed=0)  # weight_ih 48 x 5 = 240 entries
    for options in ({}, {"accept_reached": True}):
        with pytest.raises(PruneError, match=r"random at sparsity 0.999 leaves no weight in layers.0.weight_ih"):
            prune.prune_model(model, "random", 0.999, options=options)


def test_cli_refuses_in_one_line_and_writes_nothing(run_cli, digits_checkpoint, tmp_path):
    out = tmp_path / "x.pt"
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "random-regular",
        "--row-degrees",
        "equal",
        "--sparsity",
        "0.7",
        "-o",
        out,
    )
    assert r.code != 0 and len(r.err_lines) == 1 and "cannot reach sparsity 0.7" in r.err
    assert "--accept-reached" in r.err and not out.exists()
    r = run_cli(
        "prune",
        digits_checkpoint,
        "--method",
        "random-regular",
        "--row-degrees",
        "equal",
        "--sparsity",
        "0.7",
        "--accept-reached",
        "-o",
        out,
    )
    assert r.code == 0, r.err
    from edgeprune import checkpoint

    _, meta = checkpoint.load_with_meta(out)
    per = meta["pruning"]["sparsity_per_matrix"]
    assert per["layers.0.weight_ih"] == pytest.approx(0.75)  # 2 of 8 per row: the whole degree it reached
    assert f"{meta['pruning']['sparsity']:.2%}" in r.out
