"""Synthetic data export: `ganpipe generate --format tfrecord|folder` and the pipeline's SyntheticExampleGen.

Real generators (trained one step at 16x16), real TFX (ImportExampleGen and
the whole pipeline under LocalDagRunner, MLMD lineage), real ingestion
(ImageExampleGen's executor on a real Beam pipeline). Streaming is checked by
counting live batches, not by timing; atomicity by killing a writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import types
import weakref
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from ganpipe import contract  # noqa: E402
from ganpipe.cli import main as cli  # noqa: E402
from ganpipe.components.synthetic_example_gen import request, samples, writers  # noqa: E402
from tests.conftest import REPO_ROOT, TINY_RUN_FLAGS, run_cli, write_png_folder  # noqa: E402
from tests.test_image_example_gen import _ingest, _read_split  # noqa: E402
from tests.test_trainer import TINY, _blobs, _write_split  # noqa: E402

CLASS_NAMES = ["ant", "bee", "cat"]


@pytest.fixture(scope="module")
def generators(tmp_path_factory) -> types.SimpleNamespace:
    """Two pushed-looking generators (`<base>/1`): unconditional, and conditional with 3 named classes."""
    from ganpipe.trainer.config import TrainerConfig
    from ganpipe.trainer.task import train

    root = tmp_path_factory.mktemp("generators")
    data = root / "examples"
    _write_split(data / "Split-train", _blobs(24, 16, 1, seed=5), labels=np.arange(24) % len(CLASS_NAMES))
    (data / contract.INGEST_REPORT_FILE).write_text(json.dumps({"label_names": CLASS_NAMES}))
    bases = {}
    for name, conditional in (("plain", False), ("conditional", True)):
        bases[name] = root / "serving" / name
        cfg = TrainerConfig(**{**TINY, "steps": 1, "sample_every": 1, "checkpoint_every": 0,
                               "conditional": conditional})
        train(cfg, [str(data / "Split-train" / "*")], str(bases[name] / "1"), str(root / f"run_{name}"))
    return types.SimpleNamespace(plain=bases["plain"], conditional=bases["conditional"])


def _generate(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["generate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _records(folder: Path) -> list[dict]:
    """Every record under a folder's TFRecord shards, parsed with the contract's features."""
    spec = {key: tf.io.FixedLenFeature([], dtype) for key, dtype in (
        (contract.IMAGE_KEY, tf.string), (contract.HEIGHT_KEY, tf.int64), (contract.WIDTH_KEY, tf.int64),
        (contract.CHANNELS_KEY, tf.int64), (contract.LABEL_KEY, tf.int64), (contract.SOURCE_KEY, tf.string),
        (contract.SHA256_KEY, tf.string))}
    files = sorted(str(path) for path in folder.rglob("data_tfrecord-*.gz"))
    assert files, f"no shards under {folder}"
    parsed = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        record = {key: value.numpy() for key, value in tf.io.parse_single_example(raw, spec).items()}
        parsed.append({key: value.decode() if key in (contract.SOURCE_KEY, contract.SHA256_KEY) else value
                       for key, value in record.items()})
    return parsed


def _seeds_images(model_dir: Path, seeds) -> dict[int, bytes]:
    """The seeds signature's PNG per seed: what `ganpipe generate` (grid) and TF Serving clients get."""
    loaded = tf.saved_model.load(str(model_dir))
    out = loaded.signatures[contract.SEEDS_SIGNATURE](seeds=tf.constant(list(seeds), tf.int64))
    return dict(zip(seeds, (bytes(png) for png in out[contract.PNG_OUTPUT].numpy())))


# ---------------------------------------------------------------- tfrecord format


