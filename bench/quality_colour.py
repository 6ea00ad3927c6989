"""Real colour images at 64 px: FID, KID and coverage against CPU time, per architecture and augmentation.

The data is ../shared/data/emoji-twitter-64 (3,786 Twemoji, CC-BY 4.0, (c)
Twitter, Inc and other contributors), ingested once by ImageExampleGen with
the defaults a user gets (`auto` shape: 64x64 RGB, alpha over white). Every
variant trains on the same train split for the same budget of CPU seconds
(this process's CPU time, all threads: on 2 cores one CPU-minute is about 30
wall seconds of a busy training step) and is scored at the same fractions of
that budget against the same real eval images, with the offline extractor
(random-conv-v1: NOT Inception FID). Each variant is one continuous run:
training resumes from its own checkpoint between evaluation points.

Variants: architecture dcgan-tutorial | dcgan | resnet, each with
augmentation off and DiffAugment, `--seeds` seeds each, and
`plain-dcgan+diffaugment`: the reference a user would write by hand (the
paper's width-32 DCGAN-64, transposed convolutions, batch 64, DiffAugment, no
EMA, no dropout in D). The
default preset (`train.architecture: auto`, `train.augment: auto`) is what
`ganpipe run` trains on this folder. Sample grids at the end of the budget
are written next to the JSON (`quality_colour[_<tag>]_<variant>.png`, seed 0).

`--jobs N` trains N runs at once in separate processes: the budget is each
process's own CPU time, so this shortens the wall time, not the comparison.

`--extend TAG` continues the runs of an earlier result (quality_colour_<TAG>.json)
from their last checkpoint to the new budget instead of starting afresh: the
old points are kept and new ones are added at the budget's fractions beyond
them. A run counts as extended only if the trainer resumed at the recorded step;
variants the earlier result lacks train from scratch.

    .venv/bin/python -m bench.quality_colour [--cpu-minutes 10] [--points 4] [--seeds 2] [--samples 1000]
        [--variants ...] [--jobs 2] [--tag 20min] [--extend 20min]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import shutil
import statistics
import time

import numpy as np

from bench.common import RESULTS_DIR, summarize, write_result
from bench.quality_per_compute import generated_images

EMOJI_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                         "emoji-twitter-64")
WORK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".work")
VARIANTS = {
    # name: TrainerConfig overrides (the rest are the defaults a user gets)
    "dcgan-tutorial": {"architecture": "dcgan-tutorial", "augment": "off"},
    "dcgan-tutorial+diffaugment": {"architecture": "dcgan-tutorial", "augment": "diffaugment"},
    "dcgan": {"architecture": "dcgan", "augment": "off"},
    "dcgan+diffaugment": {"architecture": "dcgan", "augment": "diffaugment"},
    "resnet": {"architecture": "resnet", "augment": "off"},
    "resnet+diffaugment": {"architecture": "resnet", "augment": "diffaugment"},
    # The earlier default's batch, screened against the late FID swings (docs/design.md).
    "dcgan+diffaugment+batch32": {"architecture": "dcgan", "augment": "diffaugment", "batch_size": 32},
    # The preset's upsampling before 2026-11-30 (nearest x2 + 3x3 conv): checkerboard-free, 0.7x the steps.
    # (`dcgan+diffaugment+transposed` in results of that day is today's dcgan+diffaugment.)
    "dcgan+diffaugment+resize": {"architecture": "dcgan", "augment": "diffaugment", "upsample": "resize"},
    # Class-conditional on the 10 folders (one-hot labels into G, a projection term in D); scored on labels
    # drawn with the training split's class frequencies, as it trained (the export's class-free
    # signatures draw classes uniformly instead).
    "dcgan+diffaugment+conditional": {"architecture": "dcgan", "augment": "diffaugment", "conditional": True},
    # What a user glues together from a DCGAN tutorial and the DiffAugment code: the yardstick
    # the default preset must beat at equal CPU time.
    "plain-dcgan+diffaugment": {"architecture": "dcgan", "augment": "diffaugment", "ema_decay": 0.0,
                                "discriminator_dropout": 0.0, "batch_size": 64, "upsample": "transposed"},
}
# Earlier results' names of today's variants (the 20min-transposed result names today's preset by its upsampling).
RENAMED = {"dcgan+diffaugment+transposed": "dcgan+diffaugment"}


def ingest(source: str, work_dir: str) -> tuple[str, dict]:
    """The folder through ImageExampleGen with default settings; (Examples dir, ingest report)."""
    from tfx.types import standard_artifacts

    from ganpipe.components.image_example_gen.config import IngestConfig
    from ganpipe.components.image_example_gen.executor import Executor

    examples_dir = os.path.join(work_dir, "emoji_examples")
    report_path = os.path.join(examples_dir, "ingest_report.json")
    if not os.path.exists(report_path):
        shutil.rmtree(examples_dir, ignore_errors=True)
        examples = standard_artifacts.Examples()
        examples.uri = examples_dir
        properties = {"input_base": source, "data_format": "auto", "config": json.dumps(IngestConfig().to_dict())}
        Executor(Executor.Context(beam_pipeline_args=[])).Do({}, {"examples": [examples]}, properties)
    with open(report_path, encoding="utf-8") as handle:
        return examples_dir, json.load(handle)


def default_preset(train_count: int) -> dict:
    """What `train.architecture: auto` and `train.augment: auto` resolve to for this data."""
    from ganpipe.trainer.config import TrainerConfig, resolve_architecture, resolve_augment

    defaults = TrainerConfig()
    return {"architecture": resolve_architecture(defaults.architecture, 64),
            "augment": resolve_augment(defaults.augment, train_count)}


def curve(cfg, train_files: list[str], reference, extractor, budget_s: float, points: int, samples: int,
          run_dir: str, earlier: list[dict] | None = None) -> tuple[list[dict], np.ndarray]:
    """Trains in chunks until each fraction of the CPU budget, scoring there; returns (points, final images).

    ``earlier``: the points of an earlier run whose checkpoints are in run_dir; training resumes from its
    last point. Raises RuntimeError if the trainer does not resume at that point's step.
    """
    from ganpipe.evaluation import metrics
    from ganpipe.trainer.train import train_run

    measured: list[dict] = list(earlier or [])
    if earlier:
        cpu_seconds, step = earlier[-1]["cpu_minutes"] * 60, earlier[-1]["step"]
        # Checked before training: a wrong folder would otherwise train for the whole budget first.
        if not os.path.exists(os.path.join(run_dir, f"grid-{step:06d}.png")):
            raise RuntimeError(f"{run_dir} holds no grid of step {step}: it is not the earlier run's folder")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        cpu_seconds, step = 0.0, 0
    per_step = None
    images = np.zeros((0,))
    for point in range(1, points + 1):
        target = budget_s * point / points
        if target <= cpu_seconds:
            continue
        while cpu_seconds < target:
            # The first chunk measures the cost of a step; later ones aim at the target from it.
            chunk = 20 if per_step is None else max(1, int(round((target - cpu_seconds) / per_step)))
            staged = dataclasses.replace(cfg, steps=step + chunk, checkpoint_every=step + chunk, log_every=10_000,
                                         sample_every=10_000_000, checkpoint_dir=os.path.join(run_dir, "ckpt"))
            started = time.process_time()
            result = train_run(staged, train_files, run_dir)
            spent = time.process_time() - started
            if per_step is None and earlier and result.start_step != step:
                raise RuntimeError(f"{run_dir}: resumed at step {result.start_step}, not the earlier run's {step}")
            cpu_seconds += spent
            per_step = spent / chunk if per_step is None else 0.5 * per_step + 0.5 * spent / chunk
            step += chunk
        images = generated_images(result.generator, cfg.latent_dim, samples,
                                  labels=_training_labels(train_files, samples) if cfg.conditional else None)
        scores = metrics.score(metrics.FeatureSummary.from_features(extractor(images)), reference)
        measured.append({"step": step, "cpu_minutes": cpu_seconds / 60, "fid": scores.fid, "kid": scores.kid,
                         "coverage": scores.coverage, "recall": scores.recall})
        print(f"    {cpu_seconds / 60:5.1f} CPU-min  step {step:5d}  FID {scores.fid:7.3f}  KID {scores.kid:.4f}  "
              f"coverage {scores.coverage:.3f}", flush=True)
        _save_grid(images, os.path.join(run_dir, f"grid-{step:06d}.png"))  # to look at the way there
    return measured, images


def _training_labels(train_files: list[str], count: int) -> np.ndarray:
    """int [count]: labels drawn (fixed seed) with the training split's class frequencies."""
    from ganpipe.trainer.data import read_labels

    return np.random.default_rng(1_000_000).choice(read_labels(train_files), size=count)


