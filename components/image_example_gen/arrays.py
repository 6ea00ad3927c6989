"""Array inputs: MNIST-style IDX files and NumPy .npz files.

Both are read with NumPy only, checked strictly (magic numbers, sizes, dtypes),
and every problem becomes an IngestInputError naming the file: an array file
is one unit, so a damaged one fails the run instead of being half-ingested.

`inspect_*` reads headers only (cheap; the executor plans chunks from it);
`load_array_file` reads and checks everything (preflight and the Beam workers).
Paths may be URLs (gs://...): files are opened through `filesystem`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import os
import re
import struct
import zipfile
import zlib
from typing import Optional

import numpy as np
from PIL import Image

from ganpipe.components.image_example_gen import filesystem
from ganpipe.components.image_example_gen.errors import IngestInputError

IDX = "idx"
NPZ = "npz"

_UBYTE = 0x08
_IDX_IMAGES_NDIM = 3
_IDX_LABELS_NDIM = 1
_IDX_IMAGES_RE = re.compile(r"images.*idx3[-.]ubyte(\.gz)?$", re.IGNORECASE)
_IDX_ANY_RE = re.compile(r"idx\d[-.]ubyte(\.gz)?$", re.IGNORECASE)
IMAGE_KEYS = ("images", "x")
LABEL_KEYS = ("labels", "y")
_PNG_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@dataclasses.dataclass(frozen=True)
class ArrayFile:
    """One array file: where its images (and labels) are and how many there are."""

    path: str
    kind: str  # IDX or NPZ
    count: int
    image_key: str = ""  # npz member holding the images
    label_key: str = ""  # npz member holding the labels, "" when none
    labels_path: str = ""  # IDX labels file, "" when none


@dataclasses.dataclass
class LoadedArrays:
    images: np.ndarray  # uint8, [N, H, W] or [N, H, W, C]
    labels: Optional[np.ndarray]  # int64 [N], or None


# ---------------------------------------------------------------- IDX


def is_idx_images_name(name: str) -> bool:
    return bool(_IDX_IMAGES_RE.search(os.path.basename(name)))


def is_idx_name(name: str) -> bool:
    return bool(_IDX_ANY_RE.search(os.path.basename(name)))


def matching_labels_path(images_path: str) -> str:
    """train-images-idx3-ubyte[.gz] -> train-labels-idx1-ubyte[.gz] if it exists (either compression)."""
    folder, name = os.path.split(images_path)
    stem = re.sub(r"\.gz$", "", name, flags=re.IGNORECASE)
    stem = re.sub("images", "labels", stem, flags=re.IGNORECASE)
    stem = re.sub("idx3", "idx1", stem, flags=re.IGNORECASE)
    for candidate in (stem, stem + ".gz"):
        path = filesystem.join(folder, candidate)
        try:
            if filesystem.isfile(path):
                return path
        except OSError as error:  # a URL whose store went away between two requests
            raise IngestInputError(f"cannot read {path}: {_reason(error)}") from None
    return ""


def inspect_idx(path: str) -> ArrayFile:
    """Header of an IDX images file (+ its labels file, if any); raw files are size-checked too."""
    if not is_idx_images_name(path) and is_idx_name(path) and "labels" in os.path.basename(path).lower():
        raise IngestInputError(f"{path} is an IDX labels file: pass the images file (*images*idx3-ubyte) "
                               "or the folder holding both")
    dims, payload = _idx_header(path, _IDX_IMAGES_NDIM)
    if payload is not None:
        _check_idx_size(path, dims, payload)
    labels_path = matching_labels_path(path)
    if labels_path:
        label_dims, label_payload = _idx_header(labels_path, _IDX_LABELS_NDIM)
        if label_payload is not None:
            _check_idx_size(labels_path, label_dims, label_payload)
        if label_dims[0] != dims[0]:
            raise IngestInputError(f"{labels_path} holds {label_dims[0]} labels but {path} holds {dims[0]} images")
    return ArrayFile(path=path, kind=IDX, count=dims[0], labels_path=labels_path)


def _idx_header(path: str, ndim: int) -> tuple[tuple[int, ...], Optional[int]]:
    """(dims, payload bytes on disk or None for .gz whose size is only known after decompressing)."""
    compressed = path.lower().endswith(".gz")
    try:
        with _open_idx(path) as handle:
            head = handle.read(4 + 4 * ndim)
        payload = None if compressed else filesystem.size(path) - len(head)
    except (OSError, EOFError, zlib.error) as error:
        raise IngestInputError(f"cannot read IDX file {path}: {_reason(error)}") from None
    return _parse_idx_header(path, head, ndim), payload


def _parse_idx_header(path: str, head: bytes, ndim: int) -> tuple[int, ...]:
    expected_magic = (_UBYTE << 8) | ndim
    if len(head) < 4:
        raise IngestInputError(f"IDX file {path} is truncated: {len(head)} bytes, not even a header")
    magic = int.from_bytes(head[:4], "big")
    if magic != expected_magic:
        what = "images" if ndim == _IDX_IMAGES_NDIM else "labels"
        raise IngestInputError(f"{path} is not an unsigned-byte IDX {what} file: magic number 0x{magic:08x}, "
                               f"expected 0x{expected_magic:08x}")
    if len(head) < 4 + 4 * ndim:
        raise IngestInputError(f"IDX file {path} is truncated inside its header")
    return struct.unpack(">" + "I" * ndim, head[4:])


def _check_idx_size(path: str, dims: tuple[int, ...], payload: int) -> None:
    expected = int(np.prod(dims, dtype=np.int64))
    if payload < expected:
        raise IngestInputError(f"IDX file {path} is truncated: header says {'x'.join(map(str, dims))} "
                               f"({expected} bytes of data), found {payload}")
    if payload > expected:
        raise IngestInputError(f"IDX file {path} has {payload - expected} bytes after the "
                               f"{'x'.join(map(str, dims))} data its header describes: wrong or damaged file")


def _load_idx(path: str, ndim: int) -> np.ndarray:
    try:
        with _open_idx(path) as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise IngestInputError(f"cannot read IDX file {path}: {_reason(error)}") from None
    dims = _parse_idx_header(path, raw[: 4 + 4 * ndim], ndim)
    header = 4 + 4 * ndim
    _check_idx_size(path, dims, len(raw) - header)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@contextlib.contextmanager
def _open_idx(path: str):
    """The file's (decompressed, for .gz) bytes as a binary stream; raises OSError like open()."""
    with filesystem.open_binary(path) as raw:
        if path.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                yield handle
        else:
            yield raw


