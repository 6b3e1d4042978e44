"""One entry point: :func:`load_dataset` reads a folder or archive in any supported layout.

Every regular file under the given path is accounted for in ``dataset.report``: *used*, or
*skipped* with a reason. Reasons that start with ``"not read: "`` (:data:`NOT_READ`) are files
left out by choice (temperature files not asked for, files outside run folders, stray files in a
run folder); all other reasons are faults in the data (a :class:`DataFormatError` message naming
the file, line/column, what was expected and what was found). Operating-system metadata
(``__MACOSX/``, ``.DS_Store``, ``._*`` …, see :func:`is_clutter`) is counted in one warning
instead of one line per file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from rul_core.config import UPLOAD_RECORD, ArchiveLimits
from rul_core.data.archives import archive_stem, extracted, is_archive
from rul_core.data.cache import CachedRun, RunCache
from rul_core.data.femto import FemtoReader
from rul_core.data.generic import GenericReader
from rul_core.data.natural import is_utf8_name, natural_key, natural_sorted, printable_name
from rul_core.data.reader import RunReader
from rul_core.data.run import Dataset, LoadReport, Run, SkippedFile
from rul_core.data.snapshots import NOT_READ
from rul_core.data.xjtu import XjtuReader
from rul_core.errors import LayoutError
from rul_core.progress import CancelToken, ProgressFn, check, emit

READERS: dict[str, RunReader] = {
    "xjtu": XjtuReader(),
    "femto": FemtoReader(),
    "generic": GenericReader(),
}
LAYOUTS = tuple(READERS)
_PRIORITY = ("generic", "femto", "xjtu")  # a folder claimed by several layouts goes to the first
STAGE = "loading runs"
# operating-system metadata that archivers and file browsers add beside the data
CLUTTER_FOLDERS = frozenset({"__MACOSX"})
CLUTTER_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def is_clutter(name: str) -> bool:
    """True for a file name that is system metadata, not data: .DS_Store, Thumbs.db,
    desktop.ini and macOS ``._name`` resource forks."""
    return name in CLUTTER_FILES or name.startswith("._")


def is_problem(skipped: SkippedFile) -> bool:
    """True for files skipped because of a fault (not left out by choice)."""
    return not skipped.reason.startswith(NOT_READ)


def left_out_lines(report: LoadReport, limit: int = 5) -> list[str]:
    """What a load left out, for a command that carries on with the rest: the files skipped
    with a problem (the first ``limit``, then a count) and the report's warnings; [] if none."""
    problems = [s for s in report.skipped if is_problem(s)]
    lines = []
    if problems:
        lines.append(f"{len(problems)} file(s) skipped with a problem, {len(report.used)} used:")
        lines += [f"  - {s.reason}" for s in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"  ... and {len(problems) - limit} more (python -m rul_core inspect "
                         "lists every one)")
    return lines + list(report.warnings)


def _tried() -> str:
    return "; ".join(READERS[name].description for name in LAYOUTS)


def _scan(root: Path, report: LoadReport) -> dict[Path, list[str]]:
    """Regular files per folder (symlinks are reported and not followed)."""
    found: dict[Path, list[str]] = {}
    clutter: list[str] = []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        for folder_name in [d for d in dirnames if d in CLUTTER_FOLDERS]:
            dirnames.remove(folder_name)
            clutter.append(os.path.join(dirpath, folder_name) + os.sep)
        for bad in [d for d in dirnames if not is_utf8_name(d)]:
            dirnames.remove(bad)
            shown = printable_name(os.path.join(dirpath, bad))
            report.skip(shown, f"{NOT_READ}{shown}: expected a UTF-8 folder name, found bytes "
                               "that are not UTF-8 (rename it)")
        dirnames.sort(key=natural_key)
        folder = Path(dirpath)
        names: list[str] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if not is_utf8_name(entry.name):
                    if not entry.is_dir(follow_symlinks=False):
                        shown = printable_name(entry.path)
                        report.skip(shown, f"{NOT_READ}{shown}: expected a UTF-8 file name, "
                                           "found bytes that are not UTF-8 (rename it)")
                elif entry.is_symlink():
                    report.skip(
                        entry.path,
                        f"{NOT_READ}{entry.path}: expected a regular file, found a symbolic "
                        f"link (not followed)",
                    )
                elif entry.is_file(follow_symlinks=False):
                    if is_clutter(entry.name):
                        clutter.append(entry.path)
                    elif entry.name != UPLOAD_RECORD:  # the app's own record, not reported
                        names.append(entry.name)
                elif not entry.is_dir(follow_symlinks=False):
                    report.skip(
                        entry.path,
                        f"{NOT_READ}{entry.path}: expected a regular file, found a special file",
                    )
        if names:
            found[folder] = natural_sorted(names)
    if clutter:
        report.warnings.append(
            f"{len(clutter)} operating-system metadata entries ignored, not data (e.g. "
            f"{printable_name(clutter[0])}; {', '.join(sorted(CLUTTER_FOLDERS))}, "
            f"{', '.join(sorted(CLUTTER_FILES))}, ._* files)")
    return found


