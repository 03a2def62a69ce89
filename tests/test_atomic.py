"""Crash-safe writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.atomic import atomic_path, is_temp, remove_temps, write_text
from imgclf.errors import UserError


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "scores.csv"
    write_text(target, "old\n")
    with pytest.raises(ZeroDivisionError), atomic_path(target) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018 - the writer dies mid-write
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["scores.csv"]


def test_an_os_error_becomes_one_user_error_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(UserError, match=r"cannot write .*out\.csv: .*unchanged"), atomic_path(target) as tmp:
        raise OSError(28, "No space left on device", str(tmp))
    assert not target.exists()


def test_unchanged_content_is_not_rewritten_and_temps_are_cleaned(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    write_text(target, "same")
    stamp = target.stat().st_ino, target.stat().st_mtime_ns
    write_text(target, "same")
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == stamp
    leftover = tmp_path / ".tmp-a.txt.x1"
    leftover.write_text("killed mid-write")
    assert is_temp(leftover) and not is_temp(target)
    assert remove_temps(tmp_path) == 1 and not leftover.exists() and target.read_text() == "same"
