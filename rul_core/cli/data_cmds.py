"""Data subcommands: ``inspect`` (what a folder or archive holds), ``synth`` (write data) and
``spectrum`` (a snapshot's amplitude or envelope spectrum, its peaks and fault frequencies)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rul_core import config
from rul_core.cli.tables import text_table
from rul_core.data.loader import LAYOUTS, is_problem, left_out_lines, load_dataset
from rul_core.data.run import Dataset
from rul_core.errors import ArchiveError, InputError, LayoutError
from rul_core.progress import TqdmProgress

if TYPE_CHECKING:
    from rul_core.signal.spectrum import BearingGeometry, FaultMarker, Spectrum

MAX_PROBLEMS_SHOWN = 50
#: What ``spectrum --out`` writes, by suffix.
SPECTRUM_OUTPUTS = ("csv", "png", "svg", "pdf", "html")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``inspect``, ``synth`` and ``spectrum``."""
    p = sub.add_parser(
        "inspect",
        help="read a dataset folder or archive and list its runs and problems",
        description="Read PATH (folder, bearing folder, .zip/.tar.gz archive) and print the "
        "layout, every run (condition, snapshots, samples, channels, rate, duration) and every "
        "file skipped with its reason. Exit code 0 when a run was loaded, 1 otherwise.",
    )
    p.add_argument("path", type=Path, help="dataset folder, run folder or archive")
    p.add_argument(
        "--layout", choices=LAYOUTS, default=None, help="force a layout (default: detect)"
    )
    p.add_argument("--temperature", action="store_true", help="also read FEMTO temp_*.csv files")
    p.add_argument("--no-cache", action="store_true", help="do not use the workspace cache")
    p.add_argument("--all", action="store_true", help="list every skipped file, not the first 50")
    p.set_defaults(func=cmd_inspect)

    s = sub.add_parser(
        "synth",
        help="write a synthetic run-to-failure dataset in a real on-disk layout",
        description="Write seeded synthetic bearings (shaft harmonics, BPFO impulses exciting "
        "a resonance, exponential degradation, noise) in the XJTU-SY, FEMTO or generic layout.",
    )
    s.add_argument("--layout", choices=LAYOUTS, required=True, help="on-disk layout to write")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--bearings", type=int, default=2, help="bearings per condition (default 2)")
    s.add_argument("--snapshots", type=int, default=20, help="snapshots per bearing (default 20)")
    s.add_argument("--samples", type=int, default=2560, help="samples per snapshot (default 2560)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--temperature", action="store_true", help="FEMTO: also write temp files")
    s.set_defaults(func=cmd_synth)
    _register_spectrum(sub)


