"""ImageExampleGen: every input format, every rejection reason, the report, the splits.

Real Beam (DirectRunner) through the real executor everywhere, and one real
LocalDagRunner pipeline with MLMD and stock StatisticsGen at the end to prove
TFDV reads the output like a stock ExampleGen's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ganpipe.trainer.data import decode_as
from ganpipe.components.image_example_gen import pixels, report, sources, validation
from ganpipe.components.image_example_gen.component import ImageExampleGen
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe.components.image_example_gen.executor import Executor
from ganpipe.components.image_example_gen.ingest import split_for
from ganpipe.components.image_example_gen.sources import IngestInputError
from ganpipe import contract

REPO_ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers


def _pixels(seed: int, size: int = 12, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (size, size) if channels == 1 else (size, size, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _encode(pixels: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _grey_pngs(folder: Path, count: int, first_seed: int = 0) -> list[Path]:
    return [_write(folder / f"g{index:03d}.png", _encode(_pixels(first_seed + index), "PNG"))
            for index in range(count)]


def _animated_gif(seed: int) -> bytes:
    frames = [Image.fromarray(_pixels(seed + k, channels=3)).convert("P") for k in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _ingest(input_base: Path, out: Path, **params) -> tuple[dict, dict]:
    """Runs the real executor (real Beam pipeline); returns (report, {split: [example dict]})."""
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    settings = {"eval_fraction": 0.25, "image_size": 16, "channels": 1, "convert_channels": False,
                "labels_from_subfolders": True, **params}
    exec_properties = {"input_base": str(input_base), "data_format": "auto",
                       "config": json.dumps(IngestConfig(**settings).to_dict())}
    Executor(Executor.Context(beam_pipeline_args=[])).Do({}, {"examples": [examples]}, exec_properties)
    document = json.loads((out / report.REPORT_FILE).read_text())
    document["_artifact"] = examples
    return document, {split: _read_split(out, split) for split in ("train", "eval")}


def _read_split(out: Path, split: str) -> list[dict]:
    files = sorted(str(p) for p in (out / f"Split-{split}").glob("data_tfrecord-*.gz"))
    assert files, f"no TFRecord shards for split {split}"
    records = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature
        records.append({
            "image": feature[contract.IMAGE_KEY].bytes_list.value[0],
            "height": feature[contract.HEIGHT_KEY].int64_list.value[0],
            "width": feature[contract.WIDTH_KEY].int64_list.value[0],
            "channels": feature[contract.CHANNELS_KEY].int64_list.value[0],
            "label": feature[contract.LABEL_KEY].int64_list.value[0],
            # The file name's exact bytes: decoded as Python names files (os.fsdecode).
            "source": feature[contract.SOURCE_KEY].bytes_list.value[0].decode("utf-8", "surrogateescape"),
            "sha256": feature[contract.SHA256_KEY].bytes_list.value[0].decode(),
        })
    return records


def _all(examples: dict) -> dict[str, dict]:
    return {record["source"]: record for split in examples.values() for record in split}


# ---------------------------------------------------------------- the per-image check (no Beam)


def _validate(data: bytes, channels: int, convert_channels: bool = False, size: int = 12) -> validation.ImageCheck:
    """The shared check with images prepared at size x size (the verdict only)."""
    check, prepared = validation.validate_image(data, pixels.Preparation(size, channels), convert_channels)
    assert bool(prepared) == check.ok
    return check


def test_truncated_and_corrupt_png_and_jpeg_are_rejected_by_the_shared_check():
    pixels = _pixels(1, size=48, channels=3)
    png, jpeg = _encode(pixels, "PNG"), _encode(pixels, "JPEG", quality=90)
    bad = {
        "png cut in half": png[: len(png) // 2],
        "png without IEND (Pillow alone accepts it)": png[:-12],
        "png with half an IEND (Pillow verify() accepts it)": png[:-4],
        "png with a flipped IDAT byte": png[:100] + bytes([png[100] ^ 0xFF]) + png[101:],
        "jpeg cut in half": jpeg[: len(jpeg) // 2],
        "jpeg without its EOI marker": jpeg[:-2],
    }
    for name, data in bad.items():
        check = _validate(data, channels=3, convert_channels=False)
        assert check.reason == validation.CORRUPT_OR_TRUNCATED, (name, check)
        assert check.detail
    assert _validate(b"", 1, False).reason == validation.EMPTY_FILE
    wide = _encode(np.zeros((1, validation.MAX_IMAGE_SIDE + 1), np.uint8), "PNG")
    assert _validate(wide, 1, False).reason == validation.TOO_LARGE
    assert _validate(b"hello, not a png", 1, False).reason == validation.NOT_AN_IMAGE
    accepted = _validate(jpeg, channels=3, convert_channels=False)
    assert accepted.ok and (accepted.image_format, accepted.height, accepted.width, accepted.channels) == (
        "JPEG", 48, 48, 3)


def test_accepted_means_the_trainers_decode_works_for_every_format():
    """Whatever ingestion accepts, ganpipe.trainer.data.decode_as turns into [H, W, C] uint8."""
    grey, colour = _pixels(2), _pixels(3, channels=3)
    candidates = {
        "png_grey": _encode(grey, "PNG"), "png_rgba": _encode(_pixels(4, channels=4), "PNG"),
        "jpeg_rgb": _encode(colour, "JPEG"), "bmp_rgb": _encode(colour, "BMP"), "bmp_grey": _encode(grey, "BMP"),
        "gif": _animated_gif(5), "jpeg_cmyk": _cmyk_jpeg(colour),
    }
    verdicts = {}
    for channels in (1, 3):
        for convert in (False, True):
            for name, data in candidates.items():
                check = _validate(data, channels, convert)
                verdicts[name, channels, convert] = check.reason
                if check.ok:
                    decoded = decode_as(tf.constant(data), channels)
                    assert decoded.shape == (12, 12, channels) and decoded.dtype == tf.uint8
    assert verdicts["bmp_grey", 1, False] is None  # TF's BMP decoder refuses channels=1; decode_as converts
    assert verdicts["gif", 1, False] == validation.CHANNEL_MISMATCH  # TF decodes every GIF as RGB
    assert verdicts["gif", 1, True] is None  # converted to grey by decode_as
    assert verdicts["png_rgba", 1, False] == validation.CHANNEL_MISMATCH
    assert verdicts["png_rgba", 1, True] is None and verdicts["jpeg_rgb", 1, True] is None
    for name in ("bmp_rgb", "gif", "jpeg_cmyk", "jpeg_rgb", "png_rgba"):
        assert verdicts[name, 3, False] is None, name
    assert verdicts["png_grey", 3, False] == validation.CHANNEL_MISMATCH
    assert verdicts["png_grey", 3, True] is None


def _cmyk_jpeg(colour: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(colour).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_report_keeps_the_first_rejected_files_by_source_and_counts_the_rest():
    parts = [report.empty_summary() for _ in range(3)]
    for index in range(2500):
        report.add_rejected(parts[index % 3], f"/data/{index:05d}.png", "not_an_image", "junk")
    report.add_accepted(parts[0], "train", 1)
    merged = report.merge_summaries(parts)
    document = report.build_report(merged, input_base="/data", data_format="folder", total_files=2501,
                                   label_names=[], hidden_files=0, hidden_dirs=0, seconds=2.0)
    assert document["rejected"] == {"not_an_image": 2500} and document["accepted"] == 1
    assert len(document["rejected_files"]) == report.MAX_REJECTED_LISTED
    assert document["rejected_files_left_off"] == 1500
    assert document["rejected_files"][0]["source"] == "/data/00000.png"
    assert document["rejected_files"][-1]["source"] == "/data/00999.png"
    assert document["bad_fraction"] == pytest.approx(2500 / 2501, abs=1e-6)
    assert document["images_per_second"] == pytest.approx(1250.5)


# ---------------------------------------------------------------- format detection and preflight (no Beam)


def test_detect_format_from_the_path(tmp_path):
    _grey_pngs(tmp_path / "pngs", 2)
    idx_dir = tmp_path / "mnist"
    idx_dir.mkdir()
    _write_idx(idx_dir / "train-images-idx3-ubyte.gz", _pixels(0, size=4)[None], compress=True)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, images=np.zeros((2, 4, 4), np.uint8))
    records = tmp_path / "records"
    _write(records / "part-0.tfrecord.gz", b"x")
    _write(records / "part-1.tfrecord.gz", b"x")
    _write(tmp_path / "one.tfrecords", b"x")
    _write(tmp_path / "data_tfrecord-00000-of-00001.gz", b"x")
    expected = {
        tmp_path / "pngs": "folder", idx_dir: "idx", idx_dir / "train-images-idx3-ubyte.gz": "idx",
        npz: "npz", records: "tfrecord", tmp_path / "one.tfrecords": "tfrecord",
        tmp_path / "data_tfrecord-00000-of-00001.gz": "tfrecord",
    }
    assert {path: sources.detect_format(str(path)) for path in expected} == expected
    assert sources.detect_format(str(tmp_path / "pngs"), "idx") == "idx"  # an explicit format wins
    with pytest.raises(IngestInputError, match="cannot tell the format"):
        sources.detect_format(str(_write(tmp_path / "notes.csv", b"a,b")))
    with pytest.raises(IngestInputError, match="not one of"):
        sources.detect_format(str(tmp_path / "pngs"), "jpeg")


def test_preflight_errors_are_one_actionable_line(tmp_path):
    def error_of(path: Path, **kwargs) -> str:
        with pytest.raises(IngestInputError) as caught:
            sources.preflight(str(path), config=IngestConfig(**kwargs))
        message = str(caught.value)
        assert "\n" not in message
        return message

    assert "does not exist" in error_of(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "is empty" in error_of(tmp_path / "empty")
    _write(tmp_path / "hidden" / ".DS_Store", b"x")
    _write(tmp_path / "hidden" / ".git" / "config", b"x")
    assert "only hidden files" in error_of(tmp_path / "hidden")
    junk = tmp_path / "junk"
    _write(junk / "a.png", _encode(_pixels(1), "PNG")[:40])
    _write(junk / "b.jpg", b"")
    _write(junk / "c.png", b"just text")
    _write(junk / ".DS_Store", b"ignored")
    message = error_of(junk)
    assert "no decodable image in" in message and "checked 3 file(s)" in message
    assert "corrupt_or_truncated=1, empty_file=1, not_an_image=1" in message
    colour = tmp_path / "colour"
    _write(colour / "rgb.png", _encode(_pixels(1, channels=3), "PNG"))
    assert "channel_mismatch=1" in error_of(colour, channels=1)
    assert "no decodable 1-channel image" in error_of(colour, channels=1)
    converted = sources.preflight(str(colour), config=IngestConfig(channels=1, convert_channels=True))
    assert converted["first_image"]["channels"] == 3 and converted["shape"]["channels"] == 1
    auto = sources.preflight(str(colour))  # channels and size at auto: colour, upscaled to 32
    assert auto["shape"]["channels"] == 3 and auto["shape"]["image_size"] == 32
    assert "upscaled" in auto["shape"]["reason"]


def test_preflight_succeeds_at_the_first_good_file_and_counts_the_input(tmp_path):
    folder = tmp_path / "digits"
    _write(folder / "0" / "bad.png", b"")
    _grey_pngs(folder / "0", 2)
    _grey_pngs(folder / "1", 3, first_seed=10)
    _write(folder / "1" / ".DS_Store", b"x")
    found = sources.preflight(str(folder))
    assert found["format"] == "folder" and found["total_files"] == 6 and found["hidden_files"] == 1
    assert found["checked"] == 2 and found["first_valid"].endswith(os.path.join("0", "g000.png"))
    assert found["label_names"] == ["0", "1"]


def test_labels_come_from_class_subfolders_unless_an_image_sits_at_the_top(tmp_path):
    folder = tmp_path / "classes"
    _grey_pngs(folder / "cat", 2)
    _grey_pngs(folder / "ant", 1)
    _write(folder / "README.txt", b"three ants and two cats")

    def labels(**kwargs) -> dict[str, int]:
        plan = sources.plan_inputs(str(folder), "folder", **kwargs)
        return {os.path.relpath(item.path, folder): item.label for item in plan.items}

    assert labels() == {"README.txt": -1, os.path.join("ant", "g000.png"): 0,
                        os.path.join("cat", "g000.png"): 1, os.path.join("cat", "g001.png"): 1}
    assert set(labels(labels_from_subfolders=False).values()) == {-1}
    _write(folder / "stray.png", _encode(_pixels(1), "PNG"))
    assert set(labels().values()) == {-1}


def test_damaged_array_files_are_clear_errors(tmp_path):
    images = np.stack([_pixels(k, size=6) for k in range(5)])
    ok = _write_idx(tmp_path / "ok-images-idx3-ubyte", images)
    truncated = _write(tmp_path / "cut-images-idx3-ubyte", ok.read_bytes()[:-7])
    wrong_magic = _write(tmp_path / "odd-images-idx3-ubyte", b"\x00\x00\x0d\x03" + ok.read_bytes()[4:])
    cut_gz = _write(tmp_path / "gz-images-idx3-ubyte.gz", gzip.compress(ok.read_bytes())[:-30])
    _write_idx(tmp_path / "few-images-idx3-ubyte", images)
    _write_idx(tmp_path / "few-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    cases = {
        truncated: "truncated", wrong_magic: "magic number 0x00000d03, expected 0x00000803",
        cut_gz: "cannot read IDX file", tmp_path / "few-images-idx3-ubyte": "4 labels but",
        tmp_path / "few-labels-idx1-ubyte": "is an IDX labels file",
    }
    npz_cases = {
        "floats.npz": ({"images": np.full((2, 4, 4), 1.5, np.float32)}, r"float images must be in \[0, 1\]"),
        "ints.npz": ({"x": np.zeros((2, 4, 4), np.int64)}, "dtype int64: expected uint8"),
        "keras.npz": ({"x_train": np.zeros((2, 4, 4), np.uint8), "y_train": np.zeros(2)}, "x_train, y_train"),
        "flat.npz": ({"images": np.zeros((2, 16), np.uint8)}, r"shape \(2, 16\)"),
        "labels.npz": ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, np.int64)}, "one label"),
    }
    for name, (content, _) in npz_cases.items():
        np.savez(tmp_path / name, **content)
        cases[tmp_path / name] = npz_cases[name][1]
    cases[_write(tmp_path / "broken.npz", b"PK\x03\x04 not really")] = "cannot read"
    for path, expected in cases.items():
        with pytest.raises(IngestInputError, match=expected):
            sources.preflight(str(path))


def test_preflight_imports_neither_beam_nor_tfx_and_junk_needs_no_tensorflow(tmp_path):
    junk = tmp_path / "junk"
    _write(junk / "a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    _write(junk / "b.txt", b"text")
    probe = (
        "import sys\n"
        "from ganpipe.components.image_example_gen import sources\n"
        f"try:\n    sources.preflight({str(junk)!r})\nexcept sources.IngestInputError as e:\n    print('ERR', e)\n"
        "print(sorted(m for m in ('tensorflow', 'apache_beam', 'tfx') if m in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert lines[0].startswith("ERR no decodable") and lines[-1] == "[]"


# ---------------------------------------------------------------- the executor on a real Beam pipeline


def test_folder_of_png_jpeg_bmp_gif_with_class_subfolders(tmp_path):
    data = tmp_path / "animals"
    written = {
        _write(data / "cats" / "a.png", _encode(_pixels(1, channels=3), "PNG")): ("PNG", 0),
        _write(data / "cats" / "b.jpg", _encode(_pixels(2, channels=3), "JPEG", quality=92)): ("JPEG", 0),
        _write(data / "cats" / "nested" / "c.png", _encode(_pixels(3, channels=4), "PNG")): ("PNG", 0),
        _write(data / "dogs" / "d.bmp", _encode(_pixels(4, channels=3), "BMP")): ("BMP", 1),
        _write(data / "dogs" / "e.gif", _animated_gif(5)): ("GIF", 1),
        _write(data / "dogs" / "f.jpeg", _encode(_pixels(6, channels=3), "JPEG")): ("JPEG", 1),
    }
    _write(data / "dogs" / ".DS_Store", b"\0\0\0\1Bud1")
    _write(data / ".thumbnails" / "x.png", _encode(_pixels(9), "PNG"))

    document, examples = _ingest(data, tmp_path / "out", channels=3)

    assert document["format"] == "folder" and document["total_files"] == 6
    assert document["accepted"] == 6 and document["rejected"] == {} and document["bad_fraction"] == 0.0
    assert document["hidden_files"] == 1 and document["hidden_dirs"] == 1
    assert document["label_names"] == ["cats", "dogs"]
    assert document["channels_found"] == {"3": 5, "4": 1}
    assert document["splits"]["train"] + document["splits"]["eval"] == 6
    records = _all(examples)
    assert set(records) == {str(path) for path in written}
    preparation = pixels.Preparation(16, 3)
    for path, (image_format, label) in written.items():
        record = records[str(path)]
        raw = path.read_bytes()
        assert record["sha256"] == hashlib.sha256(raw).hexdigest()  # of the original file
        assert record["label"] == label and (record["height"], record["width"], record["channels"]) == (16, 16, 3)
        assert validation.sniff_format(record["image"]) == "PNG"  # the prepared pixels, whatever came in
        decoded = tf.io.decode_png(record["image"]).numpy()
        with Image.open(path) as original:  # GIFs: the first frame, as a viewer shows it
            np.testing.assert_array_equal(decoded, pixels.prepare(original, preparation))


def test_corrupt_files_are_rejected_by_reason_and_reported(tmp_path):
    data = tmp_path / "images"
    good = _grey_pngs(data, 10)
    png = good[0].read_bytes()
    jpeg = _encode(_pixels(7, size=32), "JPEG")
    _write(data / "truncated.png", png[: len(png) // 2])
    _write(data / "no_iend.png", png[:-12])
    _write(data / "truncated.jpg", jpeg[: len(jpeg) // 2])
    _write(data / "empty.png", b"")
    _write(data / "notes.png", b"this is a text file with a .png name\n")
    _write(data / "random.jpg", np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    _write(data / "readme.txt", b"hello")
    _write(data / "rgb.png", _encode(_pixels(8, channels=3), "PNG"))
    _write(data / ".DS_Store", b"x")

    document, examples = _ingest(data, tmp_path / "out")

    assert document["total_files"] == 18 and document["accepted"] == 10
    assert document["rejected"] == {"channel_mismatch": 1, "corrupt_or_truncated": 3, "empty_file": 1,
                                    "not_an_image": 3}
    assert document["rejected_total"] == 8 and document["bad_fraction"] == pytest.approx(8 / 18, abs=1e-6)
    assert document["hidden_files"] == 1 and document["label_names"] == []
    assert document["channels_found"] == {"1": 10, "3": 1}
    listed = {entry["source"]: entry["reason"] for entry in document["rejected_files"]}
    assert listed == {
        str(data / "truncated.png"): "corrupt_or_truncated", str(data / "no_iend.png"): "corrupt_or_truncated",
        str(data / "truncated.jpg"): "corrupt_or_truncated", str(data / "empty.png"): "empty_file",
        str(data / "notes.png"): "not_an_image", str(data / "random.jpg"): "not_an_image",
        str(data / "readme.txt"): "not_an_image", str(data / "rgb.png"): "channel_mismatch",
    }
    assert all(entry["detail"] for entry in document["rejected_files"])
    assert document["rejected_files_left_off"] == 0
    assert set(_all(examples)) == {str(path) for path in good}
    assert all(record["label"] == contract.UNKNOWN_LABEL for record in _all(examples).values())
    assert document["images_per_second"] > 0 and document["seconds"] > 0
    properties = document["_artifact"].mlmd_artifact.custom_properties
    assert properties["ingest_accepted"].int_value == 10 and properties["ingest_rejected"].int_value == 8
    assert properties["ingest_total"].int_value == 18
    assert properties["ingest_bad_fraction"].double_value == pytest.approx(8 / 18, abs=1e-6)
    assert properties["payload_format"].string_value == "FORMAT_TF_EXAMPLE"


def test_mixed_channels_are_rejected_or_kept_for_conversion(tmp_path):
    data = tmp_path / "mixed"
    _grey_pngs(data, 4)
    _write(data / "la.png", _encode(_pixels(20, channels=2), "PNG"))
    _write(data / "rgb.png", _encode(_pixels(21, channels=3), "PNG"))
    _write(data / "rgba.png", _encode(_pixels(22, channels=4), "PNG"))
    _write(data / "rgb.jpg", _encode(_pixels(23, channels=3), "JPEG"))

    strict, _ = _ingest(data, tmp_path / "strict", channels=1)
    assert strict["accepted"] == 5 and strict["rejected"] == {"channel_mismatch": 3}
    assert strict["channels_found"] == {"1": 4, "2": 1, "3": 2, "4": 1}
    converted, examples = _ingest(data, tmp_path / "converted", channels=1, convert_channels=True)
    assert converted["accepted"] == 8 and converted["rejected"] == {}
    records = _all(examples)
    for record in records.values():  # stored prepared: grey at the training size, alpha composited
        assert record["channels"] == 1
        assert tf.io.decode_png(record["image"]).shape == (16, 16, 1)


def test_idx_folder_with_raw_and_gzip_files_and_labels(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    train = np.stack([_pixels(k, size=8) for k in range(1100)])  # > one 1000-image chunk
    test = np.stack([_pixels(5000 + k, size=8) for k in range(20)])
    _write_idx(folder / "train-images-idx3-ubyte", train)
    _write_idx(folder / "train-labels-idx1-ubyte", np.arange(1100) % 10)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", test, compress=True)  # no labels file

    document, examples = _ingest(folder, tmp_path / "out", image_size=8)

    assert document["format"] == "idx" and document["total_files"] == 1120 and document["accepted"] == 1120
    records = _all(examples)
    assert len(records) == 1120
    for index in (0, 999, 1000, 1099):
        record = records[f"{folder / 'train-images-idx3-ubyte'}#{index}"]
        assert record["label"] == index % 10 and record["channels"] == 1
        assert validation.sniff_format(record["image"]) == "PNG"
        np.testing.assert_array_equal(tf.io.decode_png(record["image"]).numpy()[:, :, 0], train[index])
    record = records[f"{folder / 't10k-images-idx3-ubyte.gz'}#19"]
    assert record["label"] == contract.UNKNOWN_LABEL
    np.testing.assert_array_equal(tf.io.decode_png(record["image"]).numpy()[:, :, 0], test[19])
    single = sources.preflight(str(folder / "t10k-images-idx3-ubyte.gz"))
    assert single["format"] == "idx" and single["num_images"] == 20


def test_npz_uint8_grey_and_float_colour(tmp_path):
    grey = np.stack([_pixels(k, size=10) for k in range(12)])
    np.savez_compressed(tmp_path / "grey.npz", x=grey, y=np.arange(12) % 3)
    found = sources.preflight(str(tmp_path / "grey.npz"))
    assert found["format"] == "npz" and found["num_images"] == 12 and found["total_files"] == 12

    colour = np.random.default_rng(1).random((9, 10, 10, 3)).astype(np.float32)
    np.savez(tmp_path / "colour.npz", colour)  # the only array, no labels
    document, examples = _ingest(tmp_path / "colour.npz", tmp_path / "out", channels=3, image_size=10)
    assert document["format"] == "npz" and document["accepted"] == 9 and document["label_names"] == []
    records = _all(examples)
    record = records[f"{tmp_path / 'colour.npz'}#4"]
    assert record["label"] == contract.UNKNOWN_LABEL and record["channels"] == 3
    expected = np.round(colour[4] * 255).astype(np.uint8)
    np.testing.assert_array_equal(tf.io.decode_png(record["image"]).numpy(), expected)
    assert record["sha256"] == hashlib.sha256(record["image"]).hexdigest()


def test_splits_are_deterministic_by_content_and_both_present(tmp_path):
    data = tmp_path / "images"
    paths = _grey_pngs(data, 40)
    shutil.copy(paths[3], data / "duplicate_of_3.png")
    shutil.copy(paths[7], data / "duplicate_of_7.png")

    first, first_examples = _ingest(data, tmp_path / "one", eval_fraction=0.3)
    second, second_examples = _ingest(data, tmp_path / "two", eval_fraction=0.3)

    def membership(examples: dict) -> dict[str, str]:
        return {record["source"]: split for split, records in examples.items() for record in records}

    assert membership(first_examples) == membership(second_examples)
    assert first["splits"] == second["splits"] and min(first["splits"].values()) > 0
    assert sum(first["splits"].values()) == 42
    for source, split in membership(first_examples).items():
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        assert split == ("eval" if int(digest[:8], 16) % 10000 < 3000 else "train") == split_for(digest, 0.3)
    split_of = membership(first_examples)
    assert split_of[str(data / "duplicate_of_3.png")] == split_of[str(paths[3])]
    assert split_of[str(data / "duplicate_of_7.png")] == split_of[str(paths[7])]


def test_nothing_usable_fails_the_component_after_writing_the_report(tmp_path):
    data = tmp_path / "junk"
    _write(data / "a.png", b"")
    _write(data / "b.png", b"text")
    with pytest.raises(IngestInputError, match="no decodable image .* all 2 rejected"):
        _ingest(data, tmp_path / "out")
    document = json.loads((tmp_path / "out" / report.REPORT_FILE).read_text())
    assert document["rejected"] == {"empty_file": 1, "not_an_image": 1} and document["accepted"] == 0


def test_component_rejects_bad_arguments_early():
    with pytest.raises(ValueError, match="tfrecord"):
        ImageExampleGen(input_base="/x", data_format="tfrecord")
    with pytest.raises(ValueError, match="eval_fraction"):
        IngestConfig(eval_fraction=1.0)
    with pytest.raises(ValueError, match="channels"):
        IngestConfig(channels=2)
    with pytest.raises(ValueError, match="resize"):
        IngestConfig(resize="squash")
    with pytest.raises(ValueError, match="not a colour"):
        IngestConfig(background="transparent-ish")


# ---------------------------------------------------------------- a real TFX pipeline


def test_local_dag_runner_pipeline_with_stock_statistics_gen(tmp_path):
    """LocalDagRunner + MLMD (sqlite) + StatisticsGen with image-domain stats on our output."""
    import tensorflow_data_validation as tfdv
    from ml_metadata import metadata_store
    from tfx import v1 as tfx

    data = tmp_path / "images"
    # TFDV marks a feature as an image only from 100 values per split on.
    _grey_pngs(data / "zero", 70)
    _grey_pngs(data / "one", 70, first_seed=100)
    _write(data / "one" / "colour.png", _encode(_pixels(7, channels=3), "PNG"))  # kept: convert_channels=True
    _write(data / "one" / "broken.png", b"")
    example_gen = ImageExampleGen(input_base=str(data),
                                  config=IngestConfig(eval_fraction=0.2, channels=1, convert_channels=True))
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True),
    )
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest_test",
        pipeline_root=str(tmp_path / "root"),
        components=[example_gen, statistics_gen],
        metadata_connection_config=connection,
        enable_cache=False,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)

    store = metadata_store.MetadataStore(connection)
    (examples,) = store.get_artifacts_by_type("Examples")
    properties = examples.custom_properties
    assert properties["ingest_accepted"].int_value == 141 and properties["ingest_rejected"].int_value == 1
    assert properties["ingest_total"].int_value == 142
    assert json.loads(examples.properties["split_names"].string_value) == ["train", "eval"]
    document = json.loads((Path(examples.uri) / report.REPORT_FILE).read_text())
    assert document["label_names"] == ["one", "zero"] and document["rejected"] == {"empty_file": 1}

    (statistics,) = store.get_artifacts_by_type("ExampleStatistics")
    for split in ("train", "eval"):
        (stats_file,) = Path(statistics.uri, f"Split-{split}").glob("FeatureStats.pb")
        dataset = tfdv.load_stats_binary(str(stats_file)).datasets[0]
        assert dataset.num_examples == document["splits"][split] > 0
        features = {feature.path.step[0]: feature for feature in dataset.features}
        assert set(features) == {contract.IMAGE_KEY, contract.HEIGHT_KEY, contract.WIDTH_KEY,
                                 contract.CHANNELS_KEY, contract.LABEL_KEY, contract.SOURCE_KEY,
                                 contract.SHA256_KEY}
        assert features[contract.SHA256_KEY].string_stats.unique == dataset.num_examples
        if split == "train":  # the eval split is below TFDV's 100-value threshold for image stats
            assert dataset.num_examples >= 100
            image_stats = {stat.name: stat for stat in features[contract.IMAGE_KEY].custom_stats}
            assert image_stats["domain_info"].str == "image_domain {}"  # TFDV recognised the bytes as images
            assert "png" in str(image_stats["image_format_histogram"])


def test_linked_class_folders_are_classes_and_link_loops_end(tmp_path):
    """As `ls` shows them: a class folder linked from elsewhere is a class; a loop is walked once."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere" / "dogs"
    _grey_pngs(data / "cats", 3)
    _grey_pngs(elsewhere, 2, first_seed=10)
    (data / "dogs").symlink_to(elsewhere, target_is_directory=True)
    (data / "cats" / "again").symlink_to(data, target_is_directory=True)  # a loop back to the top
    plan = sources.plan_inputs(str(data), sources.FOLDER)
    assert plan.label_names == ["cats", "dogs"]
    assert sorted(os.path.relpath(item.path, data) for item in plan.items) == [
        "cats/g000.png", "cats/g001.png", "cats/g002.png", "dogs/g000.png", "dogs/g001.png"]
    assert [item.label for item in plan.items] == [0, 0, 0, 1, 1]


