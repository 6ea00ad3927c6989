"""The ``inception-2015-12-05`` extractor (TTUR's FID features), tested with a small stand-in GraphDef.

The real ``classify_image_graph_def.pb`` cannot be had offline. The stand-in has the real graph's tensor names
and head (string placeholder -> DecodeJpeg -> Cast -> ExpandDims, static batch 1 -> ResizeBilinear to 299 ->
... -> pool_3 -> a batch-1 reshape), so loading, feeding, batching and the checks run the real code path;
only the numbers are not Inception's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ganpipe.cli import main as cli
from ganpipe.evaluation import feature_extractors
from ganpipe.pipeline.config import ConfigError, load_config

WIDTH = 8  # the stand-in's "pool_3" features per image (the real graph has 2048)
CONV_STRIDE = 2
POOLED = (299 - 3) // CONV_STRIDE + 1  # 3x3 VALID conv, stride 2, over the graph's 299x299


def _kernel(seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).standard_normal((3, 3, 3, WIDTH)) * 0.1).astype(np.float32)


def _standin_graph_def(kernel: np.ndarray, input_name: str = "ExpandDims", output_name: str = "pool_3",
                       cast_to: tf.DType = tf.float32) -> tf.compat.v1.GraphDef:
    """A frozen GraphDef shaped like the 2015-12-05 graph, with the static batch-1 shapes recorded in it."""
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        pixels = tf.cast(tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg"), cast_to, name="Cast")
        x = tf.expand_dims(pixels, 0, name=input_name)  # [1, ?, ?, 3]: the batch-1 shape TTUR has to patch
        x = tf.compat.v1.image.resize_bilinear(tf.cast(x, tf.float32), tf.constant([299, 299], name="size"),
                                               name="ResizeBilinear")
        x = tf.nn.relu(tf.nn.conv2d((x - 128.0) / 128.0, kernel, [1, CONV_STRIDE, CONV_STRIDE, 1], "VALID"))
        pool = tf.nn.avg_pool2d(x, [1, POOLED, POOLED, 1], [1, 1, 1, 1], "VALID", name=output_name)
        # The real graph reshapes pool_3 to [1, 2048] for its classifier: batches fail if this ever runs.
        tf.reshape(pool, [1, WIDTH], name="pool_3/_reshape")
    return graph.as_graph_def(add_shapes=True)  # _output_shapes with batch 1, as a graph may carry them


def _write(path: Path, graph_def: tf.compat.v1.GraphDef) -> Path:
    path.write_bytes(graph_def.SerializeToString())
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inception_graph")
    return {
        "good": _write(folder / "classify_image_graph_def.pb", _standin_graph_def(_kernel(0))),
        "other": _write(folder / "other.pb", _standin_graph_def(_kernel(1))),
        "no_pool_3": _write(folder / "no_pool_3.pb", _standin_graph_def(_kernel(0), output_name="pool_4")),
        "no_expand": _write(folder / "no_expand.pb", _standin_graph_def(_kernel(0), input_name="Expand")),
        "int_input": _write(folder / "int_input.pb", _standin_graph_def(_kernel(0), cast_to=tf.int32)),
    }


def _direct_pool3(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The stand-in's computation written out eagerly: old-style bilinear resize of the native-size images
    to 299 (half_pixel_centers=False, as the graph's ResizeBilinear), conv, ReLU, mean over the map."""
    x = tf.constant(images, tf.float32)
    if images.shape[-1] == 1:
        x = tf.tile(x, [1, 1, 1, 3])
    x = tf.compat.v1.image.resize_bilinear(x, [299, 299], align_corners=False, half_pixel_centers=False)
    x = tf.nn.relu(tf.nn.conv2d((x - 128.0) / 128.0, kernel, [1, CONV_STRIDE, CONV_STRIDE, 1], "VALID"))
    return tf.reduce_mean(x, axis=[1, 2]).numpy().astype(np.float64)


def _images(count: int, height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, channels), dtype=np.uint8)


def test_features_equal_a_direct_tf_computation_of_the_graph(graphs):
    extractor = feature_extractors.get_extractor(f"inception-2015-12-05:{graphs['good']}")
    images = _images(5, 24, 32, 3)  # native size, not 299: the graph resizes
    features = extractor(images)
    assert extractor.feature_dim == WIDTH
    assert features.shape == (5, WIDTH) and features.dtype == np.float64
    np.testing.assert_allclose(features, _direct_pool3(images, _kernel(0)), rtol=1e-4, atol=1e-5)
    # Different weights must give different features, or the comparison above proves nothing.
    assert np.abs(features - _direct_pool3(images, _kernel(1))).max() > 1e-3


