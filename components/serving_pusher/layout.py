"""TF Serving's model directory, written so a polling server never sees half a version.

TF Serving watches ``<base>/`` and loads every sub-directory whose name is an
integer (``1``, ``2``, ...), ignoring anything else. A version is therefore
built under a hidden, non-numeric name in the same directory, flushed to disk,
and then renamed to its number: ``rename(2)`` within one filesystem is atomic,
so the numbered directory appears complete or not at all. A push killed
half-way leaves only a hidden directory that TF Serving never looks at and the
next push removes. Old versions leave the same way: renamed out of sight
first, deleted after.

Local (POSIX) paths only: object stores such as gs:// have no atomic
directory rename, so pretending would break the promise.

The gate judges a candidate against what is serving now (the newest
version, ``newest``); a push then claims the next number only if that is
still the newest version, checked and renamed under one lock
(``<base>/.push.lock``, an advisory ``flock``), so two pipelines sharing a
serving directory cannot push a candidate judged against a version that
is no longer the newest. Each version holds a ``ganpipe_push.json`` record
(which model, when), which TF Serving ignores.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from typing import Iterator, Optional

# Hidden names: TF Serving skips them (not integers) and so do `ls` and globbing.
TEMP_PREFIX = ".push-"
TRASH_PREFIX = ".retired-"
# A temp dir of another host (shared volume) counts as abandoned after this.
STALE_AFTER_S = 24 * 3600
# How many times to retry when another pusher took the version number first.
MAX_VERSION_RACES = 20
LOCK_FILE = ".push.lock"
PUSH_RECORD_FILE = "ganpipe_push.json"


class PushError(RuntimeError):
    """The serving directory cannot be written as required (e.g. not a local path)."""


class StaleBaselineError(PushError):
    """Another version was pushed after the candidate was judged: it was not judged against it."""


def check_local(base: str) -> None:
    if "://" in base:
        raise PushError(f"push destination {base!r} is not a local path: atomic versions need a POSIX "
                        "rename (mount the volume and give its path)")


def list_versions(base: str) -> list[int]:
    """Version numbers present under ``base`` (sorted); missing ``base`` means none."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    return sorted(int(name) for name in names if name.isdigit() and os.path.isdir(os.path.join(base, name)))


def newest(base: str) -> int:
    """The version TF Serving serves by default (the highest number), or 0 when there is none."""
    versions = list_versions(base)
    return versions[-1] if versions else 0


