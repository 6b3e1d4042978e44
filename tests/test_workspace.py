"""SQLite workspace catalog: CRUD, schema version, two processes writing at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from rul_core.errors import RulError
from rul_core.workspace import CATALOG_NAME, SCHEMA_VERSION, Workspace


def test_crud_round_trip(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert ws.db_path == (tmp_path / "ws" / CATALOG_NAME).resolve()
    assert ws.schema_version == SCHEMA_VERSION

    ws.add_dataset("femto", "/data/femto", layout="femto", content_hash="abc", runs=["B1", "B2"])
    ws.add_dataset("xjtu", "/data/xjtu", layout="xjtu")
    ws.add_dataset("femto", "/data/femto2", layout="femto", runs=["B1"])  # update by name
    names = [d["name"] for d in ws.list_datasets()]
    assert names == ["femto", "xjtu"]
    femto = ws.get_dataset("femto")
    assert femto is not None
    assert femto["path"] == "/data/femto2"
    assert femto["runs"] == ["B1"]
    assert ws.remove_dataset("xjtu") is True
    assert ws.remove_dataset("xjtu") is False
    assert ws.get_dataset("xjtu") is None

    ws.add_feature_cache(tmp_path / "cache1", dataset="femto", config_hash="h", config={"a": 1})
    assert ws.get_feature_cache(tmp_path / "cache1")["config"] == {"a": 1}
    assert len(ws.list_feature_caches("femto")) == 1
    assert ws.list_feature_caches("other") == []
    assert ws.remove_feature_cache(tmp_path / "cache1")

    b = tmp_path / "bundle"
    ws.add_bundle(b, model="carle", ablation="CARL", preset="quick", metrics={"rmse": 0.1})
    row = ws.get_bundle(b)
    assert row is not None
    assert (row["model"], row["ablation"], row["metrics"]) == ("carle", "CARL", {"rmse": 0.1})
    eid = ws.add_evaluation(b, dataset="femto", runs=["B1"], metrics={"rmse": 0.2})
    assert ws.get_evaluation(eid)["metrics"] == {"rmse": 0.2}
    assert len(ws.list_evaluations(b)) == 1
    assert ws.list_bundles("mm") == []
    assert ws.remove_bundle(b) is True
    assert ws.list_evaluations() == []  # removed with its bundle

    # the catalog is WAL
    con = sqlite3.connect(ws.db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_cross_validations_round_trip(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    cid = ws.add_cross_validation(tmp_path / "cv", model="rc_lstm", preset="quick",
                                  dataset="femto", runs=["B1", "B2"], config={"seed": 3},
                                  metrics={"rmse": 0.3, "grid_proxy": 0.2})
    ws.add_cross_validation(tmp_path / "cv2", model="carle", ablation="carl")
    rows = ws.list_cross_validations()
    assert [r["id"] for r in rows] == [cid, cid + 1]
    first = rows[0]
    assert (first["path"], first["runs"], first["config"], first["metrics"]) == (
        str((tmp_path / "cv").resolve()), ["B1", "B2"], {"seed": 3},
        {"rmse": 0.3, "grid_proxy": 0.2})
    assert [r["model"] for r in ws.list_cross_validations("carle")] == ["carle"]


def test_a_version_1_catalog_is_upgraded_in_place(tmp_path: Path) -> None:
    """A catalog written before cross-validations existed keeps its rows and gains the table."""
    from rul_core.workspace import _SCHEMA_V1

    con = sqlite3.connect(tmp_path / CATALOG_NAME)
    con.executescript(_SCHEMA_V1)
    con.execute("INSERT INTO bundles (path, model, created) VALUES ('/b', 'carle', 'then')")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    ws = Workspace(tmp_path)
    assert ws.schema_version == SCHEMA_VERSION == 3
    assert [b["path"] for b in ws.list_bundles()] == ["/b"]
    ws.add_cross_validation(tmp_path / "cv", model="carle")
    assert len(ws.list_cross_validations()) == 1


def test_newer_schema_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    con = sqlite3.connect(ws.db_path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(RulError, match="newer"):
        Workspace(tmp_path)


def test_failed_write_rolls_back(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with pytest.raises(RuntimeError), ws._write() as con:
        con.execute("INSERT INTO datasets (name, path, added) VALUES ('half', '/x', 'now')")
        raise RuntimeError("boom")
    assert ws.get_dataset("half") is None


def _writer(path: str, tag: str, n: int) -> None:
    ws = Workspace(path)
    for i in range(n):
        ws.add_bundle(f"{path}/{tag}_{i}", model=tag, metrics={"i": i})
        ws.add_evaluation(f"{path}/{tag}_{i}", dataset=tag)


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    n = 40
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), t, n)) for t in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ws = Workspace(tmp_path)
    assert len(ws.list_bundles("a")) == n
    assert len(ws.list_bundles("b")) == n
    assert len(ws.list_evaluations()) == 2 * n


def test_a_damaged_catalog_is_named(tmp_path: Path) -> None:
    (tmp_path / CATALOG_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(RulError, match=f"{CATALOG_NAME}: expected the workspace's SQLite "
                                       "catalog.*move it aside"):
        Workspace(tmp_path)


def test_a_row_with_damaged_json_is_listed_with_its_problem(tmp_path: Path) -> None:
    """One catalog row whose JSON text was damaged made every listing raise: the other rows
    are listed, and that one too, with empty values and a problem naming row and column."""
    ws = Workspace(tmp_path)
    ws.add_bundle(tmp_path / "a", "carle", metrics={"rmse": 0.1})
    bid = ws.add_bundle(tmp_path / "b", "carle", metrics={"rmse": 0.2})
    ws.add_bundle(tmp_path / "c", "carle", metrics={"rmse": 0.3})
    ws.add_dataset("femto", "/d", runs=["B1"])
    ws.add_cross_validation(tmp_path / "cv", "carle", metrics={"rmse": 0.4})
    with sqlite3.connect(tmp_path / CATALOG_NAME) as con:
        con.execute("UPDATE bundles SET metrics_json='{broken' WHERE id=?", (bid,))
        con.execute("UPDATE datasets SET runs_json='{}'")  # JSON, but not a list
        con.execute("UPDATE cross_validations SET config_json='', metrics_json='[1'")
    rows = ws.list_bundles()
    assert [r["metrics"] for r in rows] == [{"rmse": 0.1}, {}, {"rmse": 0.3}]
    assert "problem" not in rows[0] and "problem" not in rows[2]
    assert rows[1]["problem"].startswith(
        f"bundles row id {bid} ({tmp_path / 'b'}): column metrics_json: expected JSON, found "
        "'{broken'")
    (dataset,) = ws.list_datasets()
    assert dataset["runs"] == [] and dataset["problem"] == (
        "datasets row id 1 (femto): column runs_json: expected a list, found {}")
    (cv,) = ws.list_cross_validations()
    assert cv["config"] == cv["metrics"] == {}
    assert "column config_json: expected JSON, found ''" in cv["problem"]
    assert "; column metrics_json: expected JSON, found '[1'" in cv["problem"]


def test_a_read_only_workspace_is_not_called_damaged(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A healthy catalog on a read-only folder (or media) must not be reported as a damaged
    file to move aside: the message says the catalog cannot be written. (Here an older
    catalog opened read-only, which must be upgraded, i.e. written.)"""
    from rul_core.workspace import _SCHEMA_V1

    con = sqlite3.connect(tmp_path / CATALOG_NAME)
    con.executescript(_SCHEMA_V1)
    con.execute("PRAGMA user_version = 1")
    con.close()

    def read_only(self: Workspace) -> sqlite3.Connection:
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, isolation_level=None)
        con.row_factory = sqlite3.Row
        return con

    monkeypatch.setattr(Workspace, "_connect", read_only)
    with pytest.raises(RulError) as e:
        Workspace(tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / CATALOG_NAME}: ") and "readonly" in msg
    assert "expected a writable workspace" in msg and "move it aside" not in msg


