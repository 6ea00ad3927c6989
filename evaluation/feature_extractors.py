"""Image feature extractors for the sample-quality metrics, chosen by name.

FID is only as meaningful as the feature space it is computed in, so every
result records the extractor's ``name`` and numbers are only ever compared
between results with the same name. Standard FID uses ImageNet InceptionV3
features, whose weights cannot be downloaded on an offline machine; the
default here therefore needs no download at all (see
:class:`RandomConvExtractor`).

Specs a config may name (:func:`get_extractor`):

- ``random-conv`` (default): offline, NOT Inception FID (``random-conv-v1``).
- ``inception-v3`` / ``inception-v3:<weights.h5>``: standard pool3 features
  at 299x299, from weights the user provides or Keras' local cache.
- ``inception-2015-12-05:<classify_image_graph_def.pb>``: the original TF
  Inception graph the published FIDs use (TTUR, Heusel et al. 2017): the
  choice for comparing with papers.
- ``keras:<model.keras>`` / ``savedmodel:<dir>``: any feature model by path.
- ``domain-classifier``: the penultimate layer of a classifier the evaluator
  trains on the data's labels (``domain_classifier.py``), "FID with a domain
  classifier" as used for MNIST-like data.

TensorFlow and Keras are imported only when a model-based extractor is built,
so the default stays a plain NumPy computation.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any, Callable, Optional, Protocol, runtime_checkable

import numpy as np

DEFAULT_EXTRACTOR = "random-conv"
INCEPTION = "inception-v3"
INCEPTION_SIZE = 299
# The penultimate layer of a small CNN the evaluator trains on the data's own class labels
# (ganpipe/evaluation/domain_classifier.py): in-domain features for labelled data.
DOMAIN_CLASSIFIER = "domain-classifier"
# Keras' ImageNet InceptionV3 weights without the classifier, as
# keras.applications downloads them into ~/.keras/models/, and the MD5 Keras
# checks that download against (keras/src/applications/inception_v3.py).
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_INCEPTION_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
# The frozen TF Inception graph of 2015-12-05 that the reference FID code (TTUR, bioinf-jku/TTUR fid.py)
# and hence published FIDs use; the file inside inception-2015-12-05.tgz, and the tensors TTUR feeds and reads.
INCEPTION_GRAPH = "inception-2015-12-05"
INCEPTION_GRAPH_FILE = "classify_image_graph_def.pb"
INCEPTION_GRAPH_INPUT = "ExpandDims:0"
INCEPTION_GRAPH_OUTPUT = "pool_3:0"


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps uint8 images [N, H, W, C] to float64 features [N, feature_dim]."""

    name: str  # recorded with every number; includes a version
    feature_dim: int

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class RandomConvExtractor:
    """``random-conv-v1``: a fixed, seeded, randomly initialised conv net in NumPy.

    Its FID numbers are NOT Inception FID and must not be compared with
    published FIDs or with numbers from any other extractor: they are
    comparable only with numbers computed by an extractor of the same name
    (``random-conv-v1``). It is the default because it runs on a fresh
    offline machine with nothing to download, the same on every machine:
    weights come from NumPy's legacy ``RandomState`` (whose stream NumPy
    guarantees never to change) with a fixed seed, and the arithmetic is
    float64. Random conv features still capture local structure (edges,
    blobs, contrast) well enough to rank generators and to tell images from
    noise, which is what a release gate needs.

    Architecture: any input size -> antialiased bilinear resize to 32x32,
    grey replicated to RGB, scaled to [-1, 1]; then three 3x3 conv + ReLU
    layers (32, 64, 128 channels) with 2x2 average pooling after the first
    two; features are the global average and global max of the last layer
    (256 dims). Changing any of this, or the seed, means a new name
    (``random-conv-v2``), because old numbers would silently stop being
    comparable.
    """

    name = "random-conv-v1"
    input_size = 32
    widths = (32, 64, 128)
    seed = 20161205  # fixed forever for v1

    def __init__(self, batch_size: int = 128):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.feature_dim = 2 * self.widths[-1]
        rng = np.random.RandomState(self.seed)
        self.kernels: list[np.ndarray] = []
        in_channels = 3
        for width in self.widths:
            # He-normal, so activations keep their scale through the ReLUs.
            std = np.sqrt(2.0 / (9 * in_channels))
            self.kernels.append(rng.standard_normal((3, 3, in_channels, width)) * std)
            in_channels = width

    def weights_fingerprint(self) -> str:
        """SHA-256 of the weights: identical on every machine, or the numbers are not comparable."""
        digest = hashlib.sha256()
        for kernel in self.kernels:
            digest.update(np.ascontiguousarray(kernel, dtype="<f8").tobytes())
        return digest.hexdigest()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images)
        if images.shape[0] == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float64)
        height_matrix = _resize_matrix(images.shape[1], self.input_size)
        width_matrix = _resize_matrix(images.shape[2], self.input_size)
        features = [self._features(images[start:start + self.batch_size], height_matrix, width_matrix)
                    for start in range(0, images.shape[0], self.batch_size)]
        return np.concatenate(features, axis=0)

    def _features(self, batch: np.ndarray, height_matrix: np.ndarray, width_matrix: np.ndarray) -> np.ndarray:
        x = batch.astype(np.float64) / 127.5 - 1.0
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        x = np.einsum("ah,nhwc,bw->nabc", height_matrix, x, width_matrix, optimize=True)
        for index, kernel in enumerate(self.kernels):
            x = np.maximum(_conv3x3_same(x, kernel), 0.0)
            if index < len(self.kernels) - 1:
                x = _avg_pool2(x)
        return np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=1)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C], got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W, 1 or 3], got shape {images.shape}")
    return images


