"""Pushing to a TF Serving model directory: integer versions, atomic appearance, retention, faults.

Real files, real processes, the real TFX Pusher executor base class; a
"server" here is a thread or process listing the directory the way TF
Serving's file-system poller does (numeric sub-directories are versions).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import channel, standard_artifacts

from ganpipe.components.serving_pusher import ServingPusher, executor as pusher_executor, layout
from ganpipe.serving import generate as generate_cli
from tests.conftest import REPO_ROOT
from ganpipe import contract


def _fake_saved_model(folder: Path, megabytes: int = 4, files: int = 3, seed: int = 0) -> dict[str, int]:
    """A SavedModel-shaped tree (saved_model.pb, variables/, assets/); returns {relative path: size}."""
    rng = np.random.default_rng(seed)
    (folder / "variables").mkdir(parents=True)
    (folder / "assets").mkdir()
    (folder / "saved_model.pb").write_bytes(rng.bytes(50_000))
    (folder / "variables" / "variables.index").write_bytes(rng.bytes(2_000))
    chunk = megabytes * 1024 * 1024 // files
    for index in range(files):
        (folder / "variables" / f"variables.data-{index:05d}-of-{files:05d}").write_bytes(rng.bytes(chunk))
    (folder / "assets" / "vocab.txt").write_text("a\nb\n")
    return _tree(folder)


def _tree(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def _visible(base: Path) -> list[str]:
    return sorted(name for name in os.listdir(base) if not name.startswith("."))


# --- the layout ----------------------------------------------------------------------------------


def test_versions_count_up_from_one_and_only_the_newest_k_are_kept(tmp_path):
    source = tmp_path / "model"
    expected = _fake_saved_model(source, megabytes=1)
    base = tmp_path / "serving" / "generator"
    results = [layout.publish(str(source), str(base), keep=2) for _ in range(4)]
    assert [version for version, _ in results] == [1, 2, 3, 4]
    assert results[-1][1] == str(base / "4")
    assert sorted(set(os.listdir(base)) - {layout.LOCK_FILE}) == ["3", "4"]  # no temp or retired dirs left
    assert _tree(base / "4") == expected
    assert (base / "4" / "saved_model.pb").read_bytes() == (source / "saved_model.pb").read_bytes()
    # Pruned numbers are never reused: the next is max + 1.
    assert layout.publish(str(source), str(base), keep=0)[0] == 5
    assert layout.list_versions(str(base)) == [3, 4, 5]
    # Non-numeric names (TF Serving ignores them too) do not count as versions.
    (base / "notes").mkdir()
    (base / "10.bak").mkdir()
    assert layout.list_versions(str(base)) == [3, 4, 5] and layout.next_version(str(base)) == 6


def test_object_store_destinations_are_refused(tmp_path):
    with pytest.raises(layout.PushError, match="atomic"):
        layout.publish(str(tmp_path), "gs://bucket/serving/generator")


def test_a_reader_never_sees_an_incomplete_version(tmp_path):
    """A poller listing the directory in a tight loop while eight pushes (and prunes) happen."""
    source = tmp_path / "model"
    expected = _fake_saved_model(source, megabytes=8, files=4)
    base = tmp_path / "serving" / "generator"
    base.mkdir(parents=True)
    stop = threading.Event()
    seen = {"listings": 0, "versions": set(), "in_progress": 0, "incomplete": [], "stray": set()}

    def poll() -> None:
        while not stop.is_set():
            names = os.listdir(base)
            seen["listings"] += 1
            seen["in_progress"] += any(name.startswith(layout.TEMP_PREFIX) for name in names)
            for name in names:
                if name.startswith("."):
                    continue
                if not name.isdigit():
                    seen["stray"].add(name)
                    continue
                try:
                    tree = _tree(base / name)
                except FileNotFoundError:
                    continue  # pruned while we looked: it vanished whole (renamed away first)
                if tree != expected and (base / name).is_dir():
                    seen["incomplete"].append((name, len(tree)))
                seen["versions"].add(int(name))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for _ in range(8):
            layout.publish(str(source), str(base), keep=3)
    finally:
        stop.set()
        reader.join()
    assert seen["incomplete"] == [] and seen["stray"] == set()
    assert seen["versions"] and seen["versions"] <= set(range(1, 9))
    # The reader really looked while copies were under way (otherwise the test proves nothing).
    assert seen["in_progress"] > 0, seen
    assert layout.list_versions(str(base)) == [6, 7, 8]


# Loads layout.py alone (no TFX import), so the child starts copying within a second.
_PUSH_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("layout", sys.argv[3])
layout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layout)
layout.publish(sys.argv[1], sys.argv[2])
"""


