"""Entry points: TFX Trainer's ``run_fn`` and the ``python -m trainer.task`` command.

Both do the same thing (train, export the generator, keep plots and logs), so
a TFX run and a stand-alone worker (a later Kubeflow TFJob) produce the same
artifacts. Nothing here imports TFX: ``run_fn`` reads only the plain
attributes of the FnArgs it is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Mapping, Sequence

from trainer.config import TrainerConfig

LOGGER = logging.getLogger(__name__)
CUSTOM_CONFIG_KEY = "trainer"  # custom_config = {"trainer": TrainerConfig.to_dict()}


def config_from_custom_config(custom_config: Mapping[str, Any] | None) -> TrainerConfig:
    """TFX's custom_config -> TrainerConfig (defaults when absent); unknown keys are an error."""
    values = (custom_config or {}).get(CUSTOM_CONFIG_KEY, {})
    return TrainerConfig.from_dict(values or {})


def train_and_export(cfg: TrainerConfig, train_files: Sequence[str], model_dir: str, run_dir: str) -> None:
    """Trains, writes the serving SavedModel to model_dir and plots/TensorBoard logs to run_dir."""
    # Imported here so `--help` and config errors answer without loading TensorFlow.
    from trainer.export import export_generator
    from trainer.train import train

    generator = train(cfg, list(train_files), run_dir)
    export_generator(generator, cfg, model_dir)
    LOGGER.info("exported generator to %s; plots and logs in %s", model_dir, run_dir)


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry: uses fn_args.train_files, serving_model_dir, model_run_dir, custom_config."""
    cfg = config_from_custom_config(fn_args.custom_config)
    train_and_export(cfg, fn_args.train_files, fn_args.serving_model_dir, fn_args.model_run_dir)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.task", description=__doc__.splitlines()[0])
    parser.add_argument("--train-files", nargs="+", required=True, metavar="PATTERN",
                        help="TFRecord glob(s), e.g. '<examples>/Split-train/*'")
    parser.add_argument("--model-dir", required=True, help="where the serving SavedModel is written")
    parser.add_argument("--run-dir", required=True, help="where TensorBoard logs and plots are written")
    parser.add_argument("--config-json", default="{}",
                        help="TrainerConfig fields as a JSON object (TrainerConfig.to_dict() keys)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        values = json.loads(args.config_json)
        if not isinstance(values, dict):
            raise ValueError("--config-json must be a JSON object")
        cfg = TrainerConfig.from_dict(values)
    except ValueError as error:  # json.JSONDecodeError is a ValueError too
        print(f"trainer: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from trainer.data import NoDataError

    try:
        train_and_export(cfg, args.train_files, args.model_dir, args.run_dir)
    except NoDataError as error:
        print(f"trainer: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
