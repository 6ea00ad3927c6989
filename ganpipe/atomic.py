"""Files other processes may read while we write them: readers see the old file or the whole new one.

Two runs on one output (or a person's image viewer) read what a run
writes: sample grids, the curated schema, checkpoint metadata, reports.
A plain ``open(path, "w")`` shows them a truncated file. Each writer uses
a temporary name of its own beside the target, then renames it into
place (``rename`` is atomic within a POSIX filesystem). On object stores
(``gs://``, ``s3://``) an object becomes visible whole when it is closed,
so the write goes straight to the name through ``tf.io.gfile``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def _umask() -> int:
    """The process umask (reading it means setting it; the window is one system call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str, data: bytes | str) -> None:
    """Writes ``data`` (str as UTF-8) to ``path``; the parent folder must exist (local) or be creatable.

    Raises:
      OSError: the folder cannot be written; the temporary file is removed and ``path`` is unchanged.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if "://" in path:
        import tensorflow as tf  # noqa: PLC0415 - only object-store paths need TF's filesystems

        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(payload)
        return
    directory = os.path.dirname(os.path.abspath(path))
    handle, partial = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    try:
        # mkstemp makes the file 0600; give it the mode open() would (0666 less the umask), so others
        # sharing the output (a viewer, TF Serving, a teammate) can read it.
        os.chmod(partial, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
