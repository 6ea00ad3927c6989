"""The one configuration object of a ganpipe run.

YAML files and CLI flags both map onto :class:`PipelineConfig`; components get
plain values out of it. Every key is checked here, before TFX starts, so a
typo or a bad value fails in a second with a message naming the key instead of
minutes later inside a component.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import reprlib
import os
import re
import types
import typing
from typing import Any, Mapping

import yaml

from ganpipe.trainer.config import AUTO_DROPOUT, TrainerConfig
from ganpipe.components.image_example_gen import sources
from ganpipe.components.image_example_gen.config import IngestConfig
from ganpipe.components.image_example_gen.pixels import RESIZE_MODES, parse_colour
from ganpipe.components.synthetic_example_gen import request as export_request
from ganpipe.evaluation.config import EvaluateConfig

DATA_FORMATS = ("auto", *sources.FORMATS)
BUNDLED_DATASETS = ("digits", "fashion-mnist")


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
    # What transparent pixels are composited over (#rrggbb or a colour name).
    background: str = IngestConfig.background
    # Non-square images: center-crop (default) | pad (with the background) | stretch.
    resize: str = IngestConfig.resize

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
        if not 2 <= self.min_images <= 10**9:
            raise ConfigError(f"data.min_images={self.min_images}: must be in [2, 1000000000]")
        try:
            parse_colour(self.background)
        except ValueError as error:
            raise ConfigError(f"data.background: {error}") from None
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"data.resize={self.resize!r}: must be one of {', '.join(RESIZE_MODES)}")


@dataclasses.dataclass
class PushConfig:
    """Where blessed generators go (TF Serving layout <serving_dir>/<model_name>/<version>).

    Versions are 1, 2, 3... (highest present + 1), each appearing atomically.
    """

    serving_dir: str = ""  # empty: <output_dir>/serving; a local path (atomic rename)
    model_name: str = "generator"
    # How many versions stay in the serving directory (the newest); 0 keeps all.
    keep_versions: int = 5

    def validate(self) -> None:
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            raise ConfigError(f"push.model_name={_shown(self.model_name)}: must be a plain directory name")
        if len(self.model_name) > 128:  # a folder name, and the name in every TF Serving URL
            raise ConfigError(f"push.model_name={_shown(self.model_name)}: at most 128 characters")
        if self.model_name.isdigit():
            raise ConfigError(f"push.model_name={self.model_name!r}: a number would read as a version")
        if not 0 <= self.keep_versions <= 1_000_000:
            raise ConfigError(f"push.keep_versions={self.keep_versions}: must be in [0, 1000000] (0 keeps all)")
        if "://" in self.serving_dir:
            raise ConfigError(f"push.serving_dir={self.serving_dir!r}: must be a local or mounted path; "
                              "versions appear by atomic rename, which object stores do not offer")


@dataclasses.dataclass
class ExportConfig:
    """What the pipeline makes of a pushed generator after the push.

    ``synthetic_count`` > 0 adds SyntheticExampleGen: that many samples of the
    generator just pushed (seeds 0..count-1) as a standard Examples artifact
    with lineage to the pushed model. It runs only when the run pushed.
    """

    synthetic_count: int = 0  # 0: off

    def validate(self) -> None:
        if not 0 <= self.synthetic_count <= export_request.MAX_IMAGES:
            raise ConfigError(f"export.synthetic_count={self.synthetic_count}: must be in "
                              f"[0, {export_request.MAX_IMAGES}] (0: off)")


@dataclasses.dataclass
class BeamConfig:
    """Apache Beam options for every Beam step: ImageExampleGen (or ImportExampleGen) and StatisticsGen.

    ``pipeline_args`` go to ``tfx.dsl.Pipeline(beam_pipeline_args=...)``, which TFX hands to each
    component with a BeamExecutorSpec, locally and in the compiled Kubeflow package (as container
    args). Empty (default): Beam's DirectRunner inside the step's own process. Each element is one
    option as Beam reads it, ``--name=value`` or a bare ``--flag``, e.g. ["--runner=DataflowRunner",
    "--project=P", "--region=R", "--temp_location=gs://BUCKET/tmp"].
    """

    pipeline_args: list[str] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        """Raises ConfigError for an element that is not one option, a runner Beam cannot find here, or
        args that Beam's own parser or validator refuses (pipeline/beam_options.py)."""
        for index, arg in enumerate(self.pipeline_args):
            if not isinstance(arg, str) or not _BEAM_ARG.fullmatch(arg):
                raise ConfigError(f"beam.pipeline_args[{index}]={_shown(arg)}: each element must be one Beam "
                                  "option, --name=value or --flag (write '--runner=DirectRunner', not "
                                  "'--runner', 'DirectRunner')")
            name, separator, value = arg.partition("=")
            if name != "--runner":  # Beam's parser takes no abbreviations (allow_abbrev=False)
                continue
            if not separator or not value:
                raise ConfigError(f"beam.pipeline_args[{index}]={_shown(arg)}: name the runner, "
                                  "e.g. --runner=DataflowRunner")
            problem = _beam_runner_problem(value)
            if problem:
                raise ConfigError(f"beam.pipeline_args[{index}]={_shown(arg)}: {problem}")
        self._check_with_beam()

    def remote_runner(self) -> str:
        """The runner's name when its workers are always other machines (Dataflow), else "".

        Such workers read the input and write the Beam steps' outputs themselves, so both must be on
        storage they reach. Portable runners (Flink, Spark) may run their workers here or on a cluster;
        their storage is the user's to choose (docs/deploy.md)."""
        runners = [arg.partition("=")[2] for arg in self.pipeline_args if arg.startswith("--runner=")]
        if not runners:
            return ""
        return runners[-1] if _runner_path(runners[-1]).endswith(("DataflowRunner", "TestDataflowRunner")) else ""

    def runner_that_cannot_read(self, data_path: str) -> str:
        """The remote runner's name when its workers cannot read ``data_path``, else "".

        Its workers run our image, whose TensorFlow reads gs:// only (s3:// needs tensorflow-io), and
        they mount neither the pipeline-root volume nor this machine's disks."""
        runner = self.remote_runner()
        return runner if runner and not data_path.startswith("gs://") else ""

    def _check_with_beam(self) -> None:
        """Beam's own parser and validator for the runner the args name (pipeline/beam_options.py).

        Raises ConfigError naming the element Beam blames, or the whole list for a validator error."""
        if not self.pipeline_args:
            return
        from ganpipe.pipeline import beam_options

        refused = beam_options.refusal(self.pipeline_args)
        if refused is None:
            return
        if refused.index is None:
            raise ConfigError(f"beam.pipeline_args: {refused.reason}")
        raise ConfigError(f"beam.pipeline_args[{refused.index}]={_shown(self.pipeline_args[refused.index])}: "
                          f"{refused.reason}")


