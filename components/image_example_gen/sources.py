"""What the input is and what is in it: format detection, listing, preflight.

Pure Python (NumPy and Pillow; TensorFlow only once a file passes Pillow), no
Beam, no TFX: the CLI runs `preflight` before TFX starts, so a missing folder
or a folder of junk fails in about a second with one line. The executor plans
its Beam input with the same `plan_inputs`, and both validate images with the
same `validation.validate_image`.

Paths are local (or mounted, e.g. a Kubernetes PVC) filesystem paths, or
URLs that TensorFlow reads (gs://, ram://, s3:// with tensorflow-io): see
`filesystem`. Local folders are walked with `os` (links, permissions); URLs
through `tf.io.gfile`, imported only then.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Union

from ganpipe.components.image_example_gen import arrays, filesystem, shape, validation
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe import contract
from ganpipe.components.image_example_gen.errors import IngestInputError

__all__ = [
    "IngestInputError", "FORMATS", "FileItem", "ArrayChunk", "InputPlan",
    "detect_format", "plan_inputs", "preflight",
]

FOLDER = "folder"
IDX = arrays.IDX
NPZ = arrays.NPZ
TFRECORD = "tfrecord"
FORMATS = (FOLDER, IDX, NPZ, TFRECORD)
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfr", ".gz")
# Array files are cut into chunks so a runner can spread one big file over workers.
ARRAY_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class FileItem:
    """One file of a folder input; `path` is also its `source` feature."""

    path: str
    label: int = contract.UNKNOWN_LABEL


@dataclasses.dataclass(frozen=True)
class ArrayChunk:
    """Images [start, stop) of one array file; their sources are `<path>#<index>`."""

    array_file: arrays.ArrayFile
    start: int
    stop: int


InputItem = Union[FileItem, ArrayChunk]


@dataclasses.dataclass
class InputPlan:
    """Everything the Beam pipeline reads, decided before it starts."""

    path: str
    format: str
    items: list  # of InputItem
    total: int  # input files (folder) or images (arrays): the denominator of bad_fraction
    hidden_files: int = 0  # dotfiles skipped
    hidden_dirs: int = 0  # dot-folders skipped (not descended into)
    broken_links: int = 0  # links to files that loop or point nowhere, skipped
    outside_links: int = 0  # files reached through a link that leaves the folder, read like the rest
    label_names: list = dataclasses.field(default_factory=list)
    array_files: list = dataclasses.field(default_factory=list)


def display_name(path: str) -> str:
    """``path`` as valid UTF-8 text for records, reports, MLMD and terminals.

    File systems allow names that are not UTF-8; Python lists them with lone
    surrogates (os.fsdecode), which UTF-8 encoders (Beam's coders, JSON
    writers, terminals) refuse. Those bytes become ``\\xNN`` escapes; valid
    names are unchanged.
    """
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        raw = path.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def detect_format(path: str, data_format: str = "auto") -> str:
    """Returns folder / idx / npz / tfrecord.

    Raises:
      IngestInputError: it cannot tell; the path is missing or unreadable; a URL's
        scheme has no TensorFlow filesystem, its store is unreachable or refuses
        these credentials.
    """
    if data_format != "auto" and data_format not in FORMATS:
        raise IngestInputError(f"data format {data_format!r} is not one of auto, {', '.join(FORMATS)}")
    _require_exists(path)
    is_file = _url_query(path, filesystem.isfile)
    if not (is_file or _url_query(path, filesystem.isdir)):
        raise IngestInputError(f"input path {display_name(path)} is neither a file nor a folder "
                               "(a device, FIFO or socket)")
    if data_format != "auto":
        return data_format
    name = filesystem.basename(path).lower()
    if is_file:
        if name.endswith(".npz"):
            return NPZ
        if arrays.is_idx_name(name) or name.endswith("-ubyte"):
            return IDX
        if name.endswith(TFRECORD_SUFFIXES):
            return TFRECORD
        raise IngestInputError(f"cannot tell the format of {path}: give a folder of images, an .npz file, "
                               "an IDX file (*images*idx3-ubyte[.gz]) or TFRecords (.tfrecord[.gz])")
    try:
        top_files = _visible_top_files(path)
        has_subfolders = _has_visible_subfolder(path)
    except OSError as error:  # mode 000, or a folder on a mount that went away
        if filesystem.is_url(path):
            raise IngestInputError(f"cannot list data.path {path}: {error.strerror}") from None
        raise IngestInputError(f"cannot list {display_name(path)}: {error.strerror}; check its permissions "
                               "(the user running ganpipe needs read and execute on it)") from None
    if any(arrays.is_idx_name(entry) for entry in top_files):
        return IDX
    if top_files and not has_subfolders:
        lowered = [entry.lower() for entry in top_files]
        if all(entry.endswith(".npz") for entry in lowered):
            return NPZ
        if all(entry.endswith(TFRECORD_SUFFIXES) for entry in lowered):
            return TFRECORD
    return FOLDER


def plan_inputs(path: str, data_format: str, labels_from_subfolders: bool = True) -> InputPlan:
    """Lists the input (files, or array files cut into chunks); raises IngestInputError on an unusable input."""
    _require_exists(path)
    if data_format == FOLDER:
        return _plan_folder(path, labels_from_subfolders)
    if data_format in (IDX, NPZ):
        files = _array_files(path, data_format)
        items = [
            ArrayChunk(array_file, start, min(start + ARRAY_CHUNK, array_file.count))
            for array_file in files
            for start in range(0, array_file.count, ARRAY_CHUNK)
        ]
        return InputPlan(path=path, format=data_format, items=items, total=sum(f.count for f in files),
                         array_files=files)
    if data_format == TFRECORD:
        raise IngestInputError(f"{path} holds TFRecords: those are ingested by ImportExampleGen, "
                               "not ImageExampleGen")
    raise IngestInputError(f"data format {data_format!r} is not one of {', '.join(FORMATS)}")


def preflight(path: str, data_format: str = "auto", config: IngestConfig | None = None) -> dict:
    """Checks, before TFX starts, that the input holds at least one usable image, and decides its shape.

    The shape (``shape.decide``) is what the executor will decide from the
    same images; files are then validated in listing order until one passes,
    with the same function the Beam pipeline uses; array files are loaded and
    checked in full (dtype, value range, label counts), and their first image
    validated.

    Raises:
      IngestInputError: nothing usable, with the reasons counted.
    """
    config = config or IngestConfig()
    data_format = detect_format(path, data_format)
    if data_format == TFRECORD:
        return {"path": path, "format": TFRECORD}
    plan = plan_inputs(path, data_format, labels_from_subfolders=config.labels_from_subfolders)
    decision = shape.decide(plan, config)
    preparation = config.preparation(decision.image_size, decision.channels)
    reasons: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    checked = 0
    first_valid = None
    for source, check_one in _preflight_candidates(plan):
        checked += 1
        check = check_one(preparation, config.converts)
        if check.ok:
            first_valid = (source, check)
            break
        reasons[check.reason] += 1
        examples.setdefault(check.reason, display_name(f"{source}: {check.detail}"))
    if first_valid is None:
        counted = ", ".join(f"{reason}={count}" for reason, count in sorted(reasons.items()))
        sample = "; ".join(examples[reason] for reason in sorted(examples))
        unit = "file(s)" if data_format == FOLDER else "array file(s), first image of each"
        wanted = "image" if config.converts else f"{preparation.channels}-channel image"
        raise IngestInputError(f"no decodable {wanted} in {path}: checked {checked} {unit} ({counted}); "
                               f"e.g. {sample}")
    source, check = first_valid
    result = {
        "path": path,
        "format": data_format,
        "total_files": plan.total,
        "hidden_files": plan.hidden_files,
        "hidden_dirs": plan.hidden_dirs,
        "broken_links": plan.broken_links,
        "outside_links": plan.outside_links,
        "checked": checked,
        "first_valid": display_name(source),
        "first_image": {"format": check.image_format, "height": check.height, "width": check.width,
                        "channels": check.channels},
        "label_names": plan.label_names,
        "shape": decision.to_dict(),
    }
    if data_format != FOLDER:
        result["num_images"] = plan.total
        result["array_files"] = [f.path for f in plan.array_files]
    return result


def _preflight_candidates(plan: InputPlan):
    """(source, check) pairs in listing order, checked exactly as the Beam DoFn checks them.

    Array files are loaded (and so fully checked) here; all images of one
    array share a shape, so its first image stands for the rest.
    """
    if plan.format == FOLDER:
        for item in plan.items:
            yield item.path, (lambda preparation, convert, path=item.path:
                              validation.validate_file(path, preparation, convert)[1])
        return
    for array_file in plan.array_files:
        if not array_file.count:
            continue
        first = arrays.encode_png(arrays.load_array_file(array_file).images[0])
        yield f"{array_file.path}#0", (lambda preparation, convert, data=first:
                                       validation.validate_image(data, preparation, convert)[0])


def _require_exists(path: str) -> None:
    """Raises IngestInputError when ``path`` is missing, or (a URL) cannot be asked about."""
    if not filesystem.is_url(path):
        if not os.path.exists(path):
            raise IngestInputError(f"input path {path} does not exist")
        return
    try:
        if filesystem.exists(path):
            return
        reason = filesystem.missing_reason(path)
    except OSError as error:  # unknown scheme, unreachable store, refused credentials
        raise IngestInputError(f"cannot read data.path {path}: {error.strerror}") from None
    raise IngestInputError(f"data.path {path} does not exist: {reason}")


def _url_query(path: str, query) -> bool:
    """``query(path)``; a URL's store failing mid-way (it answered a moment ago) is an IngestInputError."""
    try:
        return query(path)
    except OSError as error:
        if not filesystem.is_url(path):
            raise
        raise IngestInputError(f"cannot read data.path {path}: {error.strerror}") from None


