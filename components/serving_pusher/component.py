"""ServingPusher: TFX's Pusher with atomic, integer-numbered versions and retention.

It is the stock ``Pusher`` component (same spec, inputs, PushedModel output
and properties, so MLMD lineage and everything that reads ``pushed`` /
``pushed_destination`` / ``pushed_version`` keeps working) with its executor
swapped, as TFX documents for custom push targets.
"""

from __future__ import annotations

from tfx import types
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2

from ganpipe.components.serving_pusher import executor


class ServingPusher(Pusher):
    """Pushes a blessed model to ``<serving_base>/<N>/`` (N = highest existing + 1), keeping the
    newest ``keep_versions`` (0 keeps all). ``serving_base`` is what TF Serving's
    ``model_base_path`` points at: ``<serving_dir>/<model_name>``."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel, *, serving_base: str,
                 keep_versions: int = 0):
        if keep_versions < 0:
            raise ValueError(f"keep_versions={keep_versions}: must be >= 0 (0 keeps all)")
        super().__init__(
            model=model,
            model_blessing=model_blessing,
            push_destination=pusher_pb2.PushDestination(
                filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_base)),
            custom_config={executor.KEEP_VERSIONS_KEY: int(keep_versions)},
        )
