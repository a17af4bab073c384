"""Expansion measures of a bipartite graph given by its biadjacency matrix (torch-free).

A weight matrix ``W`` [rows = outputs, cols = inputs] is a bipartite graph: left nodes are the
inputs (columns), right nodes the outputs (rows), and the biadjacency is the mask (binary) or
``|W|`` (weighted). The nonzero eigenvalues of the bipartite adjacency ``[[0, M^T], [M, 0]]`` are
``±σ_i(M)``, so ``μ₀ = σ₁(M)`` is the trivial eigenvalue and ``μ̂ = σ₂(M)`` the largest non-trivial
one.

* Biregular Ramanujan bound (left degree d_L, right degree d_R): ``μ̂ ≤ √(d_L−1) + √(d_R−1)``.
* Irregular graphs use the average degrees over non-isolated nodes:
  ``Δr = √(d̄_L−1) + √(d̄_R−1) − μ̂``; the layer is Ramanujan iff ``Δr ≥ 0``.
* Spectral gap, two definitions, both reported and labelled: ``Δs = μ₀ − μ̂`` (``spectral_gap``, the
  textbook gap methods.md uses) and ``Δs_code = 2√(μ₀ − 1) − μ̂`` (``spectral_gap_code``: the
  definition in the public code of the authors' line of work, VITA-Group/ramanujan-on-pai
  ``lib/graphs/scores.py``, ``delta_s``; ``None`` when μ₀ < 1, where that code returns −1).
* Cheeger (spectral bounds only; exact conductance is NP-hard): with ``σ̃₂`` the second singular
  value of the normalised biadjacency ``D_R^{-1/2} M D_L^{-1/2}`` (= the second eigenvalue of the
  graph's normalised adjacency), the conductance φ satisfies ``(1 − σ̃₂)/2 ≤ φ ≤ √(2(1 − σ̃₂))``.

The verdict is undefined (``None``) when an average degree is below ``MIN_DEGREE`` (3), following
``docs/expander.md``: the bound is a statement about graphs of degree ≥ 3.

The weighted measures scale ``|W|`` by the mean of its nonzero entries, so a matrix whose
surviving weights are all equal has exactly the binary measures and the Ramanujan bound keeps its
meaning (our reading; see docs/expander.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

MIN_DEGREE = 3
# Matrices whose smaller side is at most this use a dense SVD: exact, and faster than ARPACK.
DENSE_SVD_MAX_DIM = 320


def top_singular_values(matrix, k: int = 2) -> np.ndarray:
    """The ``k`` largest singular values, descending, padded with zeros when the matrix has fewer.

    Dense SVD for small, degenerate or empty matrices; ``scipy.sparse.linalg.svds`` (ARPACK, with a
    fixed start vector so results are reproducible) otherwise.
    """
    rows, cols = matrix.shape
    out = np.zeros(k)
    if rows == 0 or cols == 0:
        return out
    is_sparse = sp.issparse(matrix)
    nnz = matrix.nnz if is_sparse else int(np.count_nonzero(matrix))
    if nnz == 0:
        return out
    small = min(rows, cols)
    if small <= max(DENSE_SVD_MAX_DIM, k + 1):
        dense = matrix.toarray() if is_sparse else np.asarray(matrix)
        values = np.linalg.svd(dense.astype(np.float64), compute_uv=False)
    else:
        values = _svds(matrix if is_sparse else sp.csr_array(matrix), k)
    values = np.sort(np.abs(values))[::-1][:k]
    out[: values.size] = values
    return out


def _svds(matrix, k: int) -> np.ndarray:
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, svds

    m = sp.csr_array(matrix, dtype=np.float64)
    # A constant start vector would be orthogonal to every non-trivial singular vector of a
    # biregular graph (the trivial one is constant), so ARPACK would never see σ₂.
    v0 = np.random.default_rng(0).standard_normal(min(m.shape))
    try:
        return svds(m, k=k, v0=v0, return_singular_vectors=False, solver="arpack")
    except (ArpackNoConvergence, ArpackError):
        return np.linalg.svd(m.toarray(), compute_uv=False)


@dataclass(frozen=True)
class Expansion:
    """Degrees and spectral measures of one bipartite graph (left = columns, right = rows)."""

    rows: int
    cols: int
    edges: int
    left_degree: float  # d̄_L: mean column degree over non-isolated columns
    right_degree: float  # d̄_R: mean row degree over non-isolated rows
    left_degree_range: tuple[int, int]  # over all columns (isolated included)
    right_degree_range: tuple[int, int]
    isolated_left: int
    isolated_right: int
    biregular: bool  # every row has one degree and every column has one degree (none isolated)
    sigma1: float  # μ₀
    sigma2: float  # μ̂
    spectral_gap: float  # Δs = μ₀ − μ̂
    spectral_gap_code: float | None  # Δs as ramanujan-on-pai's code defines it: 2√(μ₀ − 1) − μ̂
    normalized_sigma2: float | None  # σ̃₂ of D_R^-1/2 M D_L^-1/2 (isolated nodes left out)
    conductance_bounds: tuple[float, float] | None  # Cheeger: (1 − σ̃₂)/2 ≤ φ ≤ √(2(1 − σ̃₂))
    bound: float | None  # √(d̄_L−1) + √(d̄_R−1)
    ramanujan_gap: float | None  # Δr = bound − μ̂
    ramanujan: bool | None  # Δr ≥ 0; None when undefined
    note: str = ""  # why the verdict is undefined

    def to_dict(self) -> dict:
        d = asdict(self)
        d["left_degree_range"] = list(self.left_degree_range)
        d["right_degree_range"] = list(self.right_degree_range)
        d["conductance_bounds"] = None if self.conductance_bounds is None else list(self.conductance_bounds)
        return d


def expansion(
    biadjacency, *, weighted: bool = False, min_degree: int = MIN_DEGREE, tolerance: float = 1e-9, cheeger: bool = True
) -> Expansion:
    """Measures of the bipartite graph of ``biadjacency`` [rows = outputs, cols = inputs].

    Binary (default): the support of ``biadjacency`` is the graph. ``weighted=True``: the entries'
    absolute values, divided by their mean over the support, are the edge weights; the degrees
    stay those of the support (the Cheeger bounds use weighted degrees). ``cheeger=False`` skips
    the second SVD the conductance bounds need.
    """
    is_sparse = sp.issparse(biadjacency)
    m = sp.csr_array(biadjacency) if is_sparse else np.asarray(biadjacency)
    rows, cols = m.shape
    support = m != 0
    if is_sparse:
        support = sp.csr_array(support)
        row_deg = np.asarray(support.sum(axis=1)).ravel().astype(np.int64)
        col_deg = np.asarray(support.sum(axis=0)).ravel().astype(np.int64)
    else:
        row_deg = support.sum(axis=1).astype(np.int64)
        col_deg = support.sum(axis=0).astype(np.int64)
    edges = int(row_deg.sum())

    if weighted and edges:
        values = np.abs(m.data if is_sparse else m[support]).astype(np.float64)
        scale = values.mean()
        matrix = (abs(m) / scale) if is_sparse else np.abs(m).astype(np.float64) / scale
    else:
        matrix = support.astype(np.float64)
    sigma1, sigma2 = (float(v) for v in top_singular_values(matrix, 2))
    normalized = _normalized_sigma2(matrix) if cheeger and edges else None

    live_rows, live_cols = row_deg[row_deg > 0], col_deg[col_deg > 0]
    d_right = float(live_rows.mean()) if live_rows.size else 0.0
    d_left = float(live_cols.mean()) if live_cols.size else 0.0
    biregular = bool(
        edges
        and live_rows.size == rows
        and live_cols.size == cols
        and live_rows.min() == live_rows.max()
        and live_cols.min() == live_cols.max()
    )
    if edges == 0:
        bound = gap = verdict = None
        note = "no edges"
    elif min(d_left, d_right) < min_degree:
        bound = gap = verdict = None
        note = f"average degree {min(d_left, d_right):.3g} < {min_degree}"
    else:
        bound = math.sqrt(d_left - 1.0) + math.sqrt(d_right - 1.0)
        gap = bound - sigma2
        # σ₂ of a graph at the bound is computed with rounding error: a tiny tolerance keeps the
        # verdict of exact cases (and of dense vs sparse solvers) stable.
        verdict = gap >= -tolerance * max(1.0, bound)
        note = ""
    return Expansion(
        rows=rows,
        cols=cols,
        edges=edges,
        left_degree=d_left,
        right_degree=d_right,
        left_degree_range=(int(col_deg.min()) if cols else 0, int(col_deg.max()) if cols else 0),
        right_degree_range=(int(row_deg.min()) if rows else 0, int(row_deg.max()) if rows else 0),
        isolated_left=int(cols - live_cols.size),
        isolated_right=int(rows - live_rows.size),
        biregular=biregular,
        sigma1=sigma1,
        sigma2=sigma2,
        spectral_gap=sigma1 - sigma2,
        spectral_gap_code=code_spectral_gap(sigma1, sigma2),
        normalized_sigma2=normalized,
        conductance_bounds=None
        if normalized is None
        else ((1.0 - normalized) / 2.0, math.sqrt(2.0 * max(0.0, 1.0 - normalized))),
        bound=bound,
        ramanujan_gap=gap,
        ramanujan=verdict,
        note=note,
    )


def code_spectral_gap(mu0: float, mu_hat: float) -> float | None:
    """``2√(μ₀ − 1) − μ̂``: Δs as defined by ramanujan-on-pai's ``delta_s`` (our re-statement; None
    where that code gives up, μ₀ < 1)."""
    return None if mu0 < 1.0 else 2.0 * math.sqrt(mu0 - 1.0) - mu_hat


def _normalized_sigma2(matrix) -> float:
    """σ₂ of ``D_R^{-1/2} M D_L^{-1/2}`` over the non-isolated nodes (σ₁ of it is 1)."""
    m = sp.csr_array(matrix) if sp.issparse(matrix) else np.asarray(matrix)
    row_w = np.asarray(m.sum(axis=1)).ravel()
    col_w = np.asarray(m.sum(axis=0)).ravel()
    rows, cols = np.flatnonzero(row_w > 0), np.flatnonzero(col_w > 0)
    m = m[rows][:, cols]
    r, c = 1.0 / np.sqrt(row_w[rows]), 1.0 / np.sqrt(col_w[cols])
    if sp.issparse(m):
        normalized = sp.diags_array(r) @ m @ sp.diags_array(c)
    else:
        normalized = r[:, None] * m * c[None, :]
    return float(min(1.0, top_singular_values(normalized, 2)[1]))