def test_tfrecord_export_round_trips_through_import_example_gen(generators, tmp_path, capsys):
    """The export is what ImportExampleGen reads under the real LocalDagRunner; its Examples parse with
    the contract and hold the written images (sha256) and labels."""
    from ml_metadata import metadata_store
    from tfx import v1 as tfx

    out = tmp_path / "synthetic"
    code, stdout, err = _generate(capsys, "--model", str(generators.conditional), "--format", "tfrecord",
                                  "--n", "40", "--seed", "7", "--out", str(out))
    assert code == 0, err
    assert f"tfrecord: {out / 'Split-train'} (1 files)" in stdout
    assert sorted(path.name for path in (out / "Split-train").iterdir()) == ["data_tfrecord-00000-of-00001.gz"]
    written = _records(out)
    manifest = json.loads((out / "export.json").read_text())
    assert len(written) == manifest["count"] == 40 and manifest["first_seed"] == 7
    assert manifest["class_names"] == CLASS_NAMES and manifest["image_shape"] == [16, 16, 1]
    for index, record in enumerate(written):
        assert record[contract.SHA256_KEY] == hashlib.sha256(record[contract.IMAGE_KEY]).hexdigest()
        assert tf.io.decode_png(record[contract.IMAGE_KEY]).shape == (16, 16, 1)
        assert (record[contract.HEIGHT_KEY], record[contract.WIDTH_KEY], record[contract.CHANNELS_KEY]) == (16, 16, 1)
        assert 0 <= record[contract.LABEL_KEY] < len(CLASS_NAMES)
        assert record[contract.SOURCE_KEY] == (f"{generators.conditional}#version=1&seed={7 + index}"
                                               f"&label={record[contract.LABEL_KEY]}")

    example_gen = tfx.components.ImportExampleGen(
        input_base=str(out),
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="train", pattern="Split-train/*")]))
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="synthetic_import", pipeline_root=str(tmp_path / "root"), components=[example_gen],
        metadata_connection_config=connection, enable_cache=False))
    (examples,) = metadata_store.MetadataStore(connection).get_artifacts_by_type("Examples")
    imported = _records(Path(examples.uri))
    def key(record: dict) -> tuple:
        return record[contract.SHA256_KEY], record[contract.LABEL_KEY], record[contract.SOURCE_KEY]

    assert sorted(map(key, imported)) == sorted(map(key, written))
    # ganpipe's own TFRecord route (ImportExampleGen, after its preflight) takes the split folder.
    assert cli.main(["run", "--check", "--data", str(out / "Split-train"), "--output", str(tmp_path / "run")]) == 0
    assert "TFRecords of tf.Example at" in capsys.readouterr().out


def test_the_same_seeds_give_the_same_records_and_the_grids_images(generators, tmp_path):
    from ganpipe.serving.generate import export

    first = export(str(generators.plain), str(tmp_path / "a"), "tfrecord", count=300, seed=3)
    export(str(generators.plain), str(tmp_path / "b"), "tfrecord", count=300, seed=3)
    records = _records(tmp_path / "a")
    # More than one batch (BATCH=256), record for record the same (GZIP's bytes may differ: TF's zlib
    # stream is not byte-stable from one writer to the next).
    assert records == _records(tmp_path / "b")
    assert first.labels == {"-1": 300} and {record[contract.LABEL_KEY] for record in records} == {-1}
    reference = _seeds_images(generators.plain / "1", [3, 150, 302])
    for seed in (3, 150, 302):
        assert records[seed - 3][contract.IMAGE_KEY] == reference[seed]
        assert records[seed - 3][contract.SOURCE_KEY] == f"{generators.plain}#version=1&seed={seed}"


# ---------------------------------------------------------------- conditional, unconditional


