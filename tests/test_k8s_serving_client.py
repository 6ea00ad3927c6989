"""The serving client's requests, checked against a real exported generator (offline).

TF Serving itself is not installable here. What is checked: the PredictRequest
and the REST body carry exactly the inputs the exported `generate_from_seeds`
signature accepts (name, dtype, shape), and the client decodes responses
built from that signature's real outputs. The HTTP/gRPC transport is not run.
"""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

from ganpipe.serving import client as serving_client  # noqa: E402
from ganpipe import contract  # noqa: E402
from ganpipe.trainer.config import TrainerConfig  # noqa: E402


@pytest.fixture(scope="module")
def signature(tmp_path_factory):
    from ganpipe.trainer.export import export_generator
    from ganpipe.trainer.config import network_spec
    from ganpipe.trainer.models import build_generator

    cfg = TrainerConfig(image_size=16, channels=1, latent_dim=8)
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


def _tf_serving_json(outputs: dict[str, np.ndarray], layout: str) -> str:
    """The REST response body TF Serving writes for these outputs.

    Follows tensorflow/serving tag 2.16.1, tensorflow_serving/util/json_tensor.cc
    (unchanged at 2.19.1): a DT_STRING output whose name ends in "_bytes" is
    written as {"b64": base64} per value (IsNamedTensorBytes +
    AddSingleValueAndAdvance); any other string output is written as the raw
    bytes inside a JSON string. Row layout (MakeRowFormatJsonFromTensors):
    {"predictions": [{name: value, ...} per example]} when there are several
    outputs. Columnar layout (MakeColumnarFormatJsonFromTensors):
    {"outputs": {name: nested list}}.
    """
    def value(name: str, item):
        if isinstance(item, bytes):
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(item).decode("ascii")}
            return item.decode("latin-1")  # raw bytes in a JSON string: what a client cannot use
        return item.tolist() if isinstance(item, np.ndarray) else item

    if layout == "row":
        rows = [{name: value(name, array[index]) for name, array in outputs.items()}
                for index in range(len(next(iter(outputs.values()))))]
        return json.dumps({"predictions": rows})
    return json.dumps({"outputs": {name: [value(name, item) for item in array] for name, array in outputs.items()}})


@pytest.mark.parametrize("layout", ["row", "columnar"])
def test_rest_response_carries_every_output_of_the_seeds_signature(signature, layout):
    body = json.loads(json.dumps(serving_client.rest_body([1, 2, 1])))
    assert body["signature_name"] == contract.SEEDS_SIGNATURE
    (name, values), = body["inputs"].items()
    outputs = {key: tensor.numpy() for key, tensor in signature(**{name: tf.constant(values, tf.int64)}).items()}
    assert set(outputs) == {contract.IMAGES_OUTPUT, contract.PNG_OUTPUT}  # every output is encoded below
    response = json.loads(_tf_serving_json(outputs, layout).encode("utf-8"))  # as a client receives it
    images = serving_client.images_from_rest(response)
    pngs = serving_client.pngs_from_rest(response)
    assert np.array_equal(images, outputs[contract.IMAGES_OUTPUT])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(pngs[1]))), images[1, ..., 0])
    assert pngs[0] == pngs[2]


def test_a_png_output_not_named_bytes_would_be_unusable_over_rest(signature):
    """Why the output is png_bytes: under another name TF Serving writes the raw PNG into the JSON."""
    outputs = {key: tensor.numpy() for key, tensor in signature(seeds=tf.constant([0], tf.int64)).items()}
    outputs["png"] = outputs.pop(contract.PNG_OUTPUT)
    body = _tf_serving_json(outputs, "row")
    assert "\\u0089PNG" in body  # the PNG signature byte 0x89, not base64
    with pytest.raises(ValueError, match="png_bytes"):
        serving_client.pngs_from_rest(json.loads(body))


def test_rest_urls_and_bad_responses():
    assert serving_client.rest_url("http://localhost:8501/") == "http://localhost:8501/v1/models/generator:predict"
    assert serving_client.rest_url("http://h:8501", "g", 4) == "http://h:8501/v1/models/g/versions/4:predict"
    with pytest.raises(ValueError, match="not a TF Serving predict response"):
        serving_client.images_from_rest({"error": "Servable not found for request: Latest(generator)"})
