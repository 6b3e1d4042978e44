"""A physically plausible run-to-failure generator, and writers for every supported layout.

Each snapshot of a synthetic bearing is the sum of

- shaft harmonics at 1, 2, 3 x f_r (f_r = rpm / 60), growing slightly with damage;
- an outer-race defect: impulses at the ball-pass frequency BPFO = (n/2) f_r (1 - d/D cos a),
  from the bearing geometry (default LDK UER204, the XJTU-SY bearing: 8 balls of 7.92 mm on a
  34.55 mm pitch circle, 0 deg contact angle; BPFO = 3.08 f_r;
  :data:`rul_core.signal.spectrum.LDK_UER204`), with 1 % timing jitter
  (slip), each exciting a structural resonance (a damped sinusoid of a few kHz, one per
  channel);
- Gaussian measurement noise.

Damage follows a degradation curve: near zero while healthy, then exponential growth after a
knee (default at 60 % of life) up to failure, so RMS and kurtosis rise late in life as in the
real run-to-failure tests. Everything is seeded and deterministic; defaults are small.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from rul_core.atomic import write_text
from rul_core.data.run import Condition, Run
from rul_core.data.xjtu import DEFAULT_CONDITIONS, HEADER, parse_condition
from rul_core.signal.spectrum import LDK_UER204, BearingGeometry

FEMTO_CONDITIONS = {1: (1800.0, 4000.0), 2: (1650.0, 4200.0), 3: (1500.0, 5000.0)}
FEMTO_START_S = 9 * 3600 + 10 * 60 + 39 + 0.11879  # 09:10:39.118790, like Bearing3_1


def degradation_curve(n_snapshots: int, knee: float = 0.6, rate: float = 5.0) -> np.ndarray:
    """Damage in [0, 1] per snapshot: a slow healthy drift to 0.02, then exponential to 1."""
    life = np.linspace(0.0, 1.0, n_snapshots)
    healthy = 0.02 * life
    after = np.clip((life - knee) / max(1.0 - knee, 1e-9), 0.0, 1.0)
    growth = np.expm1(rate * after) / np.expm1(rate)
    return np.clip(healthy + growth, 0.0, 1.0)


def synth_run(
    name: str = "Bearing1_1",
    *,
    n_snapshots: int = 40,
    samples: int = 2560,
    fs: float = 25600.0,
    rpm: float = 1800.0,
    load_n: float = 4000.0,
    channels: int = 2,
    seed: int = 0,
    geometry: BearingGeometry | None = None,
    knee: float = 0.6,
    resonance_hz: tuple[float, ...] = (3000.0, 4200.0, 5100.0),
    damping_ratio: float = 0.05,
    impulse_g: float = 3.0,
    noise_g: float = 0.1,
    interval_s: float = 10.0,
    condition_name: str = "",
) -> Run:
    """One synthetic bearing from healthy to failure as a Run (float32, seeded)."""
    if n_snapshots < 1 or samples < 2 or channels < 1 or fs <= 0 or rpm <= 0:
        raise ValueError("synth_run: need n_snapshots >= 1, samples >= 2, channels >= 1, "
                         "fs > 0 and rpm > 0")
    rng = np.random.default_rng(seed)
    geometry = geometry or LDK_UER204
    shaft_hz = rpm / 60.0
    bpfo = geometry.bpfo(shaft_hz)
    damage = degradation_curve(n_snapshots, knee)
    t = np.arange(samples) / fs
    out = np.empty((n_snapshots, samples, channels), dtype=np.float32)
    # Impulse trains: one per snapshot (outer race defect: same for every channel).
    n_imp = int(np.ceil(samples / fs * bpfo)) + 2
    period = 1.0 / bpfo
    starts = rng.uniform(0.0, period, size=(n_snapshots, 1))
    jitter = rng.normal(0.0, 0.01 * period, size=(n_snapshots, n_imp))
    times = starts + np.arange(n_imp) * period + jitter
    idx = np.rint(times * fs).astype(np.int64)
    heights = impulse_g * (0.01 + damage)[:, None] * rng.uniform(0.8, 1.2, (n_snapshots, n_imp))
    trains = np.zeros((n_snapshots, samples))
    rows = np.repeat(np.arange(n_snapshots), n_imp)
    valid = (idx >= 0) & (idx < samples)
    np.add.at(trains, (rows[valid.ravel()], idx.ravel()[valid.ravel()]), heights.ravel()[
        valid.ravel()])
    for c in range(channels):
        f_n = resonance_hz[c % len(resonance_hz)] * (1.0 + 0.1 * (c // len(resonance_hz)))
        decay = damping_ratio * 2.0 * np.pi * f_n
        tau = np.arange(int(np.ceil(6.0 / decay * fs))) / fs
        kernel = np.exp(-decay * tau) * np.sin(2.0 * np.pi * f_n * np.sqrt(1 - damping_ratio**2)
                                               * tau)
        ringing = fftconvolve(trains, kernel[None, :], axes=1)[:, :samples]
        phases = rng.uniform(0.0, 2.0 * np.pi, size=(n_snapshots, 3))
        shaft = sum(
            amp * np.sin(2.0 * np.pi * (m + 1) * shaft_hz * t[None, :] + phases[:, m : m + 1])
            for m, amp in enumerate((0.08, 0.04, 0.02))
        )
        shaft = shaft * (1.0 + 0.5 * damage)[:, None]
        noise = rng.normal(0.0, 1.0, (n_snapshots, samples)) * (noise_g * (1.0 + damage))[:, None]
        gain = 1.0 if c == 0 else 0.8
        out[:, :, c] = (gain * ringing + shaft + noise).astype(np.float32)
    names = ["horizontal", "vertical"] if channels == 2 else [f"ch{c + 1}" for c in range(channels)]
    return Run(
        name=name,
        snapshots=out,
        fs=float(fs),
        channel_names=names,
        condition=Condition(float(rpm), float(load_n), condition_name),
        timestamps=np.arange(n_snapshots) * float(interval_s),
        dataset="synthetic",
        layout="synthetic",
    )


def _write_text(path: Path, text: str) -> None:
    """Atomic write: temporary file in the same folder, then os.replace."""
    write_text(path, text)


def _format_rows(columns: list[np.ndarray], formats: list[str], sep: str) -> str:
    fmt = sep.join(formats)
    return "".join(fmt % row + "\n" for row in zip(*columns, strict=True))


def _femto_clock(start_s: float, samples: int, fs: float) -> list[np.ndarray]:
    absolute = start_s + np.arange(samples) / fs
    whole = np.floor(absolute)
    micro = np.round((absolute - whole) * 1e6, 4)
    whole = whole.astype(np.int64) % 86400
    return [whole // 3600, (whole // 60) % 60, whole % 60, micro]


def write_dataset(
    out_dir: str | Path,
    layout: str = "xjtu",
    *,
    n_bearings: int = 2,
    n_snapshots: int = 20,
    samples: int = 2560,
    seed: int = 0,
    conditions: list[str] | list[int] | None = None,
    temperature: bool = False,
    femto_sep: str = ",",
    generic_format: str = "csv",
) -> Path:
    """Write synthetic bearings in the real on-disk format of ``layout``; returns ``out_dir``.

    ``conditions``: XJTU folder names (default ``["35Hz12kN"]``), FEMTO condition numbers
    (default ``[1]``) or, for generic, XJTU-style names giving rpm/load. ``n_bearings`` per
    condition. FEMTO: ``Learning_set/BearingC_Y/acc_NNNNN.csv`` (six columns, no header,
    microseconds like ``1.1879e+05``, values with 3 decimals) and, with ``temperature``,
    ``temp_NNNNN.csv`` (``;``, zero-padded, 600 rows at 10 Hz each). XJTU:
    ``<condition>/BearingX_Y/<k>.csv`` with the header row. Generic: ``<BearingX_Y>/run.json``
    plus ``<k>.csv`` (header of channel names), ``.npy`` or ``.parquet`` files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layout == "femto":
        for c_no in conditions or [1]:
            rpm, load = FEMTO_CONDITIONS[int(c_no)]
            for j in range(1, n_bearings + 1):
                name = f"Bearing{int(c_no)}_{j}"
                run = synth_run(name, n_snapshots=n_snapshots, samples=samples, rpm=rpm,
                                load_n=load, seed=seed * 1000 + int(c_no) * 100 + j)
                write_femto_run(out / "Learning_set" / name, run, femto_sep, temperature)
    elif layout in ("xjtu", "generic"):
        names = [str(c) for c in (conditions or ["35Hz12kN"])]
        by_name = {v: k for k, v in DEFAULT_CONDITIONS.items()}
        for ci, cname in enumerate(names):
            cond = parse_condition(cname)
            if cond is None:
                raise ValueError(f"condition {cname!r}: expected a name like '35Hz12kN'")
            x = by_name.get(cname, ci + 1)
            for j in range(1, n_bearings + 1):
                name = f"Bearing{x}_{j}"
                run = synth_run(name, n_snapshots=n_snapshots, samples=samples, rpm=cond.rpm,
                                load_n=cond.load_n, seed=seed * 1000 + x * 100 + j,
                                interval_s=60.0, condition_name=cname)
                if layout == "xjtu":
                    _write_xjtu(out / cname / name, run)
                else:
                    _write_generic(out / name, run, generic_format)
    else:
        raise ValueError(f"layout {layout!r}: expected 'xjtu', 'femto' or 'generic'")
    return out


