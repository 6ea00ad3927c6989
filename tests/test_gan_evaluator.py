"""GanEvaluator on real TFRecords and real SavedModel generators (no mocks).

The generators are tiny tf.Modules saved with the same signatures the trainer
exports: a "memorizer" that replays training images (as good as it gets), a
"blurry" one that draws the mean image plus noise (plausible but worse),
mode-collapsed ones (one jittered digit; four exact images) and broken ones
(NaN, constant). The executor is called exactly as TFX calls it,
and its blessing is then read by the stock Pusher and resolver.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts
from tfx.utils import proto_utils
import tfx.v1 as tfx

from ganpipe.components.gan_evaluator import GanEvaluator, executor, rules, sampling
from ganpipe import contract
from ganpipe.evaluation.config import EvaluateConfig

SIZE = 16
CHANNELS = 1
LATENT = 8
NUM_SAMPLES = 64


# --- inputs: real images in TFRecords, as ExampleGen writes them ---------------------------------


def _digits() -> np.ndarray:
    """Real 8x8 digits blown up to 16x16 uint8 [N, 16, 16, 1]."""
    images = np.clip(load_digits().images * 16.0, 0, 255).astype(np.uint8)
    return np.kron(images, np.ones((1, 2, 2), dtype=np.uint8))[..., None]


def _write_split(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for index, image in enumerate(images):
            encoded = tf.io.encode_png(image).numpy()
            feature = {
                contract.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
                contract.HEIGHT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE])),
                contract.WIDTH_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE])),
                contract.CHANNELS_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[CHANNELS])),
                contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[-1])),
                contract.SOURCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"digits#%d" % index])),
                contract.SHA256_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"0"])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


# --- real SavedModel generators ---------------------------------------------------------------------


class _Generator(tf.Module):
    """Honours the generator contract: serving_default(z) and generate_from_seeds(seeds)."""

    def __init__(self, kind: str, train_images: np.ndarray):
        super().__init__()
        self.kind = kind
        self.bank = tf.constant(train_images)
        self.mean = tf.constant(train_images.astype(np.float32).mean(axis=0))

    def _noise(self, seeds: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(
            lambda s: tf.random.stateless_normal([SIZE, SIZE, CHANNELS], seed=tf.stack([s, tf.constant(7, tf.int64)])),
            seeds, fn_output_signature=tf.float32)

    def _images(self, seeds: tf.Tensor) -> tf.Tensor:
        count = tf.shape(seeds)[0]
        if self.kind == "memorizer":
            picked = tf.gather(self.bank, seeds % tf.cast(tf.shape(self.bank)[0], tf.int64))
            return tf.cast(tf.clip_by_value(tf.cast(picked, tf.float32) + 2.0 * self._noise(seeds), 0, 255), tf.uint8)
        if self.kind == "blurry":
            return tf.cast(tf.clip_by_value(self.mean + 40.0 * self._noise(seeds), 0, 255), tf.uint8)
        if self.kind == "constant":
            return tf.tile(tf.cast(self.mean, tf.uint8)[None], [count, 1, 1, 1])
        if self.kind == "collapsed":  # one real digit, slightly jittered: sharp, but a single mode
            one = tf.cast(self.bank[0], tf.float32)[None]
            return tf.cast(tf.clip_by_value(one + 6.0 * self._noise(seeds), 0, 255), tf.uint8)
        if self.kind == "four_images":  # replays four exact images: collapse without any noise
            return tf.gather(self.bank, seeds % 4)
        nan = tf.fill([count, SIZE, SIZE, CHANNELS], float("nan"))
        if self.kind == "nan_float":  # a float output: breaks the uint8 contract too
            return nan
        if self.kind == "nan_cast":  # what an exporter that casts a diverged generator's NaNs yields
            return tf.cast(tf.clip_by_value(nan, 0.0, 255.0), tf.uint8)
        raise ValueError(self.kind)

    def _outputs(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        if images.dtype == tf.uint8:
            png = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        else:
            png = tf.fill([tf.shape(images)[0]], "")
        return {contract.IMAGES_OUTPUT: images, contract.PNG_OUTPUT: png}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=contract.SEEDS_INPUT)])
    def from_seeds(self, seeds):
        return self._outputs(self._images(seeds))

    @tf.function(input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name=contract.LATENT_INPUT)])
    def serve(self, z):
        seeds = tf.cast(tf.reduce_sum(tf.abs(z), axis=1) * 1000.0, tf.int64)
        return {contract.IMAGES_OUTPUT: self._images(seeds)}


_IDS = iter(range(100, 10_000))


def _model_artifact(uri: Path) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(uri)
    model.id = next(_IDS)
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Examples artifact with train/eval splits, and one Model artifact per generator kind."""
    root = tmp_path_factory.mktemp("gan_evaluator")
    images = _digits()
    train, evaluation = images[:256], images[256:384]
    _write_split(root / "examples" / "Split-train", train)
    _write_split(root / "examples" / "Split-eval", evaluation)
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.id = 1

    models = {}
    for kind in ("memorizer", "blurry", "constant", "collapsed", "four_images", "nan_float", "nan_cast"):
        uri = root / "models" / kind
        module = _Generator(kind, train)
        tf.saved_model.save(module, str(uri / "Format-Serving"), signatures={
            contract.SERVING_SIGNATURE: module.serve, contract.SEEDS_SIGNATURE: module.from_seeds})
        models[kind] = _model_artifact(uri)
    (root / "models" / "empty" / "Format-Serving").mkdir(parents=True)
    models["unloadable"] = _model_artifact(root / "models" / "empty")
    return {"examples": examples, "models": models}


