"""train.architecture (dcgan-tutorial, dcgan, resnet, auto) and train.augment (DiffAugment, ADA).

Every network trains and exports at 32, 64 and 128 px; with augmentation on,
2 local replicas still train the weights 1 replica trains, and a resumed run
still equals the uninterrupted one; checkpoints of another network are never restored.
Networks are narrow (train.width=8) so this runs on two CPU cores.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from ganpipe import contract  # noqa: E402
from ganpipe.pipeline.config import ConfigError, load_config  # noqa: E402
from ganpipe.trainer.augment import AdaptiveProbability, _cutout, diff_augment  # noqa: E402
from ganpipe.trainer.config import (  # noqa: E402
    AUTO, AUTO_AUGMENT_BELOW_IMAGES, TrainerConfig, network_spec, resolve_architecture, resolve_augment,
    resolve_steps,
)
from ganpipe.trainer.models import build_discriminator, build_generator  # noqa: E402
from ganpipe.trainer.export import export_generator  # noqa: E402
from ganpipe.trainer.train import resolve_config, train_run  # noqa: E402
from tests.test_distributed import compare_mirrored_with_one_replica  # noqa: E402
from tests.test_trainer import _blobs, _write_split  # noqa: E402

SMALL = dict(image_size=32, channels=3, batch_size=4, width=8, steps=2, log_every=1, sample_every=2,
             shuffle_buffer=64, checkpoint_every=0)
# At 32 px each network also carries options that must keep working with it; 64 and 128: one step.
RUNS = {
    "dcgan-tutorial-32": dict(architecture="dcgan-tutorial", augment="diffaugment", loss="wgan-gp"),
    "dcgan-32": dict(architecture="dcgan", augment="diffaugment", r1_gamma=1.0, mixed_precision="bfloat16"),
    "resnet-32": dict(architecture="resnet", augment="ada", loss="auto", conditional=True, ema_decay=0.9),
    "dcgan-tutorial-64": dict(architecture="dcgan-tutorial", image_size=64, steps=1),
    "dcgan-64": dict(architecture="dcgan", image_size=64, steps=1),
    "resnet-64": dict(architecture="resnet", image_size=64, steps=1),
    "dcgan-tutorial-128": dict(architecture="dcgan-tutorial", image_size=128, steps=1),
    "dcgan-128": dict(architecture="dcgan", image_size=128, steps=1, augment="diffaugment"),
    "resnet-128": dict(architecture="resnet", image_size=128, steps=1, augment="diffaugment"),
}


@pytest.fixture(scope="module")
def pattern(tmp_path_factory) -> str:
    """16 RGB 32x32 images with labels 0, 1 (resized by the data pipeline for 64 and 128)."""
    uri = tmp_path_factory.mktemp("rgb")
    _write_split(uri / "Split-train", _blobs(16, 32, 3, seed=3), labels=np.arange(16) % 2)
    return str(uri / "Split-train" / "*")


@pytest.mark.parametrize("name", RUNS)
def test_architecture_trains_and_exports(name: str, pattern: str, tmp_path: Path):
    cfg = TrainerConfig(**{**SMALL, **RUNS[name]})
    result = train_run(cfg, [pattern], str(tmp_path / "run"))
    export_generator(result.generator, result.cfg, str(tmp_path / "model"))
    assert result.cfg.architecture == cfg.architecture
    if cfg.loss == "auto":
        assert result.cfg.loss == ("hinge" if cfg.architecture == "resnet" else "bce")  # resnet: SNGAN's loss
    seeds = tf.saved_model.load(str(tmp_path / "model")).signatures[contract.SEEDS_SIGNATURE]
    images = seeds(**{contract.SEEDS_INPUT: tf.constant([0, 1], tf.int64)})[contract.IMAGES_OUTPUT]
    assert images.dtype == tf.uint8
    assert images.shape == (2, cfg.image_size, cfg.image_size, 3)
    assert np.std(images.numpy()) > 0


def spec_config(size: int) -> TrainerConfig:
    return TrainerConfig(image_size=size, channels=3, architecture="dcgan")


def test_depth_follows_the_resolution():
    """dcgan: 3, 4, 5 stride-2 levels at 32, 64, 128 px; width caps at 8x (Radford et al.'s 64 px at width 128)."""
    for size, levels in ((32, 3), (64, 4), (128, 5)):
        spec = network_spec(TrainerConfig(image_size=size, channels=3, architecture="dcgan", width=8,
                                          upsample="transposed"))
        assert len(build_discriminator(spec).convs) == levels
        strided = [layer for layer in build_generator(spec).layers if type(layer).__name__ == "Conv2DTranspose"]
        assert len(strided) == levels - 1 + 1 and strided[-1].strides == (2, 2)  # 4x4 is the projection
        default = build_generator(network_spec(dataclasses.replace(spec_config(size), width=8)))  # auto
        assert [type(layer).__name__ for layer in default.layers].count("Conv2DTranspose") == levels
        # upsample=resize: nearest x2 then a 3x3 convolution at each of the same levels.
        resized = [layer for layer in build_generator(network_spec(dataclasses.replace(
                   spec_config(size), width=8, upsample="resize"))).layers if isinstance(layer, keras.Sequential)]
        assert len(resized) == levels
        assert all([type(inner).__name__ for inner in block.layers] == ["UpSampling2D", "Conv2D"]
                   and block.layers[1].kernel_size == (3, 3) for block in resized)
    paper = build_generator(network_spec(TrainerConfig(image_size=64, channels=3, architecture="dcgan", width=128,
                                                       latent_dim=100, upsample="transposed")))
    assert [layer.filters for layer in paper.layers if hasattr(layer, "filters")] == [512, 256, 128, 3]
    assert paper.layers[1].units == 4 * 4 * 1024


def test_augment_off_survives_yaml():
    """A bare `off` is YAML's false; the config reads it back as "off"."""
    assert load_config(None, {"train.augment": "off"}).train.augment == "off"
    assert load_config(None, {"train.augment": "diffaugment"}).train.augment == "diffaugment"


def test_auto_choices_resolve_in_one_place():
    assert resolve_architecture("auto", 28) == "dcgan-tutorial" and resolve_architecture("auto", 16) == "dcgan-tutorial"
    assert resolve_architecture("auto", 32) == "dcgan-tutorial"  # measured there: the demo, Fashion-MNIST
    assert resolve_architecture("auto", 64) == "dcgan" and resolve_architecture("auto", 128) == "dcgan"
    assert resolve_architecture("resnet", 64) == "resnet"
    assert resolve_augment("auto", 3786) == "diffaugment"
    assert resolve_augment("auto", AUTO_AUGMENT_BELOW_IMAGES) == "off"
    assert resolve_augment("ada", 10) == "ada"


def test_auto_steps_grow_with_the_pixels_per_image():
    """600 where the demo is measured (32 px and below), x4 per doubling of the side; a number is kept."""
    assert [resolve_steps(AUTO, size) for size in (16, 28, 32, 64, 128)] == [600, 600, 600, 2_400, 9_600]
    assert resolve_steps(50, 64) == 50
    with pytest.raises(ValueError, match="needs the image size"):
        resolve_steps(AUTO, AUTO)
    assert load_config(None, {"train.steps": "auto"}).train.steps == AUTO == TrainerConfig().steps
    assert load_config(None, {"train.steps": "7"}).train.steps == 7
    with pytest.raises(ConfigError, match=r"train\.steps"):
        load_config(None, {"train.steps": "-1"})
    # train_run resolves it with the rest, once the stored size is known
    assert resolve_config(TrainerConfig(image_size=64, channels=3, augment="off")).steps == 2_400
    assert resolve_config(TrainerConfig(augment="off")).steps == AUTO  # size still auto: left for later


@pytest.mark.parametrize("override, message", [
    ({"train.architecture": "stylegan"}, "train.architecture='stylegan'"),
    ({"train.architecture": "dcgan", "train.image_size": "16"}, "train.architecture=dcgan: needs train.image_size >= 32"),
    ({"train.augment": "on"}, "train.augment='on'"),
    ({"train.augment_p": "1.5"}, "train.augment_p"),
    ({"train.width": "0"}, "train.width"),
])
def test_bad_architecture_options_are_rejected_naming_the_key(override: dict, message: str):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(None, override)


# ---------------------------------------------------------------- augmentation

def _images(rows: int = 6, size: int = 16) -> tf.Tensor:
    return tf.random.stateless_uniform((rows, size, size, 3), seed=(7, 8), minval=-1.0, maxval=1.0)


def test_diff_augment_is_a_function_of_the_seed():
    images = _images()
    key = tf.constant([0, 5], tf.int64)  # (train.seed, step) as trainer/train.py keys it
    first, again = diff_augment(images, key).numpy(), diff_augment(images, key).numpy()
    np.testing.assert_array_equal(first, again)
    other_step = diff_augment(images, tf.constant([0, 6], tf.int64)).numpy()
    assert not np.allclose(first, other_step)
    assert not np.allclose(first, images.numpy())
    # p = 0: every op is gated off, the images pass unchanged.
    np.testing.assert_array_equal(diff_augment(images, key, p=0.0).numpy(), images.numpy())


def test_diff_augment_is_differentiable():
    images = tf.Variable(_images())
    with tf.GradientTape() as tape:
        out = diff_augment(images, tf.constant([1, 2], tf.int64))
        total = tf.reduce_sum(out * tf.random.stateless_normal(out.shape, seed=(3, 4)))
    gradient = tape.gradient(total, images)
    assert gradient is not None and np.isfinite(gradient.numpy()).all()
    assert np.abs(gradient.numpy()).sum(axis=(1, 2, 3)).min() > 0  # every image gets a gradient


def test_cutout_zeroes_at_most_a_half_side_square():
    ones = tf.ones((64, 16, 16, 1))
    cut = _cutout(ones, tf.random.stateless_uniform((64, 2), seed=(1, 1)), tf.ones([64])).numpy()
    zeros = (cut == 0).sum(axis=(1, 2, 3))
    assert zeros.max() == 8 * 8 and zeros.min() > 0  # whole square inside, or partly outside
    np.testing.assert_array_equal(_cutout(ones, tf.zeros((64, 2)), tf.zeros([64])).numpy(), ones.numpy())


def test_ada_moves_p_towards_the_target_once_per_interval():
    """r_t above the target raises p by batch * interval / speed at the interval's end; below lowers it."""
    ada = AdaptiveProbability(target=0.6, interval=2, batch_size=8, speed_images=64)  # steps of 0.25
    observe = tf.function(ada.observe)
    for step, sign in ((1, 1.0), (2, 0.8), (3, 1.0)):  # r = 0.9 at step 2
        observe(tf.constant(sign), tf.constant(step, tf.int64))
    assert float(ada.p) == 0.25 and float(ada.sign_sum) == 1.0  # step 3 is mid-interval
    observe(tf.constant(-1.0), tf.constant(4, tf.int64))  # r = 0: lowered
    assert float(ada.p) == 0.0 and float(ada.sign_sum) == 0.0
    for step in range(5, 15):
        observe(tf.constant(1.0), tf.constant(step, tf.int64))
    assert float(ada.p) == 1.0  # clipped


# ---------------------------------------------------------------- replicas, resume, refusal

EXACT = dict(SMALL, batch_size=8, steps=3, sample_every=3, deterministic=True, augment="diffaugment",
             augment_p=0.7)


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_two_local_replicas_match_one_with_augmentation(architecture: str, pattern: str, tmp_path: Path):
    """Augmentation parameters are global-batch draws sliced per replica, so 2 replicas of 4 rows train
    what 1 replica of 8 rows trains (to float summation order), BatchNorm (dcgan's D) and SN included."""
    result = compare_mirrored_with_one_replica(pattern, {**EXACT, "architecture": architecture}, tmp_path)
    assert result["replicas"] == 2
    assert result["max_abs_diff"] < 2e-6, result


def _checkpoint_tensors(directory: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(directory)))
    tensors = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    return {key: np.asarray(value) for key, value in tensors.items() if not isinstance(value, bytes)}


