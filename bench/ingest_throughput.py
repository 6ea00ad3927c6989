"""Ingest throughput: ImageExampleGen (Beam) versus a plain sequential TFRecord writer.

Both read the same folder of PNG files written from Fashion-MNIST and write
GZIP tf.Example TFRecords with the same features. The plain writer is what a
user writes by hand: read bytes, open with Pillow for the shape, write. Ours
also decodes every image with TF (so nothing accepted breaks training),
hashes, splits and reports; it runs on Beam's DirectRunner in-memory and in
multi-process mode.

    .venv/bin/python -m bench.ingest_throughput [--images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import hashlib
import io
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from bench.common import summarize, timed, write_result

FASHION_MNIST_IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def write_png_folder(folder: str, count: int) -> None:
    """The first `count` Fashion-MNIST training images as PNG files."""
    from ganpipe.components.image_example_gen.arrays import inspect_idx, load_array_file

    images = load_array_file(inspect_idx(FASHION_MNIST_IMAGES)).images[:count]
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, f"{index:06d}.png"))


def plain_writer(folder: str, output: str) -> None:
    """The sequential baseline: one loop, one process."""
    import tensorflow as tf

    def int_feature(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    def bytes_feature(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    os.makedirs(output, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(output, "data.tfrecord.gz"), options) as writer:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                data = handle.read()
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                channels = len(image.getbands())
            feature = {
                "image": bytes_feature(data), "height": int_feature(height), "width": int_feature(width),
                "channels": int_feature(channels), "label": int_feature(-1),
                "source": bytes_feature(path.encode()), "sha256": bytes_feature(hashlib.sha256(data).hexdigest().encode()),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def image_example_gen(folder: str, output: str, beam_pipeline_args: list[str]) -> None:
    from tfx.types import standard_artifacts

    from ganpipe.components.image_example_gen.config import IngestConfig
    from ganpipe.components.image_example_gen.executor import Executor

    examples = standard_artifacts.Examples()
    examples.uri = output
    ingest = IngestConfig(eval_fraction=0.1, image_size=28, channels=1, labels_from_subfolders=False)
    properties = {"input_base": folder, "data_format": "folder", "config": json.dumps(ingest.to_dict())}
    Executor(Executor.Context(beam_pipeline_args=beam_pipeline_args)).Do({}, {"examples": [examples]}, properties)


VARIANTS = {
    "plain_sequential_writer": None,
    "image_example_gen_in_memory": [],
    "image_example_gen_multi_process": ["--direct_running_mode=multi_processing", "--direct_num_workers=0"],
}


def run(images: int, repeats: int) -> dict:
    work = tempfile.mkdtemp(prefix="ganpipe-bench-ingest-")
    try:
        folder = os.path.join(work, "images")
        write_png_folder(folder, images)
        seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for repeat in range(repeats):  # interleaved, so drift hits every variant alike
            for name, beam_args in VARIANTS.items():
                output = os.path.join(work, f"out-{name}-{repeat}")
                if beam_args is None:
                    seconds[name].append(timed(lambda: plain_writer(folder, output)))
                else:
                    seconds[name].append(timed(lambda: image_example_gen(folder, output, beam_args)))
                shutil.rmtree(output, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rates = {name: summarize([images / s for s in values]) for name, values in seconds.items()}
    baseline = rates["plain_sequential_writer"]["median"]
    return {
        "images": images,
        "repeats": repeats,
        "images_per_second": rates,
        "ratio_vs_plain_writer": {name: rate["median"] / baseline for name, rate in rates.items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.images, args.repeats)
    print(f"ingest of {result['images']} PNG files (median of {result['repeats']}, images/s [min-max]):")
    for name, rate in result["images_per_second"].items():
        print(f"  {name:34s} {rate['median']:8.0f}  [{rate['min']:.0f}-{rate['max']:.0f}]"
              f"  x{result['ratio_vs_plain_writer'][name]:.2f}")
    print("wrote", write_result("ingest_throughput", result))
    return result


if __name__ == "__main__":
    main()