def test_a_push_killed_half_way_leaves_no_version_and_is_cleaned_up(tmp_path):
    source = tmp_path / "model"
    expected = _fake_saved_model(source, megabytes=96, files=48)
    base = tmp_path / "serving" / "generator"
    layout.publish(str(source), str(base))  # version 1, complete
    before = _tree(base / "1")

    process = subprocess.Popen([sys.executable, "-c", _PUSH_SCRIPT, str(source), str(base), layout.__file__],
                               cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    temp = []
    while time.monotonic() < deadline and process.poll() is None:
        temp = [name for name in os.listdir(base) if name.startswith(layout.TEMP_PREFIX)]
        if temp and len(_tree(base / temp[0])) >= 3:  # some files copied, most not
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert temp, "the push finished before it could be interrupted; make the model bigger"

    # What a server sees: version 1 only, untouched; the half copy is hidden (non-numeric).
    assert _visible(base) == ["1"] and _tree(base / "1") == before
    assert len(_tree(base / temp[0])) < len(expected)
    # The next push removes the abandoned copy (its process is gone) and publishes version 2 whole.
    version, path = layout.publish(str(source), str(base))
    assert version == 2 and _tree(Path(path)) == expected
    assert sorted(set(os.listdir(base)) - {layout.LOCK_FILE}) == ["1", "2"]


def test_a_failing_copy_leaves_nothing_behind(tmp_path):
    source = tmp_path / "model"
    _fake_saved_model(source, megabytes=1)
    os.mkfifo(source / "variables" / "pipe")  # shutil refuses to copy a named pipe: the copy fails midway
    base = tmp_path / "serving" / "generator"
    with pytest.raises(Exception, match="named pipe"):
        layout.publish(str(source), str(base))
    assert os.listdir(base) == []


def test_abandoned_directories_of_live_writers_and_other_hosts_are_kept(tmp_path):
    base = tmp_path / "base"
    live = base / f"{layout.TEMP_PREFIX}{layout.socket.gethostname()}-{os.getpid()}-aaaa0000"
    other_host = base / f"{layout.TEMP_PREFIX}some-other-host-123-bbbb0000"
    retired = base / f"{layout.TRASH_PREFIX}3-cccc0000"
    for folder in (live, other_host, retired):
        folder.mkdir(parents=True)
    assert layout.remove_abandoned(str(base)) == [retired.name]
    # Another host's copy is only presumed dead after a day.
    assert layout.remove_abandoned(str(base), now=time.time() + layout.STALE_AFTER_S + 1) == [other_host.name]
    assert live.exists()


# --- the TFX executor and component --------------------------------------------------------------


def _artifacts(tmp_path: Path, blessed: bool, name: str):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / f"model_{name}")
    _fake_saved_model(Path(model.uri) / "Format-Serving", megabytes=1)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / f"blessing_{name}")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed_{name}")
    return model, blessing, pushed


def _run_executor(component: ServingPusher, model, blessing, pushed) -> None:
    properties = dict(component.exec_properties)
    pusher_executor.Executor().Do({"model": [model], "model_blessing": [blessing]},
                                  {"pushed_model": [pushed]}, properties)


def test_executor_pushes_blessed_models_and_never_touches_serving_otherwise(tmp_path):
    base = tmp_path / "serving" / "generator"
    component = ServingPusher(model=channel.Channel(type=standard_artifacts.Model),
                              model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
                              serving_base=str(base), keep_versions=2)
    model, blessing, pushed = _artifacts(tmp_path, blessed=False, name="refused")
    _run_executor(component, model, blessing, pushed)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not base.exists() and not base.parent.exists()  # not even created

    for index in range(3):
        model, blessing, pushed = _artifacts(tmp_path, blessed=True, name=f"ok{index}")
        _run_executor(component, model, blessing, pushed)
        # The stock Pusher's properties, which pipeline/outcome.py and MLMD users read.
        assert pushed.get_int_custom_property("pushed") == 1
        assert pushed.get_string_custom_property("pushed_version") == str(index + 1)
        assert pushed.get_string_custom_property("pushed_destination") == str(base / str(index + 1))
        assert (Path(pushed.uri) / "saved_model.pb").exists()  # lineage copy, as the stock Pusher keeps
    assert _visible(base) == ["2", "3"]  # keep_versions=2
    record = json.loads((base / "3" / "ganpipe_push.json").read_text())
    assert record["model_uri"] == model.uri and record["pushed_at"]


