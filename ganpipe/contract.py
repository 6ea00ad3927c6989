"""Names shared across the pipeline: tf.Example features and generator signatures.

These are the stable contracts in docs/design.md. Ingestion writes the features,
the trainer and evaluator read them, TF Serving clients call the signatures:
change a name here and every one of them has to change with it.
"""

# tf.Example features written by ImageExampleGen.
IMAGE_KEY = "image"  # encoded image bytes, as found on disk (or PNG for arrays)
HEIGHT_KEY = "height"  # int64, of the stored image
WIDTH_KEY = "width"  # int64
CHANNELS_KEY = "channels"  # int64, of the stored image (before any conversion)
LABEL_KEY = "label"  # int64, -1 when unknown
SOURCE_KEY = "source"  # bytes: where the image came from (path, or file#index)
SHA256_KEY = "sha256"  # bytes: hex digest of the image bytes
UNKNOWN_LABEL = -1

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# Written by ImageExampleGen next to the splits (Examples artifact URI); read by the DataGate.
INGEST_REPORT_FILE = "ingest_report.json"

# ModelBlessing custom property: the serving version the candidate was judged against (0: none).
# GanEvaluator writes it; ServingPusher pushes only while that version is still the newest.
BASELINE_VERSION_PROPERTY = "baseline_version"

# Examples custom property: how many synthetic images SyntheticExampleGen wrote (it marks its
# Examples apart from the real ones ingestion wrote; the run summary reads it).
SYNTHETIC_COUNT_PROPERTY = "synthetic_count"

# Generator SavedModel signatures.
SERVING_SIGNATURE = "serving_default"  # z float32 [N, latent] -> images uint8 [N, H, W, C]
SEEDS_SIGNATURE = "generate_from_seeds"  # seeds int64 [N] -> images uint8, png string [N]
LATENT_INPUT = "z"
SEEDS_INPUT = "seeds"
IMAGES_OUTPUT = "images"
# TF Serving's REST API base64-encodes a string output ({"b64": ...}) only when its
# name ends in "_bytes" (tensorflow_serving/util/json_tensor.cc); any other name
# puts raw PNG bytes into the JSON, which is then not valid UTF-8.
PNG_OUTPUT = "png_bytes"

# Class-conditional generators only (train.conditional): a third signature that
# takes the class, next to the two above, which keep their inputs and pick the
# class of each row from its latent vector's fingerprint (see trainer/export.py).
CONDITIONAL_SIGNATURE = "generate_with_labels"  # z float32 [N, latent], labels int64 [N] -> images uint8
LABELS_INPUT = "labels"
# In a conditional generator's SavedModel: assets/class_names.txt, line i the name of label i
# (the class folder's name, from ingestion), and the same as the string variable `class_names`.
CLASS_NAMES_ASSET = "class_names.txt"