def _resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of a triangle (bilinear) filter, widened when shrinking so it antialiases."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    centres = (np.arange(out_size) + 0.5) * scale - 0.5
    taps = np.arange(in_size)
    weights = np.maximum(0.0, 1.0 - np.abs(taps[None, :] - centres[:, None]) / support)
    empty = weights.sum(axis=1) == 0.0  # can only happen at the borders when enlarging
    weights[empty, np.clip(np.rint(centres[empty]).astype(int), 0, in_size - 1)] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def _conv3x3_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Zero-padded 3x3 convolution as one matrix product over 3x3 patches (im2col)."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # [n, h, w, c, 3, 3]
    columns = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, 9 * c)  # (dy, dx, c) order
    return (columns @ kernel.reshape(9 * c, -1)).reshape(n, h, w, kernel.shape[-1])


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x[:, : h - h % 2, : w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ModelExtractor:
    """Features from a Keras model or SavedModel that maps images to vectors (batch by batch).

    Contract for the model: it takes float32 pixels in [0, 255] of shape
    [N, H, W, C] (C 1 or 3) and returns one feature vector per image
    (anything of shape [N, ...] is flattened). Images are resized to the
    model's static input size (bilinear, antialiased when shrinking) and
    grey/colour is converted to the model's channel count; the model does its
    own normalisation. ``preprocess`` runs after resizing, for built-in
    networks (InceptionV3 wants [-1, 1]).

    The name carries a fingerprint of the model's files, because numbers from
    two different feature models, or two weight files, are not comparable.
    """

    def __init__(self, call: Callable[[Any], Any], name: str, input_size: Optional[tuple[int, int]],
                 input_channels: Optional[int], feature_dim: int, input_dtype: str = "float32",
                 preprocess: Optional[Callable[[Any], Any]] = None, batch_size: int = 64):
        import tensorflow as tf

        self.name = name
        self.feature_dim = feature_dim
        self.input_size = input_size
        self.input_channels = input_channels
        self.input_dtype = input_dtype
        self.batch_size = batch_size
        self._call = call
        self._preprocess = preprocess
        self._tf = tf

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images)
        if images.shape[0] == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float64)
        return np.concatenate([self._features(images[start:start + self.batch_size])
                               for start in range(0, images.shape[0], self.batch_size)], axis=0)

    def _features(self, batch: np.ndarray) -> np.ndarray:
        tf = self._tf
        x = tf.convert_to_tensor(batch, dtype=tf.float32)
        if self.input_size is not None and tuple(batch.shape[1:3]) != self.input_size:
            x = tf.clip_by_value(tf.image.resize(x, self.input_size, method="bilinear", antialias=True), 0.0, 255.0)
        if self.input_channels == 3 and batch.shape[-1] == 1:
            x = tf.image.grayscale_to_rgb(x)
        elif self.input_channels == 1 and batch.shape[-1] == 3:
            x = tf.image.rgb_to_grayscale(x)
        if self._preprocess is not None:
            x = self._preprocess(x)
        if self.input_dtype == "uint8":
            x = tf.cast(tf.round(x), tf.uint8)
        features = np.asarray(self._call(x), dtype=np.float64).reshape(batch.shape[0], -1)
        if features.shape[1] != self.feature_dim:
            raise ValueError(f"{self.name} returned {features.shape[1]} features per image, expected "
                             f"{self.feature_dim}")
        return features