def test_conditional_labels_are_the_generators_own_and_per_class_counts_are_exact(generators, tmp_path, capsys):
    from ganpipe.serving.generate import export

    # --n: each seed's class is the one the seeds signature draws, so the image is the grid's, byte for byte
    # (a wrong label would change it), now labelled.
    summary = export(str(generators.conditional), str(tmp_path / "n"), "tfrecord", count=30)
    records = _records(tmp_path / "n")
    reference = _seeds_images(generators.conditional / "1", list(range(30)))
    assert [record[contract.IMAGE_KEY] for record in records] == [reference[seed] for seed in range(30)]
    assert sum(summary.labels.values()) == 30 and len(summary.labels) > 1  # 30 draws over 3 classes

    code, stdout, err = _generate(capsys, "--model", str(generators.conditional), "--format", "tfrecord",
                                  "--per-class", "4", "--out", str(tmp_path / "per_class"))
    assert code == 0, err
    assert "images per label 0: 4, 1: 4, 2: 4" in stdout
    records = _records(tmp_path / "per_class")
    assert [record[contract.LABEL_KEY] for record in records] == [index % 3 for index in range(12)]  # interleaved
    # A chosen class really conditions the generator: the same seed in another class is another image.
    by_seed = {record[contract.SOURCE_KEY]: record[contract.IMAGE_KEY] for record in records}
    assert len(set(by_seed.values())) == 12


def test_unconditional_gives_minus_one_and_refuses_per_class(generators, tmp_path, capsys):
    code, _, err = _generate(capsys, "--model", str(generators.plain), "--format", "folder", "--n", "5",
                             "--out", str(tmp_path / "plain"))
    assert code == 0, err
    names = sorted(path.name for path in (tmp_path / "plain").iterdir())
    assert names == [".export.json", *(f"{index}.png" for index in range(5))]
    code, _, err = _generate(capsys, "--model", str(generators.plain), "--format", "tfrecord", "--per-class", "2",
                             "--out", str(tmp_path / "refused"))
    assert code == 2 and "--per-class: the generator is unconditional" in err and err.count("\n") == 1, err
    assert not (tmp_path / "refused").exists()
    assert not [name for name in os.listdir(tmp_path) if "partial" in name]


# ---------------------------------------------------------------- folder format


def test_folder_export_is_class_folders_that_ganpipe_ingests(generators, tmp_path, capsys):
    out = tmp_path / "folders"
    code, stdout, err = _generate(capsys, "--model", str(generators.conditional), "--format", "folder",
                                  "--per-class", "5", "--seed", "95", "--out", str(out))
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == [".export.json", *CLASS_NAMES]
    assert sorted(path.name for path in (out / "ant").iterdir()) == ["095.png", "098.png", "101.png", "104.png",
                                                                     "107.png"]
    assert cli.main(["run", "--check", "--data", str(out), "--output", str(tmp_path / "run")]) == 0
    assert "check passed: input: folder input" in capsys.readouterr().out

    document, splits = _ingest(out, tmp_path / "ingested")
    assert document["label_names"] == CLASS_NAMES and document["accepted"] == 15 and document["rejected_total"] == 0
    records = [record for split in splits.values() for record in split]
    for record in records:
        class_name, file_name = Path(record["source"]).parts[-2:]
        assert CLASS_NAMES[record["label"]] == class_name
        # Ingestion stores the PNG of the pixels it prepared (same size here, so the same pixels).
        assert (tf.io.decode_png(record["image"]).numpy() ==
                tf.io.decode_png((out / class_name / file_name).read_bytes()).numpy()).all()


# ---------------------------------------------------------------- refusals


