"""Where input files live: a local (or mounted) path, read with `os`, or a URL read with `tf.io.gfile`.

A URL is ``scheme://...`` for any scheme TensorFlow has a filesystem for:
``gs://`` and ``ram://`` in TensorFlow itself; ``s3://``, ``hdfs://``,
``az://`` and ``http(s)://`` once the tensorflow-io package is installed
(imported here on first use). Beam workers on other machines read the same
URL, which they cannot do with a folder on the driver's disk.

Local paths keep the plain `os` calls (links, permissions and their error
messages are the folder reader's business, in `sources`), and TensorFlow is
imported only for URLs: preflight of a local folder of junk stays fast.

Every failure on a URL is raised as `StorageError`, an OSError whose
``strerror`` is the first useful line of TensorFlow's message, so callers
handle local and remote read errors in one ``except OSError``.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import re
from typing import Iterator

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Registered by `import tensorflow_io` (its filesystem plugins), not by TensorFlow itself.
TENSORFLOW_IO_SCHEMES = ("s3", "hdfs", "viewfs", "har", "az", "http", "https")
# Where a store's client looks for credentials, for the message when it is refused.
_CREDENTIALS = {
    "gs": "GOOGLE_APPLICATION_CREDENTIALS, or the machine's service account",
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and S3_ENDPOINT for MinIO)",
}
# Stores whose listings mark every sub-folder with a trailing "/" (so no per-entry isdir request).
_SLASH_MARKS_FOLDERS = ("gs",)
# Stores whose first path part is a bucket that can be checked on its own.
_BUCKET_SCHEMES = ("gs", "s3")
_MAX_REASON = 200


class StorageError(OSError):
    """A URL could not be read; ``strerror`` is one line a person can act on."""


def is_url(path: str) -> bool:
    return bool(_URL.match(path))


def scheme(path: str) -> str:
    """``gs`` for ``gs://b/x``; "" for a local path."""
    match = _URL.match(path)
    return match.group(1).lower() if match else ""


def join(folder: str, *names: str) -> str:
    if not is_url(folder):
        return os.path.join(folder, *names)
    return "/".join([folder.rstrip("/"), *(name.strip("/") for name in names)])


def basename(path: str) -> str:
    if not is_url(path):
        return os.path.basename(path.rstrip(os.sep))
    return path.rstrip("/").rsplit("/", 1)[-1]


def bucket_of(path: str) -> str:
    """``gs://bucket`` for ``gs://bucket/a/b``; "" when the scheme has no buckets or for a local path."""
    name = scheme(path)
    if name not in _BUCKET_SCHEMES:
        return ""
    prefix = path[: len(name) + len("://")]
    return prefix + path[len(prefix):].split("/", 1)[0]


# ---------------------------------------------------------------- queries


def exists(path: str) -> bool:
    """Raises StorageError (URLs) when the store cannot say: unreachable, access denied, unknown scheme."""
    if not is_url(path):
        return os.path.exists(path)
    return _call(path, lambda gfile: gfile.exists(path))


def isdir(path: str) -> bool:
    if not is_url(path):
        return os.path.isdir(path)
    return _call(path, lambda gfile: gfile.isdir(path))


def isfile(path: str) -> bool:
    """A regular file (local), or an object that is not a folder (URL)."""
    if not is_url(path):
        return os.path.isfile(path)
    return _call(path, lambda gfile: gfile.exists(path) and not gfile.isdir(path))


def size(path: str) -> int:
    """Bytes in the file; raises OSError (StorageError for URLs)."""
    if not is_url(path):
        return os.path.getsize(path)
    return _call(path, lambda gfile: gfile.stat(path).length)


def read_bytes(path: str, limit: int = -1) -> bytes:
    """The file's bytes (its first ``limit`` when given); raises OSError (StorageError for URLs)."""
    with open_binary(path) as handle:
        return handle.read(limit)


def open_binary(path: str):
    """A readable, seekable binary file object (for gzip, zipfile, NumPy and Pillow); raises OSError."""
    if not is_url(path):
        return open(path, "rb")
    return _call(path, lambda gfile: _RemoteFile(path, gfile.GFile(path, "rb")))


def entries(folder: str) -> list[tuple[str, bool]]:
    """(name, is_folder) of a URL folder's children, sorted by name; raises StorageError.

    Local folders are listed by the caller with `os.scandir`, which also says
    what links point at.
    """
    names = _call(folder, lambda gfile: gfile.listdir(folder))
    found: dict[str, bool] = {}
    slash_marks = scheme(folder) in _SLASH_MARKS_FOLDERS
    for name in names:
        if name.endswith("/"):
            found[name.rstrip("/")] = True
        elif name not in found:
            found[name] = False if slash_marks else isdir(join(folder, name))
    return sorted(found.items())


