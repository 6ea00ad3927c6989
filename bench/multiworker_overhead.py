"""Multi-worker overhead: 2 local worker processes (MultiWorkerMirroredStrategy over loopback) vs 1.

Both train the same global batch on the same Fashion-MNIST TFRecords through
the same launcher (`ganpipe.trainer.local_workers.launch`). Throughput is read from the
chief's own log lines ("step N/M ... X steps/s", one per `--interval` steps):
the first interval holds tracing and the first collective handshake and is
dropped, so process start-up, tracing and export never enter the figure. Each
repeat gives one rate per side (steady steps over steady seconds); sides
alternate. On one 2-core machine the two workers share the cores, so this
measures what the synchronisation costs, not what a second machine would add.

    .venv/bin/python -m bench.multiworker_overhead [--steps 100] [--interval 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import shutil
import tempfile

from bench.common import summarize, write_result
from bench.quality_per_compute import WORK_DIR, ingest_fashion_mnist

# ganpipe.trainer.train's progress line, as the launcher prefixes it for the chief.
CHIEF_RATE = re.compile(r"^\[worker-0\] .*\bstep (\d+)/\d+ .* ([0-9.]+) steps/s$", re.MULTILINE)


def steady_rate(log: str) -> float:
    """Steps/s over every logged interval but the first (tracing), as total steps / total seconds."""
    points = [(int(step), float(rate)) for step, rate in CHIEF_RATE.findall(log.replace("\r", "\n"))]
    if not points:
        raise RuntimeError("no progress lines from the chief; did the log format change?\n" + log[-2000:])
    steady, previous = [], points[0][0]
    for step, rate in points[1:]:
        steady.append((step - previous, rate))
        previous = step
    if not steady:
        raise RuntimeError("only one logged interval: raise --steps above --interval")
    return sum(steps for steps, _ in steady) / sum(steps / rate for steps, rate in steady)


def launch_and_measure(cfg, train_files: list[str], workers: int) -> float:
    from ganpipe.trainer.local_workers import launch

    work = tempfile.mkdtemp(prefix="ganpipe-bench-workers-")
    log = io.StringIO()
    try:
        code = launch(train_files, os.path.join(work, "model"), os.path.join(work, "run"), cfg, workers=workers,
                      output=log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"{workers} worker(s) failed with exit code {code}:\n{log.getvalue()[-3000:]}")
    return steady_rate(log.getvalue())


def main(argv: list[str] | None = None) -> dict:
    from ganpipe.trainer.config import TrainerConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per run (the first interval is dropped)")
    parser.add_argument("--interval", type=int, default=20, help="steps per logged (measured) interval")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(WORK_DIR, exist_ok=True)
    train_files = [os.path.join(ingest_fashion_mnist(WORK_DIR), "Split-train", "*")]
    base = TrainerConfig(image_size=28, channels=1, batch_size=64, steps=args.steps, checkpoint_every=0,
                         log_every=args.interval, sample_every=args.steps)
    rates: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    for repeat in range(args.repeats):
        for label, workers in (("1 worker", 1), ("2 workers", 2)):
            steps_per_second = launch_and_measure(dataclasses.replace(base, workers=workers), train_files, workers)
            rates[label].append(steps_per_second * base.batch_size)
            print(f"  repeat {repeat}: {label:9s} {rates[label][-1]:7.1f} images/s", flush=True)
    result = {
        "steps": args.steps, "interval": args.interval, "repeats": args.repeats, "global_batch": base.batch_size,
        "image_size": 28, "images_per_second": {label: summarize(values) for label, values in rates.items()},
    }
    result["ratio_two_to_one"] = (result["images_per_second"]["2 workers"]["median"]
                                  / result["images_per_second"]["1 worker"]["median"])
    print(f"multi-worker overhead, global batch {base.batch_size}, median of {args.repeats} (images/s):")
    for label, block in result["images_per_second"].items():
        print(f"  {label:10s} {block['median']:8.1f}  [{block['min']:.1f}-{block['max']:.1f}]")
    print(f"  2 workers / 1 worker = {result['ratio_two_to_one']:.2f} (same 2 cores: below 1 is the sync cost)")
    print("wrote", write_result("multiworker_overhead", result))
    return result


if __name__ == "__main__":
    main()
