"""Where a chip's faulty PEs lie: uniformly, or in clusters (center-satellite model).

``"uniform"``: ``k`` distinct PEs uniformly without replacement. ``"clustered"``: the
center-satellite model (Meyer & Pradhan, 1989): ``ceil(k / cluster_size)`` cluster
centres uniform over the PEs; each faulty PE picks a centre uniformly and is displaced
by ``round(N(0, cluster_radius**2))`` PEs in each axis, clipped to the array (so edges
collect a little extra). A PE already taken is redrawn; after 50 rounds of redraws any
remainder is placed uniformly over the free PEs (only when clusters are saturated, e.g.
a tiny radius).
"""

from __future__ import annotations

import math

import numpy as np

from simulator import ArrayConfig

__all__ = ["place", "SPATIAL_MODELS"]

SPATIAL_MODELS = ("uniform", "clustered")
_MAX_CLUSTER_ROUNDS = 50


def place(cfg: ArrayConfig, k: int, rng, spatial: str, cluster_size: float, cluster_radius: float) -> np.ndarray:
    """Bool ``(R, C)`` with exactly ``k`` PEs set."""
    pes = np.zeros(cfg.n_pes, bool)
    if spatial == "uniform" or k in (0, cfg.n_pes):
        pes[rng.choice(cfg.n_pes, size=k, replace=False)] = True
    else:
        pes[_center_satellite(cfg, k, rng, cluster_size, cluster_radius)] = True
    return pes.reshape(cfg.shape)


def _center_satellite(cfg: ArrayConfig, k: int, rng, cluster_size: float, cluster_radius: float):
    n_clusters = math.ceil(k / cluster_size)
    centres = np.stack([rng.integers(cfg.rows, size=n_clusters), rng.integers(cfg.cols, size=n_clusters)], 1)
    taken = np.zeros(cfg.n_pes, bool)
    picked: list[int] = []
    for _ in range(_MAX_CLUSTER_ROUNDS):
        need = k - len(picked)
        if need == 0:
            break
        xy = centres[rng.integers(n_clusters, size=need)]
        xy = xy + np.rint(rng.normal(0.0, cluster_radius, size=(need, 2))).astype(np.int64)
        r = np.clip(xy[:, 0], 0, cfg.rows - 1)
        c = np.clip(xy[:, 1], 0, cfg.cols - 1)
        for idx in (r * cfg.cols + c).tolist():
            if not taken[idx]:
                taken[idx] = True
                picked.append(idx)
    if len(picked) < k:  # saturated clusters: the rest uniformly over the free PEs
        picked.extend(rng.choice(np.flatnonzero(~taken), size=k - len(picked), replace=False).tolist())
    return np.array(picked, dtype=np.int64)

