"""What a synthetic export may be asked for: formats, counts, seeds, the output folder.

Plain Python, no TensorFlow: `ganpipe generate` refuses a bad request in
milliseconds, before the model loads, and pipeline/config.py bounds
``export.synthetic_count`` with the same limit.
"""

from __future__ import annotations

import os
from typing import Optional

TFRECORD = "tfrecord"
FOLDER = "folder"
FORMATS = (TFRECORD, FOLDER)

# The most images one export writes. 10^8 is 100x the million the design has to stream. Measured on
# the 2-core CI machine (a 16x16 test generator, other jobs running): 425 images/s, so 10^8 would take
# ~3 days and, at ~350 bytes per 16x16 PNG and 1-40 KB at 32-128 px, 35 GB to 4 TB; a larger number is
# far likelier a typo (an extra zero or two) than a plan, and several --seed ranges still get there.
MAX_IMAGES = 100_000_000
SEED_LIMIT = 2**63 - 1  # seeds are int64


class ExportError(ValueError):
    """The export cannot be done as asked; the message is one line naming the flag or the path."""


def check_counts(count: Optional[int], per_class: Optional[int]) -> None:
    """Exactly one of ``count`` (--n) and ``per_class`` (--per-class), each in [1, MAX_IMAGES].

    Raises:
      ExportError: neither, both, or one out of range.
    """
    if count is None and per_class is None:
        raise ExportError("give --n N (images) or --per-class N (images of each class)")
    if count is not None and per_class is not None:
        raise ExportError("give --n or --per-class, not both (--per-class N writes N of each class)")
    for flag, value in (("--n", count), ("--per-class", per_class)):
        if value is not None and not 1 <= value <= MAX_IMAGES:
            why = (" (a larger export is likelier a typo than a plan; split it over several --seed ranges)"
                   if value > MAX_IMAGES else "")
            raise ExportError(f"{flag}={value}: must be in [1, {MAX_IMAGES}]{why}")


def check_total(total: int, per_class: Optional[int] = None, num_classes: int = 0) -> None:
    """The whole export (``per_class`` x ``num_classes`` images when per class) is at most MAX_IMAGES."""
    if total > MAX_IMAGES:
        raise ExportError(f"--per-class={per_class}: {num_classes} classes make {total} images, over "
                          f"{MAX_IMAGES}")


def check_seeds(first_seed: int, total: int) -> None:
    """Seeds first_seed .. first_seed + total - 1 are all int64 and not negative."""
    if not 0 <= first_seed <= SEED_LIMIT - total + 1:
        raise ExportError(f"--seed={first_seed}: must be in [0, {SEED_LIMIT - total + 1}] (seeds are int64, "
                          f"and {total} of them follow it)")


def check_out(out: Optional[str]) -> str:
    """The absolute output folder: missing (its parent creatable and writable) or an empty folder.

    The export is built beside it and renamed onto it, so the parent must be writable too.

    Raises:
      ExportError: not given, an object-store URL, a file, link or device, a non-empty folder, or
        a parent that cannot be created or written.
    """
    if not out:
        raise ExportError("--out: give the folder to write (it must not exist, or be empty)")
    if "://" in out:
        raise ExportError(f"--out={out}: a local folder only (the export appears by an atomic rename, which "
                          "object stores do not offer)")
    out = os.path.abspath(os.path.expanduser(out))
    if os.path.islink(out) or (os.path.lexists(out) and not os.path.isdir(out)):
        raise ExportError(f"--out={out}: exists and is not a folder; give a folder that does not exist or is empty")
    if os.path.isdir(out):
        try:
            entries = os.listdir(out)
        except OSError as error:
            raise ExportError(f"--out={out}: cannot list it: {error.strerror}") from None
        if entries:
            raise ExportError(f"--out={out}: the folder is not empty ({len(entries)} entries); give a new folder "
                              "(an export never mixes with other files)")
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise ExportError(f"--out={out}: cannot create {error.filename or parent}: {error.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"--out={out}: {parent} is not writable (the export is built there, then renamed)")
    return out


def check_class_folder_names(names: tuple[str, ...]) -> None:
    """Class names usable as one folder each, which ganpipe's ingestion reads back as the same classes.

    Raises:
      ExportError: an empty, hidden ('.x': ingestion skips it), '/'- or NUL-holding, or repeated name.
    """
    for name in names:
        if not name or name.startswith(".") or "/" in name or "\0" in name:
            raise ExportError(f"class name {name!r} cannot be a folder name (empty, hidden, or holding '/'); "
                              "use --format tfrecord")
    if len(set(names)) < len(names):
        raise ExportError("the generator's class names repeat a name; use --format tfrecord")
    if list(names) != sorted(names):
        # Ingestion numbers class folders in sorted name order ("10" before "2"): other names in label
        # order would come back as other labels.
        raise ExportError("the generator's class names are not in sorted order (e.g. numbers past 9), so "
                          "ingesting the folders would renumber the classes; use --format tfrecord")