def _evaluate(world, tmp_path: Path, candidate: str, baseline: str | None = None, **params):
    """Runs the executor the way TFX does; returns (blessing, evaluation, metrics.json)."""
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / f"blessing_{candidate}_{baseline}")
    blessing.id = next(_IDS)
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / f"evaluation_{candidate}_{baseline}")
    evaluation.id = next(_IDS)
    for artifact in (blessing, evaluation):
        os.makedirs(artifact.uri)
    input_dict = {"examples": [world["examples"]], "model": [world["models"][candidate]]}
    serving_base = tmp_path / f"serving_{candidate}_{baseline}" / "generator"
    if baseline is not None:  # what serves now: version 1, as ServingPusher would have left it
        _serve(world["models"][baseline], serving_base / "1")
    # The floor-relative limits are off unless a test sets them: these tests are about the other rules.
    limits = EvaluateConfig(num_samples=NUM_SAMPLES, max_fid_over_floor=0.0, min_coverage_of_floor=0.0)
    exec_properties = {"config": json.dumps({**limits.to_dict(), **params}), "image_size": SIZE,
                       "channels": CHANNELS, "serving_base": str(serving_base)}
    executor.Executor().Do(input_dict, {"blessing": [blessing], "evaluation": [evaluation]}, exec_properties)
    with open(os.path.join(evaluation.uri, "metrics.json")) as handle:
        return blessing, evaluation, json.load(handle)


def _serve(model, version_dir: Path, record: bool = True) -> None:
    """Copies a Model artifact's SavedModel into a serving version, with a ganpipe push record."""
    shutil.copytree(Path(model.uri) / "Format-Serving", version_dir)
    if record:
        (version_dir / "ganpipe_push.json").write_text(json.dumps(
            {"model_uri": model.uri, "model_id": model.id, "pushed_at": "2026-11-30T00:00:00+00:00"}))


def _marker(blessing) -> str:
    markers = sorted(name for name in os.listdir(blessing.uri) if name in ("BLESSED", "NOT_BLESSED"))
    assert len(markers) == 1, markers
    return markers[0]


# --- the decision --------------------------------------------------------------------------------