def inception_v3(weights_path: Optional[str] = None, batch_size: int = 32) -> ModelExtractor:
    """Standard FID features: InceptionV3 pool3 (global average of the last block, 2048-d) at 299x299.

    Weights come from ``weights_path`` (the Keras ImageNet "notop" file,
    :data:`INCEPTION_WEIGHTS_FILE`, or any weights file for this
    architecture) or, when no path is given, from Keras' cache on this
    machine (``$KERAS_HOME/models`` or ``~/.keras/models``), where
    ``keras.applications.InceptionV3(include_top=False)`` leaves it on a host
    with network access. Nothing is downloaded here: no file, no extractor.

    With Keras' own ImageNet file (recognised by its MD5, the one Keras
    checks on download) the name is ``inception-v3-pool3``; any other weights
    give ``inception-v3-pool3@sha256:<prefix>``, so numbers from other
    weights can never pass for standard Inception FID. Keras' InceptionV3 is
    the TF-slim ImageNet network, not the exact graph of the original TF FID
    code: expect values close to, not identical with, published FIDs.
    """
    import keras

    path = weights_path or cached_inception_weights()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"InceptionV3 weights file {path!r} does not exist")
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    model.load_weights(path)
    md5 = _file_digest(path, "md5")
    name = "inception-v3-pool3" if md5 == KERAS_INCEPTION_NOTOP_MD5 else (
        f"inception-v3-pool3@sha256:{_file_digest(path, 'sha256')[:12]}")
    return ModelExtractor(
        _keras_call(model), name, input_size=(INCEPTION_SIZE, INCEPTION_SIZE), input_channels=3,
        feature_dim=int(model.output_shape[-1]), preprocess=lambda x: x / 127.5 - 1.0, batch_size=batch_size)


def inception_v3_classifier(weights_path: str, batch_size: int = 32) -> ModelExtractor:
    """ImageNet p(y|x) for the Inception Score: InceptionV3 with its 1000-class softmax, at 299x299.

    ``weights_path`` is the Keras ImageNet file *with* the top
    (``inception_v3_weights_tf_dim_ordering_tf_kernels.h5``) or any weights for
    that architecture; the user provides it, nothing is downloaded. Returns
    float64 [N, 1000] rows summing to 1; named ``inception-v3-softmax@sha256:<prefix>``.

    Raises:
      FileNotFoundError: no such file. ValueError: the weights do not fit (Keras' message).
    """
    import keras

    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"InceptionV3 classifier weights file {weights_path!r} does not exist")
    model = keras.applications.InceptionV3(include_top=True, weights=None, classifier_activation="softmax",
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    model.load_weights(weights_path)
    return ModelExtractor(
        _keras_call(model), f"inception-v3-softmax@sha256:{_file_digest(weights_path, 'sha256')[:12]}",
        input_size=(INCEPTION_SIZE, INCEPTION_SIZE), input_channels=3, feature_dim=int(model.output_shape[-1]),
        preprocess=lambda x: x / 127.5 - 1.0, batch_size=batch_size)


def cached_inception_weights() -> str:
    """Where Keras' own download of the InceptionV3 "notop" weights sits on this machine, if anywhere."""
    homes = [os.environ.get("KERAS_HOME") or os.path.expanduser(os.path.join("~", ".keras")),
             os.path.join("/tmp", ".keras")]
    for home in homes:
        path = os.path.join(home, "models", INCEPTION_WEIGHTS_FILE)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"extractor 'inception-v3' needs the ImageNet weights file {INCEPTION_WEIGHTS_FILE}, found in none of "
        f"{', '.join(os.path.join(h, 'models') for h in homes)}. Nothing is downloaded at run time: on a host "
        "with network access run keras.applications.InceptionV3(include_top=False) once and copy "
        "~/.keras/models/ over, or give the file as 'inception-v3:/path/to/weights.h5'.")