def detect_layout(path: str | Path) -> str:
    """The layout :func:`load_dataset` would choose for a folder (LayoutError if none)."""
    root = Path(path)
    claimed = _classify(_scan(root, LoadReport()), None)
    return _choose(root, claimed, None)


def _classify(folders: dict[Path, list[str]], layout: str | None) -> dict[Path, str]:
    names = (layout,) if layout else _PRIORITY
    claimed: dict[Path, str] = {}
    for folder, files in folders.items():
        for name in names:
            if READERS[name].claims(files):
                claimed[folder] = name
                break
    return claimed


def _choose(display: Path | str, claimed: dict[Path, str], layout: str | None) -> str:
    if layout is not None:
        if not claimed:
            raise LayoutError(
                f"{display}: no {layout} run folder found; tried {READERS[layout].description}"
            )
        return layout
    if not claimed:
        raise LayoutError(f"{display}: no known dataset layout found; tried {_tried()}")
    counts = Counter(claimed.values())
    return max(_PRIORITY, key=lambda name: (counts.get(name, 0), -_PRIORITY.index(name)))


def load_dataset(
    path: str | Path,
    layout: str | None = None,
    *,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    limits: ArchiveLimits | None = None,
    read_temperature: bool = False,
) -> Dataset:
    """Read every run under ``path`` (a folder, one run folder, or a .zip/.tar.gz archive).

    ``layout``: None (detect), "xjtu", "femto" or "generic". ``cache_dir``: where parsed runs
    are cached (None: no cache). ``read_temperature``: FEMTO temperature files into
    ``run.extra_channels["temperature"]``. Raises LayoutError when no run folder of the
    layout(s) tried is found, ArchiveError for an unsafe or corrupt archive.
    """
    if layout is not None and layout not in READERS:
        raise LayoutError(
            f"{path}: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}"
        )
    source = Path(path)
    options = {"read_temperature": bool(read_temperature)}
    if source.is_dir():
        return _load_folder(source, source, layout, options, cache_dir, progress, cancel)
    if is_archive(source):
        damaged: list[tuple[str, str]] = []
        with extracted(source, limits, damaged) as tmp:
            dataset = _load_folder(
                tmp, source, layout, options, cache_dir, progress, cancel, archive_stem(source)
            )
            _rebase(dataset, str(tmp), f"{source}!")
        for member, why in damaged:  # the rest of the archive loaded without them
            dataset.report.skip(f"{source}!/{member}", f"{source}!/{member}: {why}")
        return dataset
    if source.exists():
        raise LayoutError(
            f"{source}: expected a folder or a .zip/.tar.gz/.tgz/.tar archive, found a file; "
            f"tried {_tried()}"
        )
    raise LayoutError(f"{source}: expected a folder or an archive, found nothing at this path")


def _rebase(dataset: Dataset, old: str, new: str) -> None:
    """Rewrite temporary extraction paths as ``archive!member`` in runs and report."""

    def fix(text: str) -> str:
        return text.replace(old, new.rstrip("!") + "!")

    report = dataset.report
    report.used = [fix(p) for p in report.used]
    report.skipped = [SkippedFile(fix(s.path), fix(s.reason)) for s in report.skipped]
    report.warnings = [fix(w) for w in report.warnings]
    for run in dataset.runs:
        run.source_paths = [fix(p) for p in run.source_paths]


