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

from ganpipe import native_noise
from ganpipe.atomic import write_atomically
from ganpipe.components.synthetic_example_gen import request as export_request
from ganpipe.pipeline.config import ConfigError, load_config

EXIT_STOPPED = 1
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    _quiet_third_party_noise()
    if argv is None:  # the real command line, not a test calling main([...]) in its own process
        native_noise.filter_stderr()
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    return args.handler(args)


def _quiet_third_party_noise() -> None:
    """TF's C++ start-up chatter and google-cloud's Python-version notices say nothing actionable here."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for message in _NOISY_FUTURE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    # Child processes (Beam's multi-process workers, training workers) get the environment, not these
    # filters: the same ones as PYTHONWARNINGS entries (action:message-prefix:category), after the user's.
    entries = [entry for entry in os.environ.get("PYTHONWARNINGS", "").split(",") if entry]
    entries += [entry for entry in (f"ignore:{message}:FutureWarning" for message in _NOISY_FUTURE_WARNINGS)
                if entry not in entries]
    os.environ["PYTHONWARNINGS"] = ",".join(entries)


_NOISY_FUTURE_WARNINGS = ("You are using a non-supported Python version", "Support for google-cloud-storage")


class _OneLineErrors(argparse.ArgumentParser):
    """argparse prints the usage before the error; like every other refusal here, it is one line."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


STEPS_HELP = "training steps (train.steps); default auto: 600 up to 32 px, x4 per doubling of the side"


def _steps(value: str) -> str:
    """--steps: a whole number or auto, handed on as text to the config, which checks its range."""
    if value != "auto":
        try:
            int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number or auto") from None
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="ganpipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the whole pipeline locally (LocalDagRunner)")
    run.add_argument("--data", help="image folder, IDX file/folder, .npz, TFRecords, or 'digits' (default)")
    run.add_argument("--format", help="auto (default), folder, idx, npz, tfrecord")
    run.add_argument("--config", help="YAML file mapping onto the config (keys: README, Configuration)")
    run.add_argument("--output", help="where everything is written (default ./ganpipe_output)")
    run.add_argument("--steps", type=_steps, help=STEPS_HELP)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="any config value, e.g. --set train.batch_size=32 (repeatable)")
    run.add_argument("--check", action="store_true",
                     help="check the config and the input, print what would run, and stop before TFX starts")
    run.set_defaults(handler=_run)
    _add_cluster_commands(commands)
    _add_generate_command(commands)
    _add_train_command(commands)
    return parser


# --- Training alone, on N local worker processes (trainer/launcher.py) ----------------------------

def _add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train the GAN alone on TFRecords, on one or N local worker processes")
    train.add_argument("--train-files", nargs="+", required=True, metavar="PATTERN",
                       help="tf.Example TFRecord glob(s) as ExampleGen writes them, e.g. '<examples>/Split-train/*'")
    train.add_argument("--model-dir", required=True, help="where the generator SavedModel is written")
    train.add_argument("--run-dir", required=True,
                       help="TensorBoard logs, plots, samples and checkpoints; rerun with the same dir to resume")
    train.add_argument("--workers", type=int, help="worker processes on this machine (train.workers, default 1)")
    train.add_argument("--steps", type=_steps, help=STEPS_HELP)
    train.add_argument("--config", help="YAML file mapping onto the config (only its `train` section is used)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any train value, e.g. --set train.loss=hinge (repeatable)")
    train.set_defaults(handler=_train, data=None, format=None, output=None)


def _train(args: argparse.Namespace) -> int:
    """Exit codes: 0 trained and exported, 1 training failed (a worker died), 2 bad config or input."""
    try:
        overrides = _overrides(args)
        if args.workers is not None:
            overrides["train.workers"] = str(args.workers)
        cfg = load_config(args.config, overrides).train
    except ConfigError as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    model_dir, run_dir = os.path.abspath(args.model_dir), os.path.abspath(args.run_dir)
    from ganpipe.trainer.task import configure_logging, train_with_exit_code

    configure_logging()
    code = train_with_exit_code(cfg, args.train_files, model_dir, run_dir)
    if code != 0:
        print(f"ganpipe: training failed (exit code {code})", file=sys.stderr)
        return EXIT_BAD_INPUT if code == EXIT_BAD_INPUT else EXIT_STOPPED
    print(f"ganpipe: generator: {model_dir}")
    print(f"ganpipe: logs, plots and checkpoints: {run_dir}")
    return 0