_BEAM_ARG = re.compile(r"--[A-Za-z_][A-Za-z0-9_-]*(=.*)?", re.S)


def _runner_path(name: str) -> str:
    """The module.Class path Beam 2.74's ``create_runner`` resolves ``name`` to (case-insensitive, "Runner"
    optional); ``name`` itself when it is not a known runner's name. Imports Beam."""
    from apache_beam.options.pipeline_options import StandardOptions

    known = {path.rsplit(".", 1)[-1].lower(): path for path in StandardOptions.ALL_KNOWN_RUNNERS}
    return known.get(name.lower(), known.get(name.lower() + "runner", name))


def _beam_runner_problem(name: str) -> str | None:
    """Why Beam could not create runner ``name`` here, or None. Resolves names as Beam 2.74's
    ``apache_beam.runners.runner.create_runner`` does (case-insensitive, "Runner" optional, or a
    module.Class path), and imports the class without constructing it. Imports Beam only when called."""
    try:
        from apache_beam.options.pipeline_options import StandardOptions
        from apache_beam.runners.runner import PipelineRunner
    except Exception as error:  # noqa: BLE001 - any failure to load Beam is the message
        return f"Apache Beam cannot be loaded here ({_first_line(error)})"
    path = _runner_path(name)
    if "." not in path:
        return (f"not a Beam runner; known: {', '.join(StandardOptions.KNOWN_RUNNER_NAMES)}, "
                "or the module.Class path of a PipelineRunner")
    module, _, attribute = path.rpartition(".")
    try:
        runner_class = getattr(importlib.import_module(module), attribute)
    except Exception as error:  # noqa: BLE001 - ImportError, AttributeError, or whatever the module raises
        return f"runner {path} is not installed here ({_first_line(error)})"
    if not (isinstance(runner_class, type) and issubclass(runner_class, PipelineRunner)):
        return f"{path} is not a Beam PipelineRunner class"
    return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = lines[0] if len(lines[0]) <= 200 else lines[0][:197] + "..."
    return f"{type(error).__name__}: {line}"


