"""Kubeflow Pipelines: compile the pipeline for KFP (TFX KubeflowV2DagRunner), submit runs, schedule them."""
