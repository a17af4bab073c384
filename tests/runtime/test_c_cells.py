"""The fast cells (ep_lstm / ep_gru / ep_rnn) on every path the runtime has for them, against float64 numpy.

Built through ctypes as plain C (-DEP_NO_SIMD), with the host's SIMD (-march=native: the 8-wide AVX2
intrinsics, with AVX-512's range clamp where the host has it), as AVX2 without AVX-512 (-march=haswell: the
min/and/or clamp) and 16 wide (-DEP_CELL_AVX512) where the host has AVX-512F+DQ. Inputs reach past the
clamp, hold signed zeros, infinities and NaN, and the hidden sizes leave every kind of tail (H = 1 included).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeprune.backends.c.toolchain import WARNINGS
from edgeprune.runtime import source_dir

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on this machine")

WRAPPERS = r"""
#include "edgeprune_rt.h"
int t_width(void);
void t_cell(int kind, float *h, float *c, const float *pre, int hidden);
int t_width(void)
{
#ifdef EP_CELL_SIMD
    return EP_CELL_SIMD;
#else
    return 0;
#endif
}
void t_cell(int kind, float *h, float *c, const float *pre, int hidden)
{
    if (kind == 0) ep_lstm(h, c, pre, hidden);
    if (kind == 1) ep_gru(h, pre, hidden);
    if (kind == 2) ep_rnn(h, pre, hidden);
}
"""

# build -> (flags, units per vector the build must take; None: the host decides between two)
BUILDS = {
    "plain": (["-DEP_NO_SIMD"], 0),
    "native": (["-march=native"], 8),
    "avx2": (["-march=haswell"], 8),
    "avx512": (["-march=native", "-DEP_CELL_AVX512"], 16),
}
KINDS = ("lstm", "gru", "rnn")
HIDDEN = (1, 7, 9, 16, 17, 37, 64)
F32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


def _host_has(*flags: str) -> bool:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return False
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    return all(f in line.split() for f in flags)


def _compile(d, flags, name):
    rt_dir = source_dir("c")
    (d / "wrappers.c").write_text(WRAPPERS)
    subprocess.run(
        ["cc", *WARNINGS, "-O2", "-ffp-contract=fast", *flags, "-fPIC", "-shared", "-I", str(rt_dir)]
        + [str(d / "wrappers.c"), "-lm", "-o", str(d / name)],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(d / name))
    lib.t_cell.argtypes = [ctypes.c_int, F32, F32, F32, ctypes.c_int]
    return lib


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    out = {}
    for name, (flags, width) in BUILDS.items():
        if name != "plain" and not _host_has("avx2", "fma"):
            continue
        if name == "avx512" and not _host_has("avx512f", "avx512dq"):
            continue
        lib = _compile(tmp_path_factory.mktemp(f"cells-{name}"), flags, "libcells.so")
        assert lib.t_width() == width, f"{name}: the build took {lib.t_width()} units a vector, not {width}"
        out[name] = lib
    return out


def _inputs(kind, H, seed):
    """Gate pre-activations in [-20, 20] with the edge values spread over the units (the tail included)."""
    rng = np.random.default_rng(seed)
    rows = 4 if kind != "rnn" else 1
    pre = rng.uniform(-20, 20, size=rows * H).astype(np.float32)
    special = np.float32(
        [0.0, -0.0, 7.9, -7.9, 7.9000001, 15.8, -15.8, 15.800001, 1e30, -1e30, np.inf, -np.inf, 1e-40, np.nan, -np.nan]
    )
    idx = rng.permutation(pre.size)[: min(pre.size, special.size)]
    pre[idx] = special[: idx.size]
    h = rng.uniform(-1, 1, H).astype(np.float32)
    c = rng.uniform(-3, 3, H).astype(np.float32)
    return h, c, pre


def _run(lib, kind, h, c, pre):
    h, c = h.copy(), c.copy()
    lib.t_cell(KINDS.index(kind), h, c, np.ascontiguousarray(pre), h.size)
    return h, c


def _reference(kind, h, c, pre):
    """float64 cell math; NaN and +-inf pre-activations saturate the activation by their sign (the clamp)."""
    x = pre.astype(np.float64)
    x = np.where(np.isnan(x), np.copysign(np.inf, x), x)
    sig = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731
    H, h, c = h.size, h.astype(np.float64), c.astype(np.float64)
    if kind == "lstm":
        i, f, g, o = (x[k * H : (k + 1) * H] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c
    if kind == "gru":
        r, z, nx, nh = (x[k * H : (k + 1) * H] for k in range(4))
        with np.errstate(invalid="ignore"):  # nx + sig(r) nh = inf - inf: NaN, which the clamp saturates by sign
            n = nx + sig(r) * nh
        return (1 - sig(z)) * np.tanh(n) + sig(z) * h, c
    return np.tanh(x), c


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("H", HIDDEN)
def test_every_path_matches_float64_math_at_the_edges(libs, kind, H):
    h, c, pre = _inputs(kind, H, seed=H)
    h_ref, c_ref = _reference(kind, h, c, pre)
    ok = np.isfinite(h_ref)  # GRU: n = tanh(inf - inf) has no reference value; checked against plain C below
    for name, lib in libs.items():
        h_out, c_out = _run(lib, kind, h, c, pre)
        assert np.all(np.isfinite(h_out)) and np.all(np.abs(h_out) <= 1.0), name
        np.testing.assert_allclose(h_out[ok], h_ref[ok], atol=2e-6, rtol=0, err_msg=name)
        np.testing.assert_allclose(c_out, c_ref, atol=8e-6, rtol=0, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("H", HIDDEN)
def test_simd_paths_agree_with_the_plain_c_path(libs, kind, H):
    """Inputs and states as above plus NaN and infinite states: the same results as the plain C cell, NaN where
    it has NaN (a few float roundings apart elsewhere)."""
    h, c, pre = _inputs(kind, H, seed=100 + H)
    if H > 2:
        h[1], c[2] = np.nan, np.inf
    h_plain, c_plain = _run(libs["plain"], kind, h, c, pre)
    assert len(libs) > 1 or not _host_has("avx2", "fma")
    for name, lib in libs.items():
        h_out, c_out = _run(lib, kind, h, c, pre)
        np.testing.assert_array_equal(np.isnan(h_out), np.isnan(h_plain), err_msg=name)
        np.testing.assert_allclose(h_out, h_plain, atol=1e-6, rtol=0, err_msg=name)
        np.testing.assert_allclose(c_out, c_plain, atol=4e-6, rtol=1e-6, err_msg=name)


def test_saturated_and_signed_zero_inputs_give_exact_limits(libs):
    """tanh(+-0) = +-0 and a NaN pre-activation saturates by its sign, on every path."""
    pre = np.float32([0.0, -0.0, np.nan, -np.nan, 1e30, -1e30, 0.0, -0.0, 0.0])
    for name, lib in libs.items():
        h, _ = _run(lib, "rnn", np.zeros(pre.size, np.float32), np.zeros(pre.size, np.float32), pre)
        assert np.array_equal(np.signbit(h[:2]), [False, True]) and np.all(h[:2] == 0), name
        np.testing.assert_allclose(h[2:6], [1, -1, 1, -1], atol=3e-7, err_msg=name)


SANITIZED = r"""
#include <stdlib.h>
#include "edgeprune_rt.h"
/* buffers of exactly the cell's size on the heap: a load or store past a tail is an ASan error */
int main(void)
{
    static const int sizes[] = {1, 7, 9, 16, 17, 37};
    int k, j;
    for (k = 0; k < 6; ++k) {
        const int H = sizes[k];
        float *h = malloc(sizeof(float) * (size_t)H), *c = malloc(sizeof(float) * (size_t)H);
        float *pre = malloc(sizeof(float) * (size_t)(4 * H));
        if (!h || !c || !pre)
            return 2;
        for (j = 0; j < 4 * H; ++j)
            pre[j] = (float)(j % 13) - 6.0f;
        for (j = 0; j < H; ++j) {
            h[j] = 0.1f * (float)j;
            c[j] = 1.0f;
        }
        ep_lstm(h, c, pre, H);
        ep_gru(h, pre, H);
        ep_rnn(h, pre, H);
        for (j = 0; j < H; ++j)
            if (!(h[j] >= -1.0f && h[j] <= 1.0f))
                return 1;
        free(h);
        free(c);
        free(pre);
    }
    return 0;
}
"""


@pytest.mark.parametrize("build", ["plain", "native", "avx512"])
def test_cells_are_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path, build):
    flags, _ = BUILDS[build]
    if build != "plain" and not _host_has("avx2", "fma"):
        pytest.skip("the host has no AVX2+FMA")
    if build == "avx512" and not _host_has("avx512f", "avx512dq"):
        pytest.skip("the host has no AVX-512F+DQ")
    # -O0: the intrinsics are then GCC's macros, which must pass the warnings too
    sanitize = ["-O0", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    (tmp_path / "probe.c").write_text("int main(void) { return 0; }\n")
    probe = subprocess.run(["cc", *sanitize, "probe.c", "-o", "probe"], cwd=tmp_path, capture_output=True)
    if probe.returncode or subprocess.run([str(tmp_path / "probe")], capture_output=True).returncode:
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    (tmp_path / "main.c").write_text(SANITIZED)
    built = subprocess.run(
        ["cc", *WARNINGS, *sanitize, *flags, "-I", str(source_dir("c")), "main.c", "-lm", "-o", "main"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    done = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _c_floats(name, a):
    items = ", ".join(f"{float(v)!r}f" if np.isfinite(v) else ("INFINITY" if v > 0 else "-INFINITY") for v in a)
    return f"static const float {name}[{a.size}] = {{{items}}};\n"


@pytest.mark.parametrize("arch", ["aarch64", "cortex-m4"])
def test_plain_cells_on_the_emulated_targets(tmp_path, arch):
    """The plain C cells as a board compiles them (NEON-vectorised on aarch64, the M4's single-precision FPU with
    fused multiply-adds) against float64 numpy."""
    from edgeprune.backends.c.toolchain import SEMIHOSTING_FLAGS, toolchain

    tc = toolchain(arch)
    if tc.missing():
        pytest.skip(f"{arch}: {tc.missing()}")
    H = 37
    cases = {kind: _inputs(kind, H, seed=7) for kind in KINDS}
    parts = ['#include <math.h>\n#include <stdio.h>\n#include "edgeprune_rt.h"\n']
    calls = []
    for kind, (h, c, pre) in cases.items():
        pre = np.where(np.isnan(pre), np.copysign(np.float32(np.inf), pre), pre)  # no NaN literal in C99
        cases[kind] = (h, c, pre)
        parts += [_c_floats(f"{kind}_h0", h), _c_floats(f"{kind}_c0", c), _c_floats(f"{kind}_pre", pre)]
        call = {"lstm": "ep_lstm(h, c, {k}_pre, H)", "gru": "ep_gru(h, {k}_pre, H)", "rnn": "ep_rnn(h, {k}_pre, H)"}
        calls.append(
            f"    for (i = 0; i < H; ++i) {{ h[i] = {kind}_h0[i]; c[i] = {kind}_c0[i]; }}\n"
            f"    {call[kind].format(k=kind)};\n"
            '    for (i = 0; i < H; ++i) printf("%.9g %.9g\\n", (double)h[i], (double)c[i]);\n'
        )
    parts.append(
        f"#define H {H}\nint main(void)\n{{\n    static float h[H], c[H];\n    int i;\n"
        + "".join(calls)
        + "    return 0;\n}\n"
    )
    (tmp_path / "cells.c").write_text("".join(parts))
    rt_dir = source_dir("c")
    extra = []
    if tc.board:
        board = rt_dir / "boards" / tc.board
        extra = [str(board / "startup.c"), "-T", str(board / "link.ld"), *SEMIHOSTING_FLAGS]
    subprocess.run(
        [*tc.cc, *WARNINGS, "-O2", "-ffp-contract=fast", *tc.target_flags, "-I", str(rt_dir), "cells.c", *extra]
        + [*tc.link_flags, "-lm", "-o", "cells"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    command = [*tc.emulator, "-kernel", "cells"] if tc.board else [*tc.emulator, "./cells"]
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True).stdout
    values = np.array([float(v) for v in out.split()]).reshape(len(KINDS), H, 2)
    for k, (kind, (h, c, pre)) in enumerate(cases.items()):
        h_ref, c_ref = _reference(kind, h, c, pre)
        ok = np.isfinite(h_ref)
        np.testing.assert_allclose(values[k, ok, 0], h_ref[ok], atol=2e-6, rtol=0, err_msg=f"{arch} {kind}")
        np.testing.assert_allclose(values[k, :, 1], c_ref, atol=8e-6, rtol=0, err_msg=f"{arch} {kind}")