def test_file_and_folder_names_that_are_not_utf8_survive_ingestion(tmp_path):
    """Linux allows any bytes but / and NUL in a name. Such names must not crash Beam's coders or the
    JSON report: records keep the name's exact bytes, reports and label names show \\xNN escapes."""
    data = tmp_path / "data"
    _grey_pngs(data / "cats", 3)
    _grey_pngs(data / "dogs", 3, first_seed=3)
    root = os.fsencode(data)
    good = os.path.join(root, b"cats", b"caf\xe9 \xff.png")
    _write(Path(os.fsdecode(good)), _encode(_pixels(20), "PNG"))
    _write(Path(os.fsdecode(os.path.join(root, b"dogs", b"junk\xff\xfe.png"))), b"not an image")
    _write(Path(os.fsdecode(os.path.join(root, b"bir\x80ds", b"a.png"))), _encode(_pixels(21), "PNG"))

    found = sources.preflight(str(data), "auto", IngestConfig(image_size=16, channels=1))
    assert found["label_names"] == ["bir\\x80ds", "cats", "dogs"]
    json.dumps(found, ensure_ascii=False).encode("utf-8")  # strict: every string is valid UTF-8

    document, examples = _ingest(data, tmp_path / "out")
    assert document["accepted"] == 8 and document["rejected"] == {"not_an_image": 1}
    assert document["label_names"] == ["bir\\x80ds", "cats", "dogs"]
    assert [entry["source"].rsplit("/", 1)[-1] for entry in document["rejected_files"]] == ["junk\\xff\\xfe.png"]
    (tmp_path / "out" / report.REPORT_FILE).read_bytes().decode("utf-8")  # strict
    records = _all(examples)
    assert records[os.fsdecode(good)]["label"] == 1  # the exact bytes, back to the file
    assert records[os.fsdecode(os.path.join(root, b"bir\x80ds", b"a.png"))]["label"] == 0


