"""The release gate across nightly runs, through the real CLI, TFX, MLMD and the serving directory.

Three consecutive runs on one output folder (one pipeline root, one MLMD
store, one serving directory), as a nightly schedule would make them:

1. a briefly trained generator: first run, no baseline, pushed as version 1;
2. a crippled trainer (one step): worse than version 1, refused, and the
   serving directory is byte-for-byte what it was;
3. a longer trained generator: better than version 1 (its baseline, not the
   refused run 2), pushed as version 2;
4. a crippled run from ANOTHER output folder (its own pipeline root and MLMD,
   which never saw versions 1 and 2) sharing the serving directory: judged
   against version 2, what serves, and refused.

Step counts were chosen from measured FIDs (random-conv-v1, 64 samples, 16x16
digits, train seeds 0, 1, 2): 175.4 / 177.0 / 175.4 after 1 step, 154.1 /
154.3 / 155.9 after 30, 30.2 / 29.0 / 37.0 after 150. The gaps (~20 and
~120) are many times the seed-to-seed spread (~2 and ~8).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ganpipe.serving import generate
from tests.conftest import TINY_RUN_FLAGS, run_cli

# TINY_RUN_FLAGS with more evaluation samples, so FID differences are steady.
FLAGS = [*TINY_RUN_FLAGS, "--set", "evaluate.num_samples=64"]
RUN_STEPS = {"first": 30, "crippled": 1, "better": 150, "elsewhere": 1}


def _tree_digest(folder: Path) -> str:
    """Names (hidden ones too), types and contents of everything under ``folder``."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs):
            digest.update(f"d {os.path.relpath(os.path.join(root, name), folder)}\n".encode())
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                content = hashlib.sha256(handle.read()).hexdigest()
            digest.update(f"f {os.path.relpath(path, folder)} {content}\n".encode())
    return digest.hexdigest()


def _evaluation(output: Path, stdout: str) -> dict:
    (line,) = [line for line in stdout.splitlines() if line.startswith("ganpipe: evaluation page: ")]
    page = Path(line.split(": ", 2)[2])
    return json.loads((page.parent / "metrics.json").read_text())


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    work = tmp_path_factory.mktemp("gate")
    output = work / "out"
    serving = output / "serving" / "generator"
    runs = {}
    for name in ("first", "crippled", "better", "elsewhere"):
        before = _tree_digest(serving) if serving.exists() else None
        mtime = serving.stat().st_mtime_ns if serving.exists() else None
        where = (["--output", str(work / "elsewhere"), "--set", f"push.serving_dir={output / 'serving'}"]
                 if name == "elsewhere" else ["--output", str(output)])
        result = run_cli("run", *where, *FLAGS, "--steps", str(RUN_STEPS[name]), cwd=work)
        assert result.returncode == 0, result.stdout + result.stderr
        runs[name] = {"result": result, "before": before, "mtime_before": mtime,
                      "after": _tree_digest(serving), "mtime_after": serving.stat().st_mtime_ns,
                      "evaluation": _evaluation(output, result.stdout),
                      "versions": sorted(name for name in os.listdir(serving) if not name.startswith("."))}
    return output, serving, runs


def test_first_run_has_no_baseline_and_pushes_version_1(nightly):
    _, serving, runs = nightly
    run = runs["first"]
    assert run["versions"] == ["1"]
    assert (serving / "1" / "saved_model.pb").exists()
    assert f"pushed generator: {serving / '1'}" in run["result"].stdout
    assert run["evaluation"]["baseline"] is None and run["evaluation"]["blessed"] is True


def test_crippled_run_is_refused_and_serving_is_byte_for_byte_unchanged(nightly):
    _, serving, runs = nightly
    run, first = runs["crippled"], runs["first"]
    evaluation = run["evaluation"]
    assert evaluation["blessed"] is False
    assert "NOT pushed (not blessed)" in run["result"].stdout
    assert any("not better than the serving baseline" in reason for reason in evaluation["reasons"])
    assert evaluation["candidate"]["fid"] > evaluation["baseline"]["fid"]
    assert evaluation["baseline_model"] == str(serving / "1") and evaluation["baseline_version"] == 1
    assert first["evaluation"]["candidate_model"] in evaluation["baseline_origin"]
    assert run["before"] == run["after"] and run["mtime_before"] == run["mtime_after"]
    assert run["versions"] == ["1"]


def test_better_run_beats_the_last_blessed_model_and_pushes_version_2(nightly):
    _, serving, runs = nightly
    run, first = runs["better"], runs["first"]
    evaluation = run["evaluation"]
    assert evaluation["blessed"] is True, evaluation["reasons"]
    # The baseline is what serves (run 1's model), not the refused run 2's.
    assert evaluation["baseline_model"] == str(serving / "1")
    assert first["evaluation"]["candidate_model"] in evaluation["baseline_origin"]
    assert evaluation["candidate"]["fid"] < evaluation["baseline"]["fid"]
    assert run["versions"] == ["1", "2"]
    assert f"pushed generator: {serving / '2'}" in run["result"].stdout
    assert set(name for name in os.listdir(serving) if name.startswith(".")) <= {".push.lock"}


def test_another_output_sharing_the_serving_directory_is_judged_against_what_serves(nightly):
    """Its MLMD is fresh and has no blessed model: the baseline is still version 2, read from the directory."""
    _, serving, runs = nightly
    run, better = runs["elsewhere"], runs["better"]
    evaluation = run["evaluation"]
    assert evaluation["baseline_version"] == 2 and evaluation["baseline"] is not None
    assert better["evaluation"]["candidate_model"] in evaluation["baseline_origin"]
    assert evaluation["blessed"] is False
    assert any("not better than the serving baseline" in reason for reason in evaluation["reasons"])
    assert run["before"] == run["after"] and run["versions"] == ["1", "2"]


def test_generate_renders_any_pushed_version_reproducibly(nightly, tmp_path):
    _, serving, _ = nightly
    cli_png = tmp_path / "cli.png"
    result = run_cli("generate", "--model", str(serving), "--n", "16", "--seed", "0", "--out", str(cli_png),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"16 samples of {serving / '2'}" in result.stdout  # the newest version by default
    assert cli_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same model and seed in another process: the same bytes. Other version or seed: another picture.
    pictures = {}
    for name, model, seed in (("again", serving / "2", 0), ("v1", serving / "1", 0), ("seed5", serving, 5)):
        generate.generate(str(model), str(tmp_path / f"{name}.png"), count=16, seed=seed)
        pictures[name] = (tmp_path / f"{name}.png").read_bytes()
    assert pictures["again"] == cli_png.read_bytes()
    assert len({cli_png.read_bytes(), pictures["v1"], pictures["seed5"]}) == 3
    missing = run_cli("generate", "--model", str(serving), "--version", "9", "--out", str(tmp_path / "x.png"),
                      cwd=tmp_path)
    assert missing.returncode == 2 and "version 9 not found" in missing.stderr
