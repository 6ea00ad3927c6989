"""The whole pipeline through the real CLI, LocalDagRunner and MLMD, on small data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tensorflow as tf

from tests.conftest import TINY_RUN_FLAGS, run_cli, write_png_folder


# The Beam steps of the demo run on Beam's multi-process DirectRunner (issue 14): the whole pipeline must
# push with its Beam work in worker processes, without a second full run in the suite.
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
# TFX 1.16 labels each executor's Beam job with its class, and any class outside `tfx.` as a third party's
# (tfx/utils/telemetry_utils.py, make_labels_dict): here ImageExampleGen, the only other Beam step.
BEAM_EXECUTORS = {"ImageExampleGen": "tfx_executor=third_party_executor",
                  "StatisticsGen": "tfx_executor=tfx-components-statistics_gen-executor-executor"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny run on the bundled digits, its Beam steps on 2 worker processes, shared by the assertions
    below. Returns (output, result, the Beam SDK worker processes seen during the run)."""
    work = tmp_path_factory.mktemp("demo")
    output = work / "out"
    # With any Beam args, TFX 1.16 builds a ~50 MB sdist of itself per Beam step in a temp dir
    # (tfx/utils/dependency_utils.py, build_ephemeral_package): the run must remove them (checked below).
    (work / "tmp").mkdir()
    with pytest.MonkeyPatch.context() as patch, _BeamWorkerWatch() as workers:
        patch.setenv("TMPDIR", str(work / "tmp"))
        result = run_cli("run", "--output", str(output), *TINY_RUN_FLAGS,
                         "--set", f"beam.pipeline_args={json.dumps(MULTI_PROCESS)}", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return output, result, workers.seen


class _BeamWorkerWatch:
    """Beam SDK worker processes below this test process, polled from /proc while the CLI runs (Linux).

    With direct_running_mode=multi_processing, Beam 2.74's FnApiRunner runs every bundle in
    direct_num_workers processes `<python> -m apache_beam.runners.worker.sdk_worker_main`
    (apache_beam/runners/portability/fn_api_runner/fn_runner.py), each started with the job's options as
    JSON in PIPELINE_OPTIONS (apache_beam/runners/portability/local_job_service.py, SubprocessSdkWorker).
    They live for the whole Beam job (seconds: each imports Beam and our DoFns' modules), so polling
    every 0.1 s sees each of them.
    """

    def __init__(self):
        self.seen: dict[int, dict] = {}  # pid -> {"ancestors": [...], "options": {...}}
        self._foreign: set[int] = set()  # workers of another process tree (another test run on this machine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "_BeamWorkerWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            for name in os.listdir("/proc"):  # ~2 ms for 100 processes
                if name.isdigit() and int(name) not in self.seen and int(name) not in self._foreign:
                    self._look_at(int(name))

    def _look_at(self, pid: int) -> None:
        """Every poll until it is a worker: a new process is a fork of its parent until it execs."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if argv[1:3] != [b"-m", b"apache_beam.runners.worker.sdk_worker_main"]:  # nor its /bin/sh -c
                return
            environ = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                           if b"=" in item)
            options = json.loads(environ[b"PIPELINE_OPTIONS"])
            ancestors = _ancestors(pid)
        except (OSError, KeyError, ValueError):  # it ended, or is still starting: look again next time
            return
        if os.getpid() in ancestors:
            self.seen[pid] = {"ancestors": ancestors, "options": options}
        else:
            self._foreign.add(pid)


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold ") "
        chain.append(pid)
    return chain


def _versions(serving_base: Path) -> list[Path]:
    return sorted(p for p in serving_base.iterdir() if p.is_dir()) if serving_base.exists() else []


def test_run_pushes_a_versioned_generator_and_writes_samples(demo_run):
    output, result, _ = demo_run
    (version,) = _versions(output / "serving" / "generator")
    assert version.name.isdigit() and (version / "saved_model.pb").exists()
    assert f"pushed generator: {version}" in result.stdout
    samples = output / "samples.png"
    assert samples.exists() and samples.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for stage in ("ImageExampleGen", "DataGate", "Trainer", "GanEvaluator", "Pusher"):
        assert f"{stage} done" in result.stdout
    # TF's known-harmless native lines (ganpipe/native_noise.py) do not reach the user, nor, from Beam's worker
    # processes, google-cloud's Python-version notices or Beam's harmless worker warnings
    # (pipeline/local_runner.py).
    assert "Unable to register" not in result.stderr and "remapper failed" not in result.stderr
    assert "FutureWarning" not in result.stderr and "local_job_service:Worker" not in result.stderr


def test_the_beam_steps_ran_in_two_worker_processes_each(demo_run):
    """Evidence that multi_processing took effect: Beam's SDK worker processes, started below the ganpipe
    process, for each Beam step's job (by the TFX executor label Beam carries in the job's options)."""
    _, _, workers = demo_run
    by_step = {step: [pid for pid, worker in workers.items() if label in worker["options"]["beam:option:labels:v1"]]
               for step, label in BEAM_EXECUTORS.items()}
    assert {step: len(pids) for step, pids in by_step.items()} == {"ImageExampleGen": 2, "StatisticsGen": 2}, workers
    cli_processes = {worker["ancestors"][worker["ancestors"].index(os.getpid()) - 1] for worker in workers.values()}
    assert len(cli_processes) == 1 and not cli_processes & set(workers)  # one ganpipe process; none is a worker
    for worker in workers.values():
        options = worker["options"]
        assert options["beam:option:direct_running_mode:v1"] == "multi_processing"
        assert options["beam:option:direct_num_workers:v1"] == "2"  # Beam sends ints as text (portable_runner.py)


def test_the_sdists_tfx_builds_for_the_beam_steps_are_removed_when_the_run_ends(demo_run):
    """TFX hands its sdist to Beam as --extra_package, so the workers' options show it was built; the run's
    temp folder (pipeline/local_runner.py) must be gone with it."""
    output, _, workers = demo_run
    temp_root = output.parent / "tmp"
    built = {package for worker in workers.values()
             for package in worker["options"].get("beam:option:extra_packages:v1", [])}
    assert built and all(Path(package).is_relative_to(temp_root) for package in built), built
    assert not any(Path(package).exists() for package in built)
    assert not list(temp_root.glob("ganpipe-run-*")) and not list(temp_root.rglob("tfx_ephemeral*"))


def test_ingest_report_is_stored_with_the_examples(demo_run):
    """The report's counts are combined across the worker processes (CombineGlobally in ingest.py)."""
    output, _, _ = demo_run
    (report_path,) = (output / "pipeline_root").glob("ImageExampleGen/examples/*/ingest_report.json")
    report = json.loads(report_path.read_text())
    assert report["accepted"] == 1797 and report["total_files"] == 1797
    assert report["splits"]["train"] + report["splits"]["eval"] == 1797 and report["splits"]["eval"] > 0