def test_a_full_disk_is_reported_with_the_catalog_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A write that fails (disk full) names the catalog and leaves the earlier rows intact."""
    ws = Workspace(tmp_path)
    ws.add_dataset("kept", "/d")
    real = Workspace._connect

    def full(self: Workspace) -> sqlite3.Connection:
        con = real(self)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages}")  # SQLite answers SQLITE_FULL beyond it
        return con

    monkeypatch.setattr(Workspace, "_connect", full)
    with pytest.raises(RulError, match=f"{CATALOG_NAME}: could not write the catalog "
                                       r"\(database or disk is full\)"):
        ws.add_dataset("big", "/d", runs=[f"run{i}" for i in range(20_000)])
    monkeypatch.setattr(Workspace, "_connect", real)
    assert [d["name"] for d in ws.list_datasets()] == ["kept"]


def test_opening_and_listing_wait_for_no_writer(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """WAL lets readers go on while another process holds the write lock: opening the
    workspace and listing it must not queue behind that writer (up to the busy timeout,
    then 'database is locked')."""
    import time

    import rul_core.workspace as wsmod

    Workspace(tmp_path).add_bundle(tmp_path / "b", "carle")
    monkeypatch.setattr(wsmod, "BUSY_TIMEOUT_MS", 1000)
    writer = sqlite3.connect(tmp_path / CATALOG_NAME, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        start = time.monotonic()
        rows = Workspace(tmp_path).list_bundles()
        assert time.monotonic() - start < 0.5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [r["model"] for r in rows] == ["carle"]


def _fill(ws: Workspace, outside: Path) -> None:
    """A bundle, an evaluation with its table, a feature cache and a cross-validation inside
    ``ws``'s folder, and a bundle and a dataset outside it."""
    for folder in ("bundles/a", "crossval/cv", "cache/c"):
        (ws.path / folder).mkdir(parents=True)
    outside.mkdir()
    ws.add_bundle(ws.path / "bundles" / "a", "carle")
    ws.add_bundle(outside, "rc_lstm")
    ws.add_evaluation(ws.path / "bundles" / "a", table_path=ws.path / "eval.csv")
    ws.add_feature_cache(ws.path / "cache" / "c")
    ws.add_dataset("femto", outside)
    ws.add_cross_validation(ws.path / "crossval" / "cv", "carle")


