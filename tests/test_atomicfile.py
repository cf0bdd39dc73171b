"""atomic_write: one fsync and file-mode policy for every file pytest-apimon replaces."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_apimon import atomicfile
from pytest_apimon.atomicfile import atomic_write, is_temporary
from pytest_apimon.statedir import file_mode


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
@pytest.mark.parametrize(("publish", "expected"), [(False, 0o600), (True, 0o644)])
def test_mode_follows_the_publish_policy(tmp_path: Path, publish: bool, expected: int) -> None:
    target = atomic_write(tmp_path / "a" / "report.md", "# 报告\n", mode=file_mode(publish))
    assert target.read_text(encoding="utf-8") == "# 报告\n" and mode(target) == expected
    assert os.listdir(target.parent) == ["report.md"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_private_by_default_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "cache.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    atomic_write(target, b"\x00new")
    assert target.read_bytes() == b"\x00new" and mode(target) == 0o600  # replaced, so the old mode is gone


def test_temporary_file_is_private_while_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        for name in os.listdir(tmp_path):
            if is_temporary(name):
                seen.append((name, mode(tmp_path / name)))
        real_fsync(fd)

    monkeypatch.setattr(atomicfile.os, "fsync", spy)
    atomic_write(tmp_path / "tokens.json", "{}", mode=0o644)
    name, temp_mode = seen[0]
    assert name.startswith(".tokens.json.") and name.endswith(".tmp")
    if os.name != "nt":
        assert temp_mode == 0o600  # a secret is never readable by others, not even while being written


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.prom"
    atomic_write(target, "old\n")

    def boom(src: object, dst: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(atomicfile.os, "replace", boom)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(target, "new\n")
    assert target.read_text(encoding="utf-8") == "old\n" and os.listdir(tmp_path) == ["out.prom"]


def test_temporary_names() -> None:
    assert is_temporary(".apimon.prom.123-abcd.tmp") and is_temporary(".0001-x.json.tmp-1-abcd")
    assert not is_temporary("apimon.prom") and not is_temporary(".gitignore")


def test_pieces_are_written_in_order_and_a_failing_producer_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    atomic_write(target, (piece for piece in ["{", '"a": "账户"', "}"]))
    assert target.read_text(encoding="utf-8") == '{"a": "账户"}'

    def broken():
        yield "{"
        raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken())
    assert target.read_text(encoding="utf-8") == '{"a": "账户"}' and os.listdir(tmp_path) == ["results.json"]
