# syntax=docker/dockerfile:1
# The image every Kubeflow Pipelines step, TFJob worker and the CronJob run,
# and the image Beam workers run for the Beam steps on a distributed runner
# (docs/deploy.md, "Beam steps on a distributed runner").
#
#   docker build -t REGISTRY/ganpipe:0.1.0 .                              # default target
#   docker build --target beam-worker -t REGISTRY/ganpipe:0.1.0-beam .    # same layers, Beam's boot as ENTRYPOINT
#
# Base: the TFX 1.16 release image (TensorFlow 2.16, Python 3.10, TFX's
# Kubeflow V2 entrypoint `python -m tfx.orchestration.kubeflow.v2.container.
# kubeflow_v2_run_executor`). The compiled pipeline calls
# `python -m ganpipe.kubeflow.entrypoint`, which types the input artifacts
# open-source KFP hands over untyped and then runs TFX's. On top of it
# the exact working set CI tested (requirements/constraints.txt), ganpipe
# itself, and the files the compiled pipeline points at (/opt/ganpipe:
# curated schemas, bundled digits). Runs as UID 10001, never root.
FROM tensorflow/tfx:1.16.0 AS ganpipe

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

# Beam's SDK harness launcher (/opt/apache/beam/boot) of the apache-beam release
# pinned in requirements/constraints.txt. The TFX base image carries the one of
# the Beam it was built with (tfx/tools/docker/Dockerfile, v1.16.0: "Copy from
# image matching installed version of 'apache-beam'"), older than our pin; the
# SDK harness must be the Beam version the pipeline was submitted with.
# tests/test_beam_runner_recipes.py keeps this tag equal to the pin.
COPY --from=apache/beam_python3.10_sdk:2.74.0 /opt/apache/beam /opt/apache/beam
# boot otherwise creates a venv under /opt/apache/beam-venv for each worker,
# which UID 10001 cannot write (apache/beam sdks/python/container/boot.go).
ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1

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

# The Beam worker: the same image with Beam's boot as its ENTRYPOINT, which is
# how Dataflow (--sdk_container_image) and a portable runner's DOCKER
# environment start an SDK harness container. Kubernetes pods, the compiled
# KFP steps and TFJob workers all set their own command, so they are unaffected.
FROM ganpipe AS beam-worker
ENTRYPOINT ["/opt/apache/beam/boot"]
CMD []

# The default target (a plain `docker build .`) is the pipeline image.
FROM ganpipe