def keras_model(path: str, batch_size: int = 64) -> ModelExtractor:
    """A saved Keras model (.keras or .h5) mapping float32 [N, H, W, C] pixels in [0, 255] to features."""
    import keras

    if not os.path.exists(path):
        raise FileNotFoundError(f"Keras feature model {path!r} does not exist")
    model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.input_shape)
    if len(shape) != 4:
        raise ValueError(f"Keras feature model {path} takes inputs of shape {shape}, not images [N, H, W, C]")
    feature_dim = int(np.prod([d for d in model.output_shape[1:]]))
    return ModelExtractor(
        _keras_call(model), f"keras:{os.path.basename(path.rstrip(os.sep))}@sha256:{_path_digest(path)[:12]}",
        input_size=_static_size(shape[1:3]), input_channels=shape[3], feature_dim=feature_dim,
        batch_size=batch_size)


def saved_model(path: str, batch_size: int = 64) -> ModelExtractor:
    """A SavedModel whose ``serving_default`` signature maps one image input to one feature output
    (or to several, one of them named ``features``)."""
    import tensorflow as tf

    if not os.path.isdir(path):
        raise FileNotFoundError(f"SavedModel feature model {path!r} is not a directory")
    loaded = tf.saved_model.load(path)
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"SavedModel {path} has no 'serving_default' signature")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ValueError(f"SavedModel {path}: serving_default must take one input, takes {sorted(inputs)}")
    (input_name, spec), = inputs.items()
    if spec.shape.rank != 4 or spec.dtype not in (tf.float32, tf.uint8):
        raise ValueError(f"SavedModel {path}: input {input_name!r} is {spec}, expected float32 or uint8 "
                         "images [N, H, W, C]")
    outputs = signature.structured_outputs
    output_name = "features" if "features" in outputs else next(iter(outputs)) if len(outputs) == 1 else None
    if output_name is None:
        raise ValueError(f"SavedModel {path}: serving_default returns {sorted(outputs)}; name one 'features'")
    output_spec = outputs[output_name]
    feature_dim = int(np.prod(output_spec.shape.as_list()[1:])) if output_spec.shape[1:].is_fully_defined() else None

    def call(x):
        return signature(**{input_name: x})[output_name].numpy()

    input_channels = spec.shape[3]
    extractor = ModelExtractor(
        call, f"savedmodel:{os.path.basename(path.rstrip(os.sep))}@sha256:{_path_digest(path)[:12]}",
        input_size=_static_size(spec.shape.as_list()[1:3]), input_channels=input_channels,
        feature_dim=feature_dim or 0, input_dtype=spec.dtype.name, batch_size=batch_size)
    if feature_dim is None:  # dynamic output shape: ask the model once
        size = extractor.input_size or (32, 32)
        probe = np.zeros((1, *size, input_channels or 3), dtype=np.uint8)
        extractor.feature_dim = int(np.asarray(call(tf.constant(probe, dtype=spec.dtype))).reshape(1, -1).shape[1])
    return extractor


