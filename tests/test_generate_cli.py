"""`ganpipe generate` answers bad arguments and broken models in one line (exit 2), before any work."""

from __future__ import annotations

import pytest

from ganpipe.cli import main as cli


def _generate(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["generate", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "--n=0: must be in [1, 4096]"),
    (["--n", "10000000"], "--n=10000000: must be in [1, 4096] (one picture)"),
    (["--seed", "-1"], "--seed=-1: must be in [0,"),
    (["--seed", str(2**63 - 10)], "seeds are int64"),
    (["--scale", "0"], "--scale=0: must be an integer in [1, 2048]"),
])
def test_out_of_range_arguments_name_their_flag(capsys, corrupt_model, tmp_path, argv, message):
    code, err = _generate(capsys, "--model", str(corrupt_model), "--out", str(tmp_path / "g.png"), *argv)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_an_out_that_is_a_folder_or_cannot_be_created_is_refused(capsys, corrupt_model, tmp_path):
    code, err = _generate(capsys, "--model", str(corrupt_model), "--out", str(tmp_path))
    assert code == 2 and "is a folder; give a file name" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _generate(capsys, "--model", str(corrupt_model), "--out", str(blocker / "sub" / "g.png"))
    assert code == 2 and "cannot create" in err and "Traceback" not in err, err


def test_a_corrupt_saved_model_is_one_line(capsys, corrupt_model, tmp_path):
    code, err = _generate(capsys, "--model", str(corrupt_model.parent), "--out", str(tmp_path / "g.png"))
    assert code == 2 and "cannot load the SavedModel" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
