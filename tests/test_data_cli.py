"""``python -m rul_core synth`` and ``inspect``."""

from __future__ import annotations

from pathlib import Path

import pytest

from rul_core.cli import main


def test_synth_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUL_WORKSPACE", str(tmp_path / "ws"))
    out = tmp_path / "femto"
    assert main(["synth", "--layout", "femto", "--out", str(out), "--bearings", "1",
                 "--snapshots", "3", "--samples", "256"]) == 0
    assert len(list((out / "Learning_set" / "Bearing1_1").glob("acc_*.csv"))) == 3
    (out / "Learning_set" / "Bearing1_1" / "acc_00004.csv").write_text("oops\n")
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layout: femto" in text and "Bearing1_1" in text and "1800 rpm" in text
    assert "acc_00004.csv, line 1: expected 6 columns separated by ','" in text
    assert "3 used, 1 skipped with a problem" in text
    assert list((tmp_path / "ws" / "cache" / "runs").glob("*.npz"))  # cached in the workspace


def test_inspect_nothing_loadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("hi")
    assert main(["inspect", str(tmp_path), "--no-cache"]) == 1
    assert "no known dataset layout" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["inspect", "synth", "spectrum"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and "usage" in capsys.readouterr().out


@pytest.mark.parametrize("snapshots", ["0", "-2"])
def test_demo_assets_refuses_no_snapshots(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          snapshots: str) -> None:
    """``demo-assets --snapshots 0`` was a ValueError traceback from the synthesiser."""
    out = tmp_path / "demo"
    assert main(["demo-assets", "--out", str(out), "--no-model", "--snapshots", snapshots]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: demo-assets: --snapshots must be 1 or more, got {snapshots}")
    assert not out.exists()


def test_features_bad_normaliser_names_the_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON file without a normaliser was reported as 'normaliser.minimum: missing', without
    saying which file."""
    bad = tmp_path / "manifest.json"
    bad.write_text('{"dataset": "data"}')
    assert main(["features", str(tmp_path), "--out", str(tmp_path / "f"), "--normaliser",
                 str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --normaliser {bad}: normaliser.minimum: missing"
    assert not (tmp_path / "f").exists()


def test_inspect_table_fits_100_columns(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The run table was 108 characters wide whatever the data (fixed 14/14/34-wide columns):
    every line wrapped in a 100-column terminal. Columns now take their widest cell."""
    out = tmp_path / "femto"
    assert main(["synth", "--layout", "femto", "--out", str(out), "--bearings", "1",
                 "--snapshots", "2", "--samples", "256"]) == 0
    (out / "Full_Test_Set").mkdir()
    (out / "Learning_set" / "Bearing1_1").rename(out / "Full_Test_Set" / "Bearing1_1")
    capsys.readouterr()
    assert main(["inspect", str(out), "--no-cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    header, rule, first = lines[1:4]
    assert set(rule) == {"-"} and len(rule) == len(header)
    assert header.index("condition") == first.index("condition 1 (1800 rpm, 4000 N)")
    assert header.index("set") == first.index("Full_Test_Set")
    assert first.endswith(" 2   25600     10 s")


def test_features_tells_which_files_it_skipped(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """features (like train, evaluate, predict, explain) went on without a bad file and never
    said so: only inspect listed skipped files."""
    out = tmp_path / "femto"
    assert main(["synth", "--layout", "femto", "--out", str(out), "--bearings", "1",
                 "--snapshots", "4", "--samples", "2560"]) == 0
    bad = out / "Learning_set" / "Bearing1_1" / "acc_00002.csv"
    lines = bad.read_text().splitlines()
    lines[9] = lines[9].rsplit(",", 1)[0] + ",oops"
    bad.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["features", str(out), "--out", str(tmp_path / "f"), "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 file(s) skipped with a problem, 3 used:\n" in err
    assert f"  - {bad}, line 10, column 6: expected a number, found 'oops'\n" in err
    assert (tmp_path / "f" / "Bearing1_1.npz").is_file()


def test_demo_assets_never_replaces_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``demo-assets --out .`` (or any folder of the user's) was swapped for the demo, deleting
    everything else in it."""
    (tmp_path / "thesis.tex").write_text("precious")
    assert main(["demo-assets", "--out", str(tmp_path), "--no-model", "--snapshots", "2"]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}: holds 'thesis.tex', not only demo assets; refusing to replace it "
        "(name a new or empty folder)\n")
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    demo = tmp_path / "demo"  # earlier demo assets are rebuilt in place
    for _ in range(2):
        assert main(["demo-assets", "--out", str(demo), "--no-model", "--snapshots", "2"]) == 0
    assert sorted(p.name for p in demo.iterdir()) == ["MANIFEST.json", "data"]


@pytest.fixture(scope="module")
def xjtu_second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic XJTU-SY bearing at 35 Hz with 1 s snapshots (1 Hz bins)."""
    from rul_core.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("xjtu"), "xjtu", n_bearings=1, n_snapshots=4,
                         samples=25600, seed=0)


def test_spectrum_names_bpfo_at_the_largest_envelope_peak(
        xjtu_second: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from rul_core.data import load_dataset
    from rul_core.signal import spectrum as sp

    out = tmp_path / "spectrum.csv"
    assert main(["spectrum", "--data", str(xjtu_second), "--run", "Bearing1_1", "--snapshot",
                 "-1", "--envelope", "--no-cache", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "snapshot 3 of 0-3, channel horizontal: envelope spectrum, band " \
           "2000-10000 Hz, Hann window, 1 Hz bins" in text
    assert "geometry LDK UER204 (XJTU-SY)" in text  # the XJTU-SY layout's bearing
    assert "BPFO 107.91" in text
    first = text.split("-----\n")[-1].splitlines()[0].split()
    assert first[0] == "108.00" and first[2] == "BPFO" and first[3] == "107.91"
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    run = load_dataset(xjtu_second, cache_dir=None).run("Bearing1_1")
    spec = sp.compute_spectrum(run.snapshots[3, :, 0], run.fs,
                               sp.SpectrumSettings("envelope", (2000.0, 10000.0), 1000.0))
    np.testing.assert_allclose(rows[:, 0], spec.freqs)
    np.testing.assert_allclose(rows[:, 1], spec.values, rtol=1e-7)


def test_spectrum_band_auto_takes_the_kurtograms_band_and_prints_it(
        xjtu_second: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--band auto``: the band-pass is the kurtogram's best band of that snapshot (the same
    as the library computes), printed with its level and kurtosis, and the envelope spectrum
    through it has its largest peak at BPFO (107.91 Hz at 35 Hz; 1 Hz bins)."""
    from rul_core.data import load_dataset
    from rul_core.signal import kurtogram as kgm

    base = ["spectrum", "--data", str(xjtu_second), "--run", "Bearing1_1", "--snapshot", "-1",
            "--no-cache"]
    assert main([*base, "--envelope", "--band", "auto"]) == 0
    text = capsys.readouterr().out
    run = load_dataset(xjtu_second, cache_dir=None).run("Bearing1_1")
    band, kg, _ = kgm.suggest_band(run.snapshots[3, :, 0], run.fs)
    assert text.startswith(f"kurtogram (Antoni 2007, levels 0-7) of snapshot 3: Largest "
                           f"kurtosis {kg.best.kurtosis:.3g} at level {kg.best.level:.1f}: "
                           f"{kg.best.low:.0f}–{kg.best.high:.0f} Hz")
    assert f"Suggested band-pass {band[0]:.6g}–{band[1]:.6g} Hz." in text
    assert (f"channel horizontal: envelope spectrum, band {band[0]:g}-{band[1]:g} Hz, Hann "
            "window, 1 Hz bins") in text
    first = text.split("-----\n")[-1].splitlines()[0].split()
    assert first[0] == "108.00" and first[2] == "BPFO"
    assert main([*base, "--envelope", "--band", "AUTO", "--channel", "vertical"]) == 0
    assert "kurtogram (Antoni 2007" in capsys.readouterr().out
    assert main([*base, "--band", "auto"]) == 2  # an amplitude spectrum has no band
    assert "--band auto: the kurtogram picks an envelope band; add --envelope" in \
        capsys.readouterr().err
    for bad in (["auto", "2000"], ["2000"], ["1", "2", "3"], ["low", "high"]):
        with pytest.raises(SystemExit):
            main([*base, "--envelope", "--band", *bad])
        assert "argument --band: expected two frequencies LO HI in Hz or auto, got " \
               f"{' '.join(bad)}" in capsys.readouterr().err


def test_spectrum_without_geometry_marks_the_shaft_only_and_refuses_bad_options(
        xjtu_second: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["spectrum", "--data", str(xjtu_second), "--run", "Bearing1_1", "--no-cache"]
    assert main([*base, "--snapshot", "0", "--geometry", "none", "--peaks", "2"]) == 0
    text = capsys.readouterr().out
    assert "amplitude spectrum, Hann window" in text and "0-12800 Hz" in text
    assert "characteristic frequencies (Hz): f_r 35.00\n" in text
    assert "BPFO" not in text
    assert main([*base, "--snapshot", "0", "--balls", "8", "--ball-mm", "7.92",
                 "--pitch-mm", "34.55"]) == 0
    assert "BPFO 107.91" in capsys.readouterr().out
    for extra, message in (
            (["--snapshot", "4"], "--snapshot: Bearing1_1 has snapshots 0 to 3, got 4"),
            (["--snapshot", "0", "--envelope", "--band", "2000", "13000"],
             "band: the upper edge 13000 Hz must be below the Nyquist frequency 12800 Hz"),
            (["--snapshot", "0", "--balls", "8"], "geometry: give --balls, --ball-mm and"),
            (["--snapshot", "0", "--channel", "z"], "--channel: Bearing1_1 has channels"),
            (["--snapshot", "0", "--out", "x.txt"], "--out: expected a .csv, .png"),
    ):
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err
    assert main(["spectrum", "--data", str(xjtu_second), "--run", "Bearing9_9",
                 "--snapshot", "0", "--no-cache"]) == 2
    assert "--run: no run 'Bearing9_9'; available: Bearing1_1" in capsys.readouterr().err
