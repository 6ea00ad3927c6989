"""Entry points: TFX Trainer's ``run_fn`` and the ``python -m ganpipe.trainer.task`` worker command.

Both do the same thing (train, export the generator, keep plots and logs), so
a TFX run, a local multi-worker run and a Kubeflow TFJob produce the same
artifacts. Which process does what:

- TF_CONFIG set (the local launcher or a TFJob started this process): train
  as that worker of the cluster; only the chief exports.
- no TF_CONFIG and ``train.workers > 1``: start that many local workers
  (trainer/local_workers.py) and wait for them. This is how ``run_fn`` honours
  ``workers`` inside TFX's in-process Trainer.
- otherwise: train in this process (MirroredStrategy when it sees several GPUs).

Nothing here imports TFX: ``run_fn`` reads only the plain attributes of the
FnArgs it is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import warnings
from typing import Any, Mapping, Sequence

from ganpipe.trainer.config import TrainerConfig
from ganpipe.trainer.cluster import cluster_size, tf_config_from_env

LOGGER = logging.getLogger(__name__)
CUSTOM_CONFIG_KEY = "trainer"  # custom_config = {"trainer": TrainerConfig.to_dict()}
EXIT_BAD_INPUT = 2


class WorkersFailedError(RuntimeError):
    """A local multi-worker run ended with a failed worker (its output was streamed above)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def config_from_custom_config(custom_config: Mapping[str, Any] | None) -> TrainerConfig:
    """TFX's custom_config -> TrainerConfig (defaults when absent); unknown keys are an error."""
    values = (custom_config or {}).get(CUSTOM_CONFIG_KEY, {})
    return TrainerConfig.from_dict(values or {})


def train(cfg: TrainerConfig, train_files: Sequence[str], model_dir: str, run_dir: str) -> None:
    """The one way in to training, for ``run_fn``, the worker command and ``ganpipe train``.

    Decides, once, which processes train: with TF_CONFIG this process is one
    worker of that cluster; without it and ``cfg.workers > 1`` it starts that
    many local worker processes (``local_workers.launch``) and waits; else it
    trains itself (MirroredStrategy when it sees several GPUs). Resumes from a
    checkpoint when one exists; the chief writes the SavedModel to model_dir.

    Raises:
      WorkersFailedError: a local worker process failed (its output was streamed).
      NoDataError, TrainingDataError: unusable input.
    """
    if cfg.workers > 1 and not tf_config_from_env():
        from ganpipe.trainer.local_workers import launch

        code = launch(list(train_files), model_dir, run_dir, cfg)
        if code != 0:
            raise WorkersFailedError(f"training on {cfg.workers} local workers failed (exit code {code}); "
                                     "see the [worker-i] lines above", exit_code=code)
        return
    tasks = cluster_size(tf_config_from_env())
    if tf_config_from_env() and tasks != cfg.workers:
        LOGGER.warning("TF_CONFIG names %d task(s) but train.workers=%d; the cluster in TF_CONFIG wins",
                       tasks, cfg.workers)
    # The strategy first: MultiWorkerMirroredStrategy must set up collectives before any other TF work.
    # Imported here so `--help` and config errors answer without loading TensorFlow.
    from ganpipe.trainer.distributed import barrier, strategy_from_environment
    from ganpipe.trainer.export import export_generator
    from ganpipe.trainer.train import train_run

    strategy = strategy_from_environment()
    result = train_run(cfg, list(train_files), run_dir, strategy)
    if result.chief:
        export_generator(result.generator, result.cfg, model_dir, result.class_names)
        LOGGER.info("exported generator to %s; plots and logs in %s", model_dir, run_dir)
    # Workers leave together: a worker exiting while the chief still exports would see the
    # coordination service's heartbeats fail and stall on shutdown.
    barrier(strategy)


def config_from_fn_args(fn_args: Any) -> TrainerConfig:
    """The Trainer's config: custom_config's, with the steps of TFX's ``train_args`` when it sets them.

    ``train_args`` is what a Kubeflow run may change without recompiling (the
    ``train_args`` runtime parameter, TFX's own convention as in its penguin
    Kubeflow example); the pipeline compiles it from ``train.steps``.
    """
    cfg = config_from_custom_config(fn_args.custom_config)
    steps = getattr(fn_args, "train_steps", None)
    if steps and steps != cfg.steps:
        cfg = dataclasses.replace(cfg, steps=int(steps))  # __post_init__ checks the range
    return cfg


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry: uses fn_args.train_files, serving_model_dir, model_run_dir, custom_config, train_steps."""
    train(config_from_fn_args(fn_args), fn_args.train_files, fn_args.serving_model_dir, fn_args.model_run_dir)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ganpipe.trainer.task", description=__doc__.splitlines()[0])
    parser.add_argument("--train-files", nargs="+", required=True, metavar="PATTERN",
                        help="TFRecord glob(s), e.g. '<examples>/Split-train/*'")
    parser.add_argument("--model-dir", required=True, help="where the serving SavedModel is written")
    parser.add_argument("--run-dir", required=True, help="where TensorBoard logs, plots and checkpoints go")
    parser.add_argument("--config-json", default="{}",
                        help="TrainerConfig fields as a JSON object (TrainerConfig.to_dict() keys)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganpipe.trainer.task``: exit 0 trained, 1 a worker failed, 2 bad config or input."""
    from ganpipe.trainer.local_workers import die_with_launcher

    die_with_launcher()  # no-op unless the local launcher started this process
    args = _parse_args(argv)
    try:
        values = json.loads(args.config_json)
        if not isinstance(values, dict):
            raise ValueError("--config-json must be a JSON object")
        cfg = TrainerConfig.from_dict(values)
    except ValueError as error:  # json.JSONDecodeError is a ValueError too
        print(f"trainer: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging()
    return train_with_exit_code(cfg, args.train_files, args.model_dir, args.run_dir)


def configure_logging() -> None:
    """INFO progress lines on stderr; TF's and absl's per-collective and per-save chatter hidden."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)
    for chatty in ("tensorflow", "absl"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def train_with_exit_code(cfg: TrainerConfig, train_files: Sequence[str], model_dir: str, run_dir: str) -> int:
    """:func:`train` for command lines: 0 trained, 2 unusable input (message printed),
    a failed local worker's code otherwise."""
    from ganpipe.trainer.data import NoDataError
    from ganpipe.trainer.train import TrainingDataError

    try:
        train(cfg, train_files, model_dir, run_dir)
    except (NoDataError, TrainingDataError) as error:
        print(f"trainer: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WorkersFailedError as error:
        return error.exit_code
    except FloatingPointError as error:  # the divergence stop: its message says what to change
        print(f"trainer: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
