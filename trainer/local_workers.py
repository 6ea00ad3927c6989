"""Local multi-worker training: N worker processes on loopback, one MultiWorkerMirrored cluster.

Each worker runs exactly what a Kubernetes TFJob pod runs
(``ganpipe.trainer.cluster.worker_command``, with ``ganpipe.trainer.cluster.tf_config`` in
TF_CONFIG), so a run here exercises the cluster code path. The launcher:

- picks free loopback ports and starts the workers;
- streams their output line by line with a ``[worker-i]`` prefix (progress
  bar refreshes, which end in ``\\r``, become lines too);
- fails fast: when any worker exits non-zero or is killed, the others are
  terminated (SIGTERM, then SIGKILL after a grace period) -- survivors would
  otherwise block forever in a collective waiting for the dead peer;
- leaves no orphans: each worker asks the kernel to kill it when the
  launcher dies (Linux PR_SET_PDEATHSIG, set by the worker itself first
  thing, see :func:`die_with_launcher`), should the launcher be killed.

Exit code: 0 when every worker exited 0; else the first failure's code
(128 + signal number for a killed worker, as a shell reports it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Iterator, Sequence

from ganpipe import native_noise
from ganpipe.trainer import cluster
from ganpipe.trainer.config import TrainerConfig

LOOPBACK = "127.0.0.1"
GRACE_SECONDS = 10.0
POLL_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1
LAUNCHER_PID_ENV = "GANPIPE_LAUNCHER_PID"
EXIT_LAUNCHER_GONE = 3


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports the OS reports free now (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


WORKERS_LOG = "workers.log"  # under the run dir: every line every worker printed


def exit_code(returncode: int) -> int:
    """Popen's returncode -> a shell-style exit code (a signal N becomes 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def launch(
    train_files: Sequence[str],
    model_dir: str,
    run_dir: str,
    config: TrainerConfig,
    *,
    workers: int | None = None,
    python: str | None = None,
    output: IO[str] | None = None,
    host: str = LOOPBACK,
    grace_seconds: float = GRACE_SECONDS,
) -> int:
    """Runs ``workers`` (default ``config.workers``) worker processes to completion; returns the exit code."""
    count = workers or config.workers
    if count < 1:
        raise ValueError(f"need at least one worker, got {count}")
    out = output or sys.stdout
    lock = threading.Lock()

    def say(message: str) -> None:
        with lock:
            out.write(f"[launcher] {message}\n")
            out.flush()

    # Every worker line, tracebacks whole, for whoever debugs; the terminal gets each traceback's
    # last line only, so a survivor's 30-line gRPC error does not bury the launcher's summary.
    os.makedirs(run_dir, exist_ok=True)
    log_path = os.path.join(run_dir, WORKERS_LOG)
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in the finally below)
    addresses = [f"{host}:{port}" for port in free_ports(count, host)]
    command = cluster.worker_command(list(train_files), model_dir, run_dir, config, python=python)
    say(f"starting {count} worker(s) on {', '.join(addresses)}")
    processes: list[subprocess.Popen] = []
    streams: list[threading.Thread] = []
    with _exit_on_sigterm():
        try:
            for index in range(count):
                env = dict(os.environ, PYTHONUNBUFFERED="1", **{LAUNCHER_PID_ENV: str(os.getpid())},
                           TF_CONFIG=json.dumps(cluster.tf_config(addresses, index)))
                process = subprocess.Popen(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the launcher, which stops them
                )
                processes.append(process)
                say(f"worker-{index} pid {process.pid}")
                thread = threading.Thread(target=_stream,
                                          args=(process.stdout, f"[worker-{index}] ", _Sink(out, log, lock)),
                                          name=f"worker-{index}-log", daemon=True)
                thread.start()
                streams.append(thread)
            code = _supervise(processes, say)
        finally:
            _stop(processes, grace_seconds, say)
            for thread in streams:
                thread.join(timeout=5)
            log.close()
    say("all workers finished" if code == 0 else f"failed (exit code {code}); every worker line, tracebacks "
        f"whole: {log_path}")
    return code


def _supervise(processes: list[subprocess.Popen], say) -> int:
    """Waits until all exit 0 (-> 0) or one fails (-> its exit code; the rest are stopped by the caller)."""
    while True:
        codes = [process.poll() for process in processes]
        failed = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            # Prefer a killed worker: the others usually fail BECAUSE their peer vanished.
            index, code = min(failed, key=lambda item: (item[1] >= 0, item[0]))
            say(f"worker-{index} {describe_exit(code)}; stopping the other workers")
            return exit_code(code)
        if all(code == 0 for code in codes):
            return 0
        time.sleep(POLL_SECONDS)


def _stop(processes: list[subprocess.Popen], grace_seconds: float, say) -> None:
    """SIGTERM every live worker, SIGKILL what is left after the grace period, and reap all of them."""
    alive = [process for process in processes if process.poll() is None]
    for process in alive:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + grace_seconds
    for process in alive:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"pid {process.pid} ignored SIGTERM for {grace_seconds:.0f}s; killing it")
            process.kill()
            process.wait()
    for process in processes:
        process.wait()


class _Sink:
    """Where one run's worker lines go: all of them to the log file, the terminal's share to ``out``."""

    def __init__(self, out: IO[str], log: IO[str], lock: threading.Lock):
        self.out, self.log, self.lock = out, log, lock

    def write(self, shown: list[str], logged: list[str]) -> None:
        with self.lock:
            if logged:
                self.log.write("".join(f"{line}\n" for line in logged))
                self.log.flush()
            if shown:
                self.out.write("".join(f"{line}\n" for line in shown))
                self.out.flush()


def _stream(pipe: IO[bytes], prefix: str, sink: _Sink) -> None:
    """Copies a worker's output with ``prefix`` on every line (``\\r`` and ``\\n`` end lines) to ``sink``.

    A Python traceback goes to the log whole; the terminal gets its exception line.
    """
    pending = b""
    fd = pipe.fileno()
    in_traceback = [False]
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        _write_lines(lines, prefix, sink, in_traceback)
    _write_lines([pending], prefix, sink, in_traceback)
    pipe.close()


def _write_lines(lines: list[bytes], prefix: str, sink: _Sink, in_traceback: list[bool]) -> None:
    text = [line.decode("utf-8", errors="replace").rstrip() for line in lines]
    text = [line for line in text if line and not native_noise.is_known_harmless(line)]
    shown = []
    for line in text:
        if line.startswith("Traceback (most recent call last):"):
            in_traceback[0] = True
        elif in_traceback[0] and not line.startswith((" ", "\t", "During handling", "The above exception")):
            in_traceback[0] = False  # the exception line itself
            shown.append(f"{prefix}{line} (traceback in {WORKERS_LOG})")
        elif not in_traceback[0]:
            shown.append(f"{prefix}{line}")
    sink.write(shown, [f"{prefix}{line}" for line in text])


def die_with_launcher() -> None:
    """In a worker the launcher started: have the kernel SIGKILL this process when the launcher dies.

    Called by the worker itself (ganpipe.trainer.task, before TensorFlow loads)
    rather than as a Popen preexec_fn: forking a multi-threaded parent (TFX,
    gRPC) to run Python code before exec can deadlock, and makes gRPC log
    about skipped fork handlers. If the launcher is already gone, exit now.
    Linux only; elsewhere the launcher's own stop-on-failure still applies.
    """
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(launcher):
        os._exit(EXIT_LAUNCHER_GONE)


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """In the main thread, SIGTERM unwinds like Ctrl-C (so the workers get stopped) instead of killing us."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(exit_code(-signum))

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