def _save_grid(images: np.ndarray, path: str) -> None:
    from PIL import Image

    from ganpipe.trainer.visualize import image_grid

    Image.fromarray(image_grid(images[:64], columns=8)).save(path)


def _references(examples_dir: str, samples: int):
    """(extractor, real eval FeatureSummary, real-train-vs-eval floor scores): the same in every process."""
    from ganpipe.evaluation import metrics
    from ganpipe.evaluation.feature_extractors import get_extractor
    from ganpipe.trainer.data import load_images

    extractor = get_extractor("random-conv")  # fixed weights (random-conv-v1): identical in every process
    real_eval = load_images([os.path.join(examples_dir, "Split-eval", "*")], channels=3, image_size=64)
    # Spread over the class-sorted split as the evaluator's floor is (data.spread_indices): the head of
    # the file holds half the classes. Results up to quality_colour_20min-transposed used the head (floor 0.95).
    real_train = load_images([os.path.join(examples_dir, "Split-train", "*")], channels=3, image_size=64,
                             limit=samples, spread=True)
    reference = metrics.FeatureSummary.from_features(extractor(real_eval))
    floor = metrics.score(metrics.FeatureSummary.from_features(extractor(real_train)), reference).to_dict()
    return extractor, reference, floor, len(real_eval)