def _check_moved(ws: Workspace, outside: Path) -> None:
    """Every path of :func:`_fill` found in ``ws``'s (new) folder, the outside ones as they
    were."""
    bundles = ws.list_bundles()
    assert [b["path"] for b in bundles] == [str(ws.path / "bundles" / "a"), str(outside)]
    assert all(Path(b["path"]).is_dir() for b in bundles)
    (evaluation,) = ws.list_evaluations(ws.path / "bundles" / "a")
    assert evaluation["table_path"] == str(ws.path / "eval.csv")
    assert ws.get_feature_cache(ws.path / "cache" / "c") is not None
    assert ws.get_dataset("femto")["path"] == str(outside)
    assert Path(ws.list_cross_validations()[0]["path"]) == ws.path / "crossval" / "cv"
    assert ws.remove_bundle(ws.path / "bundles" / "a") and ws.list_evaluations() == []


def test_a_moved_workspace_finds_its_bundles(tmp_path: Path) -> None:
    """The catalog stored absolute paths: a workspace folder moved (or copied) elsewhere
    listed every bundle as missing. Paths inside it are stored relative to it."""
    ws = Workspace(tmp_path / "ws")
    _fill(ws, tmp_path / "elsewhere")
    with sqlite3.connect(ws.db_path) as con:
        stored = {r[0] for r in con.execute("SELECT path FROM bundles")}
    assert stored == {"bundles/a", str(tmp_path / "elsewhere")}
    (tmp_path / "ws").rename(tmp_path / "moved")
    _check_moved(Workspace(tmp_path / "moved"), tmp_path / "elsewhere")


def test_a_version_2_catalog_gets_relative_paths(tmp_path: Path) -> None:
    """A catalog written with absolute paths is upgraded: the paths inside the workspace
    become relative, so it too survives a move."""
    import rul_core.workspace as wsmod

    ws = Workspace(tmp_path / "ws")
    _fill(ws, tmp_path / "elsewhere")
    with sqlite3.connect(ws.db_path) as con:  # as version 2 stored them
        for table, columns in wsmod._PATH_COLUMNS.items():
            for column in columns:
                con.execute(f"UPDATE {table} SET {column}=? || '/' || {column} "
                            f"WHERE {column} NOT LIKE '/%' AND {column} != ''", (str(ws.path),))
        con.execute("PRAGMA user_version = 2")
    assert Workspace(tmp_path / "ws").schema_version == SCHEMA_VERSION
    (tmp_path / "ws").rename(tmp_path / "moved")
    _check_moved(Workspace(tmp_path / "moved"), tmp_path / "elsewhere")


