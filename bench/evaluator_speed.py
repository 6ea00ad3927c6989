"""Evaluator speed: seconds to score 10k generated vs 10k real images on CPU, per feature extractor.

End to end as GanEvaluator does it: uint8 images stream in batches of 256
through the extractor into two ``metrics.FeatureSummary``s, then
``metrics.score`` computes FID (all samples), KID (100 subsets of 1,000) and
precision/recall + density/coverage (5,000 per set). Images are Fashion-MNIST
(28x28 grey): the first 10k training images as "real", the 10k test images
standing in for generated ones (the cost does not depend on what they show).

InceptionV3 runs with RANDOMLY initialised weights unless
``--inception-weights`` names a real file: the ImageNet weights cannot be had
offline here. Its compute (299x299 inputs, 5.7 GFLOPs per image) is the same
with any weights, so the time is what real Inception FID costs; the numbers
it produces are meaningless, and this benchmark reports only times.

    .venv/bin/python -m bench.evaluator_speed [--count 10000] [--extractors random-conv,inception-v3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from bench.common import write_result

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
BATCH = 256


def load_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(real, generated stand-in), each uint8 [count, 28, 28, 1]."""
    from ganpipe.components.image_example_gen.arrays import inspect_idx, load_array_file

    def idx(name: str) -> np.ndarray:
        path = os.path.join(FASHION_MNIST, name)
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: install Debian's dataset-fashion-mnist (make fashion-mnist)")
        return load_array_file(inspect_idx(path)).images

    real, fake = idx("train-images-idx3-ubyte.gz")[:count], idx("t10k-images-idx3-ubyte.gz")[:count]
    if len(real) < count or len(fake) < count:
        raise SystemExit(f"--count {count}: Fashion-MNIST has only {len(fake)} test images")
    return real[..., None], fake[..., None]


def random_inception_weights(folder: str) -> str:
    """A weights file for InceptionV3 (no top) with random initial values, as Keras' file is laid out."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from ganpipe.evaluation.feature_extractors import INCEPTION_SIZE, INCEPTION_WEIGHTS_FILE

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    path = os.path.join(folder, INCEPTION_WEIGHTS_FILE)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path


def score_once(spec: str, real: np.ndarray, fake: np.ndarray) -> dict:
    from ganpipe.evaluation import metrics
    from ganpipe.evaluation.feature_extractors import get_extractor

    started = time.perf_counter()
    extractor = get_extractor(spec)
    setup_s = time.perf_counter() - started

    summaries = {}
    extract_s = 0.0
    for role, images in (("real", real), ("generated", fake)):
        summary = metrics.FeatureSummary(extractor.feature_dim)
        started = time.perf_counter()
        for start in range(0, len(images), BATCH):
            summary.update(extractor(images[start:start + BATCH]))
        extract_s += time.perf_counter() - started
        summaries[role] = summary

    started = time.perf_counter()
    metrics.fid_from_stats(summaries["generated"].stats, summaries["real"].stats)
    fid_s = time.perf_counter() - started
    started = time.perf_counter()
    metrics.kid(summaries["generated"].sample(), summaries["real"].sample(), num_subsets=100, subset_size=1000)
    kid_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = metrics.score(summaries["generated"], summaries["real"])  # everything, as the evaluator calls it
    score_s = time.perf_counter() - started
    return {
        "extractor_name": extractor.name, "feature_dim": extractor.feature_dim,
        "setup_s": setup_s, "extract_s": extract_s, "fid_s": fid_s, "kid_s": kid_s,
        "knn_s": max(0.0, score_s - fid_s - kid_s), "metrics_s": score_s,
        "total_s": extract_s + score_s, "images_per_s": 2 * len(real) / extract_s,
        "manifold_samples": scores.manifold_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="images per side (default 10000)")
    parser.add_argument("--extractors", default="random-conv,inception-v3",
                        help="comma-separated: random-conv, inception-v3, keras:<path>, savedmodel:<path>")
    parser.add_argument("--inception-weights", help="real InceptionV3 notop weights (default: random init)")
    args = parser.parse_args()

    real, fake = load_images(args.count)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for spec in args.extractors.split(","):
            label = spec
            if spec == "inception-v3":
                weights = args.inception_weights or random_inception_weights(scratch)
                spec = f"inception-v3:{weights}"
                if not args.inception_weights:
                    label = "inception-v3 (random-init weights; same compute as ImageNet weights)"
            print(f"scoring {args.count} vs {args.count} images with {label} ...", flush=True)
            load_before = os.getloadavg()[0]
            row = {"extractor": label, **score_once(spec, real, fake)}
            # Other work on the machine slows every figure: the 1-minute load average says how much.
            row["load_average_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
            rows.append(row)
            print(f"  extraction {row['extract_s']:.1f}s ({row['images_per_s']:.0f} images/s), "
                  f"metrics {row['metrics_s']:.1f}s, total {row['total_s']:.1f}s", flush=True)

    print(f"\n{args.count} generated vs {args.count} real images, CPU ({os.cpu_count()} cores)")
    header = f"{'extractor':<72} {'extract s':>9} {'img/s':>7} {'FID s':>6} {'KID s':>6} {'kNN s':>6} {'total s':>8}"
    print(header)
    for row in rows:
        print(f"{row['extractor']:<72} {row['extract_s']:>9.1f} {row['images_per_s']:>7.0f} {row['fid_s']:>6.1f} "
              f"{row['kid_s']:>6.1f} {row['knn_s']:>6.1f} {row['total_s']:>8.1f}")
    path = write_result("evaluator_speed", {
        "count_per_side": args.count, "batch": BATCH, "data": "Fashion-MNIST 28x28 grey (train vs test)",
        "metrics": "FID all samples; KID 100 subsets x 1000; precision/recall k=3, density/coverage k=5 on 5000",
        "note": "total_s = extract_s + metrics_s (setup_s, building the extractor, excluded). metrics_s is one "
                "metrics.score() call; fid_s and kid_s time those computations separately, knn_s is the rest",
        "rows": rows,
    })
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
