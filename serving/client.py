"""Ask the TF Serving endpoint (k8s/base/serving.yaml) for generated images, over REST or gRPC.

    python -m ganpipe.serving.client --rest http://localhost:8501 --seeds 0 1 2 --out samples/
    python -m ganpipe.serving.client --grpc localhost:8500 --seeds 0 1 2 --out samples/

Both call the generator's `generate_from_seeds` signature (int64 seeds [N]
-> uint8 images [N,H,W,C] and PNG bytes [N]; the same seed gives the same
image). Over REST the PNGs arrive base64-encoded as {"b64": ...}: TF Serving
does that for a string output whose name ends in `_bytes`
(tensorflow_serving/util/json_tensor.cc, tag 2.16.1), which is why the output
is called `png_bytes`. Both of TF Serving's JSON layouts are read: columnar
(request "inputs" -> response "outputs") and row ("instances" ->
"predictions", one object per image).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.request
from typing import Any, Sequence

import numpy as np

from ganpipe import contract

DEFAULT_MODEL = "generator"
TIMEOUT_S = 30.0


def predict_request(seeds: Sequence[int], model_name: str = DEFAULT_MODEL, version: int | None = None):
    """The gRPC PredictRequest for generate_from_seeds (tensorflow-serving-api protos)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = contract.SEEDS_SIGNATURE
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[contract.SEEDS_INPUT].CopyFrom(
        tf.make_tensor_proto(np.asarray(list(seeds), dtype=np.int64), dtype=tf.int64))
    return request


def rest_url(base: str, model_name: str = DEFAULT_MODEL, version: int | None = None) -> str:
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
    return base.rstrip("/") + path + ":predict"


def rest_body(seeds: Sequence[int]) -> dict[str, Any]:
    """TF Serving's columnar ("inputs") REST request for generate_from_seeds."""
    return {"signature_name": contract.SEEDS_SIGNATURE, "inputs": {contract.SEEDS_INPUT: [int(s) for s in seeds]}}


def rest_outputs(response: dict[str, Any]) -> dict[str, list]:
    """{output name: per-image values} from a columnar or row-format REST response.

    Raises:
      ValueError: the response is neither layout, or lacks an output of the contract.
    """
    if "outputs" in response:  # columnar: {"outputs": {"images": [...], "png_bytes": [...]}}
        outputs = response["outputs"]
    elif "predictions" in response:  # row: {"predictions": [{"images": ..., "png_bytes": ...}, ...]}
        rows = response["predictions"]
        outputs = {name: [row[name] for row in rows] for name in (rows[0] if rows else {})}
    else:
        raise ValueError(f"not a TF Serving predict response (keys: {', '.join(sorted(response))})")
    if not isinstance(outputs, dict) or contract.IMAGES_OUTPUT not in outputs:
        raise ValueError(f"the response has no '{contract.IMAGES_OUTPUT}' output")
    return outputs


def images_from_rest(response: dict[str, Any]) -> np.ndarray:
    """uint8 [N,H,W,C] from a REST response (either layout)."""
    return np.asarray(rest_outputs(response)[contract.IMAGES_OUTPUT], dtype=np.uint8)


def pngs_from_rest(response: dict[str, Any]) -> list[bytes]:
    """The PNG bytes of each image from a REST response (either layout): {"b64": ...} decoded."""
    encoded = rest_outputs(response).get(contract.PNG_OUTPUT)
    if encoded is None:
        raise ValueError(f"the response has no '{contract.PNG_OUTPUT}' output")
    return [base64.b64decode(value["b64"]) for value in encoded]


def images_from_grpc(response) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(response.outputs[contract.IMAGES_OUTPUT]).astype(np.uint8)


def pngs_from_grpc(response) -> list[bytes]:
    return list(response.outputs[contract.PNG_OUTPUT].string_val)


def call_rest(base: str, seeds: Sequence[int], model_name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The parsed JSON response of generate_from_seeds (read it with pngs_from_rest / images_from_rest)."""
    request = urllib.request.Request(rest_url(base, model_name), data=json.dumps(rest_body(seeds)).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:  # noqa: S310 - a URL the user gave
        return json.load(reply)


def call_grpc(target: str, seeds: Sequence[int], model_name: str = DEFAULT_MODEL):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(predict_request(seeds, model_name), timeout=TIMEOUT_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganpipe.serving.client", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rest", metavar="URL", help="REST base URL, e.g. http://localhost:8501")
    where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC target, e.g. localhost:8500")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name (push.model_name)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="one image per seed; the same seed gives the same image (default 0 1 2 3)")
    parser.add_argument("--out", default="served_samples", help="folder for seed_<n>.png")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    try:
        if args.rest:
            pngs = pngs_from_rest(call_rest(args.rest, args.seeds, args.model))
        else:
            pngs = pngs_from_grpc(call_grpc(args.grpc, args.seeds, args.model))
    except (OSError, ValueError) as error:  # refused, unreachable, HTTP errors (URLError is an OSError)
        print(f"serving client: {args.rest or args.grpc}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # grpc.RpcError: the server answered with an error status
        if type(error).__module__.startswith("grpc"):
            print(f"serving client: {args.grpc}: {getattr(error, 'details', lambda: error)()}", file=sys.stderr)
            return 2
        raise
    for seed, png in zip(args.seeds, pngs):
        with open(os.path.join(args.out, f"seed_{seed}.png"), "wb") as handle:
            handle.write(png)
    print(f"wrote {len(args.seeds)} image(s) to {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
