"""The serving client's requests, checked against a real exported generator (offline).

TF Serving itself is not installable here. What is checked: the PredictRequest
and the REST body carry exactly the inputs the exported `generate_from_seeds`
signature accepts (name, dtype, shape), and the client decodes responses
built from that signature's real outputs. The HTTP/gRPC transport is not run.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

from pipeline import serving_client  # noqa: E402
from ganpipe import contract  # noqa: E402
from ganpipe.trainer.config import TrainerConfig  # noqa: E402


@pytest.fixture(scope="module")
def signature(tmp_path_factory):
    from ganpipe.trainer.export import export_generator
    from ganpipe.trainer.config import network_spec
    from ganpipe.trainer.models import build_generator

    cfg = TrainerConfig(image_size=16, latent_dim=8)
    path = str(tmp_path_factory.mktemp("generator") / "1")
    export_generator(build_generator(network_spec(cfg)), cfg, path)
    return tf.saved_model.load(path).signatures[contract.SEEDS_SIGNATURE]


def test_grpc_request_feeds_the_seeds_signature_and_pngs_decode(signature):
    request = serving_client.predict_request([5, 7, 5], model_name="generator", version=3)
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == \
        ("generator", contract.SEEDS_SIGNATURE, 3)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire
    # What TF Serving does with it: inputs by name into the signature.
    spec = signature.structured_input_signature[1]
    assert set(request.inputs) == set(spec)
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    assert inputs[contract.SEEDS_INPUT].dtype == spec[contract.SEEDS_INPUT].dtype
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    images = serving_client.images_from_grpc(response)
    pngs = serving_client.pngs_from_grpc(response)
    assert images.shape == (3, 16, 16, 1) and images.dtype == np.uint8
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(pngs[1]))), images[1, ..., 0])
    assert pngs[0] == pngs[2]  # same seed, same image


def test_rest_body_feeds_the_seeds_signature_and_images_decode(signature):
    body = json.loads(json.dumps(serving_client.rest_body([1, 2])))
    assert body["signature_name"] == contract.SEEDS_SIGNATURE
    (name, values), = body["inputs"].items()
    outputs = signature(**{name: tf.constant(values, dtype=tf.int64)})
    # TF Serving's columnar response, as JSON (uint8 arrays become nested lists).
    response = json.loads(json.dumps({"outputs": {contract.IMAGES_OUTPUT: outputs[contract.IMAGES_OUTPUT].numpy().tolist()}}))
    images = serving_client.images_from_rest(response)
    assert np.array_equal(images, outputs[contract.IMAGES_OUTPUT].numpy())
    assert serving_client.rest_url("http://localhost:8501/") == "http://localhost:8501/v1/models/generator:predict"
    assert serving_client.rest_url("http://h:8501", "g", 4) == "http://h:8501/v1/models/g/versions/4:predict"