def test_resumed_run_with_ada_equals_the_uninterrupted_run(pattern: str, tmp_path: Path):
    """ADA's p and its running sign sum are checkpointed: resuming mid-interval is exact."""
    cfg = TrainerConfig(**{**SMALL, "architecture": "dcgan", "steps": 6, "checkpoint_every": 2, "augment": "ada",
                           "ada_interval": 3, "ada_target": 0.0, "ada_speed_images": 8, "ema_decay": 0.9})
    whole = train_run(cfg, [pattern], str(tmp_path / "whole"))
    split = dataclasses.replace(cfg, checkpoint_dir=str(tmp_path / "durable"))
    train_run(dataclasses.replace(split, steps=4), [pattern], str(tmp_path / "first"))
    resumed = train_run(split, [pattern], str(tmp_path / "second"))
    assert resumed.start_step == 4
    for exported, expected in zip(resumed.generator.weights, whole.generator.weights):
        np.testing.assert_array_equal(np.array(exported), np.array(expected))
    resumed_state = _checkpoint_tensors(Path(resumed.checkpoint_dir))
    whole_state = _checkpoint_tensors(Path(whole.checkpoint_dir))
    assert resumed_state.keys() == whole_state.keys()
    assert "ada/p/.ATTRIBUTES/VARIABLE_VALUE" in whole_state
    for key, value in whole_state.items():
        np.testing.assert_array_equal(resumed_state[key], value, err_msg=key)


def test_checkpoints_of_another_architecture_are_not_restored(pattern: str, tmp_path: Path, capfd):
    cfg = TrainerConfig(**{**SMALL, "steps": 1, "checkpoint_every": 1, "sample_every": 1})
    train_run(dataclasses.replace(cfg, architecture="auto"), [pattern], str(tmp_path / "run"))  # dcgan-tutorial
    capfd.readouterr()
    other = train_run(dataclasses.replace(cfg, steps=2, architecture="dcgan"), [pattern], str(tmp_path / "run"))
    assert other.start_step == 0
    assert "train.architecture: 'dcgan-tutorial' -> 'dcgan'" in capfd.readouterr().out
    wider = train_run(dataclasses.replace(cfg, steps=2, width=16), [pattern], str(tmp_path / "run"))
    assert wider.start_step == 0
    assert "train.width: 8 -> 16" in capfd.readouterr().out