@pytest.mark.parametrize("key", ["data.path", "output_dir", "output_dir with the bundled digits"])
def test_a_data_path_or_output_that_is_not_utf8_is_refused_in_one_line(tmp_path, key):
    from ganpipe.pipeline import inputs
    from ganpipe.pipeline.config import ConfigError, load_config

    bad = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"d\xffata"))
    good = tmp_path / "data"
    _grey_pngs(Path(bad) if key == "data.path" else good, 2)
    values = {"data.path": bad if key == "data.path" else "digits" if "digits" in key else str(good),
              "output_dir": str(tmp_path / "out") if key == "data.path" else bad}
    name = key.split()[0]
    # From the command line (--data, --output, --set): refused as the value is read.
    with pytest.raises(ConfigError, match=rf"{name}=.*d\\udcffata': the name is not valid UTF-8; rename the folder"):
        load_config(None, values)
    # Set in code: refused before anything is read or written.
    config = load_config(None, {})
    config.data.path, config.output_dir = values["data.path"], values["output_dir"]
    with pytest.raises(ConfigError, match=rf"{name} .*d\\xffata: the name is not valid UTF-8; rename the folder"):
        inputs.resolve(config)


def test_the_report_counts_distinct_images(tmp_path):
    """64 copies of one image: one digest, one split; the report says 1 distinct for the gate to quote."""
    data = tmp_path / "copies"
    png = _encode(_pixels(7), "PNG")
    for index in range(64):
        _write(data / f"{index:02d}.png", png)
    _write(data / "other.png", _encode(_pixels(8), "PNG"))
    document, _ = _ingest(data, tmp_path / "out")
    assert (document["accepted"], document["distinct"]) == (65, 2)