def walk(root: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk` for a URL folder: top-down, names sorted, prune ``dirnames`` in place to skip folders.

    Raises:
      StorageError: a listing failed.
    """
    children = entries(root)
    dirnames = [name for name, is_folder in children if is_folder]
    filenames = [name for name, is_folder in children if not is_folder]
    yield root, dirnames, filenames
    for name in list(dirnames):
        yield from walk(join(root, name))


# ---------------------------------------------------------------- errors


def missing_reason(path: str) -> str:
    """Why an existing-looking URL was not found: its bucket is missing, or nothing is at that path.

    Raises:
      StorageError: the bucket check itself failed.
    """
    bucket = bucket_of(path)
    if bucket and bucket != path.rstrip("/") and not exists(bucket):
        return f"bucket {bucket} does not exist, or these credentials cannot see it"
    return "no object or folder at that path"


def short_message(message: str) -> str:
    """TensorFlow's (multi-line, retry-wrapped) error as one line: an HTTP status and the store's own words.

    Store errors arrive as ``All 10 retry attempts failed. The last failure:
    Error executing an HTTP request: HTTP response code 403 with body '{
    "error": {..."message": "..."}}' when reading gs://...``.
    """
    text = re.sub(r"^All \d+ retry attempts failed\. The last failure: ", "", message.strip())
    status = re.search(r"HTTP response code (\d+)", text)
    said = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', text)
    if status and said:
        line = f"HTTP {status.group(1)}: {said.group(1)}"
    else:
        line = " ".join(text.splitlines()[0].split()) if text else ""
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _call(path: str, operation):
    """Runs ``operation(tf.io.gfile)`` with TensorFlow's errors turned into StorageError."""
    tf = _tensorflow_for(path)
    try:
        return operation(tf.io.gfile)
    except tf.errors.OpError as error:
        raise _storage_error(path, error) from None


def _storage_error(path: str, error) -> StorageError:
    import tensorflow as tf

    reason = short_message(error.message or "")
    if isinstance(error, tf.errors.NotFoundError):
        return StorageError(errno.ENOENT, reason or "not found")
    if isinstance(error, (tf.errors.PermissionDeniedError, tf.errors.UnauthenticatedError)):
        where = _CREDENTIALS.get(scheme(path), "the store's credentials")
        return StorageError(errno.EACCES, f"access denied ({reason}); check the credentials this process uses "
                                          f"({where})")
    if isinstance(error, tf.errors.UnimplementedError) and f"scheme '{scheme(path)}'" in (error.message or ""):
        return StorageError(errno.EPROTONOSUPPORT, _no_filesystem(path))
    if isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError)):
        return StorageError(errno.EHOSTUNREACH, f"cannot reach the store ({reason})")
    return StorageError(errno.EIO, reason or type(error).__name__)


def _no_filesystem(path: str) -> str:
    name = scheme(path)
    if name in TENSORFLOW_IO_SCHEMES:
        return (f"TensorFlow reads {name}:// only with the tensorflow-io package installed "
                "(pip install tensorflow-io, matching the TensorFlow version)")
    return (f"TensorFlow has no filesystem for {name}:// (it reads gs://, ram:// and local paths; the "
            "tensorflow-io package adds s3://, hdfs://, az:// and http(s)://)")


def _tensorflow_for(path: str):
    """TensorFlow, with tensorflow-io imported first when the scheme is one of its (and it is installed).

    Imported here, on the first URL, never for local paths: importing TF takes seconds.
    """
    import tensorflow as tf

    if scheme(path) in TENSORFLOW_IO_SCHEMES and importlib.util.find_spec("tensorflow_io") is not None:
        import tensorflow_io  # noqa: F401 - registers s3://, hdfs://, az://, http(s):// with TensorFlow

    return tf


class _RemoteFile:
    """A tf.io.gfile.GFile opened for reading whose errors are StorageError (an OSError), like open()'s."""

    mode = "rb"  # gzip.GzipFile reads the mode of the file object it wraps

    def __init__(self, path: str, handle):
        self.name = path
        self._handle = handle

    def read(self, limit: int = -1) -> bytes:
        return self._guarded(lambda: self._handle.read(limit))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guarded(lambda: self._handle.seek(offset, whence))

    def tell(self) -> int:
        return self._guarded(self._handle.tell)

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "_RemoteFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _guarded(self, operation):
        import tensorflow as tf

        try:
            return operation()
        except tf.errors.OpError as error:
            raise _storage_error(self.name, error) from None
