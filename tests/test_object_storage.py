"""Inputs on object storage: `gs://` through TensorFlow's own GCS filesystem, against an emulator on loopback.

The store is gcp-storage-emulator (PyPI) behind tests/gcs_stand_in.py, which
makes TF's unmodified GCS client (libcurl, TLS, its bearer-token auth) talk to
it; see that file for how. Nothing here reaches a real bucket: real GCS and
S3, and credentials on a cluster, are not exercised (docs/deploy.md says so).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import select
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from ganpipe import contract
from ganpipe.components.image_example_gen import arrays, filesystem, report, sources

STAND_IN = Path(__file__).with_name("gcs_stand_in.py")
TOKEN = "ganpipe-test-token"
BUCKET = "ganpipe-data"


@dataclasses.dataclass
class Store:
    """The running stand-in: how to reach it, and how to put objects in it (directly, not through TF)."""

    proxy_port: int
    emulator_port: int
    directory: str

    def env(self, token: str = TOKEN) -> dict[str, str]:
        """What a process sets so that TF's gs:// goes to the stand-in (nothing of the code under test changes).

        No GCE metadata server, and an empty gcloud config: without the token, TF has no credentials at all.
        """
        variables = {"https_proxy": f"http://127.0.0.1:{self.proxy_port}",
                     "CURL_CA_BUNDLE": os.path.join(self.directory, "ca.pem"), "NO_GCE_CHECK": "true",
                     "CLOUDSDK_CONFIG": self.directory, "GOOGLE_AUTH_TOKEN_FOR_TESTING": token}
        variables["HTTPS_PROXY"] = variables["https_proxy"]
        return variables

    def _send(self, method: str, path: str, data: bytes, content_type: str) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.emulator_port}{path}", data=data, method=method,
                                         headers={"Content-Type": content_type})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to loopback
        with opener.open(request, timeout=30) as answer:
            assert answer.status == 200, answer.status

    def create_bucket(self, name: str) -> None:
        self._send("POST", "/storage/v1/b?project=test", json.dumps({"name": name}).encode(), "application/json")

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        self._send("POST", f"/upload/storage/v1/b/{bucket}/o?{query}", data, "application/octet-stream")

    def upload_tree(self, local: Path, bucket: str, prefix: str) -> str:
        """Every file under ``local`` (hidden ones too) as objects under ``prefix``; returns the gs:// URL."""
        for path in sorted(local.rglob("*")):
            if path.is_file():
                self.upload(bucket, f"{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())
        return f"gs://{bucket}/{prefix}"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    directory = tmp_path_factory.mktemp("gcs-stand-in")
    with open(directory / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([sys.executable, str(STAND_IN), str(directory), TOKEN],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().split() if ready else []
        assert line[:1] == ["READY"], f"stand-in did not start: {(directory / 'stderr.txt').read_text()}"
        running = Store(int(line[1]), int(line[2]), str(directory))
        running.create_bucket(BUCKET)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def on_store(store, monkeypatch) -> Store:
    """This process's TF reads gs:// from the stand-in for the test's duration."""
    for name in ("no_proxy", "NO_PROXY", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in store.env().items():
        monkeypatch.setenv(name, value)
    return store


# ---------------------------------------------------------------- data


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_images(folder: Path) -> None:
    """Three class folders of colour PNGs (some with alpha), a corrupt file, hidden entries and a README."""
    rng = np.random.default_rng(7)
    for label, name in enumerate(("circles", "squares", "stripes")):
        (folder / name).mkdir(parents=True)
        for index in range(5):
            channels = 4 if index % 2 else 3  # RGBA and RGB
            pixels = rng.integers(0, 256, size=(20 + 4 * label, 24, channels), dtype=np.uint8)
            if channels == 4:
                pixels[:6, :, 3] = 0  # a transparent band: the background shows there
            (folder / name / f"{index:02d}.png").write_bytes(_png(pixels))
    good = (folder / "circles" / "00.png").read_bytes()
    (folder / "squares" / "cut.png").write_bytes(good[: len(good) // 2])  # corrupt: cut off
    (folder / "stripes" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "t.png").write_bytes(good)
    (folder / "README.txt").write_text("three classes of noise\n")


def _ingest(input_base: str, out: Path) -> tuple[dict, dict[str, dict]]:
    """The real executor (real Beam, in this process); returns (report, {sha256: example fields})."""
    import tensorflow as tf
    from tfx.types import standard_artifacts

    from ganpipe.components.image_example_gen.config import IngestConfig
    from ganpipe.components.image_example_gen.executor import Executor

    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    config = IngestConfig(eval_fraction=0.3, labels_from_subfolders=True)  # size and channels: auto, from the images
    properties = {"input_base": input_base, "data_format": "auto", "config": json.dumps(config.to_dict())}
    Executor(Executor.Context(beam_pipeline_args=[])).Do({}, {"examples": [examples]}, properties)
    by_digest: dict[str, dict] = {}
    for split in ("train", "eval"):
        files = sorted(str(path) for path in (out / f"Split-{split}").glob("*.gz"))
        for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(raw.numpy()).features.feature
            digest = feature[contract.SHA256_KEY].bytes_list.value[0].decode()
            assert digest not in by_digest  # the test data has no duplicates
            by_digest[digest] = {"split": split, "image": feature[contract.IMAGE_KEY].bytes_list.value[0],
                                 "label": feature[contract.LABEL_KEY].int64_list.value[0],
                                 "source": feature[contract.SOURCE_KEY].bytes_list.value[0].decode()}
    return json.loads((out / report.REPORT_FILE).read_text()), by_digest


# ---------------------------------------------------------------- tests


def test_ingesting_from_the_store_gives_the_same_examples_as_from_a_local_copy(on_store, tmp_path):
    local = tmp_path / "images"
    _write_images(local)
    url = on_store.upload_tree(local, BUCKET, "same-examples/images")

    local_report, local_examples = _ingest(str(local), tmp_path / "from-local")
    store_report, store_examples = _ingest(url, tmp_path / "from-store")

    assert len(local_examples) == 15 and set(store_examples) == set(local_examples)
    for digest, example in local_examples.items():
        remote = store_examples[digest]
        assert (remote["image"], remote["label"], remote["split"]) == (example["image"], example["label"],
                                                                       example["split"])
        assert remote["source"] == url + example["source"][len(str(local)):]
    assert {example["split"] for example in local_examples.values()} == {"train", "eval"}
    assert sorted({example["label"] for example in local_examples.values()}) == [0, 1, 2]

    ignored = ("input_base", "seconds", "images_per_second", "rejected_files")
    assert {k: v for k, v in store_report.items() if k not in ignored} == \
           {k: v for k, v in local_report.items() if k not in ignored}
    assert store_report["rejected"] == {"corrupt_or_truncated": 1, "not_an_image": 1}
    assert (store_report["hidden_files"], store_report["hidden_dirs"]) == (1, 1)
    assert store_report["label_names"] == ["circles", "squares", "stripes"]
    assert sorted(entry["source"] for entry in store_report["rejected_files"]) == \
           [f"{url}/README.txt", f"{url}/squares/cut.png"]


def test_preflight_and_array_files_on_the_store(on_store, tmp_path):
    images = np.stack([np.full((12, 12), 40 * index, np.uint8) for index in range(5)])
    labels = np.arange(5, dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", images=images, labels=labels.astype(np.int64))
    idx = tmp_path / "idx"
    idx.mkdir()
    for name, array in (("train-images-idx3-ubyte.gz", images), ("train-labels-idx1-ubyte.gz", labels)):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (idx / name).write_bytes(gzip.compress(header + array.tobytes()))
    on_store.upload(BUCKET, "arrays/digits.npz", (tmp_path / "digits.npz").read_bytes())
    idx_url = on_store.upload_tree(idx, BUCKET, "arrays/idx")

    for url, data_format in ((f"gs://{BUCKET}/arrays/digits.npz", "npz"), (idx_url, "idx")):
        found = sources.preflight(url)
        assert (found["format"], found["num_images"]) == (data_format, 5), found
        (array_file,) = sources.plan_inputs(url, data_format).array_files
        loaded = arrays.load_array_file(array_file)
        assert np.array_equal(loaded.images, images) and np.array_equal(loaded.labels, labels)
    assert sources.plan_inputs(idx_url, "idx").array_files[0].labels_path == f"{idx_url}/train-labels-idx1-ubyte.gz"


def test_tfrecords_on_the_store_resolve(on_store, tmp_path):
    import tensorflow as tf

    from ganpipe.pipeline import inputs
    from ganpipe.pipeline.config import load_config

    with tf.io.TFRecordWriter(str(tmp_path / "part-0.tfrecord")) as writer:
        for seed in range(3):
            image = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            feature = {contract.IMAGE_KEY: _bytes(_png(image)), contract.SHA256_KEY: _bytes(b"%d" % seed),
                       contract.HEIGHT_KEY: _int(16), contract.WIDTH_KEY: _int(16), contract.CHANNELS_KEY: _int(3)}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    on_store.upload(BUCKET, "records/part-0.tfrecord", (tmp_path / "part-0.tfrecord").read_bytes())
    config = load_config(None, {"data.path": f"gs://{BUCKET}/records", "output_dir": str(tmp_path / "out")})
    resolved = inputs.resolve(config)
    assert (resolved.path, resolved.format) == (f"gs://{BUCKET}/records", "tfrecord")
    assert (config.train.image_size, config.train.channels) == (32, 3)


def _bytes(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _run_check(data: str, output: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """`ganpipe run --check` (or `run`) in its own process: TF's GCS client reads its settings once per process."""
    variables = {name: value for name, value in os.environ.items()
                 if name.lower() not in ("https_proxy", "no_proxy", "google_auth_token_for_testing",
                                         "google_application_credentials")}
    variables.update(env, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    ganpipe = Path(sys.executable).with_name("ganpipe")
    return subprocess.run([str(ganpipe), "run", *(["--check"] if check else []), "--data", data, "--output",
                           str(output)],
                          env=variables, capture_output=True, text=True, timeout=300, cwd=output.parent)


def test_run_check_passes_on_the_store(store, tmp_path):
    local = tmp_path / "images"
    _write_images(local)
    url = store.upload_tree(local, BUCKET, "check/images")
    result = _run_check(url, tmp_path / "out", store.env())
    assert result.returncode == 0, result.stderr
    assert f"check passed: input: folder input at {url} (17 candidate images)" in result.stdout, result.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, data, message", [
    ("unknown scheme", "foo://bucket/images", "TensorFlow has no filesystem for foo://"),
    ("missing package", "s3://bucket/images", "s3:// only with the tensorflow-io package installed"),
    ("missing bucket", "gs://no-such-bucket/images",
     "data.path gs://no-such-bucket/images does not exist: bucket gs://no-such-bucket does not exist"),
    ("missing path", f"gs://{BUCKET}/no/such/folder",
     f"data.path gs://{BUCKET}/no/such/folder does not exist: no object or folder at that path"),
    ("no credentials", f"gs://{BUCKET}/images",
     f"cannot read data.path gs://{BUCKET}/images: access denied (HTTP 401: Anonymous caller does not have"),
    ("unreachable", f"gs://{BUCKET}/images", f"cannot read data.path gs://{BUCKET}/images: cannot reach the store"),
    ("run, not check", "foo://bucket/images", "TensorFlow has no filesystem for foo://"),
])
def test_bad_store_inputs_are_one_line_and_exit_2(store, tmp_path, case, data, message):
    if case == "missing package" and filesystem.importlib.util.find_spec("tensorflow_io") is not None:
        pytest.skip("tensorflow-io is installed here: s3:// is registered")
    env = store.env()
    if case == "no credentials":
        env.pop("GOOGLE_AUTH_TOKEN_FOR_TESTING")
    if case == "unreachable":  # nothing listens there; one retry, not TF's default ten (minutes of back-off)
        env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                   GCS_RETRY_CONFIG_MAX_RETRIES="1", GCS_RETRY_CONFIG_INIT_DELAY_TIME_US="1000")
    result = _run_check(data, tmp_path / "out", env, check=case != "run, not check")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("ganpipe: error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- no store needed


def test_short_message_keeps_the_status_and_the_stores_words():
    wrapped = ("All 10 retry attempts failed. The last failure: Error executing an HTTP request: HTTP response "
               'code 403 with body \'{\n  "error": {\n    "code": 403,\n    "message": "x@y.iam.gserviceaccount.com '
               'does not have storage.objects.list access."\n  }\n}\n\'\n\t when reading gs://b/x')
    assert filesystem.short_message(wrapped) == \
        "HTTP 403: x@y.iam.gserviceaccount.com does not have storage.objects.list access."
    assert filesystem.short_message("Error executing an HTTP request: libcurl code 7 meaning 'Couldn't connect'\n"
                                    "\t when reading metadata of gs://b/x") == \
        "Error executing an HTTP request: libcurl code 7 meaning 'Couldn't connect'"


def test_urls_and_local_paths_are_told_apart():
    assert filesystem.is_url("gs://b/x") and filesystem.is_url("ram://x") and filesystem.is_url("s3://b")
    assert not filesystem.is_url("/data/gs://x") and not filesystem.is_url("images") and not filesystem.is_url("C:x")
    assert filesystem.bucket_of("gs://b/x/y") == "gs://b" and filesystem.bucket_of("ram://b/x") == ""
    assert filesystem.join("gs://b/x/", "a/", "c.png") == "gs://b/x/a/c.png"


def test_output_inside_an_input_url_is_refused():
    from ganpipe.pipeline import inputs
    from ganpipe.pipeline.config import ConfigError

    for output in ("gs://b/images", "gs://b/images/", "gs://b/images/run"):
        with pytest.raises(ConfigError, match="lies inside the input"):
            inputs._check_output_outside_url("gs://b/images/", output)  # pylint: disable=protected-access
    inputs._check_output_outside_url("gs://b/images", "gs://b/images-out")  # pylint: disable=protected-access


def test_preflight_of_a_local_folder_does_not_import_tensorflow(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("not an image")
    script = ("import sys\nfrom ganpipe.components.image_example_gen import sources\n"
              f"try:\n    sources.preflight({str(tmp_path / 'junk')!r})\nexcept sources.IngestInputError:\n"
              "    print('refused', 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["refused", "False"], result.stderr