def test_good_generator_without_baseline_is_blessed(world, tmp_path):
    blessing, evaluation, report = _evaluate(world, tmp_path, "blurry")
    model = world["models"]["blurry"]
    assert _marker(blessing) == "BLESSED"
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("current_model") == model.uri
    assert blessing.get_int_custom_property("current_model_id") == model.id
    assert not blessing.has_custom_property("baseline_model")
    assert report["blessed"] is True and report["reasons"] == []
    assert report["extractor"] == "random-conv-v1" and report["num_samples"] == NUM_SAMPLES
    assert report["baseline"] is None
    # The blurry generator is clearly worse than real images in this feature space.
    assert report["candidate"]["fid"] > 3 * report["real_floor"]["fid"] > 0
    assert set(report["settings"]) == set(EvaluateConfig().to_dict())
    for role in ("candidate", "real_floor"):
        scores = report[role]
        assert set(scores) >= {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "diversity"}
        assert scores["num_samples"] == NUM_SAMPLES and scores["num_reference"] == NUM_SAMPLES
    # Real train images cover the eval split; the blurry generator covers little of it.
    assert report["real_floor"]["coverage"] > 0.7 and report["real_floor"]["recall"] > 0.5
    assert report["candidate"]["coverage"] < report["real_floor"]["coverage"]
    for name in ("candidate_samples.png", "real_samples.png", "index.html"):
        assert os.path.getsize(os.path.join(evaluation.uri, name)) > 0
    assert not os.path.exists(os.path.join(evaluation.uri, "baseline_samples.png"))
    page = Path(evaluation.uri, "index.html").read_text()
    assert "BLESSED" in page and "candidate_samples.png" in page and "random-conv-v1" in page
    assert "not Inception FID" in page and "coverage" in page
    assert evaluation.get_float_custom_property("candidate_fid") == pytest.approx(report["candidate"]["fid"])
    assert evaluation.get_float_custom_property("candidate_coverage") == pytest.approx(
        report["candidate"]["coverage"])
    assert evaluation.get_string_custom_property("extractor") == "random-conv-v1"


def test_scores_are_reproducible(world, tmp_path):
    first = _evaluate(world, tmp_path / "a", "blurry")[2]
    second = _evaluate(world, tmp_path / "b", "blurry")[2]
    assert first["candidate"] == second["candidate"] and first["real_floor"] == second["real_floor"]


@pytest.mark.parametrize("kind, expected", [
    ("nan_float", "NaN"),
    ("constant", "same image"),
    ("nan_cast", ""),  # NaN through a uint8 cast: some degenerate, flat output
    ("four_images", "mode collapse: only 4 distinct images"),
])
def test_broken_generators_are_refused_with_reasons(world, tmp_path, kind, expected):
    blessing, evaluation, report = _evaluate(world, tmp_path, kind)
    assert _marker(blessing) == "NOT_BLESSED"
    assert blessing.get_int_custom_property("blessed") == 0
    assert report["blessed"] is False and report["reasons"]
    assert any(expected in reason for reason in report["reasons"]), report["reasons"]
    page = Path(evaluation.uri, "index.html").read_text()
    assert "NOT BLESSED" in page
    for reason in report["reasons"]:
        assert html.escape(reason) in page


