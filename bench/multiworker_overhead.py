"""Multi-worker overhead: 2 local worker processes (MultiWorkerMirroredStrategy over loopback) vs 1.

Both train the same global batch on the same Fashion-MNIST TFRecords through
the same launcher (`trainer.launcher.launch`). Each side runs twice, a short
and a long run, and throughput is (extra steps x batch) / (extra seconds), so
process start-up, tracing and export cancel out. On one 2-core machine the two
workers share the cores, so this measures what the synchronisation costs, not
what a second machine would add.

    .venv/bin/python -m bench.multiworker_overhead [--steps 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import tempfile
import time

from bench.common import summarize, write_result
from bench.quality_per_compute import WORK_DIR, ingest_fashion_mnist


def timed_launch(cfg, train_files: list[str], workers: int) -> float:
    from trainer.launcher import launch

    work = tempfile.mkdtemp(prefix="ganpipe-bench-workers-")
    try:
        start = time.perf_counter()
        code = launch(train_files, os.path.join(work, "model"), os.path.join(work, "run"), cfg, workers=workers,
                      output=io.StringIO())
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"{workers} worker(s) failed with exit code {code}")
    return seconds


def main(argv: list[str] | None = None) -> dict:
    from trainer.config import TrainerConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="extra steps of the long run over the short one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(WORK_DIR, exist_ok=True)
    train_files = [os.path.join(ingest_fashion_mnist(WORK_DIR), "Split-train", "*")]
    base = TrainerConfig(image_size=28, batch_size=64, checkpoint_every=0, log_every=1000, sample_every=1000)
    short, long_ = 5, 5 + args.steps
    rates: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    for _ in range(args.repeats):
        for label, workers in (("1 worker", 1), ("2 workers", 2)):
            t_short = timed_launch(dataclasses.replace(base, steps=short, workers=workers), train_files, workers)
            t_long = timed_launch(dataclasses.replace(base, steps=long_, workers=workers), train_files, workers)
            extra = t_long - t_short
            if extra <= 0:  # start-up noise larger than the extra steps: no measurement, not infinity
                print(f"  {label}: long run not slower than short ({t_long:.1f}s vs {t_short:.1f}s); "
                      "discarded: use more --steps", flush=True)
                continue
            rates[label].append(args.steps * base.batch_size / extra)
    if not all(rates.values()):
        raise SystemExit("no valid measurement: start-up noise exceeded the extra steps; raise --steps")
    result = {
        "steps": args.steps, "repeats": args.repeats, "global_batch": base.batch_size, "image_size": 28,
        "images_per_second": {label: summarize(values) for label, values in rates.items()},
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