def test_pushed_generator_loads_with_plain_tensorflow_in_a_clean_process(demo_run, tmp_path):
    output, _, _ = demo_run
    (version,) = _versions(output / "serving" / "generator")
    probe = f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(version)!r})
z = tf.random.normal([3, 100])
a = m.signatures["serving_default"](z=z)["images"]
s = m.signatures["generate_from_seeds"](seeds=tf.constant([5, 6, 5], tf.int64))
b = m.signatures["generate_from_seeds"](seeds=tf.constant([5], tf.int64))
png = tf.io.decode_png(s["png_bytes"][0])
print(json.dumps({{"a": [a.dtype.name] + a.shape.as_list(), "s": [s["images"].dtype.name] + s["images"].shape.as_list(),
  "same_seed_same_image": bool(tf.reduce_all(s["images"][0] == s["images"][2])),
  "batch_independent": bool(tf.reduce_all(s["images"][0] == b["images"][0])),
  "png_matches": bool(tf.reduce_all(png == s["images"][0])),
  "modules": sorted(k for k in __import__("sys").modules if k.split(".")[0] in ("trainer", "pipeline", "components", "tfx"))}}))
"""
    completed = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    facts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert facts["a"] == ["uint8", 3, 16, 16, 1]
    assert facts["s"] == ["uint8", 3, 16, 16, 1]
    assert facts["same_seed_same_image"] and facts["batch_independent"] and facts["png_matches"]
    assert facts["modules"] == []


def test_too_many_corrupt_files_stop_the_run_before_training(tmp_path):
    images = tmp_path / "images"
    paths = write_png_folder(images, 40)
    (images / "truncated.png").write_bytes(paths[0].read_bytes()[:60])
    (images / "empty.png").write_bytes(b"")
    (images / "notes.txt").write_text("not an image")
    output = tmp_path / "out"
    result = run_cli("run", "--data", str(images), "--output", str(output), *TINY_RUN_FLAGS, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "data gate stopped the run" in result.stderr
    assert "3 of 43 input files" in result.stderr
    assert "corrupt_or_truncated=1" in result.stderr and "empty_file=1" in result.stderr
    assert not (output / "pipeline_root" / "Trainer").exists()
    assert not (output / "serving").exists()


def _write_records(folder: Path, count: int, label: int = -1, with_sha256: bool = True,
                   image_bytes=lambda index, pixels: tf.io.encode_png(pixels).numpy()) -> None:
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "data.tfrecord")) as writer:
        for index in range(count):
            pixels = tf.cast(tf.fill([16, 16, 1], index * 5), tf.uint8)
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes(index, pixels)])),
                "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[16])),
                "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[16])),
                "channels": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"r{index}".encode()])),
            }
            if with_sha256:
                feature["sha256"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"{index:064x}".encode()]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_anomalies_in_imported_tfrecords_stop_the_run(tmp_path):
    """Examples whose values break the schema (a label below -1) are caught by TFDV and stop the run."""
    data = tmp_path / "records"
    _write_records(data, 40, label=-5)
    output = tmp_path / "out"
    result = run_cli("run", "--data", str(data), "--output", str(output), *TINY_RUN_FLAGS,
                     "--set", "data.min_images=2", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "data gate stopped the run" in result.stderr
    assert "feature 'label'" in result.stderr
    assert not (output / "serving").exists()


@pytest.mark.parametrize("kind, bad_bytes", [
    ("raw pixels", lambda pixels: pixels.numpy().tobytes()),
    ("a truncated PNG", lambda pixels: tf.io.encode_png(pixels).numpy()[:40]),
    ("text", lambda pixels: b"not an image at all"),
    ("nothing", lambda pixels: b""),
    ("a 1-bit BMP (Pillow reads it, TensorFlow does not)", lambda pixels: _one_bit_bmp()),
])
def test_tfrecords_whose_image_is_not_an_encoded_image_are_refused_before_tfx(tmp_path, kind, bad_bytes):
    """ImportExampleGen copies records unchecked: without this, the Trainer fails after statistics,
    validation and the data gate, with "Unknown image file format"."""
    from ganpipe.pipeline import inputs
    from ganpipe.pipeline.config import ConfigError, load_config

    data = tmp_path / "records"
    _write_records(data, 6, image_bytes=lambda index, pixels: bad_bytes(pixels) if index == 3
                   else tf.io.encode_png(pixels).numpy())
    config = load_config(None, {"data.path": str(data), "output_dir": str(tmp_path / "out")})
    with pytest.raises(ConfigError, match=r"record 3 of the TFRecords at .*: feature 'image' holds \d+ bytes that "
                                          r"are not a usable encoded image") as error:
        inputs.resolve(config)
    assert "\n" not in str(error.value), kind


def _one_bit_bmp() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (16, 16), 1).save(buffer, format="BMP")
    return buffer.getvalue()


def test_tfrecords_with_pixels_in_an_int_feature_are_refused_with_an_explicit_shape_too(tmp_path):
    from ganpipe.pipeline import inputs
    from ganpipe.pipeline.config import ConfigError, load_config

    data = tmp_path / "records"
    data.mkdir()
    with tf.io.TFRecordWriter(str(data / "data.tfrecord")) as writer:
        feature = {key: tf.train.Feature(int64_list=tf.train.Int64List(value=[16 if key != "channels" else 1]))
                   for key in ("height", "width", "channels", "label")}
        feature["image"] = tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(256))))
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    config = load_config(None, {"data.path": str(data), "output_dir": str(tmp_path / "out"),
                                "train.image_size": "16", "train.channels": "1"})
    with pytest.raises(ConfigError, match=r"record 0 of the TFRecords at .*image"):
        inputs.resolve(config)


def test_tfrecords_without_a_contract_feature_are_refused_before_tfx(tmp_path):
    data = tmp_path / "records"
    _write_records(data, 4, with_sha256=False)
    result = run_cli("run", "--data", str(data), "--output", str(tmp_path / "out"), *TINY_RUN_FLAGS, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("ganpipe: error:")]
    assert "sha256" in line and "record 0" in line
    assert not (tmp_path / "out" / "metadata.sqlite").exists()
