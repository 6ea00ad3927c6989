"""Runs the pipeline with TFX's LocalDagRunner and reports progress per component."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import tempfile
import time
from typing import Callable, Iterator

from absl import logging as absl_logging

from ganpipe.pipeline.config import PipelineConfig
from ganpipe.pipeline.inputs import ResolvedInput

_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
# TFX's launcher, when a node's inputs resolve to nothing: here, a tfx.dsl.Cond that is false
# (SyntheticExampleGen after a run that did not push).
_SKIPPED = "Skipping execution for %s"


class _ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's per-component log lines into one progress line each.

    LocalDagRunner has no progress callback; its INFO lines are the only
    signal, so we listen to those and keep the rest of TFX/Beam's INFO noise
    off the terminal.
    """

    def __init__(self, echo: Callable[[str], None], total: int):
        super().__init__(level=logging.INFO)
        self._echo, self._total, self._done, self._started = echo, total, 0, 0.0
        self._skipped: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _RUNNING:
            self._started = time.monotonic()
            self._echo(f"[{self._done + 1}/{self._total}] {record.args[0]} ...")
        elif record.msg == _SKIPPED:
            self._skipped.add(record.args[0])
        elif record.msg == _FINISHED:
            self._done += 1
            if record.args[0] in self._skipped:
                self._echo(f"[{self._done}/{self._total}] {record.args[0]} skipped (its condition was not met)")
                return
            self._echo(f"[{self._done}/{self._total}] {record.args[0]} done in {time.monotonic() - self._started:.1f}s")


def _drop_known_tfx_noise(record: logging.LogRecord) -> bool:
    """TFX 1.16 warns on every input resolution that LocalDagRunner ignores a query option it never uses."""
    return "property_predicate is not supported" not in str(record.msg)


# With direct_running_mode=multi_processing, Beam's worker processes send their log records to this logger
# of the pipeline's process (apache_beam/runners/portability/local_job_service.py, Beam 2.74), which prints
# WARNINGs. Two come from every worker and say nothing about the run: no semi_persistent_directory, i.e. no
# pickled __main__ session to load (sdk_worker_main.py; the DoFns of our steps and TFX's are pickled by
# reference to their modules, none lives in __main__), and the two flags Beam writes into the workers'
# options under their dest names, which its own parser cannot read back (their defaults are the values sent).
_BEAM_WORKER_LOGGER = "apache_beam.runners.portability.local_job_service"
_HARMLESS_BEAM_WORKER_LINE = re.compile(
    r"No semi_persistent_directory found|"
    r"Discarding unparseable args: \[(\\?'--(pipeline_type_check|direct_runner_use_stacked_bundle)\\?'(, )?)+\]")


def _drop_harmless_beam_worker_lines(record: logging.LogRecord) -> bool:
    return not _HARMLESS_BEAM_WORKER_LINE.search(record.getMessage())


@contextlib.contextmanager
def temp_dir_of_this_run() -> Iterator[str]:
    """Points this process's temporary files at one folder, removed when the run ends (however it ends).

    For every Beam step whose args name no dependency, TFX 1.16 copies itself into a
    ``tempfile.mkdtemp()`` folder and builds a ~50 MB sdist there that it never removes
    (tfx/utils/dependency_utils.py, build_ephemeral_package). LocalDagRunner runs the executors in this
    process, so with multi-process Beam args every local run left ~100 MB in /tmp: a nightly schedule
    would fill it. Beam's local worker processes do not need the sdist (they run this environment).
    """
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="ganpipe-run-", ignore_cleanup_errors=True) as folder:
        tempfile.tempdir = folder
        try:
            yield folder
        finally:
            tempfile.tempdir = saved


def run_local(config: PipelineConfig, data: ResolvedInput, echo: Callable[[str], None] = print) -> None:
    """Builds and runs the pipeline; exceptions from components propagate unchanged."""
    from tfx import v1 as tfx  # heavy: imported only once the inputs passed their checks

    from ganpipe.pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(config, data.path, data.format, ingest=data.ingest)
    # TFX logs through absl, whose records otherwise reach the root logger
    # (configured by a dependency at import) and flood the terminal with the
    # pipeline IR. Keep INFO for our progress handler, warnings for the user.
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = absl_logging.get_absl_logger()
    warnings_handler = logging.StreamHandler(sys.stderr)
    warnings_handler.setLevel(logging.WARNING)
    warnings_handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    warnings_handler.addFilter(_drop_known_tfx_noise)
    handlers = [_ComponentProgress(echo, total=len(pipeline.components)), warnings_handler]
    saved_propagate, absl_logger.propagate = absl_logger.propagate, False
    for handler in handlers:
        absl_logger.addHandler(handler)
    beam_worker_logger = logging.getLogger(_BEAM_WORKER_LOGGER)
    beam_worker_logger.addFilter(_drop_harmless_beam_worker_lines)
    try:
        with temp_dir_of_this_run():
            tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        beam_worker_logger.removeFilter(_drop_harmless_beam_worker_lines)
        for handler in handlers:
            absl_logger.removeHandler(handler)
        absl_logger.propagate = saved_propagate
        absl_logging.set_verbosity(absl_logging.WARNING)
