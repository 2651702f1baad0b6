"""All-or-nothing writes: the target is replaced whole or left as it was, with the umask's permissions."""

import os
import stat

import pytest

from sotlat.atomic import atomic_dir, atomic_path
from sotlat.errors import InputError


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_and_folder_get_the_umask_permissions(tmp_path, umask_022):
    # tempfile's own files are 0600 and folders 0700: a table or report others cannot read
    with atomic_path(tmp_path / "t.parquet") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "report") as tmp:
        (tmp / "index.html").write_text("x")
    assert _mode(tmp_path / "t.parquet") == 0o644
    assert _mode(tmp_path / "report") == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "t.parquet"]


def test_a_failed_write_leaves_the_old_file_and_folder_and_no_temporary(tmp_path):
    (tmp_path / "t.csv").write_text("old")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "t.csv") as tmp:
        tmp.write_text("new, half")
        raise RuntimeError
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "report") as tmp:
        (tmp / "index.html").write_text("new, half")
        raise RuntimeError
    assert (tmp_path / "t.csv").read_text() == "old"
    assert (tmp_path / "report" / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "t.csv"]


def test_a_finished_folder_replaces_the_old_one_whole(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "stale.png").write_text("old")
    with atomic_dir(tmp_path / "report") as tmp:
        (tmp / "index.html").write_text("new")
    assert [p.name for p in (tmp_path / "report").iterdir()] == ["index.html"]


def test_a_place_that_cannot_be_written_is_a_user_error_naming_the_target(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.parquet").mkdir()
    for target, make in ((tmp_path / "afile" / "t.parquet", atomic_path), (tmp_path / "afile" / "report", atomic_dir),
                         (tmp_path / "adir.parquet", atomic_path)):
        with pytest.raises(InputError, match=f"{target}: cannot write it here"):
            with make(target) as tmp:
                tmp.touch() if make is atomic_path else None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.parquet", "afile"]  # no temporary left behind
