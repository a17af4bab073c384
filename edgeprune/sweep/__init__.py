"""Distributed, resumable sweeps: method x sparsity x seed grids, one Ray task per cell (``edgeprune sweep``)."""
