"""Shared fixtures: the real FEMTO data (skipped when absent) and tiny synthetic datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``../shared/data/real`` (README there); skips the test when it is absent."""
    if not (REAL_DATA / "femto").is_dir():
        pytest.skip(f"real FEMTO data not found at {REAL_DATA} (see the README's data section)")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _workspace_outside_the_repository(monkeypatch: pytest.MonkeyPatch,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """Commands that default to ./workspace (the CLI's model commands, explain) write under
    the test session's temporary folder instead, one per worker, unless a test chose one."""
    if "RUL_WORKSPACE" not in os.environ:
        monkeypatch.setenv("RUL_WORKSPACE", str(tmp_path_factory.getbasetemp() / "workspace"))


def _write(root: Path, layout: str, **kwargs: object) -> Path:
    from rul_core.data.synthetic import write_dataset

    options: dict[str, object] = {"n_bearings": 2, "n_snapshots": 6, "samples": 512, "seed": 0}
    options.update(kwargs)
    return write_dataset(root / layout, layout, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def synth_xjtu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny XJTU-SY dataset (35Hz12kN/Bearing1_1..1_2, 6 files of 512 rows). Read-only."""
    return _write(tmp_path_factory.mktemp("synth"), "xjtu")


@pytest.fixture(scope="session")
def synth_femto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny FEMTO dataset (Learning_set/Bearing1_1..1_2, with temp files). Read-only."""
    return _write(tmp_path_factory.mktemp("synth"), "femto", temperature=True)


@pytest.fixture(scope="session")
def synth_generic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generic dataset (two run folders with run.json and CSV snapshots). Read-only."""
    return _write(tmp_path_factory.mktemp("synth"), "generic")


@pytest.fixture
def make_synth(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a fresh tiny dataset into this test's tmp_path: make_synth('femto')."""

    def make(layout: str, **kwargs: object) -> Path:
        return _write(tmp_path, layout, **kwargs)

    return make