def test_bad_requests_are_one_line_exit_2_before_the_model_loads(capsys, corrupt_model, tmp_path):
    """The model is corrupt: a message about anything but the flag would mean it was loaded first."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    out = str(tmp_path / "out")
    cases = [
        (["--format", "tfrecord", "--n", "0", "--out", out], "--n=0: must be in [1, 100000000]"),
        (["--format", "tfrecord", "--n", "-3", "--out", out], "--n=-3: must be in [1,"),
        (["--format", "folder", "--n", str(10**9), "--out", out], f"--n={10**9}: must be in [1, 100000000]"),
        (["--format", "tfrecord", "--per-class", "0", "--out", out], "--per-class=0: must be in"),
        (["--format", "tfrecord", "--n", "4", "--per-class", "2", "--out", out], "not both"),
        (["--format", "tfrecord", "--out", out], "give --n N (images) or --per-class N"),
        (["--format", "tfrecord", "--n", "4"], "--out: give the folder to write"),
        (["--format", "tfrecord", "--n", "4", "--out", str(a_file)], "exists and is not a folder"),
        (["--format", "folder", "--n", "4", "--out", str(full)], "the folder is not empty (1 entries)"),
        (["--format", "tfrecord", "--n", "4", "--out", str(a_file / "sub" / "out")], "cannot create"),
        (["--format", "tfrecord", "--n", "4", "--out", "gs://bucket/synthetic"], "a local folder only"),
        (["--format", "tfrecord", "--n", "4", "--seed", str(2**63 - 2), "--out", out], "seeds are int64"),
        (["--format", "tfrecord", "--n", "4", "--scale", "2", "--out", out], "--scale: only with --format grid"),
        (["--per-class", "4"], "--per-class: only with --format tfrecord or folder"),
    ]
    for argv, message in cases:
        code, _, err = _generate(capsys, "--model", str(corrupt_model), *argv)
        assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert (full / "keep.txt").read_text() == "mine" and not os.path.exists(out)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["generate", "--model", str(corrupt_model), "--format", "parquet"])
    assert stopped.value.code == 2 and "invalid choice" in capsys.readouterr().err
    # Past the request checks, the corrupt model itself is the one-line refusal.
    code, _, err = _generate(capsys, "--model", str(corrupt_model), "--format", "tfrecord", "--n", "4", "--out", out)
    assert code == 2 and "cannot load the SavedModel" in err and err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_whose_parent_is_not_writable_is_refused(capsys, corrupt_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, _, err = _generate(capsys, "--model", str(corrupt_model), "--format", "tfrecord", "--n", "4",
                             "--out", str(locked / "out"))
    assert code == 2 and "is not writable" in err


def test_class_names_that_cannot_be_folders_are_refused():
    for names in (("ok", ""), ("ok", ".hidden"), ("a/b",), ("same", "same")):
        with pytest.raises(request.ExportError, match="use --format tfrecord"):
            request.check_class_folder_names(names)
    request.check_class_folder_names(("0", "1", "T-shirt top", "caf\\xe9"))


# ---------------------------------------------------------------- streaming and atomicity


def _fake_batch(index: int, size: int, conditional: bool = False) -> samples.SampleBatch:
    seeds = np.arange(index * size, (index + 1) * size, dtype=np.int64)
    png = tf.io.encode_png(tf.fill([4, 4, 1], tf.constant(index % 256, tf.uint8))).numpy()
    return samples.SampleBatch(seeds=seeds, labels=seeds % 3 if conditional else np.full(size, -1, np.int64),
                               images=np.zeros((size, 4, 4, 1), np.uint8), pngs=[png] * size)


class _Tracked:
    """Batches that count how many of them are alive at once (reference counts, no timing)."""

    def __init__(self, batches, count: int):
        self.batches, self.count = batches, count
        self.alive = self.peak = self.made = 0

    def _gone(self) -> None:
        self.alive -= 1

    def __iter__(self):
        for index in range(self.count):
            batch = self.batches(index)
            self.alive += 1  # counted once made: every batch the consumer still holds is alive too
            self.made += 1
            self.peak = max(self.peak, self.alive)
            weakref.finalize(batch, self._gone)
            yield batch
            del batch  # the consumer's reference is the only one left


def test_writers_hold_one_batch_at_a_time_and_shard_by_count(tmp_path):
    source = _Tracked(lambda index: _fake_batch(index, 8), 20)
    written = writers.write_tfrecords(source, str(tmp_path / "Split-train"), 160,
                                      lambda seed, label: writers.source_name("/m", "3", seed, label),
                                      shard_images=32)
    assert source.made == 20 and source.peak == 1, source.peak
    assert written.count == 160 and written.files == 5 and written.labels == {-1: 160}
    names = sorted(path.name for path in (tmp_path / "Split-train").iterdir())
    assert names == [f"data_tfrecord-{index:05d}-of-00005.gz" for index in range(5)]
    records = _records(tmp_path)
    assert [record[contract.SOURCE_KEY] for record in records] == [f"/m#version=3&seed={s}" for s in range(160)]

    folders = _Tracked(lambda index: _fake_batch(index, 6, conditional=True), 10)
    written = writers.write_folders(folders, str(tmp_path / "folders"), 60, 0, ("a", "b", "c"))
    assert folders.peak == 1 and written.labels == {0: 20, 1: 20, 2: 20}
    assert len(list((tmp_path / "folders" / "b").iterdir())) == 20


def test_the_real_sampler_and_writer_hold_one_batch(generators, tmp_path):
    """samples.sample_batches keeps nothing of a batch it yielded: with the writer, one is alive at a time."""
    loaded = tf.saved_model.load(str(generators.conditional / "1"))
    info = samples.describe(loaded, str(generators.conditional / "1"))
    assert info.class_names == tuple(CLASS_NAMES) and info.num_classes == 3 and info.latent_dim == 100
    batches = samples.sample_batches(loaded, info, 0, 30, per_class=True, batch=4)
    source = _Tracked(lambda index: next(batches), 8)
    written = writers.write_tfrecords(source, str(tmp_path / "Split-train"), 30, lambda seed, label: "m")
    assert written.count == 30 and source.made == 8 and source.peak == 1, source.peak
    assert source.alive == 0


def test_a_failed_export_leaves_nothing(tmp_path):
    def failing():
        yield _fake_batch(0, 4)
        yield _fake_batch(1, 4)
        raise RuntimeError("the generator broke")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="broke"):
        with writers.staged(str(out)) as folder:
            writers.write_tfrecords(failing(), os.path.join(folder, "Split-train"), 100, lambda seed, label: "m")
    assert not out.exists() and os.listdir(tmp_path) == []


def test_a_killed_export_never_shows_a_complete_looking_output(tmp_path):
    """SIGKILL mid-write: the output name never appears; only a hidden `.out.partial-*` folder is left."""
    script = f"""
