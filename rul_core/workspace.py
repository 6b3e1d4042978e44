"""The workspace catalog: a SQLite file listing datasets, feature caches, bundles, evaluations
and cross-validations.

The file is ``<workspace>/catalog.sqlite`` (default workspace: ``rul_core.config.workspace_dir()``).
It is safe for several processes at once: WAL journal, a busy timeout, one short
``BEGIN IMMEDIATE`` transaction per write, and a connection per call. The schema version is
kept in ``PRAGMA user_version``; an older catalog is upgraded in place (version 2 added
``cross_validations``, version 3 made paths relative), and a catalog written by a newer program
is refused.

A workspace whose folder or catalog cannot be written (read-only media, a read-only copy) is
opened read-only: SQLite's ``mode=ro``, or ``immutable=1`` where WAL would need a ``-shm`` file
it cannot create; listing works and every write says the catalog cannot be written. Where a
crash left a ``-wal`` file that ``immutable=1`` would ignore (its records not yet copied into the
catalog), a private copy of both is read instead, so nothing recorded is missing.

Paths inside the workspace folder are stored relative to it (so the folder can be moved or
copied whole), others absolute; rows come back with absolute paths.

Rows come back as plain dicts; ``*_json`` columns are decoded into ``metrics``/``config``/...
A row whose JSON text is damaged is still listed, with empty values there and a ``problem``
naming the row and the column.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from rul_core.config import workspace_dir
from rul_core.errors import RulError

SCHEMA_VERSION = 3
CATALOG_NAME = "catalog.sqlite"
#: The workspace's folder of model bundles (``<workspace>/bundles``; the app saves there).
BUNDLES_DIR = "bundles"
BUSY_TIMEOUT_MS = 30_000
#: How a catalog that cannot be written is opened, tried in turn: read-only, then immutable
#: (no ``-shm`` file needed; a ``-wal`` left uncheckpointed by a crash is not read).
READ_ONLY_MODES = ("mode=ro", "mode=ro&immutable=1")
#: ``Workspace.read_only_mode`` when a read-only catalog is read from a private copy of it and
#: of the ``-wal`` file a crash left beside it (``immutable=1`` would ignore that file).
READ_ONLY_COPY = "copy"
#: The oldest schema a read-only catalog may have (it cannot be upgraded): version 3 only
#: changed how paths are stored, and absolute ones are read as they are.
OLDEST_READABLE_SCHEMA = 2

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    layout TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    runs_json TEXT NOT NULL DEFAULT '[]',
    added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_caches (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL DEFAULT '',
    config_hash TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bundles (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    ablation TEXT NOT NULL DEFAULT 'full',
    preset TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL DEFAULT '',
    metrics_json TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    bundle_path TEXT NOT NULL,
    dataset TEXT NOT NULL DEFAULT '',
    runs_json TEXT NOT NULL DEFAULT '[]',
    metrics_json TEXT NOT NULL DEFAULT '{}',
    table_path TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_bundle ON evaluations(bundle_path);
"""

