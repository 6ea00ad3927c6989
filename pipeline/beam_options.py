"""`beam.pipeline_args` judged by Beam itself, before TFX starts.

When a Beam step starts, Beam 2.74 reads the args in two places, and refuses them in ways that reach
the user badly from inside a TFX component:

- its option parser (``apache_beam/options/pipeline_options.py``, ``PipelineOptions.get_all_options``,
  which TFX 1.16 calls in ``tfx/utils/dependency_utils.py`` when it builds a Beam executor): a bad value
  is an argparse error, i.e. ``SystemExit(2)`` after a usage dump of every Beam option; an option that no
  options class declares is kept with only a log warning, so a misspelt ``--direct_num_worker=2`` silently
  runs on one worker;
- ``apache_beam/pipeline.py``, ``Pipeline.__init__``: ``PipelineOptionsValidator(options, runner)``
  (``apache_beam/options/pipeline_options_validator.py``), e.g. DataflowRunner without ``--project``,
  raised as one multi-line ValueError.

:func:`refusal` runs both here and returns the first problem as one line. Beam is imported only when it
is called.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import logging
import re
from typing import Iterator, Optional, Sequence

# PipelineOptionsValidator's messages for a location not given (pipeline_options_validator.py,
# ERR_MISSING_GCS_PATH, Beam 2.74).
_MISSING_TEMP = "Missing GCS path option: temp_location."
_MISSING_STAGING = "Missing GCS path option: staging_location."


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why Beam would refuse the args: ``index`` is the element it blames, None for the set as a whole."""

    index: Optional[int]
    reason: str


class _ParserRefusal(Exception):
    """An argparse error, raised instead of argparse's usage dump and ``SystemExit(2)``."""


def refusal(args: Sequence[str]) -> Optional[Refusal]:
    """The first thing Beam would refuse in ``args`` (each ``--name=value`` or ``--flag``), or None.

    In order: Beam's parser (a bad value, an option given without its value); then an option no installed
    Beam options class declares (see :func:`_unknown_option`); then Beam's PipelineOptionsValidator for the
    runner the args name (DirectRunner when none), which must be importable (config.py checks that first;
    one whose constructor fails is a Refusal). Raises nothing for bad args; an error of Beam itself (e.g.
    not installed) propagates.
    """
    args = list(args)
    try:
        known, unknown = _parser().parse_known_args(args)
    except _ParserRefusal as error:
        return Refusal(_blamed(args, str(error)), f"refused by Beam's option parser: {error}")
    runner_name = known.runner or "DirectRunner"
    try:
        runner = _create_runner(runner_name)
    except Exception as error:  # noqa: BLE001 - whatever the runner's constructor raises is the message
        return Refusal(None, f"Beam cannot create the runner {runner_name}: {type(error).__name__}: "
                             f"{' '.join(str(error).split())[:300]}")
    problem = _unknown_option(args, unknown, runner)
    if problem:
        return problem
    with _root_logging_kept():
        errors = _validator_errors(args, runner)
    if errors:
        return Refusal(None, f"refused by Beam's checks for {runner_name}: {_shortened(errors)}")
    return None


@contextlib.contextmanager
def _root_logging_kept() -> Iterator[None]:
    """PipelineOptions() calls logging.basicConfig() (Beam 2.74): in `ganpipe compile` or `submit`, which run
    no Beam job, that handler would print every library's warnings; it is removed again."""
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        yield
    finally:
        for handler in [handler for handler in root.handlers if handler not in before]:
            root.removeHandler(handler)


def _parser() -> argparse.ArgumentParser:
    """Every installed Beam option, as ``PipelineOptions.get_all_options`` (Beam 2.74) builds its parser:
    all direct subclasses of PipelineOptions, no abbreviations."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class OneLineParser(_BeamArgumentParser):
        def error(self, message: str):
            if message.startswith("ambiguous option: "):  # Beam's own parser ignores these
                return
            raise _ParserRefusal(message)

    parser = OneLineParser(allow_abbrev=False)
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)  # as Beam does: the first class of each name
    for cls in classes.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    return parser


def _blamed(args: list[str], message: str) -> Optional[int]:
    """The element an argparse message ("argument --a/--b: ...") is about."""
    match = re.match(r"argument ([^:\s]+): ", message)
    names = set(match.group(1).split("/")) if match else set()
    return next((index for index, arg in enumerate(args) if arg.split("=", 1)[0] in names), None)


def _create_runner(name: str):
    """The runner instance Beam's ``Pipeline`` would create (``apache_beam.runners.runner.create_runner``)."""
    from apache_beam.runners.runner import create_runner

    return create_runner(name)


