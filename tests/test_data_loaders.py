"""Loading synthetic XJTU-SY, FEMTO and generic datasets, and every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rul_core.data import is_problem, load_dataset
from rul_core.data.synthetic import synth_run
from rul_core.data.xjtu import parse_condition
from rul_core.errors import LayoutError


def _files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _accounted(ds, root: Path) -> None:  # type: ignore[no-untyped-def]
    assert len(ds.report.used) + len(ds.report.skipped) == _files(root)


def test_condition_parsing() -> None:
    assert parse_condition("35Hz12kN").rpm == 2100 and parse_condition("35Hz12kN").load_n == 12000
    c = parse_condition("37.5Hz11kN")
    assert (c.rpm, c.load_n) == (2250, 11000)
    assert (parse_condition("40Hz10kN").rpm, parse_condition("40Hz10kN").load_n) == (2400, 10000)
    assert parse_condition("Bearing1_1") is None


def test_xjtu_round_trip(synth_xjtu: Path) -> None:
    ds = load_dataset(synth_xjtu)
    assert ds.layout == "xjtu" and ds.run_names == ["Bearing1_1", "Bearing1_2"]
    run = ds.runs[0]
    assert run.snapshots.shape == (6, 512, 2) and run.fs == 25600
    assert run.channel_names == ["horizontal", "vertical"]
    assert (run.condition.rpm, run.condition.load_n) == (2100, 12000)
    assert run.dataset == "35Hz12kN" and run.layout == "xjtu"
    np.testing.assert_array_equal(run.timestamps, np.arange(6) * 60.0)
    assert Path(run.source_paths[1]).name == "2.csv"
    expected = synth_run("Bearing1_1", n_snapshots=6, samples=512, rpm=2100, load_n=12000,
                         seed=101, interval_s=60.0)
    np.testing.assert_allclose(run.snapshots, expected.snapshots, rtol=1e-5, atol=1e-6)
    _accounted(ds, synth_xjtu)
    # A single bearing folder and a forced layout give the same run.
    single = load_dataset(synth_xjtu / "35Hz12kN" / "Bearing1_1", "xjtu")
    np.testing.assert_array_equal(single.runs[0].snapshots, run.snapshots)


def test_femto_round_trip_and_temperature(synth_femto: Path) -> None:
    ds = load_dataset(synth_femto)
    run = ds.run("Bearing1_2")
    assert ds.layout == "femto" and run.snapshots.shape == (6, 512, 2)
    assert (run.condition.rpm, run.condition.load_n) == (1800, 4000)
    np.testing.assert_allclose(run.timestamps, np.arange(6) * 10.0, atol=1e-6)
    expected = synth_run("Bearing1_2", n_snapshots=6, samples=512, seed=102)
    np.testing.assert_allclose(run.snapshots, expected.snapshots, atol=5e-4 + 1e-6)
    assert "temperature" not in run.extra_channels
    temps = [s for s in ds.report.skipped if "temp_" in s.path]
    assert temps and all(not is_problem(s) for s in temps)
    _accounted(ds, synth_femto)
    with_temp = load_dataset(synth_femto, read_temperature=True)
    times, celsius = with_temp.run("Bearing1_2").extra_channels["temperature"]
    assert len(times) == 600 and np.all(np.diff(times) > 0)
    assert abs(times[1] - times[0] - 0.1) < 1e-9 and 39.9 < celsius[0] < 40.1


def test_generic_run_folder_and_parent(synth_generic: Path) -> None:
    ds = load_dataset(synth_generic)
    assert ds.layout == "generic" and ds.run_names == ["Bearing1_1", "Bearing1_2"]
    run = ds.runs[1]
    assert run.fs == 25600 and (run.condition.rpm, run.condition.load_n) == (2100, 12000)
    np.testing.assert_array_equal(run.timestamps, np.arange(6) * 60.0)
    _accounted(ds, synth_generic)
    one = load_dataset(synth_generic / "Bearing1_2")
    np.testing.assert_array_equal(one.runs[0].snapshots, run.snapshots)


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_generic_binary_formats(make_synth, fmt: str) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("generic", generic_format=fmt, n_bearings=1)
    run = load_dataset(root).runs[0]
    expected = synth_run("Bearing1_1", n_snapshots=6, samples=512, rpm=2100, seed=101)
    np.testing.assert_array_equal(run.snapshots, expected.snapshots)


def test_natural_order_of_snapshots(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("xjtu", n_bearings=1, n_snapshots=12)
    run = load_dataset(root).runs[0]
    names = [Path(p).name for p in run.source_paths]
    assert names == [f"{k}.csv" for k in range(1, 13)]
    assert names != sorted(names)  # plain string sort would put 10.csv before 2.csv


def _bearing(root: Path) -> Path:
    return root / "Learning_set" / "Bearing1_1"


def test_bad_files_are_skipped_with_reasons(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("femto", n_bearings=1, n_snapshots=10)
    folder = _bearing(root)
    lines = (folder / "acc_00003.csv").read_text().splitlines()
    (folder / "acc_00001.csv").write_text("")  # empty
    bad_cols = lines.copy()
    bad_cols[4] += ",7"
    (folder / "acc_00002.csv").write_text("\n".join(bad_cols) + "\n")  # wrong column count
    text = lines.copy()
    text[9] = text[9].replace(text[9].split(",")[4], "abc", 1)
    (folder / "acc_00003.csv").write_text("\n".join(text) + "\n")  # non-numeric
    nan = (folder / "acc_00004.csv").read_text().splitlines()
    nan[2] = ",".join([*nan[2].split(",")[:5], "nan"])
    (folder / "acc_00004.csv").write_text("\n".join(nan) + "\n")  # NaN
    short = (folder / "acc_00005.csv").read_text().splitlines()[:100]
    (folder / "acc_00005.csv").write_text("\n".join(short) + "\n")  # different length
    const = [",".join([*r.split(",")[:4], "0.250", r.split(",")[5]])
             for r in (folder / "acc_00006.csv").read_text().splitlines()]
    (folder / "acc_00006.csv").write_text("\n".join(const) + "\n")  # dropout in one snapshot
    (folder / "notes.txt").write_text("hello")
    ds = load_dataset(root)
    reasons = {Path(s.path).name: s.reason for s in ds.report.skipped}
    assert "an empty file" in reasons["acc_00001.csv"]
    assert "line 5: expected 6 columns separated by ','" in reasons["acc_00002.csv"]
    assert "line 10, column 5: expected a number, found 'abc'" in reasons["acc_00003.csv"]
    assert "line 3, column 6: expected a finite number, found 'nan'" in reasons["acc_00004.csv"]
    assert "expected 512 rows" in reasons["acc_00005.csv"] and "found 100 rows" in reasons[
        "acc_00005.csv"]
    assert "column 5: expected a varying signal" in reasons["acc_00006.csv"]
    assert "0.25" in reasons["acc_00006.csv"]
    assert "notes.txt" in reasons and reasons["notes.txt"].startswith("not read: ")
    run = ds.runs[0]
    assert run.n_snapshots == 4  # files 7..10 are good
    assert [Path(p).name for p in run.source_paths] == [f"acc_{k:05d}.csv" for k in range(7, 11)]
    np.testing.assert_allclose(run.timestamps, [0, 10, 20, 30], atol=1e-6)
    _accounted(ds, root)
    assert sum(is_problem(s) for s in ds.report.skipped) == 6


def test_channel_constant_everywhere_is_kept_with_warning(make_synth) -> None:  # type: ignore
    root = make_synth("xjtu", n_bearings=1, n_snapshots=3)
    folder = root / "35Hz12kN" / "Bearing1_1"
    for f in folder.glob("*.csv"):
        rows = f.read_text().splitlines()
        f.write_text("\n".join([rows[0]] + [r.split(",")[0] + ",0" for r in rows[1:]]) + "\n")
    ds = load_dataset(root)
    assert ds.runs[0].n_snapshots == 3
    assert any("'vertical'" in w and "constant in 3 of 3" in w for w in ds.report.warnings)


def test_xjtu_header_checked(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("xjtu", n_bearings=1, n_snapshots=3)
    f = root / "35Hz12kN" / "Bearing1_1" / "2.csv"
    f.write_text("a,b\n" + "\n".join(f.read_text().splitlines()[1:]) + "\n")
    ds = load_dataset(root)
    [skip] = [s for s in ds.report.skipped if is_problem(s)]
    assert skip.reason.endswith("line 1: expected the header "
                                "'Horizontal_vibration_signals,Vertical_vibration_signals', "
                                "found 'a,b'")


def test_semicolon_femto(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("femto", n_bearings=1, femto_sep=";")
    assert ";" in (_bearing(root) / "acc_00001.csv").read_text()[:20]
    assert load_dataset(root).runs[0].n_snapshots == 6


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(LayoutError) as err:
        load_dataset(tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and all(x in msg for x in ("xjtu", "femto", "generic"))
    with pytest.raises(LayoutError, match="unknown layout 'ims'"):
        load_dataset(tmp_path, "ims")
    with pytest.raises(LayoutError, match="no femto run folder"):
        load_dataset(tmp_path, "femto")


def test_invalid_run_json_skips_the_run(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("generic", n_bearings=2)
    meta = root / "Bearing1_1" / "run.json"
    data = json.loads(meta.read_text())
    data["fs"] = -1
    meta.write_text(json.dumps(data))
    ds = load_dataset(root)
    assert ds.run_names == ["Bearing1_2"]
    reasons = [s.reason for s in ds.report.skipped if "Bearing1_1" in s.path]
    assert len(reasons) == 7 and "field 'fs': a number > 0, found -1" in reasons[0]
    _accounted(ds, root)


def test_mixed_tree_accounts_for_stray_files(tmp_path: Path, synth_femto: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth_femto, root)
    (root / "IEEEPHM2012-Challenge-Details.pdf").write_bytes(b"%PDF")
    ds = load_dataset(root)
    stray = [s for s in ds.report.skipped if s.path.endswith(".pdf")]
    assert len(stray) == 1 and not is_problem(stray[0])
    _accounted(ds, root)


def test_operating_system_metadata_is_one_warning_not_a_line_per_file(
        tmp_path: Path, synth_femto: Path) -> None:
    """A macOS zip holds __MACOSX/…/._acc_NNNNN.csv beside every data file: each was listed as
    a file 'not read' (2 803 lines for one FEMTO bearing); the app's own .upload.json too."""
    root = tmp_path / "data"
    shutil.copytree(synth_femto, root)
    bearing = next(p for p in (root / "Learning_set").iterdir() if p.is_dir())
    mac = root / "__MACOSX" / "Learning_set" / bearing.name
    mac.mkdir(parents=True)
    data_files = sorted(bearing.glob("*.csv"))
    for csv in data_files:
        (mac / f"._{csv.name}").write_bytes(b"Mac OS X        \x00\x05\x16\x07")
        (bearing / f"._{csv.name}").write_bytes(b"\x00\x05\x16\x07")
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", ".upload.json"):
        (root / "Learning_set" / name).write_bytes(b"\x00")
    ds = load_dataset(root, cache_dir=tmp_path / "cache")
    assert [r.name for r in ds.runs] == [r.name for r in load_dataset(synth_femto).runs]
    assert not any("._" in s.path or "DS_Store" in s.path or "upload" in s.path
                   for s in ds.report.skipped)
    warning = next(w for w in ds.report.warnings if "operating-system metadata" in w)
    ignored = 1 + len(data_files) + 3  # __MACOSX/, the ._ beside the data, 3 system files
    assert warning.startswith(f"{ignored} operating-system metadata entries ignored")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[" * 100_000, "a small JSON object"),  # nesting deeper than the parser's recursion
     ('{"fs": ' + "9" * 5000 + "}", "a small JSON object"),  # beyond int-to-str limits
     ('{"fs": 1' + "0" * 400 + ', "rpm": 1, "channels": ["x", "y"]}',
      "field 'fs': a number > 0"),  # an integer beyond float range
     ('{"fs": 1, "rpm": 1, "channels": ["x", "x "]}', "distinct channel names"),
     ('{"fs": 1, "rpm": 1, "channels": 3}', "found 3 (a count; list the names instead")],
)
def test_hostile_run_json_skips_only_its_run(make_synth, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("generic", n_bearings=2)
    (root / "Bearing1_1" / "run.json").write_text(text)
    ds = load_dataset(root)
    assert ds.run_names == ["Bearing1_2"]
    reason = next(s.reason for s in ds.report.skipped if s.path.endswith("Bearing1_1/run.json"))
    assert "run.json" in reason and expected in reason
    _accounted(ds, root)


@pytest.mark.parametrize("first_row", [b"0.12,abc", b"NaN,0.5"])
def test_a_bad_first_row_is_reported_not_taken_for_a_header(make_synth, first_row: bytes) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("generic", n_bearings=1)
    bad = root / "Bearing1_1" / "3.csv"
    header, _, *data = bad.read_bytes().splitlines()  # the same row count, no header
    assert not header[:1].isdigit()
    bad.write_bytes(b"\n".join([first_row, *data]) + b"\n")
    ds = load_dataset(root)
    reason = next(s.reason for s in ds.report.skipped if s.path == str(bad))
    assert "line 1" in reason and "column" in reason, reason
    assert ds.runs[0].n_snapshots == 5  # the other files still load


def test_non_utf8_file_names_are_skipped_with_a_printable_reason(make_synth) -> None:  # type: ignore[no-untyped-def]
    root = make_synth("femto", n_bearings=1)
    run_dir = root / "Learning_set" / "Bearing1_1"
    odd = os.fsencode(run_dir) + b"/acc_00099\xff.csv"
    with open(odd, "wb") as fh:
        fh.write(b"1,2,3,4,5,6\n")
    os.mkdir(os.fsencode(root) + b"/\xfeodd")
    ds = load_dataset(root)
    reasons = [s.reason for s in ds.report.skipped if "UTF-8" in s.reason]
    assert len(reasons) == 2 and any("acc_00099\\xff.csv" in r for r in reasons), reasons
    for s in ds.report.skipped:  # displayable and storable: no lone surrogates
        s.path.encode("utf-8") and s.reason.encode("utf-8")
    assert ds.runs[0].n_snapshots == 6


def _generic_run(root: Path, meta: dict | bytes, files: dict[str, bytes | np.ndarray]) -> Path:  # type: ignore[type-arg]
    """A generic run folder ``root/run1`` holding run.json and ``files``; returns ``root``."""
    run_dir = root / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_bytes(meta if isinstance(meta, bytes) else
                                       json.dumps(meta).encode())
    for name, content in files.items():
        if isinstance(content, np.ndarray):
            np.save(run_dir / name, content)
        else:
            (run_dir / name).write_bytes(content)
    return root


GENERIC_META = {"fs": 1000, "rpm": 1800, "channels": ["x", "y"]}
SIGNAL = np.random.default_rng(7).normal(size=(32, 2)).round(4)


def _csv(values: np.ndarray, sep: str = ",", header: str = "", decimal: str = ".") -> bytes:
    rows = [sep.join(f"{v:.4f}".replace(".", decimal) for v in row) for row in values]
    return ((header + "\n" if header else "") + "\n".join(rows) + "\n").encode()


def test_run_json_unknown_fields_are_reported(tmp_path: Path) -> None:
    extra = _generic_run(tmp_path / "a", dict(GENERIC_META, sampling_rate=1000),
                         {"1.csv": _csv(SIGNAL)})
    ds = load_dataset(extra)
    assert ds.run_names == ["run1"]  # the run still loads, with a warning naming the field
    [warning] = ds.report.warnings
    assert "run.json" in warning and "'sampling_rate'" in warning and "fs, rpm" in warning
    typo = {"Fs": 1000, "rpm": 1800, "channels": ["x", "y"]}
    ds = load_dataset(_generic_run(tmp_path / "b", typo, {"1.csv": _csv(SIGNAL)}))
    reason = next(s.reason for s in ds.report.skipped if s.path.endswith("run.json"))
    assert "field 'fs'" in reason and "unknown field(s) 'Fs'" in reason, reason


def test_run_json_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    meta = b"\xef\xbb\xbf" + json.dumps(GENERIC_META).encode()  # as Windows Notepad saves it
    ds = load_dataset(_generic_run(tmp_path, meta, {"1.csv": _csv(SIGNAL)}))
    assert ds.run_names == ["run1"] and not ds.report.skipped


@pytest.mark.parametrize(
    "content",
    [_csv(SIGNAL, ";", decimal=","),  # a European spreadsheet export
     _csv(SIGNAL, "\t", header="x\ty", decimal=","),
     b"\n".join(b",".join(b'"%.4f"' % v for v in row) for row in SIGNAL) + b"\n"],  # quoted
    ids=["semicolon-decimal-comma", "tab-decimal-comma-header", "quoted-numbers"],
)
def test_generic_csv_spreadsheet_exports_load(tmp_path: Path, content: bytes) -> None:
    ds = load_dataset(_generic_run(tmp_path, GENERIC_META, {"1.csv": content}))
    assert not ds.report.skipped and not ds.report.warnings
    np.testing.assert_allclose(ds.runs[0].snapshots[0], SIGNAL, atol=1e-6)


@pytest.mark.parametrize(
    ("channels", "content", "found"),
    [(["x", "y", "z"], _csv(SIGNAL), "found 2 column(s) separated by ','"),
     (["x", "y"], _csv(SIGNAL[:, :1]), "found 1 column(s): '"),
     (["x"], _csv(SIGNAL, "  "), "found 2 column(s) separated by spaces/tabs")],
    ids=["more-channels-than-columns", "one-column", "space-separated"],
)
def test_column_count_mismatch_names_run_json_channels(
    tmp_path: Path, channels: list[str], content: bytes, found: str
) -> None:
    meta = dict(GENERIC_META, channels=channels)
    ds = load_dataset(_generic_run(tmp_path, meta, {"1.csv": content}))
    [skipped] = [s for s in ds.report.skipped if s.path.endswith("1.csv")]
    assert "1.csv, line 1: expected" in skipped.reason and found in skipped.reason
    assert f"one per channel of run.json {channels}" in skipped.reason
    assert "',', ';', tab or spaces" in skipped.reason


def test_header_without_the_channel_names_warns(tmp_path: Path) -> None:
    files = {f"{i}.csv": _csv(SIGNAL, header="acc_h,acc_v") for i in (1, 2)}
    ds = load_dataset(_generic_run(tmp_path, GENERIC_META, files))
    assert ds.runs[0].n_snapshots == 2
    [warning] = ds.report.warnings
    assert "2 snapshot file(s)" in warning and "['acc_h', 'acc_v']" in warning
    assert "taken in order as ['x', 'y']" in warning


def test_values_beyond_float32_are_skipped_not_stored_as_inf(tmp_path: Path) -> None:
    big_row = _csv(SIGNAL).replace(b"\n", b"\n5e38,0\n", 1)
    files = {"1.npy": SIGNAL, "2.npy": SIGNAL * 1e39, "3.csv": big_row}
    ds = load_dataset(_generic_run(tmp_path, GENERIC_META, files))
    assert ds.runs[0].n_snapshots == 1 and np.isfinite(ds.runs[0].snapshots).all()
    reasons = {Path(s.path).name: s.reason for s in ds.report.skipped}
    assert "2.npy, line 2, column y: expected a finite number between" in reasons["2.npy"]
    assert "3.csv, line 2, column 1:" in reasons["3.csv"] and "float32" in reasons["3.csv"]


def test_a_run_left_out_says_which_files_were_not_read(tmp_path: Path) -> None:
    xlsx = _generic_run(tmp_path / "xlsx", GENERIC_META, {"1.xlsx": b"PK\x03\x04"})
    ds = load_dataset(xlsx)
    [warning] = ds.report.warnings
    assert "run1: no usable snapshot; run left out (1 file(s) there not read" in warning
    assert ("expected a snapshot file (.csv, .txt, .tsv, .parquet or .npy) next to run.json, "
            "found '1.xlsx'") in warning
    shared = _generic_run(tmp_path / "shared", GENERIC_META, {})  # run.json at the top only
    (shared / "run1" / "run.json").rename(shared / "run.json")
    (shared / "run1" / "1.csv").write_bytes(_csv(SIGNAL))
    ds = load_dataset(shared)
    [stray] = [s.reason for s in ds.report.skipped if s.path.endswith("1.csv")]
    assert "a generic run folder is a folder with run.json and per-snapshot" in stray, stray