def _load_folder(
    root: Path,
    display: Path,
    layout: str | None,
    options: dict[str, Any],
    cache_dir: Path | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    name: str | None = None,
) -> Dataset:
    report = LoadReport()
    folders = _scan(root, report)
    claimed = _classify(folders, layout)
    chosen = _choose(display, claimed, layout)
    reader = READERS[chosen]
    run_dirs = [f for f in natural_sorted(claimed, key=lambda p: str(p.relative_to(root))) if
                claimed[f] == chosen]
    shape = reader.description.removeprefix(f"{chosen} (").removesuffix(")")
    for folder, files in folders.items():
        if folder in claimed and claimed[folder] == chosen:
            continue
        if folder in claimed:
            why = (f"the folder looks like a {claimed[folder]} run but the dataset was read as "
                   f"{chosen} (pass layout={claimed[folder]!r} to read it; a {chosen} run "
                   f"folder is {shape})")
        else:
            why = (f"expected files inside {chosen} run folders ({shape}), found a file "
                   f"outside any")
        for file_name in files:
            report.skip(folder / file_name, f"{NOT_READ}{folder / file_name}: {why}")
    run_options = {k: options[k] for k in reader.option_names}
    selections = {d: reader.select(d, folders[d], run_options) for d in run_dirs}
    total = sum(len(s.data_files) for s in selections.values())
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        emit(progress, STAGE, done, total)

    emit(progress, STAGE, 0, total)
    cache = RunCache(cache_dir) if cache_dir is not None else None
    runs: list[Run] = []
    for run_dir in run_dirs:
        check(cancel)
        selection = selections[run_dir]
        for file_name, reason in selection.left_out.items():
            report.skip(run_dir / file_name, reason if reason.startswith(NOT_READ) else
                        f"{NOT_READ}{reason}")
        entry = _read_run(reader, run_dir, selection, run_options, cache, tick, cancel)
        report.merge(entry.report)
        if entry.run is not None:
            runs.append(entry.run)
        else:
            why = f"{run_dir}: no usable snapshot; run left out"
            if selection.left_out:  # say why when they are all that the folder holds
                reason = next(iter(selection.left_out.values())).removeprefix(NOT_READ)
                why += f" ({len(selection.left_out)} file(s) there not read, e.g. {reason})"
            report.warnings.append(why)
    emit(progress, STAGE, total, total)
    counts = Counter(r.name for r in runs)
    for run_name, count in counts.items():
        if count > 1:
            report.warnings.append(
                f"{count} runs are named {run_name!r} (in different folders); tell them apart "
                f"by run.dataset"
            )
    return Dataset(
        name=name or display.name, runs=runs, layout=chosen, report=report, root=str(display)
    )


def _read_run(
    reader: RunReader,
    run_dir: Path,
    selection: Any,
    options: dict[str, Any],
    cache: RunCache | None,
    tick: Any,
    cancel: CancelToken | None,
) -> CachedRun:
    """One run folder, from the cache when its files are unchanged."""
    names = selection.data_files
    if cache is None:
        sub = LoadReport()
        return CachedRun(reader.read(run_dir, selection, sub, options, tick, cancel), sub)
    args = (reader.layout, reader.version, options, reader.context(run_dir), run_dir, names)
    stat_key = cache.stat_key(*args)
    content_key = cache.read_index(stat_key) if stat_key else None
    entry = cache.load(content_key, run_dir) if content_key else None
    if entry is None:
        content_key = cache.content_key(*args, cancel=cancel)
        entry = cache.load(content_key, run_dir) if content_key else None
        if entry is not None and stat_key and content_key:
            cache.write_index(stat_key, content_key)
    if entry is not None:
        tick(len(names))
        return entry
    sub = LoadReport()
    entry = CachedRun(reader.read(run_dir, selection, sub, options, tick, cancel), sub)
    if content_key:
        cache.save(content_key, run_dir, entry)
        if stat_key:
            cache.write_index(stat_key, content_key)
    return entry