# ---------------------------------------------------------------- npz


def inspect_npz(path: str) -> ArrayFile:
    """Picks the images/labels members and checks their shapes from the .npy headers alone."""
    members = _npz_headers(path)
    image_key = _pick_key(path, members, IMAGE_KEYS, required=True)
    shape, dtype = members[image_key]
    _check_image_array(path, image_key, shape, dtype)
    label_key = _pick_key(path, {k: v for k, v in members.items() if k != image_key}, LABEL_KEYS, required=False)
    if label_key:
        _check_label_array(path, label_key, members[label_key][0], members[label_key][1], shape[0])
    return ArrayFile(path=path, kind=NPZ, count=int(shape[0]), image_key=image_key, label_key=label_key)


def _npz_headers(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    try:
        with filesystem.open_binary(path) as handle, zipfile.ZipFile(handle) as archive:
            headers = {}
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                headers[name[: -len(".npy")]] = (tuple(shape), dtype)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error) as error:
        raise IngestInputError(f"cannot read {path} as a NumPy .npz file: {_reason(error)}") from None
    if not headers:
        raise IngestInputError(f"{path} holds no arrays")
    return headers


def _pick_key(path: str, members: dict, preferred: tuple[str, ...], required: bool) -> str:
    for key in preferred:
        if key in members:
            return key
    if required and len(members) == 1:
        return next(iter(members))
    if required:
        raise IngestInputError(f"{path} holds arrays {', '.join(sorted(members))}: put the images under "
                               f"'images' (and labels under 'labels')")
    return ""


def _check_image_array(path: str, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    where = f"{path}['{key}']"
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in _PNG_MODES):
        raise IngestInputError(f"{where} has shape {shape}: expected [N, H, W] or [N, H, W, C] with C in 1-4")
    if min(shape[:3]) < 1:
        raise IngestInputError(f"{where} has shape {shape}: no images")
    if dtype != np.uint8 and dtype.kind != "f":
        raise IngestInputError(f"{where} has dtype {dtype}: expected uint8 (0-255) or float in [0, 1]")


def _check_label_array(path: str, key: str, shape: tuple[int, ...], dtype: np.dtype, count: int) -> None:
    where = f"{path}['{key}']"
    if len(shape) != 1 or shape[0] != count:
        raise IngestInputError(f"{where} has shape {shape}: expected one label per image ({count},)")
    if dtype.kind not in "iu":
        raise IngestInputError(f"{where} has dtype {dtype}: labels must be integers")


def _load_npz(array_file: ArrayFile) -> LoadedArrays:
    path = array_file.path
    try:
        with filesystem.open_binary(path) as handle, np.load(handle, allow_pickle=False) as archive:
            images = archive[array_file.image_key]
            labels = archive[array_file.label_key] if array_file.label_key else None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise IngestInputError(f"cannot read {path} as a NumPy .npz file: {_reason(error)}") from None
    _check_image_array(path, array_file.image_key, images.shape, images.dtype)
    if images.dtype.kind == "f":
        images = _floats_to_uint8(path, array_file.image_key, images)
    if labels is not None:
        _check_label_array(path, array_file.label_key, labels.shape, labels.dtype, images.shape[0])
    return LoadedArrays(images=images, labels=None if labels is None else labels.astype(np.int64))


def _floats_to_uint8(path: str, key: str, images: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(images)):
        raise IngestInputError(f"{path}['{key}'] holds NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise IngestInputError(f"{path}['{key}'] is float with values in [{low:g}, {high:g}]: float images must "
                               "be in [0, 1] (or store uint8 0-255)")
    return np.round(images * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- both


def load_array_file(array_file: ArrayFile) -> LoadedArrays:
    """Everything in the file, fully checked; raises IngestInputError naming the file."""
    if array_file.kind == IDX:
        images = _load_idx(array_file.path, _IDX_IMAGES_NDIM)
        labels = None
        if array_file.labels_path:
            labels = _load_idx(array_file.labels_path, _IDX_LABELS_NDIM).astype(np.int64)
        if labels is not None and labels.shape[0] != images.shape[0]:
            raise IngestInputError(f"{array_file.labels_path} holds {labels.shape[0]} labels but "
                                   f"{array_file.path} holds {images.shape[0]} images")
        return LoadedArrays(images=images, labels=labels)
    return _load_npz(array_file)


def encode_png(image: np.ndarray) -> bytes:
    """[H, W] or [H, W, C] uint8 -> PNG bytes (deterministic for a given Pillow)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    buffer = io.BytesIO()
    # Pillow infers L / LA / RGB / RGBA from a uint8 array's shape (its `mode`
    # argument is deprecated since Pillow 11.3).
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
