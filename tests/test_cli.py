"""Bad input fails fast: one line on stderr, exit code 2, before TFX starts."""

from __future__ import annotations

import os

import pytest

from ganpipe.cli import main as cli


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["run", *argv])
    return code, capsys.readouterr().err


def test_missing_folder(capsys, tmp_path):
    code, err = _run(capsys, "--data", str(tmp_path / "nope"), "--output", str(tmp_path / "out"))
    assert code == 2 and "nope" in err and err.count("\n") == 1


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = _run(capsys, "--data", str(tmp_path / "empty"), "--output", str(tmp_path / "out"))
    assert code == 2 and "empty" in err.lower() and err.count("\n") == 1


def test_folder_without_a_decodable_image(capsys, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (junk / "b.jpg").write_bytes(b"")
    (junk / "c.txt").write_text("hello")
    code, err = _run(capsys, "--data", str(junk), "--output", str(tmp_path / "out"))
    assert code == 2 and "decodable" in err and err.count("\n") == 1


def test_output_inside_input_is_refused(capsys, png_folder):
    code, err = _run(capsys, "--data", str(png_folder), "--output", str(png_folder / "out"))
    assert code == 2 and "inside the input folder" in err


def test_output_inside_input_is_refused_by_real_path(capsys, png_folder, tmp_path):
    """The same folder, an output reached through a link into the data, or data reached through a link."""
    into_data, to_data = tmp_path / "into", tmp_path / "data_link"
    into_data.symlink_to(png_folder, target_is_directory=True)
    to_data.symlink_to(png_folder, target_is_directory=True)
    for data, output in ((png_folder, png_folder), (png_folder, into_data / "out"), (to_data, png_folder / "out")):
        code, err = _run(capsys, "--data", str(data), "--output", str(output))
        assert code == 2 and "inside the input folder" in err, (data, output, err)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    code, err = _run(capsys, "--data", str(png_folder), "--output", str(dangling))
    assert code == 2 and "is a link that points nowhere" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, key",
    [
        (["--set", "train.steps=-1"], "train.steps"),
        (["--set", "train.stepz=3"], "train.stepz"),
        (["--set", "oops"], "KEY=VALUE"),
        (["--format", "parquet"], "data.format"),
    ],
)
def test_bad_config_values(capsys, tmp_path, argv, key):
    code, err = _run(capsys, *argv, "--output", str(tmp_path / "out"))
    assert code == 2 and key in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bad_yaml_file(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train: {batch_size: -4}\n")
    code, err = _run(capsys, "--config", str(config), "--output", str(tmp_path / "out"))
    assert code == 2 and "train.batch_size" in err


def test_divergence_in_ganpipe_train_is_one_line_not_a_traceback(tmp_path, capsys):
    """A real divergence (an R1 weight of 1e38 overflows D's loss within a few steps) reaches the user as
    the trainer's one line and exit 1."""
    from tests.test_trainer import _blobs, _write_split

    _write_split(tmp_path / "Split-train", _blobs(16, 16, 1, seed=3))
    code = cli.main(["train", "--train-files", str(tmp_path / "Split-train" / "*"), "--model-dir",
                     str(tmp_path / "model"), "--run-dir", str(tmp_path / "run"), "--steps", "6",
                     "--set", "train.log_every=1", "--set", "train.batch_size=8", "--set", "train.r1_gamma=1e38"])
    err = capsys.readouterr().err
    assert code == 1
    assert "trainer: training diverged at step" in err and "not finite" in err
    assert "Traceback" not in err and not (tmp_path / "model").exists()


def test_text_keys_keep_the_text_as_typed(tmp_path):
    """YAML would read '#' as a comment and strip quotes: `--data 'photos #1'` must not become `photos`."""
    from ganpipe.pipeline.config import load_config

    for text in ("/data/photos #1", '"q"', "[draft] imgs", "@pics", "{braces", "null", "~/x", "a: b"):
        config = load_config(overrides={"data.path": text, "output_dir": text, "push.serving_dir": text})
        assert (config.data.path, config.output_dir, config.push.serving_dir) == (text, text, text)


@pytest.mark.parametrize("content, message", [
    ("[" * 2000 + "]" * 2000, "nests too deeply"),
    ("train: {steps: 3, steps: 4}\n", "given twice"),
    ("0\n", "mapping at top level"),
    ("[]\n", "mapping at top level"),
    ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
     'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\npipeline_name: [*d,*d,*d,*d,*d,*d]\n',
     "pipeline_name"),
])
def test_hostile_config_files_are_one_short_line(capsys, tmp_path, content, message):
    config = tmp_path / "c.yaml"
    config.write_text(content)
    code, err = _run(capsys, "--config", str(config), "--output", str(tmp_path / "out"))
    assert code == 2 and message in err and err.count("\n") == 1 and len(err) < 400, err[:400]


def test_paths_that_cannot_be_used_are_one_line_naming_the_key(capsys, png_folder, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    cases = [
        (["--data", str(png_folder), "--output", str(a_file / "out")], "output_dir"),
        (["--data", str(png_folder), "--output", str(tmp_path / "o"), "--set", f"push.serving_dir={dangling}"],
         "push.serving_dir"),
        (["--data", str(png_folder), "--output", str(tmp_path / "o"), "--set", f"train.checkpoint_dir={dangling}"],
         "train.checkpoint_dir"),
        (["--data", str(fifo), "--format", "npz", "--output", str(tmp_path / "o")], "neither a file nor a folder"),
        (["--data", str(png_folder), "--output", str(tmp_path / "o"), "--set", f"pipeline_name={'p' * 64}"],
         "at most 63"),
    ]
    for argv, message in cases:
        code, err = _run(capsys, *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", "--steps", "abc"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "--steps" in err


def test_generate_never_replaces_a_device_or_link_given_as_out(capsys, tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "elsewhere.png")
    for out in ("/dev/null", str(link)):
        code = cli.main(["generate", "--model", str(tmp_path), "--out", out])
        err = capsys.readouterr().err
        assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null") and link.is_symlink()


def test_check_runs_every_check_and_writes_nothing(capsys, png_folder, tmp_path):
    code = cli.main(["run", "--check", "--data", str(png_folder), "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and "check passed: input: folder input" in out and not (tmp_path / "out").exists()
    code, err = _run(capsys, "--check", "--data", str(png_folder), "--set", "train.steps=-1")
    assert code == 2 and "train.steps" in err


def test_steps_take_auto_or_a_number_on_the_command_line(capsys, png_folder, tmp_path):
    code = cli.main(["run", "--check", "--data", str(png_folder), "--output", str(tmp_path / "out"), "--steps", "auto"])
    out = capsys.readouterr().out
    assert code == 0 and "600 steps (train.steps: auto at 32 px)" in out, out
    with pytest.raises(SystemExit):
        cli.main(["run", "--check", "--data", str(png_folder), "--steps", "ten"])
    assert "'ten' is not a whole number or auto" in capsys.readouterr().err