def _write_xjtu(folder: Path, run: Run) -> None:
    for k in range(run.n_snapshots):
        snap = run.snapshots[k].astype(np.float64)
        body = _format_rows([snap[:, 0], snap[:, 1]], ["%.6g", "%.6g"], ",")
        _write_text(folder / f"{k + 1}.csv", ",".join(HEADER) + "\n" + body)


def write_femto_run(folder: Path, run: Run, sep: str = ",", temperature: bool = False) -> None:
    """``run`` as one FEMTO bearing folder: ``acc_NNNNN.csv`` per snapshot (clock columns one
    snapshot every 10 s from 09:10:39, values in g with 3 decimals) and, with ``temperature``,
    ``temp_NNNNN.csv`` files; every file written atomically."""
    for k in range(run.n_snapshots):
        snap = run.snapshots[k].astype(np.float64)
        clock = _femto_clock(FEMTO_START_S + 10.0 * k, run.n_samples, run.fs)
        body = _format_rows(
            [*clock, snap[:, 0], snap[:, 1]], ["%d", "%d", "%d", "%.5g", "%.3f", "%.3f"], sep
        )
        _write_text(folder / f"acc_{k + 1:05d}.csv", body)
    if temperature:
        span = 10.0 * run.n_snapshots
        n_files = max(1, int(np.ceil(span / 60.0)))
        for m in range(n_files):
            tenths = np.arange(600)
            absolute = np.floor(FEMTO_START_S) + 60.0 * m + tenths / 10.0
            whole = np.floor(absolute).astype(np.int64)
            life = np.clip((absolute - FEMTO_START_S) / span, 0.0, 1.0)
            celsius = 40.0 + 30.0 * life**3
            rows = [f"{w // 3600:02d};{(w // 60) % 60:02d};{w % 60:02d};{t % 10};{c:.3f}"
                    for w, t, c in zip(whole, tenths, celsius, strict=True)]
            _write_text(folder / f"temp_{m + 1:05d}.csv", "\n".join(rows) + "\n")


def _write_generic(folder: Path, run: Run, fmt: str) -> None:
    meta = {"fs": run.fs, "rpm": run.condition.rpm, "load_n": run.condition.load_n,
            "channels": run.channel_names, "name": run.name, "interval_s": 60.0}
    _write_text(folder / "run.json", json.dumps(meta, indent=2) + "\n")
    for k in range(run.n_snapshots):
        snap = run.snapshots[k]
        target = folder / f"{k + 1}.{fmt}"
        if fmt == "csv":
            cols = [snap[:, c].astype(np.float64) for c in range(run.n_channels)]
            body = _format_rows(cols, ["%.6g"] * run.n_channels, ",")
            _write_text(target, ",".join(run.channel_names) + "\n" + body)
        elif fmt == "npy":
            np.save(target, snap)
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({n: snap[:, c] for c, n in enumerate(run.channel_names)})
            pq.write_table(table, target)
        else:
            raise ValueError(f"generic_format {fmt!r}: expected 'csv', 'npy' or 'parquet'")
