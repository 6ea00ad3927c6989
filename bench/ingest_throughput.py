"""Ingest throughput: ImageExampleGen (Beam) versus a plain sequential writer doing the same work.

The plain writer is the loop a user would write by hand around the same
per-image code: read each file, decode, check and prepare it
(`validation.validate_image`: Pillow's full decode, TensorFlow's stricter
decode of PNG/JPEG, EXIF, alpha, crop, Lanczos resize, PNG encode), hash it
and write the contract's tf.Example to one GZIP TFRecord file. It writes the
same records as ImageExampleGen (checked on the first repeat, each record
re-serialized in protobuf's deterministic map order), so the ratio is what
Beam and our pipeline's structure cost or gain.

`plain_writers_2_processes_ceiling` runs the plain loop in 2 processes, each
on half the files, timed after their imports: what 2 processes can reach on
this machine with no framework at all.

ImageExampleGen runs on Beam's DirectRunner in one process (in-memory), and
with 2 workers as threads and as processes. Beam's start-up (building,
translating and launching the pipeline; workers for multi-processing) is
timed separately on a 1-image folder and reported next to the totals:
`steady_images_per_second` is images / (total - start-up).

Datasets: Fashion-MNIST written as 60,000 28x28 PNG files (stored at 32x32
grey), and the 3,786 64x64 RGBA emoji of ../shared/data/emoji-twitter-64
(stored at 64x64 RGB over white).

    .venv/bin/python -m bench.ingest_throughput [--images 60000] [--repeats 3] [--datasets fashion-mnist emoji]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import tempfile
import time

from PIL import Image

from bench.common import summarize, timed, write_result

FASHION_MNIST_IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
EMOJI_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                            "emoji-twitter-64")
# (stored size, channels) per dataset: what `auto` decides for them (tests/test_pixels.py checks the rule).
STORED_SHAPE = {"fashion-mnist": (32, 1), "emoji": (64, 3)}

CEILING = "plain_writers_2_processes_ceiling"
VARIANTS = {
    "plain_sequential_writer": None,
    CEILING: None,
    "image_example_gen_in_memory": [],
    "image_example_gen_2_threads": ["--direct_running_mode=multi_threading", "--direct_num_workers=2"],
    "image_example_gen_2_processes": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def write_png_folder(folder: str, count: int) -> None:
    """The first `count` Fashion-MNIST training images as PNG files."""
    from ganpipe.components.image_example_gen.arrays import inspect_idx, load_array_file

    images = load_array_file(inspect_idx(FASHION_MNIST_IMAGES)).images[:count]
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, f"{index:06d}.png"))


def _ingest_config(dataset: str):
    from ganpipe.components.image_example_gen.config import IngestConfig

    size, channels = STORED_SHAPE[dataset]
    return IngestConfig(eval_fraction=0.1, image_size=size, channels=channels, convert_channels=True)


def plain_writer(folder: str, output: str, dataset: str, part: int = 0, parts: int = 1) -> None:
    """The sequential baseline: one loop, one process, the same per-image work and records.

    With ``parts`` > 1 it writes every parts-th file from ``part`` on (the machine's ceiling, below)."""
    import tensorflow as tf

    from ganpipe.components.image_example_gen import example, sources, validation

    config = _ingest_config(dataset)
    preparation = config.preparation(config.image_size, config.channels)
    plan = sources.plan_inputs(folder, sources.FOLDER, config.labels_from_subfolders)
    os.makedirs(output, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type=example.TFRECORD_COMPRESSION)
    with tf.io.TFRecordWriter(os.path.join(output, f"data-{part}.tfrecord.gz"), options) as writer:
        for item in plan.items[part::parts]:
            with open(item.path, "rb") as handle:
                data = handle.read()
            check, prepared = validation.validate_image(data, preparation, config.converts)
            if not check.ok:
                continue
            writer.write(example.encode_example(prepared, preparation.size, preparation.size, preparation.channels,
                                                item.label, item.path, hashlib.sha256(data).hexdigest()))


def _timed_part(folder: str, output: str, dataset: str, part: int, parts: int) -> float:
    """Seconds one process spends on its part, after its imports (so start-up is left out, as in `steady_*`)."""
    import tensorflow  # noqa: F401 - imported before the clock starts

    return timed(lambda: plain_writer(folder, output, dataset, part, parts))


def plain_writers_in_parallel(folder: str, output: str, dataset: str, processes: int = 2) -> float:
    """The machine's ceiling for `processes` processes: the plain loop in each on its share of the files, no
    Beam; returns the slowest one's seconds. Two cores that share caches and memory bandwidth (or a host)
    give less than 2x even here, and no runner can beat this."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        seconds = pool.starmap(_timed_part, [(folder, output, dataset, part, processes) for part in range(processes)])
    return max(seconds)


def image_example_gen(folder: str, output: str, beam_pipeline_args: list[str], dataset: str) -> None:
    from tfx.types import standard_artifacts

    from ganpipe.components.image_example_gen.executor import Executor
    from ganpipe.pipeline.local_runner import temp_dir_of_this_run

    examples = standard_artifacts.Examples()
    examples.uri = output
    properties = {"input_base": folder, "data_format": "folder",
                  "config": json.dumps(_ingest_config(dataset).to_dict())}
    with temp_dir_of_this_run():  # TFX's sdist for non-empty Beam args (built and timed, as a pipeline step does)
        Executor(Executor.Context(beam_pipeline_args=beam_pipeline_args)).Do({}, {"examples": [examples]}, properties)


def _records(output: str) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(output, "**", "*.gz"), recursive=True))
    # Re-serialized deterministically: protobuf does not fix the order of a map's entries on the wire.
    return sorted(tf.train.Example.FromString(record.numpy()).SerializeToString(deterministic=True)
                  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _prepare(dataset: str, work: str, images: int) -> tuple[str, int]:
    """(folder, image count) for a dataset, and a 1-image folder beside it for timing Beam's start-up."""
    if dataset == "fashion-mnist":
        folder = os.path.join(work, "fashion-mnist")
        write_png_folder(folder, images)
    else:
        folder = os.path.abspath(EMOJI_FOLDER)
    first = sorted(glob.glob(os.path.join(folder, "**", "*.png"), recursive=True))[0]
    one = os.path.join(work, f"{dataset}-one")
    os.makedirs(one, exist_ok=True)
    shutil.copy(first, os.path.join(one, "only.png"))
    count = len(glob.glob(os.path.join(folder, "**", "*.png"), recursive=True))
    return folder, count


def run_dataset(dataset: str, images: int, repeats: int, work: str) -> dict:
    folder, count = _prepare(dataset, work, images)
    one = os.path.join(work, f"{dataset}-one")
    # Warm: TensorFlow, Beam and TFX imported and one image through the plain loop before any clock starts.
    plain_writer(one, os.path.join(work, "warm-up"), dataset)
    image_example_gen(one, os.path.join(work, "warm-up-beam"), [], dataset)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    startup: dict[str, list[float]] = {name: [] for name, args in VARIANTS.items() if args is not None}
    same_records = None
    for repeat in range(repeats):  # interleaved, so drift hits every variant alike
        outputs = {}
        for name, beam_args in VARIANTS.items():
            output = os.path.join(work, f"out-{dataset}-{name}-{repeat}")
            if name == CEILING:
                seconds[name].append(plain_writers_in_parallel(folder, output, dataset))
            elif beam_args is None:
                seconds[name].append(timed(lambda: plain_writer(folder, output, dataset)))
            else:
                seconds[name].append(timed(lambda: image_example_gen(folder, output, beam_args, dataset)))
                startup_output = os.path.join(work, f"startup-{name}-{repeat}")
                startup[name].append(timed(lambda: image_example_gen(one, startup_output, beam_args, dataset)))
                shutil.rmtree(startup_output, ignore_errors=True)
            outputs[name] = output
        if repeat == 0:
            reference = _records(outputs["plain_sequential_writer"])
            same_records = {name: _records(output) == reference for name, output in outputs.items()}
            same_records["records"] = len(reference)
        for output in outputs.values():
            shutil.rmtree(output, ignore_errors=True)
    rates = {name: summarize([count / s for s in values]) for name, values in seconds.items()}
    steady = {name: summarize([count / (total - start) for total, start in zip(seconds[name], starts)
                               if total > start] or [float("nan")])
              for name, starts in startup.items()}
    baseline = rates["plain_sequential_writer"]["median"]
    return {
        "images": count,
        "stored_shape": list(STORED_SHAPE[dataset]),
        "images_per_second": rates,
        "beam_startup_seconds": {name: summarize(values) for name, values in startup.items()},
        "steady_images_per_second": steady,
        "ratio_vs_plain_writer": {name: rate["median"] / baseline for name, rate in rates.items()},
        "steady_ratio_vs_plain_writer": {name: rate["median"] / baseline for name, rate in steady.items()},
        "same_records_as_plain_writer": same_records,
        "profile_in_memory_seconds": profile_in_memory(folder, work, dataset),
    }


def profile_in_memory(folder: str, work: str, dataset: str) -> dict:
    """Where one in-memory ImageExampleGen run spends its time (cProfile, cumulative seconds).

    `per_image_work` is what the plain writer does too (read, validate, prepare, encode, tf.Example);
    `tfrecord_writing` is Beam's sink; `beam_per_element` is the rest of bundle processing;
    `start_up_and_planning` is everything outside bundle processing (listing, pipeline construction,
    translation, runner start).
    """
    import cProfile
    import pstats

    output = os.path.join(work, f"profile-{dataset}")
    profiler = cProfile.Profile()
    profiler.runcall(image_example_gen, folder, output, [], dataset)
    shutil.rmtree(output, ignore_errors=True)
    stats = pstats.Stats(profiler).stats  # {(file, line, function): (calls, primitive, tottime, cumtime, callers)}

    def cumulative(path_end: str, function: str) -> float:
        return sum(row[3] for (path, _, name), row in stats.items() if path.endswith(path_end) and name == function)

    total = cumulative("ingest_throughput.py", "image_example_gen")
    bundles = cumulative("bundle_processor.py", "process_bundle")
    per_image = (cumulative("validation.py", "validate_file") + cumulative("ingest.py", "make_example")
            + cumulative("arrays.py", "load_array_file"))
    writing = cumulative("filebasedsink.py", "write_record")
    return {"total": round(total, 2), "per_image_work": round(per_image, 2), "tfrecord_writing": round(writing, 2),
            "beam_per_element": round(bundles - per_image - writing, 2),
            "start_up_and_planning": round(total - bundles, 2)}


def run(datasets: list[str], images: int, repeats: int) -> dict:
    work = tempfile.mkdtemp(prefix="ganpipe-bench-ingest-")
    started = time.monotonic()
    try:
        results = {dataset: run_dataset(dataset, images, repeats, work) for dataset in datasets}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"repeats": repeats, "datasets": results, "wall_seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000, help="Fashion-MNIST images written as PNG files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(STORED_SHAPE), choices=list(STORED_SHAPE))
    args = parser.parse_args(argv)
    result = run(args.datasets, args.images, args.repeats)
    for dataset, figures in result["datasets"].items():
        print(f"{dataset}: {figures['images']} files, median of {result['repeats']} "
              f"(images/s [min-max], ratio to the plain writer; steady = without Beam's start-up):")
        for name, rate in figures["images_per_second"].items():
            line = (f"  {name:32s} {rate['median']:7.0f} [{rate['min']:.0f}-{rate['max']:.0f}]"
                    f"  x{figures['ratio_vs_plain_writer'][name]:.2f}")
            if name in figures["steady_images_per_second"]:
                line += (f"  steady {figures['steady_images_per_second'][name]['median']:7.0f}"
                         f"  x{figures['steady_ratio_vs_plain_writer'][name]:.2f}"
                         f"  (start-up {figures['beam_startup_seconds'][name]['median']:.1f} s)")
            print(line)
        print(f"  same records as the plain writer: {figures['same_records_as_plain_writer']}")
        print(f"  in-memory profile, seconds: {figures['profile_in_memory_seconds']}")
    print("wrote", write_result("ingest_throughput", result))
    return result


if __name__ == "__main__":
    main()
