"""Run: partial runs and snapshot thinning keep the recording's timing."""

from __future__ import annotations

import numpy as np
import pytest

from rul_core.data.run import every_nth_from_last
from rul_core.data.synthetic import synth_run


def test_every_nth_from_last_known_answers() -> None:
    assert every_nth_from_last(10, 3).tolist() == [0, 3, 6, 9]
    assert every_nth_from_last(11, 3).tolist() == [1, 4, 7, 10]
    assert every_nth_from_last(5, 1).tolist() == [0, 1, 2, 3, 4]
    assert every_nth_from_last(0, 4).tolist() == []
    # snapshot numbers of a subset: those a multiple of 6 before the last one's (24)
    assert every_nth_from_last(np.array([0, 3, 6, 12, 15, 18, 24]), 6).tolist() == [0, 2, 3, 5, 6]
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="every"):
            every_nth_from_last(10, bad)  # type: ignore[arg-type]


def test_run_every_nth_and_head_keep_timestamps_and_files() -> None:
    run = synth_run(n_snapshots=7, samples=512, seed=1)
    run.source_paths = [f"{i}.csv" for i in range(7)]
    thin = run.every_nth(3)
    assert thin.n_snapshots == 3
    assert thin.timestamps.tolist() == [run.timestamps[i] for i in (0, 3, 6)]
    assert thin.source_paths == ["0.csv", "3.csv", "6.csv"]
    np.testing.assert_array_equal(thin.snapshots[2], run.snapshots[6])
    assert run.every_nth(1) is run
    head = run.head(4)
    assert head.n_snapshots == 4 and head.source_paths == ["0.csv", "1.csv", "2.csv", "3.csv"]
    assert head.every_nth(2).timestamps.tolist() == [run.timestamps[1], run.timestamps[3]]
    assert run.head(99).n_snapshots == 7
