"""ImR raster: the vectorised closed form equals textbook Bresenham drawn segment by segment."""

from __future__ import annotations

import numpy as np
import pytest

from rul_core.signal.raster import (
    amplitude_levels,
    column_runs,
    imr_image,
    imr_pair_counts,
    imr_raster,
    raster_width,
)

ROWS = 64


def textbook_bresenham(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """Bresenham (1965) integer line, all octants, both end points included."""
    dx, dy = x1 - x0, y1 - y0
    xsign = 1 if dx > 0 else -1
    ysign = 1 if dy > 0 else -1
    dx, dy = abs(dx), abs(dy)
    if dx > dy:
        xx, xy, yx, yy = xsign, 0, 0, ysign
    else:
        dx, dy = dy, dx
        xx, xy, yx, yy = 0, ysign, xsign, 0
    err = 2 * dy - dx
    y = 0
    points = []
    for x in range(dx + 1):
        points.append((x0 + x * xx + y * yx, y0 + x * xy + y * yy))
        if err >= 0:
            y += 1
            err -= 2 * dx
        err += 2 * dy
    return points


def reference_raster(window: np.ndarray, spacing: int = 1) -> np.ndarray:
    """Algorithm 1 written plainly: quantise, then draw every segment one by one."""
    levels = [min(int(np.floor(ROWS * min(max(float(v), 0.0), 1.0))), ROWS - 1) for v in window]
    width = (len(levels) - 1) * spacing + 1
    img = np.zeros((ROWS, width), dtype=np.uint8)
    if len(levels) == 1:
        img[ROWS - 1 - levels[0], 0] = 255
    for k in range(len(levels) - 1):
        x0, x1 = k * spacing, (k + 1) * spacing
        for col, lev in textbook_bresenham(x0, levels[k], x1, levels[k + 1]):
            img[ROWS - 1 - lev, col] = 255  # level 0 at the bottom
    return img


def window_zoo(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """Random, flat, saturated, exact-border, steep, alternating and random-walk windows."""
    kinds = []
    for i in range(n):
        kind = i % 9
        if kind == 0:
            w = rng.random(length)
        elif kind == 1:
            w = np.full(length, rng.random())
        elif kind == 2:
            w = np.zeros(length)
        elif kind == 3:
            w = np.ones(length)
        elif kind == 4:
            w = rng.choice([0.0, 1.0, 0.5, 1 / 64, 63 / 64, 0.999999], size=length)
        elif kind == 5:
            w = np.where(np.arange(length) % 2 == 0, 0.0, 1.0)
        elif kind == 6:
            w = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, length)), 0, 1)
        elif kind == 7:
            w = rng.random(length) * 3 - 1  # out of range: clipped to the borders
        else:
            w = np.clip(0.5 + 0.5 * np.sin(np.arange(length) * rng.uniform(0.01, 3)), 0, 1)
        kinds.append(w)
    return np.asarray(kinds)


def test_levels_follow_the_spec_row_rule() -> None:
    x = np.array([0.0, 1 / 64 - 1e-9, 1 / 64, 0.5, 63 / 64, 0.9999, 1.0, -0.2, 1.7])
    assert amplitude_levels(x).tolist() == [0, 0, 1, 32, 63, 63, 63, 0, 63]
    with pytest.raises(ValueError, match="NaN"):
        amplitude_levels(np.array([0.1, np.nan]))


def test_levels_do_not_depend_on_the_float_type() -> None:
    """With rows = 100 (not a power of two) float32(0.44) = 0.43999999761... is level 43,
    floor(100 x) of the value, as the same value held in float64; float32 arithmetic would
    round 100 x up to 44. Likewise rows = 127 = 2**7 - 1: float32(82/127) lies just below
    82/127, level 81."""
    x32 = np.array([0.44, 0.5], dtype=np.float32)
    assert amplitude_levels(x32, rows=100).tolist() == [43, 50]
    assert amplitude_levels(x32.astype(np.float64), rows=100).tolist() == [43, 50]
    assert amplitude_levels(np.array([0.44, 0.5]), rows=100).tolist() == [44, 50]
    assert amplitude_levels(np.array([82 / 127], dtype=np.float32), rows=127).tolist() == [81]
    assert amplitude_levels(np.array([82 / 127]), rows=127).tolist() == [82]


