"""Which tf.distribute strategy a process trains under, and what its replicas share.

The rule (docs/design.md, "Trainer"): a TF_CONFIG naming several workers means
MultiWorkerMirroredStrategy (each worker one process; the local launcher or a
TFJob sets TF_CONFIG); several local GPUs mean MirroredStrategy; anything
else the default strategy. Worker 0 is the chief: only it writes the things a
person or the pipeline reads (export, summaries, samples, checkpoints).

Random draws that must not depend on the replica count (the generator's
noise, dropout masks, gradient-penalty mixing) are made for the whole GLOBAL
batch from a stateless seed, and each replica keeps its own rows
(:func:`replica_rows`): N replicas then see exactly the numbers one replica
of the full batch would.
"""

from __future__ import annotations

import logging
from typing import Callable

import tensorflow as tf

from ganpipe.trainer.cluster import cluster_size, tf_config_from_env

LOGGER = logging.getLogger(__name__)


def strategy_from_environment() -> tf.distribute.Strategy:
    """MultiWorkerMirrored (TF_CONFIG, > 1 task), Mirrored (> 1 local GPU), else the default strategy.

    Call it before anything else touches TensorFlow's devices in this
    process: MultiWorkerMirroredStrategy must configure collectives at start.
    """
    if cluster_size(tf_config_from_env()) > 1:
        strategy, name = tf.distribute.MultiWorkerMirroredStrategy(), "MultiWorkerMirroredStrategy"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        strategy, name = tf.distribute.MirroredStrategy(), "MirroredStrategy"
    else:
        strategy, name = tf.distribute.get_strategy(), "default strategy"
    LOGGER.info("strategy %s: %d replica(s) in sync", name, strategy.num_replicas_in_sync)
    return strategy


def task_of(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """(task type, index) of this process; ("worker", 0) outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "worker", 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief task, or worker 0 when the cluster has no separate chief (MWMS' convention)."""
    task_type, index = task_of(strategy)
    if task_type == "chief":
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and index == 0 and not has_chief


def replica_rows(draw: Callable[[tf.Tensor], tf.Tensor], local_rows: tf.Tensor) -> tf.Tensor:
    """This replica's rows of ``draw(global_rows)``: the same numbers whatever the replica count.

    ``draw(rows)`` must be deterministic (a stateless op). Replica r of n
    keeps rows [r * local_rows, (r + 1) * local_rows); the data pipeline
    gives replica r the same rows of each global batch (trainer/data.py).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return draw(local_rows)
    first = local_rows * tf.cast(context.replica_id_in_sync_group, local_rows.dtype)
    return draw(local_rows * replicas)[first:first + local_rows]


def same_on_all_replicas(strategy: tf.distribute.Strategy, value: int) -> bool:
    """Whether every replica holds ``value`` (sum and sum of squares agree: zero variance).

    The check workers run after restoring a checkpoint, so a worker that did
    not see the chief's checkpoint directory fails at once instead of
    training from another step. ``strategy.reduce`` has no MIN/MAX.
    """
    @tf.function
    def total() -> tf.Tensor:
        per_replica = strategy.run(lambda: tf.constant([value, value * value], tf.float64))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    total = total().numpy()
    replicas = strategy.num_replicas_in_sync
    return bool(total[0] == replicas * value and total[1] == replicas * value * value)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker got here (a collective); immediate with one replica."""
    if strategy.num_replicas_in_sync > 1:
        same_on_all_replicas(strategy, 0)
