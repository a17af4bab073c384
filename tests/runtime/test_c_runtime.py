"""The C runtime's kernels and cells, checked against numpy.

On the host through ctypes, built twice: with the host's SIMD (-march=native: AVX2 on x86-64) and
as plain C (-DEP_NO_SIMD). On aarch64 (qemu-user) and the Cortex-M4 board (QEMU mps2-an386, the
DSP-extension int8 kernels) as one generated C program that runs every kernel on embedded cases
and prints the results.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeprune.backends.c import formats
from edgeprune.backends.c.toolchain import SEMIHOSTING_FLAGS, WARNINGS, toolchain
from edgeprune.passes.quantize import quantize_activations
from edgeprune.runtime import source_dir

from .test_c_cells import _reference as cell_reference

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
# simd-gather: the AVX2 gather instruction in the ELL/SELL loops (chosen where the host measures it faster)
BUILDS = {"simd": ["-march=native"], "simd-gather": ["-march=native", "-DEP_HW_GATHER"], "plain": ["-DEP_NO_SIMD"]}


@pytest.fixture(scope="module", params=list(BUILDS))
def rt(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"rt-{request.param}")
    (d / "wrappers.c").write_text(WRAPPERS)
    rt_dir = source_dir("c")
    subprocess.run(
        [
            "cc",
            *WARNINGS,
            "-O2",
            "-ffp-contract=fast",
            *BUILDS[request.param],
            "-fPIC",
            "-shared",
            "-I",
            str(rt_dir),
            str(rt_dir / "edgeprune_rt.c"),
            str(d / "wrappers.c"),
            "-lm",
            "-o",
            str(d / "librt.so"),
        ],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(d / "librt.so"))
    lib.t_tanh.argtypes = lib.t_sigmoid.argtypes = [F32, F32, ctypes.c_int]
    lib.t_cell.argtypes = [ctypes.c_int, ctypes.c_int, F32, F32, F32, ctypes.c_int]
    lib.ep_quantize.restype = ctypes.c_float
    return lib


# --- kernels -----------------------------------------------------------------------------------


def _pattern(rng, rows, cols, density, kind):
    if kind == "regular":
        k = max(1, round(density * cols))
        p = np.zeros((rows, cols), bool)
        np.put_along_axis(p, np.argsort(rng.random((rows, cols)), axis=1)[:, :k], True, axis=1)
        return p
    if kind.startswith("block"):
        br, bc = {"block8x1": (8, 1), "block4x1": (4, 1), "block1x4": (1, 4)}[kind.split("-")[0]]
        grid = rng.random((-(-rows // br), -(-cols // bc))) < density
        if kind.endswith("-edges"):  # empty block rows first and last, a full one between, counts 0..all
            grid[0] = grid[-1] = False
            grid[grid.shape[0] // 2] = True
        if kind.endswith("-stairs"):  # block row b holds b % 11 blocks: every count an unrolled body has
            grid[:] = False
            for b in range(grid.shape[0]):
                grid[b, rng.choice(grid.shape[1], min(b % 11, grid.shape[1]), replace=False)] = True
        return np.kron(grid, np.ones((br, bc), bool))[:rows, :cols]
    if kind == "skewed":  # row densities 0 .. 2 x density: empty, single and odd-count rows, widths 1 to wide
        return rng.random((rows, cols)) < np.linspace(0, 2 * density, rows)[:, None]
    p = rng.random((rows, cols)) < density
    p[rows // 3] = False  # an empty row
    return p


# (format, rows, cols, density, pattern kind): tails of slices and blocks, empty rows, odd columns,
# the widest tiles each index type allows, fully dense tiles, stored zeros.
CASES = [
    (fmt, rows, cols, dens, kind)
    for fmt in ("dense", "csr", "sell", "bsr8x1", "bsr4x1")
    for rows, cols, dens, kind in (
        (13, 9, 0.5, "random"),
        (64, 256, 0.1, "random"),
        (24, 37, 1.0, "random"),
        (19, 40, 0.3, "block8x1"),
        (16, 31, 0.4, "block4x1"),
    )
] + [
    ("ell", 13, 9, 0.4, "regular"),
    ("ell", 64, 256, 0.1, "regular"),
    ("ell", 8, 28, 1.0, "regular"),
    ("ell16", 21, 700, 0.05, "regular"),
    ("ell16", 16, 300, 0.5, "regular"),
    ("bsr1x4", 13, 12, 0.5, "random"),
    ("bsr1x4", 40, 1024, 0.05, "block1x4"),
    ("bsr1x4", 9, 32, 1.0, "random"),
    # block rows: empty ones at both ends and the last partial (f32: not stored, runs of equal counts),
    # and a tile with no weight at all
    ("bsr8x1", 43, 70, 0.3, "block8x1-edges"),
    ("bsr8x1", 16, 256, 0.05, "block8x1-edges"),
    ("bsr4x1", 30, 45, 0.3, "block4x1-edges"),
    ("bsr1x4", 11, 30, 0.3, "block1x4-edges"),
    ("bsr8x1", 190, 40, 0.0, "block8x1-stairs"),
    ("bsr4x1", 90, 40, 0.0, "block4x1-stairs"),
    ("bsr1x4", 23, 48, 0.0, "block1x4-stairs"),
    ("bsr8x1", 16, 20, 0.0, "random"),
    ("bsr4x1", 7, 9, 0.0, "random"),
    ("bsr1x4", 5, 8, 0.0, "random"),
    ("dense", 10, 261, 1.0, "random"),  # a head: 2 rows past the panel, vector sums + a scalar tail
    ("dense", 7, 64, 0.5, "random"),  # no panel at all
    # tiles past the AVX2 loop's streaming bound (rows x middle slice width > 64 KiB of values: it prefetches):
    # LSTM 1024's 256-column chunk, skewed rows (empty ones left out, widths down to 1, a partial last
    # slice), ELL/ELL16 with a tail slice
    ("sell", 1024, 256, 0.1, "random"),
    ("sell", 1027, 256, 0.1, "skewed"),
    # SELL as its rows' first writer (f32 only): y0 is the bias, y's old contents are never read; rows
    # without a weight (set to their bias alone), a partial last slice, the streaming loop
    ("sell-set", 13, 9, 0.5, "random"),
    ("sell-set", 64, 256, 0.1, "random"),
    ("sell-set", 1027, 256, 0.1, "skewed"),
    # 8x1 blocks over more than 256 columns, 16-bit block columns (f32 only): every unrolled count,
    # long rows, empty and partial block rows
    ("bsr8x1w", 190, 300, 0.0, "block8x1-stairs"),
    ("bsr8x1w", 43, 700, 0.05, "block8x1-edges"),
    ("bsr8x1w", 64, 284, 0.3, "block8x1"),
    # SELL over more than 256 columns, 16-bit columns (f32 only; an LSTM's gate block over all of z),
    # adding or first writer; the streaming loop
    ("sell16", 64, 284, 0.05, "random"),
    ("sell16", 43, 700, 0.05, "skewed"),
    ("sell16-set", 64, 284, 0.05, "random"),
    ("sell16-set", 1027, 700, 0.08, "skewed"),
    # 8x1 blocks as their rows' first writers (f32 only): block rows without a block set to their bias,
    # a partial last block row, every unrolled count and long rows
    ("bsr8x1-set", 43, 70, 0.3, "block8x1-edges"),
    ("bsr8x1-set", 190, 40, 0.0, "block8x1-stairs"),
    ("bsr8x1w-set", 43, 700, 0.05, "block8x1-edges"),
    ("bsr8x1w-set", 64, 284, 0.3, "block8x1"),
    ("ell", 1030, 256, 0.08, "regular"),
    ("ell16", 601, 700, 0.05, "regular"),
]


def _case(fmt, rows, cols, density, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    pattern = _pattern(rng, rows, cols, density, kind)
    w = (rng.normal(size=(rows, cols)) * pattern).astype(np.float32)
    if pattern.any():
        w[np.argwhere(pattern)[0][0], np.argwhere(pattern)[0][1]] = 0.0  # a stored zero stays stored
    z = rng.normal(size=cols).astype(np.float32)
    y0 = rng.normal(size=rows).astype(np.float32)
    if dtype == "f32":
        return w, pattern, z, y0, None, None
    scales = np.where(np.abs(w).max(axis=1) > 0, np.abs(w).max(axis=1) / 127, 1).astype(np.float32)
    wq = np.clip(np.rint(w / scales[:, None]), -127, 127).astype(np.int8)
    zq, zs = quantize_activations(z[None])
    return wq, pattern, zq[0], y0, scales, np.float32(zs[0])


def _encode(fmt, w, pattern):
    if fmt.endswith("-set"):
        return formats.first_writer(formats.encode(fmt.removesuffix("-set"), w, pattern), w.shape[0])
    return formats.encode(fmt, w, pattern)


def _with_dtypes(cases):
    """(case..., dtype) for f32 and int8; first-writer SELL, SELL16 and 16-bit 8x1 blocks are f32 only."""
    return [(*c, d) for c in cases for d in ("f32", "int8") if not (c[0] in F32_ONLY and d == "int8")]


F32_ONLY = ("sell-set", "sell16", "sell16-set", "bsr8x1w", "bsr8x1-set", "bsr8x1w-set")


# a first writer's y before the call: any value read would show
POISON = 1e30


def _expected(w, z, y0, scales, zscale):
    if scales is None:
        return y0.astype(np.float64) + w.astype(np.float64) @ z.astype(np.float64)
    acc = w.astype(np.int64) @ z.astype(np.int64)
    return y0 + scales.astype(np.float64) * float(zscale) * acc


def _call(lib, enc, dtype, y, w_shape, z, scales, zscale):
    rows, cols = w_shape
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    arrays = [ptr(a) for a in enc.arrays.values()]
    params = [ctypes.c_int(v) for v in enc.params.values()]
    if enc.sets and "perm" in enc.arrays:  # SELL: y0 (in y) is the bias, in slot order; then y poisoned
        pbias = np.ascontiguousarray(y[enc.arrays["perm"]])
        y[:] = POISON
        walk = ctypes.c_int(enc.kernel_rows(rows))
        getattr(lib, f"ep_{enc.format}_set_f32")(ptr(y), *arrays, ptr(pbias), ptr(z), walk, ctypes.c_int(rows))
    elif enc.sets:  # 8x1 blocks: y0 is the bias, in row order
        bias = y.copy()
        y[:] = POISON
        getattr(lib, f"ep_{enc.format}_set_f32")(ptr(y), *arrays, ptr(bias), ptr(z), ctypes.c_int(rows), *params)
    elif dtype == "f32":
        fn = getattr(lib, f"ep_{enc.format}_f32")
        walk = ctypes.c_int(enc.kernel_rows(rows))
        tail = [ctypes.c_int(rows), ctypes.c_int(cols)] if enc.format == "dense" else [walk, *params]
        fn(ptr(y), *arrays, ptr(z), *tail)
    else:
        fn = getattr(lib, f"ep_{enc.format}_i8")
        walk = ctypes.c_int(enc.kernel_rows(rows))
        tail = [ctypes.c_int(rows), ctypes.c_int(cols)] if enc.format == "dense" else [walk, *params]
        padded = np.concatenate([z, np.zeros(3, np.int8)])  # 1x4 blocks may read past the last column
        fn(ptr(y), ptr(scales), ctypes.c_float(zscale), *arrays, ptr(padded), *tail)


KERNEL_CASES = _with_dtypes(CASES)


@pytest.mark.parametrize(
    "fmt,rows,cols,density,kind,dtype", KERNEL_CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[4]}-{c[5]}" for c in KERNEL_CASES]
)
def test_kernel_adds_w_times_z(rt, fmt, rows, cols, density, kind, dtype):
    w, pattern, z, y0, scales, zscale = _case(fmt, rows, cols, density, kind, dtype, seed=rows * 1000 + cols)
    enc = _encode(fmt, w, pattern)
    assert enc.format == fmt.removesuffix("-set")
    y = y0.copy()
    _call(rt, enc, dtype, y, w.shape, z, scales, zscale)
    expected = _expected(w, z, y0, scales, zscale)
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=2e-5 * max(1.0, np.abs(expected).max()))


def test_quantize_matches_the_numpy_reference_and_handles_zeros(rt):
    rng = np.random.default_rng(0)
    for x in (
        rng.normal(size=37).astype(np.float32),
        np.float32([0.5, -0.5, 1, -1, 0.25 / 127, 0]),
        np.zeros(5, np.float32),
        rng.uniform(-3e-38, 3e-38, 9).astype(np.float32),
    ):
        q = np.zeros(x.size, np.int8)
        scale = rt.ep_quantize(q.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), x.size)
        q_ref, s_ref = quantize_activations(x[None])
        assert np.array_equal(q, q_ref[0]) and np.float32(scale) == s_ref[0]
        assert np.abs(q).max(initial=0) == (127 if np.abs(x).max() >= 1e-30 else 0)  # tiny: all zero
    for bad in (np.float32([1, np.nan, 2]), np.float32([1, np.inf])):  # non-finite input: a non-finite scale
        q = np.ones(bad.size, np.int8)
        scale = rt.ep_quantize(q.ctypes.data_as(ctypes.c_void_p), bad.ctypes.data_as(ctypes.c_void_p), bad.size)
        assert not np.isfinite(scale) and not np.any(q)


def test_quantize_vector_body_and_tails_match_the_reference(rt):
    """Every length around the AVX2 body (8 at a time) and its padded tail: ties round away from zero
    (x = k / 2 with max |x| = 127 scales by exactly 1), -0.0, and a NaN or inf in the body or the tail."""
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 65, 100, 256, 257):
        ties = rng.integers(-254, 255, n).astype(np.float32) / 2
        ties[rng.integers(n)] = 127.0 if n > 1 else -127.0
        for x in (ties, rng.normal(size=n).astype(np.float32) * 3, np.where(ties > 0, ties, -0.0).astype(np.float32)):
            q = np.full(n, 99, np.int8)
            scale = rt.ep_quantize(q.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), n)
            q_ref, s_ref = quantize_activations(x[None])
            assert np.array_equal(q, q_ref[0]) and np.float32(scale) == s_ref[0], n
        for at in {0, n // 2, n - 1}:
            for bad in (np.nan, np.inf, -np.inf):
                x = rng.normal(size=n).astype(np.float32)
                x[at] = bad
                q = np.ones(n, np.int8)
                scale = rt.ep_quantize(q.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), n)
                assert not np.isfinite(scale) and not np.any(q), (n, at, bad)
                assert np.isnan(scale) == np.isnan(bad)


# (format, rows, cols): odd column counts and widths, rows past the last full slice, a tile too wide
# for dense_i8's table of z pairs (> 512 columns), ELL16's wide columns
EXTREME_CASES = [
    (fmt, rows, cols)
    for fmt in ("dense", "csr", "sell", "bsr8x1", "bsr4x1", "bsr1x4", "ell")
    for rows, cols in ((13, 9), (24, 37), (8, 1), (17, 64))
] + [("dense", 9, 1030), ("dense", 16, 512), ("ell16", 17, 300), ("ell16", 8, 5)]


@pytest.mark.parametrize("fmt,rows,cols", EXTREME_CASES, ids=[f"{f}-{r}x{c}" for f, r, c in EXTREME_CASES])
def test_int8_kernels_are_exact_at_the_int8_extremes(rt, fmt, rows, cols):
    """Weights and z at -128 / 127, an empty row, z all zero: with unit scales y is the integer sum
    itself (below 2^24, so exact in float), equal to numpy's int64 product in every build."""
    rng = np.random.default_rng(rows * 7 + cols)
    kind = {"ell": "regular", "ell16": "regular", "bsr8x1": "block8x1", "bsr4x1": "block4x1", "bsr1x4": "block1x4"}
    pattern = _pattern(rng, rows, cols, 0.6, kind.get(fmt, "random"))
    if fmt not in kind:
        pattern[rows // 2] = False  # an empty row
    w = (rng.choice(np.int8([-128, -127, 127, 1, -1]), size=(rows, cols)) * pattern).astype(np.int8)
    enc = formats.encode(fmt, w, pattern)
    for z in (
        np.full(cols, -128, np.int8),
        np.full(cols, 127, np.int8),
        np.where(np.arange(cols) % 2, 127, -128).astype(np.int8),
        np.zeros(cols, np.int8),
    ):
        y = np.zeros(rows, np.float32)
        _call(rt, enc, "int8", y, w.shape, z, np.ones(rows, np.float32), np.float32(1))
        np.testing.assert_array_equal(y, (w.astype(np.int64) @ z.astype(np.int64)).astype(np.float32))


# --- activations and cells ---------------------------------------------------------------------


def _apply(fn, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    fn(x, y, x.size)
    return y


def test_tanh_and_sigmoid_are_within_5e7_everywhere(rt):
    x = np.concatenate(
        [
            np.linspace(-20, 20, 2_000_001, dtype=np.float32),
            np.float32([0, 1e-30, -1e-30, 7.9, -7.9, 7.9000001, 1e30, -1e30, np.inf, -np.inf]),
        ]
    )
    t, s = _apply(rt.t_tanh, x), _apply(rt.t_sigmoid, x)
    x64 = x.astype(np.float64)
    assert np.max(np.abs(t - np.tanh(x64))) < 5e-7
    assert np.max(np.abs(s - 0.5 * (1 + np.tanh(0.5 * x64)))) < 3e-7
    assert np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))
    assert np.array_equal(_apply(rt.t_tanh, -x), -t)  # exactly odd
    assert _apply(rt.t_tanh, np.float32([0]))[0] == 0 and _apply(rt.t_sigmoid, np.float32([0]))[0] == 0.5


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("libm", [False, True], ids=["fast", "libm"])
def test_cells_follow_the_ir_equations(rt, kind, libm):
    rng = np.random.default_rng(3)
    H = 37  # not a multiple of any vector width
    pre = rng.uniform(-12, 12, size=(4 if kind != "rnn" else 1) * H)
    h, c = rng.uniform(-1, 1, H), rng.uniform(-3, 3, H)
    h32, c32 = h.astype(np.float32), c.astype(np.float32)
    rt.t_cell(["lstm", "gru", "rnn"].index(kind), int(libm), h32, c32, pre.astype(np.float32), H)
    h_ref, c_ref = cell_reference(kind, h, c, pre)
    tol = 2e-6 if not libm else 1e-6
    np.testing.assert_allclose(h32, h_ref, atol=tol)
    np.testing.assert_allclose(c32, c_ref, atol=tol * 4)


