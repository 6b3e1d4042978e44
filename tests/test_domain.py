"""PCA + CORAL alignment: after CORAL the source covariance equals the target's."""

from __future__ import annotations

import numpy as np
import pytest

from rul_core.domain import PcaCoral, coral, coral_matrix


def _domains() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(400, 4)) @ np.array(
        [[2.0, 0.3, 0, 0], [0, 1.0, 0.5, 0], [0, 0, 0.5, 0.1], [0.2, 0, 0, 3.0]]
    )
    tgt = rng.normal(size=(300, 4)) @ np.diag([0.5, 1.5, 2.0, 0.7]) + 5.0
    return src, tgt


def test_coral_matches_target_covariance_and_mean() -> None:
    src, tgt = _domains()
    eps = 1e-6
    out = coral(src, tgt, eps=eps)
    np.testing.assert_allclose(
        np.cov(out, rowvar=False), np.cov(tgt, rowvar=False) + eps * np.eye(4), atol=1e-4
    )
    np.testing.assert_allclose(out.mean(axis=0), tgt.mean(axis=0), atol=1e-9)
    # before alignment the covariances differ clearly
    assert np.abs(np.cov(src, rowvar=False) - np.cov(tgt, rowvar=False)).max() > 1.0


def test_coral_identity_when_domains_equal() -> None:
    src, _ = _domains()
    a = coral_matrix(src, src, eps=0.0)
    np.testing.assert_allclose(a, np.eye(4), atol=1e-8)


def test_pca_coral_in_pca_space() -> None:
    src, tgt = _domains()
    al = PcaCoral(n_components=3, eps=1e-6).fit(src, tgt)
    z_src = al.transform(src)
    z_tgt = al.transform_target(tgt)
    assert z_src.shape == (400, 3)
    np.testing.assert_allclose(
        np.cov(z_src, rowvar=False), np.cov(z_tgt, rowvar=False) + 1e-6 * np.eye(3), atol=1e-4
    )
    assert al.inverse(z_src).shape == (400, 4)


def test_coral_bad_shapes() -> None:
    with pytest.raises(ValueError, match="features"):
        coral(np.zeros((5, 3)), np.zeros((5, 2)))