@dataclasses.dataclass
class KubeflowConfig:
    """Where and how the pipeline runs on Kubernetes (`ganpipe compile|submit|schedule`, TFJob, CronJob).

    Local runs ignore this section. Paths here are paths INSIDE the cluster's
    pods (the PVC mount points in k8s/), not on the machine that compiles.
    """

    # The image every step and TFJob worker runs (Dockerfile). Pinned: a tag
    # other than "latest", or a digest, so a scheduled run is reproducible.
    image: str = "ganpipe:0.1.0"
    # TFX pipeline root for Kubeflow Pipelines: object storage the steps write
    # to directly (gs://bucket/path, or s3://bucket/path, also for MinIO).
    pipeline_root: str = ""
    # Namespace of the TFJob, the PVCs and the KFP runs (k8s/base).
    namespace: str = "ganpipe"
    # Kubeflow Pipelines API endpoint, e.g. http://localhost:8080 after
    # `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`.
    host: str = ""
    experiment: str = "ganpipe"
    # Kubernetes service account of KFP's step pods; empty: KFP's default.
    service_account: str = ""
    # The RWX volume holding input data, TFJob run dirs and (CronJob route)
    # the pipeline root, and the volume TF Serving reads models from.
    pipeline_root_pvc: str = "ganpipe-pipeline-root"
    pipeline_root_mount: str = "/mnt/pipeline"
    models_pvc: str = "ganpipe-models"
    models_mount: str = "/mnt/models"
    # Per-step resources (every step, then the Trainer's own); GPUs go to the
    # Trainer step, or to each TFJob worker when train.workers > 1.
    step_cpu: float = 1.0
    step_memory_gb: float = 4.0
    trainer_cpu: float = 4.0
    trainer_memory_gb: float = 16.0
    trainer_gpus: int = 1
    gpu_resource: str = "nvidia.com/gpu"
    # train.workers > 1 on a cluster: true runs the workers as a Kubeflow
    # TFJob (one pod each); false runs them as processes in the Trainer pod.
    tfjob: bool = True
    tfjob_timeout_s: int = 6 * 3600
    tfjob_poll_s: float = 10.0

    def validate(self) -> None:
        if not _is_pinned_image(self.image):
            raise ConfigError(f"kubeflow.image={self.image!r}: pin it with a tag other than 'latest' "
                              "or a digest (e.g. registry.example.com/ganpipe:0.1.0)")
        if self.pipeline_root and not self.pipeline_root.startswith(OBJECT_STORE_SCHEMES):
            # KFP's v2 launcher accepts gs://, s3:// and minio:// roots only (kubeflow/pipelines 2.5.0,
            # backend/src/v2/objectstore/config.go); TFX's executors write the artifact URI through
            # tf.io.gfile, which has no minio:// filesystem (use s3:// with MinIO's endpoint).
            raise ConfigError(f"kubeflow.pipeline_root={self.pipeline_root!r}: must be object storage "
                              f"({', '.join(OBJECT_STORE_SCHEMES)}...): Kubeflow Pipelines' launcher refuses "
                              "other roots, and TensorFlow cannot write minio:// (use s3:// for MinIO)")
        if not _DNS_LABEL.fullmatch(self.namespace):
            raise ConfigError(f"kubeflow.namespace={self.namespace!r}: must be a DNS-1123 label "
                              "(lower-case letters, digits, '-')")
        for name in ("pipeline_root_pvc", "models_pvc"):
            if not _DNS_SUBDOMAIN.fullmatch(getattr(self, name)):
                raise ConfigError(f"kubeflow.{name}={getattr(self, name)!r}: not a valid PVC name")
        for name in ("pipeline_root_mount", "models_mount"):
            if not getattr(self, name).startswith("/"):
                raise ConfigError(f"kubeflow.{name}={getattr(self, name)!r}: must be an absolute path")
        # Upper bounds: what one Kubernetes node or pod can be given (the largest cloud machines have
        # a few hundred cores, a few TiB and 16 accelerators), and a TFJob wait of at most 30 days.
        for name, high in (("step_cpu", 1024), ("step_memory_gb", 16_384), ("trainer_cpu", 1024),
                           ("trainer_memory_gb", 16_384), ("tfjob_poll_s", 3600)):
            if not 0 < getattr(self, name) <= high:
                raise ConfigError(f"kubeflow.{name}={getattr(self, name)}: must be in (0, {high}]")
        if not 0 <= self.trainer_gpus <= 64:
            raise ConfigError(f"kubeflow.trainer_gpus={self.trainer_gpus}: must be in [0, 64]")
        if not 60 <= self.tfjob_timeout_s <= 30 * 86_400:
            raise ConfigError(f"kubeflow.tfjob_timeout_s={self.tfjob_timeout_s}: must be in [60, {30 * 86_400}]")
        if "/" not in self.gpu_resource:
            raise ConfigError(f"kubeflow.gpu_resource={self.gpu_resource!r}: must be an extended resource "
                              "name such as nvidia.com/gpu")


