"""Every config key, every kind of bad value: exit 2, one line naming the key, before TFX starts.

The cases are generated from the config dataclasses, so a key added later is fuzzed without
editing this file. Each bad value goes in both ways a user sets one: a YAML file (where a value
keeps its YAML type) and `--set key=value` (where it is text that YAML reads). One test checks
them all and prints the count, so a regression reads "N of M clean" with the offending cases.
"""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

import pytest
import yaml

from ganpipe.cli import main as cli
from ganpipe.pipeline.config import PipelineConfig
from tests.conftest import write_png_folder

# Values wrong for a key of each type: out of range, non-finite, wrong type, huge.
BAD_BY_TYPE: dict[type, list[typing.Any]] = {
    int: [-10**30, 10**30, 2**63, -1.5, 1.5, float("nan"), float("inf"), "ten", True, [1], {"a": 1}, None],
    float: [float("nan"), float("inf"), float("-inf"), "1e400", "-1e400", -10**400, 1e39, -1e39, "ten", True, [1],
            {"a": 1}, None],
    bool: ["maybe", 2, 0.5, [True], {"a": 1}, None],
    str: [[1], {"a": 1}, None],
    # List-valued keys (beam.pipeline_args): one text instead of a list, elements that are not text.
    list[str]: ["--flag=1", [1], [None], [True], [["--flag"]], [{"a": 1}], {"a": 1}, None],
}
# Keys whose valid values are a closed set (or a pattern): a wrong word is a bad value too.
BAD_WORDS = {
    "pipeline_name": ["has space", "a/b", "", "p" * 64],
    "output_dir": [""],
    "data.format": ["parquet"],
    "data.resize": ["zoom"],
    "data.background": ["not-a-colour", "#12345"],
    "train.architecture": ["vgg"],
    "train.augment": ["sometimes"],
    "train.upsample": ["pixelshuffle"],
    "train.loss": ["wasserstein-ish"],
    "train.image_size": [-64, 65_536],
    "train.channels": [2, 5],
    "train.mixed_precision": ["fp8"],
    "evaluate.extractor": ["vgg16"],
    "push.model_name": ["../escape", "a/b", "m" * 129],
    "train.width": [513],
    "kubeflow.pipeline_root": ["/mnt/local/root"],
    "beam.pipeline_args": [["runner=DirectRunner"], ["--runner", "DirectRunner"], ["--"], ["--runner=NoSuchRunner"],
                           ["--runner=no_such_module.Runner"]],
}
# Negative values that mean something: only their finite, huge cousins are bad.
NEGATIVE_IS_MEANINGFUL = {"train.discriminator_dropout"}  # -1 = auto


def _leaf_keys(cls: type = PipelineConfig, prefix: str = "") -> list[tuple[str, type]]:
    keys = []
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            keys.extend(_leaf_keys(hint, f"{prefix}{name}."))
        else:
            keys.append((prefix + name, hint))
    return keys


def _cases() -> list[tuple[str, typing.Any]]:
    cases = []
    for key, hint in _leaf_keys():
        for value in BAD_BY_TYPE[hint] + BAD_WORDS.get(key, []):
            cases.append((key, value))
    return cases


def _as_yaml_file(path: Path, key: str, value: typing.Any) -> Path:
    *parents, leaf = key.split(".")
    document: dict = {leaf: value}
    for parent in reversed(parents):
        document = {parent: document}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _as_set_text(value: typing.Any) -> str | None:
    """How a user types the value after `--set key=`; None when text cannot carry it as a bad value."""
    if isinstance(value, float):
        return {float("nan"): ".nan", float("inf"): ".inf", float("-inf"): "-.inf"}.get(value, repr(value)) \
            if value == value else ".nan"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_bad_value_of_every_key_is_one_clean_line(tmp_path, capsys):
    # `run --check` runs every check a run makes before TFX starts, then stops with exit 0: a bad value
    # that gets through is seen as exit 0 instead of 2, without starting a pipeline.
    data = tmp_path / "images"
    write_png_folder(data, 12)
    output = tmp_path / "out"
    known_keys = {key for key, _ in _leaf_keys()}
    assert set(BAD_WORDS) <= known_keys, sorted(set(BAD_WORDS) - known_keys)

    total, unclean = 0, []
    for key, value in _cases():
        routes = [("yaml", ["--config", str(_as_yaml_file(tmp_path / "fuzz.yaml", key, value))])]
        text = _as_set_text(value)
        # A str field keeps --set text as typed ("[1]" is a valid folder name), so only YAML carries a wrong type.
        # The same for null: `--set output_dir=null` names a folder called "null".
        if text is not None and not (isinstance(value, (list, dict, type(None))) and key in _str_keys()):
            routes.append(("--set", ["--set", f"{key}={text}"]))
        for route, argv in routes:
            if key in NEGATIVE_IS_MEANINGFUL and value in (-1, -1.0):
                continue
            total += 1
            named = [] if key in ("data.path", "output_dir") else ["--data", str(data), "--output", str(output)]
            try:
                code = cli.main(["run", "--check", *named, *argv])
                err = capsys.readouterr().err
            except BaseException as error:  # noqa: BLE001 - any escape is the finding
                capsys.readouterr()
                unclean.append(f"{route} {key}={value!r}: raised {type(error).__name__}: {error}")
                continue
            lines = err.strip().splitlines()
            leaf = key.rsplit(".", 1)[-1]
            if code != 2 or len(lines) != 1 or leaf not in lines[0] or output.exists():
                unclean.append(f"{route} {key}={value!r}: exit {code}, stderr {err[:300]!r}")
            shutil.rmtree(output, ignore_errors=True)
    clean = total - len(unclean)
    print(f"config fuzz: {clean} of {total} clean ({len(known_keys)} keys)")
    assert not unclean, f"{clean} of {total} clean; not clean:\n" + "\n".join(unclean)


def _str_keys() -> set[str]:
    return {key for key, hint in _leaf_keys() if hint is str}


@pytest.mark.parametrize("key", ["pipeline_name", "train.steps", "evaluate.max_fid", "push.model_name"])
def test_the_fuzz_reaches_known_keys(key):
    assert key in {name for name, _ in _leaf_keys()}