import sys, time
import numpy as np
sys.path.insert(0, {str(REPO_ROOT)!r})
from ganpipe.components.synthetic_example_gen import samples, writers
writers.SHARD_IMAGES = 8
png = bytes(range(256)) * 4
def slow():
    for index in range(10**6):
        seeds = np.arange(index * 8, index * 8 + 8)
        yield samples.SampleBatch(seeds=seeds, labels=seeds * 0 - 1, images=np.zeros((8, 4, 4, 1), np.uint8),
                                  pngs=[png] * 8)
        time.sleep(0.05)
with writers.staged({str(tmp_path / 'out')!r}) as folder:
    writers.write_tfrecords(slow(), folder + "/Split-train", 8 * 10**6, lambda seed, label: "m")
"""
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(tmp_path.glob(".out.partial-*/Split-train/*.gz"))) < 3:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        assert len(list(tmp_path.glob(".out.partial-*/Split-train/*.gz"))) >= 3
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "out").exists()
    assert [name for name in os.listdir(tmp_path) if not name.startswith(".out.partial-")] == []


# ---------------------------------------------------------------- the pipeline step


def _synthetic_examples(store) -> list:
    return [artifact for artifact in store.get_artifacts_by_type("Examples")
            if contract.SYNTHETIC_COUNT_PROPERTY in artifact.custom_properties]


def test_the_pipeline_step_writes_examples_with_lineage_to_the_pushed_model_only_after_a_push(tmp_path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    images = tmp_path / "images"
    write_png_folder(images, 48)
    output = tmp_path / "out"
    result = run_cli("run", "--data", str(images), "--output", str(output), *TINY_RUN_FLAGS,
                     "--set", "export.synthetic_count=40", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SyntheticExampleGen done" in result.stdout
    serving = output / "serving" / "generator"
    assert f"pushed generator: {serving / '1'}" in result.stdout
    assert "synthetic examples: 40 samples of the pushed generator" in result.stdout

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(output / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    (synthetic,) = _synthetic_examples(store)
    assert synthetic.custom_properties[contract.SYNTHETIC_COUNT_PROPERTY].int_value == 40
    assert json.loads(synthetic.properties["split_names"].string_value) == ["train"]
    assert synthetic.custom_properties["file_format"].string_value == "tfrecords_gzip"
    # Lineage: the execution that output the synthetic Examples took the pushed model as its input.
    (output_event,) = [event for event in store.get_events_by_artifact_ids([synthetic.id])
                       if event.type == metadata_store_pb2.Event.OUTPUT]
    inputs = [event.artifact_id for event in store.get_events_by_execution_ids([output_event.execution_id])
              if event.type == metadata_store_pb2.Event.INPUT]
    (pushed_model,) = store.get_artifacts_by_id(inputs)
    assert store.get_artifact_types_by_id([pushed_model.type_id])[0].name == "PushedModel"
    assert pushed_model.custom_properties["pushed"].int_value == 1
    records = _records(Path(synthetic.uri))
    assert len(records) == 40
    assert records[5][contract.SOURCE_KEY] == f"{serving}#version=1&seed=5"
    assert records[5][contract.IMAGE_KEY] == _seeds_images(serving / "1", [5])[5]

    # A run whose candidate is not pushed (an absolute FID limit nothing meets) writes no synthetic data.
    result = run_cli("run", "--data", str(images), "--output", str(output), *TINY_RUN_FLAGS,
                     "--set", "export.synthetic_count=40", "--set", "evaluate.max_fid=0.0001", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT pushed" in result.stdout and "SyntheticExampleGen skipped (its condition was not met)" in result.stdout
    assert "synthetic examples" not in result.stdout
    assert len(_synthetic_examples(metadata_store.MetadataStore(config))) == 1


def test_count_zero_leaves_the_pipeline_unchanged_and_counts_are_bounded():
    from ganpipe.pipeline.config import ConfigError, PipelineConfig, load_config
    from ganpipe.pipeline.pipeline import create_pipeline

    def ids(config: PipelineConfig) -> list[str]:
        return sorted(component.id for component in create_pipeline(config, "/data/x.npz", "npz",
                                                                    schema_file="/tmp/unused/schema.pbtxt").components)

    off = load_config(None, {"output_dir": "/tmp/unused"})
    assert off.export.synthetic_count == 0
    assert ids(off) == sorted(["ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataGate",
                               "Trainer", "GanEvaluator", "Pusher"])
    on = load_config(None, {"output_dir": "/tmp/unused", "export.synthetic_count": "25"})
    assert ids(on) == sorted(ids(off) + ["SyntheticExampleGen"])
    for value in ("-1", str(request.MAX_IMAGES + 1)):
        with pytest.raises(ConfigError, match=r"export\.synthetic_count"):
            load_config(None, {"export.synthetic_count": value})


def test_the_kubeflow_package_runs_the_step_only_when_the_model_was_pushed(tmp_path):
    from ganpipe.kubeflow.runner import compile_pipeline
    from ganpipe.pipeline.config import load_config

    config = load_config(None, {"kubeflow.image": "registry.example.com/ganpipe:0.1.0",
                                "kubeflow.pipeline_root": "gs://bucket/root", "export.synthetic_count": "100"})
    job = json.loads(Path(compile_pipeline(config, str(tmp_path)).job_path).read_text())["pipelineSpec"]
    task = job["root"]["dag"]["tasks"]["SyntheticExampleGen"]
    # KFP's driver evaluates the condition over the task's declared inputs: the key must be one of them.
    assert task["triggerPolicy"]["condition"] == (
        "(inputs.artifacts['pushed_model'].artifacts[0].metadata['pushed'] == 1.0)")
    assert set(job["components"]["SyntheticExampleGen"]["inputDefinitions"]["artifacts"]) == {"pushed_model"}
    assert task["inputs"]["artifacts"]["pushed_model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "pushed_model", "producerTask": "Pusher"}
    assert task["inputs"]["parameters"]["count"]["runtimeValue"]["constant"] == 100
