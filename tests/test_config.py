"""Config: YAML and --set map onto one object; bad keys and values name themselves."""

from __future__ import annotations

import re

import pytest

from ganpipe.pipeline.config import ConfigError, PipelineConfig, load_config


def test_defaults_are_valid_and_point_inside_output_dir():
    config = load_config()
    assert config.data.path == "digits"
    assert config.serving_base == "ganpipe_output/serving/generator"
    assert config.pipeline_root.startswith(config.output_dir)


def test_yaml_and_overrides_combine_with_overrides_winning(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 50\n  batch_size: 8\ndata:\n  eval_fraction: 0.2\n")
    config = load_config(str(path), {"train.steps": "7", "evaluate.max_fid": "12"})
    assert (config.train.steps, config.train.batch_size) == (7, 8)
    assert config.data.eval_fraction == 0.2
    assert config.evaluate.max_fid == 12.0


@pytest.mark.parametrize(
    "yaml_text, key",
    [
        ("train:\n  stpes: 5\n", "train.stpes"),
        ("nonsense: 1\n", "nonsense"),
        ("data:\n  path: [1, 2]\n", "data.path"),
        ("train:\n  steps: ten\n", "train.steps"),
        ("train:\n  steps: 2.5\n", "train.steps"),
        ("train:\n  image_size: 30\n", "train.image_size"),
        ("data:\n  eval_fraction: 1.5\n", "data.eval_fraction"),
        ("data:\n  convert_channels: 'yes'\n", "data.convert_channels"),
        ("push:\n  model_name: ../escape\n", "push.model_name"),
        ("evaluate:\n  extractor: inception\n", "evaluate.extractor"),
    ],
)
def test_bad_yaml_is_rejected_naming_the_key(tmp_path, yaml_text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(str(path))


@pytest.mark.parametrize(
    "override, key",
    [
        ({"train.nope": "1"}, "train.nope"),
        ({"train": "1"}, "train"),
        ({"train.steps": "-3"}, "train.steps"),
        ({"train.channels": "2"}, "train.channels"),
        ({"data.max_bad_fraction": "-0.1"}, "data.max_bad_fraction"),
    ],
)
def test_bad_overrides_are_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, override)


def test_string_fields_keep_text_that_looks_like_other_types():
    config = load_config(None, {"data.path": "2024", "push.model_name": "true"})
    assert config.data.path == "2024" and config.push.model_name == "true"


def test_unreadable_and_non_mapping_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(tmp_path / "list.yaml"))


def test_to_dict_round_trips_through_the_trainer_section():
    config = PipelineConfig()
    assert config.to_dict()["train"]["latent_dim"] == config.train.latent_dim


@pytest.mark.parametrize("spelling, value", [("1e-4", 1e-4), ("2E-4", 2e-4), (".0002", 2e-4),
                                             ("1_0e-5", 1e-4), (" 5e-4 ", 5e-4), ("1", None)])
def test_every_float_spelling_python_reads_is_accepted_in_yaml_and_set(tmp_path, spelling, value):
    """YAML 1.1 reads a bare 1e-4 (no dot) as a string; users write it anyway. An int widens."""
    path = tmp_path / "run.yaml"
    key, value = ("evaluate.max_fid", 1.0) if value is None else ("train.generator_lr", value)
    section, leaf = key.split(".")
    path.write_text(f"{section}:\n  {leaf}: {spelling}\n")
    assert getattr(getattr(load_config(str(path)), section), leaf) == pytest.approx(value)
    assert getattr(getattr(load_config(None, {key: spelling}), section), leaf) == pytest.approx(value)


@pytest.mark.parametrize("spelling", ["nan", ".nan", "inf", "-.inf", "1e999"])
def test_non_finite_floats_are_refused_naming_the_key(spelling):
    with pytest.raises(ConfigError, match=r"train\.generator_lr=.*must be a finite number"):
        load_config(None, {"train.generator_lr": spelling})


def test_the_readme_config_block_lists_every_key_with_its_default():
    """README's Configuration block is what users copy: every key, each default as the code has it."""
    import dataclasses
    import re
    from pathlib import Path

    import yaml

    from ganpipe.pipeline.config import AUTO_KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```yaml\n(pipeline_name:.*?)```", readme, re.S).group(1)
    documented = yaml.safe_load(block)
    config = PipelineConfig()
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not dataclasses.is_dataclass(value):
            assert documented[field.name] == value, field.name
            continue
        section = documented[field.name]
        names = [inner.name for inner in dataclasses.fields(value)]
        assert sorted(section) == sorted(names), field.name
        for name in names:
            default, key = getattr(value, name), f"{field.name}.{name}"
            expected = "auto" if key in AUTO_KEYS and default == AUTO_KEYS[key] else default
            assert section[name] == expected, key