# ---------------------------------------------------------------- folders


def _plan_folder(root: str, labels_from_subfolders: bool) -> InputPlan:
    if not _url_query(root, filesystem.isdir):
        raise IngestInputError(f"{root} is not a folder")
    walk = _walk(root)
    files = walk.files
    if not files:
        if walk.broken_links:
            raise IngestInputError(f"folder {display_name(root)} holds no readable file: {walk.broken_links} link(s) "
                                   "loop or point nowhere; fix or remove them")
        if walk.hidden_files or walk.hidden_dirs:
            raise IngestInputError(f"folder {root} holds only hidden files ({walk.hidden_files} hidden file(s), "
                                   f"{walk.hidden_dirs} hidden folder(s)); put images in it")
        raise IngestInputError(f"folder {root} is empty: put images in it (PNG, JPEG, BMP or GIF)")
    label_names: list[str] = []
    if labels_from_subfolders and _all_images_in_subfolders(root, files):
        label_names = sorted({relative.split(os.sep, 1)[0] for relative in files if os.sep in relative})
    index = {name: position for position, name in enumerate(label_names)}
    items = [
        FileItem(filesystem.join(root, relative),
                 index[relative.split(os.sep, 1)[0]] if os.sep in relative and label_names else contract.UNKNOWN_LABEL)
        for relative in files
    ]
    shown = [display_name(name) for name in label_names]
    if len(set(shown)) < len(shown):  # "caf\xe9" the bytes, and "caf\xe9" typed with a backslash
        same = sorted({name for name in shown if shown.count(name) > 1})
        raise IngestInputError(f"class folders in {display_name(root)} show the same name once non-UTF-8 bytes are "
                               f"escaped ({', '.join(same)}): rename one of them")
    label_names = shown
    return InputPlan(path=root, format=FOLDER, items=items, total=len(items), hidden_files=walk.hidden_files,
                     hidden_dirs=walk.hidden_dirs, label_names=label_names, broken_links=walk.broken_links,
                     outside_links=walk.outside_links)