_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS cross_validations (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    ablation TEXT NOT NULL DEFAULT 'full',
    preset TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL DEFAULT '',
    runs_json TEXT NOT NULL DEFAULT '[]',
    config_json TEXT NOT NULL DEFAULT '{}',
    metrics_json TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
)
"""

_JSON_COLUMNS = {
    "runs_json": "runs",
    "config_json": "config",
    "metrics_json": "metrics",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_UNWRITABLE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
               sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}


def _unwritable(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because the catalog's file or folder cannot be written
    (read-only, disk full, I/O error, cannot open), not because the file is damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNWRITABLE


#: The columns of each table that hold a path (stored by :func:`_stored_path`).
_PATH_COLUMNS = {
    "datasets": ("path",),
    "feature_caches": ("path",),
    "bundles": ("path",),
    "evaluations": ("bundle_path", "table_path"),
    "cross_validations": ("path",),
}


def _stored_path(path: str | Path, root: Path) -> str:
    """How the catalog of the workspace ``root`` (resolved) stores ``path``: relative to
    ``root`` when inside it (POSIX separators), else absolute; "" stays "" (no file)."""
    if str(path) == "":
        return ""
    resolved = Path(path).resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) \
        else str(resolved)


def _absolute_path(stored: str, root: Path) -> str:
    """The absolute path of a stored path (:func:`_stored_path`) in the workspace ``root``."""
    return stored if stored == "" or PurePath(stored).is_absolute() else str(root / stored)


def _paths_relative(con: sqlite3.Connection, root: Path) -> None:
    """Version 3: the absolute paths inside the workspace folder become relative to it (a
    path kept as it was elsewhere, e.g. a second row of the same bundle, stays absolute)."""
    for table, columns in _PATH_COLUMNS.items():
        for column in columns:
            rows = con.execute(f"SELECT id, {column} FROM {table}").fetchall()
            for row_id, value in rows:
                if PurePath(value).is_absolute() and PurePath(value).is_relative_to(root):
                    con.execute(f"UPDATE OR IGNORE {table} SET {column}=? WHERE id=?",
                                (_stored_path(value, root), row_id))


#: What takes a catalog from version i to i + 1 (so version 0, a new file, runs them all):
#: SQL, or a function of the connection and the workspace folder.
_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection, Path], None], ...] = (
    _SCHEMA_V1, _SCHEMA_V2, _paths_relative)
assert len(_MIGRATIONS) == SCHEMA_VERSION

#: What each ``*_json`` column must decode to (its value in a row whose text is damaged).
_JSON_EMPTY: dict[str, dict[str, Any] | list[Any]] = {"runs": [], "config": {}, "metrics": {}}


def _describe_row(table: str, row: dict[str, Any]) -> str:
    """``<table> row id N`` and the row's name or path, for messages about that row."""
    label = next((str(row[k]) for k in ("name", "path", "bundle_path") if k in row), "")
    return f"{table} row id {row['id']}" + (f" ({label})" if label else "")


def _json_column(value: Any, key: str) -> tuple[Any, str]:
    """The decoded ``*_json`` column ``key`` and "" or, when its text is not JSON of the
    expected kind, the kind's empty value and what is wrong."""
    empty = _JSON_EMPTY[_JSON_COLUMNS[key]]
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, TypeError) as exc:
        return empty, f"column {key}: expected JSON, found {str(value)[:40]!r} ({exc})"
    if not isinstance(decoded, type(empty)):
        kind = "an object" if isinstance(empty, dict) else "a list"
        return empty, f"column {key}: expected {kind}, found {json.dumps(decoded)[:40]}"
    return decoded, ""


def _row(table: str, row: sqlite3.Row, root: Path) -> dict[str, Any]:
    """A row of ``table`` in the catalog of the workspace ``root`` as a dict: paths absolute,
    ``*_json`` columns decoded. A column that does not decode is given its empty value and the
    row a ``problem``: which row and column, and what was found there (one damaged row must
    not hide the others)."""
    out: dict[str, Any] = {}
    problems = []
    for key in row.keys():  # noqa: SIM118 (sqlite3.Row has no __iter__ over keys)
        if key in _JSON_COLUMNS:
            out[_JSON_COLUMNS[key]], problem = _json_column(row[key], key)
            if problem:
                problems.append(problem)
        elif key in _PATH_COLUMNS[table]:
            out[key] = _absolute_path(row[key], root)
        else:
            out[key] = row[key]
    if problems:
        out["problem"] = f"{_describe_row(table, out)}: " + "; ".join(problems)
    return out


def _wal_path(catalog: Path) -> Path:
    """The write-ahead log SQLite keeps beside ``catalog`` in WAL mode."""
    return catalog.with_name(catalog.name + "-wal")