GENERATE_FORMATS = ("grid", *export_request.FORMATS)
GRID_SAMPLES = 64
GRID_FILE = "grid.png"


def _add_generate_command(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate", help="render samples of a pushed generator as a PNG grid, or export "
                                                    "them as a data set (TFRecords or class folders)")
    generate.add_argument("--model", required=True,
                          help="a version directory, or a model base <serving_dir>/<model_name> (newest version)")
    generate.add_argument("--version", type=int, help="version under a model base (default: the newest)")
    generate.add_argument("--format", choices=GENERATE_FORMATS, default="grid",
                          help="grid: one PNG picture (default); tfrecord: tf.Examples as ingestion writes them, "
                               "under <out>/Split-train/; folder: PNG files, one subfolder per class")
    generate.add_argument("--n", type=int,
                          help=f"number of samples (default {GRID_SAMPLES} for a grid; an export needs --n or "
                               "--per-class)")
    generate.add_argument("--per-class", type=int, metavar="N",
                          help="export N samples of each class (conditional generators only)")
    generate.add_argument("--seed", type=int, default=0, help="first seed; samples use seed..seed+n-1 (default 0)")
    generate.add_argument("--out", help=f"grid: PNG file (default {GRID_FILE}); tfrecord/folder: a folder that "
                                        "does not exist or is empty")
    generate.add_argument("--scale", type=int, help="grid only: integer upscaling (default: at least 512 px wide)")
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    """Same model, seed and n: the same PNG bytes (grid) or the same records (export)."""
    from ganpipe.serving.generate import ModelNotFoundError, export, generate

    try:
        if args.format == "grid":
            if args.per_class is not None:
                raise ValueError("--per-class: only with --format tfrecord or folder (a grid is --n samples)")
            count, out = GRID_SAMPLES if args.n is None else args.n, args.out or GRID_FILE
            model_dir = generate(args.model, out, count=count, seed=args.seed, version=args.version,
                                 scale=args.scale)
        else:
            if args.scale is not None:
                raise ValueError("--scale: only with --format grid (an export keeps the generator's size)")
            summary = export(args.model, args.out, args.format, count=args.n, per_class=args.per_class,
                             seed=args.seed, version=args.version)
    except (ModelNotFoundError, ValueError) as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.format == "grid":
        print(f"ganpipe: {count} samples of {model_dir} (seeds {args.seed}..{args.seed + count - 1}): "
              f"{os.path.abspath(out)}")
        return 0
    labels = ", ".join(f"{label}: {number}" for label, number in summary.labels.items())
    print(f"ganpipe: {summary.count} samples of {summary.model}"
          f"{' version ' + summary.version if summary.version else ''} (seeds {summary.first_seed}.."
          f"{summary.first_seed + summary.count - 1}; images per label {labels}) in {summary.seconds:.1f}s")
    from ganpipe.components.synthetic_example_gen.export import SPLIT_DIR

    where = os.path.join(summary.out, SPLIT_DIR) if args.format == "tfrecord" else summary.out
    print(f"ganpipe: {args.format}: {where} ({summary.files} files)")
    return 0


# --- Kubeflow Pipelines: compile, submit, schedule (docs/deploy.md) -------------------------------