def _all_images_in_subfolders(root: str, files: list[str]) -> bool:
    """True when some file sits in a subfolder and no top-level file looks like an image.

    Only top-level files are sniffed (magic bytes), so a README or LICENSE
    next to the class folders does not switch labels off, while one stray
    image at the top does (its class would be unknown).
    """
    top_level = [relative for relative in files if os.sep not in relative]
    if len(top_level) == len(files):
        return False
    for relative in top_level:
        try:
            if validation.sniff_format(filesystem.read_bytes(filesystem.join(root, relative), 8)):
                return False
        except OSError:
            continue
    return True


@dataclasses.dataclass
class _Walk:
    files: list[str] = dataclasses.field(default_factory=list)  # sorted, relative to the root
    hidden_files: int = 0
    hidden_dirs: int = 0
    broken_links: int = 0
    outside_links: int = 0


def _walk(root: str) -> _Walk:
    """Regular, non-hidden files under root (sorted, relative); hidden entries are counted, not listed.

    Links are followed, as `ls` and a file manager show them, also when they
    leave the folder: a dataset assembled from links into a shared store (one
    class folder linked from elsewhere, or a link per file) is common, and
    ganpipe reads every file as an image and never copies a rejected file's
    bytes anywhere. Files whose real path is outside the folder are counted
    (``outside_links``) so the report shows it. A folder already walked (a
    link loop, or two links to one folder) is not walked again.
    """
    if filesystem.is_url(root):
        return _walk_url(root)
    walk = _Walk()

    def fail(error: OSError) -> None:
        raise IngestInputError(f"cannot list {display_name(error.filename or root)}: {error.strerror}; "
                               "check its permissions")

    real_root = os.path.realpath(root)
    walked = {real_root}

    def is_inside(path: str) -> bool:
        return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root

    def visit(folder: str, inside: bool) -> None:
        """`inside`: the folder's real path lies under the root's, so its entries that are not links do too
        (realpath costs a system call per path part: 60,000 of them were most of listing a folder)."""
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            fail(error)
        folders = []
        for entry in entries:
            if _is_dir(entry):
                if entry.name.startswith("."):
                    walk.hidden_dirs += 1
                    continue
                # Claimed when first seen, not when entered: two links to one folder, or folders linking
                # to each other, are walked once, under the first name in listing order.
                real = os.path.realpath(entry.path)
                if real not in walked:
                    walked.add(real)
                    folders.append(entry)
            elif entry.name.startswith("."):
                walk.hidden_files += 1
            elif _is_file(entry):  # skips sockets, FIFOs, broken links
                walk.files.append(os.path.relpath(entry.path, root))
                if not (is_inside(entry.path) if entry.is_symlink() else inside):
                    walk.outside_links += 1
            elif entry.is_symlink() and not os.path.exists(entry.path):  # a loop, or a dangling link
                walk.broken_links += 1
        for entry in folders:
            visit(entry.path, is_inside(entry.path) if entry.is_symlink() or not inside else True)

    visit(root, True)
    return walk