def read_push_record(version_dir: str) -> Optional[dict]:
    """The record a ganpipe push left in a version directory; None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(version_dir, PUSH_RECORD_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def push_lock(base: str) -> Iterator[None]:
    """An exclusive advisory lock on ``base`` for check-then-rename (pushers on one host or one NFS/POSIX volume)."""
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, LOCK_FILE), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def next_version(base: str) -> int:
    """One more than the highest version present, or 1. Numbers are never reused while the
    newest version exists, since the newest is never pruned."""
    versions = list_versions(base)
    return versions[-1] + 1 if versions else 1


def publish(source_dir: str, base: str, keep: int = 0, judged_against: Optional[int] = None,
            record: Optional[dict] = None) -> tuple[int, str]:
    """Copies ``source_dir`` to ``<base>/<next version>`` atomically; returns (version, path).

    ``judged_against`` is the version the gate compared the candidate with (0:
    nothing was serving); when given, the push happens only if that is still
    the newest version, checked under the push lock. ``record`` is written
    into the version as ``ganpipe_push.json``. Then prunes to the newest
    ``keep`` versions (0 keeps all). Removes temp directories that earlier,
    interrupted pushes left behind.

    Raises:
      StaleBaselineError: a newer version than ``judged_against`` is serving.
      PushError: not a local path, or no model to copy.
    """
    check_local(base)
    if not os.path.isdir(source_dir):
        raise PushError(f"model directory {source_dir!r} does not exist")
    os.makedirs(base, exist_ok=True)
    remove_abandoned(base)
    temp = os.path.join(base, f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        copy_tree_durably(source_dir, temp)
        if record is not None:
            _write_durably(os.path.join(temp, PUSH_RECORD_FILE), json.dumps(record, indent=1, sort_keys=True))
        with push_lock(base):
            serving = newest(base)
            if judged_against is not None and serving != judged_against:
                raise StaleBaselineError(
                    f"version {serving} of {base} was pushed after this candidate was judged against "
                    f"{'version ' + str(judged_against) if judged_against else 'an empty serving directory'}; "
                    "not pushed (the next run judges against what serves then)")
            version, path = _rename_to_next_version(temp, base)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)  # never leave it behind while we are still alive
        raise
    fsync_dir(base)
    if keep > 0:
        prune(base, keep)
    return version, path


def _rename_to_next_version(temp: str, base: str) -> tuple[int, str]:
    for _ in range(MAX_VERSION_RACES):
        version = next_version(base)
        path = os.path.join(base, str(version))
        try:
            # Fails with ENOTEMPTY/EEXIST when a concurrent pusher created `path` first
            # (a version directory is never empty).
            os.rename(temp, path)
            return version, path
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise PushError(f"could not claim a version number under {base} after {MAX_VERSION_RACES} tries")


def copy_tree_durably(source_dir: str, destination: str) -> None:
    """Copies a directory tree and fsyncs every file and directory, so a crash after the rename
    cannot expose a version whose files are still only in the page cache.

    ``saved_model.pb`` is copied last, as the stock Pusher does: some loaders
    take its presence to mean the model is there.
    """
    os.makedirs(destination)
    last: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(source_dir):
        dirs.sort()
        relative = os.path.relpath(root, source_dir)
        target_root = destination if relative == "." else os.path.join(destination, relative)
        for name in dirs:
            os.makedirs(os.path.join(target_root, name))
        for name in sorted(files):
            pair = (os.path.join(root, name), os.path.join(target_root, name))
            if relative == "." and name == "saved_model.pb":
                last.append(pair)
            else:
                _copy_file(*pair)
    for pair in last:
        _copy_file(*pair)
    for root, dirs, _ in os.walk(destination, topdown=False):
        fsync_dir(root)


def _write_durably(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _copy_file(source: str, destination: str) -> None:
    shutil.copyfile(source, destination)
    shutil.copymode(source, destination)
    with open(destination, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str) -> None:
    """Makes a directory's entries (creations, renames) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def prune(base: str, keep: int) -> list[int]:
    """Removes all but the newest ``keep`` versions; returns the removed numbers.

    Each is first renamed to a hidden name (atomic: the server sees it vanish
    whole), then deleted.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    removed = []
    for version in list_versions(base)[:-keep]:
        trash = os.path.join(base, f"{TRASH_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(os.path.join(base, str(version)), trash)
        except FileNotFoundError:  # a concurrent pusher pruned it
            continue
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(version)
    if removed:
        fsync_dir(base)
    return removed


def remove_abandoned(base: str, now: Optional[float] = None) -> list[str]:
    """Deletes hidden temp/trash directories whose writer is gone; returns their names.

    A temp dir made on this host is abandoned when its process no longer
    exists; one from another host (a shared volume) when it is older than
    STALE_AFTER_S. Trash is always safe to delete: it was already renamed
    out of TF Serving's sight.
    """
    now = time.time() if now is None else now
    removed = []
    host = socket.gethostname()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if name.startswith(TRASH_PREFIX):
            abandoned = True
        elif name.startswith(TEMP_PREFIX):
            writer_host, _, rest = name[len(TEMP_PREFIX):].rpartition("-")[0].rpartition("-")
            pid = rest
            if writer_host == host and pid.isdigit():
                abandoned = not _process_alive(int(pid))
            else:
                try:
                    abandoned = now - os.path.getmtime(path) > STALE_AFTER_S
                except FileNotFoundError:
                    continue
        else:
            continue
        if abandoned:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