def test_a_float_with_hundreds_of_digits_is_refused_not_a_traceback():
    with pytest.raises(ConfigError, match=r"train\.generator_lr=.*must be a finite number"):
        load_config(None, {"train.generator_lr": "1" + "0" * 400})


@pytest.mark.parametrize("override, message", [
    ({"train.seed": "-1"}, "train.seed=-1: must be in [0, 2147483647]"),
    ({"train.steps": str(10**12)}, "train.steps=1000000000000: must be in [0, 1000000000]"),
    ({"train.batch_size": str(10**9)}, "train.batch_size=1000000000: must be in [0, 65536]"),
    ({"train.latent_dim": str(10**9)}, "train.latent_dim=1000000000: must be in [1, 4096]"),
    ({"train.shuffle_buffer": "100000000000000"}, "train.shuffle_buffer=100000000000000: must be in [1, 10000000]"),
    ({"train.gp_weight": ".nan"}, "train.gp_weight=nan: must be a finite number"),
    ({"evaluate.max_kid": ".inf"}, "evaluate.max_kid=inf: must be a finite number"),
])
def test_values_the_downstream_code_cannot_honour_are_refused_up_front(override, message):
    import re

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, override)


def test_config_files_that_are_not_utf8_text_or_have_non_name_keys_are_one_line(tmp_path):
    binary, latin1, numeric = tmp_path / "b.yaml", tmp_path / "l.yaml", tmp_path / "n.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    latin1.write_bytes("data:\n  path: caf\xe9\n".encode("latin-1"))
    numeric.write_text("1: 2\n")
    for path, expected in ((binary, "is not UTF-8 text"), (latin1, "is not UTF-8 text (byte 17: 0xe9)"),
                           (numeric, "key 1 is not a name")):
        with pytest.raises(ConfigError, match=re.escape(expected)) as error:
            load_config(str(path))
        assert "\n" not in str(error.value)


def test_a_checkpoint_or_serving_dir_that_cannot_be_written_is_refused_before_tfx(tmp_path):
    from ganpipe.pipeline import inputs

    a_file = tmp_path / "file"
    a_file.write_text("x")
    for key in ("train.checkpoint_dir", "push.serving_dir"):
        config = load_config(None, {key: str(a_file / "sub"), "output_dir": str(tmp_path / "out")})
        with pytest.raises(ConfigError, match=re.escape(f"{key}: {a_file} is a file, not a folder")):
            inputs.resolve(config)


def test_the_preflight_settles_auto_steps_with_the_shape_and_says_so(tmp_path):
    """A 64 px colour folder trains 2,400 steps at `train.steps: auto` (600 steps left emoji as mush,
    docs/design.md); the input line names the steps and why; --steps still wins."""
    from PIL import Image

    from ganpipe.pipeline import inputs

    for index in range(3):
        Image.new("RGBA", (64, 64), (255, 200, 0, 128 + index)).save(tmp_path / f"{index}.png")
    config = load_config(None, {"data.path": str(tmp_path), "output_dir": str(tmp_path.parent / "out")})
    summary = inputs.resolve(config).summary
    assert (config.train.image_size, config.train.channels, config.train.steps) == (64, 3, 2_400)
    assert summary.endswith("2,400 steps (train.steps: auto at 64 px)"), summary
    config = load_config(None, {"data.path": str(tmp_path), "output_dir": str(tmp_path.parent / "out"),
                                "train.steps": "50"})
    assert inputs.resolve(config).summary.endswith(", 50 steps (as configured)")
    assert config.train.steps == 50


def test_a_wrong_type_for_a_key_that_takes_auto_says_auto_is_allowed():
    for key in ("train.steps", "train.image_size", "train.batch_size"):
        with pytest.raises(ConfigError, match=re.escape(f"{key}='ten': expected int or auto")):
            load_config(None, {key: "ten"})
    with pytest.raises(ConfigError, match=re.escape("train.latent_dim='ten': expected int") + "$"):
        load_config(None, {"train.latent_dim": "ten"})