OBJECT_STORE_SCHEMES = ("gs://", "s3://")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _is_pinned_image(image: str) -> bool:
    if not image or any(c.isspace() for c in image):
        return False
    if "@sha256:" in image:
        return True
    name_and_tag = image.rsplit("/", 1)[-1]
    return ":" in name_and_tag and not name_and_tag.endswith(":latest") and not name_and_tag.endswith(":")


@dataclasses.dataclass
class PipelineConfig:
    """Everything a run needs; ``validate`` is called on every construction path."""

    pipeline_name: str = "ganpipe"
    output_dir: str = "ganpipe_output"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)
    kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)

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
            raise ConfigError(f"pipeline_name={_shown(self.pipeline_name)}: use letters, digits, '-' and '_'")
        if len(self.pipeline_name) > 63:  # tfx.dsl.Pipeline refuses longer names
            raise ConfigError(f"pipeline_name={_shown(self.pipeline_name)}: at most 63 characters "
                              f"(it has {len(self.pipeline_name)})")
        if not self.output_dir:
            raise ConfigError("output_dir is empty")
        self.data.validate()
        try:
            self.train.validate()
            self.evaluate.validate()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if self.evaluate.min_cas_ratio > 0 and not self.train.conditional:
            raise ConfigError(f"evaluate.min_cas_ratio={self.evaluate.min_cas_ratio:g} needs train.conditional=true: "
                              "CAS asks the generator for images of given classes, which an unconditional one "
                              "cannot draw")
        self.push.validate()
        self.export.validate()
        self.beam.validate()
        self.kubeflow.validate()

    def ingest_config(self) -> IngestConfig:
        """What ImageExampleGen gets: the data section's ingest settings and the training shape."""
        return IngestConfig(eval_fraction=self.data.eval_fraction, image_size=self.train.image_size,
                            channels=self.train.channels, convert_channels=self.data.convert_channels,
                            labels_from_subfolders=self.data.labels_from_subfolders,
                            background=self.data.background, resize=self.data.resize)

    def check_local_files(self) -> None:
        """For runs on this machine: files the config names exist (before hours of training), and the
        Beam steps' workers can reach this run's storage."""
        try:
            self.evaluate.check_files()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if self.beam.remote_runner():
            raise ConfigError(f"beam.pipeline_args: --runner={self.beam.remote_runner()} runs the Beam steps on "
                              "workers elsewhere, which cannot write this local run's output_dir; compile for "
                              "Kubeflow with kubeflow.pipeline_root on gs:// (docs/deploy.md), or drop --runner "
                              "to run them here")

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
                loaded = yaml.load(handle, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except OSError as error:
            raise ConfigError(f"cannot read config file {yaml_path}: {error.strerror}") from None
        except UnicodeDecodeError as error:  # a binary file, or Latin-1 text
            raise ConfigError(f"config file {yaml_path} is not UTF-8 text (byte {error.start}: "
                              f"0x{error.object[error.start]:02x}); save it as UTF-8") from None
        except yaml.YAMLError as error:
            detail = " ".join(str(error).split())  # one line
            raise ConfigError(f"config file {yaml_path} is not valid YAML: {detail}") from None
        except RecursionError:
            raise ConfigError(f"config file {yaml_path} nests too deeply to be a ganpipe config") from None
        if loaded is None:  # an empty file (or only comments): the defaults
            loaded = {}
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
    not_text = [key for key in values if not isinstance(key, str)]
    if not_text:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: key {not_text[0]!r} is not a name; keys are words "
                          "like train or steps")
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
    except ValueError as error:  # TrainerConfig and EvaluateConfig validate in __post_init__
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
    if hints[leaf] is str and isinstance(raw, str):
        # Text keys keep the text as typed: YAML would read "photos #1" as "photos" (a comment),
        # strip quotes, and refuse "[draft] imgs" or "@pics", all valid folder names.
        _check_utf8(raw, dotted_key)
        parsed: Any = raw
    else:
        parsed = _parse_scalar(raw, dotted_key) if isinstance(raw, str) else raw
    setattr(target, leaf, _coerce(parsed, hints[leaf], key=dotted_key))


