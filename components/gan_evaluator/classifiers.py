"""The evaluator's classifier work: the domain classifier (cached per dataset), IS and CAS.

The domain classifier (``ganpipe.evaluation.domain_classifier``) is trained on
the real train split's labels and cached under ``cache_dir`` by a key that
covers the data (every train record's sha256 and label), the image shape, the
training steps and the seed, so a nightly run on unchanged data loads it and a
changed dataset never reuses a stale one.

CAS (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional
Generative Models"): the same classifier trained on N generated labelled
images, tested on the real eval split, next to it trained on N real train
images. The augmentation gain: trained on a small real fraction alone against
that fraction plus the N generated images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils

from ganpipe import contract
from ganpipe.evaluation import domain_classifier
from ganpipe.evaluation.config import EvaluateConfig
from ganpipe.evaluation.domain_classifier import DomainClassifier
from ganpipe.evaluation.inception_score import InceptionScoreAccumulator
from ganpipe.trainer import data
from ganpipe.trainer.models import latents_for_seeds
from ganpipe.trainer.train import recorded_label_names

# Labelled images a classifier trains on at most: the step count, not the data, sets its cost, and
# 50,000 images of 64x64x3 are 600 MiB as uint8.
MAX_TRAIN_IMAGES = 50_000
CAS_SEED_OFFSET = 7_000_000  # generated CAS images use seeds far from the gate's (evaluate.seed ...)


class UnlabelledDataError(ValueError):
    """A domain classifier was asked for, but the train split has fewer than two labelled classes."""


@dataclasses.dataclass
class Labelled:
    """uint8 images [N, H, W, C] with int64 labels [N] in [0, num_classes)."""

    images: np.ndarray
    labels: np.ndarray


def split_pattern(examples: Any, split: str) -> list[str]:
    return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]


def dataset_key(examples: Any, cfg: EvaluateConfig, image_size: int, channels: int) -> tuple[str, int, int]:
    """(cache key, number of classes, labelled train images) of the train split; no image is decoded.

    The key is the sha256 of the classifier's version, the shape, steps and
    seed, and the sorted (digest of the stored image bytes, label) of every
    train record: the stored bytes, not the source file's sha256, because one
    source file gives other pixels under other ingestion settings
    (data.resize, data.background). The class count is the one ingestion
    recorded (label_names), else 1 + the largest label of either split, so a
    class whose images all landed in the eval split still counts.
    """
    train = split_pattern(examples, contract.TRAIN_SPLIT)
    features = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
                contract.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=contract.UNKNOWN_LABEL)}
    files = data.list_files(train)
    parse = tf.autograph.experimental.do_not_convert(lambda record: tf.io.parse_single_example(record, features))
    records = tf.data.TFRecordDataset(files, compression_type=data.compression_of(files)).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)
    pairs = sorted((hashlib.sha256(image).digest(), int(label))
                   for batch in records.batch(4096).as_numpy_iterator()
                   for image, label in zip(batch[contract.IMAGE_KEY], batch[contract.LABEL_KEY]))
    digest = hashlib.sha256(f"{domain_classifier.ARCHITECTURE}|{image_size}|{channels}|"
                            f"{cfg.classifier_steps}|{cfg.seed}|floor holdout {cfg.num_samples} strided".encode())
    for image_digest, label in pairs:
        digest.update(image_digest + str(label).encode() + b"\n")
    labelled_count = sum(1 for _, label in pairs if label >= 0)
    largest = max([label for _, label in pairs] + [-1])
    eval_labels = data.read_labels(split_pattern(examples, contract.EVAL_SPLIT))
    if eval_labels.size:
        largest = max(largest, int(eval_labels.max()))
    num_classes = max(len(recorded_label_names(train)), largest + 1) if labelled_count else 0
    return digest.hexdigest(), num_classes, labelled_count


def labelled(examples: Any, split: str, channels: int, image_size: int, limit: int = MAX_TRAIN_IMAGES) -> Labelled:
    """The labelled images of one split (unlabelled ones dropped), in file order, at most ``limit`` read."""
    patterns = split_pattern(examples, split)
    images = data.load_images(patterns, channels, image_size, limit=limit)
    labels = data.read_labels(patterns)[:len(images)]
    keep = labels >= 0
    return Labelled(images[keep], labels[keep])


def floor_holdout(train_count: int, num_samples: int) -> int:
    """How many train records the classifier leaves out: the real floor's sample (sampling.real_batches).

    The floor compares real train images with the eval split; a classifier
    trained on those same images maps them to its overfitted features. So
    when the split can spare them (at least twice the floor's sample), the
    floor's records are not trained on; otherwise nothing is left out and the
    report notes that the in-domain floor is then inflated.
    """
    return min(num_samples, train_count) if train_count >= 2 * num_samples else 0


def _floor_mask(count: int, num_samples: int) -> np.ndarray:
    """bool [count]: the records sampling.real_batches takes for a floor of ``num_samples``."""
    return data.spread_mask(count, num_samples)


def domain_classifier_for(examples: Any, cfg: EvaluateConfig, image_size: int, channels: int,
                          cache_dir: Optional[str]) -> tuple[DomainClassifier, dict[str, Any]]:
    """The dataset's domain classifier, loaded from ``cache_dir`` or trained; and what the report says of it.

    Raises:
      UnlabelledDataError: fewer than two classes in the train split.
    """
    key, num_classes, count = dataset_key(examples, cfg, image_size, channels)
    if num_classes < 2:
        raise UnlabelledDataError(
            f"evaluate.classifier={cfg.classifier!r} needs labelled data (class folders or a labels file) with "
            f"at least 2 classes; the train split has {num_classes} (set evaluate.classifier=none)")
    holdout = floor_holdout(count, cfg.num_samples)
    classifier, cached = domain_classifier.load_or_train(
        lambda: _train_set(examples, channels, image_size, holdout), num_classes, steps=cfg.classifier_steps,
        seed=cfg.seed, key=key, cache_dir=cache_dir)
    real_eval = labelled(examples, contract.EVAL_SPLIT, channels, image_size)
    accuracy = classifier.accuracy(real_eval.images, real_eval.labels) if len(real_eval.labels) else None
    return classifier, {"name": classifier.name, "num_classes": num_classes, "train_images": count - holdout,
                        "floor_holdout": holdout,
                        "steps": cfg.classifier_steps, "cached": cached, "eval_accuracy": accuracy,
                        "eval_images": int(len(real_eval.labels))}


def _train_set(examples: Any, channels: int, image_size: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelled train images, without the ``holdout`` records the real floor samples."""
    patterns = split_pattern(examples, contract.TRAIN_SPLIT)
    labels = data.read_labels(patterns)
    keep = labels >= 0
    if holdout:
        keep &= ~_floor_mask(len(labels), holdout)
    images = data.load_images(patterns, channels, image_size, limit=MAX_TRAIN_IMAGES)
    keep = keep[:len(images)]
    return images[keep], labels[:len(images)][keep]


def inception_score_observer(classifier: Callable[[np.ndarray], np.ndarray], count: int
                             ) -> tuple[InceptionScoreAccumulator, Callable[[np.ndarray], None]]:
    """An accumulator for ``count`` images and the callback that feeds it p(y|x) of each image block."""
    accumulator = InceptionScoreAccumulator(count)

    def observe(images: np.ndarray) -> None:
        # A generator returning more images than seeds is the checker's to report, not a crash here:
        # the accumulator refuses the block, and its result() then says why there is no IS.
        if accumulator.error is None:
            try:
                accumulator.update(classifier(images))
            except ValueError as error:
                accumulator.error = str(error)

    return accumulator, observe


def conditional_images(loaded: Any, count: int, num_classes: int, seed: int) -> Labelled:
    """``count`` images from a conditional generator's labels signature, classes in turn (0, 1, ..., K-1, 0, ...).

    z comes from the seeds ``seed + CAS_SEED_OFFSET + i`` exactly as the seeds signature derives it.
    """
    signature = loaded.signatures[contract.CONDITIONAL_SIGNATURE]
    latent_dim = int(signature.structured_input_signature[1][contract.LATENT_INPUT].shape[-1])
    labels = np.arange(count, dtype=np.int64) % num_classes
    images = []
    for start in range(0, count, 256):
        seeds = tf.range(seed + CAS_SEED_OFFSET + start, seed + CAS_SEED_OFFSET + min(start + 256, count),
                         dtype=tf.int64)
        outputs = signature(**{contract.LATENT_INPUT: latents_for_seeds(seeds, latent_dim),
                               contract.LABELS_INPUT: tf.constant(labels[start:start + 256])})
        images.append(outputs[contract.IMAGES_OUTPUT].numpy())
    return Labelled(np.concatenate(images), labels)


def classification_accuracy_score(loaded: Any, examples: Any, cfg: EvaluateConfig, image_size: int,
                                  channels: int, num_classes: int, key: str,
                                  cache_dir: Optional[str]) -> dict[str, Any]:
    """CAS, the real-data accuracy at the same count, and the augmentation gain (all accuracies in [0, 1]).

    Trainings on real images only are cached like the domain classifier (they
    depend on the data alone); the ones on generated images are not.
    """
    train = labelled(examples, contract.TRAIN_SPLIT, channels, image_size)
    real_eval = labelled(examples, contract.EVAL_SPLIT, channels, image_size)
    if not len(real_eval.labels):
        raise UnlabelledDataError("CAS needs labelled images in the eval split; it has none")
    count = cfg.cas_samples
    synthetic = conditional_images(loaded, count, num_classes, cfg.seed)
    rng = np.random.RandomState(cfg.seed)
    real_subset = rng.permutation(len(train.labels))[:count]
    fraction = rng.permutation(len(train.labels))[:max(1, int(round(cfg.cas_real_fraction * len(train.labels))))]

    def fit(images: np.ndarray, labels: np.ndarray, name: str, cacheable: bool) -> float:
        if cacheable:
            model, _ = domain_classifier.load_or_train(lambda: (images, labels), num_classes,
                                                       steps=cfg.classifier_steps, seed=cfg.seed,
                                                       key=f"{key}-{name}", cache_dir=cache_dir)
        else:
            model = domain_classifier.train(images, labels, num_classes, steps=cfg.classifier_steps,
                                            seed=cfg.seed, key=name)
        return model.accuracy(real_eval.images, real_eval.labels)

    synthetic_accuracy = fit(synthetic.images, synthetic.labels, "synthetic", cacheable=False)
    real_accuracy = fit(train.images[real_subset], train.labels[real_subset], f"real{count}", cacheable=True)
    fraction_only = fit(train.images[fraction], train.labels[fraction], f"fraction{len(fraction)}",
                        cacheable=True)
    fraction_plus = fit(np.concatenate([train.images[fraction], synthetic.images]),
                        np.concatenate([train.labels[fraction], synthetic.labels]), "fraction+synthetic",
                        cacheable=False)
    return {
        # real_images < samples when the train split has fewer labelled images than cas_samples: the
        # ratio then compares the generator's N with every real image there is (the page says both).
        "samples": count,
        "cas": synthetic_accuracy,
        "real_accuracy": real_accuracy,
        "real_images": int(len(real_subset)),
        "cas_ratio": synthetic_accuracy / real_accuracy if real_accuracy > 0 else None,
        "real_fraction": cfg.cas_real_fraction,
        "fraction_images": int(len(fraction)),
        "fraction_accuracy": fraction_only,
        "fraction_plus_synthetic_accuracy": fraction_plus,
        "augmentation_gain": fraction_plus - fraction_only,
        "eval_images": int(len(real_eval.labels)),
    }