def test_a_candidate_judged_against_an_older_version_is_not_pushed(tmp_path):
    """Two pipelines share one serving directory: each pushes only over the version it was judged against."""
    base = tmp_path / "serving" / "generator"
    component = ServingPusher(model=channel.Channel(type=standard_artifacts.Model),
                              model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
                              serving_base=str(base))
    first, first_blessing, first_pushed = _artifacts(tmp_path, blessed=True, name="first")
    second, second_blessing, second_pushed = _artifacts(tmp_path, blessed=True, name="second")
    for blessing in (first_blessing, second_blessing):  # both were judged while nothing was serving
        blessing.set_int_custom_property("baseline_version", 0)
    _run_executor(component, first, first_blessing, first_pushed)
    assert first_pushed.get_int_custom_property("pushed") == 1
    before = _tree(base)
    _run_executor(component, second, second_blessing, second_pushed)
    assert second_pushed.get_int_custom_property("pushed") == 0
    assert "version 1" in second_pushed.get_string_custom_property("not_pushed_reason")
    assert _tree(base) == before  # not even a temp directory left
    second_blessing.set_int_custom_property("baseline_version", 1)  # re-judged against version 1
    _run_executor(component, second, second_blessing, second_pushed)
    assert second_pushed.get_string_custom_property("pushed_version") == "2"


def test_component_is_the_stock_pusher_with_another_executor(tmp_path):
    from tfx.components import Pusher

    component = ServingPusher(model=channel.Channel(type=standard_artifacts.Model),
                              model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
                              serving_base=str(tmp_path), keep_versions=4)
    assert isinstance(component, Pusher)
    assert component.outputs["pushed_model"].type == standard_artifacts.PushedModel
    assert component.executor_spec.executor_class is pusher_executor.Executor
    assert '"keep_versions": 4' in component.exec_properties["custom_config"]
    with pytest.raises(ValueError, match="keep_versions"):
        ServingPusher(model=channel.Channel(type=standard_artifacts.Model),
                      model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
                      serving_base=str(tmp_path), keep_versions=-1)


# --- reading pushed versions back: `ganpipe generate` ---------------------------------------------


class _Generator(tf.Module):
    """The generator contract's seeds signature: a deterministic picture per seed."""

    def __init__(self, brightness: float):
        super().__init__()
        self.brightness = brightness

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=contract.SEEDS_INPUT)])
    def from_seeds(self, seeds):
        noise = tf.map_fn(lambda s: tf.random.stateless_uniform([8, 8, 1], seed=tf.stack([s, s + 1])), seeds,
                          fn_output_signature=tf.float32)
        images = tf.cast(noise * self.brightness, tf.uint8)
        return {contract.IMAGES_OUTPUT: images,
                contract.PNG_OUTPUT: tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)}


def _save_generator(folder: Path, brightness: float) -> None:
    module = _Generator(brightness)
    tf.saved_model.save(module, str(folder), signatures={contract.SEEDS_SIGNATURE: module.from_seeds})


def test_generate_resolves_versions_and_is_byte_identical_per_seed(tmp_path):
    base = tmp_path / "serving" / "generator"
    for brightness in (100.0, 250.0):
        staging = tmp_path / f"staging_{brightness:.0f}"
        _save_generator(staging, brightness)
        layout.publish(str(staging), str(base))
    assert generate_cli.resolve_model_dir(str(base)) == str(base / "2")
    assert generate_cli.resolve_model_dir(str(base), 1) == str(base / "1")
    assert generate_cli.resolve_model_dir(str(base / "1")) == str(base / "1")
    with pytest.raises(generate_cli.ModelNotFoundError, match="version 7 not found"):
        generate_cli.resolve_model_dir(str(base), 7)
    with pytest.raises(generate_cli.ModelNotFoundError, match="neither"):
        generate_cli.resolve_model_dir(str(tmp_path))

    first, again, other_seed, version_1 = (tmp_path / f"{name}.png" for name in ("a", "b", "c", "v1"))
    generate_cli.generate(str(base), str(first), count=16, seed=0)
    generate_cli.generate(str(base / "2"), str(again), count=16, seed=0)
    generate_cli.generate(str(base), str(other_seed), count=16, seed=1)
    generate_cli.generate(str(base), str(version_1), count=16, seed=0, version=1)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes() != version_1.read_bytes()
    from PIL import Image

    with Image.open(first) as picture:  # 4x4 grid of 8x8 images (+1px gaps), scaled up to >= 512 px
        assert picture.mode == "L" and picture.size[0] >= 512 and picture.size[0] % 37 == 0


def test_push_config_checks_retention_and_destination():
    from ganpipe.pipeline.config import ConfigError, load_config

    assert load_config(None, {}).push.keep_versions == 5
    assert load_config(None, {"push.keep_versions": "0"}).push.keep_versions == 0
    for key, value in (("push.keep_versions", "-1"), ("push.serving_dir", "gs://bucket/models"),
                       ("push.model_name", "7")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, {key: value})