@pytest.mark.parametrize("hidden,cols,density", [(8, 20, 0.5), (24, 300, 0.3), (64, 284, 0.1)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_lstm8x1_step_is_the_mat_vec_then_the_cell(rt, hidden, cols, density, bias):
    """ep_lstm8x1_f32 (an LSTM step over 8x1 blocks, the cell fused) against numpy: bias + W z, then
    the cell in float64. Block rows empty, of 1-3 blocks (the AVX2 remainder) and long; z holding the
    old h, which the kernel must not overwrite (h goes to h_out)."""
    rng = np.random.default_rng(hidden + cols)
    grid = rng.random((4 * hidden // 8, cols)) < density
    grid[1] = False  # an empty block row
    grid[2] = False
    grid[2, rng.choice(cols, 3, replace=False)] = True  # three blocks: the loop's remainder
    pattern = np.repeat(grid, 8, axis=0)
    w = (rng.normal(scale=0.3, size=pattern.shape) * pattern).astype(np.float32)
    enc = formats.lstm8x1(w, pattern, hidden)
    assert enc.stored == pattern.sum() and enc.arrays["starts"][-1] == grid.sum()
    z = rng.normal(size=cols).astype(np.float32)
    b = rng.normal(scale=0.5, size=4 * hidden).astype(np.float32) if bias else None
    c = rng.uniform(-2, 2, hidden).astype(np.float32)
    h_ref, c_ref = cell_reference("lstm", np.zeros(hidden), c, (0 if b is None else b) + w.astype(np.float64) @ z)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    h_out, z_before = np.full(hidden, POISON, np.float32), z.copy()
    rt.ep_lstm8x1_f32(
        ptr(h_out), ptr(c), *(ptr(a) for a in enc.arrays.values()), ptr(b) if bias else None, ptr(z), hidden
    )
    np.testing.assert_allclose(h_out, h_ref, atol=2e-6)
    np.testing.assert_allclose(c, c_ref, atol=8e-6)
    assert np.array_equal(z, z_before)


# --- the same kernels on the emulated targets --------------------------------------------------


def _c_array(name, a):
    ctype = formats.CTYPES[a.dtype]
    items = [repr(float(v)) + "f" for v in a] if a.dtype == np.float32 else [str(int(v)) for v in a]
    return f"static const {ctype} {name}[{max(1, len(items))}] = {{{', '.join(items) or '0'}}};\n"


def kernel_program(cases) -> tuple[str, list[np.ndarray]]:
    """One C program that runs every case's kernel and prints y (one value per line); the expected y's."""
    parts = ['#include <stdio.h>\n#include "edgeprune_rt.h"\n']
    calls, expected = [], []
    for k, (fmt, rows, cols, density, kind, dtype) in enumerate(cases):
        w, pattern, z, y0, scales, zscale = _case(fmt, rows, cols, density, kind, dtype, seed=k)
        enc = _encode(fmt, w, pattern)
        names = []
        for name, a in enc.arrays.items():
            parts.append(_c_array(f"c{k}_{name}", a))
            names.append(f"c{k}_{name}")
        if not enc.sets:
            parts.append(_c_array(f"c{k}_y0", y0))
        zpad = np.concatenate([z, np.zeros(3, z.dtype)])
        parts.append(_c_array(f"c{k}_z", zpad))
        walk = enc.kernel_rows(rows)
        tail = f"{rows}, {cols}" if fmt == "dense" else ", ".join([str(walk)] + [str(v) for v in enc.params.values()])
        body = [f"    {{ static float y[{rows}]; int i;", f"      for (i = 0; i < {rows}; ++i) y[i] = c{k}_y0[i];"]
        if enc.sets:  # the bias: SELL's in slot order, 8x1 blocks' in row order
            slotted = "perm" in enc.arrays
            parts.append(_c_array(f"c{k}_pbias", y0[enc.arrays["perm"]] if slotted else y0))
            body[1] = f"      for (i = 0; i < {rows}; ++i) y[i] = {POISON!r}f;"
            tail = f"{walk}, {rows}" if slotted else f"{rows}, {enc.params['nruns']}"
            body.append(f"      ep_{enc.format}_set_f32(y, {', '.join(names)}, c{k}_pbias, c{k}_z, {tail});")
        elif dtype == "f32":
            body.append(f"      ep_{enc.format}_f32(y, {', '.join(names)}, c{k}_z, {tail});")
        else:
            parts.append(_c_array(f"c{k}_scales", scales))
            body.append(
                f"      ep_{enc.format}_i8(y, c{k}_scales, {float(zscale)!r}f, {', '.join(names)}, c{k}_z, {tail});"
            )
        body.append(f'      for (i = 0; i < {rows}; ++i) printf("%.9g\\n", (double)y[i]); }}')
        calls += body
        expected.append(_expected(w, z, y0, scales, zscale))
    parts.append(
        "int main(int argc, char **argv)\n{\n    (void)argc;\n    (void)argv;\n"
        + "\n".join(calls)
        + "\n    return 0;\n}\n"
    )
    return "".join(parts), expected


EMULATED_CASES = (
    [
        (fmt, 19, 40, 0.3, "random", dtype)
        for fmt in ("dense", "csr", "sell", "bsr8x1", "bsr4x1")
        for dtype in ("f32", "int8")
    ]
    + [
        (fmt, 12, 32, 0.3, kind, dtype)
        for fmt, kind in (("ell", "regular"), ("bsr1x4", "block1x4"))
        for dtype in ("f32", "int8")
    ]
    + [("ell16", 9, 300, 0.05, "regular", "int8"), ("sell-set", 43, 40, 0.1, "skewed", "f32")]
    + [("bsr8x1w", 43, 300, 0.1, "block8x1-edges", "f32"), ("sell16-set", 43, 300, 0.05, "skewed", "f32")]
    + [("sell16", 19, 300, 0.05, "random", "f32"), ("bsr8x1w-set", 43, 300, 0.1, "block8x1-edges", "f32")]
    + [("bsr8x1-set", 190, 40, 0.0, "block8x1-stairs", "f32")]
    + [
        (fmt, 43, 40, 0.3, f"block{fmt[3:]}-edges", dtype)
        for fmt in ("bsr8x1", "bsr4x1", "bsr1x4")
        for dtype in ("f32", "int8")
    ]
)


SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def _build_kernels(tmp_path, cases, cc, flags, extra=()) -> list[np.ndarray]:
    """kernel_program(cases) compiled with the runtime into tmp_path/kernels; returns its expected outputs."""
    source, expected = kernel_program(cases)
    (tmp_path / "kernels.c").write_text(source)
    rt_dir = source_dir("c")
    subprocess.run(
        [
            *cc,
            *WARNINGS,
            "-Wno-missing-prototypes",
            "-ffp-contract=fast",
            *flags,
            "-I",
            str(rt_dir),
            "kernels.c",
            str(rt_dir / "edgeprune_rt.c"),
            *extra,
            "-lm",
            "-o",
            "kernels",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return expected


def _assert_printed(stdout: str, expected: list[np.ndarray]) -> None:
    values = np.array([float(v) for v in stdout.split()])
    want = np.concatenate(expected)
    assert values.size == want.size
    np.testing.assert_allclose(values, want, rtol=2e-6, atol=2e-5 * np.abs(want).max())


@pytest.mark.parametrize("build", list(BUILDS))
def test_kernels_are_clean_under_sanitizers(tmp_path, build):
    """Every kernel of CASES, f32 and int8, in one program under ASan/UBSan (each array its exact
    size, z padded by the 3 entries a model's z buffer has), in the SIMD, gather and plain builds."""
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    if subprocess.run(["cc", *SANITIZE, str(probe), "-o", str(tmp_path / "probe")], capture_output=True).returncode:
        pytest.skip("this compiler cannot build ASan/UBSan programs")
    cases = _with_dtypes(CASES)
    expected = _build_kernels(tmp_path, cases, ["cc"], [*SANITIZE, *BUILDS[build]])
    done = subprocess.run(["./kernels"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_printed(done.stdout, expected)


@pytest.mark.parametrize("arch", ["aarch64", "cortex-m4"])
def test_kernels_on_the_emulated_targets(tmp_path, arch):
    tc = toolchain(arch)
    if tc.missing():
        pytest.skip(f"{arch}: {tc.missing()}")
    extra = []
    if tc.board:
        board = source_dir("c") / "boards" / tc.board
        extra = [str(board / "startup.c"), "-T", str(board / "link.ld"), *SEMIHOSTING_FLAGS]
    expected = _build_kernels(tmp_path, EMULATED_CASES, tc.cc, ["-O2", *tc.target_flags], [*extra, *tc.link_flags])
    command = [*tc.emulator, "-kernel", "kernels"] if tc.board else [*tc.emulator, "./kernels"]
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True).stdout
    _assert_printed(out, expected)
    if arch == "cortex-m4":  # the DSP-extension int8 kernels were the ones compiled
        probe = subprocess.run(
            [*tc.cc, *tc.target_flags, "-dM", "-E", "-x", "c", "-"], input="", text=True, capture_output=True
        ).stdout
        assert "__ARM_FEATURE_DSP" in probe