def test_a_read_only_workspace_is_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """A workspace that cannot be written is opened read-only (SQLite's URI ``mode=ro``, else
    ``immutable=1``): listing works, a write says the catalog cannot be written. (The folder
    is made to look read-only here; the next test makes it so.)"""
    import rul_core.workspace as wsmod

    Workspace(tmp_path).add_bundle(tmp_path / "b", "carle")
    monkeypatch.setattr(wsmod, "_writable", lambda folder, catalog: False)
    real_connect = sqlite3.connect

    def no_shm(target: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        """As SQLite answers in a folder where it cannot make the ``-shm`` file."""
        if kwargs.get("uri") and "immutable=1" not in str(target):
            exc = sqlite3.OperationalError("attempt to write a readonly database")
            exc.sqlite_errorcode = sqlite3.SQLITE_READONLY_DIRECTORY  # type: ignore[attr-defined]
            raise exc
        return real_connect(target, *args, **kwargs)  # type: ignore[arg-type]

    for mode in wsmod.READ_ONLY_MODES:
        ws = Workspace(tmp_path)
        assert ws.read_only and ws.read_only_mode == mode
        assert [b["path"] for b in ws.list_bundles()] == [str(tmp_path / "b")]
        with pytest.raises(RulError, match=f"{CATALOG_NAME}: could not write the catalog "
                                           r"\(the workspace folder or catalog is read-only\)"):
            ws.add_bundle(tmp_path / "c", "carle")
        monkeypatch.setattr(sqlite3, "connect", no_shm)  # mode=ro fails: immutable next
    monkeypatch.undo()
    assert [b["model"] for b in Workspace(tmp_path).list_bundles()] == ["carle"]


def _runs_as(python: str, user: int | None) -> bool:
    """Whether ``python`` starts as ``user`` (None: this one)."""
    import subprocess

    try:
        return subprocess.run([python, "-c", "import sqlite3"], user=user, capture_output=True,
                              check=False, timeout=60).returncode == 0
    except OSError:
        return False


def _unprivileged_python(tmp_path: Path) -> tuple[str, int | None, Path]:
    """A Python, a user without write access to what root made read-only (nobody when this
    is root, else this user) and a new folder that user can enter (pytest's are private);
    skips the test when there is none."""
    import os
    import sys
    import tempfile

    root = os.geteuid() == 0
    pythons = [sys.executable, "/usr/bin/python3"] if root else [sys.executable]
    user = 65534 if root else None
    runs = [p for p in pythons if _runs_as(p, user)]
    if not runs:
        pytest.skip("no Python this test can run as an unprivileged user")
    folder = Path(tempfile.mkdtemp(dir=tmp_path if not root else None))
    os.chmod(folder, 0o755)
    return runs[0], user, folder


def _list_as(python: str, user: int | None, workspace: Path) -> tuple[str, str, str]:
    """Open ``workspace`` as ``user`` in a child process: the read-only mode, the bundles'
    models listed and what a write says."""
    import os
    import subprocess

    import rul_core

    env = {"PYTHONPATH": str(Path(rul_core.__file__).parents[1]), "PATH": os.defpath}
    proc = subprocess.run([python, "-c", _LIST_READ_ONLY, str(workspace)], user=user, env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    opened, message = proc.stdout.splitlines()
    mode, listing = opened.split(" ", 1)
    return mode, listing, message


_LIST_READ_ONLY = """
import sys
from rul_core.errors import RulError
from rul_core.workspace import Workspace
ws = Workspace(sys.argv[1])
print(ws.read_only_mode, [b["model"] for b in ws.list_bundles()])
try:
    ws.add_bundle(sys.argv[1] + "/new", "carle")
except RulError as exc:
    print(exc)
"""


def test_a_workspace_on_read_only_media_is_listed(tmp_path: Path) -> None:
    """The catalog is WAL, whose readers need a ``-shm`` file beside it: in a folder that
    cannot be written opening it failed, so nothing could be listed. Run as a user without
    write access (root writes anywhere: then as nobody, in a child process)."""
    import os
    import stat
    python, user, folder = _unprivileged_python(tmp_path)
    try:
        ws = Workspace(folder / "ws")
        ws.add_bundle(ws.path / "b", "carle")
        assert sorted(p.name for p in ws.path.iterdir()) == [CATALOG_NAME]  # no -shm, -wal
        os.chmod(ws.db_path, 0o444)
        os.chmod(ws.path, 0o555)
        mode, listing, message = _list_as(python, user, ws.path)
        assert mode == "mode=ro&immutable=1" and listing == "['carle']"  # no -shm: immutable
        assert message.startswith(f"{ws.db_path}: could not write the catalog (the workspace "
                                  "folder or catalog is read-only)")
    finally:
        os.chmod(folder / "ws", stat.S_IRWXU)
        import shutil

        shutil.rmtree(folder)


def test_a_read_only_copy_left_by_a_crash_lists_what_its_wal_holds(tmp_path: Path) -> None:
    """A crash leaves recent records in the ``-wal`` file beside the catalog; on read-only
    media the catalog opened with ``immutable=1``, which ignores that file, so those records
    were missing from the listing. Run as a user without write access, as above."""
    import os
    import shutil
    import stat
    python, user, folder = _unprivileged_python(tmp_path)
    try:
        ws = Workspace(tmp_path / "live")
        ws.add_bundle(ws.path / "b", "carle")
        holder = sqlite3.connect(ws.db_path)  # another process still has the catalog open
        holder.execute("SELECT 1 FROM bundles").fetchall()
        ws.add_bundle(ws.path / "c", "rc_lstm")  # so this record stays in the -wal
        crashed = folder / "ws"
        crashed.mkdir()
        for name in (CATALOG_NAME, CATALOG_NAME + "-wal"):  # as the crash left them
            shutil.copyfile(ws.path / name, crashed / name)
        holder.close()
        assert (crashed / (CATALOG_NAME + "-wal")).stat().st_size > 0
        os.chmod(crashed / CATALOG_NAME, 0o444)
        os.chmod(crashed / (CATALOG_NAME + "-wal"), 0o444)
        os.chmod(crashed, 0o555)
        mode, listing, message = _list_as(python, user, crashed)
        assert (mode, listing) == ("copy", "['carle', 'rc_lstm']")
        assert "could not write the catalog" in message
        assert sorted(p.name for p in crashed.iterdir()) == [CATALOG_NAME, CATALOG_NAME + "-wal"]
    finally:
        if (folder / "ws").exists():
            os.chmod(folder / "ws", stat.S_IRWXU)
        shutil.rmtree(folder)


DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "demo" / "model"


def test_rescan_catalogs_the_bundles_a_crash_left_out(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that died between saving a bundle and cataloguing it left a bundle no list
    showed. A rescan catalogs the sound ones (checked, never loaded) and says why it skipped
    the others; hidden temporaries and folders without a card are not bundles."""
    import json
    import shutil

    import rul_core.bundle as bd

    ws = Workspace(tmp_path / "ws")
    bundles = ws.bundles_path
    assert bundles == ws.path / "bundles"
    for name in ("known", "good", "nested/deep", "tampered", "pickled", ".good.abcdefgh.tmp"):
        shutil.copytree(DEMO_BUNDLE, bundles / name)
    (bundles / "notes").mkdir()
    ws.add_bundle(bundles / "known", "carle")
    with open(bundles / "tampered" / "model.keras", "r+b") as fh:
        fh.truncate(500)
    (bundles / "pickled" / "evil.pkl").write_bytes(b"cos\nsystem\n")
    monkeypatch.setattr(bd, "load_bundle", lambda path: pytest.fail("a rescan loaded a model"))

    assert ws.uncatalogued_bundles() == [bundles / n for n in ("good", "nested/deep", "pickled",
                                                              "tampered")]
    found = ws.rescan_bundles()
    assert found.folder == bundles and found.added == [bundles / "good", bundles / "nested/deep"]
    assert found.skipped == [
        (bundles / "pickled", "damaged: evil.pkl: unexpected file in a model bundle (only "
         "card.json, card.md, *.keras and forest.skops are allowed; pickles and other "
         "executable formats are refused)"),
        (bundles / "tampered", "damaged: model.keras: SHA-256 differs from the card (file "
         "modified or card tampered with)")]
    assert found.lines()[0] == f"added {bundles / 'good'}"
    assert found.lines()[2].startswith(f"skipped {bundles / 'pickled'}: damaged: ")
    assert found.summary() == (f"2 bundle(s) added to the catalog, 2 skipped, of those under "
                               f"{bundles} it did not list")
    card = json.loads((DEMO_BUNDLE / "card.json").read_text())
    rows = {Path(r["path"]).name: r for r in ws.list_bundles()}
    assert sorted(rows) == ["deep", "good", "known"]
    assert (rows["good"]["model"], rows["good"]["ablation"], rows["good"]["preset"],
            rows["good"]["metrics"]) == (card["model"], card["ablation"], card["preset"],
                                         card["metrics"])
    again = ws.rescan_bundles()
    assert again.added == [] and [p for p, _ in again.skipped] == [bundles / "pickled",
                                                                   bundles / "tampered"]
    assert ws.rescan_bundles(tmp_path / "nowhere").lines() == []
