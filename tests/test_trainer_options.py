"""Losses and options beyond the tutorial: each combination trains without NaN and exports a
generator that plain TensorFlow loads in a clean process; the EMA, conditioning and config rules."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from ganpipe.pipeline.config import ConfigError, load_config  # noqa: E402
from tests.test_trainer import TINY, _blobs, _scalars, _write_split, summarize_exports_in_clean_process  # noqa: E402
from ganpipe import contract  # noqa: E402
from ganpipe.trainer.config import AUTO_DROPOUT, TrainerConfig, network_spec  # noqa: E402
from ganpipe.trainer.data import input_spec, make_dataset  # noqa: E402
from ganpipe.trainer.task import train  # noqa: E402
from ganpipe.trainer.train import GanTrainer, TrainingDataError, resolve_config, train_run  # noqa: E402

CLASSES = 3
COMBINATIONS = {
    "bce+ema+r1": dict(loss="bce", ema_decay=0.99, r1_gamma=1.0),
    "hinge+spectral_norm+conditional": dict(loss="hinge", spectral_norm=True, conditional=True),
    "wgan-gp+conditional+ema": dict(loss="wgan-gp", beta_1=0.0, beta_2=0.9, conditional=True, ema_decay=0.9,
                                    generator_lr=2e-4, discriminator_lr=4e-4),
    "bfloat16+r1+spectral_norm": dict(mixed_precision="bfloat16", r1_gamma=0.5, spectral_norm=True),
    "float16(loss scaling)+hinge": dict(mixed_precision="float16", loss="hinge"),
    "xla+per-replica-bn+no-checkpoints": dict(jit_compile=True, sync_batch_norm=False, checkpoint_every=0),
}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> str:
    """48 grey 16x16 images with labels 0, 1, 2."""
    uri = tmp_path_factory.mktemp("labelled")
    _write_split(uri / "Split-train", _blobs(48, 16, 1, seed=5), labels=np.arange(48) % CLASSES)
    return str(uri / "Split-train" / "*")


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory) -> str:
    uri = tmp_path_factory.mktemp("unlabelled")
    _write_split(uri / "Split-train", _blobs(16, 16, 1, seed=6))
    return str(uri / "Split-train" / "*")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled: str) -> dict[str, types.SimpleNamespace]:
    """Each combination trained 2 steps (metrics read every step) and exported."""
    runs = {}
    for name, options in COMBINATIONS.items():
        root = tmp_path_factory.mktemp("combo")
        cfg = TrainerConfig(**{**TINY, "steps": 2, "log_every": 1, "sample_every": 2, **options})
        train(cfg, [labelled], str(root / "model"), str(root / "run"))
        runs[name] = types.SimpleNamespace(cfg=cfg, model_dir=root / "model", run_dir=root / "run")
    return runs


@pytest.fixture(scope="module")
def loaded(trained: dict, tmp_path_factory) -> dict[str, dict]:
    summaries = summarize_exports_in_clean_process([run.model_dir for run in trained.values()],
                                                   tmp_path_factory.mktemp("clean"))
    return {name: summaries[str(run.model_dir)] for name, run in trained.items()}


@pytest.mark.parametrize("name", COMBINATIONS)
def test_combination_trains_without_nan(name: str, trained: dict):
    run = trained[name]
    scalars = _scalars(run.run_dir)
    for tag in ("g_loss", "d_loss", "d_real", "d_fake"):
        assert sorted(scalars[tag]) == [1, 2], tag
        assert all(np.isfinite(value) for value in scalars[tag].values()), (tag, scalars[tag])
    # The exported weights themselves (read back from the SavedModel's variables) are finite.
    reader = tf.train.load_checkpoint(str(run.model_dir / "variables" / "variables"))
    floats = [reader.get_tensor(key) for key in reader.get_variable_to_shape_map()]
    floats = [value for value in floats if isinstance(value, np.ndarray) and value.dtype.kind == "f"]
    assert floats and all(np.isfinite(value).all() for value in floats)
    assert (run.run_dir / "loss_curve.png").exists() and (run.run_dir / "samples.png").exists()
    assert (run.run_dir / "checkpoints").exists() == bool(run.cfg.checkpoint_every)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_combination_exports_a_generator_plain_tensorflow_loads(name: str, trained: dict, loaded: dict):
    cfg, summary = trained[name].cfg, loaded[name]
    shape = [4, cfg.image_size, cfg.image_size, cfg.channels]
    assert summary["project_importable"] is False
    assert summary["serving"] == ["uint8", shape]
    assert summary["seeds"] == ["uint8", [2, *shape[1:]]]
    assert summary["pixel_std"] > 0
    assert "z must hold finite numbers" in summary["nan_z"]  # an error, not a silently black image
    base = sorted([contract.SERVING_SIGNATURE, contract.SEEDS_SIGNATURE])
    if cfg.conditional:
        assert summary["signatures"] == sorted([*base, contract.CONDITIONAL_SIGNATURE])
        assert summary["num_classes"] == CLASSES  # inferred from the data's labels
        assert summary["with_labels"] == ["uint8", shape]
        assert summary["label_changes_image"] is True
    else:
        assert summary["signatures"] == base
        assert summary["num_classes"] == 0


def test_ema_generator_follows_the_documented_average(labelled: str):
    """After a step, EMA = d * before + (1 - d) * trained weights with d = min(decay, (1+t)/(10+t));
    BatchNorm moving statistics are copied."""
    cfg = TrainerConfig(**{**TINY, "ema_decay": 0.5, "augment": "off"})  # GanTrainer alone: no count for auto
    tf.keras.utils.set_random_seed(cfg.seed)
    trainer = GanTrainer(cfg, tf.distribute.get_strategy())
    ema, raw = trainer.ema_generator, trainer.generator
    np.testing.assert_array_equal(ema.get_weights()[0], raw.get_weights()[0])  # starts as a copy
    before = [np.array(v) for v in ema.trainable_variables]
    batch = next(iter(make_dataset([labelled], input_spec(cfg))))
    trainer.train_step(batch, tf.constant(1, tf.int64))
    decay = min(0.5, 2.0 / 11.0)
    for average, start, weight in zip(ema.trainable_variables, before, raw.trainable_variables):
        assert not np.allclose(np.array(weight), start)  # the raw generator moved
        np.testing.assert_allclose(np.array(average), decay * start + (1 - decay) * np.array(weight),
                                   rtol=1e-5, atol=1e-7)
    for average, weight in zip(ema.non_trainable_variables, raw.non_trainable_variables):
        np.testing.assert_array_equal(np.array(average), np.array(weight))


def test_conditional_needs_labels_on_every_image(tmp_path: Path, unlabelled: str, labelled: str):
    cfg = TrainerConfig(**{**TINY, "conditional": True})
    with pytest.raises(TrainingDataError, match="needs a label on every training image: 16 of 16"):
        train_run(cfg, [unlabelled], str(tmp_path / "a"))
    with pytest.raises(TrainingDataError, match="train.num_classes=2: the training data has label 2"):
        train_run(TrainerConfig(**{**TINY, "conditional": True, "num_classes": 2}), [labelled], str(tmp_path / "b"))


def test_a_class_with_no_training_image_is_kept_and_classes_ship_with_their_names(tmp_path: Path):
    """Ingestion found 5 class folders; the one image of "zebra" landed in the eval split. The generator
    still has 5 classes (the ingest report's, not 1 + the largest training label), label 4 works, and the
    SavedModel carries the names in label order for a client that wants "class X"."""
    names = ["ant", "bee", "cat", "dog", "zebra"]
    uri = tmp_path / "examples"
    _write_split(uri / "Split-train", _blobs(32, 16, 1, seed=8), labels=np.arange(32) % 4)
    (uri / contract.INGEST_REPORT_FILE).write_text(json.dumps({"label_names": names}))
    model_dir = tmp_path / "model"
    train(TrainerConfig(**{**TINY, "conditional": True, "steps": 1, "sample_every": 1}),
          [str(uri / "Split-train" / "*")], str(model_dir), str(tmp_path / "run"))

    loaded = tf.saved_model.load(str(model_dir))
    assert int(loaded.num_classes.numpy()) == 5
    assert [name.decode() for name in loaded.class_names.numpy()] == names
    assert (model_dir / "assets" / contract.CLASS_NAMES_ASSET).read_text().splitlines() == names
    images = loaded.signatures[contract.CONDITIONAL_SIGNATURE](
        z=tf.zeros([1, TINY.get("latent_dim", 100)]), labels=tf.constant([4], tf.int64))[contract.IMAGES_OUTPUT]
    assert images.shape == (1, 16, 16, 1)


def test_without_class_names_the_top_class_in_the_eval_split_is_kept(tmp_path: Path):
    """Arrays and imported TFRecords have no class folders: the class set is the labels of every split."""
    uri = tmp_path / "examples"
    _write_split(uri / "Split-train", _blobs(24, 16, 1, seed=8), labels=np.arange(24) % 3)
    _write_split(uri / "Split-eval", _blobs(4, 16, 1, seed=9), labels=np.array([3, 3, 0, 1]))
    result = train_run(TrainerConfig(**{**TINY, "conditional": True, "steps": 1, "sample_every": 1}),
                       [str(uri / "Split-train" / "*")], str(tmp_path / "run"))
    assert result.cfg.num_classes == 4 and result.class_names == ("0", "1", "2", "3")


@pytest.mark.parametrize(
    "override, message",
    [
        ({"train.loss": "lsgan"}, "train.loss='lsgan'"),
        ({"train.ema_decay": "1.0"}, "train.ema_decay"),
        ({"train.mixed_precision": "true"}, "train.mixed_precision"),
        ({"train.workers": "3"}, "train.batch_size=auto (64 for this architecture) must split evenly "
                                 "over train.workers=3; set train.batch_size"),
        ({"train.workers": "3", "train.batch_size": "64"},
         "train.batch_size=64: the global batch must split evenly over train.workers=3"),
        ({"train.num_classes": "10"}, "train.num_classes=10: only meaningful with train.conditional=true"),
        ({"train.checkpoint_every": "-1"}, "train.checkpoint_every"),
        ({"train.r1_gamma": "-1"}, "train.r1_gamma"),
        ({"train.beta_2": "1"}, "train.beta_2"),
        ({"train.discriminator_dropout": "1"}, "train.discriminator_dropout"),
        ({"train.batch_norm_momentum": "-0.1"}, "train.batch_norm_momentum"),
    ],
)
def test_bad_options_are_rejected_naming_the_key(override: dict, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, override)


def test_options_map_from_yaml_and_set(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  loss: wgan-gp\n  spectral_norm: true\n  checkpoint_dir: /durable/ckpt\n"
                    "  mixed_precision: none\n")
    cfg = load_config(str(path), {"train.ema_decay": "0", "train.workers": "2",
                                  "train.discriminator_dropout": "0"}).train
    assert (cfg.loss, cfg.spectral_norm, cfg.ema_decay, cfg.workers) == ("wgan-gp", True, 0.0, 2)
    assert cfg.discriminator_dropout == 0.0
    assert cfg.checkpoint_dir == "/durable/ckpt"
    default = TrainerConfig()  # the tutorial's networks; faster-converging training settings (bench/)
    assert (default.loss, default.spectral_norm, default.conditional) == ("auto", False, False)  # bce unless resnet
    assert (default.architecture, default.augment, default.width) == ("auto", "auto", 32)
    assert (default.ema_decay, default.generator_lr, default.batch_norm_momentum) == (0.999, 2e-4, 0.9)
    assert (default.discriminator_dropout, default.batch_size, default.upsample) == (AUTO_DROPOUT, 0, "auto")
    # auto: per architecture (trainer/config.py ARCHITECTURE_DEFAULTS, measured in bench/)
    tutorial = resolve_config(dataclasses.replace(default, image_size=28, channels=1, augment="off"))
    assert (tutorial.architecture, tutorial.batch_size, tutorial.discriminator_dropout) == ("dcgan-tutorial", 64, 0.3)
    dcgan = resolve_config(dataclasses.replace(default, image_size=64, channels=3, augment="off"))
    assert (dcgan.architecture, dcgan.batch_size, dcgan.discriminator_dropout, dcgan.upsample) == (
        "dcgan", 64, 0.0, "transposed")
    explicit = resolve_config(TrainerConfig(image_size=64, channels=3, augment="off", batch_size=48,
                                            discriminator_dropout=0.1, upsample="resize"))
    assert (explicit.batch_size, explicit.discriminator_dropout, explicit.upsample) == (48, 0.1, "resize")
    assert load_config(None, {"train.batch_size": "auto", "train.discriminator_dropout": "auto"}).train == default
    assert (default.mixed_precision, default.jit_compile, default.workers) == ("none", False, 1)
    assert (default.image_size, default.channels) == (0, 0)  # auto: the shape ingestion stored


def test_discriminator_dropout_zero_makes_training_mode_deterministic():
    from ganpipe.trainer.models import build_discriminator

    images = tf.random.stateless_uniform((4, 32, 32, 1), seed=(1, 2), minval=-1.0, maxval=1.0)
    seeds = [tf.constant([3, 4], tf.int64), tf.constant([5, 6], tf.int64)]
    plain = build_discriminator(network_spec(TrainerConfig(image_size=32, channels=1, discriminator_dropout=0.0)))
    dropped = build_discriminator(network_spec(TrainerConfig(image_size=32, channels=1)))
    dropped.set_weights(plain.get_weights())
    plain_logits = [plain(images, training=True, noise_seed=seed).numpy() for seed in seeds]
    dropped_logits = [dropped(images, training=True, noise_seed=seed).numpy() for seed in seeds]
    np.testing.assert_array_equal(plain_logits[0], plain_logits[1])
    np.testing.assert_array_equal(plain_logits[0], plain(images, training=False).numpy())
    assert not np.allclose(dropped_logits[0], dropped_logits[1])  # the tutorial's 0.3: masks differ by seed


def test_generator_batch_norm_uses_the_configured_momentum():
    from ganpipe.trainer.models import build_generator

    for momentum in (0.9, 0.99):
        generator = build_generator(network_spec(TrainerConfig(image_size=32, channels=1, batch_norm_momentum=momentum)))
        norms = [layer for layer in generator.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
        assert norms and {layer.momentum for layer in norms} == {momentum}


def test_recomputed_batch_norm_statistics_are_the_mean_of_batch_moments():
    """BigGAN's standing statistics: moving mean/variance = the mean over batches of each batch's moments,
    for fixed z draws; the layer's momentum is left as it was."""
    import keras
    import numpy as np
    import tensorflow as tf

    from ganpipe.trainer.models import recompute_batch_norm_statistics

    z_in = keras.Input(shape=(4,))
    dense = keras.layers.Dense(3, kernel_initializer="glorot_uniform", bias_initializer="ones")
    norm = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model(z_in, norm(dense(z_in)))
    norm.moving_mean.assign([50.0, 50.0, 50.0])  # stale statistics, as an EMA copy inherits
    recompute_batch_norm_statistics(model, latent_dim=4, batches=3, batch_size=16, seed=5)
    activations = [dense(tf.random.stateless_normal([16, 4], seed=[5, i])).numpy() for i in range(3)]
    np.testing.assert_allclose(norm.moving_mean.numpy(), np.mean([a.mean(0) for a in activations], 0), rtol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), np.mean([a.var(0) for a in activations], 0),
                               rtol=1e-4)
    assert norm.momentum == 0.9
