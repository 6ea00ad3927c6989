"""The curated schema every run validates its Examples against.

Why curated instead of SchemaGen: SchemaGen infers a closed string domain for
any string feature with at most 100 distinct values, so on a small dataset the
per-image `source` and `sha256` features get a domain from the train split and
every eval image becomes an "unexpected value" anomaly. The contract in
docs/design.md already says what an image example must look like; writing that down
is both stricter (channels, sizes, presence) and stable across datasets.
"""

from __future__ import annotations

import hashlib
import os

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ganpipe import contract
from ganpipe.atomic import write_atomically

MAX_IMAGE_SIDE = 16384


def build_schema(channels: int, convert_channels: bool) -> schema_pb2.Schema:
    """The contract's features, each required once per example."""
    schema = schema_pb2.Schema()

    def required(name: str, feature_type: int) -> schema_pb2.Feature:
        feature = schema.feature.add(name=name, type=feature_type)
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.shape.dim.add(size=1)
        return feature

    image = required(contract.IMAGE_KEY, schema_pb2.BYTES)
    image.image_domain.SetInParent()
    for side in (contract.HEIGHT_KEY, contract.WIDTH_KEY):
        domain = required(side, schema_pb2.INT).int_domain
        domain.min, domain.max = 1, MAX_IMAGE_SIDE
    stored_channels = required(contract.CHANNELS_KEY, schema_pb2.INT).int_domain
    if convert_channels or channels == 0:  # 0: auto, decided by ingestion at run time
        stored_channels.min, stored_channels.max = 1, 4
    else:  # grey (with or without alpha) for 1, colour (with or without alpha) for 3
        stored_channels.min, stored_channels.max = (1, 2) if channels == 1 else (3, 4)
    required(contract.LABEL_KEY, schema_pb2.INT).int_domain.min = contract.UNKNOWN_LABEL
    required(contract.SOURCE_KEY, schema_pb2.BYTES)
    required(contract.SHA256_KEY, schema_pb2.BYTES)
    return schema


def write_schema(schema: schema_pb2.Schema, pipeline_root: str) -> str:
    """Writes the schema under the pipeline root, content-addressed, and returns its path.

    Content addressing keeps earlier runs' schema files intact when a config
    change alters the schema, so lineage in MLMD keeps pointing at real files.
    """
    text = text_format.MessageToString(schema)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    directory = os.path.join(pipeline_root, "curated_schema", digest)
    path = os.path.join(directory, "schema.pbtxt")
    if not tf.io.gfile.exists(path):
        tf.io.gfile.makedirs(directory)
        write_atomically(path, text)  # two runs may write (and read) the same content-addressed file
    return path
