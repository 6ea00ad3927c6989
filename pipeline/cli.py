"""`ganpipe`: the command line.

Exit codes: 0 success (including "ran, but the candidate was not blessed");
1 the pipeline stopped (data gate, component failure); 2 bad input or config,
detected before TFX starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from pipeline.config import ConfigError, load_config

EXIT_STOPPED = 1
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    _quiet_third_party_noise()
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    return args.handler(args)


def _quiet_third_party_noise() -> None:
    """TF's C++ start-up chatter and google-cloud's Python-version notices say nothing actionable here."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for message in ("You are using a non-supported Python version", "Support for google-cloud-storage"):
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganpipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the whole pipeline locally (LocalDagRunner)")
    run.add_argument("--data", help="image folder, IDX file/folder, .npz, TFRecords, or 'digits' (default)")
    run.add_argument("--format", help="auto (default), folder, idx, npz, tfrecord")
    run.add_argument("--config", help="YAML file mapping onto the config (see docs/config.md)")
    run.add_argument("--output", help="where everything is written (default ./ganpipe_output)")
    run.add_argument("--steps", type=int, help="training steps (train.steps)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="any config value, e.g. --set train.batch_size=32 (repeatable)")
    run.set_defaults(handler=_run)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in args.set:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    named = {"data.path": args.data, "data.format": args.format, "output_dir": args.output,
             "train.steps": None if args.steps is None else str(args.steps)}
    overrides.update({key: value for key, value in named.items() if value is not None})
    return overrides


def _run(args: argparse.Namespace) -> int:
    from components.image_example_gen.sources import IngestInputError
    from pipeline import inputs

    try:
        config = load_config(args.config, _overrides(args))
        config.output_dir = os.path.abspath(config.output_dir)  # artifacts and printed paths are absolute
        data = inputs.resolve(config)
    except (ConfigError, IngestInputError) as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    os.makedirs(config.output_dir, exist_ok=True)
    print(f"ganpipe: input: {data.summary}")
    print(f"ganpipe: output: {config.output_dir}")

    from pipeline import summary
    from pipeline.local_runner import run_local

    started_ms = int(time.time() * 1000)
    started = time.monotonic()
    try:
        run_local(config, data)
    except Exception as error:  # a component failed: one message, traceback kept in a file
        return _report_stop(error, config.output_dir)
    print(summary.summarize(config, started_ms, time.monotonic() - started))
    return 0


def _report_stop(error: Exception, output_dir: str) -> int:
    """The data gate's message is the whole story; anything else also gets its traceback saved."""
    import traceback

    from components.data_gate.executor import DataGateError

    print(f"ganpipe: the pipeline stopped: {error}", file=sys.stderr)
    if isinstance(error, DataGateError):
        print("ganpipe: nothing downstream of the data gate ran; nothing was pushed.", file=sys.stderr)
    else:
        trace_path = os.path.abspath(os.path.join(output_dir, "last_error.txt"))
        with open(trace_path, "w", encoding="utf-8") as handle:
            handle.write("".join(traceback.format_exception(error)))
        print(f"ganpipe: full traceback: {trace_path}", file=sys.stderr)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
