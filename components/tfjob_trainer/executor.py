"""Trainer executor for a cluster: train N > 1 workers as a TFJob, hand back the chief's export.

Used as the stock Trainer's `custom_executor_spec` (pipeline/pipeline.py
picks it on a cluster when train.workers > 1; that is the only place that
decides it), so inputs, outputs,
custom_config and MLMD lineage are the stock Trainer's. The only difference
is where training runs: in a TFJob instead of this process.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.components.trainer.executor import GenericExecutor
from tfx.dsl.io import fileio

from ganpipe.components.tfjob_trainer import spec
from ganpipe.components.tfjob_trainer.api import KubernetesTFJobApi
from ganpipe.components.tfjob_trainer.launcher import cancel_on_sigterm, run_tfjob
from ganpipe.components.tfjob_trainer.settings import TFJobSettings
from ganpipe.trainer.task import config_from_fn_args

SAVED_MODEL_FILE = "saved_model.pb"


class Executor(GenericExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
        trainer_config = config_from_fn_args(fn_args)
        settings = TFJobSettings.from_custom_config(fn_args.custom_config)
        manifest = spec.build_tfjob(
            name=spec.job_name(settings.job_prefix, fn_args.serving_model_dir),
            settings=settings,
            trainer_config=trainer_config,
            workers=trainer_config.workers,
            train_files=fn_args.train_files,
            model_dir=fn_args.serving_model_dir,
            run_dir=fn_args.model_run_dir,
        )
        with cancel_on_sigterm():
            run_tfjob(KubernetesTFJobApi.from_environment(), manifest, settings.timeout_s, settings.poll_s,
                      echo=logging.info)
        require_export(fn_args.serving_model_dir)
        logging.info("TFJob %s trained the generator; Model artifact: %s",
                     manifest["metadata"]["name"], fn_args.serving_model_dir)


def require_export(serving_model_dir: str) -> None:
    """The chief's SavedModel must be where TFX expects the Model artifact, or the step fails here."""
    path = os.path.join(serving_model_dir, SAVED_MODEL_FILE)
    if not fileio.exists(path):
        raise RuntimeError(f"the TFJob succeeded but no SavedModel is at {path}: the chief (worker 0) must export "
                           "to --model-dir, and the workers must see the same storage as this pod "
                           "(same PVC at the same mount path, or object storage)")
