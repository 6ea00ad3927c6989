"""Orchestration overhead: a whole local run's wall time minus its components' own time.

Runs `ganpipe run` (LocalDagRunner, real MLMD) as a user would, then reads
each component execution's span from MLMD (registered -> published). What
is left of the wall time is start-up (imports), pipeline construction and
the runner's bookkeeping between components: the price of TFX on a laptop.

    .venv/bin/python -m bench.orchestration_overhead [--repeats 3] [--steps 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from bench.common import summarize, write_result


def component_seconds(metadata_path: str) -> dict[str, float]:
    """Seconds each execution spent between registration and its last update, by component type."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    types = {t.id: t.name for t in store.get_execution_types()}
    spans: dict[str, float] = {}
    for execution in store.get_executions():
        name = types[execution.type_id].split(".")[-1]
        spans[name] = spans.get(name, 0.0) + (execution.last_update_time_since_epoch
                                              - execution.create_time_since_epoch) / 1000.0
    return spans


def one_run(steps: int) -> dict:
    work = tempfile.mkdtemp(prefix="ganpipe-bench-orchestration-")
    try:
        command = [os.path.join(os.path.dirname(sys.executable), "ganpipe"), "run", "--output", work,
                   "--steps", str(steps)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        wall = time.perf_counter() - start
        spans = component_seconds(os.path.join(work, "metadata.sqlite"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    inside = sum(spans.values())
    return {"wall_seconds": wall, "component_seconds": spans, "overhead_seconds": wall - inside}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50, help="training steps per run (keep small: it is overhead we measure)")
    args = parser.parse_args(argv)
    runs = [one_run(args.steps) for _ in range(args.repeats)]
    result = {
        "steps": args.steps,
        "repeats": args.repeats,
        "wall_seconds": summarize([r["wall_seconds"] for r in runs]),
        "overhead_seconds": summarize([r["overhead_seconds"] for r in runs]),
        "overhead_share": summarize([r["overhead_seconds"] / r["wall_seconds"] for r in runs]),
        "component_seconds_last_run": runs[-1]["component_seconds"],
    }
    print(f"local pipeline on digits, {args.steps} steps, median of {args.repeats}:")
    print(f"  wall {result['wall_seconds']['median']:.1f}s, components {result['wall_seconds']['median'] - result['overhead_seconds']['median']:.1f}s, "
          f"overhead {result['overhead_seconds']['median']:.1f}s ({result['overhead_share']['median']:.0%})")
    for name, seconds in sorted(result["component_seconds_last_run"].items(), key=lambda kv: -kv[1]):
        print(f"    {name:28s} {seconds:6.1f}s")
    print("wrote", write_result("orchestration_overhead", result))
    return result


if __name__ == "__main__":
    main()
