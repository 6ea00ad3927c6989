"""The trainer package on its own: models, losses, data, the training loop, export, entry points.

Everything runs for real (TensorFlow, Keras, TFRecords, SavedModels) at toy
sizes. The exported generator is loaded in a separate, isolated Python
process that cannot import this project, as TF Serving or a client would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from ganpipe import contract  # noqa: E402
from ganpipe.trainer.config import SUPPORTED_CHANNELS, SUPPORTED_IMAGE_SIZES, TrainerConfig, network_spec  # noqa: E402
from ganpipe.trainer.data import NoDataError, input_spec, load_images, make_dataset  # noqa: E402
from ganpipe.trainer.losses import (  # noqa: E402
    discriminator_loss, discriminator_loss_per_example, generator_loss, generator_loss_per_example,
)
from ganpipe.trainer.models import build_discriminator, build_generator  # noqa: E402
from ganpipe.trainer.task import run_fn  # noqa: E402
from ganpipe.trainer.train import train_run  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(image_size=16, channels=1, batch_size=8, steps=4, log_every=2, sample_every=2, shuffle_buffer=64)


# ---------------------------------------------------------------- helpers

def _example(pixels: np.ndarray, index: int, label: int = contract.UNKNOWN_LABEL) -> bytes:
    """A tf.Example exactly as ingestion writes it (PNG bytes plus the contract's metadata)."""
    encoded = tf.io.encode_png(pixels).numpy()
    height, width, channels = pixels.shape

    def ints(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    def raw(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    features = {
        contract.IMAGE_KEY: raw(encoded),
        contract.HEIGHT_KEY: ints(height),
        contract.WIDTH_KEY: ints(width),
        contract.CHANNELS_KEY: ints(channels),
        contract.LABEL_KEY: ints(label),
        contract.SOURCE_KEY: raw(f"test#{index}".encode()),
        contract.SHA256_KEY: raw(hashlib.sha256(encoded).hexdigest().encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write_split(split_dir: Path, images: np.ndarray, files: int = 2, labels: np.ndarray | None = None) -> None:
    """GZIP TFRecords under <uri>/Split-x/, spread over several files as ExampleGen does."""
    split_dir.mkdir(parents=True)
    for part in range(files):
        path = split_dir / f"data_tfrecord-{part:05d}-of-{files:05d}.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for index in range(part, len(images), files):
                label = contract.UNKNOWN_LABEL if labels is None else int(labels[index])
                writer.write(_example(images[index], index, label))


def _blobs(count: int, size: int, channels: int, seed: int) -> np.ndarray:
    """Distinct smooth blobs (uint8), so batches have structure and differ from each other."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((count, size, size, channels), np.uint8)
    for index in range(count):
        cy, cx = rng.uniform(2, size - 2, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (size / 2)) * 230
        for channel in range(channels):
            noise = rng.integers(0, 25, (size, size))
            out[index, :, :, channel] = np.clip(blob * (1 - 0.3 * channel) + noise, 0, 255)
    return out


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.weights]


def _scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """TensorBoard scalars read back from the event files: {tag: {step: value}}."""
    from tensorflow.core.util import event_pb2

    values: dict[str, dict[int, float]] = {}
    for path in run_dir.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return values


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def examples_uri(tmp_path_factory) -> Path:
    """An Examples artifact: 40 grey 16x16 train images and 12 RGB 20x20 eval images."""
    uri = tmp_path_factory.mktemp("examples")
    _write_split(uri / "Split-train", _blobs(40, 16, 1, seed=1))
    _write_split(uri / "Split-eval", _blobs(12, 20, 3, seed=2), files=1)
    return uri


@pytest.fixture(scope="module")
def train_pattern(examples_uri: Path) -> str:
    return str(examples_uri / "Split-train" / "*")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_pattern: str) -> types.SimpleNamespace:
    """One real run through TFX's entry point (run_fn reads plain attributes only)."""
    root = tmp_path_factory.mktemp("trained")
    cfg = TrainerConfig(**TINY)
    fn_args = types.SimpleNamespace(
        train_files=[train_pattern],
        serving_model_dir=str(root / "serving_model_dir"),
        model_run_dir=str(root / "model_run_dir"),
        custom_config={"trainer": cfg.to_dict()},
    )
    run_fn(fn_args)
    return types.SimpleNamespace(cfg=cfg, model_dir=Path(fn_args.serving_model_dir),
                                 run_dir=Path(fn_args.model_run_dir))


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("channels", SUPPORTED_CHANNELS)
@pytest.mark.parametrize("size", SUPPORTED_IMAGE_SIZES)
def test_models_shapes_and_ranges(size: int, channels: int):
    cfg = TrainerConfig(image_size=size, channels=channels, latent_dim=16)
    generator = build_generator(network_spec(cfg))
    discriminator = build_discriminator(network_spec(cfg))
    z = tf.random.stateless_normal([3, cfg.latent_dim], seed=[0, 0]) * 3.0
    images = generator(z, training=False).numpy()
    assert images.shape == (3, size, size, channels)
    assert images.dtype == np.float32
    assert np.all(images >= -1.0) and np.all(images <= 1.0)
    assert np.std(images) > 0  # not a constant image
    logits = discriminator(images, training=False).numpy()
    assert logits.shape == (3, 1)
    assert np.isfinite(logits).all()


def test_models_are_the_tutorials_at_28x28():
    """Parameter counts of the TensorFlow DCGAN tutorial's MNIST networks, to the unit."""
    cfg = TrainerConfig(image_size=28, channels=1)
    assert build_generator(network_spec(cfg)).count_params() == 2_330_944
    assert build_discriminator(network_spec(cfg)).count_params() == 212_865


# ---------------------------------------------------------------- losses

def test_losses_at_chance_and_global_batch_reduction():
    zeros = tf.zeros([4, 1])
    np.testing.assert_allclose(generator_loss(zeros).numpy(), np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(discriminator_loss(zeros, zeros).numpy(), 2 * np.log(2.0), rtol=1e-6)
    # A replica holding 4 of a global batch of 8 contributes half the mean.
    np.testing.assert_allclose(generator_loss(zeros, global_batch_size=8).numpy(), np.log(2.0) / 2, rtol=1e-6)
    # Non-saturating: a confident discriminator (fake logit -10) gives the generator a large loss.
    confident = generator_loss_per_example(tf.constant([[-10.0]])).numpy()
    assert confident.shape == (1,) and confident[0] > 9.9
    # A perfect discriminator (real +10, fake -10) has near-zero loss; a fooled one a large loss.
    assert discriminator_loss_per_example(tf.constant([10.0]), tf.constant([-10.0])).numpy()[0] < 1e-3
    assert discriminator_loss_per_example(tf.constant([-10.0]), tf.constant([10.0])).numpy()[0] > 19.9


# ---------------------------------------------------------------- data

def test_make_dataset_gives_batches_in_range(train_pattern: str):
    cfg = TrainerConfig(**TINY)
    batch = next(iter(make_dataset([train_pattern], input_spec(cfg)))).numpy()
    assert batch.shape == (8, 16, 16, 1) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    assert batch.max() - batch.min() > 1.0  # real pixels, not a constant

    # Without repeat, drop_remainder leaves floor(40 / 8) full batches.
    assert len(list(make_dataset([train_pattern], input_spec(cfg), repeat=False))) == 5


def test_make_dataset_order_follows_the_seed(train_pattern: str):
    def first_batches(seed: int) -> np.ndarray:
        cfg = TrainerConfig(**{**TINY, "seed": seed})
        return np.stack([b.numpy() for b in make_dataset([train_pattern], input_spec(cfg)).take(3)])

    np.testing.assert_array_equal(first_batches(0), first_batches(0))
    assert not np.array_equal(first_batches(0), first_batches(1))


def test_make_dataset_streams_agree_cached_or_not_split_or_whole_and_resumed(train_pattern: str):
    """The properties distributed training and resuming rely on: decoding once (cached) or per epoch
    gives the same stream; two input pipelines' rows, side by side, are the one-pipeline batch; and
    skip_batches=k starts at batch k. Labels travel with their images."""
    cfg = TrainerConfig(**TINY)

    def batches(count: int, **kwargs) -> list:
        dataset = make_dataset([train_pattern], input_spec(cfg), with_labels=True, **kwargs)
        return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]

    whole = batches(8, cache=False)  # 8 batches of 8 from 40 images: crosses a reshuffled epoch
    assert len(whole) == 8 and whole[0][0].shape == (8, 16, 16, 1)
    for cached, plain in zip(batches(8, cache=True), whole):
        np.testing.assert_array_equal(cached[0], plain[0])
        np.testing.assert_array_equal(cached[1], plain[1])
    for cache in (False, True):
        halves = [batches(8, cache=cache, input_context=tf.distribute.InputContext(2, pipeline, 2))
                  for pipeline in (0, 1)]
        for index, (first, second) in enumerate(zip(*halves)):
            np.testing.assert_array_equal(np.concatenate([first[0], second[0]]), whole[index][0])
        resumed = batches(3, cache=cache, skip_batches=5)
        for index, batch in enumerate(resumed):
            np.testing.assert_array_equal(batch[0], whole[5 + index][0])


def test_make_dataset_converts_channels_and_resizes(train_pattern: str, examples_uri: Path):
    # Grey stored -> 3 channels: three equal channels.
    rgb = next(iter(make_dataset([train_pattern], input_spec(TrainerConfig(**{**TINY, "channels": 3}))))).numpy()
    assert rgb.shape == (8, 16, 16, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    # RGB 20x20 stored -> grey 32x32 (resized up).
    eval_cfg = TrainerConfig(**{**TINY, "image_size": 32, "batch_size": 4})
    eval_pattern = str(examples_uri / "Split-eval" / "*")
    grey = next(iter(make_dataset([eval_pattern], input_spec(eval_cfg), shuffle=False))).numpy()
    assert grey.shape == (4, 32, 32, 1)
    assert grey.min() >= -1.0 and grey.max() <= 1.0


def test_load_images_returns_the_stored_pixels(examples_uri: Path):
    pattern = str(examples_uri / "Split-train" / "*")
    images = load_images([pattern], channels=1, image_size=16)
    assert images.dtype == np.uint8 and images.shape == (40, 16, 16, 1)
    # PNG is lossless and no resize is needed: exactly the pixels written, as a set.
    stored = _blobs(40, 16, 1, seed=1)
    assert sorted(map(bytes, images)) == sorted(map(bytes, stored))

    limited = load_images([str(examples_uri / "Split-eval" / "*")], channels=3, image_size=8, limit=5)
    assert limited.dtype == np.uint8 and limited.shape == (5, 8, 8, 3)


def test_no_matching_files_is_a_clear_error(tmp_path: Path):
    pattern = str(tmp_path / "Split-train" / "*")
    with pytest.raises(NoDataError, match="no TFRecord files match"):
        make_dataset([pattern], input_spec(TrainerConfig(**TINY)))
    with pytest.raises(NoDataError, match="Split-train"):
        load_images([pattern], channels=1, image_size=16)


# ---------------------------------------------------------------- training

def test_training_writes_logs_and_plots(trained: types.SimpleNamespace):
    scalars = _scalars(trained.run_dir)
    for tag in ("g_loss", "d_loss", "d_real", "d_fake"):
        assert sorted(scalars[tag]) == [1, 2, 3, 4], tag  # every step
        assert all(np.isfinite(v) for v in scalars[tag].values()), tag
    for tag in ("d_real", "d_fake"):
        assert all(0.0 <= v <= 1.0 for v in scalars[tag].values()), tag
    assert sorted(scalars["steps_per_sec"]) == [2, 4]  # every log_every steps
    assert all(v > 0 for v in scalars["steps_per_sec"].values())

    for name in ("loss_curve.png", "samples.png", "samples/step_000002.png", "samples/step_000004.png"):
        data = (trained.run_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert tf.io.decode_png(data).shape[0] > 100, name  # a real figure, not a stub


def test_training_changes_weights_and_is_reproducible(tmp_path: Path, train_pattern: str):
    cfg = TrainerConfig(**{**TINY, "steps": 3, "log_every": 3, "sample_every": 3})
    keras.utils.set_random_seed(cfg.seed)
    initial = _weights(build_generator(network_spec(cfg)))  # train_run() initialises from the same seed

    first = _weights(train_run(cfg, [train_pattern], str(tmp_path / "a")).generator)
    second = _weights(train_run(cfg, [train_pattern], str(tmp_path / "b")).generator)

    assert len(first) == len(initial)
    assert any(not np.array_equal(a, b) for a, b in zip(first, initial)), "training did not update weights"
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    reseeded = TrainerConfig(**{**cfg.to_dict(), "seed": 1})
    other_seed = _weights(train_run(reseeded, [train_pattern], str(tmp_path / "c")).generator)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other_seed))


def test_training_on_files_without_examples_fails_clearly(tmp_path: Path):
    from ganpipe.trainer.train import EmptyDatasetError

    _write_split(tmp_path / "Split-train", _blobs(0, 16, 1, seed=3), files=1)  # a file, no records
    with pytest.raises(EmptyDatasetError, match="holds no examples"):
        train_run(TrainerConfig(**TINY), [str(tmp_path / "Split-train" / "*")], str(tmp_path / "run"))


# ---------------------------------------------------------------- export

LOAD_IN_CLEAN_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    model = tf.saved_model.load(sys.argv[1])
    serve = model.signatures["serving_default"]
    seeds_fn = model.signatures["generate_from_seeds"]
    result = {"signatures": sorted(model.signatures.keys()),
              "project_importable": any(m in sys.modules for m in ("trainer", "components", "pipeline"))}

    a = seeds_fn(seeds=tf.constant([5, 6, 7], tf.int64))
    b = seeds_fn(seeds=tf.constant([7, 9, 5, 5], tf.int64))
    result["seeds_images"] = [str(a["images"].dtype.name), list(a["images"].shape)]
    result["seeds_png"] = [str(a["png_bytes"].dtype.name), list(a["png_bytes"].shape)]
    result["same_seed_same_bytes"] = bool(
        np.array_equal(a["images"][0], b["images"][2]) and np.array_equal(a["images"][0], b["images"][3])
        and np.array_equal(a["images"][2], b["images"][0]) and a["png_bytes"][2].numpy() == b["png_bytes"][0].numpy())
    result["different_seeds_differ"] = not np.array_equal(a["images"][0], a["images"][1])
    decoded = tf.io.decode_png(a["png_bytes"][1]).numpy()
    result["png_roundtrip"] = bool(np.array_equal(decoded, a["images"][1].numpy()))

    z = tf.random.stateless_normal([6, int(serve.structured_input_signature[1]["z"].shape[1])], seed=[1, 2])
    full = serve(z=z)["images"]
    single = serve(z=z[3:4])["images"]
    result["serving_images"] = [str(full.dtype.name), list(full.shape)]
    # Inference-mode BatchNorm: a row's image does not depend on the rest of the batch.
    gap = np.abs(full[3].numpy().astype(int) - single[0].numpy().astype(int))
    result["serving_batch_independent"] = int(gap.max())
    result["pixel_range"] = [int(full.numpy().min()), int(full.numpy().max())]
    print("RESULT " + json.dumps(result))
""")


SUMMARIZE_EXPORTS_IN_CLEAN_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    out = {}
    for path in sys.argv[1:]:
        model = tf.saved_model.load(path)
        signatures = model.signatures
        latent = int(signatures["serving_default"].structured_input_signature[1]["z"].shape[1])
        z = tf.random.stateless_normal([4, latent], seed=[3, 4])
        images = signatures["serving_default"](z=z)["images"].numpy()
        seeds = signatures["generate_from_seeds"](seeds=tf.constant([1, 2], tf.int64))
        result = {"signatures": sorted(signatures), "serving": [images.dtype.name, list(images.shape)],
                  "seeds": [seeds["images"].dtype.name, list(seeds["images"].shape)],
                  "pixel_std": float(images.std()), "num_classes": int(model.num_classes.numpy()),
                  "project_importable": any(m in sys.modules for m in ("trainer", "components", "pipeline"))}
        try:
            signatures["serving_default"](z=tf.fill([1, latent], float("nan")))
            result["nan_z"] = "accepted"
        except tf.errors.InvalidArgumentError as error:
            result["nan_z"] = error.message[:2000]
        if "generate_with_labels" in signatures:
            by_label = [signatures["generate_with_labels"](z=z, labels=tf.fill([4], tf.constant(k, tf.int64)))
                        ["images"].numpy() for k in (0, 1)]
            result["with_labels"] = [by_label[0].dtype.name, list(by_label[0].shape)]
            result["label_changes_image"] = bool(not np.array_equal(by_label[0], by_label[1]))
        out[path] = result
    print("RESULT " + json.dumps(out))
""")


def summarize_exports_in_clean_process(model_dirs: list[Path], cwd: Path) -> dict[str, dict]:
    """Loads each SavedModel with plain TensorFlow in an isolated process (no project code) and calls
    every signature; {model_dir: summary}."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-I", "-c", SUMMARIZE_EXPORTS_IN_CLEAN_PROCESS,
                           *map(str, model_dirs)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_export_loads_with_plain_tensorflow_in_a_clean_process(trained: types.SimpleNamespace,
                                                              tmp_path: Path):
    assert (trained.model_dir / "saved_model.pb").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # -I: isolated mode (no PYTHONPATH, no user site, no cwd on sys.path); cwd is not the repo.
    done = subprocess.run([sys.executable, "-I", "-c", LOAD_IN_CLEAN_PROCESS, str(trained.model_dir)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])

    size, channels = trained.cfg.image_size, trained.cfg.channels
    assert result["signatures"] == sorted([contract.SERVING_SIGNATURE, contract.SEEDS_SIGNATURE])
    assert result["project_importable"] is False
    assert result["seeds_images"] == ["uint8", [3, size, size, channels]]
    assert result["seeds_png"] == ["string", [3]]
    assert result["same_seed_same_bytes"] is True
    assert result["different_seeds_differ"] is True
    assert result["png_roundtrip"] is True
    assert result["serving_images"] == ["uint8", [6, size, size, channels]]
    assert result["serving_batch_independent"] <= 1  # equal up to float rounding across batch sizes
    low, high = result["pixel_range"]
    assert 0 <= low < high <= 255


def test_export_object_graph_has_no_keras_types(trained: types.SimpleNamespace):
    """Nothing in the SavedModel asks the loader for Keras classes (so plain TF revives it)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((trained.model_dir / "saved_model.pb").read_bytes())
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    names = {node.user_object.identifier for node in nodes if node.WhichOneof("kind") == "user_object"}
    names |= {node.registered_name for node in nodes if node.registered_name}
    assert not any("keras" in name.lower() for name in names), names


# ---------------------------------------------------------------- entry points

def test_cli_rejects_bad_config_without_loading_tensorflow(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys, ganpipe.trainer.task as t; rc = t.main(sys.argv[1:]); "
         "assert 'tensorflow' not in sys.modules; sys.exit(rc)",
         "--train-files", "x", "--model-dir", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r"),
         "--config-json", '{"image_size": 16, "no_such_setting": 1}'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "no_such_setting" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_trains_and_exports_without_tfx(tmp_path: Path, train_pattern: str):
    """`python -m ganpipe.trainer.task` end to end, and proof that the trainer never imports tfx."""
    config = json.dumps({**TINY, "steps": 2, "log_every": 1, "sample_every": 2})
    script = textwrap.dedent("""
        import runpy, sys
        try:
            runpy.run_module("ganpipe.trainer.task", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = 0
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"tfx", "pipeline", "components"})
        print("LOADED", ",".join(loaded) or "-")
        sys.exit(code)
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", script, "--train-files", train_pattern, "--model-dir", str(tmp_path / "model"),
         "--run-dir", str(tmp_path / "run"), "--config-json", config],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED -" in done.stdout, done.stdout
    assert (tmp_path / "model" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "loss_curve.png").exists()



def test_cli_reports_missing_files_in_one_line(tmp_path: Path, capsys):
    from ganpipe.trainer.task import main

    code = main(["--train-files", str(tmp_path / "nothing" / "*"), "--model-dir", str(tmp_path / "m"),
                 "--run-dir", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no TFRecord files match" in err and "Traceback" not in err