class BandAction(argparse.Action):
    """``--band LO HI`` (two frequencies in Hz) or ``--band auto`` (the kurtogram's band)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        items = list(values) if isinstance(values, list) else [values]
        if len(items) == 1 and str(items[0]).lower() == "auto":
            setattr(namespace, self.dest, AUTO_BAND)
            return
        try:
            band = tuple(float(v) for v in items)
        except ValueError:
            band = ()
        if len(band) != 2:
            parser.error(f"argument {option_string}: expected two frequencies LO HI in Hz or "
                         f"auto, got {' '.join(map(str, items))}")
        setattr(namespace, self.dest, band)


#: ``--band auto``.
AUTO_BAND = "auto"


def _register_spectrum(sub: argparse._SubParsersAction) -> None:
    from rul_core.signal.spectrum import DEFAULT_BAND_HZ

    p = sub.add_parser(
        "spectrum",
        help="a snapshot's amplitude or envelope spectrum: its largest peaks and the nearest "
             "bearing fault frequency",
        description="Print the largest peaks of one snapshot's spectrum (Hann window, peak "
        "amplitudes) and, for each, the nearest characteristic frequency: shaft f_r and, with a "
        "geometry, FTF, BPFO, BPFI, BSF and their harmonics. --envelope: band-pass (default "
        f"{DEFAULT_BAND_HZ[0]:g}-{DEFAULT_BAND_HZ[1]:g} Hz, clamped to the sampling rate; "
        "--band auto: the kurtogram's band), Hilbert envelope, spectrum of the envelope.",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder, run or archive")
    p.add_argument("--run", required=True, help="run name, e.g. Bearing1_1")
    p.add_argument("--snapshot", type=int, required=True,
                   help="snapshot index from 0 (as on the Data page); -1 is the last")
    p.add_argument("--channel", default="0", help="channel name or index (default 0)")
    p.add_argument("--envelope", action="store_true", help="envelope spectrum")
    p.add_argument("--band", nargs="+", action=BandAction, metavar=("LO|auto", "HI"),
                   help="envelope band-pass: LO HI in Hz (default: the clamped default band), "
                        "or auto: the band where the fast kurtogram (Antoni 2007) of the "
                        "snapshot is largest, printed with its kurtosis")
    p.add_argument("--max-hz", type=float, default=None,
                   help="highest frequency (default: 1000 Hz for an envelope, else Nyquist)")
    p.add_argument("--peaks", type=int, default=5, help="peaks to list (default 5)")
    p.add_argument("--harmonics", type=int, default=3, help="harmonics marked (default 3)")
    p.add_argument("--rpm", type=float, default=None,
                   help="shaft speed (default: the run's operating condition)")
    p.add_argument("--geometry", choices=("none", "uer204"), default=None,
                   help="uer204: LDK UER204 (XJTU-SY, the default for that layout); none: "
                        "shaft harmonics only (the default otherwise: no FEMTO geometry is "
                        "published); or give --balls, --ball-mm and --pitch-mm")
    p.add_argument("--balls", type=int, help="rolling elements")
    p.add_argument("--ball-mm", type=float, help="ball diameter d (mm)")
    p.add_argument("--pitch-mm", type=float, help="pitch diameter D (mm)")
    p.add_argument("--angle-deg", type=float, default=0.0, help="contact angle (default 0)")
    p.add_argument("--layout", choices=LAYOUTS, default=None, help="force a layout")
    p.add_argument("--no-cache", action="store_true", help="do not use the workspace cache")
    p.add_argument("--out", type=Path,
                   help="also write the spectrum: .csv (frequency, value) or a figure "
                        "(.png, .svg, .pdf, .html)")
    p.set_defaults(func=cmd_spectrum)


def describe(dataset: Dataset, show_all: bool = False) -> str:
    """A human-readable summary of a loaded dataset and its report."""
    lines = [f"dataset {dataset.name!r}  layout: {dataset.layout}  runs: {len(dataset.runs)}"]
    lines += _run_table(dataset)
    report = dataset.report
    problems = [s for s in report.skipped if is_problem(s)]
    left_out = len(report.skipped) - len(problems)
    lines.append("")
    lines.append(f"files: {len(report.used)} used, {len(problems)} skipped with a problem, "
                 f"{left_out} not read by choice")
    if problems:
        lines.append("problems:")
        shown = problems if show_all else problems[:MAX_PROBLEMS_SHOWN]
        lines += [f"  - {s.reason}" for s in shown]
        if len(shown) < len(problems):
            lines.append(f"  ... and {len(problems) - len(shown)} more (--all lists them)")
    if report.warnings:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in report.warnings]
    return "\n".join(lines)


def _run_table(dataset: Dataset) -> list[str]:
    """One line per run under a header, each column as wide as its widest cell (the FEMTO
    tables fit a 100-column terminal)."""
    header = ("run", "set", "condition", "snapshots", "samples", "ch", "rate Hz", "duration")
    rows = [
        (run.name, run.dataset, run.condition.label, str(run.n_snapshots), str(run.n_samples),
         str(run.n_channels), f"{run.fs:g}",
         _duration(float(run.timestamps[-1]) if run.n_snapshots else 0.0))
        for run in dataset.runs
    ]
    return text_table(header, rows, right=range(3, len(header)), gap=" ")


def print_left_out(dataset: Dataset) -> None:
    """Tell the user, on stderr, which files a command's load skipped (it goes on without);
    through tqdm, so that an open progress bar is redrawn below, not overwritten."""
    from tqdm import tqdm

    for line in left_out_lines(dataset.report):
        tqdm.write(line if line.startswith("  ") else f"warning: {line}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:g} s"


def cmd_inspect(args: argparse.Namespace) -> int:
    """Load and describe; 0 when something loaded, 1 when nothing could be."""
    bar = TqdmProgress(file=sys.stderr, leave=False)
    try:
        dataset = load_dataset(
            args.path,
            args.layout,
            cache_dir=None if args.no_cache else config.workspace_dir() / "cache",
            progress=bar,
            read_temperature=args.temperature,
        )
    except (LayoutError, ArchiveError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    print(describe(dataset, args.all))
    return 0 if dataset.runs else 1


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic dataset and say where."""
    from rul_core.data.synthetic import write_dataset

    if args.bearings < 1 or args.snapshots < 1 or args.samples < 2:
        print("error: --bearings and --snapshots must be >= 1, --samples >= 2", file=sys.stderr)
        return 2
    out = write_dataset(
        args.out,
        args.layout,
        n_bearings=args.bearings,
        n_snapshots=args.snapshots,
        samples=args.samples,
        seed=args.seed,
        temperature=args.temperature,
    )
    print(f"wrote a synthetic {args.layout} dataset to {out}")
    return 0


