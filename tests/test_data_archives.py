"""Archives: datasets load from .zip/.tar.gz; every attack is refused with ArchiveError."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rul_core.config import ArchiveLimits
from rul_core.data import is_problem, load_dataset
from rul_core.data.archives import extract_archive
from rul_core.errors import ArchiveError


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def test_zip_and_targz_datasets_load(tmp_path: Path, synth_femto: Path) -> None:
    direct = load_dataset(synth_femto)
    zpath = tmp_path / "femto.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in synth_femto.rglob("*"):
            zf.write(f, f.relative_to(synth_femto.parent))
    tpath = tmp_path / "femto.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        tf.add(synth_femto, arcname="femto")
    for archive in (zpath, tpath):
        ds = load_dataset(archive)
        assert ds.name == "femto" and ds.run_names == direct.run_names
        assert (ds.runs[0].snapshots == direct.runs[0].snapshots).all()
        assert ds.runs[0].source_paths[0].startswith(f"{archive}!")
        assert len(ds.report.used) + len(ds.report.skipped) == len(direct.report.used) + len(
            direct.report.skipped
        )


@pytest.mark.parametrize(
    ("name", "match"),
    [("../evil.csv", r"'\.\./evil\.csv'.*path traversal"), ("/etc/evil.csv", "absolute"),
     ("a/../../evil.csv", "path traversal"), ("C:/evil.csv", "absolute")],
)
def test_zip_slip_refused(tmp_path: Path, name: str, match: str) -> None:
    archive = _zip(tmp_path / "a.zip", {"ok.csv": b"1,2\n", name: b"x"})
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError, match=match):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.csv").exists()


def test_zip_symlink_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.csv")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match=r"'link\.csv'.*symbolic link"):
        load_dataset(archive)


@pytest.mark.parametrize(
    ("kind", "match"),
    [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
     (tarfile.CHRTYPE, "device"), (tarfile.FIFOTYPE, "special file")],
)
def test_tar_links_and_devices_refused(tmp_path: Path, kind: bytes, match: str) -> None:
    info = tarfile.TarInfo("data/bad")
    info.type = kind
    info.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "t.tar.gz", [info], {})
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError, match=f"'data/bad'.*{match}"):
        extract_archive(archive, tmp_path / "out")


def test_tar_traversal_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "t.tgz", [tarfile.TarInfo("../x.csv")], {"../x.csv": b"1\n"})
    with pytest.raises(ArchiveError, match="path traversal"):
        load_dataset(archive)


def test_limits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    many = _zip(tmp_path / "many.zip", {f"{i}.csv": b"1\n" for i in range(6)})
    with pytest.raises(ArchiveError, match="at most 5 members"):
        extract_archive(many, out, ArchiveLimits(max_files=5))
    big = _zip(tmp_path / "big.zip", {"a.csv": b"1" * 5000})
    with pytest.raises(ArchiveError, match=r"'a\.csv'.*at most 1000 bytes per file"):
        extract_archive(big, tmp_path / "out2", ArchiveLimits(max_file_bytes=1000))
    total = _zip(tmp_path / "total.zip", {"a.csv": b"1" * 600, "b.csv": b"2" * 600})
    with pytest.raises(ArchiveError, match="1000 bytes unpacked in total"):
        extract_archive(total, tmp_path / "out3", ArchiveLimits(max_total_bytes=1000))
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.csv": b"0" * (8 * 1024**2)})
    with pytest.raises(ArchiveError, match=r"'zeros\.csv'.*compression ratio"):
        extract_archive(bomb, tmp_path / "out4", ArchiveLimits(max_ratio=50))


def test_corrupt_archives(tmp_path: Path) -> None:
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ArchiveError, match="corrupt"):
        load_dataset(bad_zip)
    noise = np.random.default_rng(0).integers(0, 10, 20000).astype(np.uint8) + ord("0")
    good = _tar(tmp_path / "good.tar.gz", [tarfile.TarInfo("a.csv")], {"a.csv": noise.tobytes()})
    truncated = tmp_path / "trunc.tar.gz"
    for cut in (200, len(good.read_bytes()) // 2):
        truncated.write_bytes(good.read_bytes()[:cut])
        with pytest.raises(ArchiveError, match=r"corrupt|expected 20000 bytes"):
            load_dataset(truncated)


def _femto_zip(path: Path, root: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*.csv")):
            zf.write(f, f.relative_to(root.parent))
    return path


def test_a_corrupt_zip_member_is_skipped_and_the_rest_loads(tmp_path: Path,
                                                            synth_femto: Path) -> None:
    """One member failing its CRC rejected the whole upload; now that file is reported, with
    the member and the damage, and the others load. A bundle upload (no ``damaged`` list)
    is still refused whole."""
    archive = _femto_zip(tmp_path / "femto.zip", synth_femto)
    with zipfile.ZipFile(archive) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("acc_00002.csv"))
    raw = bytearray(archive.read_bytes())
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + k:info.header_offset + k + 2],
                                          "little") for k in (26, 28))
    start = info.header_offset + 30 + name_len + extra_len
    for k in range(start + 5, start + info.compress_size - 5, 7):  # damage the member's data
        raw[k] ^= 0x5A
    archive.write_bytes(bytes(raw))
    ds = load_dataset(archive)
    direct = load_dataset(synth_femto)
    assert ds.run_names == direct.run_names
    bad = [s for s in ds.report.skipped if info.filename in s.path]
    assert len(bad) == 1 and is_problem(bad[0])
    assert bad[0].reason.startswith(f"{archive}!/{info.filename}: expected readable data, "
                                    "found a corrupt member")
    run = ds.run(info.filename.split("/")[2])
    assert run.n_snapshots == direct.run(run.name).n_snapshots - 1
    with pytest.raises(ArchiveError, match=r"acc_00002\.csv'.*corrupt member"):
        extract_archive(archive, tmp_path / "out")


def test_a_tarball_cut_short_loads_what_came_before(tmp_path: Path, synth_femto: Path) -> None:
    """A download cut short lost every bearing: the members before the cut now load and the
    cut is reported, naming the member where it happened."""
    tpath = tmp_path / "femto.tar"
    with tarfile.open(tpath, "w") as tf:  # uncompressed: the cut falls at a known member
        for f in sorted(synth_femto.rglob("*.csv")):
            tf.add(f, arcname=str(f.relative_to(synth_femto.parent)))
    with tarfile.open(tpath) as tf:
        members = tf.getmembers()
    cut_at = members[len(members) // 2]
    tpath.write_bytes(tpath.read_bytes()[:cut_at.offset_data + cut_at.size // 2])
    ds = load_dataset(tpath)
    (cut,) = [s for s in ds.report.skipped if "cut short" in s.reason]
    before = {f"{tpath}!/{m.name}" for m in members[:len(members) // 2]}
    assert set(ds.report.used) | {s.path for s in ds.report.skipped if s is not cut} == before
    assert cut.path == f"{tpath}!/{cut_at.name}" and is_problem(cut)
    assert f"the {len(members) // 2} member(s) before were extracted" in cut.reason
    with pytest.raises(ArchiveError, match="corrupt"):
        extract_archive(tpath, tmp_path / "out")


def test_a_tarball_of_dot_loads(tmp_path: Path, synth_femto: Path) -> None:
    """``tar -C dir -czf x.tgz .`` starts with a ``./`` folder entry: the archive's root."""
    tpath = tmp_path / "dot.tgz"
    with tarfile.open(tpath, "w:gz") as tf:
        tf.add(synth_femto, arcname=".")
    with tarfile.open(tpath) as tf:
        assert tf.getnames()[0] == "."
    ds = load_dataset(tpath)
    assert ds.run_names == load_dataset(synth_femto).run_names
    with pytest.raises(ArchiveError, match="expected a file name, found none"):
        extract_archive(_tar(tmp_path / "f.tgz", [tarfile.TarInfo("./")], {"./": b"x"}),
                        tmp_path / "out")


def test_a_member_name_that_is_not_utf8_is_named_readably(tmp_path: Path) -> None:
    tpath = tmp_path / "odd.tar"
    with tarfile.open(tpath, "w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        info = tarfile.TarInfo("run/acc_\udcff.csv")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"1,2"))
    (tmp_path / "out").mkdir()
    shown = r"'run/acc_\\\\xff\.csv': expected a UTF-8 file name"
    with pytest.raises(ArchiveError, match=shown) as e:
        extract_archive(tpath, tmp_path / "out")
    str(e.value).encode("utf-8")  # displayable
    assert list((tmp_path / "out").iterdir()) == []