def curve_task(name: str, seed: int, examples_dir: str, cpu_minutes: float, points: int,
               samples: int, earlier: tuple[str, list[dict]] | None = None) -> tuple[list[dict], np.ndarray]:
    """One (variant, seed) run to the budget, from scratch or from an earlier run's checkpoint; (points, 64 images).

    ``earlier``: (the folder name F of the earlier runs, bench/.work/colour-F-<seed>; that run's points).
    """
    from ganpipe.trainer.config import TrainerConfig

    extractor, reference, _, _ = _references(examples_dir, samples)
    folder_name, earlier_points = earlier if earlier else (name, None)
    print(f"  {name} (seed {seed})" + (f", extending {folder_name} from step {earlier_points[-1]['step']}"
                                       if earlier else "") + ":", flush=True)
    cfg = TrainerConfig(image_size=64, channels=3, seed=seed, **VARIANTS[name])
    measured, images = curve(cfg, [os.path.join(examples_dir, "Split-train", "*")], reference, extractor,
                             cpu_minutes * 60, points, samples,
                             os.path.join(WORK_DIR, f"colour-{folder_name}-{seed}"), earlier_points)
    print(f"  {name} (seed {seed}) done: FID {measured[-1]['fid']:.3f} at step {measured[-1]['step']}", flush=True)
    return measured, images[:64]