def read_inception_graph(path: str) -> Any:
    """Reads ``path`` as the 2015-12-05 Inception GraphDef and checks it has the tensors FID uses.

    Checks what can be checked without running anything (the config check
    calls this before TFX starts): the file exists, parses as a TensorFlow
    ``GraphDef``, and has nodes ``ExpandDims`` and ``pool_3``
    (:data:`INCEPTION_GRAPH_INPUT`, :data:`INCEPTION_GRAPH_OUTPUT`).

    Returns:
      The parsed ``tf.compat.v1.GraphDef``.
    Raises:
      FileNotFoundError: ``path`` does not exist or is not a file.
      ValueError: not a GraphDef, or one without those tensors.
    Every message is one line naming the file and what was expected.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    expected = f"expected {INCEPTION_GRAPH_FILE} from {INCEPTION_GRAPH}.tgz"
    # tf.io.gfile: on Kubeflow the graph may sit in the bucket next to the pipeline root.
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{INCEPTION_GRAPH} graph {path} does not exist ({expected})")
    if tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"{INCEPTION_GRAPH} graph {path} is not a file ({expected})")
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    graph_def = tf.compat.v1.GraphDef()
    try:
        # Protobuf stops early on some non-protobuf bytes (text, for one) with only a RuntimeWarning and
        # returns how much it read: a short read, or no nodes at all, is not a graph either.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            parsed = graph_def.ParseFromString(data)
    except DecodeError:
        parsed = -1
    if (isinstance(parsed, int) and parsed != len(data)) or not graph_def.node:
        raise ValueError(f"{INCEPTION_GRAPH} graph {path} is not a TensorFlow GraphDef ({expected})")
    nodes = {node.name for node in graph_def.node}
    missing = [tensor for tensor in (INCEPTION_GRAPH_INPUT, INCEPTION_GRAPH_OUTPUT)
               if tensor.partition(":")[0] not in nodes]
    if missing:
        raise ValueError(f"{INCEPTION_GRAPH} graph {path} has no tensor {' and no '.join(missing)} ({expected}, "
                         f"which has input {INCEPTION_GRAPH_INPUT} and output {INCEPTION_GRAPH_OUTPUT})")
    return graph_def


def inception_graph(path: str, batch_size: int = 50) -> ModelExtractor:
    """FID features as published FIDs compute them: ``pool_3`` of the TF Inception graph of 2015-12-05.

    Follows the reference implementation (TTUR fid.py; Heusel et al. 2017,
    "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium"): float32 pixels in [0, 255] of shape [N, H, W, 3] at their
    native size go into ``ExpandDims:0``; the graph's own ``ResizeBilinear``
    takes them to 299x299 and it does its own scaling, so nothing is resized
    or normalised here. ``pool_3:0`` ([N, 1, 1, 2048] for the real graph) is
    flattened to float64 [N, 2048]. Grey images are replicated to 3 channels.
    Batches of ``batch_size`` (TTUR's default 50); a batch's size does not
    change any image's features.

    The name is ``inception-2015-12-05-pool3@sha256:<prefix of the file's
    SHA-256>``: distinct from the Keras ``inception-v3-pool3`` numbers, and
    different for any other file. Nothing is downloaded: the user gives the
    file (``classify_image_graph_def.pb`` from ``inception-2015-12-05.tgz``).

    Raises:
      FileNotFoundError, ValueError: as :func:`read_inception_graph`, or when
        the graph does not take float32 images at ``ExpandDims:0`` or its
        ``pool_3`` size per image is not fixed; one line naming the file.
    """
    import tensorflow as tf

    graph_def = read_inception_graph(path)
    # TTUR patches every tensor's static batch-1 shape so it can feed batches. Here the images come in through
    # input_map instead, and shapes are inferred from them. Shapes recorded in the file (_output_shapes, batch 1
    # where a graph was exported with them) would be merged back in at import and make every static shape
    # claim batch 1 while batches of 50 run, so they are dropped.
    for node in graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]

    def forward(images):
        (pool3,) = tf.graph_util.import_graph_def(
            graph_def, input_map={INCEPTION_GRAPH_INPUT: images}, return_elements=[INCEPTION_GRAPH_OUTPUT],
            name="FID_Inception_Net")
        return pool3

    try:
        # wrap_function runs the TF1 graph as a TF2 function pruned to pool_3: the JPEG-decoding head that
        # used to feed ExpandDims is never run, and H, W and N stay free.
        function = tf.compat.v1.wrap_function(forward, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    except (ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{INCEPTION_GRAPH} graph {path}: cannot feed float32 images [N, H, W, 3] to "
                         f"{INCEPTION_GRAPH_INPUT}: {first_line}") from error
    per_image = function.structured_outputs.shape[1:]
    if not per_image.is_fully_defined():
        raise ValueError(f"{INCEPTION_GRAPH} graph {path}: {INCEPTION_GRAPH_OUTPUT} has shape "
                         f"{function.structured_outputs.shape}, expected a fixed size per image ([N, 1, 1, 2048])")
    return ModelExtractor(
        lambda x: function(x).numpy(), f"{INCEPTION_GRAPH}-pool3@sha256:{_file_digest(path, 'sha256')[:12]}",
        input_size=None, input_channels=3, feature_dim=int(np.prod(per_image.as_list())), batch_size=batch_size)


def _keras_call(model: Any) -> Callable[[Any], Any]:
    import tensorflow as tf

    # One traced graph per batch shape instead of eager layer-by-layer calls.
    function = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: function(x).numpy()


def _static_size(dims: Any) -> Optional[tuple[int, int]]:
    dims = list(dims)
    return (int(dims[0]), int(dims[1])) if all(d is not None for d in dims) else None


def _file_digest(path: str, algorithm: str) -> str:
    import tensorflow as tf

    digest = hashlib.new(algorithm)
    with tf.io.gfile.GFile(path, "rb") as handle:  # local paths and the object stores TF reads
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _path_digest(path: str) -> str:
    """SHA-256 of a file, or of every file under a directory (relative names and contents, sorted)."""
    if os.path.isfile(path):
        return _file_digest(path, "sha256")
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            digest.update(_file_digest(full, "sha256").encode())
    return digest.hexdigest()


_REGISTRY: dict[str, Callable[[], FeatureExtractor]] = {
    RandomConvExtractor.name: RandomConvExtractor,
    # The unversioned name is what configs say; results record the versioned one.
    DEFAULT_EXTRACTOR: RandomConvExtractor,
}

# "kind:path" specs: the kind names a loader, the path is the user's file.
_PATH_KINDS: dict[str, Callable[[str], FeatureExtractor]] = {
    INCEPTION: inception_v3,
    INCEPTION_GRAPH: inception_graph,
    "keras": keras_model,
    "savedmodel": saved_model,
}


def available_extractors() -> list[str]:
    return sorted([*_REGISTRY, INCEPTION, DOMAIN_CLASSIFIER, f"{INCEPTION}:<weights.h5>",
                   f"{INCEPTION_GRAPH}:<{INCEPTION_GRAPH_FILE}>", "keras:<model.keras>", "savedmodel:<dir>"])


def parse_spec(spec: str) -> tuple[str, Optional[str]]:
    """``"random-conv"`` -> ("random-conv", None); ``"keras:/m.keras"`` -> ("keras", "/m.keras").

    Checks only the form, loads nothing: configs call it to fail fast on a typo.
    """
    if spec in _REGISTRY or spec in (INCEPTION, DOMAIN_CLASSIFIER):
        return spec, None
    if spec == INCEPTION_GRAPH:  # there is no cached copy to fall back on: the user names the file
        raise ValueError(f"feature extractor {spec!r} needs the graph's path: "
                         f"'{INCEPTION_GRAPH}:/path/to/{INCEPTION_GRAPH_FILE}'")
    kind, separator, path = spec.partition(":")
    if separator and kind in _PATH_KINDS:
        if not path:
            raise ValueError(f"feature extractor {spec!r}: the path after '{kind}:' is empty")
        return kind, path
    raise ValueError(f"unknown feature extractor {spec!r}; available: {', '.join(available_extractors())}")


def get_extractor(name: str = DEFAULT_EXTRACTOR) -> FeatureExtractor:
    """Builds the extractor ``name`` specifies; its ``.name`` is the versioned name to record.

    ``name`` is a registered name (``random-conv``), ``inception-v3`` (Keras'
    cached ImageNet weights), or ``kind:path`` with kind ``inception-v3``,
    ``inception-2015-12-05``, ``keras`` or ``savedmodel``.
    """
    kind, path = parse_spec(name)
    if kind == DOMAIN_CLASSIFIER:
        raise ValueError(f"{DOMAIN_CLASSIFIER!r} is trained on the data by the evaluator "
                         "(ganpipe.components.gan_evaluator.classifiers), not built by name")
    if kind in _REGISTRY:
        return _REGISTRY[kind]()
    factory = _PATH_KINDS[kind]
    return factory(path) if path is not None else factory()
