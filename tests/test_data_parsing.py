"""Natural order and the vectorised CSV parser against hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from rul_core.data.csvparse import CsvItem, diagnose, parse_items, parse_numeric_csv
from rul_core.data.natural import file_number, natural_key, natural_sorted
from rul_core.errors import DataFormatError

FLOAT32_RANGE = "a finite number between -3.403e+38 and 3.403e+38 (samples are kept as float32)"


def test_natural_order_differs_from_string_sort() -> None:
    names = ["10.csv", "2.csv", "1.csv", "acc_100.csv"][:3]
    assert sorted(names) == ["1.csv", "10.csv", "2.csv"]  # what a plain sort does
    assert natural_sorted(names) == ["1.csv", "2.csv", "10.csv"]
    femto = ["acc_10.csv", "acc_9.csv", "acc_100.csv"]
    assert natural_sorted(femto) == ["acc_9.csv", "acc_10.csv", "acc_100.csv"]
    assert natural_key("Bearing1_10") > natural_key("Bearing1_9")
    assert file_number("acc_00012.csv") == 12 and file_number("run.json") is None


def test_parse_three_digit_exponent_and_semicolon() -> None:
    comma = b"8,8,0,4.2504e+005,0.065,-0.058\n8,8,0,4.2508e+005,0.438,0.179\n"
    semi = b"8;8;0;4.2504e+05;0.065;-0.058\n8;8;0;4.2508e+05;0.438;0.179\n"
    a = parse_numeric_csv(comma, "a.csv", ncols=6)
    b = parse_numeric_csv(semi, "b.csv", ncols=6)
    np.testing.assert_array_equal(a, b)
    assert a[1, 3] == 425080.0 and a[0, 5] == -0.058


@pytest.mark.parametrize(
    ("text", "line", "column", "expected", "found"),
    [
        (b"1,2\n3,4,5\n", 2, None, "2 columns separated by ','", "3 columns"),
        (b"1,2\n3,x\n", 2, 2, "a number", "'x'"),
        (b"1,2\n3,nan\n", 2, 2, "a finite number", "'nan'"),
        (b"1,2\n3,inf\n", 2, 2, "a finite number", "'inf'"),
        (b"1,2\n\n3,4\n", 2, None, "2 numbers separated by ','", "an empty line"),
        (b"1,2\n3,\n", 2, 2, "a number", "''"),
        (b"1,1e999\n", 1, 2, FLOAT32_RANGE, "'1e999'"),
        (b"1,2\n-4e38,0\n", 2, 1, FLOAT32_RANGE, "'-4e38'"),  # inf once kept as float32
    ],
)
def test_errors_name_line_column_expected(
    text: bytes, line: int, column: int | None, expected: str, found: str
) -> None:
    [result] = parse_items([CsvItem("f.csv", text, ",", 2)])
    assert isinstance(result, DataFormatError)
    assert (result.line, result.column, result.expected, result.found) == (
        line, column, expected, found,
    )
    assert str(result).startswith(f"f.csv, line {line}")


def test_empty_file_and_header_offset() -> None:
    with pytest.raises(DataFormatError, match="an empty file"):
        parse_numeric_csv(b"", "e.csv", ncols=2)
    [result] = parse_items([CsvItem("h.csv", b"1,2\n3,?\n", ",", 2, skip_lines=1)])
    assert isinstance(result, DataFormatError) and result.line == 3  # the header was line 1


def test_batch_isolates_the_bad_file_and_agrees_with_reference() -> None:
    rng = np.random.default_rng(1)
    good = [rng.normal(size=(50, 2)).round(3) for _ in range(9)]
    items = [
        CsvItem(f"{i}.csv", "".join(f"{a:.3f},{b:.3f}\n" for a, b in g).encode(), ",", 2)
        for i, g in enumerate(good)
    ]
    items.insert(4, CsvItem("bad.csv", b"1,2\n3,oops\n", ",", 2))
    results = parse_items(items)
    assert isinstance(results[4], DataFormatError) and results[4].column == 2
    others = [r for i, r in enumerate(results) if i != 4]
    for g, r, item in zip(good, others, [it for i, it in enumerate(items) if i != 4], strict=True):
        np.testing.assert_allclose(r, g, atol=1e-12)
        np.testing.assert_array_equal(r, diagnose(item))  # fast path == reference parser