def _walk_url(root: str) -> _Walk:
    """_walk for a URL: object stores have no links, so hidden entries are all there is to count.

    Raises:
      IngestInputError: a listing failed (the store went away, or refused).
    """
    walk = _Walk()
    base = root.rstrip("/")
    try:
        for folder, dirnames, filenames in filesystem.walk(root):
            walk.hidden_dirs += sum(name.startswith(".") for name in dirnames)
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            below = folder.rstrip("/")[len(base):].lstrip("/")
            for name in filenames:
                if name.startswith("."):
                    walk.hidden_files += 1
                else:
                    walk.files.append(f"{below}/{name}" if below else name)
    except OSError as error:
        raise IngestInputError(f"cannot list data.path {root}: {error.strerror}") from None
    return walk


def _visible_top_files(folder: str) -> list[str]:
    if filesystem.is_url(folder):
        return [name for name, is_folder in filesystem.entries(folder) if not is_folder and not name.startswith(".")]
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if not entry.name.startswith(".") and _is_file(entry))


def _has_visible_subfolder(folder: str) -> bool:
    if filesystem.is_url(folder):
        return any(is_folder and not name.startswith(".") for name, is_folder in filesystem.entries(folder))
    with os.scandir(folder) as entries:
        return any(not entry.name.startswith(".") and _is_dir(entry) for entry in entries)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    """entry.is_file(), False for a link that loops or points nowhere (counted by _walk)."""
    try:
        return entry.is_file()
    except OSError:
        return False


# ---------------------------------------------------------------- arrays


def _array_files(path: str, data_format: str) -> list[arrays.ArrayFile]:
    inspect = arrays.inspect_idx if data_format == IDX else arrays.inspect_npz
    if _url_query(path, filesystem.isfile):
        files = [inspect(path)]
    else:
        top_files = _url_query(path, _visible_top_files)
        if data_format == IDX:
            names = [name for name in top_files if arrays.is_idx_images_name(name)]
            wanted = "IDX images files (*images*idx3-ubyte[.gz])"
        else:
            names = [name for name in top_files if name.lower().endswith(".npz")]
            wanted = ".npz files"
        if not names:
            raise IngestInputError(f"folder {path} holds no {wanted}")
        files = [inspect(filesystem.join(path, name)) for name in names]
    if not any(f.count for f in files):
        raise IngestInputError(f"{path} holds no images (0 in {', '.join(f.path for f in files)})")
    return files
