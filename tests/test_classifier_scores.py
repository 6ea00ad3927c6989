"""Inception Score, the domain classifier and CAS, against values known in closed form.

IS: uniform predictions score 1; confident predictions spread evenly over K
classes score K (Salimans et al. 2016). The domain classifier and CAS run for
real (Keras training, real TFRecords, real SavedModel generators called
through their signatures, the executor called as TFX calls it) on classes
that are trivially separable, where the right answers are accuracy 1.0 for
a generator drawing the right classes and 0.0 for one drawing the wrong ones.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from ganpipe import contract
from ganpipe.components.gan_evaluator import classifiers, executor
from ganpipe.evaluation import domain_classifier
from ganpipe.evaluation.config import EvaluateConfig
from ganpipe.evaluation.inception_score import InceptionScoreAccumulator, inception_score
from ganpipe.trainer import data
from ganpipe.trainer.models import latents_for_seeds

SIZE, CLASSES, LATENT, STEPS = 16, 3, 4, 60
_IDS = itertools.count(100)


# --- Inception Score: closed forms ------------------------------------------------------------------


def test_uniform_predictions_score_one():
    result = inception_score(np.full((1000, 7), 1 / 7))
    assert result.mean == pytest.approx(1.0) and result.std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10, 1000])
def test_confident_predictions_spread_evenly_over_k_classes_score_k(classes):
    probabilities = np.eye(classes)[np.arange(classes * 10) % classes]  # each split holds every class once
    result = inception_score(probabilities, splits=10)
    assert result.mean == pytest.approx(classes) and result.std == pytest.approx(0.0, abs=1e-9)


def test_confident_predictions_of_one_class_score_one():
    assert inception_score(np.eye(5)[np.zeros(100, dtype=int)]).mean == pytest.approx(1.0)


def test_matches_the_reference_formula_and_streams_in_any_batches():
    """openai/improved-gan inception_score/model.py: per split, exp(mean KL(p(y|x) || mean p(y)))."""
    probabilities = np.random.RandomState(0).dirichlet(np.full(6, 0.3), size=503)
    expected = []
    for i in range(10):
        part = probabilities[i * 503 // 10:(i + 1) * 503 // 10]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        expected.append(np.exp(kl.sum(axis=1).mean()))
    accumulator = InceptionScoreAccumulator(503)
    for start, stop in ((0, 1), (1, 100), (100, 377), (377, 503)):
        accumulator.update(probabilities[start:stop])
    result = accumulator.result()
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert result.std == pytest.approx(np.std(expected), rel=1e-8)
    assert inception_score(probabilities).mean == pytest.approx(result.mean, rel=1e-12)


def test_the_streaming_observer_survives_a_generator_returning_too_many_images():
    """The sample checker reports such a generator; the IS observer must not crash the evaluator first."""
    accumulator, observe = classifiers.inception_score_observer(lambda images: np.full((len(images), 2), 0.5), 10)
    observe(np.zeros((8, 4, 4, 1), np.uint8))
    observe(np.zeros((8, 4, 4, 1), np.uint8))  # 16 of 10
    with pytest.raises(ValueError, match="more than the announced 10"):
        accumulator.result()


def test_bad_probabilities_and_counts_are_refused():
    with pytest.raises(ValueError, match="at least 10 samples"):
        InceptionScoreAccumulator(9)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.full((20, 2), 0.7))
    with pytest.raises(ValueError, match="more than the announced"):
        InceptionScoreAccumulator(10).update(np.full((11, 2), 0.5))
    with pytest.raises(ValueError, match="5 of 10 samples"):
        InceptionScoreAccumulator(10).update(np.full((5, 2), 0.5)).result()


# --- the domain classifier ---------------------------------------------------------------------------


def _patterns() -> np.ndarray:
    """One fixed random 16x16 grey pattern per class: trivially separable classes."""
    return np.random.RandomState(42).randint(0, 256, size=(CLASSES, SIZE, SIZE, 1)).astype(np.uint8)


def _noisy(labels: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.RandomState(seed).randint(-12, 13, size=(len(labels), SIZE, SIZE, 1))
    return np.clip(_patterns()[labels].astype(int) + noise, 0, 255).astype(np.uint8)


def test_domain_classifier_learns_separable_classes_deterministically_and_round_trips(tmp_path):
    labels = np.arange(96) % CLASSES
    images = _noisy(labels, seed=1)
    first = domain_classifier.train(images, labels, CLASSES, steps=STEPS, seed=3, key="k")
    second = domain_classifier.train(images, labels, CLASSES, steps=STEPS, seed=3, key="k")
    held_out = np.arange(30) % CLASSES
    assert first.accuracy(_noisy(held_out, seed=2), held_out) == 1.0
    np.testing.assert_array_equal(first(images[:8]), second(images[:8]))  # same data, steps, seed
    other = domain_classifier.train(images, labels, CLASSES, steps=STEPS, seed=4, key="k")
    assert not np.array_equal(first(images[:8]), other(images[:8]))
    restored = domain_classifier.DomainClassifier.from_bytes(first.to_bytes(), CLASSES, "k")
    np.testing.assert_array_equal(restored.probabilities(images[:8]), first.probabilities(images[:8]))
    assert first(images).shape == (96, domain_classifier.FEATURE_DIM) and first.name.startswith(
        "domain-classifier-v1:")
    with pytest.raises(ValueError, match="do not fit"):
        domain_classifier.DomainClassifier.from_bytes(first.to_bytes(), CLASSES + 1, "k")
    with pytest.raises(ValueError, match="labels must be in"):
        domain_classifier.train(images, labels + 1, CLASSES, steps=10, seed=0, key="k")


def test_the_cache_is_used_when_present_and_a_damaged_entry_is_retrained(tmp_path):
    labels = np.arange(48) % CLASSES
    images = _noisy(labels, seed=1)
    calls = []

    def data():
        calls.append(1)
        return images, labels

    trained, cached = domain_classifier.load_or_train(data, CLASSES, steps=20, seed=0, key="abc",
                                                      cache_dir=str(tmp_path))
    loaded, cached_again = domain_classifier.load_or_train(data, CLASSES, steps=20, seed=0, key="abc",
                                                           cache_dir=str(tmp_path))
    assert (cached, cached_again, len(calls)) == (False, True, 1)
    np.testing.assert_array_equal(loaded(images[:4]), trained(images[:4]))
    [entry] = list(tmp_path.iterdir())
    whole = entry.read_bytes()
    for damaged in (b"not an npz", whole[:len(whole) // 2]):  # a ValueError; a zipfile.BadZipFile
        entry.write_bytes(damaged)
        _, cached_after_damage = domain_classifier.load_or_train(data, CLASSES, steps=20, seed=0, key="abc",
                                                                 cache_dir=str(tmp_path))
        assert cached_after_damage is False
    assert len(calls) == 3 and [p.name for p in tmp_path.iterdir()] == [entry.name]  # no temp files left


# --- CAS and IS through the evaluator -------------------------------------------------------------------


class _ConditionalGenerator(tf.Module):
    """A conditional generator with the exported signatures; ``shift`` 1 draws class (label + 1) % K."""

    def __init__(self, shift: int):
        super().__init__()
        self.patterns = tf.constant(_patterns(), tf.float32)
        self.shift = shift
        latent = tf.TensorSpec([None, LATENT], tf.float32, name=contract.LATENT_INPUT)
        self.serve = tf.function(lambda z: {contract.IMAGES_OUTPUT: self._draw(
            z, tf.zeros([tf.shape(z)[0]], tf.int64))}, input_signature=[latent])
        self.from_seeds = tf.function(self._from_seeds, input_signature=[
            tf.TensorSpec([None], tf.int64, name=contract.SEEDS_INPUT)])
        self.with_labels = tf.function(lambda z, labels: {contract.IMAGES_OUTPUT: self._draw(z, labels)},
                                       input_signature=[latent, tf.TensorSpec([None], tf.int64,
                                                                               name=contract.LABELS_INPUT)])

    def _draw(self, z: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        drawn = tf.gather(self.patterns, (labels + self.shift) % CLASSES)
        jitter = 10.0 * tf.tanh(z[:, :1])[:, :, None, None]  # the latent still matters a little
        return tf.cast(tf.clip_by_value(drawn + jitter, 0, 255), tf.uint8)

    def _from_seeds(self, seeds: tf.Tensor) -> dict[str, tf.Tensor]:
        images = self._draw(latents_for_seeds(seeds, LATENT), seeds % CLASSES)
        return {contract.IMAGES_OUTPUT: images,
                contract.PNG_OUTPUT: tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)}


def _write_split(folder: Path, labels: np.ndarray, seed: int) -> None:
    folder.mkdir(parents=True)
    images = _noisy(labels, seed)

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for index, (image, label) in enumerate(zip(images, labels)):
            encoded = tf.io.encode_png(image).numpy()
            example = {contract.IMAGE_KEY: encoded, contract.HEIGHT_KEY: SIZE, contract.WIDTH_KEY: SIZE,
                       contract.CHANNELS_KEY: 1, contract.LABEL_KEY: int(label),
                       contract.SOURCE_KEY: b"pattern#%d" % index,
                       contract.SHA256_KEY: f"{seed}-{index}".encode()}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature={key: feature(value) for key, value in example.items()})).SerializeToString())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier_scores")
    _write_split(root / "examples" / "Split-train", np.arange(150) % CLASSES, seed=1)
    _write_split(root / "examples" / "Split-eval", np.arange(60) % CLASSES, seed=2)
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.id = 1
    models = {}
    for name, shift in (("right", 0), ("wrong", 1)):
        module = _ConditionalGenerator(shift)
        tf.saved_model.save(module, str(root / name / "Format-Serving"), signatures={
            contract.SERVING_SIGNATURE: module.serve, contract.SEEDS_SIGNATURE: module.from_seeds,
            contract.CONDITIONAL_SIGNATURE: module.with_labels})
        models[name] = standard_artifacts.Model()
        models[name].uri = str(root / name)
        models[name].id = next(_IDS)
    return {"examples": examples, "models": models, "cache": str(root / "cache")}


def _evaluate(world, tmp_path: Path, candidate: str, **settings):
    outputs = {}
    for key, kind in (("blessing", standard_artifacts.ModelBlessing), ("evaluation",
                                                                      standard_artifacts.ModelEvaluation)):
        outputs[key] = kind()
        outputs[key].uri = str(tmp_path / f"{key}_{candidate}")
        outputs[key].id = next(_IDS)
        os.makedirs(outputs[key].uri)
    config = EvaluateConfig(**{"num_samples": 60, "max_fid_over_floor": 0.0, "min_coverage_of_floor": 0.0,
                               "classifier_steps": STEPS, "cas_samples": 60, "cas_real_fraction": 0.2, **settings})
    executor.Executor().Do(
        {"examples": [world["examples"]], "model": [world["models"][candidate]]},
        {key: [artifact] for key, artifact in outputs.items()},
        {"config": json.dumps(config.to_dict()), "image_size": SIZE, "channels": 1,
         "serving_base": str(tmp_path / "serving"), executor.CLASSIFIER_CACHE_KEY: world["cache"]})
    with open(os.path.join(outputs["evaluation"].uri, "metrics.json")) as handle:
        report = json.load(handle)
    with open(os.path.join(outputs["evaluation"].uri, "index.html")) as handle:
        return report, handle.read(), outputs["evaluation"]


def test_cas_is_one_for_the_right_classes_and_zero_for_the_wrong_ones_and_the_gate_uses_it(world, tmp_path):
    right, page, evaluation = _evaluate(world, tmp_path, "right", min_cas_ratio=0.9)
    cas = right["cas"]
    assert (cas["cas"], cas["real_accuracy"], cas["cas_ratio"]) == (1.0, 1.0, 1.0)
    assert cas["fraction_images"] == 30 and cas["real_images"] == 60
    assert right["blessed"], right["reasons"]
    assert right["classifier"]["eval_accuracy"] == 1.0
    # The real floor's 60 train images are left out of the classifier's training (150 >= 2 x 60).
    assert (right["classifier"]["floor_holdout"], right["classifier"]["train_images"]) == (60, 90)
    # Evenly spread classes, every one recognised: IS towards K (the briefly trained classifier is not
    # fully confident), for the generator and the real floor alike.
    for role in ("candidate", "real_floor"):
        assert 2.0 < right[role]["inception_score"] <= CLASSES
    assert "Classification Accuracy Score" in page and "inception_score" in page
    assert evaluation.get_float_custom_property("cas") == 1.0

    wrong, _, _ = _evaluate(world, tmp_path, "wrong", min_cas_ratio=0.9)
    assert wrong["cas"]["cas"] == 0.0 and wrong["cas"]["real_accuracy"] == 1.0
    assert not wrong["blessed"]
    assert any("min_cas_ratio=0.9" in reason for reason in wrong["reasons"]), wrong["reasons"]
    assert wrong["classifier"]["cached"] is True  # the same data: the first evaluation's classifier


def test_fid_in_the_domain_classifier_feature_space(world, tmp_path):
    report, page, _ = _evaluate(world, tmp_path, "right", extractor="domain-classifier", cas_samples=0)
    assert report["extractor"] == report["classifier"]["name"] and report["extractor"].startswith(
        "domain-classifier-v1:")
    assert report["cas"] is None and "Classification Accuracy Score" not in page
    # The generator's global jitter is not the real images' pixel noise: the in-domain features see it.
    assert np.isfinite(report["candidate"]["fid"]) and report["candidate"]["fid"] > report["real_floor"]["fid"]


def test_the_floor_sample_is_held_out_of_the_classifier_when_there_is_room():
    assert classifiers.floor_holdout(1024, 512) == 512 and classifiers.floor_holdout(1023, 512) == 0


def test_real_samples_spread_over_a_class_sorted_split(tmp_path):
    """Class folders are ingested in folder order: the head of the file is a few classes, not the data."""
    from ganpipe.components.gan_evaluator import sampling

    labels = np.sort(np.arange(150) % CLASSES)  # 50 of class 0, then 50 of 1, then 50 of 2
    _write_split(tmp_path / "examples" / "Split-train", labels, seed=1)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train"])
    images = np.concatenate(list(sampling.real_batches(examples, "train", 1, SIZE, limit=30)))
    nearest = np.abs(images[:, None].astype(int) - _patterns()[None].astype(int)).mean(axis=(2, 3, 4)).argmin(axis=1)
    assert len(images) == 30 and np.bincount(nearest, minlength=CLASSES).tolist() == [10, 10, 10]
    # The real images next to the samples in `ganpipe run`'s samples.png (cli/summary.py) are the same records.
    spread = data.load_images([str(tmp_path / "examples" / "Split-train" / "*")], 1, SIZE, limit=30, spread=True)
    assert np.array_equal(spread, images)
    mask = classifiers._floor_mask(150, 30)
    assert mask.sum() == 30 and np.flatnonzero(mask).tolist() == data.spread_indices(150, 30).tolist()


@pytest.mark.parametrize("count, limit", [(59, 30), (900, 512), (3405, 512), (150, 30), (31, 30)])
def test_a_spread_sample_reaches_the_end_of_the_split(count, limit):
    """Every k-th record from the start (k = count // limit) took the head of a split shorter than twice the
    sample (59 of 30: k = 1) and left out the tail otherwise (3,405 of 512: the last 333 records)."""
    chosen = data.spread_indices(count, limit)
    assert len(chosen) == limit == len(set(chosen.tolist()))
    assert chosen[0] == 0 and chosen[-1] == count - 1 and (np.diff(chosen) >= 1).all()
    # Each quarter of the split gets a quarter of the sample, give or take one.
    quarters = np.bincount(chosen * 4 // count, minlength=4)
    assert (np.abs(quarters - limit / 4) <= 1).all(), quarters
    assert data.spread_indices(20, 30).tolist() == list(range(20))


def test_unlabelled_data_has_no_is_unless_asked_for_by_name(tmp_path):
    folder = tmp_path / "examples"
    for split in ("train", "eval"):
        _write_split(folder / f"Split-{split}", np.full(20, -1), seed=5)
    examples = standard_artifacts.Examples()
    examples.uri = str(folder)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    key, classes, labelled = classifiers.dataset_key(examples, EvaluateConfig(), SIZE, 1)
    assert (classes, labelled) == (0, 0) and len(key) == 64
    with pytest.raises(classifiers.UnlabelledDataError, match="evaluate.classifier=none"):
        classifiers.domain_classifier_for(examples, EvaluateConfig(classifier="domain"), SIZE, 1, None)


def test_the_dataset_key_changes_with_the_data_steps_and_seed(world):
    examples = world["examples"]
    base = classifiers.dataset_key(examples, EvaluateConfig(), SIZE, 1)
    assert base[1:] == (CLASSES, 150)
    assert classifiers.dataset_key(examples, EvaluateConfig(), SIZE, 1) == base
    assert classifiers.dataset_key(examples, EvaluateConfig(classifier_steps=999), SIZE, 1)[0] != base[0]
    assert classifiers.dataset_key(examples, EvaluateConfig(seed=1), SIZE, 1)[0] != base[0]
    assert classifiers.dataset_key(examples, EvaluateConfig(), SIZE * 2, 1)[0] != base[0]


@pytest.mark.parametrize("values, message", [
    ({"classifier": "imagenet"}, "evaluate.classifier='imagenet'"),
    ({"classifier_steps": 5}, "evaluate.classifier_steps=5"),
    ({"cas_samples": -1}, "evaluate.cas_samples=-1"),
    ({"cas_real_fraction": 0.0}, "evaluate.cas_real_fraction=0.0"),
    ({"min_cas_ratio": 0.5, "cas_samples": 0}, "needs CAS"),
    ({"min_cas_ratio": 1.5}, "evaluate.min_cas_ratio=1.5"),
    ({"extractor": "domain-classifier", "classifier": "none"}, "cannot go with"),
])
def test_classifier_settings_are_checked(values, message):
    with pytest.raises(ValueError, match=message):
        EvaluateConfig(**values)


def test_a_cas_limit_for_an_unconditional_generator_is_refused_before_training(capsys):
    from ganpipe.cli import main as cli

    assert cli.main(["run", "--check", "--set", "evaluate.min_cas_ratio=0.5"]) == 2
    assert "needs train.conditional=true" in capsys.readouterr().err
    assert cli.main(["run", "--check", "--set", "evaluate.min_cas_ratio=0.5", "--set", "train.conditional=true"]) == 0


def test_a_missing_or_wrong_imagenet_classifier_file_stops_before_tfx_in_one_line(tmp_path, capsys):
    from ganpipe.cli import main as cli

    wrong = tmp_path / "notop.h5"
    wrong.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature, nothing Keras can load
    for path, expected in ((tmp_path / "none.h5", "is not a file"), (wrong, "does not load as InceptionV3")):
        code = cli.main(["run", "--check", "--set", f"evaluate.classifier=inception-v3:{path}"])
        error = capsys.readouterr().err.strip()
        assert code == 2 and str(path) in error and expected in error and "\n" not in error, error


def test_imagenet_classifier_from_a_user_file_gives_probabilities(tmp_path):
    """Randomly initialised weights in Keras' file format: the real ImageNet file cannot be had offline."""
    import keras

    from ganpipe.evaluation.feature_extractors import inception_v3_classifier

    path = tmp_path / "inception_v3_random.weights.h5"
    keras.applications.InceptionV3(include_top=True, weights=None).save_weights(str(path))
    classifier = inception_v3_classifier(str(path))
    probabilities = classifier(_noisy(np.arange(2), seed=0))
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.name.startswith("inception-v3-softmax@sha256:")