def test_mode_collapse_is_refused_by_coverage_even_when_fid_passes(world, tmp_path):
    """One sharp, jittered digit for every seed: FID alone would ship it, coverage/recall do not."""
    probe = _evaluate(world, tmp_path / "probe", "collapsed")[2]
    fid = probe["candidate"]["fid"]
    assert probe["blessed"] is True  # nothing on by default refuses it: the samples are distinct images
    # Its FID is better than the honestly varied blurry generator's, and within the limit set below.
    assert fid < _evaluate(world, tmp_path / "blurry", "blurry")[2]["candidate"]["fid"]
    collapsed, floor = probe["candidate"], probe["real_floor"]
    assert collapsed["coverage"] < 0.2 < 0.7 < floor["coverage"]
    assert collapsed["recall"] < 0.1 < floor["recall"]

    blessing, evaluation, report = _evaluate(world, tmp_path / "coverage", "collapsed", max_fid=2 * fid,
                                             min_coverage=0.5)
    assert _marker(blessing) == "NOT_BLESSED"
    assert [reason for reason in report["reasons"] if "max_fid" in reason] == []
    (reason,) = report["reasons"]
    assert "coverage" in reason and "min_coverage=0.5" in reason and "mode collapse" in reason
    assert html.escape(reason) in Path(evaluation.uri, "index.html").read_text()

    blessing, _, report = _evaluate(world, tmp_path / "recall", "collapsed", max_fid=2 * fid, min_recall=0.3)
    assert _marker(blessing) == "NOT_BLESSED" and "min_recall=0.3" in report["reasons"][0]
    # The same rules let a generator that covers the data through.
    blessing, _, _ = _evaluate(world, tmp_path / "memorizer", "memorizer", min_coverage=0.5, min_recall=0.3)
    assert _marker(blessing) == "BLESSED"


def test_max_fid_and_max_kid_are_absolute_limits(world, tmp_path):
    candidate = _evaluate(world, tmp_path / "probe", "blurry")[2]["candidate"]
    fid, kid = candidate["fid"], candidate["kid"]
    blessing, _, report = _evaluate(world, tmp_path / "strict", "blurry", max_fid=fid * 0.9)
    assert _marker(blessing) == "NOT_BLESSED"
    assert any("max_fid" in reason for reason in report["reasons"])
    blessing, _, report = _evaluate(world, tmp_path / "loose", "blurry", max_fid=fid * 1.1)
    assert _marker(blessing) == "BLESSED" and report["settings"]["max_fid"] == pytest.approx(fid * 1.1)
    blessing, _, report = _evaluate(world, tmp_path / "kid", "blurry", max_kid=kid * 0.9)
    assert _marker(blessing) == "NOT_BLESSED" and "max_kid" in report["reasons"][0]
    assert _marker(_evaluate(world, tmp_path / "kid_ok", "blurry", max_kid=kid * 1.1)[0]) == "BLESSED"


def test_better_baseline_blocks_the_candidate(world, tmp_path):
    blessing, evaluation, report = _evaluate(world, tmp_path, "blurry", baseline="memorizer")
    baseline = world["models"]["memorizer"]
    assert _marker(blessing) == "NOT_BLESSED"
    assert blessing.get_string_custom_property("baseline_model").endswith("/generator/1")
    assert blessing.get_int_custom_property("baseline_model_id") == baseline.id  # from the push record
    assert blessing.get_int_custom_property("baseline_version") == 1
    assert report["baseline_version"] == 1 and f"model artifact {baseline.id}" in report["baseline_origin"]
    assert report["baseline"]["fid"] < report["candidate"]["fid"]
    assert any("baseline" in reason for reason in report["reasons"])
    assert os.path.getsize(os.path.join(evaluation.uri, "baseline_samples.png")) > 0
    assert evaluation.get_float_custom_property("baseline_fid") == pytest.approx(report["baseline"]["fid"])


def test_candidate_better_than_baseline_is_blessed(world, tmp_path):
    blessing, _, report = _evaluate(world, tmp_path, "memorizer", baseline="blurry")
    assert _marker(blessing) == "BLESSED"
    assert blessing.get_int_custom_property("baseline_model_id") == world["models"]["blurry"].id
    assert report["candidate"]["fid"] < report["baseline"]["fid"]