def test_column_runs_by_hand_and_rows_limits() -> None:
    """Levels 0 -> 5 -> 5 at the default spacing 1 give the int16 runs 0..2, 3..5, 5..5;
    rows may be 2 or 4096 (a 0 -> 4095 step splits at Bresenham's midpoint), not 1 or 4097."""
    lo, hi = column_runs(np.array([0.0, 5 / 64, 5 / 64]))
    assert lo.dtype == hi.dtype == np.int16
    assert lo.tolist() == [[0, 3, 5]] and hi.tolist() == [[2, 5, 5]]
    assert raster_width(1000) == 1000
    lo, hi = column_runs(np.array([0.0, 1.0]), rows=2)
    assert lo.tolist() == [[0, 1]] and hi.tolist() == [[0, 1]]
    lo, hi = column_runs(np.array([0.0, 1.0]), rows=4096)
    first = sorted(r for c, r in textbook_bresenham(0, 0, 1, 4095) if c == 0)
    assert first == list(range(2048))
    assert lo.tolist() == [[0, 2048]] and hi.tolist() == [[2047, 4095]]
    for rows in (1, 4097):
        with pytest.raises(ValueError, match="rows"):
            column_runs(np.zeros(3), rows=rows)


def test_hand_drawn_example() -> None:
    # levels 0 -> 5 -> 5: steep segment splits 0..2 in column 0 and 3..5 in column 1
    img = imr_raster(np.array([0.0, 5 / 64, 5 / 64]))[0]
    lit = {(63 - r, c) for r, c in zip(*np.nonzero(img), strict=True)}
    assert lit == {(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (5, 2)}
    assert set(np.unique(img)) == {0, 255}


@pytest.mark.parametrize("length", [2, 3, 7, 31, 64])
def test_matches_textbook_bresenham_pixel_for_pixel(length: int) -> None:
    rng = np.random.default_rng(length)
    windows = window_zoo(rng, 900, length)
    fast = imr_raster(windows)
    for i, w in enumerate(windows):
        np.testing.assert_array_equal(fast[i], reference_raster(w), err_msg=f"window {i}")


@pytest.mark.parametrize("spacing", [2, 3, 5])
def test_matches_textbook_with_spacing(spacing: int) -> None:
    rng = np.random.default_rng(100 + spacing)
    windows = window_zoo(rng, 450, 20)
    fast = imr_raster(windows, spacing=spacing)
    assert fast.shape == (450, ROWS, raster_width(20, spacing))
    for i, w in enumerate(windows):
        np.testing.assert_array_equal(fast[i], reference_raster(w, spacing), err_msg=f"{i}")


def test_full_length_windows_and_pair_counts() -> None:
    rng = np.random.default_rng(7)
    windows = window_zoo(rng, 9, 1000).astype(np.float32)
    full = imr_raster(windows)
    assert full.shape == (9, 64, 1000)
    counts = imr_pair_counts(windows)
    assert counts.shape == (9, 64, 500) and counts.dtype == np.uint8
    for i, w in enumerate(windows):
        ref = reference_raster(w)
        np.testing.assert_array_equal(full[i], ref)
        pairs = (ref[:, 0::2] // 255) + (ref[:, 1::2] // 255)
        np.testing.assert_array_equal(counts[i], pairs)
    np.testing.assert_allclose(imr_image(windows), counts / 2.0)


def test_odd_width_pair_counts_keep_the_last_column() -> None:
    w = np.array([[0.0, 0.5, 1.0]])  # width 3 -> 2 pairs, last one single
    counts = imr_pair_counts(w)
    ref = reference_raster(w[0]) // 255
    assert counts.shape == (1, 64, 2)
    np.testing.assert_array_equal(counts[0, :, 1], ref[:, 2])
    np.testing.assert_array_equal(counts[0, :, 0], ref[:, 0] + ref[:, 1])


def test_each_column_is_one_run_and_input_untouched() -> None:
    rng = np.random.default_rng(3)
    w = rng.random((50, 100))
    before = w.copy()
    lo, hi = column_runs(w)
    assert np.all(lo <= hi) and lo.min() >= 0 and hi.max() <= 63
    np.testing.assert_array_equal(w, before)


def test_single_sample_and_bad_input() -> None:
    img = imr_raster(np.array([[0.0]]))
    assert img.shape == (1, 64, 1) and img[0, 63, 0] == 255 and img.sum() == 255
    with pytest.raises(ValueError, match="spacing"):
        imr_raster(np.zeros((1, 5)), spacing=0)
    with pytest.raises(ValueError, match="windows"):
        imr_raster(np.zeros((2, 3, 4)))


def test_textbook_variants_agree_on_left_to_right_segments() -> None:
    """The classic, Zingl's error-term and scikit-image lines light the same pixels here."""
    from skimage.draw import line

    for dx in range(1, 6):
        for dy in range(-63, 64):
            classic = set(textbook_bresenham(0, 0, dx, dy))
            r, c = line(0, 0, dy, dx)
            assert classic == set(zip(c.tolist(), r.tolist(), strict=True)), (dx, dy)
