"""ServingPusher: atomic, integer-versioned pushes to a TF Serving model directory."""

from ganpipe.components.serving_pusher.component import ServingPusher

__all__ = ["ServingPusher"]