def test_batch_size_does_not_change_an_images_features(graphs):
    images = _images(5, 20, 20, 3, seed=1)
    whole = feature_extractors.inception_graph(str(graphs["good"]), batch_size=50)(images)
    in_twos = feature_extractors.inception_graph(str(graphs["good"]), batch_size=2)(images)  # 2, 2, 1
    alone = np.concatenate([feature_extractors.inception_graph(str(graphs["good"]), batch_size=1)(image[None])
                            for image in images])
    np.testing.assert_allclose(in_twos, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone, whole, rtol=1e-5, atol=1e-6)
    assert np.abs(whole[0] - whole[1]).max() > 1e-4  # the images differ, so must their features
    extractor = feature_extractors.inception_graph(str(graphs["good"]))
    assert extractor(images[:0]).shape == (0, WIDTH)
    np.testing.assert_allclose(extractor(_images(3, 40, 28, 3)), _direct_pool3(_images(3, 40, 28, 3), _kernel(0)),
                               rtol=1e-4, atol=1e-5)  # a second input size through the same extractor


def test_grey_images_are_replicated_to_three_channels(graphs):
    extractor = feature_extractors.get_extractor(f"inception-2015-12-05:{graphs['good']}")
    grey = _images(4, 28, 28, 1, seed=2)
    features = extractor(grey)
    np.testing.assert_allclose(features, extractor(np.repeat(grey, 3, axis=-1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features, _direct_pool3(grey, _kernel(0)), rtol=1e-4, atol=1e-5)


def test_name_is_distinct_from_keras_inception_and_fingerprints_the_file(graphs):
    name = feature_extractors.get_extractor(f"inception-2015-12-05:{graphs['good']}").name
    digest = hashlib.sha256(graphs["good"].read_bytes()).hexdigest()
    assert name == f"inception-2015-12-05-pool3@sha256:{digest[:12]}"
    assert not name.startswith("inception-v3")
    assert feature_extractors.get_extractor(f"inception-2015-12-05:{graphs['other']}").name != name
    assert "inception-2015-12-05:<classify_image_graph_def.pb>" in feature_extractors.available_extractors()


def _bad_paths(graphs: dict[str, Path], tmp_path: Path) -> list[tuple[Path, str]]:
    text = tmp_path / "notes.pb"
    text.write_text("this is not a GraphDef\n")  # protobuf reads one byte of this without raising
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    return [(tmp_path / "nope.pb", "does not exist"), (tmp_path, "is not a file"),
            (text, "is not a TensorFlow GraphDef"), (empty, "is not a TensorFlow GraphDef"),
            (graphs["no_pool_3"], "no tensor pool_3:0"), (graphs["no_expand"], "no tensor ExpandDims:0")]


def test_bad_graph_files_give_one_line_naming_the_file_and_what_was_expected(graphs, tmp_path):
    for path, problem in _bad_paths(graphs, tmp_path):
        spec = f"inception-2015-12-05:{path}"
        with pytest.raises((FileNotFoundError, ValueError)) as raised:
            feature_extractors.get_extractor(spec)
        message = str(raised.value)
        assert problem in message and str(path) in message and "classify_image_graph_def.pb" in message, message
        assert "\n" not in message
        config = load_config(None, {"evaluate.extractor": spec})  # the form is fine; the file is checked later
        with pytest.raises(ConfigError) as raised:
            config.check_local_files()
        assert problem in str(raised.value) and str(path) in str(raised.value) and "\n" not in str(raised.value)
    load_config(None, {"evaluate.extractor": f"inception-2015-12-05:{graphs['good']}"}).check_local_files()


def test_a_graph_that_cannot_take_float_images_is_refused_in_one_line(graphs):
    with pytest.raises(ValueError, match="cannot feed float32 images") as raised:
        feature_extractors.get_extractor(f"inception-2015-12-05:{graphs['int_input']}")
    assert str(graphs["int_input"]) in str(raised.value) and "\n" not in str(raised.value)


def test_spec_without_a_path_is_a_config_error():
    with pytest.raises(ValueError, match="classify_image_graph_def.pb"):
        feature_extractors.parse_spec("inception-2015-12-05")
    with pytest.raises(ValueError, match="empty"):
        feature_extractors.parse_spec("inception-2015-12-05:")
    assert feature_extractors.parse_spec("inception-2015-12-05:/g.pb") == ("inception-2015-12-05", "/g.pb")


@pytest.mark.parametrize("which", ["missing", "text"])
def test_run_check_exits_2_with_one_line_before_tfx(capsys, tmp_path, which):
    path = tmp_path / "nope.pb"
    if which == "text":
        path.write_text("not a graph\n")
    code = cli.main(["run", "--check", "--set", f"evaluate.extractor=inception-2015-12-05:{path}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(path) in err and "classify_image_graph_def.pb" in err, err
