"""Random-forest head on a network's penultimate layer (CARLE's ML block, Multimodal's option).

The forest is stored in skops format and loaded with an explicit allow-list: skops trusts
scikit-learn's estimator classes itself, and :data:`TRUSTED_TYPES` adds only the tree
structure. A file naming any other type is refused with :class:`BundleError` before anything in
it is constructed; pickles are never loaded.

Interval from a forest: the per-tree predictions are an empirical predictive distribution;
:func:`rul_core.models.intervals.predict_point_and_interval` takes their quantiles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from rul_core.atomic import atomic_path
from rul_core.errors import BundleError
from rul_core.progress import CancelToken, ProgressFn, check, emit

TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)


class ForestHead:
    """A fitted RandomForestRegressor mapping embeddings (n, d) to RUL (n,)."""

    def __init__(self, forest: RandomForestRegressor) -> None:
        if not isinstance(forest, RandomForestRegressor):
            raise BundleError(f"forest head: expected a RandomForestRegressor, got {type(forest)}")
        self.forest = forest

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        y: np.ndarray,
        n_trees: int = 800,
        seed: int = 0,
        n_jobs: int | None = -1,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        chunks: int = 1,
        on_chunk: Callable[[int], None] | None = None,
    ) -> ForestHead:
        """Fit ``n_trees`` trees (deterministic for a given seed, whatever ``n_jobs`` and
        ``chunks``).

        ``min_samples_leaf``/``max_features`` as in scikit-learn (its defaults, the papers'
        setting, are 1 and 1.0); larger leaves and fewer features per split keep the trees
        from memorising the training bearings' windows. ``chunks`` > 1 fits the trees in that
        many calls (the same trees), calling ``on_chunk(trees fitted so far)`` after each.
        """
        x = np.asarray(embeddings, dtype=np.float32)
        target = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[0] != target.size:
            raise ValueError(f"forest head: embeddings {x.shape} and labels {target.shape} differ")
        n_trees, chunks = int(n_trees), max(1, min(int(chunks), int(n_trees)))
        rf = RandomForestRegressor(
            n_estimators=int(n_trees),
            random_state=int(seed),
            n_jobs=n_jobs,
            min_samples_leaf=int(min_samples_leaf),
            max_features=float(max_features),
            warm_start=chunks > 1,
        )
        for k in range(1, chunks + 1):
            # a warm start draws each new tree's seed as the whole fit would: the same trees
            rf.n_estimators = n_trees * k // chunks
            rf.fit(x, target)
            if on_chunk is not None:
                on_chunk(rf.n_estimators)
        rf.warm_start = False
        rf.n_jobs = 1  # threaded prediction sums trees in varying order: last-ulp differences
        return cls(rf)

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return len(self.forest.estimators_)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Mean over trees, (n,)."""
        return self.forest.predict(np.asarray(embeddings, dtype=np.float32))

    def predict_trees(self, embeddings: np.ndarray) -> np.ndarray:
        """Every tree's prediction, (n_trees, n)."""
        x = np.asarray(embeddings, dtype=np.float32)
        return np.stack([t.predict(x) for t in self.forest.estimators_])

    def save(self, path: str | Path) -> Path:
        """Write the forest to ``path`` in skops format, atomically."""
        import skops.io as sio

        target = Path(path)
        with atomic_path(target) as tmp:
            sio.dump(self.forest, tmp)
        return target

    @classmethod
    def load(cls, path: str | Path) -> ForestHead:
        """Load a skops forest, refusing any type outside the allow-list."""
        import skops.io as sio

        p = Path(path)
        if not p.is_file():
            raise BundleError(f"{p}: forest file not found")
        try:
            untrusted = sio.get_untrusted_types(file=p)
        except Exception as exc:  # corrupt zip or schema
            raise BundleError(f"{p}: not a readable skops file ({exc})") from exc
        refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if refused:
            raise BundleError(
                f"{p}: refusing to load a forest naming untrusted types {refused}; "
                f"allowed beyond scikit-learn's own: {list(TRUSTED_TYPES)}"
            )
        try:
            obj = sio.load(p, trusted=list(untrusted))
        except Exception as exc:
            raise BundleError(f"{p}: could not load the forest ({exc})") from exc
        if not isinstance(obj, RandomForestRegressor):
            raise BundleError(f"{p}: expected a RandomForestRegressor, found {type(obj).__name__}")
        return cls(obj)