def test_default_limits_refuse_a_garbage_first_candidate(world, tmp_path):
    """No baseline, no limit set by the user: the floor-relative defaults still refuse garbage."""
    defaults = EvaluateConfig(num_samples=NUM_SAMPLES).to_dict()
    blessing, _, report = _evaluate(world, tmp_path / "garbage", "blurry", **defaults)
    assert _marker(blessing) == "NOT_BLESSED" and report["baseline"] is None
    assert report["candidate"]["fid"] > defaults["max_fid_over_floor"] * report["real_floor"]["fid"]
    assert any("max_fid_over_floor" in reason for reason in report["reasons"]), report["reasons"]
    assert any("min_coverage_of_floor" in reason for reason in report["reasons"]), report["reasons"]
    blessing, _, report = _evaluate(world, tmp_path / "good", "memorizer", **defaults)
    assert _marker(blessing) == "BLESSED", report["reasons"]


def test_the_serving_generator_itself_is_never_blessed_again(world, tmp_path):
    """A candidate that is the baseline (a finished checkpoint resumed for 0 steps) scores exactly the
    baseline's FID, so "not worse" alone would push the same generator again as a new version."""
    blessing, _, report = _evaluate(world, tmp_path / "equal", "memorizer", baseline="memorizer")
    assert _marker(blessing) == "NOT_BLESSED"
    assert report["candidate"]["fid"] == report["baseline"]["fid"]
    assert report["reasons"] == ["the candidate draws exactly the images of serving version 1 for the same "
                                 "seeds: it is that generator, not a new one"]


def test_min_improvement_requires_a_margin(world, tmp_path):
    blessing, _, report = _evaluate(world, tmp_path / "better", "memorizer", baseline="blurry")
    assert _marker(blessing) == "BLESSED"
    gain = 1.0 - report["candidate"]["fid"] / report["baseline"]["fid"]
    blessing, _, report = _evaluate(world, tmp_path / "margin", "memorizer", baseline="blurry",
                                    min_improvement=min(gain + 0.05, 0.99))
    assert _marker(blessing) == "NOT_BLESSED"
    assert any("min_improvement" in reason for reason in report["reasons"])


@pytest.mark.parametrize("baseline", ["unloadable", "nan_float"])
def test_unusable_baseline_refuses_unless_config_says_ignore(world, tmp_path, baseline):
    blessing, evaluation, report = _evaluate(world, tmp_path / "strict", "blurry", baseline=baseline)
    assert _marker(blessing) == "NOT_BLESSED"
    assert report["baseline"] is None
    assert any("could not be scored" in reason and "ignore_unusable_baseline" in reason
               for reason in report["reasons"]), report["reasons"]
    assert any("could not be scored" in note for note in report["notes"])
    assert "could not be scored" in Path(evaluation.uri, "index.html").read_text()

    blessing, _, report = _evaluate(world, tmp_path / "lenient", "blurry", baseline=baseline,
                                    ignore_unusable_baseline=True)
    assert _marker(blessing) == "BLESSED" and report["reasons"] == []
    assert any("as if there were no baseline" in note for note in report["notes"])
    # Lineage still records which baseline was considered, as the stock Evaluator does.
    assert blessing.get_int_custom_property("baseline_model_id") == world["models"][baseline].id


def test_unloadable_candidate_fails_loudly(world, tmp_path):
    with pytest.raises(executor.GeneratorLoadError, match="cannot load"):
        _evaluate(world, tmp_path, "unloadable")


# --- the blessing works with stock TFX parts -----------------------------------------------------


def test_stock_pusher_and_resolver_honour_the_blessing(world, tmp_path):
    good, _, _ = _evaluate(world, tmp_path, "memorizer")
    bad, _, _ = _evaluate(world, tmp_path, "constant")
    serving = tmp_path / "serving"
    destination = proto_utils.proto_to_json(pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving))))
    pushed = {}
    for kind, blessing in (("memorizer", good), ("constant", bad)):
        pushed_model = standard_artifacts.PushedModel()
        pushed_model.uri = str(tmp_path / f"pushed_{kind}")
        pusher_executor.Executor().Do(
            {"model": [world["models"][kind]], "model_blessing": [blessing]},
            {"pushed_model": [pushed_model]}, {"push_destination": destination, "custom_config": "{}"})
        pushed[kind] = pushed_model.get_int_custom_property("pushed")
    assert pushed == {"memorizer": 1, "constant": 0}
    versions = os.listdir(serving)
    assert len(versions) == 1 and os.path.exists(serving / versions[0] / "saved_model.pb")

    resolved = LatestBlessedModelStrategy().resolve_artifacts(
        None, {"model": [world["models"]["memorizer"], world["models"]["constant"]], "model_blessing": [good, bad]})
    assert [model.id for model in resolved["model"]] == [world["models"]["memorizer"].id]


