"""The one configuration object of a ganpipe run.

YAML files and CLI flags both map onto :class:`PipelineConfig`; components get
plain values out of it. Every key is checked here, before TFX starts, so a
typo or a bad value fails in a second with a message naming the key instead of
minutes later inside a component.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Mapping

import yaml

from trainer.config import TrainerConfig

DATA_FORMATS = ("auto", "folder", "idx", "npz", "tfrecord")
BUNDLED_DATASETS = ("digits", "fashion-mnist")
EXTRACTORS = ("random-conv",)


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names it."""


@dataclasses.dataclass
class DataConfig:
    """Where the images come from and how strict ingestion is."""

    # A folder, an IDX file (or a folder of them), an .npz file, a TFRecord
    # file/folder, or the name of a bundled dataset.
    path: str = "digits"
    format: str = "auto"
    eval_fraction: float = 0.1
    # Share of input files that may be rejected (corrupt, truncated, empty,
    # not an image, wrong channel count) before the run is stopped.
    max_bad_fraction: float = 0.05
    # False: images whose channel count differs from train.channels are
    # rejected and reported. True: they are converted when decoded.
    convert_channels: bool = False
    # A folder of one subfolder per class gets labels from subfolder names.
    labels_from_subfolders: bool = True
    min_images: int = 16

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("data.path is empty: give a folder, file or one of "
                              f"{', '.join(BUNDLED_DATASETS)}")
        if self.format not in DATA_FORMATS:
            raise ConfigError(f"data.format={self.format!r}: must be one of {', '.join(DATA_FORMATS)}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ConfigError(f"data.eval_fraction={self.eval_fraction}: must be in (0, 1)")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ConfigError(f"data.max_bad_fraction={self.max_bad_fraction}: must be in [0, 1]")
        if self.min_images < 2:
            raise ConfigError(f"data.min_images={self.min_images}: must be >= 2")


@dataclasses.dataclass
class EvaluateConfig:
    """How the candidate generator is measured and when it is blessed."""

    extractor: str = "random-conv"
    num_samples: int = 512
    seed: int = 1234
    # Absolute limit: a candidate whose FID exceeds it is never blessed.
    # 0 disables the limit.
    max_fid: float = 0.0
    # Relative rule: the candidate must beat the blessed baseline's FID by at
    # least this fraction (0.0 = not worse).
    min_improvement: float = 0.0

    def validate(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ConfigError(f"evaluate.extractor={self.extractor!r}: must be one of {', '.join(EXTRACTORS)}")
        if self.num_samples < 16:
            raise ConfigError(f"evaluate.num_samples={self.num_samples}: must be >= 16")
        if self.max_fid < 0:
            raise ConfigError(f"evaluate.max_fid={self.max_fid}: must be >= 0 (0 disables it)")
        if not 0.0 <= self.min_improvement < 1.0:
            raise ConfigError(f"evaluate.min_improvement={self.min_improvement}: must be in [0, 1)")


@dataclasses.dataclass
class PushConfig:
    """Where blessed generators go (TF Serving layout <serving_dir>/<model_name>/<version>)."""

    serving_dir: str = ""  # empty: <output_dir>/serving
    model_name: str = "generator"

    def validate(self) -> None:
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            raise ConfigError(f"push.model_name={self.model_name!r}: must be a plain directory name")


@dataclasses.dataclass
class PipelineConfig:
    """Everything a run needs; ``validate`` is called on every construction path."""

    pipeline_name: str = "ganpipe"
    output_dir: str = "ganpipe_output"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)

    # Derived locations. Everything a run writes lives under output_dir.
    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_base(self) -> str:
        """The directory TF Serving's model_base_path points at."""
        root = self.push.serving_dir or os.path.join(self.output_dir, "serving")
        return os.path.join(root, self.push.model_name)

    def validate(self) -> None:
        if not self.pipeline_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"pipeline_name={self.pipeline_name!r}: use letters, digits, '-' and '_'")
        if not self.output_dir:
            raise ConfigError("output_dir is empty")
        self.data.validate()
        try:
            self.train.validate()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.evaluate.validate()
        self.push.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(yaml_path: str | None = None, overrides: Mapping[str, str] | None = None) -> PipelineConfig:
    """Builds a validated config from an optional YAML file and ``a.b=value`` overrides.

    Overrides win over the file; both are checked against the dataclass fields
    and types, so ``train.stpes: 10`` or ``train.steps: ten`` fail here.
    """
    values: dict[str, Any] = {}
    if yaml_path:
        try:
            with open(yaml_path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle) or {}
        except OSError as error:
            raise ConfigError(f"cannot read config file {yaml_path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {yaml_path} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {yaml_path} must hold a mapping at top level")
        values = loaded
    config = _build(PipelineConfig, values, prefix="")
    for dotted_key, raw in (overrides or {}).items():
        _set_dotted(config, dotted_key, raw)
    config.validate()
    return config


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        names = ", ".join(prefix + key for key in unknown)
        raise ConfigError(f"unknown config key(s): {names} (known: {', '.join(prefix + f for f in fields)})")
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        field_type = hints[name]
        if dataclasses.is_dataclass(field_type):
            kwargs[name] = _build(field_type, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, field_type, key=prefix + name)
    try:
        return cls(**kwargs)
    except ValueError as error:  # TrainerConfig validates in __post_init__
        raise ConfigError(str(error)) from None


def _set_dotted(config: PipelineConfig, dotted_key: str, raw: str) -> None:
    *parents, leaf = dotted_key.split(".")
    target: Any = config
    for part in parents:
        if not dataclasses.is_dataclass(target) or part not in {f.name for f in dataclasses.fields(target)}:
            raise ConfigError(f"unknown config key: {dotted_key}")
        target = getattr(target, part)
    if not dataclasses.is_dataclass(target):
        raise ConfigError(f"unknown config key: {dotted_key}")
    hints = typing.get_type_hints(type(target))
    if leaf not in hints or dataclasses.is_dataclass(hints[leaf]):
        raise ConfigError(f"unknown config key: {dotted_key}")
    parsed = yaml.safe_load(raw) if isinstance(raw, str) else raw
    if hints[leaf] is str and not isinstance(parsed, str):
        parsed = raw  # keep "001" or "true" as typed when the field is a string
    setattr(target, leaf, _coerce(parsed, hints[leaf], key=dotted_key))


def _coerce(value: Any, field_type: Any, key: str) -> Any:
    """Accepts a value only when it fits the field's type (ints widen to floats)."""
    if isinstance(field_type, types.UnionType) or typing.get_origin(field_type) is typing.Union:
        raise ConfigError(f"{key}: union-typed settings are not supported")
    if field_type is bool:
        if isinstance(value, bool):
            return value
    elif field_type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif field_type is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif field_type is str:
        if isinstance(value, str):
            return value
    else:
        raise ConfigError(f"{key}: unsupported setting type {field_type}")
    raise ConfigError(f"{key}={value!r}: expected {field_type.__name__}")