FLOAT32_MAX = 3.4028234663852886e38
# Numeric settings that also take the word `auto`, and the value that stands for it.
AUTO_KEYS = {"train.image_size": 0, "train.channels": 0, "train.batch_size": 0, "train.steps": 0,
             "train.discriminator_dropout": AUTO_DROPOUT}


def _check_utf8(raw: str, key: str) -> None:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # a path with bytes that are not UTF-8, as the shell passed it
        raise ConfigError(f"{key}={_shown(raw)}: the name is not valid UTF-8; rename the folder") from None


def _parse_scalar(raw: str, key: str) -> Any:
    """A --set value as YAML reads it; a value YAML cannot read is a one-line error naming the key."""
    _check_utf8(raw, key)
    try:
        return yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError):
        raise ConfigError(f"{key}={_shown(raw)}: not a value YAML can read") from None


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxdict = 4
_SHOWN.maxlevel = 2


def _shown(value: Any) -> str:
    """repr, cut short: a value in a message stays one readable line (a YAML alias bomb would be gigabytes)."""
    return _SHOWN.repr(value)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _as_float(value: Any) -> float | None:
    """Every spelling Python's float() takes ("1e-4", "2E-4", "1_000.5"; YAML 1.1 reads a bare 1e-4
    as a string), ints widened; None for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except OverflowError:  # an int with hundreds of digits
        return math.inf
    except ValueError:
        return None
    return None


def _coerce(value: Any, field_type: Any, key: str) -> Any:
    """Accepts a value only when it fits the field's type (ints widen to floats; `auto` for AUTO_KEYS)."""
    if key in AUTO_KEYS and value == "auto":
        return AUTO_KEYS[key]
    if isinstance(field_type, types.UnionType) or typing.get_origin(field_type) is typing.Union:
        raise ConfigError(f"{key}: union-typed settings are not supported")
    if field_type is bool:
        if isinstance(value, bool):
            return value
    elif field_type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif field_type is float:
        number = _as_float(value)
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{key}={_shown(value)}: must be a finite number")
            if abs(number) > FLOAT32_MAX:  # TensorFlow computes in float32: 1e39 would be inf there
                raise ConfigError(f"{key}={_shown(value)}: must be within +-{FLOAT32_MAX:.3g} (float32)")
            return number
    elif field_type is str:
        if isinstance(value, str):
            if "\0" in value:
                raise ConfigError(f"{key}={_shown(value)}: contains a NUL character")
            _check_utf8(value, key)  # lone surrogates, e.g. YAML "\udcff"
            return value
    elif typing.get_origin(field_type) is list and typing.get_args(field_type) == (str,):
        if isinstance(value, list):
            return [_coerce(item, str, key=f"{key}[{index}]") for index, item in enumerate(value)]
        raise ConfigError(f"{key}={_shown(value)}: expected a list of text, e.g. "
                          '["--runner=DirectRunner", "--direct_num_workers=2"]')
    else:
        raise ConfigError(f"{key}: unsupported setting type {field_type}")
    raise ConfigError(f"{key}={_shown(value)}: expected {field_type.__name__}"
                      + (" or auto" if key in AUTO_KEYS else ""))