# --- the component, the streaming and the pure rules ---------------------------------------------


def test_component_takes_its_settings_and_the_serving_base_not_a_resolver():
    examples = channel.Channel(type=standard_artifacts.Examples)
    model = channel.Channel(type=standard_artifacts.Model)
    settings = EvaluateConfig(max_fid=50, min_improvement=0.05, min_coverage=0.4, ignore_unusable_baseline=True)
    evaluator = GanEvaluator(examples=examples, model=model, config=settings, image_size=16, channels=1,
                             serving_base="/models/generator")
    assert set(evaluator.inputs) == {"examples", "model"}  # no baseline channel: nothing to resolve
    assert EvaluateConfig.from_dict(json.loads(evaluator.exec_properties["config"])) == settings
    assert evaluator.exec_properties["image_size"] == 16 and evaluator.exec_properties["channels"] == 1
    assert evaluator.exec_properties["serving_base"] == "/models/generator"
    assert set(evaluator.outputs) == {"blessing", "evaluation"}
    assert evaluator.outputs["blessing"].type == standard_artifacts.ModelBlessing
    with pytest.raises(TypeError):
        GanEvaluator(examples=examples, model=model, config=EvaluateConfig())  # shape and serving base required


def test_the_baseline_is_the_newest_serving_version_whoever_put_it_there(world, tmp_path):
    serving = tmp_path / "serving" / "generator"
    _serve(world["models"]["blurry"], serving / "3")
    _serve(world["models"]["memorizer"], serving / "7", record=False)  # copied in by hand
    (serving / ".push-host-1-abc").mkdir()  # an interrupted push: not a version
    found = executor.serving_baseline(str(serving))
    assert (found.version, found.path, found.model_id) == (7, str(serving / "7"), None)
    assert "placed by hand" in found.origin
    assert executor.serving_baseline(str(tmp_path / "nothing")).version == 0


def test_streaming_in_small_batches_gives_the_same_scores(world):
    """The evaluator never holds a whole image set: batch size must not change a single number."""
    from ganpipe.evaluation import metrics
    from ganpipe.evaluation.feature_extractors import get_extractor

    extractor = get_extractor()
    images = _digits()[:300]
    reference = sampling.summarize([_digits()[300:500]], extractor).summary
    whole = sampling.summarize([images], extractor)
    pieces = sampling.summarize((images[i:i + 7] for i in range(0, 300, 7)), extractor)
    assert whole.count == pieces.count == 300 and len(pieces.grid) == sampling.GRID_IMAGES
    np.testing.assert_array_equal(whole.grid, pieces.grid)
    first, second = metrics.score(whole.summary, reference), metrics.score(pieces.summary, reference)
    for key, value in first.to_dict().items():
        assert getattr(second, key) == value, key  # bit for bit: the extractor sees fixed blocks


