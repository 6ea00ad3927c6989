"""TFJob trainer: the stock TFX Trainer, whose executor runs N > 1 workers as a Kubeflow TFJob.

TFX 1.16's Trainer trains in its own process only. On a cluster, this
executor turns the same `python -m ganpipe.trainer.task` worker command the local
multi-worker launcher runs into a kubeflow.org/v1 TFJob, waits for it, and
hands the chief's exported generator to TFX as the Trainer's Model artifact.

Modules, one job each (only `api` and `executor` touch the network or TFX):
  settings  the plain-value knobs passed through the Trainer's custom_config
  spec      the TFJob manifest (pure)
  status    what a TFJob's status says (pure)
  api       the Kubernetes calls (kubernetes client)
  launcher  create -> wait -> surface failures -> delete (against `api`)
  executor  the TFX executor wiring them together
"""
