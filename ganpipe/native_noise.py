"""TensorFlow's known-harmless native log lines, kept off a user's terminal.

TF 2.16 writes these from C++ straight to file descriptor 2, past Python's
logging and warnings filters, on every CPU run:

- "Unable to register cuFFT/cuDNN/cuBLAS factory": the CUDA plugins register
  twice at import (tensorflow/tensorflow#62075); nothing is wrong;
- "remapper failed: ... Mutation::Apply error: fanout ... exist for missing
  node": grappler's remapper gives up fusing one Conv2D+BiasAdd+LeakyRelu
  pattern in the gradient graph and leaves it unfused; the step is correct.

They are E-level, so TF_CPP_MIN_LOG_LEVEL=2 keeps them and 3 would hide real
errors too. :func:`filter_stderr` instead routes fd 2 through a small filter
*process* that drops exactly these lines and forwards everything else at once
(progress bars included). A separate process, not a thread: if ours crashes,
the filter still reads what was written up to the crash and forwards it.
Set GANPIPE_RAW_STDERR=1 to see everything.
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys

KNOWN_HARMLESS = re.compile(
    rb"Unable to register cu(?:FFT|DNN|BLAS) factory: Attempting to register factory for plugin"
    rb"|remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '[^']*' exist for missing node")
# A native log line's start ("2026-11-30 07:36:14.194022: E file.cc:479] "): held until its end.
_NATIVE_START = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] ")
RAW_ENV = "GANPIPE_RAW_STDERR"


def is_known_harmless(line: bytes | str) -> bool:
    return bool(KNOWN_HARMLESS.search(line.encode("utf-8", "replace") if isinstance(line, str) else line))


def filter_stderr() -> None:
    """From now on, this process's fd 2 (and its children's) goes through the filter process.

    No-op when GANPIPE_RAW_STDERR is set or fd 2 cannot be redirected.
    """
    if os.environ.get(RAW_ENV):
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        filter_process = subprocess.Popen([sys.executable, "-I", "-m", "ganpipe.native_noise"], stdin=subprocess.PIPE,
                                          stdout=original, close_fds=True)
    except OSError:
        return
    os.dup2(filter_process.stdin.fileno(), 2)
    filter_process.stdin.close()  # fd 2 (ours and our children's) is now the only writer
    os.close(original)

    def finish() -> None:
        # Our end closed, the filter reads to EOF and exits: everything is out before the shell prompt.
        try:
            sys.stderr.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            filter_process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass

    atexit.register(finish)


def _forward(read_fd: int = 0, write_fd: int = 1) -> None:
    """The filter process: copies read_fd to write_fd, dropping known-harmless native lines."""
    pending = b""
    while chunk := os.read(read_fd, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not KNOWN_HARMLESS.search(line))
        # A partial line goes out now (a progress bar redraws with \r, never ending its line),
        # unless it may be a native log line, which TF writes whole: wait for its end.
        if pending and not _NATIVE_START.search(pending):
            out, pending = out + pending, b""
        if out:
            os.write(write_fd, out)
    if pending and not KNOWN_HARMLESS.search(pending):
        os.write(write_fd, pending)


if __name__ == "__main__":
    _forward()