def fit_forest_head(
    model: Any,
    inputs: list[np.ndarray],
    y: np.ndarray,
    n_trees: int,
    seed: int = 0,
    batch_size: int = 256,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    min_samples_leaf: int = 1,
    max_features: float = 1.0,
    chunks: int = 1,
) -> ForestHead:
    """Fit a forest on ``embedding_model(model)`` outputs of ``inputs`` against labels ``y``.

    Progress: ``forest`` events of ``n_trees + 1`` items, the embedding pass counting one:
    0 before it, 1 after it, then one more per tree fitted, reported after each of
    ``chunks`` fit calls (:meth:`ForestHead.fit`; ``cancel`` is checked between them)."""
    from rul_core.models.build import embedding_model

    n_trees = int(n_trees)
    check(cancel)
    emit(progress, "forest", 0, n_trees + 1, "embedding the training windows")
    emb = embedding_model(model).predict(inputs, batch_size=batch_size, verbose=0)
    check(cancel)
    emit(progress, "forest", 1, n_trees + 1, f"fitting {n_trees} trees")

    def fitted(trees: int) -> None:
        if trees < n_trees:
            emit(progress, "forest", 1 + trees, n_trees + 1, f"fitted {trees}/{n_trees} trees")
            check(cancel)

    head = ForestHead.fit(emb, y, n_trees=n_trees, seed=seed, min_samples_leaf=min_samples_leaf,
                          max_features=max_features, chunks=chunks, on_chunk=fitted)
    emit(progress, "forest", n_trees + 1, n_trees + 1, f"fitted {n_trees} trees")
    return head


def calibrate_forest(
    n_samples: int,
    n_features: int,
    y: np.ndarray,
    n_trees: int,
    seed: int = 0,
    min_samples_leaf: int = 1,
    max_features: float = 1.0,
    min_s: float = 0.1,
) -> tuple[float, float]:
    """(seconds per tree, seconds per fit call) :meth:`ForestHead.fit` will take on this
    machine for ``n_trees`` trees on ``n_samples`` embeddings of ``n_features`` with labels
    ``y``, measured before the embeddings exist: fits of one tree per core, then 4 times as
    many, ... until the trees take ``min_s`` beyond a fit call's own cost (one tree per core
    on two samples: the thread pool's), or a quarter of the forest, on random rectified
    features (half of them 0, as a ReLU layer's outputs). Uses no global random state."""
    import joblib

    n = int(n_samples)
    rng = np.random.default_rng(int(seed))
    x = np.maximum(rng.standard_normal((n, int(n_features)), dtype=np.float32), 0)
    target = np.asarray(y, dtype=np.float64).reshape(-1)[:n]

    def timed(rows: int, trees: int) -> float:
        rf = RandomForestRegressor(n_estimators=trees, random_state=int(seed), n_jobs=-1,
                                   min_samples_leaf=int(min_samples_leaf),
                                   max_features=float(max_features))
        t0 = time.perf_counter()
        rf.fit(x[:rows], target[:rows])
        return time.perf_counter() - t0

    k = max(1, min(int(n_trees), joblib.cpu_count()))
    most = max(k, int(n_trees) // 4)
    call = min(timed(min(2, n), k), timed(min(2, n), k))  # the smaller: against noise
    while True:
        whole = timed(n, k)
        if whole - call >= min_s or k >= most:
            return max(0.0, whole - call) / k, call
        k = min(most, 4 * k)
