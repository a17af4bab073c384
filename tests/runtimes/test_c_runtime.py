"""The C runtime's kernels and cells, called through ctypes and checked against numpy (float64)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeprune.backends.c.codegen import panel_layout
from edgeprune.backends.c.toolchain import WARNINGS
from edgeprune.runtimes import path as runtime_path

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on this machine")

# The cells are static inline in the header; these wrappers give them an address for ctypes.
WRAPPERS = r"""
#include "edgeprune_rt.h"
void t_tanh(const float *x, float *y, int n);
void t_sigmoid(const float *x, float *y, int n);
void t_cell(int kind, int libm, float *h, float *c, const float *pre, int hidden);
void t_tanh(const float *x, float *y, int n) { int i; for (i = 0; i < n; ++i) y[i] = ep_tanhf(x[i]); }
void t_sigmoid(const float *x, float *y, int n) { int i; for (i = 0; i < n; ++i) y[i] = ep_sigmoidf(x[i]); }
void t_cell(int kind, int libm, float *h, float *c, const float *pre, int hidden)
{
    if (kind == 0) { if (libm) ep_lstm_libm(h, c, pre, hidden); else ep_lstm(h, c, pre, hidden); }
    if (kind == 1) { if (libm) ep_gru_libm(h, pre, hidden); else ep_gru(h, pre, hidden); }
    if (kind == 2) { if (libm) ep_rnn_libm(h, pre, hidden); else ep_rnn(h, pre, hidden); }
}
"""

F32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    d = tmp_path_factory.mktemp("rt")
    (d / "wrappers.c").write_text(WRAPPERS)
    for name in ("edgeprune_rt.h", "edgeprune_rt.c"):
        shutil.copy(runtime_path("c", name), d / name)
    subprocess.run(["cc", *WARNINGS, "-O2", "-fPIC", "-shared", "-I", str(d), str(d / "edgeprune_rt.c"),
                    str(d / "wrappers.c"), "-lm", "-o", str(d / "librt.so")], check=True, capture_output=True)
    lib = ctypes.CDLL(str(d / "librt.so"))
    for name, index in (("ep_csr8", np.uint8), ("ep_csr16", np.uint16), ("ep_csr32", np.uint32)):
        ix = np.ctypeslib.ndpointer(index, flags="C_CONTIGUOUS")
        getattr(lib, name).argtypes = [F32, F32, F32, ix, ix, F32, ctypes.c_int]
    lib.ep_dense.argtypes = [F32, F32, F32, ctypes.c_int, ctypes.c_int]
    lib.t_tanh.argtypes = lib.t_sigmoid.argtypes = [F32, F32, ctypes.c_int]
    lib.t_cell.argtypes = [ctypes.c_int, ctypes.c_int, F32, F32, F32, ctypes.c_int]
    return lib


def _apply(fn, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    fn(x, y, x.size)
    return y


def test_tanh_and_sigmoid_are_within_5e7_everywhere(rt):
    x = np.concatenate([np.linspace(-20, 20, 2_000_001, dtype=np.float32),
                        np.float32([0, 1e-30, -1e-30, 7.9, -7.9, 7.9000001, 1e30, -1e30, np.inf, -np.inf])])
    t, s = _apply(rt.t_tanh, x), _apply(rt.t_sigmoid, x)
    x64 = x.astype(np.float64)
    assert np.max(np.abs(t - np.tanh(x64))) < 5e-7
    assert np.max(np.abs(s - 0.5 * (1 + np.tanh(0.5 * x64)))) < 3e-7
    assert np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))
    assert np.array_equal(_apply(rt.t_tanh, -x), -t)  # exactly odd
    assert _apply(rt.t_tanh, np.float32([0]))[0] == 0 and _apply(rt.t_sigmoid, np.float32([0]))[0] == 0.5


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 17, 64])
@pytest.mark.parametrize("cols", [1, 3, 30])
def test_dense_panels_accumulate_w_times_z(rt, rows, cols):
    rng = np.random.default_rng(rows * 100 + cols)
    W, z, y0 = rng.normal(size=(rows, cols)), rng.normal(size=cols), rng.normal(size=rows)
    y = y0.astype(np.float32)
    rt.ep_dense(y, np.ascontiguousarray(panel_layout(W.astype(np.float32)), np.float32), z.astype(np.float32), rows, cols)
    np.testing.assert_allclose(y, y0 + W @ z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,index,cols", [("ep_csr8", np.uint8, 200), ("ep_csr16", np.uint16, 1000),
                                               ("ep_csr32", np.uint32, 70_000)])
def test_csr_kernels_for_each_index_width(rt, kernel, index, cols):
    import scipy.sparse as sp

    rng = np.random.default_rng(cols)
    counts = np.array([0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 0, 31, 6])  # empty rows, tails only, unrolled + tails
    rows = counts.size
    indices = np.concatenate([np.sort(rng.choice(cols, n, replace=False)) for n in counts])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    W = sp.csr_array((rng.normal(size=indices.size), indices, indptr), shape=(rows, cols))
    z, bias = rng.normal(size=cols), rng.normal(size=rows)
    y = np.full(rows, np.nan, np.float32)  # overwritten, not accumulated
    getattr(rt, kernel)(y, bias.astype(np.float32), W.data.astype(np.float32), W.indices.astype(index),
                        counts.astype(index), z.astype(np.float32), rows)
    np.testing.assert_allclose(y, bias + W @ z, rtol=1e-5, atol=1e-5)


def _reference_cell(kind, h, c, pre):
    sig = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731
    H = h.size
    if kind == "lstm":
        i, f, g, o = (pre[k * H : (k + 1) * H] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c
    if kind == "gru":
        r, z, nx, nh = (pre[k * H : (k + 1) * H] for k in range(4))
        n = np.tanh(nx + sig(r) * nh)
        return (1 - sig(z)) * n + sig(z) * h, c
    return np.tanh(pre), c


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("libm", [False, True], ids=["fast", "libm"])
def test_cells_follow_the_ir_equations(rt, kind, libm):
    rng = np.random.default_rng(3)
    H = 37  # not a multiple of any vector width
    pre = rng.uniform(-12, 12, size=(4 if kind != "rnn" else 1) * H)
    h, c = rng.uniform(-1, 1, H), rng.uniform(-3, 3, H)
    h32, c32 = h.astype(np.float32), c.astype(np.float32)
    rt.t_cell(["lstm", "gru", "rnn"].index(kind), int(libm), h32, c32, pre.astype(np.float32), H)
    h_ref, c_ref = _reference_cell(kind, h, c, pre)
    tol = 2e-6 if not libm else 1e-6
    np.testing.assert_allclose(h32, h_ref, atol=tol)
    np.testing.assert_allclose(c32, c_ref, atol=tol * 4)
