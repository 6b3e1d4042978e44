"""Property tests: random bytes and malformed CSVs never crash the loader with anything but
the documented RulError subclasses, and the report accounts for every file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rul_core.data import load_dataset
from rul_core.errors import DataFormatError, LayoutError

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "x", "1e5", "4.2504e+005", " 1.5 ", "nan", "-inf", "1,5", '"3"', "1_0"]),
)
ROWS = st.lists(st.lists(CELLS, min_size=0, max_size=8), min_size=0, max_size=12)
SEPS = st.sampled_from([",", ";", "\t"])


def _csv(rows: list[list[str]], sep: str, ending: str) -> bytes:
    return ending.join(sep.join(r) for r in rows).encode()


def _check(root: Path, layout: str | None) -> None:
    n_files = sum(1 for p in root.rglob("*") if p.is_file())
    try:
        ds = load_dataset(root, layout)
    except LayoutError:
        return
    assert len(ds.report.used) + len(ds.report.skipped) == n_files
    assert len(set(ds.report.used)) == len(ds.report.used)
    for run in ds.runs:
        assert np.isfinite(run.snapshots).all() and run.snapshots.dtype == np.float32


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(st.tuples(ROWS, SEPS, st.sampled_from(["\n", "\r\n"])), min_size=1,
                      max_size=5),
       layout=st.sampled_from(["femto", "xjtu"]), header=st.booleans())
def test_malformed_csv_runs(files, layout: str, header: bool) -> None:  # type: ignore
    root = Path(tempfile.mkdtemp())
    try:
        folder = root / ("35Hz12kN" if layout == "xjtu" else "Learning_set") / "Bearing1_1"
        folder.mkdir(parents=True)
        for k, (rows, sep, ending) in enumerate(files, start=1):
            data = _csv(rows, sep, ending)
            if layout == "xjtu":
                if header:
                    data = b"Horizontal_vibration_signals,Vertical_vibration_signals\n" + data
                (folder / f"{k}.csv").write_bytes(data)
            else:
                (folder / f"acc_{k:05d}.csv").write_bytes(data)
        _check(root, None)
    finally:
        shutil.rmtree(root)


@settings(max_examples=40, deadline=None)
@given(blobs=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
       kind=st.sampled_from(["femto", "xjtu", "generic-npy", "generic-parquet", "generic-csv",
                             "meta"]))
def test_random_bytes(blobs: list[bytes], kind: str) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        if kind.startswith("generic") or kind == "meta":
            if kind == "meta":
                (root / "run.json").write_bytes(blobs[0])
            else:
                (root / "run.json").write_text('{"fs": 100, "rpm": 60, "channels": ["a", "b"]}')
            suffix = kind.split("-")[-1] if kind != "meta" else "csv"
            for k, blob in enumerate(blobs, start=1):
                (root / f"{k}.{suffix}").write_bytes(blob)
        else:
            for k, blob in enumerate(blobs, start=1):
                name = f"acc_{k:05d}.csv" if kind == "femto" else f"{k}.csv"
                (root / name).write_bytes(blob)
        _check(root, None)
    finally:
        shutil.rmtree(root)


def test_good_rows_survive_among_bad(tmp_path: Path) -> None:
    folder = tmp_path / "Bearing1_1"
    folder.mkdir()
    good = "".join(f"9,10,{s},{m:.5g},{0.001 * s:.3f},{-0.002 * s:.3f}\n"
                   for s, m in [(1, 1e5), (2, 2e5), (3, 3e5)])
    for k in range(1, 6):
        (folder / f"acc_{k:05d}.csv").write_text(good.replace("9,10,1", f"9,{10 + k},1"))
    (folder / "acc_00003.csv").write_bytes(b"\x00\xff garbage")
    ds = load_dataset(folder)
    assert ds.runs[0].n_snapshots == 4
    [bad] = ds.report.skipped
    err = DataFormatError(str(folder / "acc_00003.csv"), "6 columns separated by ','",
                          "1 columns", line=1)
    assert bad.reason == str(err)


@st.composite
def _generic_text(draw):  # type: ignore[no-untyped-def]
    """A generic snapshot as some tool writes it, and the (rows, 2) values it holds."""
    values = np.array(draw(st.lists(st.tuples(*[st.integers(-10**6, 10**6)] * 2), min_size=1,
                                    max_size=8)), dtype=np.float64) / 1e4
    sep = draw(st.sampled_from([",", ", ", ";", "\t", " ", "   ", " \t", "\t\t"]))
    decimal = "," if sep.strip() != "," and draw(st.booleans()) else "."
    lead = draw(st.sampled_from(["", "  "] + (["\t"] if not sep.strip() else [])))
    trail = draw(st.sampled_from(["", sep.strip() or " "]))
    header = draw(st.sampled_from(["", "names", "reversed", "comment"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    end = draw(st.sampled_from(["", eol, eol * 3]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    columns = values[:, ::-1] if header == "reversed" else values

    def line(cells: list[str]) -> str:
        return lead + sep.join(cells) + trail

    lines = [line([f"{v:.4f}".replace(".", decimal) for v in row]) for row in columns]
    if header == "comment":
        lines.insert(0, "# " + sep.join(["x", "y"]))
    elif header:
        lines.insert(0, line(["y", "x"] if header == "reversed" else ["x", "y"]))
    return (eol.join(lines) + end).encode(encoding), values


@settings(max_examples=60, deadline=None)
@given(case=_generic_text())
def test_generic_text_variants_round_trip(case) -> None:  # type: ignore[no-untyped-def]
    """Whatever the separator, trailing separator, header, line ends and encoding, the run
    holds the values written."""
    data, values = case
    root = Path(tempfile.mkdtemp())
    try:
        (root / "run.json").write_text('{"fs": 100, "rpm": 60, "channels": ["x", "y"]}')
        (root / "1.csv").write_bytes(data)
        ds = load_dataset(root)
        assert not ds.report.skipped, (data, ds.report.skipped)
        np.testing.assert_allclose(ds.runs[0].snapshots[0], values.astype(np.float32))
    finally:
        shutil.rmtree(root)