def test_sibling_and_mutual_folder_links_are_walked_once(tmp_path):
    """Two links to one folder, or two folders linking to each other: every file is listed once."""
    data, pics = tmp_path / "data", tmp_path / "pics"
    _grey_pngs(pics, 2)
    _grey_pngs(data / "a", 1, first_seed=5)
    _grey_pngs(data / "b", 1, first_seed=6)
    (data / "dogs").symlink_to(pics, target_is_directory=True)
    (data / "hounds").symlink_to(pics, target_is_directory=True)
    (data / "a" / "to_b").symlink_to(data / "b", target_is_directory=True)
    (data / "b" / "to_a").symlink_to(data / "a", target_is_directory=True)
    plan = sources.plan_inputs(str(data), sources.FOLDER)
    listed = sorted(os.path.relpath(item.path, data) for item in plan.items)
    assert listed == ["a/g000.png", "b/g000.png", "dogs/g000.png", "dogs/g001.png"]
    assert plan.label_names == ["a", "b", "dogs"]


def test_class_names_that_collide_once_escaped_are_refused(tmp_path):
    data = tmp_path / "data"
    _grey_pngs(Path(os.fsdecode(os.path.join(os.fsencode(data), b"caf\xe9"))), 1)
    _grey_pngs(data / "caf\\xe9", 1, first_seed=4)  # typed with a backslash
    with pytest.raises(sources.IngestInputError, match=r"show the same name .*\(caf\\xe9\): rename one"):
        sources.plan_inputs(str(data), sources.FOLDER)