def _geometry(args: argparse.Namespace, layout: str) -> tuple[BearingGeometry | None, str]:
    """The geometry the options name and how to describe it."""
    from rul_core.signal import spectrum as sp

    custom = (args.balls, args.ball_mm, args.pitch_mm)
    if any(v is not None for v in custom):
        if args.geometry is not None or any(v is None for v in custom):
            raise InputError("geometry: give --balls, --ball-mm and --pitch-mm together, "
                             "without --geometry")
        g = sp.BearingGeometry(args.balls, args.ball_mm, args.pitch_mm, args.angle_deg)
        return g, (f"{g.n_balls} balls of {g.ball_diameter_mm:g} mm on {g.pitch_diameter_mm:g} "
                   f"mm, {g.contact_angle_deg:g} deg")
    name = {"uer204": sp.UER204_PRESET, "none": None}.get(args.geometry or "",
                                                          sp.default_preset(layout))
    if name is None:
        return None, ("none: shaft harmonics only (--geometry uer204, or --balls, --ball-mm "
                      "and --pitch-mm)")
    return sp.GEOMETRY_PRESETS[name].geometry, name


def cmd_spectrum(args: argparse.Namespace) -> int:
    """Print a snapshot's largest spectral peaks with the nearest fault frequency."""
    from rul_core.signal import spectrum as sp

    if args.out and args.out.suffix.lower().lstrip(".") not in SPECTRUM_OUTPUTS:
        raise InputError(f"--out: expected a .csv, .png, .svg, .pdf or .html file, "
                         f"got {args.out.name}")
    dataset = load_dataset(args.data, args.layout,
                           cache_dir=None if args.no_cache else config.workspace_dir() / "cache")
    print_left_out(dataset)
    try:
        run = dataset.run(args.run)
    except KeyError as exc:
        raise InputError(f"--run: {exc.args[0]}") from None
    if not -run.n_snapshots <= args.snapshot < run.n_snapshots:
        raise InputError(f"--snapshot: {run.name} has snapshots 0 to {run.n_snapshots - 1}, "
                         f"got {args.snapshot}")
    snap = args.snapshot % run.n_snapshots
    names = run.channel_names
    if args.channel not in names and not (args.channel.isdigit()
                                          and int(args.channel) < len(names)):
        raise InputError(f"--channel: {run.name} has channels {', '.join(names)} "
                         f"(or 0 to {len(names) - 1}), got {args.channel!r}")
    channel = names.index(args.channel) if args.channel in names else int(args.channel)
    kind = sp.ENVELOPE if args.envelope else sp.AMPLITUDE
    max_hz = args.max_hz or sp.default_max_hz(kind, run.fs)
    if args.band == AUTO_BAND:
        if not args.envelope:
            raise InputError("--band auto: the kurtogram picks an envelope band; add --envelope")
        from rul_core.signal import kurtogram as kgm

        band, kg, note = kgm.suggest_band(run.snapshots[snap, :, channel], run.fs)
        print(f"kurtogram (Antoni 2007, levels 0-{kg.max_level}) of snapshot {snap}: "
              f"{kgm.describe(kg, band, note, max_hz)}")
    else:
        band = (tuple(args.band) if args.band else sp.default_band(run.fs)) if args.envelope \
            else None
    settings = sp.SpectrumSettings(kind, band, max_hz)
    spec = sp.compute_spectrum(run.snapshots[snap, :, channel], run.fs, settings)
    geometry, geometry_text = _geometry(args, run.layout)
    rpm = run.condition.rpm if args.rpm is None else args.rpm
    markers = sp.fault_markers(rpm / 60.0, geometry, args.harmonics, max_hz)
    what = f"{kind} spectrum" + (f", band {band[0]:g}-{band[1]:g} Hz" if band else "")
    print(f"{run.name} snapshot {snap} of 0-{run.n_snapshots - 1}, channel {names[channel]}: "
          f"{what}, Hann window, {spec.resolution:.4g} Hz bins, 0-{max_hz:g} Hz, "
          f"values in {spec.unit}")
    if rpm > 0:
        freqs = ", ".join(f"{k} {v:.2f}" for k, v in sp.fault_frequencies(rpm / 60.0,
                                                                          geometry).items())
        print(f"shaft {rpm:g} rpm; geometry {geometry_text}\ncharacteristic frequencies (Hz): "
              f"{freqs}")
    else:
        print("shaft speed unknown (the run has rpm 0): give --rpm to mark fault frequencies")
    rows = sp.describe_peaks(spec, markers, args.peaks)
    header = ("peak Hz", "value", "nearest", "at Hz", "offset Hz", "offset bins",
              "within 1 bin")
    cells = [(f"{r['frequency_hz']:.2f}", f"{r['value']:.4g}", r["nearest"] or "-",
              "-" if r["nearest_hz"] is None else f"{r['nearest_hz']:.2f}",
              "-" if r["offset_hz"] is None else f"{r['offset_hz']:+.2f}",
              "-" if r["offset_bins"] is None else f"{r['offset_bins']:+.2f}",
              r["within_bin"] or "-") for r in rows]
    print("\n".join(text_table(header, cells, right=(0, 1, 3, 4, 5))))
    if args.out:
        _write_spectrum(args.out, spec, markers,
                        f"{run.name}: {what} of snapshot {snap}, {names[channel]}")
        print(f"wrote {args.out}")
    return 0


def _write_spectrum(out: Path, spec: Spectrum, markers: list[FaultMarker], title: str) -> None:
    """``out`` by its suffix: a CSV of the spectrum, or its figure (PNG, SVG, PDF, HTML)."""
    from rul_core import plots, report
    from rul_core.atomic import write_bytes, write_text

    suffix = out.suffix.lower().lstrip(".")
    if suffix == "csv":
        lines = [f"frequency_hz,value ({spec.unit})"]
        lines += [f"{f:.6g},{v:.8g}" for f, v in zip(spec.freqs, spec.values, strict=True)]
        write_text(out, "\n".join(lines) + "\n")
        return
    fig = plots.spectrum_figure(spec.freqs, spec.values, markers, title, spec.unit)
    if suffix == "html":
        write_text(out, fig.to_html(include_plotlyjs=True, full_html=True))
    else:
        write_bytes(out, report.export_figure(fig, suffix)[0])
