"""Files other processes read while a run writes them: never seen half-written, never a shared temp name."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from ganpipe.atomic import write_atomically


def _writer(path: str, fill: int, rounds: int) -> None:
    for _ in range(rounds):
        write_atomically(path, bytes([fill]) * 200_000)


def test_concurrent_writers_and_a_reader_never_see_a_partial_file(tmp_path):
    """Two processes rewrite one name 150 times each while this one reads it: every read is whole and
    uniform (one writer's bytes), and no temporary file is left behind."""
    target = tmp_path / "samples.png"
    write_atomically(str(target), b"\0" * 200_000)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(target), fill, 150)) for fill in (1, 2)]
    for writer in writers:
        writer.start()
    reads = 0
    while any(writer.is_alive() for writer in writers):
        data = target.read_bytes()
        assert len(data) == 200_000 and len(set(data)) == 1, (len(data), set(data))
        reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert reads > 10
    assert sorted(os.listdir(tmp_path)) == ["samples.png"]


def test_files_get_the_mode_open_would_give_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        write_atomically(str(tmp_path / "grid.png"), b"png")
    finally:
        os.umask(mask)
    assert (tmp_path / "grid.png").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    write_atomically(str(target), "old")
    with pytest.raises(TypeError):
        write_atomically(str(target), 12345)  # type: ignore[arg-type]
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["report.json"]