def earlier_runs(tag: str, samples: int) -> dict[str, tuple[str, list[list[dict]]]]:
    """{variant (today's name): (the folder name of its runs, [points of each seed])} from
    <results>/quality_colour_<tag>.json. Raises ValueError if that result was scored otherwise."""
    with open(os.path.join(RESULTS_DIR, f"quality_colour_{tag}.json"), encoding="utf-8") as handle:
        earlier = json.load(handle)
    if earlier["samples"] != samples or earlier["extractor"] != "random-conv-v1":
        raise ValueError(f"quality_colour_{tag}.json was scored with {earlier['samples']} samples in "
                         f"{earlier['extractor']}: extend it with --samples {earlier['samples']}")
    # Results from before "run_folders" was recorded ran each variant in the folder named after it.
    folders = earlier.get("run_folders", {})
    return {RENAMED.get(name, name): (folders.get(name, name), seeds) for name, seeds in earlier["runs"].items()}


def run(cpu_minutes: float, points: int, seeds: int, samples: int, variants: list[str],
        jobs: int = 1, earlier: dict[str, tuple[str, list[list[dict]]]] | None = None) -> tuple[dict, dict]:
    os.makedirs(WORK_DIR, exist_ok=True)
    examples_dir, report = ingest(os.path.normpath(EMOJI_DIR), WORK_DIR)
    extractor, _, floor, num_real_eval = _references(examples_dir, samples)
    preset = default_preset(report["splits"]["train"])
    print(f"emoji: {report['splits']} images, stored {report['stored_shape']}; default preset {preset}; "
          f"real floor FID {floor['fid']:.3f} coverage {floor['coverage']:.3f}", flush=True)

    tasks = [(name, seed) for name in variants for seed in range(seeds)]
    earlier = {name: runs for name, runs in (earlier or {}).items() if name in variants}
    for name, (_, runs) in earlier.items():
        # Points are paired across seeds by position: every seed of a variant must continue, on one schedule.
        if len(runs) < seeds or len({len(points_) for points_ in runs}) != 1:
            raise ValueError(f"{name}: the earlier result has {len(runs)} seed(s) with {[len(p) for p in runs]} "
                             f"points; extending needs all {seeds} on one schedule")
        if runs[0][-1]["cpu_minutes"] >= cpu_minutes:
            raise ValueError(f"{name}: the earlier runs already reached {runs[0][-1]['cpu_minutes']:.1f} "
                             f"CPU-minutes; give a larger --cpu-minutes")
    arguments = [(name, seed, examples_dir, cpu_minutes, points, samples,
                  (earlier[name][0], earlier[name][1][seed]) if name in earlier else None) for name, seed in tasks]
    if jobs > 1:
        # spawn, not fork: TensorFlow's runtime does not survive a fork.
        from ganpipe.trainer.local_workers import LAUNCHER_PID_ENV, die_with_launcher

        context = multiprocessing.get_context("spawn")
        # A killed bench must not leave its workers training on (once, two ran for 40 CPU-minutes each).
        os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=die_with_launcher) as pool:
            outcomes = list(pool.map(curve_task, *zip(*arguments)))
    else:
        outcomes = [curve_task(*task) for task in arguments]
    curves = {name: [] for name in variants}
    grids = {}
    for (name, seed), (measured, images) in zip(tasks, outcomes):
        curves[name].append(measured)
        if seed == 0:
            grids[name] = images
    medians = {
        name: [{key: summarize([run_[i][key] for run_ in runs]) for key in ("fid", "kid", "coverage", "recall")}
               | {"step": statistics.median(run_[i]["step"] for run_ in runs),
                  "cpu_minutes": statistics.median(run_[i]["cpu_minutes"] for run_ in runs)}
               for i in range(min(len(run_) for run_ in runs))]
        for name, runs in curves.items()
    }
    final = {name: points_[-1]["fid"]["median"] for name, points_ in medians.items()}
    preset_name = preset["architecture"] + ("+diffaugment" if preset["augment"] != "off" else "")
    result = {
        "data": "emoji-twitter-64", "ingest": {"splits": report["splits"], "stored_shape": report["stored_shape"]},
        "extractor": extractor.name, "cpu_minutes": cpu_minutes, "points": points, "seeds": seeds,
        # variants whose runs continued an earlier result's (--extend): {variant: its name there}
        "extended": {name: folder_name for name, (folder_name, _) in earlier.items()},
        # {variant: F}: its runs live in bench/.work/colour-F-<seed> (an extended run keeps its first folder)
        "run_folders": {name: earlier[name][0] if name in earlier else name for name in variants},
        "samples": samples, "num_real_eval": int(num_real_eval), "real_floor": floor,
        "default_preset": preset_name, "curves": medians, "runs": curves, "final_fid": final,
        "preset_fid_over_tutorial": (final[preset_name] / final["dcgan-tutorial"]
                                     if preset_name in final and "dcgan-tutorial" in final else None),
        "target_ratio": 1 / 3,
        "preset_fid_over_plain": (final[preset_name] / final["plain-dcgan+diffaugment"]
                                  if preset_name in final and "plain-dcgan+diffaugment" in final else None),
    }
    return result, grids


