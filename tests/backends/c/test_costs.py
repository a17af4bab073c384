"""The cost model: which kernels a build uses, and the shape of the estimates."""

import shutil

import pytest

from edgeprune.backends.c import costs, formats


def test_every_profile_prices_every_format_for_both_dtypes():
    for profile in costs.PROFILES.values():
        for dtype in ("f32", "int8"):
            expected = set(formats.FORMATS) - (set(formats.F32_ONLY) if dtype == "int8" else set())
            assert set(profile[dtype]) == expected
            assert all(min(v) >= 0 for v in profile[dtype].values())


def test_sparse_weights_cost_more_each_than_dense_ones_but_blocks_less_than_gathers():
    for name, profile in costs.PROFILES.items():
        f32 = profile["f32"]
        assert f32["dense"][0] < f32["bsr8x1"][0] <= f32["sell"][0], name
        # ELL and SELL run the same inner loop (EP_SLICED_F32) and never compete for a tile (ELL
        # takes row-regular chunks only, SELL the others): their fits agree within a few percent
        assert f32["ell"][0] <= 1.05 * f32["sell"][0], name


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_profile_follows_what_the_compiler_targets():
    assert costs.profile_for("cortex-m4") == "cortex-m4"
    assert costs.profile_for("aarch64", ("cc",)) == "generic"
    assert costs.profile_for("host", ("cc",), ("-O2", "-march=x86-64")) in ("generic",)
    assert costs.profile_for("host", ("cc",), ("-O2", "-mavx2", "-mfma", "-DEP_NO_SIMD")) == "generic"


def test_cache_size_is_read_or_defaulted():
    assert costs.cache_bytes("host") >= 64 * 1024 and costs.cache_bytes("cortex-m4") == costs.DEFAULT_CACHE_BYTES


def test_the_gather_choice_is_measured_or_forced(monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_C_GATHER", "hw")
    assert costs.host_gather_flags(["cc"], ["-march=native"]) == (["-DEP_HW_GATHER"], "EDGEPRUNE_C_GATHER=hw")
    monkeypatch.setenv("EDGEPRUNE_C_GATHER", "sw")
    assert costs.host_gather_flags(["cc"], ["-march=native"])[0] == []
    monkeypatch.delenv("EDGEPRUNE_C_GATHER")
    flags, why = costs.host_gather_flags(["no-such-compiler-here"], [])
    assert flags == [] and "did not run" in why  # no compiler: the portable scalar loads