def _add_cluster_commands(commands: argparse._SubParsersAction) -> None:
    compile_ = commands.add_parser("compile", help="write the pipeline for Kubeflow Pipelines (KubeflowV2DagRunner)")
    submit = commands.add_parser("submit", help="start one Kubeflow Pipelines run (compiles first)")
    schedule = commands.add_parser("schedule", help="create a recurring Kubeflow Pipelines run (compiles first)")
    for command in (compile_, submit, schedule):
        command.add_argument("--config", help="YAML file mapping onto the config (its `kubeflow` section)")
        command.add_argument("--data", help="input as the cluster sees it: gs://..., a path on the pipeline-root "
                                            "volume, or 'digits' (baked into the image)")
        command.add_argument("--format", help="auto (default), folder, idx, npz, tfrecord")
        command.add_argument("--output", help="local folder; compiled files go to <output>/kubeflow/")
        command.add_argument("--steps", type=_steps, help=STEPS_HELP)
        command.add_argument("--image", help="container image (kubeflow.image), pinned by tag or digest")
        command.add_argument("--pipeline-root", help="kubeflow.pipeline_root: gs://BUCKET/PATH or a volume path")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="any config value, e.g. --set kubeflow.trainer_gpus=2 (repeatable)")
    for command in (submit, schedule):
        command.add_argument("--host", help="KFP endpoint (kubeflow.host), e.g. http://localhost:8080")
        command.add_argument("--package", help="submit this compiled .yaml instead of compiling")
        command.add_argument("--namespace", help="KFP multi-user namespace (profile); omit for single-user KFP")
        command.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                             help="a run-time parameter of the package, e.g. --param max_fid_over_floor=4 "
                                  "(names: docs/deploy.md; repeatable)")
    submit.add_argument("--run-name", help="display name of the run")
    schedule.add_argument("--cron", required=True,
                          help="5-field cron ('0 3 * * *', converted) or KFP's 6-field cron with seconds first")
    schedule.add_argument("--name", help="display name of the recurring run (default <pipeline_name>-schedule)")
    compile_.set_defaults(handler=_compile)
    submit.set_defaults(handler=_submit)
    schedule.set_defaults(handler=_schedule)


def _cluster_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = _overrides(args)
    named = {"kubeflow.image": args.image, "kubeflow.pipeline_root": args.pipeline_root,
             "kubeflow.host": getattr(args, "host", None)}
    overrides.update({key: value for key, value in named.items() if value is not None})
    return overrides


def _compile_for_cluster(args: argparse.Namespace):
    """(config, package path): the given --package, or a fresh compile into <output>/kubeflow/."""
    from ganpipe.kubeflow.runner import compile_pipeline

    config = load_config(args.config, _cluster_overrides(args))
    if getattr(args, "package", None):
        return config, args.package
    compiled = compile_pipeline(config, os.path.join(os.path.abspath(config.output_dir), "kubeflow"))
    print(f"ganpipe: compiled {compiled.package_path} (image {compiled.image}, "
          f"pipeline root {compiled.pipeline_root})")
    return config, compiled.package_path


def _compile(args: argparse.Namespace) -> int:
    try:
        _compile_for_cluster(args)
    except ConfigError as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _submit(args: argparse.Namespace) -> int:
    from ganpipe.kubeflow import client as kfp_client

    try:
        config = load_config(args.config, _cluster_overrides(args))
        kfp_client.validate_host(config.kubeflow.host)  # before compiling: fail in a second, not in twenty
        config, package = _compile_for_cluster(args)
        submitted = kfp_client.submit(
            package, config.kubeflow.host, config.kubeflow.experiment, config.kubeflow.pipeline_root,
            run_name=args.run_name, namespace=args.namespace, service_account=config.kubeflow.service_account,
            params=args.param)
    except (ConfigError, kfp_client.SubmitError) as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _print_submitted(submitted)


def _schedule(args: argparse.Namespace) -> int:
    from ganpipe.kubeflow import cron, client as kfp_client

    try:
        config = load_config(args.config, _cluster_overrides(args))
        cron.parse(args.cron)
        kfp_client.validate_host(config.kubeflow.host)
        config, package = _compile_for_cluster(args)
        submitted = kfp_client.schedule(
            package, config.kubeflow.host, args.cron, config.kubeflow.experiment, config.kubeflow.pipeline_root,
            job_name=args.name or f"{config.pipeline_name}-schedule", namespace=args.namespace,
            service_account=config.kubeflow.service_account, params=args.param)
    except (ConfigError, cron.CronError, kfp_client.SubmitError) as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _print_submitted(submitted)