def test_sample_checker_and_judge_rules():
    rng = np.random.default_rng(0)
    varied = rng.integers(0, 256, size=(8, 4, 4, 1), dtype=np.uint8)

    def problems(*batches, count=8, size=4):
        checker = rules.SampleChecker(count, size, 1)
        for batch in batches:
            checker.update(batch)
        return checker.problems()

    assert problems(varied) == [] and problems(varied[:3], varied[3:]) == []
    assert "shape" in problems(varied, size=8)[0]
    assert "returned 8 images for 9 seeds" in problems(varied, count=9)[0]
    flat = np.repeat(np.arange(8, dtype=np.uint8)[:, None, None, None], 16, axis=1).reshape(8, 4, 4, 1)
    assert any("flat colour" in p for p in problems(flat))
    assert any("same image" in p for p in problems(np.repeat(varied[:1], 8, axis=0)))
    assert any("only 3 distinct" in p for p in problems(varied[np.arange(8) % 3]))
    assert any("NaN" in p for p in problems(np.full((8, 4, 4, 1), np.inf, np.float32)))

    def limits(**values) -> EvaluateConfig:
        return EvaluateConfig(**{"max_fid_over_floor": 0.0, "min_coverage_of_floor": 0.0, **values})

    off = limits()
    good = {"fid": 10.0, "kid": 0.1, "recall": 0.5, "coverage": 0.6}
    assert rules.judge(good, [], None, off) == (True, [])
    assert rules.judge({**good, "fid": float("nan")}, [], None, off)[0] is False
    assert rules.judge(None, ["broken"], None, off)[1][0] == "broken"
    assert rules.judge(good, [], {"fid": 10.0}, off)[0] is True
    assert rules.judge(good, [], {"fid": 10.5}, limits(min_improvement=0.1))[0] is False  # <= 9.45
    assert rules.judge({**good, "fid": 9.0}, [], {"fid": 10.5}, limits(max_fid=9.5, min_improvement=0.1))[0]
    assert rules.judge({**good, "fid": 9.6}, [], None, limits(max_fid=9.5))[0] is False
    assert rules.judge(good, [], None, limits(max_kid=0.05))[0] is False
    assert rules.judge(good, [], None, limits(min_recall=0.6))[0] is False
    assert rules.judge(good, [], None, limits(min_coverage=0.6))[0] is True
    assert rules.judge({**good, "coverage": None}, [], None, limits(min_coverage=0.1))[0] is False
    assert rules.judge(good, [], None, off, baseline_error="gone")[0] is False
    assert rules.judge(good, [], None, limits(ignore_unusable_baseline=True), baseline_error="gone")[0] is True
    # Floor-relative limits (on by default): FID within 8x the real floor's, coverage >= 0.25 of the floor's.
    floor = {"fid": 1.0, "coverage": 0.9}
    assert rules.judge({**good, "fid": 7.9, "coverage": 0.3}, [], None, EvaluateConfig(), real_floor=floor)[0]
    too_far = rules.judge({**good, "fid": 8.1, "coverage": 0.3}, [], None, EvaluateConfig(), real_floor=floor)
    assert too_far[0] is False and "max_fid_over_floor" in too_far[1][0]
    too_narrow = rules.judge({**good, "fid": 2.0, "coverage": 0.2}, [], None, EvaluateConfig(), real_floor=floor)
    assert too_narrow[0] is False and "min_coverage_of_floor" in too_narrow[1][0]
    assert rules.judge({**good, "fid": 8.1, "coverage": 0.2}, [], None, off, real_floor=floor)[0] is True


def test_evaluate_config_checks_rules_and_extractor_specs(tmp_path):
    from ganpipe.pipeline.config import ConfigError, load_config

    config = load_config(None, {"evaluate.min_coverage": "0.5", "evaluate.ignore_unusable_baseline": "true",
                                "evaluate.extractor": f"keras:{tmp_path / 'f.keras'}"})
    assert config.evaluate.min_coverage == 0.5 and config.evaluate.ignore_unusable_baseline is True
    with pytest.raises(ConfigError, match="does not exist"):  # checked before a local run trains for hours
        config.check_local_files()
    for key, value in (("evaluate.min_recall", "1.5"), ("evaluate.max_kid", "-1"),
                       ("evaluate.extractor", "inception"), ("evaluate.extractor", "savedmodel:")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, {key: value})
