"""Cross-domain feature alignment: PCA + CORAL (CARLE paper §4.6; Sun, Feng & Saenko 2016).

CORAL ("return of frustratingly easy domain adaptation") moves the features of one domain
(here called *source*, the set being moved) so that their covariance equals that of the other
(*target*): whiten with ``C_s^{-1/2}``, recolour with ``C_t^{1/2}``, where both covariances get
``eps * I`` added for stability. The CARLE paper first projects both feature sets with a PCA
fitted on the source. Two ways to use it:

- Sun et al.: move the training (source) features to the test domain and retrain;
- applying a trained model to a new domain: pass the *new* features as ``source`` and the
  training features as ``target``, then feed ``inverse(transform(new))`` (features in the
  original space, with the training covariance) to the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA


def _sym_power(c: np.ndarray, power: float) -> np.ndarray:
    """``C^power`` of a symmetric positive-definite matrix through its eigendecomposition."""
    w, v = np.linalg.eigh(c)
    w = np.clip(w, np.finfo(np.float64).tiny, None)
    return (v * w**power) @ v.T


def _check(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name}: expected a 2-D array (samples >= 2, features), got {a.shape}")
    return a


def coral_matrix(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """The linear map ``A = (C_s + eps I)^{-1/2} (C_t + eps I)^{1/2}`` (features x features)."""
    s, t = _check(source, "source"), _check(target, "target")
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"source has {s.shape[1]} features, target {t.shape[1]}; expected equal")
    eye = np.eye(s.shape[1])
    cs = np.cov(s, rowvar=False) + eps * eye
    ct = np.cov(t, rowvar=False) + eps * eye
    return _sym_power(cs, -0.5) @ _sym_power(ct, 0.5)


def coral(
    source: np.ndarray, target: np.ndarray, eps: float = 1e-5, match_mean: bool = True
) -> np.ndarray:
    """Source features recoloured so their covariance equals the target's (+ eps I).

    With ``match_mean`` the source is centred first and the target mean added back (the
    original CORAL aligns second-order statistics only: ``match_mean=False``).
    """
    s, t = _check(source, "source"), _check(target, "target")
    a = coral_matrix(s, t, eps)
    if match_mean:
        return (s - s.mean(axis=0)) @ a + t.mean(axis=0)
    return s @ a


@dataclass
class PcaCoral:
    """PCA fitted on the source, then CORAL from source to target in the PCA space.

    ``n_components=None`` keeps every component. After :meth:`fit`, :meth:`transform` maps
    source-domain features to the aligned PCA space, :meth:`transform_target` projects target
    features into the same space, and :meth:`inverse` goes back to the original features.
    """

    n_components: int | None = None
    eps: float = 1e-5
    match_mean: bool = True

    def fit(self, source: np.ndarray, target: np.ndarray) -> PcaCoral:
        """Fit the PCA on ``source`` and the CORAL map from source to target."""
        s, t = _check(source, "source"), _check(target, "target")
        self.pca_ = PCA(n_components=self.n_components).fit(s)
        zs, zt = self.pca_.transform(s), self.pca_.transform(t)
        self.matrix_ = coral_matrix(zs, zt, self.eps)
        self.source_mean_ = zs.mean(axis=0)
        self.target_mean_ = zt.mean(axis=0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Source-domain features -> aligned PCA coordinates (target statistics)."""
        z = self.pca_.transform(_check(x, "x"))
        if self.match_mean:
            return (z - self.source_mean_) @ self.matrix_ + self.target_mean_
        return z @ self.matrix_

    def transform_target(self, x: np.ndarray) -> np.ndarray:
        """Target-domain features -> PCA coordinates (no recolouring)."""
        return self.pca_.transform(_check(x, "x"))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """PCA coordinates -> original feature space (to feed a model trained on features)."""
        return self.pca_.inverse_transform(np.asarray(z, dtype=np.float64))