def test_copies_that_differ_only_in_metadata_count_as_one_distinct_image(tmp_path):
    from PIL import PngImagePlugin

    data = tmp_path / "copies"
    picture = Image.fromarray(_pixels(11))
    for index in range(6):
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", f"copy {index}")  # different bytes, the same pixels
        picture.save(_write(data / f"{index}.png", b""), format="PNG", pnginfo=info)
    document, _ = _ingest(data, tmp_path / "out")
    assert (document["accepted"], document["distinct"]) == (6, 1)


def test_links_that_loop_or_point_nowhere_are_counted_not_a_traceback(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.png").symlink_to(data / "b.png")
    (data / "b.png").symlink_to(data / "a.png")  # a.png -> b.png -> a.png
    (data / "sub" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert sources.detect_format(str(data)) == sources.FOLDER
    with pytest.raises(sources.IngestInputError, match=r"holds no readable file: 3 link\(s\) loop or point nowhere"):
        sources.plan_inputs(str(data), sources.FOLDER)
    _grey_pngs(data / "sub", 2)
    plan = sources.plan_inputs(str(data), sources.FOLDER)
    assert (len(plan.items), plan.broken_links) == (2, 3)
    assert sources.preflight(str(data), "auto", IngestConfig(image_size=16, channels=1))["broken_links"] == 3


def test_links_that_leave_the_folder_are_read_counted_and_never_leak_content(tmp_path):
    """Links out of the folder are followed (a folder of links into a shared store is a dataset), counted in
    the preflight and the report, and a rejected target's bytes never reach the report."""
    store, data = tmp_path / "store", tmp_path / "data"
    _grey_pngs(store, 3)
    _grey_pngs(data, 2)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:secret-marker\n")
    for index, png in enumerate(sorted(store.glob("*.png"))):
        (data / f"linked_{index}.png").symlink_to(png)
    (data / "x.png").symlink_to(secret)
    (data / "inside.png").symlink_to(sorted(data.glob("*.png"))[0])  # a link that stays inside: not counted
    found = sources.preflight(str(data), "auto", IngestConfig(image_size=16, channels=1))
    assert found["outside_links"] == 4
    document, _ = _ingest(data, tmp_path / "out")
    assert (document["outside_links"], document["accepted"], document["rejected_total"]) == (4, 6, 1)
    text = (tmp_path / "out" / report.REPORT_FILE).read_text()
    assert "secret-marker" not in text and "root:x" not in text


def test_an_unreadable_folder_is_one_line_not_a_traceback(tmp_path):
    """Mode 000 as a user other than root (root reads it anyway): the child drops to `nobody` when run as root."""
    import multiprocessing
    import stat

    shared = Path(tempfile.mkdtemp(prefix="ganpipe-perm-"))  # outside pytest's 0700 tmp, for `nobody`
    try:
        shared.chmod(0o755)
        locked = shared / "locked"
        _grey_pngs(locked, 2)
        locked.chmod(0)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_detect_as_unprivileged, args=(str(locked), queue))
        child.start()
        child.join(60)
        outcome = queue.get(timeout=5)
        assert outcome.startswith("IngestInputError: cannot list"), outcome
        assert "Permission denied" in outcome and "permissions" in outcome
        locked.chmod(stat.S_IRWXU)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _detect_as_unprivileged(path: str, queue) -> None:
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # nobody
    try:
        sources.detect_format(path)
        queue.put("no error")
    except Exception as error:  # noqa: BLE001 - the test reports what escaped
        queue.put(f"{type(error).__name__}: {error}")