def _writable(folder: Path, catalog: Path) -> bool:
    """Whether SQLite can write ``catalog`` in ``folder`` (its journal files are made there);
    False on read-only media, for root too."""
    return os.access(folder, os.W_OK) and (not catalog.exists() or os.access(catalog, os.W_OK))


def _card_folders(root: Path) -> list[Path]:
    """The folders under ``root`` holding a bundle card (``card.json``), sorted; hidden
    folders (a writer's temporaries) and linked folders are not entered."""
    from rul_core.bundle import CARD_NAME

    found = []
    for folder, subfolders, files in os.walk(root):
        if CARD_NAME in files:
            found.append(Path(folder))
            subfolders.clear()
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
    return sorted(found)


@dataclass
class Rescan:
    """What :meth:`Workspace.rescan_bundles` did in ``folder``: the bundles it catalogued, and
    those it skipped with why."""

    folder: Path
    added: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per bundle found: ``added <path>`` or ``skipped <path>: <why>``."""
        return ([f"added {path}" for path in self.added]
                + [f"skipped {path}: {why}" for path, why in self.skipped])

    def summary(self) -> str:
        """How many were added and skipped, and where."""
        return (f"{len(self.added)} bundle(s) added to the catalog, {len(self.skipped)} "
                f"skipped, of those under {self.folder} it did not list")


def workspace_path(path: str | Path | None = None) -> Path:
    """The workspace folder ``path`` resolved (default: :func:`rul_core.config.workspace_dir`);
    its catalog is ``<folder>/catalog.sqlite``."""
    return Path(path).resolve() if path is not None else workspace_dir()


class Workspace:
    """A workspace folder and its SQLite catalog (created on first use; opened read-only
    when it cannot be written, :attr:`read_only_mode` then being the SQLite URI options)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = workspace_path(path)
        self.db_path = self.path / CATALOG_NAME
        self.read_only_mode = ""
        self._copy: Path | None = None  # a read-only catalog's private copy (READ_ONLY_COPY)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            if self.db_path.is_file() and not _writable(self.path, self.db_path):
                self._open_read_only()
            else:
                self._init_schema()
        except sqlite3.OperationalError as exc:  # the file may be fine: it cannot be written
            if not _unwritable(exc):
                raise
            raise self._write_error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise RulError(f"{self.db_path}: expected the workspace's SQLite catalog, found a "
                           f"file SQLite cannot use ({exc}); move it aside and a new catalog "
                           "is created") from exc

    # -- plumbing ---------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """Whether the catalog was opened read-only (its folder or file cannot be written)."""
        return bool(self.read_only_mode)

    def _connect(self) -> sqlite3.Connection:
        target: str | Path = self.db_path
        uri = self.read_only and self._copy is None
        if self._copy is not None:
            target = self._copy
        elif self.read_only:
            target = f"{self.db_path.as_uri()}?{self.read_only_mode}"
        con = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                              uri=uri)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locked) transaction, committed or rolled back."""
        if self.read_only:
            raise self._write_error("the workspace folder or catalog is read-only")
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:  # SQLite may have rolled back already (disk full)
                    con.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if not _unwritable(exc):
                raise
            raise self._write_error(exc) from exc
        finally:
            con.close()

    def _write_error(self, why: object) -> RulError:
        """The user's message for a catalog that cannot be written (read-only, disk full)."""
        return RulError(f"{self.db_path}: could not write the catalog ({why}); expected a "
                        "writable workspace folder with free space")

    def _open_read_only(self) -> None:
        """Open a catalog that cannot be written with the first of :data:`READ_ONLY_MODES`
        that reads it; refuse one too old to read as it is (it would need an upgrade)."""
        for mode in READ_ONLY_MODES:
            self.read_only_mode = mode
            try:
                version = self.schema_version
                break
            except sqlite3.OperationalError as exc:
                if not _unwritable(exc) or mode == READ_ONLY_MODES[-1]:
                    raise
        wal = _wal_path(self.db_path)
        if self.read_only_mode == READ_ONLY_MODES[-1] and wal.is_file() and wal.stat().st_size:
            self._read_from_copy()  # immutable=1 would not read the records in the -wal
            version = self.schema_version
        self._check_version(version)
        if version < OLDEST_READABLE_SCHEMA:
            raise self._write_error(f"read-only, and its schema version {version} must be "
                                    f"upgraded to {SCHEMA_VERSION}")

    def _read_from_copy(self) -> None:
        """Read the catalog from a private copy of it and of its ``-wal`` file (SQLite replays
        the file's records into the copy); the copy is deleted with this object."""
        import shutil
        import tempfile
        import weakref

        folder = Path(tempfile.mkdtemp(prefix="rul_catalog_"))
        weakref.finalize(self, shutil.rmtree, folder, True)
        copy = folder / CATALOG_NAME
        shutil.copyfile(self.db_path, copy)
        shutil.copyfile(_wal_path(self.db_path), _wal_path(copy))
        self._copy, self.read_only_mode = copy, READ_ONLY_COPY

    def _read(self, table: str, where: str = "", params: tuple[Any, ...] = ()
              ) -> list[dict[str, Any]]:
        """The rows of ``table`` (those matching the condition ``where`` when given), oldest
        first, as dicts; a row whose JSON is damaged comes back with a ``problem`` (see
        :func:`_row`)."""
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY id"
        con = self._connect()
        try:
            rows = con.execute(sql, params).fetchall()
        finally:
            con.close()
        return [_row(table, r, self.path) for r in rows]

    def _stored(self, path: str | Path) -> str:
        """``path`` as this catalog stores it (relative inside the workspace folder)."""
        return _stored_path(path, self.path)

    def _of_model(self, table: str, model: str | None) -> list[dict[str, Any]]:
        """Rows of ``table`` (a catalog table with a ``model`` column), of one model when
        given, oldest first."""
        if model is None:
            return self._read(table)
        return self._read(table, "model=?", (model,))

    def _init_schema(self) -> None:
        con = self._connect()
        try:
            # Switching to WAL needs an exclusive lock, and SQLite answers "database is locked"
            # at once (no busy handler) while another process is creating the catalog: retry.
            deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    con.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            version = con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            con.close()
        if version == SCHEMA_VERSION:  # nothing to write: no need to wait for a writer
            return
        with self._write() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            if version < SCHEMA_VERSION:
                for migration in _MIGRATIONS[version:]:
                    if callable(migration):
                        migration(con, self.path)
                        continue
                    for stmt in migration.split(";"):
                        if stmt.strip():
                            con.execute(stmt)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self, version: int) -> None:
        """Refuse a catalog written by a newer program."""
        if version > SCHEMA_VERSION:
            raise RulError(
                f"{self.db_path}: catalog schema version {version} is newer than this "
                f"program supports ({SCHEMA_VERSION}); upgrade rul_core"
            )

    @property
    def schema_version(self) -> int:
        """The catalog's ``user_version``."""
        con = self._connect()
        try:
            return int(con.execute("PRAGMA user_version").fetchone()[0])
        finally:
            con.close()

    # -- datasets ---------------------------------------------------------------------
    def add_dataset(
        self,
        name: str,
        path: str | Path,
        layout: str = "",
        content_hash: str = "",
        runs: list[str] | None = None,
    ) -> int:
        """Add or update (by name) a dataset; returns its id."""
        with self._write() as con:
            con.execute(
                "INSERT INTO datasets (name, path, layout, content_hash, runs_json, added) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET path=excluded.path, "
                "layout=excluded.layout, content_hash=excluded.content_hash, "
                "runs_json=excluded.runs_json, added=excluded.added",
                (name, self._stored(path), layout, content_hash, json.dumps(runs or []),
                 _now()),
            )
            return int(con.execute("SELECT id FROM datasets WHERE name=?", (name,)).fetchone()[0])

    def list_datasets(self) -> list[dict[str, Any]]:
        """Every dataset, oldest first."""
        return self._read("datasets")

    def get_dataset(self, name: str) -> dict[str, Any] | None:
        """The dataset called ``name`` or None."""
        rows = self._read("datasets", "name=?", (name,))
        return rows[0] if rows else None

    def remove_dataset(self, name: str) -> bool:
        """Delete a dataset's row (not its files); True if one was removed."""
        with self._write() as con:
            return con.execute("DELETE FROM datasets WHERE name=?", (name,)).rowcount > 0

    # -- feature caches ---------------------------------------------------------------
    def add_feature_cache(
        self,
        path: str | Path,
        dataset: str = "",
        config_hash: str = "",
        config: dict[str, Any] | None = None,
    ) -> int:
        """Add or update (by path) a feature cache; returns its id."""
        path = self._stored(path)
        with self._write() as con:
            con.execute(
                "INSERT INTO feature_caches (path, dataset, config_hash, config_json, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "dataset=excluded.dataset, config_hash=excluded.config_hash, "
                "config_json=excluded.config_json, created=excluded.created",
                (path, dataset, config_hash, json.dumps(config or {}), _now()),
            )
            row = con.execute("SELECT id FROM feature_caches WHERE path=?", (path,))
            return int(row.fetchone()[0])

    def list_feature_caches(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Every feature cache (of one dataset when given), oldest first."""
        if dataset is None:
            return self._read("feature_caches")
        return self._read("feature_caches", "dataset=?", (dataset,))

    def get_feature_cache(self, path: str | Path) -> dict[str, Any] | None:
        """The feature cache at ``path`` or None."""
        rows = self._read("feature_caches", "path=?", (self._stored(path),))
        return rows[0] if rows else None

    def remove_feature_cache(self, path: str | Path) -> bool:
        """Delete a feature cache's row; True if one was removed."""
        with self._write() as con:
            return con.execute("DELETE FROM feature_caches WHERE path=?",
                               (self._stored(path),)).rowcount > 0

    # -- bundles ----------------------------------------------------------------------
    def add_bundle(
        self,
        path: str | Path,
        model: str,
        ablation: str = "full",
        preset: str = "",
        metrics: dict[str, Any] | None = None,
        dataset: str = "",
    ) -> int:
        """Add or update (by path) a model bundle; returns its id."""
        path = self._stored(path)
        with self._write() as con:
            con.execute(
                "INSERT INTO bundles (path, model, ablation, preset, dataset, metrics_json, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "model=excluded.model, ablation=excluded.ablation, preset=excluded.preset, "
                "dataset=excluded.dataset, metrics_json=excluded.metrics_json, "
                "created=excluded.created",
                (path, model, ablation, preset, dataset, json.dumps(metrics or {}), _now()),
            )
            return int(con.execute("SELECT id FROM bundles WHERE path=?", (path,)).fetchone()[0])

    @property
    def bundles_path(self) -> Path:
        """The workspace's folder of bundles (:data:`BUNDLES_DIR`)."""
        return self.path / BUNDLES_DIR

    def uncatalogued_bundles(self, folder: str | Path | None = None) -> list[Path]:
        """The bundle folders (a ``card.json`` in them) under ``folder`` (default:
        :attr:`bundles_path`) that the catalog does not list; nothing is checked."""
        known = {row["path"] for row in self.list_bundles()}
        root = Path(folder) if folder is not None else self.bundles_path
        return [path for path in _card_folders(root) if str(path.resolve()) not in known]

    def rescan_bundles(self, folder: str | Path | None = None) -> Rescan:
        """Catalog the bundles under ``folder`` (default: :attr:`bundles_path`) that the
        catalog does not list, e.g. saved by a process that died before cataloguing them.
        Each is checked as listings check it (card fields, file names and checksums,
        :func:`rul_core.bundle.bundle_status`; nothing is loaded or run) and skipped, with
        why, when it does not check out."""
        from rul_core.bundle import bundle_status, read_card

        result = Rescan(Path(folder) if folder is not None else self.bundles_path)
        for path in self.uncatalogued_bundles(result.folder):
            status = bundle_status(path)
            if status:
                result.skipped.append((path, status))
                continue
            card = read_card(path)
            config = card["config"]
            self.add_bundle(path, model=str(card.get("model", config.get("name", ""))),
                            ablation=str(card.get("ablation", config.get("ablation", "full"))),
                            preset=str(card.get("preset", config.get("preset", ""))),
                            metrics=card.get("metrics", {}))
            result.added.append(path)
        return result

    def list_bundles(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every bundle (of one model when given), oldest first."""
        return self._of_model("bundles", model)

    def get_bundle(self, path: str | Path) -> dict[str, Any] | None:
        """The bundle at ``path`` or None."""
        rows = self._read("bundles", "path=?", (self._stored(path),))
        return rows[0] if rows else None

    def remove_bundle(self, path: str | Path) -> bool:
        """Delete a bundle's row and its evaluations' rows (not the files)."""
        p = self._stored(path)
        with self._write() as con:
            con.execute("DELETE FROM evaluations WHERE bundle_path=?", (p,))
            return con.execute("DELETE FROM bundles WHERE path=?", (p,)).rowcount > 0

    # -- evaluations ------------------------------------------------------------------
    def add_evaluation(
        self,
        bundle_path: str | Path,
        dataset: str = "",
        runs: list[str] | None = None,
        metrics: dict[str, Any] | None = None,
        table_path: str | Path = "",
    ) -> int:
        """Record one evaluation of a bundle; returns its id."""
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO evaluations (bundle_path, dataset, runs_json, metrics_json, "
                "table_path, created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._stored(bundle_path),
                    dataset,
                    json.dumps(runs or []),
                    json.dumps(metrics or {}),
                    self._stored(table_path),
                    _now(),
                ),
            )
            return int(cur.lastrowid or 0)

    def list_evaluations(self, bundle_path: str | Path | None = None) -> list[dict[str, Any]]:
        """Every evaluation (of one bundle when given), oldest first."""
        if bundle_path is None:
            return self._read("evaluations")
        return self._read("evaluations", "bundle_path=?", (self._stored(bundle_path),))

    def get_evaluation(self, evaluation_id: int) -> dict[str, Any] | None:
        """One evaluation by id or None."""
        rows = self._read("evaluations", "id=?", (int(evaluation_id),))
        return rows[0] if rows else None

    def remove_evaluation(self, evaluation_id: int) -> bool:
        """Delete one evaluation's row; True if one was removed."""
        with self._write() as con:
            return (
                con.execute("DELETE FROM evaluations WHERE id=?", (int(evaluation_id),)).rowcount
                > 0
            )

    # -- cross-validations ------------------------------------------------------------
    def add_cross_validation(
        self,
        path: str | Path,
        model: str,
        ablation: str = "full",
        preset: str = "",
        dataset: str = "",
        runs: list[str] | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> int:
        """Record one cross-validation (its result folder, settings and pooled out-of-fold
        metrics, :mod:`rul_core.crossval`); returns its id."""
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO cross_validations (path, model, ablation, preset, dataset, "
                "runs_json, config_json, metrics_json, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._stored(path), model, ablation, preset, dataset,
                 json.dumps(runs or []), json.dumps(config or {}), json.dumps(metrics or {}),
                 _now()),
            )
            return int(cur.lastrowid or 0)

    def list_cross_validations(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every cross-validation (of one model when given), oldest first."""
        return self._of_model("cross_validations", model)
