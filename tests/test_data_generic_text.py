"""The generic layout's text files as other tools write them: whitespace-separated columns
(numpy.savetxt, DAQ exports), a trailing separator on every line (Excel, LabVIEW), comment
and Excel ``sep=`` lines, UTF-16/UTF-32 text, and run.json in other capitalisation or
encodings. Each loads with known values, or is skipped with a reason naming file and line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from rul_core.data import is_problem, load_dataset
from rul_core.data.csvparse import (
    WHITESPACE,
    sniff_separator,
    squeeze_whitespace,
    strip_trailing_separator,
    text_encoding,
    to_utf8,
)
from rul_core.data.generic import GenericReader
from rul_core.errors import DataFormatError

META = {"fs": 1000, "rpm": 1800, "channels": ["x", "y"]}
SIGNAL = np.random.default_rng(11).normal(size=(16, 2)).round(4)


def _run(root: Path, files: dict[str, bytes], meta: bytes | None = None,
         meta_name: str = "run.json") -> Path:
    """``root/run1`` holding ``meta_name`` and ``files``; returns ``root``."""
    run_dir = root / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / meta_name).write_bytes(json.dumps(META).encode() if meta is None else meta)
    for name, content in files.items():
        (run_dir / name).write_bytes(content)
    return root


def _rows(sep: str = ",", values: np.ndarray = SIGNAL, lead: str = "", trail: str = "",
          eol: str = "\n", decimal: str = ".") -> str:
    return "".join(lead + sep.join(f"{v:.4f}".replace(".", decimal) for v in row) + trail + eol
                   for row in values)


def _savetxt(values: np.ndarray, **kwargs: object) -> bytes:
    out = io.BytesIO()
    np.savetxt(out, values, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def _loads_clean(root: Path, values: np.ndarray = SIGNAL) -> None:
    ds = load_dataset(root)
    assert not ds.report.skipped and not ds.report.warnings, ds.report
    np.testing.assert_allclose(ds.runs[0].snapshots[0], values, atol=1e-6)


def _reason(root: Path, name: str) -> str:
    ds = load_dataset(root)
    [skipped] = [s for s in ds.report.skipped if Path(s.path).name == name]
    assert is_problem(skipped)
    return skipped.reason


@pytest.mark.parametrize(
    ("name", "content"),
    [("1.txt", _savetxt(SIGNAL)),  # '%.18e' with one space, numpy's default
     ("1.csv", _savetxt(SIGNAL, fmt="%12.4f")),  # fixed width: leading and repeated spaces
     ("1.csv", _rows(" \t ", lead="\t").encode()),  # tabs and spaces mixed, a leading tab
     ("1.csv", _rows("  ", decimal=",").encode()),  # decimal commas between spaces
     ("1.tsv", ("x y\r\n" + _rows("   ", eol="\r\n")).encode()),  # a header row, CRLF
     ("1.csv", ("x\ty\n" + _rows("   ")).encode()),  # names by tab, numbers by spaces
     ("1.csv", _savetxt(SIGNAL[:, ::-1], header="y x"))],  # '# y x' names the columns
    ids=["savetxt", "fixed-width", "tabs-and-spaces", "decimal-commas", "header-crlf",
         "tab-header", "comment-header-picks-columns"],
)
def test_whitespace_separated_text_loads(tmp_path: Path, name: str, content: bytes) -> None:
    _loads_clean(_run(tmp_path, {name: content}))


def test_a_header_naming_columns_with_spaces_over_space_aligned_rows(tmp_path: Path) -> None:
    """Names separated by tabs, numbers by runs of spaces: the header is split at the tabs."""
    content = ("Acc X\tAcc Y\n" + _rows("    ")).encode()
    ds = load_dataset(_run(tmp_path, {"1.csv": content}))
    np.testing.assert_allclose(ds.runs[0].snapshots[0], SIGNAL, atol=1e-6)
    [warning] = ds.report.warnings
    assert "['Acc X', 'Acc Y'], not the channels of run.json ['x', 'y']" in warning


@pytest.mark.parametrize(
    "content",
    [_rows(",", trail=",").encode(),
     _rows(";", trail=";", decimal=",").encode(),  # European Excel
     ("x\ty\t\n" + _rows("\t", trail="\t")).encode(),  # header too; final tab kept for its row
     ("x,y,\r\n" + _rows(",", trail=", ", eol="\r\n") + "\r\n\r\n").encode()],
    ids=["comma", "semicolon-decimal-comma", "tab-header", "crlf-header-blank-lines"],
)
def test_a_trailing_separator_on_every_line_loads(tmp_path: Path, content: bytes) -> None:
    _loads_clean(_run(tmp_path, {"1.csv": content}))


@pytest.mark.parametrize(
    ("content", "where", "found"),
    [(_rows(trail=",")[:-2] + "\n", "line 16: expected a trailing ',' (an empty last column) "
      "on every line, as on line 1", "found none: '"),  # the last row lacks it
     ("x,y\n" + _rows(trail=","), "line 1: expected a trailing ',' (an empty last column) on "
      "every line, as on line 2", "found none: 'x,y'"),  # the header lacks it
     ("x,y,\n" + _rows(), "line 2: expected a trailing ',' (an empty last column) on every "
      "line, as on line 1", "found none: '"),  # the rows lack it
     (_rows(trail=",").replace("\n", "\n\n", 1), "line 2: expected a trailing ','",
      "found an empty line"),
     (_rows()[:-1] + ",\n", "line 16: expected 2 columns separated by ','", "found 3 columns")],
    ids=["last-row", "header", "rows-not-header", "blank-line", "only-the-last-row"],
)
def test_ragged_trailing_separators_are_refused_naming_the_line(
    tmp_path: Path, content: str, where: str, found: str
) -> None:
    root = _run(tmp_path, {"1.csv": content.encode(), "2.csv": _rows(trail=",").encode()})
    ds = load_dataset(root)
    assert ds.runs[0].n_snapshots == 1  # the good file still loads
    reason = _reason(root, "1.csv")
    assert f"1.csv, {where}" in reason and found in reason, reason


@pytest.mark.parametrize(
    ("preamble", "bad_line"),
    [("# recorded 2024-05-01 by DAQ 3\n# fs = 1000 Hz\n", 5),
     ("\n\n", 5),  # blank lines before the data
     ("sep=;\nx;y\n", 6)],  # Excel's separator line, then a header
)
def test_comment_blank_and_excel_lines_before_the_rows(
    tmp_path: Path, preamble: str, bad_line: int
) -> None:
    sep = ";" if "sep=;" in preamble else ","
    good = preamble + _rows(sep, decimal="," if sep == ";" else ".")
    _loads_clean(_run(tmp_path / "good", {"1.csv": good.encode()}))
    lines = good.splitlines(keepends=True)
    lines[bad_line - 1] = f"0{sep}oops\n"  # line numbers count the lines skipped
    root = _run(tmp_path / "bad", {"1.csv": "".join(lines).encode()})
    assert f"1.csv, line {bad_line}, column 2: expected a number, found 'oops'" in _reason(
        root, "1.csv")


def test_classic_mac_line_ends_and_a_missing_final_newline(tmp_path: Path) -> None:
    _loads_clean(_run(tmp_path / "cr", {"1.csv": _rows(eol="\r").encode()}))
    _loads_clean(_run(tmp_path / "end", {"1.csv": _rows().rstrip("\n").encode()}))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be-bom", "utf-32", "utf-16-le"])
def test_utf16_and_utf32_text_is_read(tmp_path: Path, encoding: str) -> None:
    text = "x,y\r\n" + _rows(eol="\r\n")
    data = (b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else
            text.encode(encoding))  # 'utf-16-le': no byte-order mark, told by the NUL bytes
    meta = (b"\xfe\xff" + json.dumps(META).encode("utf-16-be") if encoding == "utf-16-be-bom"
            else json.dumps(META).encode(encoding))
    _loads_clean(_run(tmp_path, {"1.csv": data}, meta=meta))


def test_undecodable_and_binary_files_are_refused_with_the_encoding(tmp_path: Path) -> None:
    bad16 = b"\xff\xfe" + "1,2\n".encode("utf-16-le") + b"\x00\xd8" + "3,4\n".encode("utf-16-le")
    root = _run(tmp_path, {"1.csv": _rows().encode(), "2.csv": bad16,
                           "3.csv": b"\x01\x02\x00\x00binary"})
    ds = load_dataset(root)
    assert ds.runs[0].n_snapshots == 1
    reasons = {Path(s.path).name: s.reason for s in ds.report.skipped}
    assert ("2.csv: expected UTF-16LE text (as its byte-order mark says), found an invalid "
            "sequence at byte 10") in reasons["2.csv"]
    assert ("3.csv: expected a text file of numbers (UTF-8, or UTF-16/UTF-32), found binary "
            "data (a NUL byte at byte 2)") in reasons["3.csv"]


def test_run_json_in_a_legacy_encoding_names_line_and_column(tmp_path: Path) -> None:
    meta = b'{"fs": 1000, "rpm": 1800,\n "channels": ["x", "y"], "name": "Pr\xfcfstand"}'
    reason = _reason(_run(tmp_path, {"1.csv": _rows().encode()}, meta=meta), "run.json")
    assert "run.json, line 2, column 37: expected JSON text in UTF-8" in reason
    assert "found byte 0xfc, not UTF-8 (saved in a legacy encoding such as Windows-1252?" in reason


@pytest.mark.parametrize("name", ["RUN.JSON", "Run.json", "run.JSON"])
def test_run_json_in_any_capitalisation(tmp_path: Path, name: str) -> None:
    root = _run(tmp_path, {"1.csv": _rows().encode()}, meta_name=name)
    _loads_clean(root)
    assert load_dataset(root).report.used[0].endswith(name)


def test_run_json_saved_with_a_hidden_txt_extension_is_read_with_a_warning(
        tmp_path: Path) -> None:
    """Notepad on Windows saves 'run.json' as run.json.txt while Explorer hides the extension:
    the folder was no run at all (read as an XJTU-SY bearing whose files all failed)."""
    root = _run(tmp_path, {"1.csv": _rows().encode()}, meta_name="Run.json.txt")
    ds = load_dataset(root)
    assert ds.layout == "generic" and not ds.report.skipped
    np.testing.assert_allclose(ds.runs[0].snapshots[0], SIGNAL, atol=1e-6)
    assert ds.report.warnings == [f"{root / 'run1' / 'Run.json.txt'}: read as the run's "
                                  "run.json (Windows hides the .txt it was saved with); rename "
                                  "it to run.json"]
    (root / "run1" / "run.json").write_text(json.dumps(META))  # both: ambiguous, as below
    assert not load_dataset(tmp_path / "run1", layout="generic").runs


def test_two_run_json_capitalisations_are_ambiguous(tmp_path: Path) -> None:
    root = _run(tmp_path, {"1.csv": _rows().encode()})
    (root / "run1" / "RUN.JSON").write_text(json.dumps(dict(META, fs=2000)))
    _run(tmp_path / "more", {"1.csv": _rows().encode()})  # another run in the upload
    ds = load_dataset(tmp_path)
    assert [r.dataset for r in ds.runs] == ["more"]  # the rest still loads
    reasons = {Path(s.path).name: s.reason for s in ds.report.skipped if "more" not in s.path}
    assert set(reasons) == {"run.json", "RUN.JSON", "1.csv"}
    assert ("run.json: expected the only run.json of its folder, found also 'RUN.JSON', the "
            "same name in other capitalisation") in reasons["run.json"]
    assert "found also 'run.json'" in reasons["RUN.JSON"]
    assert "not read because the folder holds 'RUN.JSON', 'run.json'" in reasons["1.csv"]
    assert all(is_problem(s) for s in ds.report.skipped)


def test_the_reader_version_was_bumped_so_cached_runs_are_read_again() -> None:
    assert GenericReader.version >= 3


# -- the text helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "sep"),
    [(b"1.5,2.5", ","), (b"1.5, 2.5,", ","), (b"0,5;1,2", ";"), (b"1.5\t2.5", "\t"),
     (b"1.5\t2.5\t", "\t"), (b"\t1.5\t2.5", WHITESPACE), (b"1.5\t\t2.5", WHITESPACE),
     (b"1.5 2.5", WHITESPACE), (b"  1.5   2.5  ", WHITESPACE), (b"0,5 1,2", WHITESPACE),
     (b"0,5", ","), (b"  1.5", ","), (b'"1.5" "2.5"', WHITESPACE), (b"1.5,2.5\r", ",")],
)
def test_sniff_separator(line: bytes, sep: str) -> None:
    assert sniff_separator(line) == sep


def test_squeeze_whitespace_keeps_line_breaks() -> None:
    assert squeeze_whitespace(b"  1   2 \n\t3\t \t4\t\r\n 5 6 ") == b"1 2\n3 4\r\n5 6"
    assert squeeze_whitespace(b"1 2\n3 4\n") == b"1 2\n3 4\n"


def test_strip_trailing_separator() -> None:
    assert strip_trailing_separator(b"1,2,\r\n3,4, \r\n\r\n", ",", "f", 1) == b"1,2\r\n3,4"
    assert strip_trailing_separator(b"1\t2\t\n3\t4\t\n \n", "\t", "f", 1) == b"1\t2\n3\t4"
    with pytest.raises(DataFormatError, match=r"f, line 3: expected a trailing ';'"):
        strip_trailing_separator(b"1;2;\n3;4;\n5;6\n", ";", "f", 1)


def test_text_encoding_and_to_utf8() -> None:
    assert text_encoding("1,2".encode("utf-16")) == ("utf-16-le", 2)
    assert text_encoding("1,2".encode("utf-32-be")) == ("utf-32-be", 0)
    assert text_encoding(b"\xef\xbb\xbf1,2") == ("utf-8", 3)
    assert to_utf8("x,y\n1,2\n".encode("utf-16"), "f") == b"x,y\n1,2\n"
    assert to_utf8(b"\xef\xbb\xbf1,2", "f") == b"1,2"
