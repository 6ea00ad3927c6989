# syntax=docker/dockerfile:1
# The image every Kubeflow Pipelines step, TFJob worker and the CronJob run.
#
#   docker build -t REGISTRY/ganpipe:0.1.0 .
#
# Base: the TFX 1.16 release image (TensorFlow 2.16, Python 3.10, TFX's
# Kubeflow V2 entrypoint `python -m tfx.orchestration.kubeflow.v2.container.
# kubeflow_v2_run_executor`). The compiled pipeline calls
# `python -m ganpipe.kubeflow.entrypoint`, which types the input artifacts
# open-source KFP hands over untyped and then runs TFX's. On top of it
# the exact working set CI tested (requirements/constraints.txt), ganpipe
# itself, and the files the compiled pipeline points at (/opt/ganpipe:
# curated schemas, bundled digits). Runs as UID 10001, never root.
FROM tensorflow/tfx:1.16.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    HOME=/tmp

WORKDIR /opt/ganpipe/src

# The pinned set first: this layer is rebuilt only when the constraints change.
COPY requirements/constraints.txt requirements/constraints.txt
RUN python -m pip install -r requirements/constraints.txt

COPY pyproject.toml setup.py README.md ./
COPY ganpipe ganpipe
COPY pipeline pipeline
COPY components components
COPY trainer trainer
COPY evaluation evaluation
COPY cli cli
COPY kubeflow kubeflow
COPY serving serving
RUN python -m pip install --no-deps -c requirements/constraints.txt . \
 && python -c "import tfx.v1, tensorflow_data_validation, tfx_bsl.beam, ganpipe.pipeline.pipeline, ganpipe.cli.main, ganpipe.kubeflow.entrypoint" \
 && python -m ganpipe.kubeflow.runner bake /opt/ganpipe

# Non-root. KFP's launcher stages artifacts under /gcs, /minio and /s3 and
# writes outputs under /tmp, so those belong to the runtime user.
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin ganpipe \
 && mkdir -p /gcs /minio /s3 \
 && chown 10001:0 /gcs /minio /s3 \
 && chmod 0775 /gcs /minio /s3
USER 10001
WORKDIR /tmp

# A batch image: Kubernetes (probes, deadlines, the TFJob operator) watches
# its processes; there is no long-running service to health-check.
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["ganpipe", "--help"]
