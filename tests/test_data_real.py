"""Real PRONOSTIA / FEMTO files (../shared/data/real): values equal the lossless npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rul_core.data import is_problem, load_dataset

pytestmark = pytest.mark.real


def test_bearing3_1_equals_npz(real_data_dir: Path) -> None:
    ds = load_dataset(real_data_dir / "femto" / "Learning_set" / "Bearing3_1")
    run = ds.runs[0]
    npz = np.load(real_data_dir / "femto_npz" / "Learning_set__Bearing3_1.npz")
    assert run.snapshots.shape == (515, 2560, 2) and ds.layout == "femto"
    np.testing.assert_array_equal(run.snapshots, (npz["acc"] / 1000).astype(np.float32))
    assert [Path(p).name for p in run.source_paths] == [str(f) for f in npz["files"]]
    clock = npz["clock"].astype(np.float64)
    seconds = clock[:, 0] * 3600 + clock[:, 1] * 60 + clock[:, 2] + clock[:, 3] / 1e6
    np.testing.assert_allclose(run.timestamps, seconds - seconds[0], atol=1e-6)
    assert (run.condition.rpm, run.condition.load_n) == (1500, 5000)
    assert len(ds.report.used) == 515 and not any(is_problem(s) for s in ds.report.skipped)
    assert len(ds.report.skipped) == 89  # temp files, not read by default


def test_semicolon_copy_equals_three_digit_exponent_copy(real_data_dir: Path) -> None:
    full = load_dataset(real_data_dir / "femto" / "Full_Test_Set" / "Bearing1_4").runs[0]
    test = load_dataset(real_data_dir / "femto" / "Test_set" / "Bearing1_4").runs[0]
    assert full.snapshots.shape == (40, 2560, 2)
    np.testing.assert_array_equal(full.snapshots, test.snapshots)
    np.testing.assert_array_equal(full.timestamps, test.timestamps)
    assert full.snapshots[0, 0, 0] == np.float32(0.065) and full.snapshots[0, 0, 1] == np.float32(
        -0.058
    )


def test_temperature_read_when_asked(real_data_dir: Path) -> None:
    run = load_dataset(
        real_data_dir / "femto" / "Test_set" / "Bearing1_4", read_temperature=True
    ).runs[0]
    times, celsius = run.extra_channels["temperature"]
    first = (real_data_dir / "femto" / "Test_set" / "Bearing1_4" / "temp_00001.csv").read_text()
    h, m, s, tenth, value = first.splitlines()[0].split(",")
    assert celsius[0] == float(value) and len(times) == len(celsius) >= 7 * 600 - 600
    acc_start = 8 * 3600 + 8 * 60 + 0 + 0.42504  # first acc row: 8,8,0,4.2504e+005
    assert times[0] == pytest.approx(int(h) * 3600 + int(m) * 60 + int(s) + int(tenth) / 10
                                     - acc_start)
    assert np.all(np.diff(times) > 0)
