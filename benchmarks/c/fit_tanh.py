"""Derive the C runtime's tanh approximation: tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 7.9.

Near-minimax rational fit by Lawson's iteratively reweighted least squares on the linearised
residual x P - tanh Q (variable scaled to [0, 1] for conditioning), then the coefficients are
rounded to float and the approximation is evaluated *in float32* the way the C code does
(Horner, clamp, one division) against float64 tanh on a dense grid.

    python benchmarks/c/fit_tanh.py            # prints and writes results/c_fit_tanh.{md,json}
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, write_results  # noqa: E402

CLAMP = 7.9


def fit(p: int, q: int, clamp: float = CLAMP, iterations: int = 80) -> tuple[np.ndarray, np.ndarray]:
    x = np.unique(np.concatenate([np.linspace(0, clamp, 40_000), np.geomspace(1e-6, 1, 2_000)]))
    u, t = (x / clamp) ** 2, np.tanh(x)
    A = np.hstack([x[:, None] * u[:, None] ** np.arange(p + 1), -(t[:, None] * u[:, None] ** np.arange(1, q + 1))])
    weights, coef = np.ones_like(x), None
    for _ in range(iterations):
        den = np.ones_like(x) if coef is None else 1 + (u[:, None] ** np.arange(1, q + 1)) @ coef[p + 1 :]
        W = np.sqrt(weights) / np.abs(den)
        coef, *_ = np.linalg.lstsq(A * W[:, None], t * W, rcond=None)
        P = (u[:, None] ** np.arange(p + 1)) @ coef[: p + 1]
        Q = 1 + (u[:, None] ** np.arange(1, q + 1)) @ coef[p + 1 :]
        weights = weights * np.abs(x * P / Q - t)
        weights /= weights.sum()
    scale = clamp ** (-2.0 * np.arange(max(p, q) + 1))  # back to powers of s = x^2
    return (coef[: p + 1] * scale[: p + 1]).astype(np.float32), np.concatenate(
        [[1.0], coef[p + 1 :] * scale[1 : q + 1]]
    ).astype(np.float32)


def evaluate_float32(P: np.ndarray, Q: np.ndarray, x: np.ndarray) -> np.ndarray:
    x = np.clip(x.astype(np.float32), np.float32(-CLAMP), np.float32(CLAMP))
    s = x * x
    p = np.float32(P[-1])
    for c in P[-2::-1]:
        p = p * s + c
    q = np.float32(Q[-1])
    for c in Q[-2::-1]:
        q = q * s + c
    return x * p / q


def main() -> None:
    grid = np.linspace(-12, 12, 4_000_001).astype(np.float32)
    exact = np.tanh(grid.astype(np.float64))
    rows, chosen = [], None
    for p, q in ((3, 3), (4, 3), (4, 4), (5, 4)):
        P, Q = fit(p, q)
        err = float(np.max(np.abs(evaluate_float32(P, Q, grid) - exact)))
        rows.append([f"[{p}/{q}]", p + q, err])
        if (p, q) == (4, 4):
            chosen = (P, Q, err)
    libm = float(np.max(np.abs(np.tanh(grid).astype(np.float64) - exact)))
    P, Q, err = chosen
    coefficients = {"P": [f"{c:.9g}" for c in P], "Q": [f"{c:.9g}" for c in Q]}
    md = (
        "Rational tanh fits, evaluated in float32 on 4M points of [-12, 12] (clamp at 7.9).\n\n"
        + markdown_table(["degrees in x^2", "multiply-adds", "max abs error"], rows)
        + f"\n\nnumpy float32 tanh for comparison: {libm:.3g}.\n\n"
        f"Chosen [4/4] (edgeprune_rt.h, ep_tanhf): P = {coefficients['P']}, Q = {coefficients['Q']}, "
        f"max abs error {err:.3g}.\n"
    )
    print(md)
    write_results("c_fit_tanh", {"fits": rows, "chosen": coefficients, "max_abs_error": err}, md)


if __name__ == "__main__":
    main()