def _unknown_option(args: list[str], unknown: list[str], runner) -> Optional[Refusal]:
    """An option no installed Beam options class declares.

    Refused, with the closest known name if there is one: Beam itself would only log "Unparseable argument"
    and go on, and nothing in this pipeline reads an option Beam does not declare. Except on PortableRunner
    and the runners built on it (Flink, Spark, Prism): there Beam asks the job server for the options it
    declares at submission (``portable_runner.py``, DescribePipelineOptions), which cannot be known here.
    Dataflow hands undeclared options on to the service (``dataflow/internal/apiclient.py``,
    ``get_all_options(retain_unknown_options=True)``): there only a near-miss of a Beam option (a typo such
    as ``--temp_locaton``) is refused.
    """
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
    from apache_beam.runners.portability.portable_runner import PortableRunner

    if not unknown or isinstance(runner, PortableRunner):
        return None
    for arg in unknown:
        name = arg.split("=", 1)[0]
        close = difflib.get_close_matches(name, _known_names(), n=1)
        if isinstance(runner, DataflowRunner) and not close:
            continue  # the service's, not a typo of ours
        hint = f" (did you mean {close[0]}?)" if close else ""
        return Refusal(args.index(arg) if arg in args else None,
                       f"no installed Beam option is named {name}{hint}; Beam would ignore it with only a warning")
    return None


def _known_names() -> list[str]:
    parser = _parser()
    return [name for action in parser._actions for name in action.option_strings]  # pylint: disable=protected-access


def _validator_errors(args: list[str], runner) -> list[str]:
    """``PipelineOptionsValidator(options, runner).validate()`` as ``beam.Pipeline`` runs it, offline.

    Two of its steps use the network and are left out: the soft-delete check of the gs:// temp and staging
    buckets (skipped, as Beam skips it, under TestOptions.dry_run), and, when neither location is given, the
    default bucket Beam would look up or create in the project. That one counts as not created, which
    is what Beam reports when it cannot create it: "Missing GCS path option: temp_location."
    """
    from apache_beam.options.pipeline_options import PipelineOptions, TestOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

    options = PipelineOptions(list(args))
    options.view_as(TestOptions).dry_run = True
    with _no_default_bucket():
        return PipelineOptionsValidator(options, runner).validate()


@contextlib.contextmanager
def _no_default_bucket() -> Iterator[None]:
    """GoogleCloudOptions._create_default_gcs_bucket (Beam 2.74) returning None, as when it fails."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    saved = GoogleCloudOptions.__dict__["_create_default_gcs_bucket"]
    GoogleCloudOptions._create_default_gcs_bucket = lambda self: None  # pylint: disable=protected-access
    try:
        yield
    finally:
        GoogleCloudOptions._create_default_gcs_bucket = saved  # pylint: disable=protected-access


def _shortened(errors: list[str]) -> str:
    """Beam's messages on one line. With a missing or bad --temp_location Beam also reports a missing
    --staging_location, which it fills from a good temp_location
    (GoogleCloudOptions._handle_temp_and_staging_locations): the temp_location message is enough."""
    errors = [" ".join(error.split()) for error in errors]
    if any(re.search(r"\btemp_location\b", error) for error in errors):
        errors = [error for error in errors if error != _MISSING_STAGING]
    if _MISSING_TEMP in errors:
        errors[errors.index(_MISSING_TEMP)] += (" (give --temp_location=gs://BUCKET/PATH: a default bucket that Beam"
                                                " could create at run time cannot be checked before TFX)")
    return " ".join(errors)
