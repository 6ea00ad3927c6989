"""GanEvaluator: scores a generator by FID against real images and blesses it or not."""

from ganpipe.components.gan_evaluator.component import GanEvaluator

__all__ = ["GanEvaluator"]