def write_grids(grids: dict, real: np.ndarray, directory: str, stem: str) -> list[str]:
    from ganpipe.trainer.visualize import image_grid
    from PIL import Image

    paths = []
    for name, images in {"real": real[:64], **grids}.items():
        path = os.path.join(directory, f"{stem}_{name}.png")
        grid = np.asarray(image_grid(images, columns=8))
        Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)
        paths.append(path)
    return paths


def plot(result: dict, path: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.add_subplot()
    for name, points in result["curves"].items():
        minutes = [p["cpu_minutes"] for p in points]
        axes.plot(minutes, [p["fid"]["median"] for p in points], marker="o", label=name,
                  linewidth=2.5 if name == result["default_preset"] else 1.2)
    axes.axhline(result["real_floor"]["fid"], color="grey", linestyle=":", label="real floor")
    axes.set_xlabel("CPU-minutes of training (this process, all threads)")
    axes.set_ylabel(f"FID ({result['extractor']}, not Inception)")
    axes.set_yscale("log")
    axes.set_title(f"emoji 64x64 RGB, median of {result['seeds']} seed(s)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-minutes", type=float, default=10.0)
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, one process each")
    parser.add_argument("--tag", default="", help="suffix of the result's name (quality_colour_<tag>.json)")
    parser.add_argument("--extend", default="", metavar="TAG",
                        help="continue the runs of quality_colour_<TAG>.json from their checkpoints")
    args = parser.parse_args(argv)
    earlier = earlier_runs(args.extend, args.samples) if args.extend else None
    result, grids = run(args.cpu_minutes, args.points, args.seeds, args.samples, args.variants, args.jobs, earlier)
    result["extended_from"] = f"quality_colour_{args.extend}.json" if args.extend else None
    print(f"quality on colour images ({result['extractor']}), median at {args.cpu_minutes:g} CPU-minutes:")
    for name, points in result["curves"].items():
        last = points[-1]
        print(f"  {name:28s} step {last['step']:7.0f}  FID {last['fid']['median']:8.3f} "
              f"[{last['fid']['min']:.2f}-{last['fid']['max']:.2f}]  KID {last['kid']['median']:.4f}  "
              f"coverage {last['coverage']['median']:.3f}")
    print(f"  default preset {result['default_preset']}: FID / dcgan-tutorial's = "
          f"{result['preset_fid_over_tutorial']} (target <= 1/3); / plain-dcgan+diffaugment's = "
          f"{result['preset_fid_over_plain']} (target < 1)")
    stem = "quality_colour" + (f"_{args.tag}" if args.tag else "")
    path = write_result(stem, result)
    plot(result, path.replace(".json", ".png"))
    from ganpipe.trainer.data import load_images

    # Spread over the eval split, which is in class order: its head is flags and objects, not the people
    # that make up 60% of the data (the grids up to the 40min result showed the head).
    real = load_images([os.path.join(WORK_DIR, "emoji_examples", "Split-eval", "*")], channels=3, image_size=64,
                       limit=64, spread=True)
    print("wrote", path, *write_grids(grids, real, os.path.dirname(path), stem))
    return result


if __name__ == "__main__":
    main()