def _print_submitted(submitted) -> int:
    if submitted.detail:
        print(f"ganpipe: {submitted.detail}")
    print(f"ganpipe: {submitted.kind} id: {submitted.id}")
    print(f"ganpipe: {submitted.kind}: {submitted.link}")
    return 0


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
    from ganpipe.components.image_example_gen.sources import IngestInputError
    from ganpipe.pipeline import inputs

    try:
        config = load_config(args.config, _overrides(args))
        _expand_local_paths(config)
        config.check_local_files()
        data = inputs.resolve(config)
        if not args.check:
            _make_output_dir(config.output_dir)
    except (ConfigError, IngestInputError) as error:
        print(f"ganpipe: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check:  # everything a run checks before TFX passed; nothing was written
        print(f"ganpipe: check passed: input: {data.summary}")
        print(f"ganpipe: check passed: output would be {config.output_dir}")
        return 0
    print(f"ganpipe: input: {data.summary}")
    print(f"ganpipe: output: {config.output_dir}")

    from ganpipe.cli import summary
    from ganpipe.pipeline import abandoned_runs
    from ganpipe.pipeline.local_runner import run_local

    started_ms = int(time.time() * 1000)
    started = time.monotonic()
    sweep = lambda: abandoned_runs.mark_abandoned(config.metadata_path, config.pipeline_root)  # noqa: E731
    with abandoned_runs.run_lock(config.output_dir, when_alone=sweep) as abandoned:
        if abandoned:
            print(f"ganpipe: MLMD: marked FAILED {len(abandoned)} execution(s) a killed run left RUNNING "
                  f"({', '.join(abandoned)})")
        try:
            run_local(config, data)
        except Exception as error:  # a component failed: one message, traceback kept in a file
            return _report_stop(error, config.output_dir)
    print(summary.summarize(config, started_ms, time.monotonic() - started))
    return 0


def _expand_local_paths(config) -> None:
    """``~`` and relative local paths made absolute once, so every component gets the path that was checked.

    Raises:
      ConfigError: output_dir is a URL: a local run keeps MLMD's database and the push on this machine.
    """
    if "://" in config.output_dir:
        raise ConfigError(f"output_dir {config.output_dir}: a local run writes MLMD's database and pushes on this "
                          "machine, so give a local folder (object storage is for kubeflow.pipeline_root)")
    config.output_dir = os.path.abspath(os.path.expanduser(config.output_dir))
    if config.push.serving_dir:
        config.push.serving_dir = os.path.abspath(os.path.expanduser(config.push.serving_dir))
    if config.train.checkpoint_dir and "://" not in config.train.checkpoint_dir:
        config.train.checkpoint_dir = os.path.abspath(os.path.expanduser(config.train.checkpoint_dir))


def _make_output_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:  # a file on the way, a link that loops, no permission, a name too long
        raise ConfigError(f"output_dir {path}: cannot create it: {error.strerror}") from None


def _report_stop(error: Exception, output_dir: str) -> int:
    """The data gate's message is the whole story; anything else also gets its traceback saved."""
    import traceback

    from ganpipe.components.data_gate.executor import DataGateError

    # Some runners fail with no message at all: a PortableRunner whose --job_endpoint does not answer raises
    # grpc.FutureTimeoutError() after --job_server_timeout (Beam 2.74, portable_runner.py). Name the type then.
    reason = str(error) if str(error).strip() else f"{type(error).__module__}.{type(error).__qualname__} (no message)"
    print(f"ganpipe: the pipeline stopped: {reason}", file=sys.stderr)
    if isinstance(error, DataGateError):
        print("ganpipe: nothing downstream of the data gate ran; nothing was pushed.", file=sys.stderr)
    else:
        trace_path = os.path.abspath(os.path.join(output_dir, "last_error.txt"))
        write_atomically(trace_path, "".join(traceback.format_exception(error)))
        print(f"ganpipe: full traceback: {trace_path}", file=sys.stderr)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
